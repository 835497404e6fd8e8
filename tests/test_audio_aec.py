"""The echo canceller stage (issue 13): timelines, alignment, fallback, bad input, ERLE.

Alignment is tested with a recording backend (a test double of the 10 ms canceller that
keeps every near/far frame pair it is given), so that what the stage feeds the canceller can
be compared with the reference that was really at the DAC. The cancellation itself is tested
with the real WebRTC canceller (``livekit``, in the ``aec`` and ``dev`` extras) on a
synthetic echo path.
"""

from __future__ import annotations

import importlib
import itertools
import logging
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from audio.aec import AEC_EXTRA, EchoCanceller, aec_available
from audio.exceptions import AudioError, AudioFormatError, EchoCancellerUnavailable
from audio.files import NullSpeaker
from audio.microphone import Microphone
from audio.resample import resample
from audio.speaker import Speaker
from audio.timeline import DeviceTimeline
from audio.wav import read_wav_array

SAMPLES = Path(__file__).resolve().parent.parent / "share" / "samples"


class RecordingBackend:
    """A 10 ms canceller double: passes *near* through and records every frame pair."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.near: list[npt.NDArray[np.int16]] = []
        self.far: list[npt.NDArray[np.int16]] = []
        self.delays: list[int] = []

    def process(self, near: npt.NDArray[np.int16], far: npt.NDArray[np.int16]) -> None:
        assert len(near) == len(far) == self.rate // 100
        self.near.append(near.copy())
        self.far.append(far.copy())

    def set_stream_delay_ms(self, delay_ms: int) -> None:
        self.delays.append(delay_ms)


def recording_canceller(**kwargs: Any) -> tuple[EchoCanceller, list[RecordingBackend]]:
    made: list[RecordingBackend] = []

    def factory(rate: int) -> RecordingBackend:
        made.append(RecordingBackend(rate))
        return made[-1]

    return EchoCanceller(backend=factory, **kwargs), made


_TONES = ((0.3, 97.0, 0.1), (0.25, 181.0, 1.3), (0.2, 293.0, 2.0), (0.15, 431.0, 0.7))


def chirp_ref(rate: float, start: float, n: int) -> npt.NDArray[np.float32]:
    """A smooth reference signal as a function of *device time* (so any alignment is checkable):
    incommensurate tones, whose sum does not repeat within the offsets searched."""
    t = start + np.arange(n) / rate
    x = sum(a * np.sin(2 * np.pi * f * t + p) for a, f, p in _TONES)
    return np.asarray(x, dtype=np.float32)


def drive(
    ec: EchoCanceller,
    seconds: float,
    *,
    spk_rate: int = 48000,
    mic_rate: int = 48000,
    spk_ppm: float = 0.0,
    mic_ppm: float = 0.0,
    dac_lead: float = 0.1,
    mic_latency: float = 0.03,
    jitter: float = 0.0,
    block: int = 480,
    gap_at: float = float("inf"),
    gap: float = 0.0,
    mic_gap_at: float = float("inf"),
    mic_gap: float = 0.0,
    mic_wander: Callable[[int, float], float] | None = None,
    spk_wander: Callable[[int, float], float] | None = None,
    xrun: bool = True,
) -> None:
    """Run a speaker and a microphone on one clock, with drift, latencies and jitter.

    The speaker's sample k is at the DAC at ``k / (spk_rate * (1 + ppm))``; its block is
    handed over *dac_lead* earlier. The reference signal is a function of DAC time, so the
    reference the stage should pick for a mic frame captured at time t is ``chirp_ref(t + h)``.
    The microphone's samples are zeros (only the reference side is checked). From *gap_at*
    on, the speaker's samples play *gap* seconds later (an underrun inserted silence); from
    *mic_gap_at* on, the microphone's are captured *mic_gap* later (input samples lost).
    *mic_wander(span, adc)* is added to the stamp of the microphone's span number *span*
    (stamps that are wrong while the audio is not); *spk_wander* likewise for the speaker's
    blocks. With *xrun*, the stage is told of a
    discontinuity when either gap happens (as :class:`Microphone` does on an xrun).
    """
    rng = np.random.default_rng(5)
    spk_eff = spk_rate * (1 + spk_ppm * 1e-6)
    mic_eff = mic_rate * (1 + mic_ppm * 1e-6)
    spk_block = block * spk_rate // 48000
    mic_block = block * mic_rate // 48000
    k_spk = 0
    k_mic = 0
    t = 0.0
    end = seconds
    step = 0.001
    while t < end:
        # speaker callbacks happen dac_lead before the block's DAC time
        while k_spk / spk_eff - dac_lead <= t:
            dac = k_spk / spk_eff
            if dac >= gap_at:
                if xrun and dac - spk_block / spk_eff < gap_at:
                    ec.discontinuity()
                dac += gap
            stamp = dac + rng.normal(0, jitter)
            if spk_wander is not None:
                stamp += spk_wander(k_spk // spk_block, dac)
            ec.on_reference(chirp_ref(spk_eff, dac, spk_block), spk_rate, stamp)
            k_spk += spk_block
        # microphone blocks are delivered mic_latency after their last sample
        while (k_mic + mic_block) / mic_eff + mic_latency <= t:
            adc = k_mic / mic_eff
            if adc >= mic_gap_at:
                if xrun and adc - mic_block / mic_eff < mic_gap_at:
                    ec.discontinuity()
                adc += mic_gap
            if mic_wander is not None:
                adc += mic_wander(k_mic // mic_block, adc)
            ec.process(np.zeros(mic_block, np.float32), mic_rate, adc + rng.normal(0, jitter))
            k_mic += mic_block
        t += step


def alignment(
    ec: EchoCanceller,
    backend: RecordingBackend,
    first: int,
    frames: int,
    mic_ppm: float = 0.0,
    around: float = 0.0,
) -> tuple[float, float]:
    """The offset (ms) of the far frames fed from the reference at capture time + headroom,
    and the relative error left at that offset, over *frames* frames from frame *first*."""
    rate = backend.rate
    n = rate // 100
    mic_eff = rate * (1 + mic_ppm * 1e-6)
    got = np.concatenate(backend.far[first : first + frames]).astype(np.float64) / 32768.0
    t0 = first * n / mic_eff + ec.headroom_ms / 1000.0
    best = (around, np.inf)
    for grid in (np.arange(-15.0, 15.0, 0.25), np.arange(-0.3, 0.3, 0.01)):
        centre = best[0]
        for d in centre + grid:
            ref = chirp_ref(mic_eff, t0 + d / 1000.0, len(got)).astype(np.float64)
            err = float(np.sqrt(np.mean((got - ref) ** 2) / np.mean(ref**2)))
            if err < best[1]:
                best = (float(d), err)
    return best


# -- the device timeline -----------------------------------------------------------------


def test_timeline_measures_drift_and_maps_both_ways() -> None:
    tl = DeviceTimeline(48000)
    rng = np.random.default_rng(1)
    true_rate = 48000 * (1 + 150e-6)
    for b in range(1500):
        index = b * 480
        tl.record(index, 7.0 + index / true_rate + rng.normal(0, 2e-4))
        if b % 3 == 0:
            tl.update()
    tl.update()
    assert tl.drift_ppm == pytest.approx(150.0, abs=40.0)
    assert tl.time_of(720_000) == pytest.approx(7.0 + 720_000 / true_rate, abs=2e-4)
    assert tl.index_at(tl.time_of(123_456)) == pytest.approx(123_456, abs=1e-6)
    assert tl.fits == 1


def test_timeline_restarts_after_a_clock_jump() -> None:
    tl = DeviceTimeline(16000)
    for b in range(200):
        tl.record(b * 160, b * 0.01)
    tl.update()
    for b in range(200, 300):  # the stream restarted: same indexes continue, time jumped 3 s
        tl.record(b * 160, 3.0 + b * 0.01)
    tl.update()
    assert tl.fits == 2
    assert tl.time_of(250 * 160) == pytest.approx(3.0 + 2.5, abs=1e-6)


def test_timeline_rejects_bad_size() -> None:
    with pytest.raises(AudioFormatError):
        DeviceTimeline(48000, size=3)


# -- alignment -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spk_rate", "mic_rate"),
    [
        (48000, 48000),
        (44100, 48000),  # the speaker at another rate: converted on the way
        (48000, 16000),  # the canceller runs at the microphone's native 16 kHz
        (48000, 44100),  # a microphone rate the canceller lacks: resampled to 48 kHz
    ],
)
def test_reference_is_aligned_to_capture_time(spk_rate: int, mic_rate: int) -> None:
    """The far frame fed with each mic frame is the reference at its ADC time + headroom."""
    ec, made = recording_canceller(headroom_ms=20.0)
    drive(ec, 12.0, spk_rate=spk_rate, mic_rate=mic_rate)
    backend = made[0]
    assert backend.rate == (mic_rate if mic_rate != 44100 else 48000)
    assert backend.delays == [20]
    # the offset left is within a sample and does not move: a steady delay (a canceller
    # frame starting at k * 10 ms was captured the resampler's latency earlier)
    early = alignment(ec, backend, 550, 20)
    late = alignment(ec, backend, len(backend.far) - 20, 20)
    shift = -ec.input_delay_ms
    assert abs(early[0] - shift) < 0.1 and abs(late[0] - shift) < 0.1, (early, late, shift)
    assert early[1] < 0.03 and late[1] < 0.03, (early, late)  # the interpolation's error
    assert ec.resyncs == ec.steps == ec.realignments == 0
    # the compensated delay: the reference is read (dac_lead + mic_latency + frame - h) =
    # 120 ms behind the newest reference, give or take a block of delivery granularity
    assert 110.0 <= ec.delay_ms <= 140.0, ec.delay_ms


def test_drift_between_devices_is_corrected_in_steps() -> None:
    """Two clocks 1000 ppm apart: the offset never leaves +-35 ms (inside the 40 ms headroom);
    the lasting error is corrected in one jump each time it passes 30 ms."""
    ec, made = recording_canceller()
    drive(ec, 50.0, spk_ppm=600.0, mic_ppm=-400.0)
    backend = made[0]
    offsets = [
        alignment(ec, backend, k, 10, -400.0)[0] for k in range(600, len(backend.far) - 10, 700)
    ]
    assert max(abs(x) for x in offsets) <= 35.0, offsets
    assert ec.realignments >= 1 and ec.resyncs == 0
    assert ec.relative_drift_ppm == pytest.approx(1000.0, abs=100.0)


def test_an_output_underrun_gap_is_followed() -> None:
    """The speaker's samples play 40 ms later from t = 6 s on (an underrun): the gap goes into
    the reference as silence at once, and the alignment does not move."""
    ec, made = recording_canceller()
    drive(ec, 12.0, gap_at=6.0, gap=0.040)
    backend = made[0]
    before = alignment(ec, backend, 500, 20)
    after = alignment(ec, backend, len(backend.far) - 20, 20)
    assert ec.gaps == 1 and ec.steps == 0 and ec.realignments == 0 and ec.resyncs == 0
    assert abs(before[0]) < 0.1 and abs(after[0]) < 0.1, (before, after)


def test_a_backend_is_told_when_the_reference_moves() -> None:
    """A backend with ``realigned()`` (the double-talk one) is called once per move of the
    reference (here the underrun's gap) and per discontinuity reported, not otherwise."""
    calls: list[int] = []

    class Told(RecordingBackend):
        def realigned(self) -> None:
            calls.append(len(self.near))

    ec = EchoCanceller(backend=Told)
    drive(ec, 3.0)
    assert calls == []
    ec = EchoCanceller(backend=Told)
    drive(ec, 12.0, gap_at=6.0, gap=0.040, xrun=False)
    assert ec.gaps == 1 and len(calls) == 1 and 550 <= calls[0] <= 620  # near t = 6 s
    ec.discontinuity()  # an xrun: the echo may have moved too
    ec.process(np.zeros(480, np.float32), 48000, 12.5)
    assert len(calls) == 2


def test_lost_input_skips_the_same_reference() -> None:
    """30 ms of microphone samples are lost at t = 6 s: the reference read skips 30 ms too."""
    ec, made = recording_canceller()
    drive(ec, 12.0, mic_gap_at=6.0, mic_gap=0.030)
    backend = made[0]
    before = alignment(ec, backend, 500, 20)
    after = alignment(ec, backend, len(backend.far) - 20, 20, around=30.0)
    assert ec.gaps == 1 and ec.steps == 0 and ec.realignments == 0 and ec.resyncs == 0
    assert abs(before[0]) < 0.1 and abs(after[0] - 30.0) < 0.5, (before, after)  # 30 ms later


def test_a_step_in_the_timestamps_is_followed() -> None:
    """The timestamps say the reference is 30 ms earlier from t = 6 s on (no gap to fill:
    samples were dropped): the median of 310 ms sees the step and the stage follows it."""
    ec, made = recording_canceller()
    drive(ec, 12.0, gap_at=6.0, gap=-0.030)
    backend = made[0]
    after = alignment(ec, backend, len(backend.far) - 20, 20)
    assert ec.steps == 1 and ec.gaps == 0 and ec.realignments == 0 and ec.resyncs == 0
    assert abs(after[0]) < 0.5, after


# PulseAudio's first seconds, as measured: the capture stamps run ahead of the sample counts
# by 10.5 ms/s for 4 s, then jump back every 1.5 s while still ramping: (start s, ramp ms/s,
# jump ms at the start)
_PULSE_START = ((0.0, -10.5, 0.0), (4.0, -7.0, 14.2), (5.5, -3.7, 19.4), (7.0, -2.7, 12.8),
                (8.5, -1.6, 7.6), (10.0, 0.0, 4.2))  # fmt: skip


def pulse_capture_stamps(span: int, adc: float) -> float:
    """PulseAudio's capture stamps as measured here against the sample counts (the echo's
    delay in samples did not move meanwhile): a -42 ms excursion over the first 10 s coming
    back in jumps of up to 19 ms, then a sawtooth falling from +9 to -9 ms over 25 s whose
    jump back up is split over two steps, and now and then one span stamped 17 ms early or
    late."""
    if adc < 10.0:
        ms = 0.0
        for (t, ramp, jump), (t_next, _, _) in itertools.pairwise(_PULSE_START):
            if adc >= t:
                ms += jump + ramp * (min(adc, t_next) - t)
        wander = ms / 1000.0
    else:  # from -6.3 ms on at 10 s
        phase = ((adc - 10.0) / 25.0 + 0.85) % 1.0
        wander = 0.0 if phase < 0.002 else 0.009 - 0.018 * phase
    if span % 150 == 77:
        wander -= 0.017
    elif span % 150 == 20:
        wander += 0.017
    return wander


def test_wandering_capture_stamps_do_not_move_the_reference() -> None:
    """Capture stamps that wander and jump (the audio does not) move nothing: no gap, no
    step, no realignment, the alignment stays where it started; the stamps 17 ms off are
    counted as bad (held for the next span to confirm, which it does not)."""
    ec, made = recording_canceller()
    drive(ec, 60.0, mic_wander=pulse_capture_stamps)
    backend = made[0]
    early = alignment(ec, backend, 550, 20)
    late = alignment(ec, backend, len(backend.far) - 20, 20)
    assert ec.gaps == ec.steps == ec.realignments == ec.resyncs == 0
    # the 80 stamps 17 ms off, and the three jumps of more than 10 ms in the first seconds
    assert ec.bad_stamps == 2 * (6000 // 150) + 3, ec.bad_stamps
    assert abs(early[0]) < 10.0 and abs(late[0] - early[0]) <= 0.5, (early, late)


def test_lost_input_is_followed_through_wandering_stamps() -> None:
    ec, made = recording_canceller()
    drive(ec, 12.0, mic_gap_at=6.0, mic_gap=0.030, mic_wander=pulse_capture_stamps)
    backend = made[0]
    before = alignment(ec, backend, 500, 20)
    after = alignment(ec, backend, len(backend.far) - 20, 20, around=before[0] + 30.0)
    assert ec.gaps == 1 and ec.steps == ec.realignments == ec.resyncs == 0
    assert abs(after[0] - before[0] - 30.0) < 0.5, (before, after)


@pytest.mark.parametrize("side", ["speaker", "microphone"])
def test_a_step_with_no_xrun_is_the_stamps_own(side: str) -> None:
    """A 30 ms step in one device's stamps with no discontinuity reported, the audio not
    moving (PulseAudio's capture stamps jump by up to 19 ms, and by 42 ms over the first
    seconds, while the echo's delay in samples stays put): nothing is moved."""
    ec, made = recording_canceller()

    def step(_: int, t: float) -> float:
        return (-0.030 if side == "speaker" else 0.030) if t >= 6.0 else 0.0

    if side == "speaker":
        drive(ec, 12.0, spk_wander=step)
    else:
        drive(ec, 12.0, mic_wander=step)
    backend = made[0]
    before = alignment(ec, backend, 500, 20)
    after = alignment(ec, backend, len(backend.far) - 20, 20)
    assert ec.gaps == ec.steps == ec.realignments == ec.resyncs == ec.discontinuities == 0
    assert abs(after[0] - before[0]) < 0.5, (before, after)


def test_alignment_tolerates_timestamp_jitter() -> None:
    ec, made = recording_canceller(headroom_ms=20.0)
    drive(ec, 12.0, jitter=3e-4)
    backend = made[0]
    early = alignment(ec, backend, 550, 20)
    late = alignment(ec, backend, len(backend.far) - 20, 20)
    assert abs(early[0]) < 10.0 and abs(late[0] - early[0]) <= 0.5, (early, late)
    assert late[1] < 0.05, late
    assert ec.resyncs == 0


def test_a_speaker_restart_resynchronises() -> None:
    """A jump in the reference timeline is followed at once (and counted), not slewed."""
    ec, made = recording_canceller()
    ec.prepare(48000)
    for k in range(300):  # 3 s of speaker blocks, 100 ms ahead of the mic
        ec.on_reference(chirp_ref(48000, k * 0.01, 480), 48000, k * 0.01)
        if k >= 10:
            ec.process(np.zeros(480, np.float32), 48000, (k - 10) * 0.01)
    # the speaker restarts: its sample counter goes on, its DAC times jump 1 s ahead
    for k in range(300, 600):
        ec.on_reference(chirp_ref(48000, 1.0 + k * 0.01, 480), 48000, 1.0 + k * 0.01)
        if k >= 410:
            ec.process(np.zeros(480, np.float32), 48000, (k - 10) * 0.01)
    assert ec.resyncs == 1
    backend = made[0]
    last = backend.far[-1].astype(np.float64) / 32768.0
    t = (599 - 10) * 0.01 + 0.04  # the last mic frame's capture time + headroom
    assert np.max(np.abs(last - chirp_ref(48000, t, 480))) < 0.01


# -- bad input -----------------------------------------------------------------------------


def test_missing_reference_passes_audio_through_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ec, made = recording_canceller()
    x = (0.1 * np.sin(np.arange(48000 * 3) / 10.0)).astype(np.float32)
    with caplog.at_level(logging.WARNING, logger="audio.aec"):
        out = np.concatenate(
            [ec.process(x[i : i + 480], 48000, i / 48000) for i in range(0, len(x), 480)]
        )
    assert ec.reference_missing
    assert ec.missing_reference_ms == pytest.approx(3000.0)
    assert np.all(made[0].far[-1] == 0)
    assert np.max(np.abs(out - x[: len(out)])) <= 1.0 / 32768.0 + 1e-7
    assert any("no reference" in r.getMessage() for r in caplog.records)


def test_microphone_rate_mismatch_is_a_typed_error() -> None:
    ec, _ = recording_canceller()
    ec.process(np.zeros(480, np.float32), 48000, 0.0)
    with pytest.raises(AudioFormatError, match="44100"):
        ec.process(np.zeros(441, np.float32), 44100, 0.01)
    with pytest.raises(AudioFormatError):
        ec.prepare(16000)
    assert ec.prepare(48000) == 48000
    with pytest.raises(AudioFormatError, match="float32"):
        ec.process(np.zeros(480, np.int16), 48000, 0.01)  # type: ignore[arg-type]
    with pytest.raises(AudioFormatError, match="1-D"):
        ec.process(np.zeros((480, 2), np.float32), 48000, 0.01)
    with pytest.raises(AudioFormatError, match="finite"):
        ec.process(np.zeros(480, np.float32), 48000, float("nan"))
    # and it keeps working
    assert len(ec.process(np.zeros(480, np.float32), 48000, 0.01)) == 480


def test_reference_rate_change_is_refused_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ec, made = recording_canceller()
    ec.on_reference(np.zeros(480, np.float32), 48000, 0.0)
    ec.on_reference(np.zeros(441, np.float32), 44100, 0.01)  # another device rate: refused
    ec.on_reference(np.zeros((480, 1), np.float32), 48000, 0.01)  # 2-D: refused
    ec.on_reference(np.zeros(480, np.float32), 48000, 0.01)
    assert ec.reference_rejected == 2
    assert ec.reference_rate == 48000
    with caplog.at_level(logging.WARNING, logger="audio.aec"):
        ec.process(np.zeros(480, np.float32), 48000, 0.0)
    assert any("refused" in r.getMessage() for r in caplog.records)
    assert len(made[0].far) == 1


def test_bad_options() -> None:
    with pytest.raises(AudioFormatError):
        EchoCanceller(headroom_ms=-1.0, backend=RecordingBackend)
    with pytest.raises(AudioFormatError):
        EchoCanceller(reference_seconds=0.1, backend=RecordingBackend)


# -- the library missing: the gate takes over ------------------------------------------------


@pytest.fixture
def no_livekit(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def fake(name: str, package: str | None = None) -> Any:
        if name.startswith("livekit"):
            raise ModuleNotFoundError("No module named 'livekit'")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", fake)


@pytest.mark.usefixtures("no_livekit")
def test_missing_library_names_the_extra() -> None:
    assert not aec_available()
    with pytest.raises(EchoCancellerUnavailable, match=r"pip install 'realtime-voice\[aec\]'"):
        EchoCanceller()
    assert AEC_EXTRA == "realtime-voice[aec]"


@pytest.mark.usefixtures("no_livekit")
def test_microphone_falls_back_to_the_gate() -> None:
    speaker = NullSpeaker(clock="instant")
    mic = Microphone(speaker=speaker)
    assert mic.echo_mode == "gate" and mic.echo_gate is not None
    assert "realtime-voice[aec]" in mic.echo_note
    assert "echo gate" in mic.echo_description
    with pytest.raises(EchoCancellerUnavailable):
        Microphone(speaker=speaker, echo="aec")


def test_microphone_echo_choices() -> None:
    speaker = NullSpeaker(clock="instant")
    assert Microphone().echo_mode == "off"
    assert Microphone(speaker=speaker, echo="off").echo_mode == "off"
    assert Microphone(speaker=speaker, echo="gate").echo_mode == "gate"
    auto = Microphone(speaker=speaker)
    assert auto.echo_mode == "aec" and auto.echo_canceller is not None
    assert "AEC3" in auto.echo_description
    with pytest.raises(AudioError, match="needs the speaker"):
        Microphone(echo="aec")
    with pytest.raises(AudioFormatError):
        Microphone(speaker=speaker, echo="loud")  # type: ignore[arg-type]
    no_reference = SimpleNamespace(is_playing=False)
    assert Microphone(speaker=no_reference).echo_mode == "gate"
    with pytest.raises(AudioError, match="no playback reference"):
        Microphone(speaker=no_reference, echo="aec")


# -- timed reference listeners -----------------------------------------------------------------


def test_speaker_timed_listener_gets_dac_time() -> None:
    speaker = Speaker(device_rate=48000)
    got: list[tuple[int, int, float]] = []
    plain: list[int] = []
    speaker.add_reference_listener(lambda b, r, t: got.append((len(b), r, t)), timed=True)
    speaker.add_reference_listener(lambda b, r: plain.append(r))
    out = np.zeros((speaker.blocksize, 1), np.float32)
    info = SimpleNamespace(currentTime=10.0, outputBufferDacTime=10.125)
    speaker._callback(out, speaker.blocksize, info, SimpleNamespace(output_underflow=False))
    assert got == [(480, 48000, 10.125)]
    assert plain == [48000]


def test_null_speaker_timed_listener_gets_play_clock() -> None:
    now = [100.0]
    speaker = NullSpeaker(clock="realtime", time_source=lambda: now[0])
    got: list[tuple[int, float]] = []
    speaker.add_reference_listener(lambda b, r, t: got.append((len(b), t)), timed=True)
    speaker.enqueue(bytes(4800 * 2), "item")
    now[0] = 100.1
    speaker.is_playing  # noqa: B018 -- advances the play clock
    now[0] = 100.2
    speaker.is_playing  # noqa: B018
    assert got == [(2400, pytest.approx(100.0)), (2400, pytest.approx(100.1))]
    speaker.remove_reference_listener(got.append)  # unknown: ignored


# -- the real canceller on a synthetic echo path -----------------------------------------------


def speech(name: str, rate: int) -> npt.NDArray[np.float32]:
    x, r = read_wav_array(SAMPLES / name)
    mono = np.ascontiguousarray(x.reshape(len(x), -1)[:, 0], dtype=np.float32)
    return np.asarray(resample(mono, r, rate), dtype=np.float32)


def test_webrtc_canceller_removes_a_synthetic_echo() -> None:
    """Reference through a room response (120 ms away): >= 25 dB of ERLE once converged."""
    rate = 16000
    far = speech("long.wav", rate)
    rng = np.random.default_rng(3)
    n_ir = int(0.25 * rate)
    ir = rng.standard_normal(n_ir) * np.exp(-np.arange(n_ir) / (0.05 * rate))
    ir *= np.sqrt(0.5 / np.sum(ir**2))
    ir[0] = 1.0
    ir = np.concatenate([np.zeros(int(0.12 * rate)), ir])
    echo = np.convolve(far, ir)[: len(far)]
    echo = np.tanh(1.5 * echo / np.max(np.abs(echo)) * 0.5) / 1.5
    echo *= 0.05 / np.sqrt(np.mean(echo**2))
    mic = (echo + rng.standard_normal(len(echo)) * 10 ** (-65 / 20)).astype(np.float32)
    ec = EchoCanceller()
    assert ec.prepare(rate) == rate
    out = []
    block = rate // 100
    for i in range(0, len(far) - block + 1, block):
        ec.on_reference(far[i : i + block].copy(), rate, i / rate)
        if i >= 5 * block:
            j = i - 5 * block
            out.append(ec.process(mic[j : j + block].copy(), rate, j / rate))
    y = np.concatenate(out)
    a, b = 3 * rate, len(y)
    erle = 10 * np.log10(np.mean(mic[a:b] ** 2) / np.mean(y[a:b] ** 2))
    assert erle >= 25.0, f"ERLE {erle:.1f} dB"
    assert ec.cpu_per_audio_second > 0.0


def test_reference_listener_allocates_no_sample_buffer() -> None:
    """on_reference (the audio thread's part) copies into preallocated memory only."""
    import tracemalloc

    ec, _ = recording_canceller()
    block = np.ones(480, np.float32)
    for k in range(50):  # warm up (first-block setup)
        ec.on_reference(block, 48000, k * 0.01)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for k in range(50, 1050):
        ec.on_reference(block, 48000, k * 0.01)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename") if s.size_diff > 0)
    assert grown < 480 * 4, f"{grown} bytes retained after 1000 blocks"


# -- the microphone wiring, with a fake sounddevice --------------------------------------


class ReferenceSpeaker:
    """A speaker double: keeps the timed listener the microphone registers."""

    def __init__(self) -> None:
        self.listeners: list[Any] = []
        self.is_playing = False
        self.started = 0

    def start(self) -> None:
        self.started += 1

    def add_reference_listener(self, listener: Any, *, timed: bool = False) -> None:
        assert timed
        self.listeners.append(listener)

    def remove_reference_listener(self, listener: Any) -> None:
        self.listeners.remove(listener)


@pytest.fixture
def fake_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_audio_devices_unit import fake_sd

    # audio.devices the module (the package rebinds the name to its listing function)
    monkeypatch.setattr(importlib.import_module("audio.devices"), "_module", fake_sd())


@pytest.mark.usefixtures("fake_devices")
async def test_microphone_feeds_adc_times_and_cancels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Microphone(speaker=..., echo=ec): ADC times from the callback reach the stage, the
    speaker's reference is registered (and the speaker started), the output is the echo-free
    signal at the session rate, and closing unregisters the listener."""
    ec, made = recording_canceller(headroom_ms=0.0)
    speaker = ReferenceSpeaker()
    mic = Microphone(speaker=speaker, echo=ec, chunk_ms=20)
    assert mic.echo_mode == "aec"
    x = chirp_ref(48000, 0.0, 48000)
    chunks: list[bytes] = []
    async with mic:
        assert speaker.started == 1 and speaker.listeners == [ec.on_reference]
        it = aiter(mic)
        for k in range(0, 48000 - 480, 480):
            # the reference block reaches the DAC at k / 48000; the microphone captures the
            # same signal (a pure, aligned echo) with the ADC time of its first frame
            speaker.listeners[0](x[k : k + 480].copy(), 48000, 100.0 + k / 48000)
            block = np.stack([x[k : k + 480]] * 2, axis=1)
            info = SimpleNamespace(inputBufferAdcTime=100.0 + k / 48000, currentTime=0.0)
            mic._callback(block, 480, info, SimpleNamespace(input_overflow=False))
        while len(chunks) < 45:  # 0.9 s of the 1 s fed, at 24 kHz
            chunks.append(await anext(it))
    assert speaker.listeners == []
    assert not ec.reference_missing and ec.resyncs == 0
    backend = made[0]
    # the far frames fed are the near frames: the stage put them side by side
    near = np.concatenate(backend.near[20:]).astype(np.float64)
    far = np.concatenate(backend.far[20:]).astype(np.float64)
    assert np.max(np.abs(near - far)) <= 0.01 * 32768, np.max(np.abs(near - far))
    assert all(len(c) == 480 * 2 for c in chunks)


@pytest.mark.usefixtures("fake_devices")
async def test_microphone_tells_the_canceller_of_xruns() -> None:
    """An input overflow, or an xrun the speaker counted, reaches the stage as a
    discontinuity (once each): only then are steps in the stamps followed."""
    ec, _ = recording_canceller()
    speaker = ReferenceSpeaker()
    speaker.xruns = 0  # type: ignore[attr-defined]
    mic = Microphone(speaker=speaker, echo=ec, chunk_ms=20)
    async with mic:
        it = aiter(mic)
        for k in range(0, 48000, 480):
            t = 100.0 + k / 48000
            speaker.listeners[0](np.zeros(480, np.float32), 48000, t)
            info = SimpleNamespace(inputBufferAdcTime=t, currentTime=0.0)
            overflow = k == 9600
            if k == 24000:
                speaker.xruns += 1  # type: ignore[attr-defined]
            block = np.zeros((480, 2), np.float32)
            mic._callback(block, 480, info, SimpleNamespace(input_overflow=overflow))
            if k % 960 == 480:
                await anext(it)
    assert mic.xruns == 1 and ec.discontinuities == 2


@pytest.mark.usefixtures("fake_devices")
async def test_microphone_falls_back_when_the_canceller_fails_to_start() -> None:
    """echo="auto": a canceller whose library fails at start leaves the gate in charge."""

    def broken(rate: int) -> RecordingBackend:
        raise EchoCancellerUnavailable("the library did not start")

    speaker = ReferenceSpeaker()
    mic = Microphone(speaker=speaker)
    assert mic.echo_mode == "aec"
    mic.echo_canceller = EchoCanceller(backend=broken)
    async with mic:
        assert mic.echo_mode == "gate" and mic.echo_gate is not None
        assert "did not start" in mic.echo_note and speaker.listeners == []
    insisting = Microphone(speaker=speaker, echo=EchoCanceller(backend=broken))
    with pytest.raises(EchoCancellerUnavailable):
        insisting.start()
