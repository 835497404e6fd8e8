"""Echo cancellation on real PortAudio streams through PulseAudio (issue 13).

The echo path is PulseAudio's ``module-loopback`` from the virtual speaker's monitor into the
virtual microphone, with added latency: the canceller faces a real device delay, found from
PortAudio's DAC/ADC timestamps plus its own estimator. Two microphones read the same virtual
source at once: one raw (``echo="off"``), one through the canceller; their levels over the
same wall-clock windows give the echo return loss enhancement.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from virtual_pulse import RATE as MONITOR_RATE
from virtual_pulse import VirtualPulse, write_wav_mono

from audio.microphone import Microphone
from audio.resample import resample
from audio.speaker import Speaker
from audio.wav import read_wav_array

pytestmark = [pytest.mark.audio_device, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "share" / "samples"


def speech(name: str, rate: int) -> npt.NDArray[np.float32]:
    x, r = read_wav_array(SAMPLES / name)
    mono = np.ascontiguousarray(x.reshape(len(x), -1)[:, 0], dtype=np.float32)
    return np.asarray(resample(mono, r, rate), dtype=np.float32)


def pcm16(x: npt.NDArray[np.float32]) -> bytes:
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


Capture = list[tuple[float, npt.NDArray[np.float32]]]


async def capture(mic: Microphone, into: Capture, stop: asyncio.Event) -> None:
    async for chunk in mic:
        into.append((time.monotonic(), np.frombuffer(chunk, "<i2").astype(np.float32) / 32768))
        if stop.is_set():
            return


def power(chunks: Capture, start: float, end: float) -> float:
    xs = [x for t, x in chunks if start <= t < end]
    return float(np.mean(np.concatenate(xs) ** 2)) if xs else 0.0


async def _echo_trial(pulse: VirtualPulse, near_wav: Path) -> dict[str, Any]:
    far = speech("long.wav", 24000)
    module = pulse.add_echo_path(latency_ms=80)
    try:
        async with Speaker() as speaker:
            raw_mic = Microphone(chunk_ms=20, echo="off")
            aec_mic = Microphone(chunk_ms=20, speaker=speaker, echo="aec")
            raw: Capture = []
            out: Capture = []
            stop = asyncio.Event()
            async with raw_mic, aec_mic:
                tasks = [
                    asyncio.ensure_future(capture(raw_mic, raw, stop)),
                    asyncio.ensure_future(capture(aec_mic, out, stop)),
                ]
                await asyncio.sleep(0.3)
                t_play = time.monotonic()
                speaker.enqueue(pcm16(far), "reply")
                await asyncio.wait_for(speaker.drained(), 30)
                t_far_end = time.monotonic()
                await asyncio.sleep(0.5)  # the echo tail dies out
                t_near = time.monotonic()
                player = pulse.play_into_mic(near_wav)
                await asyncio.to_thread(player.wait, 20)
                t_near_end = time.monotonic()
                stop.set()
                await asyncio.wait_for(asyncio.gather(*tasks), 5)
            ec = aec_mic.echo_canceller
            assert ec is not None
            xruns = speaker.xruns + raw_mic.overflows + aec_mic.overflows + aec_mic.xruns
    finally:
        pulse.remove_echo_path(module)
    return {
        "echo_in": power(raw, t_play + 3.0, t_far_end),
        "echo_out": power(out, t_play + 3.0, t_far_end),
        "near_in": power(raw, t_near, t_near_end),
        "near_out": power(out, t_near, t_near_end),
        "ec": ec,
        "device_rate": speaker.device_rate,
        "xruns": xruns,
    }


async def test_canceller_removes_a_real_device_echo(pulse: VirtualPulse, tmp_path: Path) -> None:
    """Speaker -> loopback (80 ms) -> microphone: >= 20 dB ERLE after 3 s; near-end kept.

    As in test_real_devices.py, a trial in which PortAudio reported xruns (the audio thread
    starved of CPU on these shared machines: gaps no code here can prevent) is run again, up
    to 3 times; the assertions apply to the last one, xruns included.
    """
    near = speech("question.wav", MONITOR_RATE)
    near_wav = tmp_path / "near.wav"
    write_wav_mono(near_wav, near, MONITOR_RATE)
    for _attempt in range(3):
        r = await _echo_trial(pulse, near_wav)
        if r["xruns"] == 0:
            break
    ec = r["ec"]
    assert r["echo_in"] > 1e-4, "the loopback carried no echo"
    erle = 10 * np.log10(r["echo_in"] / max(r["echo_out"], 1e-12))
    kept_db = 10 * np.log10(r["near_out"] / r["near_in"])
    print(
        f"ERLE {erle:.1f} dB, near-end kept {kept_db:+.1f} dB, delay {ec.delay_ms:.0f} ms, "
        f"steps {ec.steps}, resyncs {ec.resyncs}, realignments {ec.realignments}, "
        f"xruns {r['xruns']}"
    )
    assert r["xruns"] == 0, "xruns in all 3 attempts"
    assert not ec.reference_missing and ec.reference_rate == r["device_rate"]
    assert 20.0 <= ec.delay_ms <= 1000.0
    assert erle >= 20.0, f"ERLE {erle:.1f} dB"
    assert kept_db >= -3.0, f"near-end speech lost {kept_db:.1f} dB"


def span(chunks: Capture, start: float, end: float) -> npt.NDArray[np.float64]:
    xs = [x for t, x in chunks if start <= t < end]
    return np.concatenate(xs).astype(np.float64) if xs else np.zeros(1)


def voice_kept_db(out: npt.NDArray[np.float64], voice: npt.NDArray[np.float64]) -> float:
    """The voice in ``out`` over everything else there (dB), at the best alignment."""
    n = len(voice)
    corr = np.correlate(out, voice, mode="valid")  # out is longer: every lag
    lag = int(np.argmax(np.abs(corr)))
    y = out[lag : lag + n]
    gain = float(np.dot(y, voice) / np.dot(voice, voice))
    rest = y - gain * voice
    return float(10 * np.log10(np.sum((gain * voice) ** 2) / (np.sum(rest**2) + 1e-12)))


async def _double_talk_trial(pulse: VirtualPulse, near_wav: Path) -> tuple[float, float, int]:
    from audio.aec import EchoCanceller

    far = speech("long.wav", 24000)
    module = pulse.add_echo_path(latency_ms=80)
    try:
        async with Speaker() as speaker:
            alone = Microphone(chunk_ms=20, speaker=speaker, echo=EchoCanceller(double_talk=False))
            both = Microphone(chunk_ms=20, speaker=speaker, echo=EchoCanceller(double_talk=True))
            out_alone: Capture = []
            out_both: Capture = []
            stop = asyncio.Event()
            async with alone, both:
                tasks = [
                    asyncio.ensure_future(capture(alone, out_alone, stop)),
                    asyncio.ensure_future(capture(both, out_both, stop)),
                ]
                await asyncio.sleep(0.3)
                speaker.enqueue(pcm16(far), "reply1")  # the cancellers converge on it
                await asyncio.wait_for(speaker.drained(), 30)
                speaker.enqueue(pcm16(far), "reply2")
                await asyncio.sleep(2.0)
                t_near = time.monotonic()
                player = pulse.play_into_mic(near_wav)
                await asyncio.to_thread(player.wait, 20)
                t_end = time.monotonic()
                speaker.interrupt()
                stop.set()
                await asyncio.wait_for(asyncio.gather(*tasks), 5)
            assert both.echo_canceller is not None and both.echo_canceller.double_talk
            xruns = speaker.xruns + alone.overflows + both.overflows
    finally:
        pulse.remove_echo_path(module)
    voice, rate = read_wav_array(near_wav)
    ref = np.asarray(resample(voice.reshape(-1).astype(np.float32), rate, 24000), np.float64)
    kept_alone = voice_kept_db(span(out_alone, t_near - 0.5, t_end + 0.5), ref)
    kept_both = voice_kept_db(span(out_both, t_near - 0.5, t_end + 0.5), ref)
    return kept_alone, kept_both, xruns


async def test_double_talk_on_real_devices(pulse: VirtualPulse, tmp_path: Path) -> None:
    """The user talks over the second reply (echo through an 80 ms loopback): with SpeexDSP
    taking over, more of the voice comes through than with AEC3 alone (two cancelling
    microphones read the same source at once). Retried on xruns, as above."""
    near_wav = tmp_path / "near.wav"
    write_wav_mono(near_wav, speech("question.wav", MONITOR_RATE) * np.float32(0.5), MONITOR_RATE)
    for _attempt in range(3):
        kept_alone, kept_both, xruns = await _double_talk_trial(pulse, near_wav)
        if xruns == 0:
            break
    print(f"voice kept: AEC3 alone {kept_alone:+.1f} dB, with SpeexDSP {kept_both:+.1f} dB")
    assert xruns == 0, "xruns in all 3 attempts"
    assert kept_both >= kept_alone + 3.0, (kept_alone, kept_both)


def _talk(pulse: VirtualPulse, tmp_path: Path, *args: str, shadow: bool = False) -> tuple[int, str]:
    """Run ``realtime talk`` on the virtual devices against an unreachable URL."""
    env = {**os.environ, **pulse.env, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    env.pop("OPENAI_API_KEY", None)
    paths = [str(ROOT)]
    if shadow:  # a livekit package that cannot be imported: the canceller's library missing
        (tmp_path / "livekit").mkdir(exist_ok=True)
        (tmp_path / "livekit" / "__init__.py").write_text("raise ImportError('shadowed')\n")
        paths.insert(0, str(tmp_path))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    proc = subprocess.run(
        [sys.executable, "-m", "realtime", "talk", "--url", "ws://127.0.0.1:9/v1", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, proc.stderr


def test_talk_says_which_echo_handling_is_active(pulse: VirtualPulse, tmp_path: Path) -> None:
    """talk shows the canceller (AEC3) by default, with SpeexDSP for double talk when asked
    for, the gate with --echo gate, none with --headphones."""
    for args, words in (
        ((), "echo: echo cancellation (WebRTC AEC3)"),
        (("--double-talk",), "echo: echo cancellation (WebRTC AEC3, SpeexDSP for double talk)"),
        (("--no-double-talk",), "echo: echo cancellation (WebRTC AEC3)"),
        (("--echo", "gate"), "echo: echo gate"),
        (("--headphones",), "echo: no echo handling"),
    ):
        status, err = _talk(pulse, tmp_path, *args)
        assert status == 2 and words in err, err  # then the URL is unreachable
        assert "cannot connect to ws://127.0.0.1:9/v1" in err
    status, err = _talk(pulse, tmp_path, "--double-talk", "--echo", "gate")
    assert status == 2 and "--double-talk needs the echo canceller, not --echo gate" in err


def test_talk_without_the_library(pulse: VirtualPulse, tmp_path: Path) -> None:
    """Without livekit: auto falls back to the gate saying why; --echo aec is a one-line error."""
    status, err = _talk(pulse, tmp_path, shadow=True)
    assert status == 2
    assert "echo: echo gate" in err and "realtime-voice[aec]" in err, err
    status, err = _talk(pulse, tmp_path, "--echo", "aec", shadow=True)
    assert status == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert lines == [
        "error: --echo aec: echo cancellation needs the livekit package: "
        "pip install 'realtime-voice[aec]'"
    ], err
