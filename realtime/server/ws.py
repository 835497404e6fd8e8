"""The realtime WebSocket route: one :class:`~.session.ServerSession` per connection.

``WS /v1/realtime?model=…``: GA dialect by default; beta when the client sends
``OpenAI-Beta: realtime=v1`` (or the ``openai-beta.realtime-v1`` subprotocol);
``?intent=transcription`` opens a transcription-only session. A handshake is refused with an
HTTP response (401 bad key, 503 over ``Limits.max_sessions``) — never by returning without
completing it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .auth import credential_from
from .call_registry import CallLeg
from .session import ServerSession
from .state import ServerState, error_body, frame_text
from .wire import ServerDialect

__all__ = ["deny", "finish_connection", "realtime_endpoint", "refuse_when_full"]

log = logging.getLogger("realtime.server")

FLUSH_SECONDS = 2.0


def _dialect(ws: WebSocket) -> ServerDialect:
    beta = ws.headers.get("openai-beta", "")
    protos = ws.scope.get("subprotocols") or []
    if "realtime=v1" in beta.replace(" ", "") or "openai-beta.realtime-v1" in protos:
        return "beta"
    return "ga"


async def deny(ws: WebSocket, status: int, message: str, code: str, close_code: int) -> None:
    """Refuse a handshake with an HTTP error; servers without the denial extension get the
    handshake accepted and closed with ``close_code`` (4001 unauthorized, 1013 try later)."""
    if "websocket.http.response" in (ws.scope.get("extensions") or {}):
        state: ServerState = ws.app.state.server
        state.refusal_noise.expect()
        await ws.send_denial_response(JSONResponse(error_body(message, code), status_code=status))
        return
    await ws.accept()
    await ws.close(close_code, code)


async def refuse_when_full(ws: WebSocket, state: ServerState) -> bool:
    """Refuse the handshake (HTTP 503, else close 1013) when ``Limits.max_sessions``
    sessions are open; True when refused."""
    if state.open_sessions < state.limits.max_sessions:
        return False
    state.refusals.warning(
        "sessions", "refused a realtime connection: %d sessions open", state.open_sessions
    )
    await deny(
        ws,
        503,
        f"The server has reached its limit of {state.limits.max_sessions} sessions; "
        "try again later.",
        "server_busy",
        1013,
    )
    return True


async def realtime_endpoint(ws: WebSocket) -> None:
    """The realtime WebSocket (see the module docstring)."""
    state: ServerState = ws.app.state.server
    protos = list(ws.scope.get("subprotocols") or [])
    ok, eph = state.keys.check(credential_from(ws.headers, protos))
    if not ok:
        state.refusals.warning("auth", "refused a realtime connection: bad credentials")
        await deny(ws, 401, "Incorrect API key provided.", "invalid_api_key", 4001)
        return
    if await refuse_when_full(ws, state):
        return
    dialect = _dialect(ws)
    if eph is not None and eph.dialect == "beta":
        dialect = "beta"
    call_id = ws.query_params.get("call_id")  # a SIP call's session (see .calls)
    leg = state.calls.attach(call_id) if call_id is not None else None
    if call_id is not None and leg is None:
        await deny(ws, 404, "No accepted call with this id.", "call_not_found", 1008)
        return

    def emit(event: dict[str, Any]) -> Awaitable[None]:
        if leg is not None:
            leg.observe(event)
        return queue.put(frame_text(event))

    session = ServerSession(
        dialect=dialect,
        emit=emit,
        engines=state.engines,
        responder=state.responder,
        model=ws.query_params.get("model") or "gpt-realtime",
        transcription_only=ws.query_params.get("intent") == "transcription",
        limits=state.limits,
        budget=state.budget,
    )
    state.sessions.add(session)  # counted before the accept's await: the limit holds
    queue: asyncio.Queue[str | None] = asyncio.Queue(state.send_queue_size)
    try:
        await ws.accept(subprotocol="realtime" if "realtime" in protos else None)
        minted = dict(eph.session) if eph is not None and eph.session else None
        await _serve(ws, session, queue, state, minted, leg)
    finally:
        state.sessions.discard(session)
        await session.close()


async def _serve(
    ws: WebSocket,
    session: ServerSession,
    queue: asyncio.Queue[str | None],
    state: ServerState,
    minted: dict[str, Any] | None,
    leg: CallLeg | None,
) -> None:
    async def writer() -> None:
        while (text := await queue.get()) is not None:
            try:
                await ws.send_text(text)
            except (WebSocketDisconnect, OSError):  # the client is gone (uvicorn: OSError)
                return

    writer_task = asyncio.create_task(writer())

    async def expire() -> None:
        await asyncio.sleep(state.limits.session_seconds)
        await session.expire()
        await finish_connection(ws, queue, writer_task, 1001, "session_expired")

    expiry = asyncio.create_task(expire())
    try:
        if minted:  # the configuration the ephemeral key was minted with
            await session.apply_initial(minted)
        if leg is not None:
            await leg.configure(session)
        await session.start()
        if leg is not None:
            leg.connect(lambda: ws.close(1000, "call ended"))
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                break
            frame = msg.get("text")
            if frame is None:
                frame = msg.get("bytes")
            if frame is not None and not session.expired:
                await session.handle(frame)
    finally:
        expiry.cancel()
        if leg is not None:
            await leg.detach()
        await session.close()
        await finish_connection(ws, queue, writer_task, 1000, "")


async def finish_connection(
    ws: WebSocket,
    queue: asyncio.Queue[str | None],
    writer_task: asyncio.Task[None],
    code: int,
    reason: str,
) -> None:
    """Flush what is queued (bounded in time), then close the connection if it is open."""
    if not writer_task.done():
        try:
            queue.put_nowait(None)
        except asyncio.QueueFull:
            writer_task.cancel()  # a client not reading: what it has not taken is dropped
        done, _ = await asyncio.wait([writer_task], timeout=FLUSH_SECONDS)
        if not done:
            writer_task.cancel()
            await asyncio.wait([writer_task])  # returns once it ends; never raises
    if (
        ws.application_state == WebSocketState.CONNECTED
        and ws.client_state == WebSocketState.CONNECTED
    ):
        try:
            await ws.close(code, reason)
        except OSError:  # the client went away meanwhile (uvicorn's ClientDisconnected)
            log.debug("the client left before the close frame")
