"""SIP call objects (GA): the ``realtime.call.incoming`` webhook and call-control bodies.

Calls that reach the service over SIP are announced by a webhook; the application then
accepts (the body is a GA session configuration, see :func:`accept_body`), rejects
(:class:`CallRejectRequest`), refers (:class:`CallReferRequest`) or hangs up
``/v1/realtime/calls/{call_id}/...``. Pure models, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..exceptions import ConfigError, ProtocolError
from .base import Int, Model
from .config import SessionConfig

__all__ = [
    "CallReferRequest",
    "CallRejectRequest",
    "IncomingCallData",
    "RealtimeCallIncomingEvent",
    "SipHeader",
    "WebhookEvent",
    "accept_body",
    "parse_webhook_event",
]


class SipHeader(Model):
    """A header of the SIP INVITE."""

    name: str
    value: str


class IncomingCallData(Model):
    """``data`` of ``realtime.call.incoming``: the call id and the INVITE's headers."""

    call_id: str
    sip_headers: list[SipHeader]

    def header(self, name: str) -> str | None:
        """The first SIP header of that name (case-insensitive), or ``None``."""
        lowered = name.lower()
        return next((h.value for h in self.sip_headers if h.name.lower() == lowered), None)


class WebhookEvent(Model):
    """Any webhook event: ``id``, ``type``, ``created_at`` and its ``data`` (kept as given)."""

    id: str
    type: str
    created_at: Int
    object: Literal["event"] = "event"
    data: Any = None


class RealtimeCallIncomingEvent(WebhookEvent):
    """A SIP call is waiting to be accepted, rejected or referred."""

    type: Literal["realtime.call.incoming"] = "realtime.call.incoming"
    data: IncomingCallData


class CallRejectRequest(BaseModel):
    """Body of ``POST /realtime/calls/{call_id}/reject`` (no status: the service sends 603)."""

    model_config = ConfigDict(extra="forbid")

    status_code: Int | None = Field(default=None, ge=100, le=699)


class CallReferRequest(BaseModel):
    """Body of ``POST /realtime/calls/{call_id}/refer``: the SIP Refer-To URI."""

    model_config = ConfigDict(extra="forbid")

    target_uri: str = Field(pattern=r"^(tel|sip|sips):\S+$", max_length=2048)


def accept_body(
    config: SessionConfig | Mapping[str, Any] | None, model: str | None
) -> dict[str, Any]:
    """The body of ``POST /realtime/calls/{call_id}/accept``: a GA realtime session.

    ``config`` is a :class:`SessionConfig` (encoded for GA) or a GA session mapping;
    ``model`` is added unless the session names one. ConfigError for a transcription
    session or a configuration GA cannot express.
    """
    if config is None:
        body: dict[str, Any] = {"type": "realtime"}
    elif isinstance(config, SessionConfig):
        body = config.to_wire("ga")
    else:
        body = dict(config)
        body.setdefault("type", "realtime")
    if body.get("type") != "realtime":
        raise ConfigError("a call is accepted with a realtime session (type 'realtime')")
    if model is not None:
        body.setdefault("model", model)
    return body


def parse_webhook_event(body: str | bytes) -> WebhookEvent:
    """Parse a webhook body: :class:`RealtimeCallIncomingEvent` or a generic :class:`WebhookEvent`.

    Raises ProtocolError for a body that is not a valid event.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("webhook body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("webhook body is not a JSON object")
    kind = data.get("type")
    try:
        if kind == "realtime.call.incoming":
            return RealtimeCallIncomingEvent.model_validate(data)
        return WebhookEvent.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise ProtocolError(
            f"invalid webhook event: {where}: {first.get('msg')}",
            event_type=kind if isinstance(kind, str) else None,
        ) from None
