"""Ephemeral realtime keys: short-lived secrets a browser or device can connect with.

Three endpoints mint them: the beta ``POST /realtime/sessions`` and
``POST /realtime/transcription_sessions`` (the key is the response's ``client_secret``)
and the GA ``POST /realtime/client_secrets`` (the key is the response's ``value``). All
three become an :class:`EphemeralKey` whose :attr:`~EphemeralKey.value` is passed as a
session's ``api_key``. Translation sessions have their own endpoint,
``POST /realtime/translations/client_secrets`` (:class:`TranslationClientSecret`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from pydantic import Field

from realtime.events.translation import (
    TranslationSession,
    TranslationSessionConfig,
    unsupported_format,
)
from realtime.exceptions import ConfigError
from realtime.rest.models import (
    ClientSecretResponse,
    RealtimeSessionResponse,
    RestModel,
    TranscriptionSessionResponse,
)

__all__ = [
    "EphemeralKey",
    "SessionConfigLike",
    "TranslationClientSecret",
    "client_secret_request",
    "key_from_client_secret",
    "key_from_session",
    "key_from_translation_secret",
    "session_payload",
    "translation_secret_request",
]


@runtime_checkable
class SessionConfigLike(Protocol):
    """Anything that can write itself as a wire ``session`` (``realtime.events.SessionConfig``)."""

    def to_wire(self, dialect: Any) -> dict[str, Any]:
        """The ``session`` object in ``dialect`` ("beta" or "ga")."""
        ...


class EphemeralKey(RestModel):
    """A short-lived realtime key: :attr:`value` is the key, :attr:`expires_at` a Unix time.

    The value never shows in ``repr``; ``session`` holds the session the server
    configured for it.
    """

    value: str = Field(repr=False)
    expires_at: int
    session: dict[str, Any] = Field(default_factory=dict, repr=False)

    @property
    def expires_in(self) -> float:
        """Seconds left before the key expires (negative once expired)."""
        return self.expires_at - time.time()

    @property
    def expired(self) -> bool:
        """True once the expiry time has passed."""
        return self.expires_in <= 0


def session_payload(
    session: SessionConfigLike | Mapping[str, Any] | None, dialect: str, **overrides: Any
) -> dict[str, Any]:
    """The ``session`` object of a key request from a config object or a plain mapping.

    ``overrides`` (None values dropped) are merged on top. ConfigError for anything else.
    """
    if session is None:
        payload: dict[str, Any] = {}
    elif isinstance(session, Mapping):
        payload = dict(session)
    elif isinstance(session, SessionConfigLike):
        payload = dict(session.to_wire(dialect))
    else:
        raise ConfigError(
            f"session must be a mapping or a SessionConfig, got {type(session).__name__}"
        )
    payload.update({k: v for k, v in overrides.items() if v is not None})
    return payload


def client_secret_request(
    session: SessionConfigLike | Mapping[str, Any] | None,
    *,
    expires_after_seconds: int | None = None,
    session_type: str = "realtime",
) -> dict[str, Any]:
    """The body of ``POST /realtime/client_secrets`` (GA).

    ``session_type`` ("realtime" or "transcription") is used when the session does not
    name its type. ConfigError for an expiry outside 10..7200 seconds.
    """
    payload = session_payload(session, "ga")
    payload.setdefault("type", session_type)
    body: dict[str, Any] = {"session": payload}
    if expires_after_seconds is not None:
        body["expires_after"] = _expires_after(expires_after_seconds)
    return body


def _expires_after(seconds: int) -> dict[str, Any]:
    if not 10 <= seconds <= 7200:
        raise ConfigError(f"expires_after_seconds must be within 10..7200, got {seconds}")
    return {"anchor": "created_at", "seconds": seconds}


class TranslationClientSecret(RestModel):
    """The response of ``POST /realtime/translations/client_secrets``."""

    value: str = Field(repr=False)
    expires_at: int
    session: TranslationSession


def translation_secret_request(
    session: TranslationSessionConfig | Mapping[str, Any] | None,
    *,
    model: str | None = None,
    expires_after_seconds: int | None = None,
) -> dict[str, Any]:
    """The body of ``POST /realtime/translations/client_secrets``.

    ``model`` fills in the session's model when it names none (it is required).
    ConfigError for an expiry outside 10..7200 seconds, a session without a model, or an
    input audio format other than 24 kHz PCM16.
    """
    if isinstance(session, TranslationSessionConfig):
        payload = session.model_dump(mode="json", exclude_unset=True)
    else:
        payload = session_payload(session, "ga")
    if model is not None:
        payload.setdefault("model", model)
    if not payload.get("model"):
        raise ConfigError("a translation session needs a model (model=)")
    problem = unsupported_format(payload)
    if problem is not None:
        raise ConfigError(problem)
    body: dict[str, Any] = {"session": payload}
    if expires_after_seconds is not None:
        body["expires_after"] = _expires_after(expires_after_seconds)
    return body


def key_from_translation_secret(response: TranslationClientSecret) -> EphemeralKey:
    """The key of a translation client-secret response (``session`` as a plain dict)."""
    return EphemeralKey(
        value=response.value,
        expires_at=response.expires_at,
        session=response.session.model_dump(mode="json", exclude_unset=True),
    )


def key_from_session(
    response: RealtimeSessionResponse | TranscriptionSessionResponse,
) -> EphemeralKey:
    """The key of a beta session response (its ``client_secret``)."""
    session = response.model_dump(exclude={"client_secret"})
    return EphemeralKey(
        value=response.client_secret.value,
        expires_at=response.client_secret.expires_at,
        session=session,
    )


def key_from_client_secret(response: ClientSecretResponse) -> EphemeralKey:
    """The key of a GA client-secret response."""
    return EphemeralKey(
        value=response.value, expires_at=response.expires_at, session=response.session
    )
