"""Standard Webhooks signatures: verify what the service sends, sign what the local server sends.

The scheme (standardwebhooks.com, used by the service's webhooks): three headers,
``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` (space-
separated ``v1,<base64 HMAC-SHA256>`` entries, several during a key rotation); the signed
content is ``"{id}.{timestamp}.{body}"``; the secret is ``whsec_`` followed by the base64
key.

:class:`WebhookVerifier` rejects (a subclass of
:class:`~.exceptions.WebhookVerificationError` each):

- a missing/malformed header or no matching signature (:class:`~.exceptions.InvalidSignature`),
- a timestamp more than ``tolerance`` seconds away from now (:class:`~.exceptions.StaleTimestamp`),
- a ``webhook-id`` already verified within the tolerance window
  (:class:`~.exceptions.ReplayedWebhook`; ids are remembered for ``2 * tolerance`` seconds,
  at most ``max_remembered`` of them: older ids would fail the timestamp check anyway).

Pure apart from the clock, which can be passed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from .exceptions import InvalidSignature, ReplayedWebhook, StaleTimestamp

__all__ = ["WebhookVerifier", "new_webhook_secret", "sign_webhook", "webhook_headers"]

_PREFIX = "whsec_"
_MAX_SIGNATURES = 16


def _key(secret: str | bytes) -> bytes:
    if isinstance(secret, bytes):
        return secret
    text = secret[len(_PREFIX) :] if secret.startswith(_PREFIX) else secret
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from None
    if len(key) < 16:
        raise ValueError("a webhook secret needs at least 16 bytes of key")
    return key


def new_webhook_secret() -> str:
    """A fresh random secret in the ``whsec_...`` form."""
    return _PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def sign_webhook(secret: str | bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of a message."""
    content = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def webhook_headers(
    secret: str | bytes, body: bytes, *, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """The three signature headers for ``body`` (a new ``msg_...`` id and now by default)."""
    msg_id = msg_id or "msg_" + secrets.token_hex(12)
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_webhook(secret, msg_id, ts, body),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:  # a plain dict may carry any capitalisation
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    if not value:
        raise InvalidSignature(f"missing {name} header")
    return value


class WebhookVerifier:
    """Verifies webhook deliveries (see the module docstring); one per endpoint and secret.

    ``secret``: ``whsec_...`` (or the raw key bytes); several secrets may be given during
    a rotation. ``tolerance``: seconds of clock difference accepted (default 300).
    """

    def __init__(
        self,
        secret: str | bytes | list[str | bytes],
        *,
        tolerance: float = 300.0,
        max_remembered: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        secrets_ = secret if isinstance(secret, list) else [secret]
        if not secrets_:
            raise ValueError("no webhook secret given")
        self._keys = [_key(s) for s in secrets_]
        self.tolerance = tolerance
        self.max_remembered = max_remembered
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __repr__(self) -> str:
        return f"WebhookVerifier(keys={len(self._keys)}, tolerance={self.tolerance})"

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Check one delivery; returns quietly when it is genuine and new.

        Raises InvalidSignature, StaleTimestamp or ReplayedWebhook. The id is remembered
        only once everything else checked out (a forged delivery cannot block a real one).
        """
        msg_id = _header(headers, "webhook-id")
        raw_ts = _header(headers, "webhook-timestamp")
        signatures = _header(headers, "webhook-signature")
        try:
            timestamp = int(raw_ts)
        except ValueError:
            raise InvalidSignature("webhook-timestamp is not an integer") from None
        now = self.clock()
        if abs(now - timestamp) > self.tolerance:
            raise StaleTimestamp(
                f"webhook timestamp is {now - timestamp:+.0f} s from now "
                f"(tolerance {self.tolerance:.0f} s)"
            )
        content = msg_id.encode() + b"." + raw_ts.encode() + b"." + body
        expected = [hmac.new(k, content, hashlib.sha256).digest() for k in self._keys]
        matched = False
        for entry in signatures.split(" ")[:_MAX_SIGNATURES]:
            version, _, value = entry.partition(",")
            if version != "v1" or not value:
                continue
            try:
                given = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                continue
            if any(hmac.compare_digest(given, e) for e in expected):
                matched = True
                break
        if not matched:
            raise InvalidSignature("no webhook signature matches")
        self._forget(now)
        if msg_id in self._seen:
            raise ReplayedWebhook(f"webhook {msg_id[:64]!r} was already delivered")
        self._seen[msg_id] = now
        while len(self._seen) > self.max_remembered:
            self._seen.popitem(last=False)

    def _forget(self, now: float) -> None:
        horizon = now - 2 * self.tolerance
        seen = self._seen
        while seen:
            first = next(iter(seen.values()))
            if first >= horizon:
                break
            seen.popitem(last=False)
