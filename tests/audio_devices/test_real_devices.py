"""Microphone and Speaker through PortAudio on virtual PulseAudio devices (issue 4, item 8).

The virtual microphone is fed with ``paplay -d micsink``; what the speaker plays is recorded
from ``spk.monitor`` with ``parec``. Signals are synthetic speech-like noise bursts (a
syllable-rate envelope over band-limited noise), so cross-correlation aligns them exactly.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from virtual_pulse import RATE as MONITOR_RATE
from virtual_pulse import VirtualPulse, write_wav_mono

from audio.devices import devices, resolve_device
from audio.microphone import Microphone
from audio.resample import resample
from audio.speaker import Speaker

pytestmark = [pytest.mark.audio_device, pytest.mark.timeout(60)]

SESSION_RATE = 24000


def speechlike(seconds: float, rate: int, seed: int = 1) -> npt.NDArray[np.float32]:
    """Noise bursts shaped like syllables: ~4 Hz envelope over 100-3400 Hz noise, peak 0.5."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    spectrum[(freqs < 100.0) | (freqs > 3400.0)] = 0.0
    noise = np.fft.irfft(spectrum, n)
    t = np.arange(n) / rate
    envelope = 0.25 + 0.75 * np.abs(np.sin(2 * np.pi * 2.1 * t + rng.uniform(0, 1)))
    x = noise * envelope
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def pcm16(x: npt.NDArray[np.float32]) -> bytes:
    """float -> PCM16 bytes."""
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


def align(recording: npt.NDArray[np.float32], reference: npt.NDArray[np.float32]) -> int:
    """Offset of *reference* inside *recording*, by FFT cross-correlation of its first 0.5 s."""
    probe = reference[: min(len(reference), MONITOR_RATE // 2)]
    n = 1 << int(np.ceil(np.log2(len(recording) + len(probe))))
    corr = np.fft.irfft(np.fft.rfft(recording, n) * np.conj(np.fft.rfft(probe, n)), n)
    return int(np.argmax(corr[: len(recording)]))


def correlation(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    """Pearson correlation over the common length, after sub-sample alignment.

    The path through the sound server resamples, so the delay is not a whole number of
    samples: the peak of the cross-correlation is refined by a parabola and *a* is shifted
    by the fraction (FFT phase shift) before correlating.
    """
    n = min(len(a), len(b))
    a, b = a[:n].astype(np.float64), b[:n].astype(np.float64)
    lags = np.arange(-2, 3)
    c = np.array([np.dot(np.roll(a, -int(k)), b) for k in lags])
    i = int(np.argmax(c[1:4])) + 1
    denom = c[i - 1] - 2 * c[i] + c[i + 1]
    frac = float(lags[i]) + (0.5 * (c[i - 1] - c[i + 1]) / denom if denom else 0.0)
    freqs = np.fft.rfftfreq(n)
    shifted = np.fft.irfft(np.fft.rfft(a) * np.exp(2j * np.pi * freqs * frac), n)
    return float(np.corrcoef(shifted[2:-2], b[2:-2])[0, 1])


Trial = dict[str, Any]


async def clean_trial(trial: Callable[[int], Awaitable[Trial]], attempts: int = 3) -> Trial:
    """Run a device trial, again (up to *attempts*) while PortAudio reported xruns.

    An xrun flagged by PortAudio means the audio thread was starved of CPU (these machines
    are shared); it leaves a gap in the recording that no code here can prevent. Only such
    trials are repeated; the caller asserts on the last one, xruns included.
    """
    result: Trial = {}
    for attempt in range(attempts):
        result = await trial(attempt)
        result["attempts"] = attempt + 1
        if result["xruns"] == 0:
            break
    return result


def test_portaudio_sees_virtual_devices(pulse: VirtualPulse) -> None:
    """PortAudio lists the PulseAudio devices; defaults resolve; names resolve by substring."""
    names = [d.name for d in devices()]
    assert "default" in names or "pulse" in names
    out = resolve_device(None, "output")
    inp = resolve_device(None, "input")
    assert out.max_output_channels > 0 and inp.max_input_channels > 0
    assert resolve_device("puls", "output").name == "pulse"


async def test_microphone_captures_virtual_mic(pulse: VirtualPulse, tmp_path: Path) -> None:
    """A WAV played into the virtual microphone comes out of Microphone with corr >= 0.95."""
    source = speechlike(1.5, MONITOR_RATE, seed=2)
    padded = np.concatenate([np.zeros(4800, np.float32), source, np.zeros(4800, np.float32)])
    wav = tmp_path / "mic.wav"
    write_wav_mono(wav, padded, MONITOR_RATE)

    async def trial(attempt: int) -> Trial:
        chunks: list[bytes] = []
        levels: list[float] = []
        async with Microphone(chunk_ms=20) as mic:
            player = None
            started = deadline = time.monotonic() + 10.0
            async for chunk in mic:
                chunks.append(chunk)
                levels.append(mic.level_dbfs)
                if player is None:
                    player = pulse.play_into_mic(wav)
                    started = time.monotonic()
                elif player.poll() is not None and time.monotonic() - started > 2.0:
                    break
                assert time.monotonic() < deadline
            assert player is not None and player.wait() == 0
            return {
                "chunks": chunks,
                "levels": levels,
                "overflows": mic.overflows,
                "xruns": mic.xruns + mic.overflows,
            }

    result = await clean_trial(trial)
    assert result["xruns"] == 0, f"input overflows in all {result['attempts']} attempts"
    chunks = result["chunks"]
    assert all(len(c) == 480 * 2 for c in chunks)
    captured = np.frombuffer(b"".join(chunks), "<i2").astype(np.float32) / 32768.0
    reference = resample(source, MONITOR_RATE, SESSION_RATE)
    lag = align(captured, reference)
    corr = correlation(captured[lag:], reference)
    assert corr >= 0.95, f"correlation {corr:.3f} at lag {lag}"
    assert max(result["levels"]) > -30.0


async def test_speaker_plays_to_monitor(pulse: VirtualPulse, tmp_path: Path) -> None:
    """Audio written by Speaker is recorded from spk.monitor with corr >= 0.95, no underruns."""
    signal = speechlike(1.5, SESSION_RATE, seed=3)
    data = pcm16(signal)

    async def trial(attempt: int) -> Trial:
        recorder = pulse.record("spk.monitor", tmp_path / f"spk{attempt}.raw")
        try:
            async with Speaker() as speaker:
                await asyncio.sleep(0.1)
                for k in range(0, len(data), 4800):
                    speaker.enqueue(data[k : k + 4800], "item_a")
                playing = speaker.is_playing
                await asyncio.wait_for(speaker.drained(), 5.0)
                result = {
                    "playing_before": playing,
                    "playing_after": speaker.is_playing,
                    "played_ms": speaker.played_ms("item_a"),
                    "underruns": speaker.underruns,
                    "xruns": speaker.xruns,
                }
            await asyncio.sleep(0.1)
        finally:
            result["recorded"] = recorder.stop()
        return result

    result = await clean_trial(trial)
    assert result["xruns"] == 0, f"device underflows in all {result['attempts']} attempts"
    assert result["underruns"] == 0
    assert result["playing_before"] and not result["playing_after"]
    assert result["played_ms"] == pytest.approx(1500.0, abs=2.0)
    recorded = result["recorded"]
    reference = resample(signal, SESSION_RATE, MONITOR_RATE)
    lag = align(recorded, reference)
    corr = correlation(recorded[lag:], reference)
    assert corr >= 0.95, f"correlation {corr:.3f} at lag {lag}"


async def test_interrupt_silences_and_reports_heard_position(
    pulse: VirtualPulse, tmp_path: Path
) -> None:
    """After interrupt() the monitor is silent within latency + one block; position within 30 ms.

    "Latency" is what PortAudio's timing says the driver and sound server hold: the DAC lead
    of the last block written (``outputBufferDacTime - currentTime``) plus that block; the
    fade adds one block.
    """
    signal = speechlike(3.0, SESSION_RATE, seed=4)

    async def trial(attempt: int) -> Trial:
        recorder = pulse.record("spk.monitor", tmp_path / f"int{attempt}.raw")
        try:
            async with Speaker() as speaker:
                await asyncio.sleep(0.1)
                speaker.enqueue(pcm16(signal), "item_b")
                while speaker.played_ms("item_b") < 900.0:
                    await asyncio.sleep(0.005)
                result: Trial = {"recorded_at_interrupt": recorder.path.stat().st_size // 2}
                result["heard"] = speaker.interrupt()
                while speaker.is_playing:
                    await asyncio.sleep(0.005)
                result["final"] = speaker.played_ms("item_b")
                speaker.enqueue(pcm16(signal[:4800]), "item_b")  # ignored: item interrupted
                result["queued_after"] = speaker.queued_ms
                await asyncio.sleep(0.4)
                result["block_s"] = speaker.blocksize / speaker.device_rate
                result["max_lead"] = speaker.max_dac_lead
                result["xruns"] = speaker.xruns
            await asyncio.sleep(0.05)
        finally:
            result["recorded"] = recorder.stop()
        return result

    result = await clean_trial(trial)
    assert result["xruns"] == 0, f"device underflows in all {result['attempts']} attempts"
    heard = result["heard"]
    assert heard is not None and heard.item_id == "item_b"
    assert result["final"] == pytest.approx(heard.played_ms, abs=1.0)
    assert result["queued_after"] == 0.0
    recorded = result["recorded"]
    reference = resample(signal, SESSION_RATE, MONITOR_RATE)
    start = align(recorded, reference)
    loud = np.nonzero(np.abs(recorded[start:]) > 2e-3)[0]
    end = start + int(loud[-1]) + 1
    assert len(recorded) - end > MONITOR_RATE // 5, "the recording must show silence after"
    monitor_heard_ms = (end - start) * 1000.0 / MONITOR_RATE
    assert abs(heard.played_ms - monitor_heard_ms) <= 30.0, (heard, monitor_heard_ms)
    # time from interrupt() to silence, on the recording's own clock; parec's 10 ms
    # capture latency makes this an over-estimate, hence the 10 ms allowance
    silence_after_s = (end - result["recorded_at_interrupt"]) / MONITOR_RATE
    block_s = result["block_s"]
    bound = result["max_lead"] + block_s + block_s + 0.010
    assert silence_after_s <= bound, (silence_after_s, bound)


async def test_bursty_producer_no_underruns(pulse: VirtualPulse) -> None:
    """A producer delivering 200 ms bursts at jittered intervals causes no underruns."""
    signal = speechlike(2.4, SESSION_RATE, seed=5)
    data = pcm16(signal)
    burst = int(0.2 * SESSION_RATE) * 2

    async def trial(attempt: int) -> Trial:
        rnd = random.Random(7 + attempt)
        async with Speaker() as speaker:
            await asyncio.sleep(0.1)
            speaker.enqueue(data[:burst], "item_c")
            xruns_at_priming = None
            sent = burst
            t0 = time.monotonic()
            while sent < len(data):
                due = t0 + (sent / 2 / SESSION_RATE) - 0.15 + rnd.uniform(-0.06, 0.06)
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if xruns_at_priming is None and speaker.played_ms("item_c") > 0:
                    xruns_at_priming = speaker.xruns
                speaker.enqueue(data[sent : sent + burst], "item_c")
                sent += burst
            await asyncio.wait_for(speaker.drained(), 5.0)
            assert xruns_at_priming is not None
            return {
                "played_ms": speaker.played_ms("item_c"),
                "underruns": speaker.underruns,
                "xruns": speaker.xruns - xruns_at_priming,
            }

    result = await clean_trial(trial)
    assert result["underruns"] == 0
    assert result["xruns"] == 0, f"device underflows in all {result['attempts']} attempts"
    assert result["played_ms"] == pytest.approx(2400.0, abs=2.0)


async def test_silent_microphone_warns(
    pulse: VirtualPulse, caplog: pytest.LogCaptureFixture
) -> None:
    """A virtual microphone fed nothing delivers zeros; after 2 s Microphone warns once."""
    with caplog.at_level("WARNING", logger="audio.microphone"):
        async with Microphone(chunk_ms=100, silence_warning_s=2.0) as mic:
            seen = 0
            async for _ in mic:
                seen += 1
                if mic.is_silent or seen >= 40:
                    break
            warned, level = mic.silence_warnings, mic.level_dbfs
    assert warned == 1, f"no warning after {seen * 100} ms of input"
    assert 20 <= seen < 40
    assert level == -120.0
    assert any("only zeros" in r.getMessage() for r in caplog.records)
