"""A session over WebRTC: the data channel ``oai-events`` as a :class:`FrameTransport`.

``realtime.connect(..., transport="webrtc")`` (or ``transport=WebRTC(mic=..., speaker=...)``)
opens a peer connection instead of a WebSocket; the :class:`~realtime.session.Session`
and its protocol core are the same, driven through the frame-transport seam:

- **Events** travel on the data channel ``oai-events``, one JSON message each.
- **Input audio** travels as Opus on the outgoing track: a ``mic`` (any async iterator
  of PCM16 24 kHz chunks, e.g. :class:`audio.microphone.Microphone`) feeds it, and so does
  ``session.append_audio`` — its ``input_audio_buffer.append`` frames are routed to the
  track instead of the data channel. Client events sent after routed audio wait until
  that audio has been played into the track (``commit`` after ``append`` stays in order).
- **Output audio** arrives on the incoming track (not as ``response.output_audio.delta``):
  it goes to ``speaker`` (anything with ``enqueue(pcm16, item_id, content_index)`` and
  ``clear()``, e.g. :class:`audio.speaker.Speaker`) and to ``on_audio(pcm16)``. The server
  reports playback with ``output_audio_buffer.started/stopped/cleared``; on ``cleared``
  (barge-in) and when ``output_audio_buffer.clear`` is sent, the speaker is cleared.
- **Errors**: a refused offer or an unusable answer raises :class:`SdpError`, a peer
  connection that does not connect :class:`IceError`, a refused key
  :class:`~realtime.exceptions.AuthenticationError`. Once connected, a closed data channel
  or a failed ICE connection ends the transport with close code 1006, which the session
  reports as ``connection.lost`` (and reconnects under a policy) as over WebSocket.

Bounds: inbound messages buffered up to ``max_buffer`` bytes (the data channel cannot
pause its sender: beyond that the call ends with code 1008), outgoing audio up to 60 s.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..exceptions import AuthenticationError, ConnectionClosed
from .exceptions import IceError, SdpError, WebRTCError, WebRTCUnavailable
from .media import OutgoingAudio, read_audio
from .signaling import answer_from, call_id_from, offer_request

if TYPE_CHECKING:
    from audio.speaker import Speaker

    from ..connection import Endpoint, SessionOptions
    from ..transport import FrameTransport, Message

__all__ = ["AudioSink", "WebRTC", "WebRTCTransport", "open_webrtc"]

log = logging.getLogger("realtime.webrtc")

DATA_CHANNEL = "oai-events"
_SEND_MARGIN_S = 0.06  # after routed audio: what the network and the server's jitter take
_LOUD = 64  # a received frame above this peak is reply audio even before "started"


class AudioSink(Protocol):
    """Where received audio goes (:class:`audio.speaker.Speaker` is one)."""

    def enqueue(self, pcm16: bytes, item_id: str, content_index: int = 0) -> None:
        """Play PCM16 mono 24 kHz tagged with the item it belongs to."""
        ...

    def clear(self) -> None:
        """Drop everything queued (barge-in)."""
        ...


if TYPE_CHECKING:

    def _speaker_is_a_sink(speaker: Speaker) -> AudioSink:  # checked by mypy
        return speaker

    def _transport_is_a_frame_transport(transport: WebRTCTransport) -> FrameTransport:
        return transport


@dataclass
class WebRTC:
    """How a session uses WebRTC: ``connect(..., transport=WebRTC(mic=mic, speaker=spk))``.

    ``mic``: async iterable of PCM16 mono 24 kHz chunks for the outgoing track;
    ``speaker``: an :class:`AudioSink` for the reply audio; ``on_audio``: called with every
    received 20 ms frame (PCM16 mono 24 kHz, silence included); ``ice_servers``: STUN/TURN
    URLs (none by default: host candidates only); ``route_appends``: send
    ``input_audio_buffer.append`` audio on the track (default) instead of the data channel.
    """

    mic: AsyncIterable[bytes] | None = None
    speaker: AudioSink | None = None
    on_audio: Callable[[bytes], None] | None = None
    ice_servers: list[str] = field(default_factory=list)
    route_appends: bool = True

    async def __call__(self, endpoint: Endpoint, options: SessionOptions) -> FrameTransport:
        """The session's ``transport_factory``."""
        return await open_webrtc(endpoint, options, self)


class WebRTCTransport:
    """The data channel of one call, as the session's frame transport (see the module doc)."""

    carries_output_audio_buffer = True
    """The server plays the audio and honours ``output_audio_buffer.clear`` (both dialects)."""

    def __init__(
        self,
        pc: Any,
        channel: Any,
        outgoing: OutgoingAudio,
        rtc: WebRTC,
        *,
        max_buffer: int,
    ) -> None:
        self.pc = pc
        self.channel = channel
        self.outgoing = outgoing
        self.rtc = rtc
        self.call_id: str | None = None
        self.max_buffer = max_buffer
        self.audio_frames = 0
        self._inbox: deque[Message] = deque()
        self._buffered = 0
        self._arrived = asyncio.Event()
        self._ended = asyncio.Event()
        self._code: int | None = None
        self._reason = ""
        self._routed = False  # audio routed to the track since the last event sent
        self._playing: str | None = None  # response whose audio the server is playing
        self._tasks: set[asyncio.Task[Any]] = set()
        channel.on("message", self._on_message)
        channel.on("close", lambda: self._end(1006, "data channel closed"))
        pc.on("connectionstatechange", self._on_state)
        pc.on("track", self._on_track)

    # -- FrameTransport ---------------------------------------------------------------------
    async def receive(self) -> list[Message]:
        """Every buffered message (waits for one); ConnectionClosed once ended and drained."""
        while not self._inbox:
            if self._code is not None:
                raise ConnectionClosed(self._code, self._reason)
            self._arrived.clear()
            await self._arrived.wait()
        out = list(self._inbox)
        self._inbox.clear()
        self._buffered = 0
        return out

    async def send(self, text: str) -> None:
        """Send one event; appended audio goes to the track (see the module docstring)."""
        if self._code is not None:
            raise ConnectionClosed(self._code, self._reason)
        head = text[:96]
        if self.rtc.route_appends and '"input_audio_buffer.append"' in head:
            audio = json.loads(text).get("audio", "")
            self.outgoing.feed(base64.b64decode(audio))
            self._routed = True
            return
        if self._routed:
            # keep order: what was appended reaches the server before this event
            await self.outgoing.wait_sent()
            await asyncio.sleep(_SEND_MARGIN_S)
            self._routed = False
            if self._code is not None:
                raise ConnectionClosed(self._code, self._reason)
        if '"output_audio_buffer.clear"' in head:
            self._clear_speaker()
        try:
            self.channel.send(text)
        except Exception as exc:  # aiortc raises InvalidStateError once the channel closed
            self._end(1006, f"data channel send failed: {exc}")
            raise ConnectionClosed(1006, self._reason) from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """End the call (idempotent)."""
        if self._code is None:
            self._end(code, reason)
        await self._shutdown()

    def abort(self) -> None:
        """End the call now (the peer connection closes in the background)."""
        if self._code is None:
            self._end(1006, "aborted")
        self._spawn(self._shutdown())

    @property
    def closed(self) -> bool:
        """True once the call has ended."""
        return self._code is not None

    @property
    def close_code(self) -> int | None:
        """1000 (closed by us), 1006 (data channel closed / ICE failed), 1008 (overflow)."""
        return self._code

    @property
    def close_reason(self) -> str:
        """Why the call ended ("" while open)."""
        return self._reason

    async def wait_closed(self) -> None:
        """Return once the call has ended."""
        await self._ended.wait()

    # -- internals --------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def start_mic(self) -> None:
        """Pump the configured microphone into the outgoing track."""
        if self.rtc.mic is not None:
            self._spawn(self._pump(self.rtc.mic))

    async def _pump(self, mic: AsyncIterable[bytes]) -> None:
        async for chunk in mic:
            if self._code is not None:
                return
            self.outgoing.feed(chunk)

    def _on_message(self, message: str | bytes) -> None:
        if self._code is not None:
            return
        self._inbox.append(message)
        self._buffered += len(message)
        self._arrived.set()
        if isinstance(message, str) and '"output_audio_buffer.' in message[:96]:
            self._on_playback(message)
        if self._buffered > self.max_buffer:
            self._end(1008, f"more than {self.max_buffer} bytes of events waiting to be read")

    def _on_playback(self, text: str) -> None:
        try:
            event = json.loads(text)
        except ValueError:
            return
        kind = event.get("type")
        if kind == "output_audio_buffer.started":
            self._playing = str(event.get("response_id") or "webrtc")
        elif kind == "output_audio_buffer.stopped":
            self._playing = None
        elif kind == "output_audio_buffer.cleared":
            self._playing = None
            self._clear_speaker()

    def _clear_speaker(self) -> None:
        speaker = self.rtc.speaker
        if speaker is not None:
            try:
                speaker.clear()
            except Exception:
                log.exception("speaker.clear() raised")

    def _on_audio(self, pcm: bytes) -> None:
        self.audio_frames += 1
        if self.rtc.on_audio is not None:
            try:
                self.rtc.on_audio(pcm)
            except Exception:
                log.exception("on_audio raised")
        speaker = self.rtc.speaker
        if speaker is None:
            return
        loud = int(np.abs(np.frombuffer(pcm, np.int16)).max(initial=0)) > _LOUD
        if self._playing is not None or loud:
            try:
                speaker.enqueue(pcm, self._playing or "webrtc", 0)
            except Exception:
                log.exception("speaker.enqueue() raised")

    def _on_track(self, track: Any) -> None:
        if track.kind == "audio":
            self._spawn(read_audio(track, self._on_audio))

    def _on_state(self) -> None:
        if self.pc.connectionState == "failed":
            self._end(1006, "ICE connection failed")
        elif self.pc.connectionState == "closed" and self._code is None:
            self._end(1006, "peer connection closed")

    def _end(self, code: int, reason: str) -> None:
        if self._code is not None:
            return
        self._code, self._reason = code, reason
        self._arrived.set()
        self._ended.set()
        self.outgoing.clear()
        if code != 1000:
            self._spawn(self._shutdown())

    async def _shutdown(self) -> None:
        self.outgoing.stop()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        with contextlib.suppress(Exception):
            await self.pc.close()


async def open_webrtc(endpoint: Endpoint, options: SessionOptions, rtc: WebRTC) -> WebRTCTransport:
    """Set up a call (offer, SDP exchange over HTTP, ICE/DTLS, data channel open)."""
    try:
        from aiortc import (
            RTCConfiguration,
            RTCIceServer,
            RTCPeerConnection,
            RTCSessionDescription,
        )
    except ImportError as exc:
        raise WebRTCUnavailable(
            f"transport='webrtc' needs the 'webrtc' extra: pip install 'realtime-voice[webrtc]' "
            f"({exc})"
        ) from None
    import httpx

    servers = [RTCIceServer(urls=url) for url in rtc.ice_servers]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
    outgoing = OutgoingAudio()
    try:
        pc.addTrack(outgoing.track)
        channel = pc.createDataChannel(DATA_CHANNEL)
        transport = WebRTCTransport(pc, channel, outgoing, rtc, max_buffer=options.max_buffer)
        opened = asyncio.Event()
        channel.on("open", opened.set)
        await pc.setLocalDescription(await pc.createOffer())
        headers = [h for h in await endpoint.headers() if h[0].lower() != "openai-beta"]
        ephemeral = any(v.startswith("Bearer ek_") for k, v in headers if k == "Authorization")
        request = offer_request(
            endpoint.url, endpoint.dialect, pc.localDescription.sdp, ephemeral=ephemeral
        )
        headers.append(("Content-Type", request.content_type))
        try:
            async with httpx.AsyncClient(timeout=options.connect_timeout) as http:
                r = await http.post(request.url, content=request.body, headers=headers)
        except httpx.HTTPError as exc:
            where = request.url.split("?")[0]
            raise WebRTCError(f"the SDP exchange with {where} failed: {exc}") from None
        if r.status_code in (401, 403):
            raise AuthenticationError(f"the server refused the key (HTTP {r.status_code})")
        answer = answer_from(r.status_code, r.headers.get("content-type", ""), r.text)
        transport.call_id = call_id_from(r.headers.get("location"))
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        except Exception as exc:  # aiortc: ValueError and others for an unusable answer
            raise SdpError(f"the server's SDP answer could not be used: {exc}") from None
        try:
            await asyncio.wait_for(opened.wait(), options.connect_timeout)
        except asyncio.TimeoutError:
            raise IceError(
                f"the call did not connect within {options.connect_timeout:g} s "
                f"(ICE state {pc.iceConnectionState}, connection {pc.connectionState})"
            ) from None
    except BaseException:
        outgoing.stop()
        await pc.close()
        raise
    transport.start_mic()
    log.info("WebRTC call %s connected", transport.call_id)
    return transport
