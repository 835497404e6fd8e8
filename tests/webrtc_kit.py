"""A raw aiortc peer for local-server WebRTC tests: SDP over HTTP, events on ``oai-events``.

Every event received on the data channel is validated with our models for the dialect (any
frame that does not parse as a known event fails the test). The outgoing track plays PCM16
24 kHz audio queued with :meth:`RawPeer.play` in real time (silence in between); the
incoming track is recorded with arrival times.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import os
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from realtime.events import UnknownServerEvent, parse_server_event

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "share" / "samples"

try:
    import aiortc  # noqa: F401  (re-exported for the skip-or-fail check)
    import av
except ImportError as exc:  # pragma: no cover - the dev extra installs aiortc
    if "1" in (os.environ.get(n) for n in ("REALTIME_REQUIRE_BROWSER", "REALTIME_REQUIRE_AUDIO")):
        raise RuntimeError(f"REALTIME_REQUIRE_BROWSER=1 but aiortc is missing: {exc}") from exc
    pytest.skip(f"WebRTC tests need the 'webrtc' extra (aiortc): {exc}", allow_module_level=True)

from aiortc import (  # noqa: E402
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack  # noqa: E402

RATE = 24000
FRAME = 480


def read_wav(name: str) -> bytes:
    with wave.open(str(SAMPLES / name), "rb") as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1
        return w.readframes(w.getnframes())


def silence(ms: int) -> bytes:
    return bytes(RATE * ms // 1000 * 2)


class PcmTrack(MediaStreamTrack):
    """Plays queued PCM16 24 kHz mono in real time, silence when nothing is queued."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pending = bytearray()
        self._start: float | None = None
        self._pts = 0
        self.drained = asyncio.Event()

    def play(self, pcm: bytes) -> None:
        self._pending += pcm
        self.drained.clear()

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._pts / RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        chunk = bytes(self._pending[: FRAME * 2])
        del self._pending[: FRAME * 2]
        if not self._pending:
            self.drained.set()
        chunk += bytes(FRAME * 2 - len(chunk))
        frame = av.AudioFrame.from_ndarray(
            np.frombuffer(chunk, np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        self._pts += FRAME
        return frame


class RawPeer:
    """One WebRTC call to the local server, driven by hand."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.mic = PcmTrack()
        self.pc.addTrack(self.mic)
        self.channel = self.pc.createDataChannel("oai-events")
        self.events: list[dict[str, Any]] = []
        self.times: list[float] = []
        self._new = asyncio.Condition()
        self.audio = bytearray()  # received audio, 24 kHz mono PCM16
        self.loud_at: float | None = None  # first non-silent received frame
        self.call_id: str | None = None
        self.opened = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.channel.on("open", self.opened.set)
        self.channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)

    def _on_message(self, message: str | bytes) -> None:
        text = message if isinstance(message, str) else message.decode()
        model = parse_server_event(text, self.dialect)  # type: ignore[arg-type]
        assert not isinstance(model, UnknownServerEvent), f"unknown event: {text[:300]}"
        self.events.append(json.loads(text))
        self.times.append(time.monotonic())
        self._tasks.append(asyncio.ensure_future(self._notify()))

    async def _notify(self) -> None:
        async with self._new:
            self._new.notify_all()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.ensure_future(self._record(track)))

    async def _record(self, track: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            for out in resampler.resample(frame):
                pcm = out.to_ndarray().tobytes()
                if self.loud_at is None and np.abs(np.frombuffer(pcm, np.int16)).max() > 500:
                    self.loud_at = time.monotonic()
                self.audio += pcm

    async def connect(
        self,
        http_url: str,
        *,
        path: str = "/realtime/calls",
        session: dict[str, Any] | None = None,
        key: str | None = None,
        multipart: bool = True,
    ) -> httpx.Response:
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        sdp = self.pc.localDescription.sdp
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with httpx.AsyncClient(timeout=20) as http:
            if multipart:
                files = {
                    "sdp": (None, sdp, "application/sdp"),
                    "session": (
                        None,
                        json.dumps(session or {"type": "realtime"}),
                        "application/json",
                    ),
                }
                r = await http.post(http_url + path, files=files, headers=headers)
            else:
                headers["Content-Type"] = "application/sdp"
                r = await http.post(http_url + path, content=sdp, headers=headers)
        if r.status_code == 201:
            location = r.headers.get("location", "")
            self.call_id = location.rsplit("/", 1)[-1] or None
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=r.text, type="answer"))
            await asyncio.wait_for(self.opened.wait(), 15)
        return r

    def send(self, event: dict[str, Any]) -> None:
        self.channel.send(json.dumps(event))

    async def until(
        self, kind: str | Callable[[dict[str, Any]], bool], timeout: float = 30.0, start: int = 0
    ) -> dict[str, Any]:
        """The first event (from index ``start``) of this type or matching the predicate."""

        def match(ev: dict[str, Any]) -> bool:
            return (ev["type"] == kind) if isinstance(kind, str) else kind(ev)

        async def wait() -> dict[str, Any]:
            async with self._new:
                while True:
                    for ev in self.events[start:]:
                        if match(ev):
                            return ev
                    await self._new.wait()

        try:
            return await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            seen = [e["type"] for e in self.events[-15:]]
            raise AssertionError(f"no {kind!r} within {timeout}s; last: {seen}") from None

    def index_of(self, ev: dict[str, Any]) -> int:
        return self.events.index(ev)

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()
