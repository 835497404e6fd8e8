"""Double talk: keep the user's voice when they talk over the assistant.

WebRTC's AEC3 (through the bindings available) cancels echo deeply and at once, but its
residual suppressor, which cannot be tuned from Python, garbles a voice that talks over
continuous echo. SpeexDSP's canceller keeps that voice (its suppressor is milder while the
near end is active) but cancels less and needs seconds to converge. :class:`DoubleTalkBackend`
runs both on every 10 ms frame and outputs AEC3's result, except while the near end talks
and SpeexDSP has converged: then SpeexDSP's.

- **Near-end detection**: with echo only, AEC3 takes 30-40 dB off the microphone; a frame it
  reduces by less than ``detect_db`` (above the noise floor) holds a voice -- unless
  SpeexDSP takes that frame off within ``confirm_db`` of what it takes off echo: then it was
  echo AEC3 lost hold of for a moment (under load, one such frame let SpeexDSP's weaker
  cancellation through and the server took it for speech). The decision holds ``hang_ms``
  after the last such frame; switches cross-fade over a frame.
- **Delay for SpeexDSP**: the stage aligns the reference by the devices' clocks, but what
  they do not report (a Bluetooth or PulseAudio loopback latency, the room) is left to the
  canceller. AEC3 finds it itself; SpeexDSP's filter only spans ``filter_ms``. A
  :class:`DelayEstimator` (GCC-PHAT between the microphone and the reference, decimated to
  8 kHz, over 1 s windows every 0.25 s while the far end talks) gives the bulk delay, and
  SpeexDSP's reference is delayed by it (less a margin).
- **Convergence**: SpeexDSP's echo reduction is tracked on echo-only frames (known after
  0.3 s of them, and measured afresh at the first reply after a voice -- the far end back
  after 0.5 s of silence, the voice over -- since SpeexDSP adapts to a user's voice and may
  lose the echo path: under load, a reply after a barge-in once went through it); below
  ``min_erle_db`` (6 dB) its output is never used. 6 dB is reached in the first seconds of
  assistant speech; waiting for 12 dB garbled a user who talked 4 s into the first reply
  (word error rate 0.42-0.77 against 0.23-0.44 at 40-250 ms, ``bench_aec.py``), while once
  both are reached the outputs are the same.

Every buffer is preallocated; CPU is about AEC3's plus SpeexDSP's (see the README).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .exceptions import AudioFormatError
from .resample import StreamResampler

__all__ = ["SPEEX_RATE", "DelayEstimator", "DoubleTalkBackend"]

_EST_RATE = 8000
_ERLE_FRAMES = 30  # SpeexDSP's echo reduction is known after this many echo-only frames
_NEW_REPLY_FRAMES = 50  # the far end back after this much silence: a new reply
SPEEX_RATE = 16000


def _rms(x: npt.NDArray[Any]) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float32))))


class DelayEstimator:
    """The delay from a reference to its echo in a microphone signal (GCC-PHAT).

    Feed both at ``rate`` with :meth:`add` (equal lengths); :attr:`delay_ms` is the latest
    confident estimate (``None`` before one), refreshed every ``every_s`` from the last
    ``window_s`` while the reference is louder than ``active_dbfs``.
    """

    def __init__(
        self,
        rate: int,
        *,
        max_delay_ms: float = 500.0,
        window_s: float = 1.0,
        every_s: float = 0.25,
        active_dbfs: float = -50.0,
        min_peak_ratio: float = 8.0,
    ) -> None:
        if rate % _EST_RATE:
            raise AudioFormatError(f"the delay estimator needs a multiple of 8 kHz, not {rate}")
        self._step = rate // _EST_RATE
        self._len = int(_EST_RATE * window_s)
        self._max_lag = int(_EST_RATE * max_delay_ms / 1000.0)
        self._every = int(_EST_RATE * every_s)
        self._active = 10.0 ** (active_dbfs / 20.0)
        self._ratio = min_peak_ratio
        # rings (written at _w), put in order only when an estimate is made
        self._near = np.zeros(self._len, dtype=np.float32)
        self._far = np.zeros(self._len, dtype=np.float32)
        self._w = 0
        self._filled = 0
        self._since = 0
        self._n = 1 << int(np.ceil(np.log2(2 * self._len)))
        self._recent: list[float] = []
        self.delay_ms: float | None = None
        self.estimates = 0
        """How many confident estimates were made."""

    def add(self, near: npt.NDArray[Any], far: npt.NDArray[Any]) -> None:
        """Append one frame of each (any length divisible by the decimation step)."""
        step = self._step
        k = len(near) // step
        if k == 0:
            return
        idx = (self._w + np.arange(k)) % self._len
        self._near[idx] = near[: k * step].reshape(k, step).mean(axis=1)
        self._far[idx] = far[: k * step].reshape(k, step).mean(axis=1)
        self._w = (self._w + k) % self._len
        self._filled = min(self._len, self._filled + k)
        self._since += k
        if self._filled == self._len and self._since >= self._every:
            self._since = 0
            self._estimate()

    def _estimate(self) -> None:
        w = self._w
        far = np.concatenate((self._far[w:], self._far[:w]))
        if _rms(far) < self._active * 32768.0:
            return
        near = np.concatenate((self._near[w:], self._near[:w]))
        spec = np.fft.rfft(near, self._n) * np.conj(np.fft.rfft(far, self._n))
        spec /= np.abs(spec) + 1e-9
        corr = np.fft.irfft(spec, self._n)[: self._max_lag + 1]
        lag = int(np.argmax(corr))
        level = float(np.mean(np.abs(corr))) + 1e-12
        if corr[lag] / level < self._ratio:
            return
        self.estimates += 1
        self._recent = ([*self._recent, lag * 1000.0 / _EST_RATE])[-3:]
        self.delay_ms = float(np.median(self._recent))


class DoubleTalkBackend:
    """AEC3 with SpeexDSP taking over while the near end talks (see the module docstring).

    ``aec3`` and ``speex`` are backends at ``rate`` (:class:`~audio.aec.LivekitBackend`,
    :class:`~audio.speex.SpeexBackend` by default). Reported: :attr:`delay_ms` (SpeexDSP's
    reference delay), :attr:`speex_erle_db`, :attr:`near_active_ms` (time SpeexDSP's
    output was used).
    """

    def __init__(
        self,
        rate: int,
        *,
        aec3: Any = None,
        speex: Any = None,
        detect_db: float = 15.0,
        hang_ms: float = 300.0,
        min_erle_db: float = 6.0,
        floor_dbfs: float = -50.0,
        margin_ms: float = 20.0,
        max_delay_ms: float = 500.0,
        detect_lag_ms: float = 200.0,
        holdoff_ms: float = 1000.0,
        confirm_db: float = 3.0,
    ) -> None:
        if aec3 is None:
            from .aec import LivekitBackend

            aec3 = LivekitBackend(rate)
        if speex is None:
            from .speex import SpeexBackend

            # 16 kHz: it converges far faster than at 48; 300 ms: the room's tail (the bulk
            # delay is taken out by the delay estimator)
            speex = SpeexBackend(SPEEX_RATE, filter_ms=300.0)
        self.rate = rate
        srate = int(speex.rate)
        if rate % srate:
            raise AudioFormatError(f"SpeexDSP at {srate} Hz cannot serve a {rate} Hz stage")
        self._resample = rate != srate
        self._down_near = StreamResampler(rate, srate, 1, "int16")
        self._down_far = StreamResampler(rate, srate, 1, "int16")
        self._up = StreamResampler(srate, rate, 1, "int16")
        self._n = rate // 100
        self._aec3 = aec3
        self._speex = speex
        self._detect = 10.0 ** (-detect_db / 20.0)
        self._hang = max(1, round(hang_ms / 10.0))
        self._min_erle = min_erle_db
        self._confirm_db = confirm_db
        self._floor = 10.0 ** (floor_dbfs / 20.0) * 32768.0
        self._margin = margin_ms
        self._estimator = DelayEstimator(rate, max_delay_ms=max_delay_ms)
        self._ring = np.zeros(int(rate * max_delay_ms / 1000.0) + self._n, dtype=np.int16)
        self._ring_w = 0
        self._frame_idx = np.arange(self._n)
        self._a = np.zeros(self._n, dtype=np.int16)
        self._s = np.zeros(self._n, dtype=np.int16)
        self._far_d = np.zeros(self._n, dtype=np.int16)
        self._fade_in = np.linspace(0.0, 1.0, self._n, dtype=np.float32)
        self._delay = 0
        self._active_left = 0
        self._using = False
        self._erle_acc = np.zeros(2, dtype=np.float64)  # echo-only energy: mic, speex out
        self._erle_n = 0  # echo-only frames in it
        self._far_quiet = 0  # frames since the far end was last heard
        self._voice_seen = False  # a voice since SpeexDSP's echo reduction was last measured
        # echo-only frames wait this long before they count (a voice may start in them)
        self._pending = np.zeros((max(1, round(detect_lag_ms / 10.0)), 2), dtype=np.float64)
        self._pending_n = 0
        self._holdoff_frames = max(1, round(holdoff_ms / 10.0))
        self._holdoff = 0
        self.realignments = 0
        """How many times the stage said the reference moved."""
        self.speex_erle_db = 0.0
        self.near_active_ms = 0.0
        self.delay_ms = 0.0

    def set_stream_delay_ms(self, delay_ms: int) -> None:
        self._aec3.set_stream_delay_ms(delay_ms)

    def realigned(self) -> None:
        """The stage moved the reference (a gap, a step, drift) or a device reported an xrun:
        both cancellers see a new echo path for a moment, which looks like a voice to the
        detector, and AEC3 re-converges far faster. AEC3 alone for ``holdoff_ms`` (and no
        convergence tracking)."""
        self._holdoff = self._holdoff_frames
        self.realignments += 1

    def _delayed_far(self, far: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        ring, size, w = self._ring, len(self._ring), self._ring_w
        ring[(self._frame_idx + w) % size] = far
        self._ring_w = (w + self._n) % size
        self._far_d[:] = ring[(self._frame_idx + w - self._delay) % size]
        return self._far_d

    def process(self, near: npt.NDArray[np.int16], far: npt.NDArray[np.int16]) -> None:
        self._estimator.add(near, far)
        est = self._estimator.delay_ms
        if est is not None:
            want = max(0, round((est - self._margin) * self.rate / 1000.0))
            if abs(want - self._delay) > self.rate // 200:  # moved more than 5 ms
                self._delay = min(want, len(self._ring) - self._n)
                self.delay_ms = self._delay * 1000.0 / self.rate
        a, s = self._a, self._s
        a[:] = near
        s[:] = near
        self._aec3.process(a, far)
        far_d = self._delayed_far(far)
        if self._resample:  # exact counts: 10 ms in, 10 ms out
            s16 = self._down_near.process(s)
            self._speex.process(s16, self._down_far.process(far_d))
            s[:] = self._up.process(s16)
        else:
            self._speex.process(s, far_d)
        mic, out3, outs = _rms(near), _rms(a), _rms(s)
        far_on = _rms(far) > self._floor
        if not far_on:
            self._far_quiet += 1
        elif self._far_quiet:
            if self._far_quiet >= _NEW_REPLY_FRAMES and self._voice_seen and not self._active_left:
                # a new reply after a voice: SpeexDSP may have adapted to the voice and lost
                # the echo path, so its echo reduction is measured afresh before it is used
                self._voice_seen = False
                self._erle_acc[:] = 0.0
                self._erle_n = 0
                self.speex_erle_db = 0.0
            self._far_quiet = 0
        voice = out3 > self._floor and out3 > mic * self._detect
        if voice and self.speex_erle_db >= self._min_erle:
            # SpeexDSP must not take the frame off as it takes echo off: if it does, that
            # was echo AEC3 lost hold of for a moment, and SpeexDSP's output would let it by
            voice = outs > mic * 10.0 ** ((self._confirm_db - self.speex_erle_db) / 20.0)
        pending = self._pending
        if self._holdoff:
            self._holdoff -= 1
            self._active_left = 0
            self._pending_n = 0
        elif voice:
            self._active_left = self._hang
            self._voice_seen = True
            self._pending_n = 0  # the frames before the detection may hold the voice too
        elif self._active_left:
            self._active_left -= 1
        elif far_on and mic > self._floor:  # echo only: how much does SpeexDSP take off?
            k = self._pending_n % len(pending)
            if self._pending_n >= len(pending):  # old enough: no voice followed it
                acc = self._erle_acc
                acc *= 0.95
                acc += pending[k]
                self._erle_n += 1
                if self._erle_n >= _ERLE_FRAMES:
                    ratio = (acc[0] + 1e-9) / (acc[1] + 1e-9)
                    self.speex_erle_db = float(10.0 * np.log10(ratio))
            pending[k] = (mic * mic, outs * outs)
            self._pending_n += 1
        use = bool(self._active_left) and self.speex_erle_db >= self._min_erle
        if use != self._using:  # cross-fade one frame into the other output
            fade = self._fade_in if use else self._fade_in[::-1]
            mixed = a * (1.0 - fade) + s * fade
            near[:] = np.clip(mixed, -32768, 32767).astype(np.int16)
            self._using = use
        else:
            near[:] = s if use else a
        if use:
            self.near_active_ms += 10.0
