"""Double talk (issue 13): SpeexDSP taking over from AEC3 while the user talks over a reply.

The real libraries (livekit's AEC3, Debian's libspeexdsp) on a synthetic echo path at
16 kHz (no resampling inside the stage, so outputs line up with the inputs), plus the parts
on their own: the delay estimator, SpeexDSP's backend and its absence.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import audio.speex as speex_module
from audio.aec import EchoCanceller, LivekitBackend
from audio.doubletalk import DelayEstimator, DoubleTalkBackend
from audio.exceptions import AudioError, AudioFormatError, EchoCancellerUnavailable
from audio.speex import SpeexBackend, speex_available
from tests.test_audio_aec import speech

RATE = 16000
F64 = npt.NDArray[np.float64]


def room(delay_s: float, seed: int = 3) -> F64:
    """A decaying random room response ``delay_s`` away (direct path first)."""
    rng = np.random.default_rng(seed)
    n = int(0.25 * RATE)
    ir = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.05 * RATE))
    ir *= np.sqrt(0.5 / np.sum(ir**2))
    ir[0] = 1.0
    return np.concatenate([np.zeros(int(delay_s * RATE)), ir])


def scene(delay_s: float = 0.12) -> tuple[F64, F64, F64, int]:
    """(far, mic, voice-in-mic, voice start): 17 s of the assistant's speech through the
    room at -26 dBFS, and the user's question at the same level in its last 3.5 s."""
    far = np.concatenate([speech("long.wav", RATE)] * 2).astype(np.float64)
    echo = np.convolve(far, room(delay_s))[: len(far)]
    echo *= 0.05 / np.sqrt(np.mean(echo**2))
    voice = speech("question.wav", RATE).astype(np.float64)
    voice *= 0.05 / np.sqrt(np.mean(voice[np.abs(voice) > 1e-3] ** 2))
    at = len(far) - len(voice) - RATE
    near = np.zeros(len(far))
    near[at : at + len(voice)] = voice
    noise = np.random.default_rng(5).standard_normal(len(far)) * 10 ** (-65 / 20)
    return far, echo + near + noise, near, at


def run(ec: EchoCanceller, far: F64, mic: F64) -> F64:
    """Through the stage, 10 ms blocks, the reference 50 ms ahead of capture."""
    assert ec.prepare(RATE) == RATE
    block = RATE // 100
    out = []
    for i in range(0, len(far) - block + 1, block):
        ec.on_reference(far[i : i + block].astype(np.float32), RATE, i / RATE)
        if i >= 5 * block:
            j = i - 5 * block
            out.append(ec.process(mic[j : j + block].astype(np.float32), RATE, j / RATE))
    return np.concatenate(out).astype(np.float64)


def voice_kept_db(out: F64, voice: F64, at: int) -> float:
    """How much of the output is the user's voice: scaled voice over what else is there (dB),
    at the best alignment (the stage delays its output by about a frame)."""
    v = voice[at : at + int(3.0 * RATE)]

    def fit(lag: int) -> float:
        y = out[at + lag : at + lag + len(v)]
        gain = float(np.dot(y, v) / np.dot(v, v))
        rest = y - gain * v
        return float(10 * np.log10(np.sum((gain * v) ** 2) / (np.sum(rest**2) + 1e-12)))

    return max(fit(lag) for lag in range(0, int(0.03 * RATE)))


# -- the whole stage ---------------------------------------------------------------------------


def test_double_talk_keeps_the_voice_and_the_echo_reduction() -> None:
    """Echo only: the same deep reduction as AEC3 alone (>= 25 dB). The user talking over
    the reply at the echo's level: AEC3 alone garbles the voice (more distortion than voice);
    with SpeexDSP taking over, the voice dominates its output by >= 5 dB."""
    far, mic, voice, at = scene()
    results = {}
    for double_talk in (False, True):
        ec = EchoCanceller(double_talk=double_talk)
        assert ec.double_talk is double_talk
        out = run(ec, far, mic)
        a, b = 3 * RATE, at - RATE
        erle = 10 * np.log10(np.mean(mic[a:b] ** 2) / np.mean(out[a:b] ** 2))
        results[double_talk] = (erle, voice_kept_db(out, voice, at), ec)
    (erle_alone, kept_alone, _), (erle_dt, kept_dt, ec) = results[False], results[True]
    assert erle_alone >= 25.0 and erle_dt >= 25.0, (erle_alone, erle_dt)
    assert kept_dt >= 5.0, f"voice {kept_dt:.1f} dB above the rest"
    assert kept_dt >= kept_alone + 5.0, (kept_alone, kept_dt)
    backend = ec._backend
    assert isinstance(backend, DoubleTalkBackend)
    assert backend.near_active_ms >= 1000.0  # SpeexDSP's output used while the user spoke
    assert backend.speex_erle_db >= 12.0
    assert backend.delay_ms == pytest.approx(120 + 50 - 20, abs=15)  # path + lead - margin


def test_echo_only_output_is_aec3s() -> None:
    """Without a voice, SpeexDSP's output is never used (no false near-end detection)."""
    far, _, _, _ = scene()
    echo = np.convolve(far, room(0.12))[: len(far)]
    echo *= 0.05 / np.sqrt(np.mean(echo**2))
    ec = EchoCanceller(double_talk=True)
    run(ec, far, echo)
    backend = ec._backend
    assert isinstance(backend, DoubleTalkBackend)
    assert backend.near_active_ms <= 100.0


def test_double_talk_is_asked_for() -> None:
    """``EchoCanceller()`` (what the microphone's ``echo="auto"`` builds) is AEC3 alone;
    ``double_talk=True`` pairs it with SpeexDSP."""
    assert speex_available()
    ec = EchoCanceller()
    assert ec.double_talk is False
    ec.prepare(RATE)
    assert isinstance(ec._backend, LivekitBackend)
    both = EchoCanceller(double_talk=True)
    both.prepare(RATE)
    assert both.double_talk is True and isinstance(both._backend, DoubleTalkBackend)


def test_speex_is_used_once_it_takes_6_db_off() -> None:
    """A voice while SpeexDSP takes 8 dB off the echo: its output is used (at 12 dB, the
    threshold before, a user talking in the first seconds of the first reply was garbled);
    at 3 dB it is not."""
    n = RATE // 100
    for gain, used in ((0.4, True), (0.7, False)):  # 8 dB, 3 dB
        aec3, spx = Scaled(RATE, 0.001), Scaled(RATE, gain)
        backend = DoubleTalkBackend(RATE, aec3=aec3, speex=spx)
        rng = np.random.default_rng(4)
        for k in range(350):
            if k == 300:
                aec3.gain = spx.gain = 1.0  # neither reduces the frames: a voice
            x = (rng.standard_normal(n) * 3000).astype(np.int16)
            backend.process(x.copy(), x)
        assert (backend.near_active_ms > 0.0) is used, (gain, backend.speex_erle_db)


def test_without_libspeexdsp_the_stage_is_aec3_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """libspeexdsp missing: double_talk is False and the canceller is AEC3 alone."""

    def missing(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError("libspeexdsp.so.1: cannot open shared object file")

    monkeypatch.setattr(speex_module, "_lib", None)
    monkeypatch.setattr(ctypes, "CDLL", missing)
    assert not speex_available()
    ec = EchoCanceller(double_talk=True)
    assert ec.double_talk is False
    ec.prepare(RATE)
    assert isinstance(ec._backend, LivekitBackend)
    with pytest.raises(EchoCancellerUnavailable, match="apt install libspeexdsp1"):
        SpeexBackend(RATE)


# -- the parts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [16000, 48000])
def test_delay_estimator_finds_the_delay(rate: int) -> None:
    """Noise and its copy 137 ms later (plus noise): the estimate within 1 ms; a silent
    reference gives none."""
    rng = np.random.default_rng(1)
    n = rate // 100
    far = (rng.standard_normal(3 * rate) * 3000).astype(np.float32)
    d = int(0.137 * rate)
    near = np.concatenate([np.zeros(d, np.float32), far[:-d] * 0.3])
    near += (rng.standard_normal(len(near)) * 100).astype(np.float32)
    est = DelayEstimator(rate)
    for i in range(0, len(far) - n + 1, n):
        est.add(near[i : i + n], far[i : i + n])
    assert est.delay_ms == pytest.approx(137.0, abs=1.0) and est.estimates >= 3
    quiet = DelayEstimator(rate)
    for i in range(0, len(far) - n + 1, n):
        quiet.add(near[i : i + n], np.zeros(n, np.float32))
    assert quiet.delay_ms is None
    with pytest.raises(AudioFormatError, match="8 kHz"):
        DelayEstimator(44100)


def test_speex_backend_converges_and_refuses_bad_input() -> None:
    """SpeexDSP alone on the echo (its delay compensated): >= 20 dB after 8 s; a bad rate,
    filter length or a closed state are typed errors."""
    far, _, _, _ = scene()
    echo = np.convolve(far, room(0.0))[: len(far)]
    echo *= 0.05 / np.sqrt(np.mean(echo**2))
    backend = SpeexBackend(RATE)
    n = RATE // 100
    f16 = (far * 32767).astype(np.int16)
    m16 = (echo * 32767).astype(np.int16)
    out = np.zeros(len(m16))
    for i in range(0, len(m16) - n + 1, n):
        frame = m16[i : i + n].copy()
        backend.process(frame, f16[i : i + n].copy())
        out[i : i + n] = frame
    a = 8 * RATE
    erle = 10 * np.log10(np.mean(m16[a:].astype(np.float64) ** 2) / np.mean(out[a:] ** 2))
    assert erle >= 20.0, f"ERLE {erle:.1f} dB"
    backend.close()
    with pytest.raises(AudioError, match="closed"):
        backend.process(np.zeros(n, np.int16), np.zeros(n, np.int16))
    with pytest.raises(AudioFormatError, match="8/16/32/48 kHz"):
        SpeexBackend(44100)
    with pytest.raises(AudioFormatError, match="filter_ms"):
        SpeexBackend(RATE, filter_ms=10.0)
    with pytest.raises(AudioFormatError, match="cannot serve"):
        DoubleTalkBackend(44100, aec3=object(), speex=SpeexBackend(RATE))


class Scaled:
    """A canceller double that scales the microphone by ``gain`` (a set echo reduction)."""

    def __init__(self, rate: int, gain: float) -> None:
        self.rate = rate
        self.gain = gain

    def process(self, near: npt.NDArray[np.int16], far: npt.NDArray[np.int16]) -> None:
        near[:] = (near * self.gain).astype(np.int16)

    def set_stream_delay_ms(self, delay_ms: int) -> None:
        pass


def test_switching_rules_and_the_holdoff_after_a_realignment() -> None:
    """Echo only (AEC3 takes 60 dB off): AEC3's output, SpeexDSP's reduction learnt (26 dB).
    A frame AEC3 barely reduces while SpeexDSP takes it off as echo: echo AEC3 lost hold of
    (AEC3's output still); a frame neither reduces (a voice): SpeexDSP's. After the stage says the
    reference moved, AEC3's output only, for a second, even if it looks like a voice."""
    aec3, spx = Scaled(RATE, 0.001), Scaled(RATE, 0.05)
    backend = DoubleTalkBackend(RATE, aec3=aec3, speex=spx)
    rng = np.random.default_rng(2)
    n = RATE // 100

    def frames(count: int) -> list[npt.NDArray[np.int16]]:
        out = []
        for _ in range(count):
            x = (rng.standard_normal(n) * 3000).astype(np.int16)
            near = x.copy()
            backend.process(near, x)
            out.append(near)
        return out

    quiet = frames(300)
    assert backend.near_active_ms == 0.0 and backend.speex_erle_db == pytest.approx(26, abs=1)
    assert np.max(np.abs(quiet[-1])) <= 20  # AEC3's (scaled by 0.001)
    aec3.gain = 1.0  # AEC3 loses hold of the echo, SpeexDSP still takes it off: echo
    frames(50)
    assert backend.near_active_ms == 0.0
    spx.gain = 1.0  # neither reduces the frames: a voice
    frames(50)
    assert backend.near_active_ms >= 400.0
    used = backend.near_active_ms
    backend.realigned()
    frames(100)
    assert backend.near_active_ms == used and backend.realignments == 1
    frames(10)
    assert backend.near_active_ms > used  # the holdoff is over


def test_the_first_reply_after_a_voice_measures_speex_afresh() -> None:
    """SpeexDSP adapts to a user's voice and may lose the echo path: once the voice is over
    and the far end comes back after a silence (the next reply), its echo reduction is
    measured again before its output is used (not the figure from before the voice)."""
    aec3, spx = Scaled(RATE, 0.001), Scaled(RATE, 0.05)
    backend = DoubleTalkBackend(RATE, aec3=aec3, speex=spx)
    rng = np.random.default_rng(6)
    n = RATE // 100

    def frames(count: int, far_on: bool = True) -> None:
        for _ in range(count):
            x = (rng.standard_normal(n) * 3000).astype(np.int16)
            backend.process(x.copy(), x if far_on else np.zeros(n, np.int16))

    frames(300)
    assert backend.speex_erle_db == pytest.approx(26, abs=1)
    aec3.gain = spx.gain = 1.0  # the user barges in
    frames(50)
    assert backend.near_active_ms >= 400.0
    aec3.gain, spx.gain = 0.001, 0.05
    frames(60, far_on=False)  # the reply was cut; the server thinks
    frames(1)  # the next reply starts
    assert backend.speex_erle_db == 0.0
    used = backend.near_active_ms
    aec3.gain = spx.gain = 1.0  # a voice-like frame before SpeexDSP proved itself again
    frames(10)
    assert backend.near_active_ms == used
    aec3.gain, spx.gain = 0.001, 0.05
    frames(100)  # 1 s of echo only: measured again
    assert backend.speex_erle_db == pytest.approx(26, abs=1)
