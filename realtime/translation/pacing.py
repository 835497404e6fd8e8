"""Pacing the input of a translation session: 200 ms frames, silence while nothing is said.

Translation consumes audio in 200 ms engine frames, and the model's clock is the audio itself:
if a client stops sending and later resumes, the resumed audio is glued to the old audio as
if no time had passed. :class:`FramePacer` keeps one frame flowing every 200 ms of real time
while the session is open: the caller's audio when there is a frame of it, silence when there
is none. It is pure and clock-free: the shell feeds it the current time (``now``, seconds on
any monotonic clock) and sends what :meth:`FramePacer.poll` returns.

- The first frame is due at the first :meth:`~FramePacer.poll`; frame *k* at ``start + k * 0.2``.
- A partial frame (the caller's chunk boundary fell inside it) waits ``grace_ms`` for the rest,
  then goes out padded with silence, so speech is never split by a silent frame.
- After a stall (the loop was blocked, the machine slept) missed frames are caught up back to
  back, at most ``max_catch_up_ms`` of them; older ones are skipped (the clock is re-anchored).
- Queued audio is bounded by ``max_pending_ms``: :meth:`~FramePacer.room` says how much more
  fits, :meth:`~FramePacer.push` refuses more (the shell waits for room instead).
- :meth:`~FramePacer.drain` hands out the queued audio at once, for ``session.close``.
"""

from __future__ import annotations

from dataclasses import dataclass

from audio.exceptions import AudioFormatError

__all__ = ["FramePacer", "PacedFrame"]


@dataclass(frozen=True)
class PacedFrame:
    """One frame to append: ``audio`` (PCM16), ``silence`` when none of it is the caller's."""

    audio: bytes
    silence: bool
    due: float


class FramePacer:
    """Real-time frame pacing for one session (see the module docstring)."""

    def __init__(
        self,
        *,
        frame_ms: int = 200,
        sample_rate: int = 24000,
        grace_ms: int = 100,
        max_catch_up_ms: int = 2000,
        max_pending_ms: int = 30_000,
    ) -> None:
        if frame_ms <= 0 or sample_rate <= 0:
            raise ValueError("frame_ms and sample_rate must be positive")
        if grace_ms < 0 or max_catch_up_ms < 0 or max_pending_ms < frame_ms:
            raise ValueError(
                "grace_ms and max_catch_up_ms must be >= 0, max_pending_ms >= frame_ms"
            )
        self.frame_ms = frame_ms
        self.sample_rate = sample_rate
        self.frame_bytes = sample_rate * frame_ms // 1000 * 2
        self._period = frame_ms / 1000.0
        self._grace = grace_ms / 1000.0
        self._catch_up = max_catch_up_ms / 1000.0
        self._max_bytes = sample_rate * max_pending_ms // 1000 * 2
        self._buf = bytearray()
        self._start: float | None = None
        self._k = 0  # the index of the next frame: due at start + k * period
        self._silence = bytes(self.frame_bytes)
        self.frames = 0
        """Frames handed out by :meth:`poll` so far."""
        self.silent_frames = 0
        """Of those, frames of pure silence."""
        self.skipped_frames = 0
        """Frames skipped after stalls longer than ``max_catch_up_ms``."""

    # -- input ----------------------------------------------------------------------
    @property
    def pending_bytes(self) -> int:
        """Queued caller audio, in bytes."""
        return len(self._buf)

    @property
    def pending_ms(self) -> float:
        """Queued caller audio, in milliseconds."""
        return len(self._buf) / 2 / self.sample_rate * 1000

    def room(self) -> int:
        """How many more bytes :meth:`push` accepts now."""
        return max(0, self._max_bytes - len(self._buf))

    def push(self, pcm16: bytes) -> None:
        """Queue caller audio (PCM16 mono at ``sample_rate``).

        Raises :class:`~audio.exceptions.AudioFormatError` for an odd byte count and
        :class:`BufferError` when it does not fit (see :meth:`room`).
        """
        if len(pcm16) % 2:
            raise AudioFormatError(f"PCM16 needs an even byte count, got {len(pcm16)}")
        if len(pcm16) > self.room():
            raise BufferError(
                f"{len(pcm16)} bytes do not fit: {self.pending_ms:.0f} ms already queued "
                f"(bound {self._max_bytes // 2 * 1000 // self.sample_rate} ms)"
            )
        self._buf += pcm16

    # -- output ---------------------------------------------------------------------
    def next_due(self, now: float) -> float:
        """When :meth:`poll` has something to hand out next (``now`` before the first poll).

        While a partial frame waits for the rest of the caller's audio, that is the end of
        its grace period.
        """
        if self._start is None:
            return now
        due = self._due(self._k)
        if 0 < len(self._buf) < self.frame_bytes:
            return due + self._grace
        return due

    def _due(self, k: int) -> float:
        assert self._start is not None
        return self._start + k * self._period

    def poll(self, now: float) -> list[PacedFrame]:
        """The frames due by ``now``, in order (empty when none is due yet)."""
        if self._start is None:
            self._start = now
        late = now - self._due(self._k)
        if late > self._catch_up + self._period:
            skip = int((late - self._catch_up) / self._period)
            self._k += skip
            self.skipped_frames += skip
        out: list[PacedFrame] = []
        fb = self.frame_bytes
        while self._due(self._k) <= now + 1e-9:
            due = self._due(self._k)
            have = len(self._buf)
            if have >= fb:
                audio, silence = bytes(self._buf[:fb]), False
                del self._buf[:fb]
            elif have:
                if now + 1e-9 < due + self._grace:
                    break  # the rest of this frame is probably on its way
                audio, silence = bytes(self._buf) + self._silence[have:], False
                self._buf.clear()
            else:
                audio, silence = self._silence, True
                self.silent_frames += 1
            out.append(PacedFrame(audio, silence, due))
            self.frames += 1
            self._k += 1
        return out

    def drain(self) -> list[bytes]:
        """All queued caller audio now, in frame-sized pieces (the last may be shorter).

        For ``session.close``: the server flushes a short last piece itself.
        """
        data = bytes(self._buf)
        self._buf.clear()
        fb = self.frame_bytes
        return [data[i : i + fb] for i in range(0, len(data), fb)]
