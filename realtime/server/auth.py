"""Credentials the local server accepts: its API key (optional) and the ephemeral keys it mints.

With no API key configured the server is open (it binds 127.0.0.1 by default). With one,
every request must carry it — ``Authorization: Bearer KEY``, an ``api-key: KEY`` header, or
the browser subprotocol ``openai-insecure-api-key.KEY`` — or an unexpired ephemeral key
minted by ``POST /v1/realtime/client_secrets`` (or the beta session endpoints), which also
carries the session configuration it was created with.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EphemeralKey", "KeyStore", "credential_from"]

log = logging.getLogger("realtime.server.auth")


@dataclass(frozen=True)
class EphemeralKey:
    """A short-lived key and the session configuration it grants."""

    value: str
    expires_at: int
    session: Mapping[str, Any] = field(default_factory=dict)
    dialect: str = "ga"


class KeyStore:
    """The server's API key and its minted ephemeral keys (thread-safe)."""

    def __init__(self, api_key: str | None = None) -> None:
        self._api_key = api_key
        self._ephemeral: dict[str, EphemeralKey] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KeyStore(api_key={'set' if self._api_key else 'unset'})"

    def secrets(self) -> list[str]:
        """The configured key (for log redaction; ephemeral keys are recognised by prefix)."""
        return [self._api_key] if self._api_key else []

    @property
    def open(self) -> bool:
        """True when no API key is configured (every request is accepted)."""
        return self._api_key is None

    def mint(
        self, seconds: int = 600, session: Mapping[str, Any] | None = None, dialect: str = "ga"
    ) -> EphemeralKey:
        """Create an ephemeral key valid for ``seconds`` (10 s to 2 h, like the service)."""
        seconds = max(10, min(int(seconds), 7200))
        key = EphemeralKey(
            value="ek_" + secrets.token_urlsafe(24),
            expires_at=int(time.time()) + seconds,
            session=dict(session or {}),
            dialect=dialect,
        )
        with self._lock:
            now = time.time()
            self._ephemeral = {k: v for k, v in self._ephemeral.items() if v.expires_at > now}
            self._ephemeral[key.value] = key
        return key

    def check(self, credential: str | None) -> tuple[bool, EphemeralKey | None]:
        """Whether the credential is accepted, and the ephemeral key it is (if one)."""
        if credential is not None:
            with self._lock:
                eph = self._ephemeral.get(credential)
            if eph is not None:
                if eph.expires_at <= time.time():
                    log.warning("refused a client: its ephemeral key has expired")
                return eph.expires_at > time.time(), eph
        if self._api_key is None:
            return True, None
        if credential is None:
            log.warning("refused a client: no API key sent (this server requires one)")
            return False, None
        ok = hmac.compare_digest(credential.encode(), self._api_key.encode())
        if not ok:
            log.warning("refused a client: wrong API key")
        return ok, None


def credential_from(
    headers: Mapping[str, str], subprotocols: list[str] | None = None
) -> str | None:
    """The credential a request carries (bearer token, ``api-key`` header or subprotocol)."""
    auth = headers.get("authorization")
    if auth and auth.lower().startswith("bearer "):
        return auth[7:].strip()
    key = headers.get("api-key")
    if key:
        return key.strip()
    for proto in subprotocols or []:
        if proto.startswith("openai-insecure-api-key."):
            return proto[len("openai-insecure-api-key.") :]
    return None
