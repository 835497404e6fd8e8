"""The local server's ASGI application (Starlette): the realtime WebSocket and the REST routes.

Routes (all under ``/v1``):

- ``WS /v1/realtime?model=…`` — GA dialect by default; beta when the client sends
  ``OpenAI-Beta: realtime=v1`` (or the ``openai-beta.realtime-v1`` subprotocol);
  ``?intent=transcription`` opens a transcription-only session.
- ``POST /v1/audio/transcriptions``, ``POST /v1/audio/translations``, ``POST /v1/audio/speech``
  (see :mod:`.rest`).
- ``POST /v1/realtime/client_secrets`` (GA) and ``POST /v1/realtime/sessions`` /
  ``POST /v1/realtime/transcription_sessions`` (beta): mint ephemeral keys.
- ``WS /v1/realtime/translations`` and ``POST /v1/realtime/translations/client_secrets``:
  translation sessions (see :mod:`.translation`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .auth import KeyStore, credential_from
from .engine_set import EngineSet
from .responders import EchoResponder, Responder
from .rest import rest_routes
from .session import Limits, ServerSession
from .translation import translation_routes
from .translators import Translator
from .wire import ServerDialect

__all__ = ["ServerState", "create_app"]

log = logging.getLogger("realtime.server")


@dataclass
class ServerState:
    """What every connection shares: engines, responder, credentials, limits, counters."""

    engines: EngineSet = field(default_factory=EngineSet)
    responder: Responder = field(default_factory=EchoResponder)
    keys: KeyStore = field(default_factory=KeyStore)
    limits: Limits = field(default_factory=Limits)
    sessions: set[ServerSession] = field(default_factory=set)
    send_queue_size: int = 1024
    translator: Translator | None = None


def _dialect(ws: WebSocket) -> ServerDialect:
    beta = ws.headers.get("openai-beta", "")
    protos = ws.scope.get("subprotocols") or []
    if "realtime=v1" in beta.replace(" ", "") or "openai-beta.realtime-v1" in protos:
        return "beta"
    return "ga"


def _error_body(message: str, code: str, type_: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": code, "param": None}}


async def realtime_endpoint(ws: WebSocket) -> None:
    """The realtime WebSocket: one :class:`ServerSession` per connection."""
    state: ServerState = ws.app.state.server
    protos = list(ws.scope.get("subprotocols") or [])
    ok, eph = state.keys.check(credential_from(ws.headers, protos))
    if not ok:
        await _deny(ws, 401, "Incorrect API key provided.", "invalid_api_key")
        return
    dialect = _dialect(ws)
    if eph is not None and eph.dialect == "beta":
        dialect = "beta"
    model = ws.query_params.get("model") or "gpt-realtime"
    transcription = ws.query_params.get("intent") == "transcription"
    await ws.accept(subprotocol="realtime" if "realtime" in protos else None)

    queue: asyncio.Queue[str | None] = asyncio.Queue(state.send_queue_size)

    async def emit(event: dict[str, Any]) -> None:
        await queue.put(json.dumps(event, separators=(",", ":")))

    async def writer() -> None:
        while True:
            text = await queue.get()
            if text is None:
                return
            await ws.send_text(text)

    session = ServerSession(
        dialect=dialect,
        emit=emit,
        engines=state.engines,
        responder=state.responder,
        model=model,
        transcription_only=transcription,
        limits=state.limits,
    )
    state.sessions.add(session)
    writer_task = asyncio.create_task(writer())
    close_code, close_reason = 1000, ""

    async def expire() -> None:
        await asyncio.sleep(state.limits.session_seconds)
        await session.expire()
        await asyncio.sleep(0.05)  # let the writer flush the error first
        await queue.put(None)
        await writer_task
        with contextlib.suppress(BaseException):
            await ws.close(1001, "session_expired")

    expiry = asyncio.create_task(expire())
    try:
        if eph is not None and eph.session:
            await session.apply_initial(eph.session)
        await session.start()
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                break
            frame = msg.get("text")
            if frame is None and msg.get("bytes") is not None:
                frame = msg["bytes"].decode("utf-8", "replace")
            if frame is not None and not session.expired:
                await session.handle(frame)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        expiry.cancel()
        state.sessions.discard(session)
        await session.close()
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(None)
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(writer_task, 2.0)
        writer_task.cancel()
        if ws.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(BaseException):
                await ws.close(close_code, close_reason)


async def _deny(ws: WebSocket, status: int, message: str, code: str) -> None:
    """Refuse a WebSocket handshake with an HTTP error (or close 4001 where unsupported)."""
    try:
        await ws.send_denial_response(JSONResponse(_error_body(message, code), status_code=status))
    except RuntimeError:
        await ws.close(4001, code)


async def client_secrets(request: Request) -> Response:
    """GA ``POST /v1/realtime/client_secrets``: an ephemeral key and its session."""
    state: ServerState = request.app.state.server
    if not _authorized(request, state):
        return JSONResponse(_error_body("Incorrect API key provided.", "invalid_api_key"), 401)
    body = await _json_body(request)
    if isinstance(body, Response):
        return body
    expires = body.get("expires_after") or {}
    seconds = int(expires.get("seconds", 600)) if isinstance(expires, dict) else 600
    session = body.get("session") or {"type": "realtime"}
    key = state.keys.mint(seconds, session=session, dialect="ga")
    return JSONResponse({"value": key.value, "expires_at": key.expires_at, "session": session})


async def beta_sessions(request: Request) -> Response:
    """Beta ``POST /v1/realtime/sessions`` and ``/transcription_sessions``."""
    state: ServerState = request.app.state.server
    if not _authorized(request, state):
        return JSONResponse(_error_body("Incorrect API key provided.", "invalid_api_key"), 401)
    body = await _json_body(request)
    if isinstance(body, Response):
        return body
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


def _authorized(request: Request, state: ServerState) -> bool:
    ok, eph = state.keys.check(credential_from(request.headers))
    return ok and eph is None  # ephemeral keys cannot mint more keys


async def _json_body(request: Request) -> dict[str, Any] | Response:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return JSONResponse(_error_body("The body is not valid JSON.", "invalid_json"), 400)
    if not isinstance(data, dict):
        return JSONResponse(_error_body("The body must be a JSON object.", "invalid_json"), 400)
    return data


def create_app(state: ServerState | None = None) -> Starlette:
    """The ASGI app serving one :class:`ServerState`."""
    app = Starlette(
        routes=[
            WebSocketRoute("/v1/realtime", realtime_endpoint),
            Route("/v1/realtime/client_secrets", client_secrets, methods=["POST"]),
            Route("/v1/realtime/sessions", beta_sessions, methods=["POST"]),
            Route("/v1/realtime/transcription_sessions", beta_sessions, methods=["POST"]),
            *rest_routes(),
            *translation_routes(),
        ]
    )
    app.state.server = state or ServerState()
    return app
