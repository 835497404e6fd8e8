"""SIP call control on the local server, and incoming calls simulated from a WAV file.

Routes (GA):

- ``POST /v1/realtime/calls/{call_id}/accept`` (body: a GA realtime session),
  ``/reject`` (optional ``status_code``, default 603), ``/refer`` (``target_uri``),
  ``/hangup``: 200 with an empty JSON object; 404 for an unknown call, 400 for a bad
  body or an action the call's state does not allow (accepting twice, referring a
  ringing call, ...), 401 without a valid key.
- ``WS /v1/realtime?call_id=...``: the realtime session of an accepted call (see
  :class:`CallLeg`): it starts with the accepted configuration and the caller's audio
  streams into it in real time, followed by line silence; the assistant's audio is
  recorded as what the caller heard. Closing that socket does not end the call (another
  may attach); ``hangup`` does, closing the socket.

:func:`simulate_incoming_call` creates a ringing call whose caller speaks a WAV file and
POSTs the ``realtime.call.incoming`` webhook, signed with the registry's Standard
Webhooks secret, to the URL given. The registry (:class:`CallRegistry`) is
``ServerState.calls``; it keeps at most ``max_calls`` calls (the oldest finished ones
are forgotten first) and a call left ringing for ``ring_seconds`` is missed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from audio import pcm as pcm_mod
from audio.wav import read_wav

from ..events.calls import CallReferRequest, CallRejectRequest
from ..events.config import SessionConfig
from ..telephony.webhooks import new_webhook_secret, webhook_headers
from .auth import credential_from

if TYPE_CHECKING:
    from .session import ServerSession
    from .state import ServerState

__all__ = [
    "CallLeg",
    "CallRegistry",
    "LocalCall",
    "call_routes",
    "simulate_incoming_call",
]

_FRAME_MS = 20
_OUTPUT_DELTAS = frozenset({"response.output_audio.delta"})
_TRANSCRIPTS = frozenset({"response.output_audio_transcript.done", "response.output_text.done"})


@dataclass(eq=False)
class LocalCall:
    """One simulated SIP call and everything that happened to it.

    ``status``: ``ringing`` -> ``accepted`` -> ``active`` (a session is attached) ->
    ``ended``; or ``rejected``, ``referred``, ``missed``.
    """

    call_id: str
    caller: bytes  # PCM16 24 kHz mono: what the caller says once connected
    sip_headers: list[dict[str, str]]
    status: str = "ringing"
    config: dict[str, Any] | None = None
    reject_status: int | None = None
    refer_target: str | None = None
    webhook_status: int | None = None
    heard: bytearray = field(default_factory=bytearray)  # PCM16 24 kHz the caller heard
    transcripts: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    leg: CallLeg | None = None

    @property
    def heard_ms(self) -> float:
        """Milliseconds of assistant audio the caller heard."""
        return len(self.heard) / 48.0

    def finish(self, status: str) -> None:
        """Move to a final status (once)."""
        if not self.ended.is_set():
            self.status = status
            self.ended.set()


class CallLeg:
    """The caller's side of an attached call: feeds the caller's audio, records the replies."""

    def __init__(self, call: LocalCall, *, pace: bool = True) -> None:
        self.call = call
        self.pace = pace
        self._session: ServerSession | None = None
        self._feeder: asyncio.Task[None] | None = None
        self._close: Callable[[], Awaitable[None]] | None = None
        self._decoder: pcm_mod.StreamDecoder | None = None

    async def configure(self, session: ServerSession) -> None:
        """Before ``session.created``: apply the configuration the call was accepted with."""
        self._session = session
        if self.call.config:
            await session.apply_initial(self.call.config)

    def connect(self, close: Callable[[], Awaitable[None]]) -> None:
        """After ``session.created``: the caller is on the line; ``close`` ends the socket."""
        self._close = close
        self.call.status = "active"
        self._feeder = asyncio.create_task(self._feed())

    def observe(self, event: Mapping[str, Any]) -> None:
        """Every event the session emits: reply audio goes to the caller's ear."""
        kind = event.get("type")
        if kind in _OUTPUT_DELTAS and self._session is not None:
            fmt = self._session.config.output_format
            if self._decoder is None or self._decoder.format != fmt:
                self._decoder = pcm_mod.StreamDecoder(fmt)  # type: ignore[arg-type]
            self.call.heard += self._decoder.decode(base64.b64decode(str(event.get("delta", ""))))
        elif kind in _TRANSCRIPTS:
            text = event.get("transcript", event.get("text"))
            if isinstance(text, str):
                self.call.transcripts.append(text)

    async def end(self, status: str) -> None:
        """The call ends from the service side (hang-up, refer): close the socket."""
        self.call.finish(status)
        if self._close is not None:
            await self._close()

    async def detach(self) -> None:
        """The WebSocket closed: stop the caller's audio. The call itself goes on (the
        socket only controls it) until hung up: another socket may attach."""
        if self._feeder is not None:
            self._feeder.cancel()
            await asyncio.gather(self._feeder, return_exceptions=True)
        if self.call.leg is self:
            self.call.leg = None
        if self.call.status == "active":
            self.call.status = "accepted"

    async def _feed(self) -> None:
        session = self._session
        assert session is not None
        loop = asyncio.get_running_loop()
        step = _FRAME_MS * 48
        speech = self.call.caller
        silence = bytes(step)
        n = 0
        next_t = loop.time()
        while not self.call.ended.is_set():
            chunk = speech[n * step : (n + 1) * step] or silence
            n += 1
            fmt = session.config.input_format
            data = chunk if fmt == "pcm16" else pcm_mod.encode(chunk, fmt)  # type: ignore[arg-type]
            frame = {"type": "input_audio_buffer.append", "audio": base64.b64encode(data).decode()}
            await session.handle(json.dumps(frame))
            if self.pace:
                next_t += _FRAME_MS / 1000.0
                await asyncio.sleep(max(0.0, next_t - loop.time()))
            elif n * step >= len(speech) + 48 * 2000:  # unpaced: 2 s of silence is enough
                return
            else:
                await asyncio.sleep(0)


class CallRegistry:
    """The local server's calls, and the webhook secret it signs with."""

    def __init__(
        self, secret: str | None = None, *, max_calls: int = 256, ring_seconds: float = 60.0
    ) -> None:
        self.secret = secret or new_webhook_secret()
        self.max_calls = max_calls
        self.ring_seconds = ring_seconds
        self.calls: dict[str, LocalCall] = {}

    def __repr__(self) -> str:
        return f"CallRegistry(calls={len(self.calls)})"

    def new_call(self, caller: bytes, sip_headers: Sequence[Mapping[str, str]] = ()) -> LocalCall:
        """A ringing call (the oldest finished calls make room when the registry is full)."""
        if len(self.calls) >= self.max_calls:
            for call_id, old in list(self.calls.items()):
                if old.ended.is_set():
                    del self.calls[call_id]
                if len(self.calls) < self.max_calls:
                    break
            if len(self.calls) >= self.max_calls:
                raise RuntimeError(f"too many calls in progress (limit {self.max_calls})")
        call = LocalCall("rtc_" + secrets.token_hex(16), caller, [dict(h) for h in sip_headers])
        self.calls[call.call_id] = call
        loop = asyncio.get_running_loop()
        loop.call_later(self.ring_seconds, self._missed, call)
        return call

    def _missed(self, call: LocalCall) -> None:
        if call.status == "ringing":
            call.finish("missed")

    def get(self, call_id: str) -> LocalCall | None:
        """The call with this id, or ``None``."""
        return self.calls.get(call_id)

    def attach(self, call_id: str) -> CallLeg | None:
        """A leg for a WebSocket attaching to an accepted call; ``None`` when not possible."""
        call = self.calls.get(call_id)
        if call is None or call.status != "accepted" or call.leg is not None:
            return None
        call.leg = CallLeg(call)
        return call.leg


def _error(status: int, message: str, code: str, param: str | None = None) -> Response:
    body = {
        "error": {"message": message, "type": "invalid_request_error", "code": code, "param": param}
    }
    return JSONResponse(body, status_code=status)


async def _prepare(request: Request) -> tuple[LocalCall, Any] | Response:
    """Authenticate, find the call, read the JSON body (``None`` when empty)."""
    state: ServerState = request.app.state.server
    ok, eph = state.keys.check(credential_from(request.headers))
    if not ok or eph is not None:
        return _error(401, "Incorrect API key provided.", "invalid_api_key")
    call_id = request.path_params["call_id"]
    call = state.calls.get(call_id)
    if call is None:
        return _error(404, f"No call with id '{call_id[:80]}'.", "call_not_found", "call_id")
    raw = await request.body()
    if not raw:
        return call, None
    try:
        body = json.loads(raw)
    except ValueError:
        return _error(400, "The body is not valid JSON.", "invalid_json")
    if not isinstance(body, dict):
        return _error(400, "The body must be a JSON object.", "invalid_json")
    return call, body


def _state_error(call: LocalCall, action: str) -> Response:
    return _error(400, f"Cannot {action} a call that is {call.status}.", "invalid_call_state")


async def accept(request: Request) -> Response:
    """``POST /v1/realtime/calls/{call_id}/accept``."""
    got = await _prepare(request)
    if isinstance(got, Response):
        return got
    call, body = got
    if body is None:
        return _error(400, "Missing the session configuration.", "missing_required_parameter")
    if body.get("type") != "realtime":
        return _error(
            400, "A call is accepted with a session of type 'realtime'.", "invalid_type", "type"
        )
    try:
        SessionConfig.from_wire(body, "ga")
    except Exception as exc:  # ConfigError and pydantic errors: the body is not a session
        return _error(400, f"Invalid session: {exc}", "invalid_session")
    if call.status != "ringing":
        return _state_error(call, "accept")
    call.config = body
    call.status = "accepted"
    return JSONResponse({})


async def reject(request: Request) -> Response:
    """``POST /v1/realtime/calls/{call_id}/reject``."""
    got = await _prepare(request)
    if isinstance(got, Response):
        return got
    call, body = got
    try:
        parsed = CallRejectRequest.model_validate(body or {})
    except ValidationError:
        return _error(
            400, "status_code must be a SIP status (100..699).", "invalid_value", "status_code"
        )
    if call.status != "ringing":
        return _state_error(call, "reject")
    call.reject_status = parsed.status_code or 603
    call.finish("rejected")
    return JSONResponse({})


async def refer(request: Request) -> Response:
    """``POST /v1/realtime/calls/{call_id}/refer``."""
    got = await _prepare(request)
    if isinstance(got, Response):
        return got
    call, body = got
    try:
        parsed = CallReferRequest.model_validate(body or {})
    except ValidationError:
        return _error(
            400, "target_uri must be a tel:, sip: or sips: URI.", "invalid_value", "target_uri"
        )
    if call.status not in ("accepted", "active"):
        return _state_error(call, "refer")
    call.refer_target = parsed.target_uri
    if call.leg is not None:
        await call.leg.end("referred")
    call.finish("referred")
    return JSONResponse({})


async def hangup(request: Request) -> Response:
    """``POST /v1/realtime/calls/{call_id}/hangup``."""
    got = await _prepare(request)
    if isinstance(got, Response):
        return got
    call, _ = got
    if call.status not in ("accepted", "active"):
        return _state_error(call, "hang up")
    if call.leg is not None:
        await call.leg.end("ended")
    call.finish("ended")
    return JSONResponse({})


def call_routes() -> list[Route]:
    """The call-control routes (``/v1/realtime/calls/{call_id}/...``)."""
    base = "/v1/realtime/calls/{call_id}/"
    return [
        Route(base + "accept", accept, methods=["POST"]),
        Route(base + "reject", reject, methods=["POST"]),
        Route(base + "refer", refer, methods=["POST"]),
        Route(base + "hangup", hangup, methods=["POST"]),
    ]


def incoming_call_event(call: LocalCall) -> dict[str, Any]:
    """The ``realtime.call.incoming`` webhook event of a call."""
    return {
        "id": "evt_" + secrets.token_hex(12),
        "object": "event",
        "type": "realtime.call.incoming",
        "created_at": int(call.created_at),
        "data": {"call_id": call.call_id, "sip_headers": call.sip_headers},
    }


async def simulate_incoming_call(
    state: ServerState,
    webhook_url: str,
    caller: str | Path | bytes,
    *,
    sip_headers: Sequence[Mapping[str, str]] | None = None,
    timeout: float = 10.0,
) -> LocalCall:
    """Ring: a call whose caller says ``caller`` (a WAV file, or PCM16 24 kHz mono).

    POSTs the signed ``realtime.call.incoming`` webhook to ``webhook_url`` and returns the
    call once the webhook was answered (its status in ``webhook_status``; ``None`` when the
    URL could not be reached). The application then accepts, rejects, ...
    """
    import httpx

    pcm = caller if isinstance(caller, bytes) else read_wav(caller)
    headers = sip_headers or [
        {"name": "From", "value": '"Caller" <sip:+15550100@sip.example.com>'},
        {"name": "To", "value": "<sip:+15550199@sip.api.openai.com>"},
        {"name": "Call-ID", "value": secrets.token_hex(8) + "@sip.example.com"},
    ]
    call = state.calls.new_call(pcm, headers)
    body = json.dumps(incoming_call_event(call)).encode()
    signed = webhook_headers(state.calls.secret, body)
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.post(
                webhook_url, content=body, headers={**signed, "content-type": "application/json"}
            )
        call.webhook_status = response.status_code
    except httpx.HTTPError:
        call.webhook_status = None
    return call
