"""Telephony: phone calls into realtime sessions.

Two ways in:

- **Media streams** (Twilio Media Streams shape): :class:`MediaStreamBridge` bridges a
  call's audio WebSocket to a realtime session, mu-law passing straight through, with
  barge-in from mark acknowledgements (:class:`MarkTracker`). :func:`create_phone_app`
  serves it as an ASGI app (``POST /incoming-call`` answering with TwiML, ``WS
  /media-stream``); :class:`PhoneServer` runs that app in the current event loop.
- **SIP call control** (GA): ``realtime.call.incoming`` webhooks
  (:class:`RealtimeCallIncomingEvent`, verified with :class:`WebhookVerifier`, received by
  :class:`WebhookReceiver`), then :class:`CallControl` to accept, reject, refer or hang up
  and :meth:`CallControl.attach` to open the call's session.

:class:`PhoneSimulator` (also in :mod:`realtime.testing`) is a caller for tests.
The ASGI pieces need the ``server`` extra (Starlette, uvicorn).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..events.calls import (
    CallReferRequest,
    CallRejectRequest,
    IncomingCallData,
    RealtimeCallIncomingEvent,
    SipHeader,
    WebhookEvent,
    accept_body,
    parse_webhook_event,
)
from .bridge import CallInfo, DtmfHandler, MediaStreamBridge, PhoneCall, PhoneSocket
from .control import CallControl
from .exceptions import (
    CallControlError,
    CallEnded,
    InvalidSignature,
    MediaStreamError,
    ReplayedWebhook,
    StaleTimestamp,
    TelephonyError,
    UnsupportedMediaFormat,
    WebhookVerificationError,
)
from .marks import MarkTracker
from .media import MediaCodec, PhoneAudio, phone_audio
from .messages import (
    ClearMessage,
    ConnectedMessage,
    DtmfMessage,
    MarkMessage,
    MediaFormat,
    MediaMessage,
    MediaStreamMessage,
    StartMessage,
    StopMessage,
    encode_message,
    parse_message,
)
from .receiver import WebhookReceiver
from .simulator import PhoneSimulator
from .webhooks import WebhookVerifier, new_webhook_secret, sign_webhook, webhook_headers

if TYPE_CHECKING:
    from .app import PhoneServer, create_phone_app, twiml_connect

__all__ = [
    "CallControl",
    "CallControlError",
    "CallReferRequest",
    "CallRejectRequest",
    "IncomingCallData",
    "RealtimeCallIncomingEvent",
    "SipHeader",
    "WebhookEvent",
    "WebhookReceiver",
    "WebhookVerifier",
    "accept_body",
    "new_webhook_secret",
    "parse_webhook_event",
    "sign_webhook",
    "webhook_headers",
    "CallEnded",
    "CallInfo",
    "ClearMessage",
    "ConnectedMessage",
    "DtmfHandler",
    "DtmfMessage",
    "InvalidSignature",
    "MarkMessage",
    "MarkTracker",
    "MediaCodec",
    "MediaFormat",
    "MediaMessage",
    "MediaStreamBridge",
    "MediaStreamError",
    "MediaStreamMessage",
    "PhoneAudio",
    "PhoneCall",
    "PhoneServer",
    "PhoneSimulator",
    "PhoneSocket",
    "ReplayedWebhook",
    "StaleTimestamp",
    "StartMessage",
    "StopMessage",
    "TelephonyError",
    "UnsupportedMediaFormat",
    "WebhookVerificationError",
    "create_phone_app",
    "encode_message",
    "parse_message",
    "phone_audio",
    "twiml_connect",
]

_ASGI = {"PhoneServer", "create_phone_app", "twiml_connect"}


def __getattr__(name: str) -> Any:
    if name in _ASGI:
        try:
            from . import app
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ImportError(
                f"realtime.telephony.{name} needs the 'server' extra "
                "(pip install 'realtime-voice[server]')"
            ) from exc
        return getattr(app, name)
    raise AttributeError(f"module 'realtime.telephony' has no attribute {name!r}")
