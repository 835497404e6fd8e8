"""Headless audio devices: a WAV-file microphone, a WAV-file speaker and a null speaker.

They implement the interfaces of :mod:`audio.playback` exactly like the sound-card devices, so
everything (the session, the CLI, the tests, the local server) can run without a sound card.

* :class:`FileMicrophone` -- an :class:`~audio.playback.AudioSource`: ``async for chunk in mic``
  yields fixed-size PCM16 chunks read from a WAV file (or given PCM16), paced in real time
  against the event loop's monotonic clock (no drift: chunk *i* is released at
  ``start + (i + 1) * chunk_ms``, the moment a real microphone would have finished capturing
  it), or as fast as possible.
* :class:`FileSpeaker` -- an :class:`~audio.playback.AudioSink`: writes what it "plays" to a WAV
  file (:class:`~audio.wav.WavWriter`); with ``clock="realtime"`` audio is heard at the rate it
  would play (an item's heard milliseconds are how far the play clock has reached into its
  audio), with ``clock="instant"`` audio counts as heard the moment it is enqueued.
* :class:`NullSpeaker` -- the same tracking, writing nothing.

The speakers are meant for one asyncio event loop (not thread-safe). With the real-time clock
their state advances whenever a method is called and, while a loop runs, from a small ticker
task every ``block_ms``; reference listeners get each played block then (float32 mono at the
speaker's rate). ``interrupt()`` cuts at the play position without a fade.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .exceptions import AudioError, AudioFormatError
from .pcm import int16_from_pcm16, n_bytes_for_ms
from .playback import HeardPosition, ReferenceListener, TimedReferenceListener
from .resample import check_rate
from .wav import WavWriter, read_wav

__all__ = ["Clock", "FileMicrophone", "FileSpeaker", "NullSpeaker"]

Clock = Literal["realtime", "instant"]
StrPath = str | os.PathLike[str]
_SCALE = np.float32(1.0 / 32768.0)
_log = logging.getLogger(__name__)


class FileMicrophone:
    """A microphone that plays a WAV file (or PCM16 bytes) as fixed-size PCM16 chunks.

    ``FileMicrophone(path, rate=24000, chunk_ms=40, realtime=True, loop=False)`` reads the
    file at construction (raising :class:`~audio.exceptions.WavError` for a bad file), mixes
    it to mono and resamples it to *rate*. Each ``async for`` over it is a new pass from the
    start. Every chunk is ``chunk_bytes`` long; the last one is padded with silence
    (``pad_last=False`` yields it shorter instead). ``trailing_silence_ms`` appends silence
    after the file (useful to let a VAD see the end of speech). With ``loop=True`` the audio
    repeats seamlessly forever (until :meth:`stop`). With ``realtime=False`` chunks come as fast
    as the consumer takes them (yielding to the event loop between chunks).
    """

    def __init__(
        self,
        path: StrPath,
        rate: int = 24000,
        chunk_ms: float = 40.0,
        realtime: bool = True,
        loop: bool = False,
        *,
        pad_last: bool = True,
        trailing_silence_ms: float = 0.0,
    ) -> None:
        self.path: str | None = os.fspath(path)
        self._setup(read_wav(path, rate=rate), rate, chunk_ms, realtime, loop, pad_last,
                    trailing_silence_ms)  # fmt: skip

    @classmethod
    def from_pcm16(
        cls,
        pcm16: bytes,
        rate: int = 24000,
        chunk_ms: float = 40.0,
        realtime: bool = True,
        loop: bool = False,
        *,
        pad_last: bool = True,
        trailing_silence_ms: float = 0.0,
    ) -> FileMicrophone:
        """A microphone over PCM16 mono bytes already at *rate* (no file involved)."""
        int16_from_pcm16(pcm16)  # validates (odd length, type)
        mic = cls.__new__(cls)
        mic.path = None
        mic._setup(bytes(pcm16), rate, chunk_ms, realtime, loop, pad_last, trailing_silence_ms)
        return mic

    def _setup(
        self,
        pcm16: bytes,
        rate: int,
        chunk_ms: float,
        realtime: bool,
        loop: bool,
        pad_last: bool,
        trailing_silence_ms: float,
    ) -> None:
        self.rate = check_rate(rate)
        if not 0 < chunk_ms <= 10_000:
            raise AudioFormatError(f"chunk_ms must be in (0, 10000], got {chunk_ms!r}")
        if not trailing_silence_ms >= 0:
            raise AudioFormatError(f"trailing_silence_ms must be >= 0, got {trailing_silence_ms!r}")
        self.chunk_bytes = max(2, n_bytes_for_ms(chunk_ms, rate=self.rate))
        self.chunk_ms = self.chunk_bytes / 2 * 1000.0 / self.rate
        if loop and not pcm16:
            raise AudioError("cannot loop an empty recording")
        if not loop and trailing_silence_ms:
            pcm16 += bytes(n_bytes_for_ms(trailing_silence_ms, rate=self.rate))
        self._pcm = pcm16
        self.realtime = realtime
        self.loop = loop
        self.pad_last = pad_last
        self.chunks_delivered = 0
        self._stopped = False

    @property
    def duration_ms(self) -> float:
        """Length of one pass (file plus trailing silence) in milliseconds."""
        return len(self._pcm) / 2 * 1000.0 / self.rate

    def stop(self) -> None:
        """End the iteration before the next chunk (needed to end a looping microphone)."""
        self._stopped = True

    def __aiter__(self) -> AsyncIterator[bytes]:
        """Start a pass over the audio: an async iterator of PCM16 chunks."""
        self._stopped = False
        return self._chunks()

    def _next_chunk(self, offset: int) -> tuple[bytes, int]:
        size = self.chunk_bytes
        data = self._pcm
        if not self.loop:
            chunk = data[offset : offset + size]
            if len(chunk) < size and self.pad_last:
                chunk += bytes(size - len(chunk))
            return chunk, offset + size
        parts = []
        need = size
        while need:
            piece = data[offset : offset + need]
            parts.append(piece)
            need -= len(piece)
            offset = (offset + len(piece)) % len(data)
        return b"".join(parts), offset

    async def _chunks(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        period = self.chunk_bytes / 2 / self.rate
        offset = 0
        index = 0
        while not self._stopped and (self.loop or offset < len(self._pcm)):
            chunk, offset = self._next_chunk(offset)
            index += 1
            if self.realtime:
                await asyncio.sleep(max(0.0, start + index * period - loop.time()))
            else:
                await asyncio.sleep(0)
            if self._stopped:
                return
            self.chunks_delivered += 1
            yield chunk


@dataclass
class _Segment:
    """A run of one item's audio on the play timeline."""

    key: tuple[str, int]
    samples: npt.NDArray[np.int16]
    start: int  # first sample's position on the timeline (samples since the timeline began)
    done: int = 0  # samples already played (emitted)


class _ClockedSink:
    """Playback tracking against a clock; subclasses decide what playing a block means."""

    def __init__(
        self,
        rate: int,
        clock: Clock,
        block_ms: float,
        time_source: Callable[[], float],
    ) -> None:
        self.rate = check_rate(rate)
        if clock not in ("realtime", "instant"):
            raise AudioFormatError(f"clock must be 'realtime' or 'instant', got {clock!r}")
        if not 0 < block_ms <= 1000:
            raise AudioFormatError(f"block_ms must be in (0, 1000], got {block_ms!r}")
        self.clock: Clock = clock
        self.block_ms = block_ms
        self._now = time_source
        self._queue: deque[_Segment] = deque()
        self._heard: dict[tuple[str, int], int] = {}
        self._interrupted: set[tuple[str, int]] = set()
        self._listeners: list[tuple[Any, bool]] = []
        self._origin = 0.0  # clock time of timeline sample 0
        self._scheduled = 0  # samples scheduled on the current timeline
        self._last_key: tuple[str, int] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.ignored_bytes = 0
        self.samples_played = 0
        self.listener_errors = 0

    # -- reference listeners -------------------------------------------------------------

    def add_reference_listener(
        self, listener: ReferenceListener | TimedReferenceListener, *, timed: bool = False
    ) -> None:
        """Call *listener(block, rate)* with every block as it is played (float32 mono).

        With ``timed=True``: *listener(block, rate, play_time)*, where *play_time* is when
        the block's first sample is heard on the speaker's clock (``time_source``).
        """
        self._listeners.append((listener, bool(timed)))

    def remove_reference_listener(
        self, listener: ReferenceListener | TimedReferenceListener
    ) -> None:
        """Stop calling *listener* (no error if it was not registered)."""
        self._listeners = [x for x in self._listeners if x[0] is not listener]

    # -- playing ---------------------------------------------------------------------------

    def _play(self, block: npt.NDArray[np.int16], when: float | None = None) -> None:
        """Deliver a block that has just been heard (subclass hook; also feeds listeners).

        *when* is the clock time of its first sample (default: now).
        """
        self.samples_played += len(block)
        if self._listeners:
            reference = block * _SCALE
            at = self._now() if when is None else when
            for listener, timed in tuple(self._listeners):
                try:
                    if timed:
                        listener(reference, self.rate, at)
                    else:
                        listener(reference, self.rate)
                except Exception:  # a broken listener must not stop playback
                    self.listener_errors += 1
                    _log.exception("reference listener %r failed", listener)

    def _advance(self) -> None:
        """Play everything the clock has reached."""
        if not self._queue:
            return
        position = int((self._now() - self._origin) * self.rate + 1e-6)
        while self._queue:
            seg = self._queue[0]
            reached = min(len(seg.samples), position - seg.start)
            if reached > seg.done:
                self._play(
                    seg.samples[seg.done : reached],
                    self._origin + (seg.start + seg.done) / self.rate,
                )
                self._heard[seg.key] += reached - seg.done
                seg.done = reached
            if seg.done < len(seg.samples):
                return
            self._queue.popleft()

    def enqueue(self, pcm16: bytes, item_id: str, content_index: int = 0) -> None:
        """Queue PCM16 mono audio of an item; audio of an interrupted item is ignored.

        Raises :class:`AudioFormatError` for an odd byte count or non-bytes audio.
        """
        samples = int16_from_pcm16(pcm16)
        key = (item_id, content_index)
        if key in self._interrupted:
            self.ignored_bytes += len(pcm16)
            return
        self._heard.setdefault(key, 0)
        self._last_key = key
        if len(samples) == 0:
            return
        if self.clock == "instant":
            self._play(samples)
            self._heard[key] += len(samples)
            return
        self._advance()
        now = self._now()
        if not self._queue:  # idle: a new timeline starts now
            behind = now - self._origin
            if behind * self.rate >= self._scheduled:
                self._origin = now
                self._scheduled = 0
        if samples.flags.writeable:  # a mutable buffer the caller may reuse
            samples = samples.copy()
        self._queue.append(_Segment(key, samples, self._scheduled))
        self._scheduled += len(samples)
        self._start_ticker()

    def _start_ticker(self) -> None:
        if self._ticker is not None and not self._ticker.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop: state advances on each call instead
        self._ticker = loop.create_task(self._tick())

    async def _tick(self) -> None:
        while self._queue:
            self._advance()
            await asyncio.sleep(self.block_ms / 1000.0)

    # -- the PlaybackTracker / AudioSink interface ----------------------------------------

    def played_ms(self, item_id: str, content_index: int = 0) -> float:
        """Milliseconds of this item's audio heard so far (0.0 for an unknown item)."""
        self._advance()
        return self._heard.get((item_id, content_index), 0) * 1000.0 / self.rate

    @property
    def is_playing(self) -> bool:
        """True while queued audio has not all been heard (never, with the instant clock)."""
        self._advance()
        return bool(self._queue)

    @property
    def queued_ms(self) -> float:
        """Milliseconds of queued audio not yet heard."""
        self._advance()
        return sum(len(s.samples) - s.done for s in self._queue) * 1000.0 / self.rate

    def interrupt(self) -> HeardPosition | None:
        """Stop at the play position, drop the queue, ignore later audio of the items in it.

        Returns the heard position of the item that was playing (with the instant clock: of
        the last item enqueued since the previous interrupt/clear), or ``None``.
        """
        self._advance()
        if self.clock == "instant":
            key = self._last_key
        else:
            key = self._queue[0].key if self._queue else None
        if key is None:
            return None
        self._interrupted.add(key)
        self._interrupted.update(seg.key for seg in self._queue)
        position = HeardPosition(key[0], key[1], self._heard[key] * 1000.0 / self.rate)
        self._drop()
        return position

    def clear(self) -> None:
        """Drop everything queued without marking any item interrupted."""
        self._advance()
        self._drop()

    def _drop(self) -> None:
        self._queue.clear()
        self._last_key = None
        self._origin = self._now()
        self._scheduled = 0

    async def drained(self) -> None:
        """Return once everything queued so far (and enqueued meanwhile) has been heard."""
        while True:
            self._advance()
            if not self._queue:
                return
            end = self._origin + self._scheduled / self.rate
            await asyncio.sleep(max(0.001, end - self._now()))

    def close(self) -> None:
        """Stop the ticker; audio still queued is dropped unheard."""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        self._advance()
        self._queue.clear()


class NullSpeaker(_ClockedSink):
    """A speaker that plays into nothing but tracks what would have been heard.

    ``NullSpeaker(rate=24000, clock="realtime")``: see the module docstring for the clocks.
    ``time_source`` (default :func:`time.monotonic`) can be replaced for deterministic tests.
    """

    def __init__(
        self,
        rate: int = 24000,
        clock: Clock = "realtime",
        *,
        block_ms: float = 20.0,
        time_source: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(rate, clock, block_ms, time_source)

    async def __aenter__(self) -> NullSpeaker:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class FileSpeaker(_ClockedSink):
    """A speaker that writes the audio it plays to a 16-bit mono WAV file at *rate*.

    ``FileSpeaker(path, rate=24000, clock="realtime")``. Only what is heard is written: audio
    dropped by :meth:`interrupt` or :meth:`clear` never reaches the file, and idle time between
    replies is not recorded. Call :meth:`close` (or ``await aclose()``, which first waits for
    the queue to drain; or use ``async with``) to finalise the file; the header is also kept
    valid while playing (see :class:`~audio.wav.WavWriter`).
    """

    def __init__(
        self,
        path: StrPath,
        rate: int = 24000,
        clock: Clock = "realtime",
        *,
        block_ms: float = 20.0,
        time_source: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(rate, clock, block_ms, time_source)
        self.path = os.fspath(path)
        self._writer = WavWriter(path, rate=self.rate, channels=1)

    def _play(self, block: npt.NDArray[np.int16], when: float | None = None) -> None:
        if not self._writer.closed:
            self._writer.write(block)
        super()._play(block, when)

    def close(self) -> None:
        """Finalise the WAV file; audio still queued is dropped unheard (idempotent)."""
        super().close()
        self._writer.close()

    async def aclose(self) -> None:
        """Wait until everything queued has been heard, then finalise the file."""
        await self.drained()
        self.close()

    async def __aenter__(self) -> FileSpeaker:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.drained()
        self.close()
