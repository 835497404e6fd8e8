"""The local server over WebRTC: the same session engine, reached by an SDP exchange.

Routes (see :func:`webrtc_routes`):

- GA ``POST /v1/realtime/calls``: ``multipart/form-data`` with ``sdp`` (the offer) and
  ``session`` (the session configuration, JSON), or ``application/sdp`` authenticated with an
  ephemeral key (whose session configuration applies). ``201`` with the SDP answer; the
  ``Location`` header names the call (``/v1/realtime/calls/{call_id}``).
- ``POST /v1/realtime/calls/{call_id}/hangup``: end a call.
- Beta ``POST /v1/realtime?model=…``: ``application/sdp`` in, the answer out (beta dialect).

A call is one :class:`~.session.ServerSession` (VAD, speech recognition, responders, speech
synthesis, exactly as over the WebSocket) behind a narrow adapter, :class:`WebRTCCall`:
client events arrive on the data channel ``oai-events`` and server events leave on it,
except the reply audio, which is played into the call's outgoing Opus track in real time
(:class:`PlayoutTrack` over :class:`~.playout.OutputAudioBuffer`); the server then reports
playback with ``output_audio_buffer.started/stopped/cleared`` (in both dialects, as the
service does over WebRTC) and honours ``output_audio_buffer.clear``. The incoming track is
resampled to 24 kHz PCM16 and fed to the session as if appended.

Bounds: at most :data:`MAX_CALLS` calls at a time (``429`` beyond), an input queue of
:data:`INBOX_SIZE` entries (audio frames are dropped when it is full, events get an error),
SDP offers of at most 64 KiB, and a call whose data channel has not opened after
:data:`SETUP_TIMEOUT_S` is ended. Needs the ``webrtc`` extra (``aiortc``); without it the
routes answer ``501`` naming the extra.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fractions
import json
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from audio import pcm as pcm_mod

from ..exceptions import ConfigError
from .auth import EphemeralKey, credential_from
from .calls import hangup as sip_hangup
from .playout import OutputAudioBuffer
from .session import ServerSession
from .store import StoreError
from .wire import ServerDialect, new_id

if TYPE_CHECKING:
    from aiortc import RTCDataChannel, RTCPeerConnection
    from aiortc.mediastreams import MediaStreamTrack

    from .state import ServerState

__all__ = ["INBOX_SIZE", "MAX_CALLS", "PlayoutTrack", "WebRTCCall", "webrtc_routes"]

log = logging.getLogger("realtime.server.webrtc")

MAX_CALLS = 32
INBOX_SIZE = 1024
MAX_SDP_BYTES = 64 * 1024
SETUP_TIMEOUT_S = 30.0
FRAME_MS = 20
SAMPLE_RATE = 24000
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
DATA_CHANNEL = "oai-events"
_AUDIO_DELTAS = ("response.output_audio.delta", "response.audio.delta")
_AUDIO_DONE = ("response.output_audio.done", "response.audio.done")


def _error(message: str, code: str, status: int, type_: str = "invalid_request_error") -> Response:
    body = {"error": {"message": message, "type": type_, "code": code, "param": None}}
    return JSONResponse(body, status_code=status)


def aiortc_missing() -> str | None:
    """Why WebRTC is unavailable (``None`` when ``aiortc`` imports)."""
    try:
        import aiortc  # noqa: F401
    except ImportError as exc:
        return f"WebRTC needs the 'webrtc' extra: pip install 'realtime-voice[webrtc]' ({exc})"
    return None


def _make_playout_track(buffer: OutputAudioBuffer, on_events: Any) -> MediaStreamTrack:
    import av
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    class _Track(MediaStreamTrack):
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self._start: float | None = None
            self._pts = 0

        async def recv(self) -> av.AudioFrame:
            if self.readyState != "live":
                raise MediaStreamError
            now = time.monotonic()
            if self._start is None:
                self._start = now
            else:
                wait = self._start + self._pts / SAMPLE_RATE - now
                if wait > 0:
                    await asyncio.sleep(wait)
                elif wait < -0.5:  # fell far behind (a stalled loop): do not burst
                    self._start = now - self._pts / SAMPLE_RATE
            pcm, events = buffer.pull(FRAME_SAMPLES * 2)
            if events:
                on_events(events)
            samples = np.frombuffer(pcm, np.int16).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = self._pts
            frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
            self._pts += FRAME_SAMPLES
            return frame

    return _Track()


PlayoutTrack = _make_playout_track
"""Build the outgoing audio track playing an :class:`OutputAudioBuffer` in real time."""


class WebRTCCall:
    """One WebRTC call: a peer connection driving one :class:`ServerSession`."""

    def __init__(
        self,
        state: ServerState,
        *,
        dialect: ServerDialect,
        model: str,
        initial_session: Mapping[str, Any] | None,
    ) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection

        self.call_id = new_id("rtc")
        self.state = state
        self.dialect: ServerDialect = dialect
        self.pc: RTCPeerConnection = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.buffer = OutputAudioBuffer()
        self.channel: RTCDataChannel | None = None
        self._initial = dict(initial_session or {})
        self._inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(INBOX_SIZE)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = asyncio.Event()
        self._started = False
        self.dropped_frames = 0
        self.session = ServerSession(
            dialect=dialect,
            emit=self._emit,
            engines=state.engines,
            responder=state.responder,
            model=model,
            transcription_only=False,
            limits=state.limits,
        )
        self.pc.addTrack(_make_playout_track(self.buffer, self._send_all))
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_connection_state)

    # -- setup ----------------------------------------------------------------------------
    async def answer(self, offer_sdp: str) -> str:
        """Apply the offer; the answer SDP (with every local candidate gathered)."""
        from aiortc import RTCSessionDescription

        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        self._spawn(self._watch_setup())
        return str(self.pc.localDescription.sdp)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != DATA_CHANNEL or self.channel is not None:
            return
        self.channel = channel
        channel.on("message", self._on_message)
        channel.on("close", lambda: self._spawn(self.close()))
        self._spawn(self._run())

    def _on_message(self, message: str | bytes) -> None:
        text = message if isinstance(message, str) else message.decode("utf-8", "replace")
        try:
            self._inbox.put_nowait(("event", text))
        except asyncio.QueueFull:
            self._send(
                {
                    "type": "error",
                    "event_id": new_id("event"),
                    "error": {
                        "type": "invalid_request_error",
                        "code": "rate_limit_exceeded",
                        "message": "Too many events queued on this call; slow down.",
                        "param": None,
                        "event_id": None,
                    },
                }
            )

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._spawn(self._read_track(track))

    def _on_connection_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self._spawn(self.close())

    # -- input ----------------------------------------------------------------------------
    async def _read_track(self, track: MediaStreamTrack) -> None:
        import av
        from aiortc.mediastreams import MediaStreamError

        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            for out in resampler.resample(frame):  # type: ignore[arg-type]
                pcm = out.to_ndarray().astype(np.int16, copy=False).tobytes()
                try:
                    self._inbox.put_nowait(("audio", pcm))
                except asyncio.QueueFull:
                    self.dropped_frames += 1

    async def _run(self) -> None:
        """Start the session, then feed it the call's input in order (one consumer)."""
        s = self.session
        self.state.sessions.add(s)
        try:
            if self._initial:
                try:
                    await s.apply_initial(self._initial)
                except ConfigError as exc:
                    await s.error(str(exc), code="invalid_value", param="session")
            await s.start()
            self._started = True
            s.spawn(self._held_open())
            s.spawn(self._expire())
            while True:
                kind, payload = await self._inbox.get()
                if s.expired:
                    continue
                try:
                    if kind == "audio":
                        await self._append(payload)
                    else:
                        await self._on_client_event(payload)
                except Exception:  # a bug must not stall the call: log it, go on
                    log.exception("call %s: %s input failed", self.call_id, kind)
        finally:
            self.state.sessions.discard(s)

    async def _append(self, pcm: bytes) -> None:
        s = self.session
        fmt = s.config.input_format
        data = pcm if fmt == "pcm16" else pcm_mod.encode(pcm, fmt)  # type: ignore[arg-type]
        await s.on_append({"audio": base64.b64encode(data).decode("ascii")}, None)

    async def _watch_setup(self) -> None:
        """A call whose data channel does not open within the timeout is ended."""
        await asyncio.sleep(SETUP_TIMEOUT_S)
        if self.channel is None:
            log.info(
                "call %s: no data channel within %g s, ending it", self.call_id, SETUP_TIMEOUT_S
            )
            await self.close()

    async def _held_open(self) -> None:
        """A session-owned task: when the session is closed (server stop), so is the call."""
        try:
            await self._closed.wait()
        finally:
            if not self._closed.is_set():
                asyncio.get_running_loop().call_soon(lambda: self._spawn(self.close()))

    async def _expire(self) -> None:
        await asyncio.sleep(self.session.limits.session_seconds)
        await self.session.expire()
        await asyncio.sleep(0.05)
        self._spawn(self.close())

    async def _on_client_event(self, text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("type") == "output_audio_buffer.clear":
            run = self.session.response
            if run is not None and not run.finished:
                run.stop_audio()
            await self._clear(always=True)
            return
        await self.session.handle(text)

    # -- output ---------------------------------------------------------------------------
    async def _emit(self, event: dict[str, Any]) -> None:
        """The session's emit: audio goes to the track, everything else to the data channel."""
        kind = event.get("type")
        if kind in _AUDIO_DELTAS:
            fmt = self.session.config.output_format
            raw = base64.b64decode(event.get("delta", ""))
            pcm = raw if fmt == "pcm16" else pcm_mod.decode(raw, fmt)  # type: ignore[arg-type]
            if not self.buffer.push(str(event["response_id"]), str(event["item_id"]), pcm):
                log.warning("call %s: output audio buffer full, audio dropped", self.call_id)
            return
        self._send(event)
        if kind == "response.done":
            response = event.get("response") or {}
            self._send_all(self.buffer.finish(str(response.get("id"))))
        elif kind == "input_audio_buffer.speech_started":
            td = self.session.config.turn_detection or {}
            if td.get("interrupt_response", True) and self.buffer.playing is not None:
                await self._clear(always=False)

    async def _clear(self, *, always: bool) -> None:
        events, played = self.buffer.clear(always=always)
        for event in events:
            if event["response_id"] is None:  # nothing queued: name the last response
                run = self.session.response
                if run is None:
                    continue  # no response yet: nothing was ever played
                event["response_id"] = run.response_id
            self._send(event)
        if played is not None and played.item_id in self.session.store:
            with contextlib.suppress(StoreError):
                await self.session.on_item_truncate(
                    {
                        "item_id": played.item_id,
                        "content_index": 0,
                        "audio_end_ms": played.audio_end_ms,
                    },
                    None,
                )

    def _send_all(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self._send(event)

    def _send(self, event: dict[str, Any]) -> None:
        channel = self.channel
        if channel is None or channel.readyState != "open":
            return
        event.setdefault("event_id", new_id("event"))
        channel.send(json.dumps(event, separators=(",", ":")))

    # -- teardown -------------------------------------------------------------------------
    async def close(self) -> None:
        """End the call: the session, the peer connection and the call's tasks."""
        if self._closed.is_set():
            return
        self._closed.set()
        calls: dict[str, WebRTCCall] = _calls(self.state)
        calls.pop(self.call_id, None)
        await self.session.close()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        with contextlib.suppress(Exception):
            await self.pc.close()


_CALLS_ATTR = "_webrtc_calls"


def _calls(state: ServerState) -> dict[str, WebRTCCall]:
    calls: dict[str, WebRTCCall] | None = getattr(state, _CALLS_ATTR, None)
    if calls is None:
        calls = {}
        setattr(state, _CALLS_ATTR, calls)
    return calls


def active_calls(state: ServerState) -> list[WebRTCCall]:
    """The calls in progress on this server."""
    return list(_calls(state).values())


# -- HTTP handlers ---------------------------------------------------------------------------


async def _read_offer(request: Request) -> tuple[str, dict[str, Any] | None] | Response:
    """The SDP offer and the multipart ``session`` (if any) of a request."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    session: dict[str, Any] | None = None
    if ctype == "multipart/form-data":
        try:
            form = await request.form(max_files=2, max_fields=4)
        except Exception as exc:
            return _error(f"The multipart body could not be read: {exc}", "invalid_body", 400)
        sdp_field = form.get("sdp")
        if isinstance(sdp_field, UploadFile):
            sdp = (await sdp_field.read(MAX_SDP_BYTES + 1)).decode("utf-8", "replace")
        elif isinstance(sdp_field, str):
            sdp = sdp_field
        else:
            return _error("Missing required parameter: 'sdp'.", "missing_required_parameter", 400)
        raw_session = form.get("session")
        if isinstance(raw_session, UploadFile):
            raw_session = (await raw_session.read(MAX_SDP_BYTES)).decode("utf-8", "replace")
        if raw_session:
            try:
                parsed = json.loads(raw_session)
            except ValueError:
                return _error("'session' is not valid JSON.", "invalid_json", 400)
            if not isinstance(parsed, dict):
                return _error("'session' must be a JSON object.", "invalid_json", 400)
            session = parsed
    elif ctype in ("application/sdp", "text/plain", ""):
        body = await request.body()
        if len(body) > MAX_SDP_BYTES:
            return _error("The SDP offer is too large.", "invalid_sdp", 413)
        sdp = body.decode("utf-8", "replace")
    else:
        return _error(
            f"Unsupported content type {ctype!r}: send application/sdp or multipart/form-data.",
            "unsupported_content_type",
            415,
        )
    if len(sdp) > MAX_SDP_BYTES:
        return _error("The SDP offer is too large.", "invalid_sdp", 413)
    if not sdp.lstrip().startswith("v=0"):
        return _error(
            "The body is not an SDP offer (it must start with 'v=0').", "invalid_sdp", 400
        )
    return sdp, session


def _check(request: Request, state: ServerState) -> tuple[bool, EphemeralKey | None]:
    return state.keys.check(credential_from(request.headers))


async def _start_call(
    request: Request,
    *,
    dialect: ServerDialect,
    model: str,
    session: Mapping[str, Any] | None,
    sdp: str,
) -> Response:
    state: ServerState = request.app.state.server
    calls = _calls(state)
    if len(calls) >= MAX_CALLS:
        return _error("Too many calls in progress.", "too_many_calls", 429)
    call = WebRTCCall(state, dialect=dialect, model=model, initial_session=session)
    try:
        answer = await call.answer(sdp)
    except Exception as exc:  # aiortc raises ValueError/others for offers it cannot use
        await call.close()
        return _error(f"The SDP offer could not be used: {exc}", "invalid_sdp", 400)
    calls[call.call_id] = call
    return Response(
        answer,
        status_code=201,
        media_type="application/sdp",
        headers={"Location": f"/v1/realtime/calls/{call.call_id}"},
    )


async def create_call(request: Request) -> Response:
    """GA ``POST /v1/realtime/calls``."""
    missing = aiortc_missing()
    if missing:
        return _error(missing, "webrtc_unavailable", 501, "server_error")
    state: ServerState = request.app.state.server
    ok, eph = _check(request, state)
    if not ok:
        return _error("Incorrect API key provided.", "invalid_api_key", 401)
    offer = await _read_offer(request)
    if isinstance(offer, Response):
        return offer
    sdp, session = offer
    if session is None and eph is not None:
        session = dict(eph.session)
    dialect: ServerDialect = "beta" if eph is not None and eph.dialect == "beta" else "ga"
    model = str((session or {}).get("model") or request.query_params.get("model") or "gpt-realtime")
    return await _start_call(request, dialect=dialect, model=model, session=session, sdp=sdp)


async def beta_sdp(request: Request) -> Response:
    """Beta ``POST /v1/realtime?model=…`` (``application/sdp`` in and out)."""
    missing = aiortc_missing()
    if missing:
        return _error(missing, "webrtc_unavailable", 501, "server_error")
    state: ServerState = request.app.state.server
    ok, eph = _check(request, state)
    if not ok:
        return _error("Incorrect API key provided.", "invalid_api_key", 401)
    offer = await _read_offer(request)
    if isinstance(offer, Response):
        return offer
    sdp, _ = offer
    session = dict(eph.session) if eph is not None else None
    dialect: ServerDialect = "ga" if eph is not None and eph.dialect == "ga" else "beta"
    model = request.query_params.get("model") or "gpt-4o-realtime-preview"
    return await _start_call(request, dialect=dialect, model=model, session=session, sdp=sdp)


async def hangup(request: Request) -> Response:
    """``POST /v1/realtime/calls/{call_id}/hangup``: a WebRTC call here, else a SIP call."""
    state: ServerState = request.app.state.server
    ok, _ = _check(request, state)
    if not ok:
        return _error("Incorrect API key provided.", "invalid_api_key", 401)
    call = _calls(state).get(request.path_params["call_id"])
    if call is None:  # not a WebRTC call: a SIP call's control (see .calls)
        return await sip_hangup(request)
    await call.close()
    return JSONResponse({}, status_code=200)


def webrtc_routes() -> list[BaseRoute]:
    """The WebRTC routes to add to the server's app."""
    return [
        Route("/v1/realtime/calls", create_call, methods=["POST"]),
        Route("/v1/realtime/calls/{call_id}/hangup", hangup, methods=["POST"]),
        Route("/v1/realtime", beta_sdp, methods=["POST"]),
    ]
