"""Audio over the call: the outgoing track (PCM16 24 kHz in, Opus out) and the incoming one.

:class:`OutgoingAudio` is the microphone side: PCM16 mono 24 kHz pushed with :meth:`feed`
(from a microphone iterator or from ``session.append_audio``) is played into the call's
track in real time, 20 ms per frame, silence when nothing is queued. It holds at most
``max_ms`` of audio (default 60 s); audio beyond that is dropped and counted.

:func:`read_audio` is the speaker side: the incoming track's frames, resampled to PCM16 mono
24 kHz, handed to a callback.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["FRAME_BYTES", "SAMPLE_RATE", "OutgoingAudio", "read_audio"]

SAMPLE_RATE = 24000
FRAME_SAMPLES = 480  # 20 ms
FRAME_BYTES = FRAME_SAMPLES * 2
BYTES_PER_MS = 48


class OutgoingAudio:
    """Queued PCM16 24 kHz audio and the aiortc track that plays it (see the module doc)."""

    def __init__(self, max_ms: int = 60_000) -> None:
        from aiortc.mediastreams import MediaStreamTrack

        self.max_bytes = max_ms * BYTES_PER_MS
        self.dropped_bytes = 0
        self._pending = bytearray()
        self._changed = asyncio.Event()
        owner = self

        class _Track(MediaStreamTrack):
            kind = "audio"

            def __init__(self) -> None:
                super().__init__()
                self._start: float | None = None
                self._pts = 0

            async def recv(self) -> Any:
                from aiortc.mediastreams import MediaStreamError

                if self.readyState != "live":
                    raise MediaStreamError
                now = time.monotonic()
                if self._start is None:
                    self._start = now
                else:
                    wait = self._start + self._pts / SAMPLE_RATE - now
                    if wait > 0:
                        await asyncio.sleep(wait)
                    elif wait < -0.5:  # the loop stalled: resume in real time, no burst
                        self._start = now - self._pts / SAMPLE_RATE
                frame = _frame(owner._take(), self._pts)
                self._pts += FRAME_SAMPLES
                return frame

        self.track = _Track()

    @property
    def queued_ms(self) -> float:
        """Audio waiting to be sent, in milliseconds."""
        return len(self._pending) / BYTES_PER_MS

    def feed(self, pcm16: bytes) -> bool:
        """Queue PCM16 mono 24 kHz; False (counted in ``dropped_bytes``) when full."""
        if len(self._pending) + len(pcm16) > self.max_bytes:
            self.dropped_bytes += len(pcm16)
            return False
        self._pending += pcm16
        return True

    def clear(self) -> None:
        """Drop the queued audio."""
        self._pending.clear()
        self._changed.set()

    async def wait_sent(self, below_ms: float = 40.0, timeout: float | None = None) -> None:
        """Return once at most ``below_ms`` of audio is left to send."""

        async def wait() -> None:
            while self.queued_ms > below_ms:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout)

    def _take(self) -> bytes:
        chunk = bytes(self._pending[:FRAME_BYTES])
        del self._pending[:FRAME_BYTES]
        self._changed.set()
        if len(chunk) < FRAME_BYTES:
            chunk += bytes(FRAME_BYTES - len(chunk))
        return chunk

    def stop(self) -> None:
        """End the track."""
        self.track.stop()
        self._changed.set()


def _frame(pcm: bytes, pts: int) -> Any:
    import av

    samples = np.frombuffer(pcm, np.int16).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
    frame.sample_rate = SAMPLE_RATE
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
    return frame


async def read_audio(track: Any, on_pcm: Callable[[bytes], None]) -> None:
    """Read an incoming audio track until it ends: PCM16 mono 24 kHz to ``on_pcm``."""
    import av
    from aiortc.mediastreams import MediaStreamError

    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        for out in resampler.resample(frame):
            on_pcm(out.to_ndarray().astype(np.int16, copy=False).tobytes())
