"""Routes minting ephemeral keys: GA ``POST /v1/realtime/client_secrets`` and the beta
``POST /v1/realtime/sessions`` / ``POST /v1/realtime/transcription_sessions``.

The session configuration is validated when the key is minted (the values the realtime
WebSocket would refuse are refused here, with a 400), so a minted key always opens a session.
Every malformed body gets a 4xx with the service's error body.
"""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .exceptions import ClientInputError, InvalidValue
from .state import (
    ServerState,
    client_error_response,
    read_json_body,
    request_credential,
    unauthorized,
)
from .validation import check_session

__all__ = ["beta_sessions", "client_secrets"]

MIN_SECONDS, MAX_SECONDS, DEFAULT_SECONDS = 10, 7200, 600


async def client_secrets(request: Request) -> Response:
    """GA ``POST /v1/realtime/client_secrets``: an ephemeral key and its session."""
    state: ServerState = request.app.state.server
    if not _may_mint(request, state):
        return unauthorized()
    try:
        body = await read_json_body(request, state.limits)
        seconds = _expiry_seconds(body.get("expires_after"))
        session = body.get("session", {"type": "realtime"})
        if session is None:
            session = {"type": "realtime"}
        check_session(session, "ga", param="session")
    except ClientInputError as exc:
        return client_error_response(exc)
    key = state.keys.mint(seconds, session=session, dialect="ga")
    return JSONResponse({"value": key.value, "expires_at": key.expires_at, "session": session})


async def beta_sessions(request: Request) -> Response:
    """Beta ``POST /v1/realtime/sessions`` and ``/transcription_sessions``."""
    state: ServerState = request.app.state.server
    if not _may_mint(request, state):
        return unauthorized()
    try:
        body = await read_json_body(request, state.limits)
        check_session(body, "beta", param="")
    except ClientInputError as exc:
        return client_error_response(exc)
    transcription = request.url.path.endswith("transcription_sessions")
    session = dict(body)
    if transcription:
        session.setdefault("type", "transcription")
    key = state.keys.mint(60, session=session, dialect="beta")
    obj = "realtime.transcription_session" if transcription else "realtime.session"
    out = {
        "id": "sess_" + key.value[3:15],
        "object": obj,
        **session,
        "client_secret": {"value": key.value, "expires_at": key.expires_at},
    }
    out.pop("type", None)
    return JSONResponse(out)


def _may_mint(request: Request, state: ServerState) -> bool:
    ok, eph = request_credential(request, state)
    return ok and eph is None  # ephemeral keys cannot mint more keys


def _expiry_seconds(value: Any) -> int:
    """``expires_after``: ``{"anchor": "created_at", "seconds": 10..7200}`` (default 600)."""
    if value is None:
        return DEFAULT_SECONDS
    if not isinstance(value, dict):
        raise InvalidValue("'expires_after' must be an object.", param="expires_after")
    anchor = value.get("anchor", "created_at")
    if anchor != "created_at":
        raise InvalidValue(
            f"Invalid value: {str(anchor)[:40]!r}. Supported values are: 'created_at'.",
            param="expires_after.anchor",
        )
    seconds = value.get("seconds", DEFAULT_SECONDS)
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not math.isfinite(seconds)
        or not MIN_SECONDS <= seconds <= MAX_SECONDS
    ):
        raise InvalidValue(
            f"'expires_after.seconds' must be a number from {MIN_SECONDS} to {MAX_SECONDS}.",
            param="expires_after.seconds",
        )
    return int(seconds)
