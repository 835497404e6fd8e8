"""Acoustic echo cancellation: WebRTC's AEC3, fed a reference aligned by device timestamps.

:class:`EchoCanceller` removes what the loudspeaker plays from what the microphone hears, so
the user can talk over the assistant (full duplex on open speakers). The canceller itself is
WebRTC's audio processing module (AEC3, optionally with its noise suppression and gain
control) from the ``livekit`` package, installed by the ``aec`` extra
(``pip install 'realtime-voice[aec]'``); without it, constructing an :class:`EchoCanceller`
raises :class:`~audio.exceptions.EchoCancellerUnavailable` naming that extra, and callers fall
back to the half-duplex :class:`~audio.echo.EchoGate`.

Alignment. The speaker hands every block it sends to the device, with the block's DAC time,
to :meth:`EchoCanceller.on_reference` (a timed reference listener: ``speaker.
add_reference_listener(ec.on_reference, timed=True)``). That runs on the audio thread and only
copies the block into a preallocated ring and records ``(index, DAC time)`` in a
:class:`~audio.timeline.DeviceTimeline`: no allocation, no lock. The microphone passes each
captured span with the ADC time of its first frame to :meth:`EchoCanceller.process`, on the
consumer side (the event loop, never the audio thread). For each 10 ms frame captured at
ADC time *t*, the stage reads the reference that was at the DAC at ``t + headroom_ms``: the
device latencies on both sides are compensated from PortAudio's timestamps, so what is left
for AEC3's own delay estimator is the acoustic path plus ``headroom_ms`` (default 40 ms, a
margin for timestamps that are off -- PulseAudio's wander by +-10 ms -- so that the echo never
arrives before its reference). The read position then advances by the sample counts
(cubic interpolation converts the speaker's rate to the canceller's). A block whose DAC
time is more than 10 ms later than the previous block's end marks an output underrun: the
device played silence there, so silence goes into the reference too
(:attr:`EchoCanceller.gaps`). Capture stamps are less trustworthy: PulseAudio's wander
against the sample counts in a +-9 ms sawtooth (ramping for ~25 s, jumping back by ~18 ms),
run up to 42 ms off in the first seconds, and now and then stamp one span ~17 ms off, while
the echo's delay in samples stays put (measured against the echo itself). So a capture stamp
is taken only within 10 ms of where the sample counts put it; one further off is held until
the next span's stamp confirms the same offset, else it is ignored
(:attr:`EchoCanceller.bad_stamps`). Samples are really lost or inserted only with an xrun or
an overflow, which the devices report: :meth:`EchoCanceller.discontinuity` (the microphone
calls it) opens 0.5 s in which a confirmed capture offset skips the same span of the
reference (lost input, :attr:`EchoCanceller.gaps`) and a step is followed -- the median error
of the last 310 ms departing from the long average by more than 25 ms
(:attr:`EchoCanceller.steps`). At any time, two more cases move the read position: a lasting
error of more than 30 ms averaged over about 2.5 s, the average slewing at most 2 ms per
second (:attr:`EchoCanceller.realignments`: clock drift between two devices, which is slower;
the stamps' wander is faster and never lasts), and a jump of more than 100 ms
(:attr:`EchoCanceller.resyncs`: a device restarted), followed at once. Each move costs AEC3
a short re-convergence (echo leaks for a moment: enough for a false barge-in), while a
steady offset within the headroom costs nothing (AEC3 finds the delay itself).

Rates. The canceller runs at the microphone's device rate when that is one of WebRTC's
native rates (16, 32, 48 kHz), else at 48 kHz with streaming resampling on the way in;
:meth:`EchoCanceller.prepare` says which. Its output is float32 mono at that rate.

Reported: :attr:`delay_ms` (the device delay compensated: how far behind the newest
reference block the aligned reference is read), :attr:`headroom_ms`, :attr:`drift_ppm`,
:attr:`reference_missing` and counters; :attr:`cpu_seconds` over :attr:`audio_seconds` is the
canceller's CPU per audio second.
"""

from __future__ import annotations

import importlib
import logging
import math
import time
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from .exceptions import AudioError, AudioFormatError, EchoCancellerUnavailable
from .resample import StreamResampler, check_rate
from .timeline import DeviceTimeline

__all__ = [
    "AEC_EXTRA",
    "NATIVE_RATES",
    "Backend",
    "EchoCanceller",
    "LivekitBackend",
    "aec_available",
]

log = logging.getLogger(__name__)

AEC_EXTRA = "realtime-voice[aec]"
NATIVE_RATES = (16000, 32000, 48000)
_MAX_REF_RATE = 96000
_GAP_S = 0.010  # a block this much later than the previous one's end: an underrun's gap
_MAX_GAP_S = 0.5
_CONFIRM_S = 0.005  # a capture stamp's offset the next span's confirms within this much
_RESYNC_S = 0.1  # an alignment error this large is a restart: follow it at once
_REALIGN_S = 0.03  # a smoothed alignment error this large is corrected in one step
_SMOOTH = 0.004  # per 10 ms frame: the alignment error is averaged over about 2.5 s
_STEP_FRAMES = 31  # the median of this many frames' errors (310 ms) ...
_STEP_S = 0.025  # ... this far from the average is a step (a gap missed): followed
_SLEW = 0.002  # the averaged error moves at most 2 ms per second (2000 ppm): drift, not wander
_FOLLOW_S = 0.5  # after a device discontinuity, steps and lost input are followed this long


class Backend(Protocol):
    """A 10 ms frame echo canceller (WebRTC's audio processing module or a test double)."""

    rate: int

    def process(self, near: npt.NDArray[np.int16], far: npt.NDArray[np.int16]) -> None:
        """Cancel *far*'s echo from *near* in place (both one 10 ms frame of int16)."""
        ...

    def set_stream_delay_ms(self, delay_ms: int) -> None:
        """Tell the canceller the delay from the reference to its echo (a hint)."""
        ...


def _livekit_rtc() -> Any:
    try:
        return importlib.import_module("livekit.rtc")
    except ImportError as exc:
        raise EchoCancellerUnavailable(
            f"echo cancellation needs the livekit package: pip install '{AEC_EXTRA}'"
        ) from exc


def aec_available() -> bool:
    """True when the echo canceller's library (``livekit``) can be imported."""
    try:
        _livekit_rtc()
    except EchoCancellerUnavailable:
        return False
    return True


class LivekitBackend:
    """WebRTC's audio processing module through ``livekit.rtc.AudioProcessingModule``.

    Frames are preallocated: :meth:`process` copies into them and back, and the library
    processes them in place. Library errors become :class:`~audio.exceptions.AudioError`.
    """

    def __init__(
        self,
        rate: int,
        *,
        noise_suppression: bool = False,
        auto_gain_control: bool = False,
        high_pass_filter: bool = True,
    ) -> None:
        rtc = _livekit_rtc()
        if rate not in NATIVE_RATES:
            raise AudioFormatError(f"the canceller runs at {NATIVE_RATES} Hz, not {rate}")
        self.rate = rate
        self._n = rate // 100
        try:
            self._apm = rtc.AudioProcessingModule(
                echo_cancellation=True,
                noise_suppression=noise_suppression,
                high_pass_filter=high_pass_filter,
                auto_gain_control=auto_gain_control,
            )
            self._near_buf = bytearray(self._n * 2)
            self._far_buf = bytearray(self._n * 2)
            self._near_frame = rtc.AudioFrame(self._near_buf, rate, 1, self._n)
            self._far_frame = rtc.AudioFrame(self._far_buf, rate, 1, self._n)
        except Exception as exc:  # the FFI library failed to load or start
            raise EchoCancellerUnavailable(f"livekit's audio processing failed: {exc}") from exc
        self._near = np.frombuffer(self._near_frame._data, dtype=np.int16)
        self._far = np.frombuffer(self._far_frame._data, dtype=np.int16)

    def process(self, near: npt.NDArray[np.int16], far: npt.NDArray[np.int16]) -> None:
        self._far[:] = far
        self._near[:] = near
        try:
            self._apm.process_reverse_stream(self._far_frame)
            self._apm.process_stream(self._near_frame)
        except RuntimeError as exc:
            raise AudioError(f"echo canceller: {exc}") from exc
        near[:] = self._near

    def set_stream_delay_ms(self, delay_ms: int) -> None:
        try:
            self._apm.set_stream_delay_ms(int(delay_ms))
        except RuntimeError as exc:
            raise AudioError(f"echo canceller: {exc}") from exc


def _cubic(buf: npt.NDArray[np.float32], pos: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """Catmull-Rom interpolation of *buf* at fractional positions *pos* (1 <= pos < len-2)."""
    i = np.floor(pos).astype(np.int64)
    f = (pos - i).astype(np.float32)
    y0, y1, y2, y3 = buf[i - 1], buf[i], buf[i + 1], buf[i + 2]
    a = -0.5 * y0 + 1.5 * y1 - 1.5 * y2 + 0.5 * y3
    b = y0 - 2.5 * y1 + 2.0 * y2 - 0.5 * y3
    c = -0.5 * y0 + 0.5 * y2
    out: npt.NDArray[np.float32] = (((a * f + b) * f + c) * f + y1).astype(np.float32)
    return out


class EchoCanceller:
    """An echo-cancelling stage between a microphone and its consumer.

    ``EchoCanceller(headroom_ms=40.0, noise_suppression=False, auto_gain_control=False,
    high_pass_filter=True, reference_seconds=2.0, backend=None, double_talk=False)``.
    *backend* is a factory ``rate -> Backend`` (default: :class:`LivekitBackend` with the
    options given, paired with SpeexDSP for double talk when *double_talk* is asked for and
    ``libspeexdsp`` is there: :class:`~audio.doubletalk.DoubleTalkBackend`;
    :attr:`double_talk` says whether it is; opt-in: under load it let echo through at the
    start of replies, which AEC3 alone never did, see the README). Raises
    :class:`~audio.exceptions.EchoCancellerUnavailable` when the library is missing.

    Wiring: ``speaker.add_reference_listener(ec.on_reference, timed=True)``; then for each
    captured span ``out = ec.process(samples, mic_rate, adc_time)`` (or let
    :class:`~audio.microphone.Microphone` do both: ``Microphone(speaker=speaker)``).
    """

    def __init__(
        self,
        *,
        headroom_ms: float = 40.0,
        noise_suppression: bool = False,
        auto_gain_control: bool = False,
        high_pass_filter: bool = True,
        reference_seconds: float = 2.0,
        backend: Any = None,
        double_talk: bool = False,
    ) -> None:
        if not 0.0 <= float(headroom_ms) <= 80.0:
            raise AudioFormatError(f"headroom_ms must be in [0, 80], got {headroom_ms!r}")
        if not 0.5 <= float(reference_seconds) <= 30.0:
            raise AudioFormatError(
                f"reference_seconds must be in [0.5, 30], got {reference_seconds!r}"
            )
        self.double_talk = False
        """True when SpeexDSP takes over from AEC3 while the user talks over the reply."""
        if backend is None:
            _livekit_rtc()  # fail now, with the extra's name, rather than at the first frame
            from .speex import speex_available

            self.double_talk = bool(double_talk) and speex_available()
            pair = self.double_talk

            def backend(rate: int) -> Backend:
                aec3 = LivekitBackend(
                    rate,
                    noise_suppression=noise_suppression,
                    auto_gain_control=auto_gain_control,
                    high_pass_filter=high_pass_filter,
                )
                if not pair:
                    return aec3
                from .doubletalk import DoubleTalkBackend

                return DoubleTalkBackend(rate, aec3=aec3)

        self._factory = backend
        self.headroom_ms = float(headroom_ms)
        self._backend: Backend | None = None
        # reference side: preallocated for any device rate up to 96 kHz
        cap = int(_MAX_REF_RATE * float(reference_seconds))
        self._ref = np.zeros(cap, dtype=np.float32)
        self._ref_cap = cap
        self._ref_w = 0  # frames written (producer)
        self._next_dac = 0.0  # the DAC time the next block should have (producer)
        self.gaps = 0
        """Gaps seen in the timestamps (> 10 ms): output underruns (silence put in the
        reference) and lost input (the reference read skips the same span)."""
        self._moves = 0  # gaps + resyncs + steps + realignments + discontinuities so far
        self._ref_rate = 0
        self._ref_tl = DeviceTimeline(48000)
        self.reference_rejected = 0
        """Reference blocks refused (another rate than the first block's, or not 1-D)."""
        self._rejected_seen = 0
        # capture side
        self.rate = 0
        """The canceller's rate (0 before :meth:`prepare`)."""
        self.mic_rate = 0
        self._in_rs: StreamResampler | None = None
        self._frame = 0
        self._pending = np.zeros(0, dtype=np.float32)
        self._pending_start = 0  # canceller-rate index of _pending[0]
        self._mic_tl = DeviceTimeline(48000)
        self._mic_frames = 0
        self._adc_base: float | None = None  # ADC time of device frame 0 (accepted stamps)
        self._adc_held: float | None = None  # a stamp's offset awaiting confirmation (s)
        self.discontinuities = 0
        """Device discontinuities reported with :meth:`discontinuity`."""
        self._follow_until = -1.0
        self.bad_stamps = 0
        """Capture stamps more than 10 ms off the sample counts, held for the next span's to
        confirm (then lost input, also counted in :attr:`gaps`) or not (ignored)."""
        self._last_adc = (0.0, 0.0)  # (device index, ADC time) of the last span's first frame
        self._read_pos: float | None = None  # next reference position (reference frames)
        self._near = np.zeros(0, dtype=np.int16)
        self._far = np.zeros(0, dtype=np.int16)
        self.delay_ms = 0.0
        """The device delay compensated: newest reference sample minus the one read (ms)."""
        self.reference_missing = True
        """True while frames are processed with no reference (no speaker blocks arrive)."""
        self.missing_reference_ms = 0.0
        """Milliseconds of microphone audio processed without any reference."""
        self.late_reference_ms = 0.0
        """Milliseconds of reference that was not there yet when needed (zeros were used)."""
        self.resyncs = 0
        """Alignment jumps of more than 100 ms (a device restarted or its clock jumped)."""
        self.realignments = 0
        """Corrections of a lasting alignment error of more than 30 ms (drift, lost samples)."""
        self._error = 0.0
        self.steps = 0
        """Steps in the timestamps followed (samples lost, or an underrun's gap missed)."""
        self._recent = np.zeros(_STEP_FRAMES, dtype=np.float64)
        self._recent_n = 0
        self.cpu_seconds = 0.0
        """Thread CPU time spent in :meth:`process`."""
        self.audio_seconds = 0.0
        """Microphone audio processed."""
        self._warned_missing = False

    # -- reference (audio thread) -----------------------------------------------------------

    def on_reference(self, block: npt.NDArray[np.float32], rate: int, dac_time: float) -> None:
        """Timed reference listener: *block* (float32 mono) reaches the DAC at *dac_time*.

        Runs on the speaker's audio thread: copies into a preallocated ring, records the time.
        A block at another rate than the first one (or not 1-D float32) is refused and counted
        in :attr:`reference_rejected`.
        """
        if self._ref_rate != rate:
            if self._ref_rate or not 8000 <= rate <= _MAX_REF_RATE:
                self.reference_rejected += 1
                return
            self._ref_tl.rate = rate
            self._ref_rate = rate
        if block.ndim != 1 or block.dtype != np.float32:
            self.reference_rejected += 1
            return
        n = block.shape[0]
        w = self._ref_w
        expected = self._next_dac
        self._next_dac = dac_time + n / rate
        if expected and _GAP_S < dac_time - expected < _MAX_GAP_S:
            # an output underrun: the device played silence the reference never had
            gap = int((dac_time - expected) * rate)
            self._write_ref(w, None, gap)
            w += gap
            self.gaps += 1
        self._write_ref(w, block, n)
        self._ref_tl.record(w, dac_time)
        self._ref_w = w + n

    def _write_ref(self, w: int, block: npt.NDArray[np.float32] | None, n: int) -> None:
        """Copy *block* (or *n* zeros) into the ring at absolute index *w* (no allocation)."""
        start = w % self._ref_cap
        first = min(n, self._ref_cap - start)
        if block is None:
            self._ref[start : start + first] = 0.0
            if n > first:
                self._ref[: n - first] = 0.0
            return
        self._ref[start : start + first] = block[:first]
        if n > first:
            self._ref[: n - first] = block[first:]

    # -- capture (consumer side) ------------------------------------------------------------

    def prepare(self, mic_rate: int) -> int:
        """Set the microphone's device rate; returns the rate :meth:`process` outputs.

        Creates the canceller (its library errors surface here). Calling it again with the
        same rate does nothing; another rate raises :class:`AudioFormatError`.
        """
        mic_rate = check_rate(mic_rate, "microphone rate")
        if self.mic_rate:
            if mic_rate != self.mic_rate:
                raise AudioFormatError(
                    f"the echo canceller was prepared for {self.mic_rate} Hz, got {mic_rate} Hz"
                )
            return self.rate
        rate = mic_rate if mic_rate in NATIVE_RATES else 48000
        backend = self._factory(rate)
        backend.set_stream_delay_ms(round(self.headroom_ms))
        self._backend = backend
        self.rate = rate
        self.mic_rate = mic_rate
        self._in_rs = StreamResampler(mic_rate, rate, 1, "float32") if rate != mic_rate else None
        self._mic_tl = DeviceTimeline(mic_rate)
        self._frame = rate // 100
        self._near = np.zeros(self._frame, dtype=np.int16)
        self._far = np.zeros(self._frame, dtype=np.int16)
        return rate

    @property
    def reference_rate(self) -> int:
        """The speaker's device rate (0 before its first block)."""
        return self._ref_rate

    @property
    def drift_ppm(self) -> float:
        """Speaker clock drift measured from its DAC times (ppm of its nominal rate)."""
        return self._ref_tl.drift_ppm if self._ref_tl.ready else 0.0

    @property
    def relative_drift_ppm(self) -> float:
        """How much faster the speaker's clock runs than the microphone's (ppm)."""
        spk = self._ref_tl.effective_rate / self._ref_tl.rate
        mic = self._mic_tl.effective_rate / self._mic_tl.rate
        return (spk / mic - 1.0) * 1e6

    @property
    def input_delay_ms(self) -> float:
        """Latency of the resampling from the microphone's rate to the canceller's (ms)."""
        return 0.0 if self._in_rs is None else self._in_rs.delay_ms

    @property
    def alignment_error_ms(self) -> float:
        """The timestamps' verdict on the alignment, averaged over about 2.5 s (ms; positive:
        the reference is read earlier than they say)."""
        rate = self._ref_rate or 48000
        return self._error * 1000.0 / rate

    @property
    def cpu_per_audio_second(self) -> float:
        """Seconds of CPU per second of microphone audio (0.0 before any)."""
        return self.cpu_seconds / self.audio_seconds if self.audio_seconds else 0.0

    def process(
        self, samples: npt.NDArray[np.float32], rate: int, adc_time: float
    ) -> npt.NDArray[np.float32]:
        """Cancel the echo from captured *samples* (float32 mono at the microphone's rate).

        *adc_time* is when the first sample met the ADC (the stream clock the speaker's DAC
        times use). Returns the processed audio at :attr:`rate` (complete 10 ms frames; the
        rest waits for the next call). Raises :class:`AudioFormatError` for another rate than
        the one prepared, or samples that are not 1-D float32.
        """
        t_cpu = time.thread_time()
        if not self.mic_rate:
            self.prepare(rate)
        elif rate != self.mic_rate:
            raise AudioFormatError(
                f"microphone samples at {rate} Hz, the echo canceller was prepared for "
                f"{self.mic_rate} Hz"
            )
        if not isinstance(samples, np.ndarray) or samples.ndim != 1:
            raise AudioFormatError("samples must be a 1-D numpy array (mono)")
        if samples.dtype != np.float32:
            raise AudioFormatError(f"samples must be float32, got {samples.dtype}")
        if not math.isfinite(adc_time):
            raise AudioFormatError(f"adc_time must be finite, got {adc_time!r}")
        if self.reference_rejected != self._rejected_seen:
            self._rejected_seen = self.reference_rejected
            log.warning(
                "echo canceller: %d reference blocks refused (rate changed from %d Hz?)",
                self.reference_rejected,
                self._ref_rate,
            )
        self._mic_tl.record(self._mic_frames, float(adc_time))
        self._mic_tl.update()
        self._last_adc = (float(self._mic_frames), self._accept_adc(float(adc_time)))
        self._mic_frames += len(samples)
        self.audio_seconds += len(samples) / self.mic_rate
        x = samples if self._in_rs is None else self._in_rs.process(samples)
        self._pending = np.concatenate((self._pending, np.asarray(x, dtype=np.float32)))
        n_frames = len(self._pending) // self._frame
        out = np.empty(n_frames * self._frame, dtype=np.float32)
        self._ref_tl.update()
        for k in range(n_frames):
            a = k * self._frame
            out[a : a + self._frame] = self._process_frame(
                self._pending[a : a + self._frame], self._pending_start + a
            )
        used = n_frames * self._frame
        self._pending = self._pending[used:]
        self._pending_start += used
        self.cpu_seconds += time.thread_time() - t_cpu
        return out

    def discontinuity(self) -> None:
        """Tell the stage that a device lost or inserted samples (an xrun, an overflow).

        For the next 0.5 s of capture, steps in the timestamps and lost input are followed
        (:attr:`steps`, :attr:`gaps`); at other times they are the timestamps' own wander
        and move nothing. :class:`~audio.microphone.Microphone` calls it when its stream or
        the speaker's reports an xrun, or its ring drops frames.
        """
        self.discontinuities += 1
        self._follow_until = self.audio_seconds + _FOLLOW_S

    @property
    def _following(self) -> bool:
        return self.audio_seconds <= self._follow_until

    def _accept_adc(self, adc_time: float) -> float:
        """The ADC time taken for the span starting at device frame :attr:`_mic_frames`.

        The sample counts say where a span should start: ``base + frames / rate``. A stamp
        within 10 ms of that is taken (and the base follows it: PulseAudio's capture stamps
        wander by +-10 ms in a slow sawtooth the audio itself does not follow). A stamp
        further off is held: if the next span's stamp is off by the same amount (within
        5 ms), input samples were really lost (or the clock stepped) and the base moves --
        a loss also skips the same span of the reference; if not, it was one bad stamp
        (PulseAudio sends one ~17 ms early now and then), and it is ignored.
        """
        rate = self.mic_rate
        frames = self._mic_frames
        if self._adc_base is None:
            self._adc_base = adc_time - frames / rate
            return adc_time
        off = adc_time - (self._adc_base + frames / rate)
        held = self._adc_held
        if abs(off) <= _GAP_S or abs(off) >= _MAX_GAP_S:
            self._adc_base += off
            self._adc_held = None
        elif held is not None and abs(off - held) <= _CONFIRM_S:
            self._adc_base += off
            self._adc_held = None
            if off > 0 and self._read_pos is not None and self._following:
                # input samples were lost: the reference read skips the same span
                self._read_pos += off * self._ref_tl.rate
                self.gaps += 1
        else:
            self._adc_held = off
            self.bad_stamps += 1
        return self._adc_base + frames / rate

    def _capture_time(self, index: int) -> float:
        """ADC time of canceller-rate frame *index*."""
        delay = 0 if self._in_rs is None else self._in_rs.delay
        dev_index, stamp = self._last_adc
        return stamp + ((index - delay) * self.mic_rate / self.rate - dev_index) / self.mic_rate

    def _process_frame(self, frame: npt.NDArray[np.float32], index: int) -> npt.NDArray[np.float32]:
        backend = self._backend
        assert backend is not None
        near = self._near
        np.multiply(frame, 32768.0, out=frame)
        np.clip(frame, -32768.0, 32767.0, out=frame)
        near[:] = frame
        self._fill_reference(self._capture_time(index))
        moves = self.gaps + self.resyncs + self.steps + self.realignments + self.discontinuities
        if moves != self._moves:  # the reference or the echo moved: tell a backend that cares
            self._moves = moves
            realigned = getattr(backend, "realigned", None)
            if realigned is not None:
                realigned()
        backend.process(near, self._far)
        out: npt.NDArray[np.float32] = near.astype(np.float32) * np.float32(1.0 / 32768.0)
        return out

    def _fill_reference(self, t_capture: float) -> None:
        """Put the reference played at ``t_capture + headroom`` into ``self._far``."""
        n = self._frame
        far = self._far
        w = self._ref_w
        if not self._ref_tl.ready or w == 0:
            far.fill(0)
            self.reference_missing = True
            self.missing_reference_ms += 10.0
            if not self._warned_missing and self.missing_reference_ms >= 2000.0:
                self._warned_missing = True
                log.warning(
                    "echo canceller: no reference from the speaker after %.0f ms of microphone"
                    " audio (is the speaker started and its reference listener added?)",
                    self.missing_reference_ms,
                )
            return
        self.reference_missing = False
        tl = self._ref_tl
        # where the timestamps say to read, from the newest block's own stamp (not a fit:
        # a fit smears an underrun's step over its window; the filters below do the rest)
        last_index, last_time = tl.latest()
        want = last_index + (t_capture + self.headroom_ms / 1000.0 - last_time) * tl.rate
        # reference frames per canceller frame: by the sample counts (nominal rates). The
        # effective rates measured from PulseAudio's timestamps were off by up to 1000 ppm
        # here: drift is left to the lasting-error correction below (and AEC3's tracking)
        step = tl.rate / self.rate
        pos = self._read_pos
        if pos is None or abs(want - pos) > _RESYNC_S * tl.rate:
            if pos is not None:
                self.resyncs += 1
            pos = want
            self._error = 0.0
            self._recent_n = 0
        else:
            pos = self._follow(pos, want - pos, tl.rate)
        positions = pos + step * np.arange(n, dtype=np.float64)
        self._read_pos = pos + step * n
        self.delay_ms = (w - pos) * 1000.0 / tl.rate
        self._read_reference(positions)

    def _follow(self, pos: float, error: float, rate: int) -> float:
        """Where to read next, given the timestamps' *error* (reference frames) for *pos*.

        The audio path's delay is constant and the timestamps are not (PulseAudio's wander
        by +-10 ms, with spikes): follow the sample counts. Two things move the read
        position: a step -- the median error of the last 310 ms departs from the long
        average by more than 25 ms, within 0.5 s of a device discontinuity (an underrun's
        gap missed) -- and a lasting error of more than 30 ms (drift), the average moving at
        most 2 ms per second.
        """
        if abs(error - self._error) <= _STEP_S * rate:  # spikes and steps: not averaged in
            slew = _SLEW * 0.01 * rate
            self._error += min(slew, max(-slew, _SMOOTH * (error - self._error)))
        recent = self._recent
        recent[self._recent_n % _STEP_FRAMES] = error
        self._recent_n += 1
        if self._recent_n >= _STEP_FRAMES and self._following:
            step = float(np.median(recent)) - self._error
            if abs(step) > _STEP_S * rate:
                pos += step
                recent.fill(self._error)  # the errors before the step are stale
                self.steps += 1
        if abs(self._error) > _REALIGN_S * rate:
            pos += self._error
            recent -= self._error
            self._error = 0.0
            self.realignments += 1
        return pos

    def _read_reference(self, positions: npt.NDArray[np.float64]) -> None:
        """Interpolate the reference ring at absolute *positions* into ``self._far``."""
        far = self._far
        w = self._ref_w
        lo = math.floor(float(positions[0])) - 1
        hi = math.floor(float(positions[-1])) + 3
        oldest = w - self._ref_cap + 1
        if hi <= oldest or lo >= w:
            # entirely before what the ring holds, or entirely in the future
            far.fill(0)
            if lo >= w:
                self.late_reference_ms += 10.0
            return
        window = np.zeros(hi - lo, dtype=np.float32)
        a, b = max(lo, oldest), min(hi, w)
        start = a % self._ref_cap
        m = b - a
        first = min(m, self._ref_cap - start)
        window[a - lo : a - lo + first] = self._ref[start : start + first]
        if m > first:
            window[a - lo + first : b - lo] = self._ref[: m - first]
        if self._ref_w - self._ref_cap + 1 > a:
            window[: self._ref_w - self._ref_cap + 1 - lo] = 0.0  # overwritten meanwhile
        if hi > w:
            self.late_reference_ms += (hi - w) * 1000.0 / max(self._ref_rate, 1)
        y = _cubic(window, positions - lo)
        np.multiply(y, 32768.0, out=y)
        np.clip(y, -32768.0, 32767.0, out=y)
        far[:] = y
