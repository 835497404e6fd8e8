"""Exceptions raised by :mod:`realtime.telephony`.

.. code-block:: text

    RealtimeError                      (realtime.exceptions)
    └── TelephonyError                 base of every telephony error
        ├── MediaStreamError           a media-stream message is malformed or out of place
        ├── UnsupportedMediaFormat     the stream's encoding/rate cannot be bridged
        ├── CallEnded                  the phone side hung up or disconnected
        ├── CallControlError           a call-control request was refused (status, body)
        └── WebhookVerificationError   a webhook failed Standard Webhooks verification
            ├── InvalidSignature       no signature matches the body and the secret
            ├── StaleTimestamp         the timestamp is outside the tolerance window
            └── ReplayedWebhook        the webhook id was already accepted once

Messages never contain a secret or a whole payload.
"""

from __future__ import annotations

from ..exceptions import RealtimeError

__all__ = [
    "CallControlError",
    "CallEnded",
    "InvalidSignature",
    "MediaStreamError",
    "ReplayedWebhook",
    "StaleTimestamp",
    "TelephonyError",
    "UnsupportedMediaFormat",
    "WebhookVerificationError",
]


class TelephonyError(RealtimeError):
    """Base class of the errors of :mod:`realtime.telephony`."""


class MediaStreamError(TelephonyError, ValueError):
    """A media-stream message could not be understood (``event`` names its kind when known)."""

    def __init__(self, message: str, *, event: str | None = None) -> None:
        self.event = event
        super().__init__(f"{message} (event {event!r})" if event else message)


class UnsupportedMediaFormat(TelephonyError, ValueError):
    """The stream's encoding or sample rate has no bridge path."""


class CallEnded(TelephonyError):
    """The phone side ended the call (``stop`` message or WebSocket closed)."""


class CallControlError(TelephonyError):
    """A call-control request failed: ``status`` is the HTTP status (``None`` when unsent)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class WebhookVerificationError(TelephonyError):
    """A webhook did not pass verification: answer it with HTTP 400 and do not act on it."""


class InvalidSignature(WebhookVerificationError):
    """Headers missing or malformed, or no ``v1`` signature matches."""


class StaleTimestamp(WebhookVerificationError):
    """``webhook-timestamp`` is too old or too far in the future."""


class ReplayedWebhook(WebhookVerificationError):
    """This ``webhook-id`` was already verified: a replayed delivery."""
