"""Benchmark acoustic echo cancellation (issue 13): ERLE, convergence, double talk, CPU.

Run from the repository root: ``python benchmarks/bench_aec.py`` (about 12 minutes;
``--part synthetic|devices|e2e`` runs one part; ``--quick`` fewer cases; ``--stress N`` runs N
busy processes meanwhile, a loaded machine). Needs the ``aec``
extra (``livekit``); the devices and e2e parts need PulseAudio (as the real-device tests).

1. **Synthetic echo path** at 48 kHz: the assistant's speech (``share/samples``, Piper) through
   a generated room impulse response (direct path, reverberant tail with RT60 0.3 s and a
   direct-to-reverberant ratio of 3 dB) delayed by 40 / 120 / 250 ms, a mild loudspeaker
   saturation (``tanh``), -26 dBFS echo, and -65 dBFS noise, through
   :class:`audio.aec.EchoCanceller` with DAC/ADC timestamps from the same clock (the canceller
   must find the acoustic delay itself). Echo only: ERLE over 0.5 s windows and after
   convergence (target >= 25 dB), and the convergence time (the end of the last window below
   25 dB). Double talk: a second voice (espeak-ng) at -26 dBFS speaks over the assistant at
   three places; the local server's speech recognition (faster-whisper tiny.en) transcribes the
   canceller's output, the raw microphone and the clean near-end speech: word error rates.
   Peers measured in the same run: no cancellation, SpeexDSP's canceller (Debian's
   ``libspeexdsp1``, ctypes, given the true delay, 16 kHz), ``pywebrtc-audio`` (another AEC3
   binding) when installed.
2. **Real devices**: PortAudio through a private PulseAudio; ``module-loopback`` from the
   virtual speaker's monitor into the virtual microphone adds a real 60 / 200 ms delay at 70 %
   volume. ERLE (a raw and a cancelling microphone read the same source at once),
   convergence, the delay the stage reports, and double talk (a voice played into the
   microphone during the reply) as above.
3. **End to end** on :class:`realtime.server.LocalServer` (server VAD, ``interrupt_response``):
   20 assistant replies with only their echo on the microphone -- ``speech_started`` events
   counted (target 0; the same with no echo handling, a few replies, as the peer) -- then
   replies the user talks over: the interruption detected, the reply truncated where the
   speaker says it was heard, and the user's words transcribed.
4. **CPU** per audio second of the canceller stage (thread time), and of the peers.

The load average is printed: these machines are shared and the figures move with load.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "audio_devices"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from audio.aec import EchoCanceller  # noqa: E402
from audio.resample import resample  # noqa: E402
from audio.wav import read_wav_array  # noqa: E402

__all__ = ["main"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
RATE = 48000
FAR_FILES = ("long.wav", "question.wav", "greeting.wav")
NEAR_TEXTS = (
    "Stop, what time is it in Tokyo?",
    "Wait, I would rather book a table for two.",
    "Can you tell me about the weather tomorrow?",
)
NEAR_AT_S = (4.0, 7.5, 10.5)
WARM_S = 10.0  # echo-only speech before the double talk in the "warm" runs
TARGET_ERLE = 25.0


def load(name: str, rate: int) -> F32:
    x, r = read_wav_array(name if os.path.isabs(name) else ROOT / "share" / "samples" / name)
    mono = np.ascontiguousarray(x.reshape(len(x), -1)[:, 0], dtype=np.float32)
    return np.asarray(resample(mono, r, rate), dtype=np.float32)


def espeak(text: str, rate: int, folder: Path) -> F32:
    """A second voice for the user (espeak-ng, female variant), unlike the Piper assistant."""
    path = folder / f"near{abs(hash(text)) % 10_000}.wav"
    subprocess.run(["espeak-ng", "-v", "en-us+f3", "-s", "150", "-w", str(path), text], check=True)
    return load(str(path), rate)


def rms_db(x: F64 | F32) -> float:
    return 10 * np.log10(max(float(np.mean(np.asarray(x, np.float64) ** 2)), 1e-20))


def room(rate: int, delay_ms: float, seed: int = 0, rt60: float = 0.3, drr_db: float = 3.0) -> F64:
    """A room impulse response: delay, unit direct path, exponentially decaying noise tail."""
    rng = np.random.default_rng(seed)
    n = int(rate * rt60)
    tail = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / (rate * rt60))
    tail[: int(rate * 0.002)] = 0.0
    tail *= np.sqrt(10 ** (-drr_db / 10) / np.sum(tail**2))
    tail[0] = 1.0
    return np.concatenate([np.zeros(int(rate * delay_ms / 1000)), tail])


def fftconv(x: F64, h: F64) -> F64:
    n = 1 << int(np.ceil(np.log2(len(x) + len(h))))
    y: F64 = np.fft.irfft(np.fft.rfft(x, n) * np.fft.rfft(h, n), n)[: len(x)]
    return y


def echo_of(far: F32, rate: int, delay_ms: float, seed: int = 0) -> F64:
    e = fftconv(far.astype(np.float64), room(rate, delay_ms, seed))
    e *= 0.5 / np.max(np.abs(e))
    e = np.tanh(1.5 * e) / 1.5  # mild loudspeaker saturation
    e *= 10 ** (-26 / 20) / np.sqrt(np.mean(e**2))
    return e


# -- cancellers over a whole signal (10 ms frames, as a live stream) ----------------------------


def run_stage(
    far: F32, mic: F64, rate: int, double_talk: bool = False
) -> tuple[F64, float, EchoCanceller]:
    """Through EchoCanceller: reference 100 ms ahead of capture, timestamps on one clock."""
    ec = EchoCanceller(double_talk=double_talk)
    block = rate // 100
    mic32 = mic.astype(np.float32)
    out: list[F32] = []
    lead = 10
    for k in range(0, len(far) // block):
        i = k * block
        ec.on_reference(far[i : i + block].copy(), rate, i / rate)
        if k >= lead:
            j = i - lead * block
            out.append(ec.process(mic32[j : j + block].copy(), rate, j / rate))
    y = np.concatenate(out).astype(np.float64)
    return y, ec.cpu_per_audio_second, ec


def run_speex(far: F32, mic: F64, rate: int, delay_ms: float) -> tuple[F64, float] | None:
    """SpeexDSP's canceller at 16 kHz, given the true delay, 300 ms filter."""
    name = ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    r = 16000
    f = r // 100
    lib.speex_echo_state_init.restype = ctypes.c_void_p
    st = ctypes.c_void_p(lib.speex_echo_state_init(f, int(r * 0.3)))
    rate_c = ctypes.c_int(r)
    lib.speex_echo_ctl(st, 24, ctypes.byref(rate_c))  # SPEEX_ECHO_SET_SAMPLING_RATE
    far16 = np.asarray(resample(far, rate, r), dtype=np.float32)
    mic16 = np.asarray(resample(mic.astype(np.float32), rate, r), dtype=np.float32)
    d = int(r * delay_ms / 1000)
    farx = np.concatenate([np.zeros(d, np.float32), far16])[: len(far16)]
    fi = (np.clip(farx, -1, 1) * 32767).astype(np.int16)
    mi = (np.clip(mic16, -1, 1) * 32767).astype(np.int16)
    out = np.zeros(len(mi), np.float64)
    o = np.zeros(f, np.int16)
    p16 = ctypes.POINTER(ctypes.c_int16)
    t0 = time.thread_time()
    for k in range(0, len(mi) - f + 1, f):
        a = np.ascontiguousarray(mi[k : k + f])
        b = np.ascontiguousarray(fi[k : k + f])
        lib.speex_echo_cancellation(
            st, a.ctypes.data_as(p16), b.ctypes.data_as(p16), o.ctypes.data_as(p16)
        )
        out[k : k + f] = o / 32768.0
    cpu = (time.thread_time() - t0) / (len(mi) / r)
    lib.speex_echo_state_destroy(st)
    y = np.asarray(resample(out.astype(np.float32), r, rate), dtype=np.float64)
    return y[: len(mic)], cpu


def run_pywebrtc(far: F32, mic: F64, rate: int, delay_ms: float) -> tuple[F64, float] | None:
    """pywebrtc-audio's AEC3 (when installed), given the true delay as its hint."""
    if importlib.util.find_spec("pywebrtc_audio") is None:
        return None
    import pywebrtc_audio

    ec = pywebrtc_audio.EchoCanceller(
        sample_rate=rate, num_channels=1, stream_delay_ms=int(delay_ms)
    )
    f = rate // 100
    mic32 = mic.astype(np.float32)
    out = np.zeros(len(mic), np.float64)
    t0 = time.thread_time()
    for k in range(0, len(mic) - f + 1, f):
        out[k : k + f] = ec.process(mic32[k : k + f], far[k : k + f])
    return out, (time.thread_time() - t0) / (len(mic) / rate)


# -- measures ----------------------------------------------------------------------------------


def erle_windows(echo: F64, out: F64, rate: int, end_s: float, noise_db: float) -> list[float]:
    """ERLE of each 0.5 s window (nan where the echo is within 20 dB of the noise)."""
    w = rate // 2
    vals = []
    for a in range(0, int(end_s * rate) - w + 1, w):
        e = echo[a : a + w]
        if rms_db(e) < noise_db + 20:
            vals.append(float("nan"))
        else:
            vals.append(rms_db(e) - rms_db(out[a : a + w]))
    return vals


def convergence(windows: list[float]) -> float:
    """Convergence time (s): the end of the last 0.5 s window with ERLE below the target."""
    last_bad = -1
    for i, v in enumerate(windows):
        if not np.isnan(v) and v < TARGET_ERLE:
            last_bad = i
    return (last_bad + 1) * 0.5


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def wer(ref: str, hyp: str) -> float:
    r, h = words(ref), words(hyp)
    d = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        prev, d[0] = d[0], i
        for j, hw in enumerate(h, 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (rw != hw))
            prev, d[j] = d[j], cur
    return d[len(h)] / max(len(r), 1)


class Stt:
    """The local server's speech recognition (faster-whisper tiny.en), on 24 kHz PCM16."""

    def __init__(self) -> None:
        from realtime.server.stt import load_stt

        self.engine = load_stt("faster-whisper")

    def __call__(self, x: F64 | F32, rate: int) -> str:
        y = np.asarray(resample(np.asarray(x, np.float32), rate, 24000), dtype=np.float32)
        pcm = (np.clip(y, -1, 1) * 32767).astype("<i2").tobytes()
        return str(self.engine.transcribe(pcm).text)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- part 1 ------------------------------------------------------------------------------------


def part_synthetic(quick: bool, stt: Stt, tmp: Path) -> dict[str, Any]:
    print(f"\n1. synthetic echo path, {RATE} Hz (load average {load_average()})")
    far = np.concatenate([load(n, RATE) for n in FAR_FILES])
    dur = len(far) / RATE
    rng = np.random.default_rng(7)
    noise = rng.standard_normal(len(far)) * 10 ** (-65 / 20)
    nears = [espeak(t, RATE, tmp) for t in NEAR_TEXTS]
    for x in nears:
        x *= np.float32(10 ** (-26 / 20) / np.sqrt(np.mean(x[np.abs(x) > 1e-3] ** 2)))
    delays = (120.0,) if quick else (40.0, 120.0, 250.0)
    results: dict[str, Any] = {"cpu": {}}
    header = (
        f"  {'delay':>6} {'canceller':<14} {'ERLE conv.':>10} {'conv. s':>8} "
        f"{'min 0.5s':>8} {'DT WER':>7} {'warm':>5}  transcripts (double talk)"
    )
    print(header)
    # "warm": the same double talk after WARM_S more of the assistant's speech (echo only)
    # before it, as later in a conversation, once a slow canceller has converged
    warm_n = int(WARM_S * RATE)
    far_w = np.concatenate([far[:warm_n], far])
    noise_w = np.concatenate([noise[:warm_n], noise])

    def runs_for(fx: F32, delay: float) -> dict[str, Callable[..., tuple[F64, float] | None]]:
        return {
            "aec3 (stage)": lambda m: run_stage(fx, m, RATE)[:2],
            "aec3+speex": lambda m: run_stage(fx, m, RATE, double_talk=True)[:2],
            "pywebrtc-aec3": lambda m: run_pywebrtc(fx, m, RATE, delay),
            "speexdsp": lambda m: run_speex(fx, m, RATE, delay),
            "none": lambda m: (m, 0.0),
        }

    for delay in delays:
        echo = echo_of(far, RATE, delay)
        mic_echo = echo + noise
        mic_echo_w = echo_of(far_w, RATE, delay) + noise_w
        runs = runs_for(far, delay)
        warm_runs = runs_for(far_w, delay)
        for name, fn in runs.items():
            got = fn(mic_echo)
            if got is None:
                print(f"  {delay:>4.0f}ms {name:<14} (not installed)")
                continue
            y, cpu = got
            results["cpu"].setdefault(name, []).append(cpu)
            wins = erle_windows(echo, y, RATE, dur, -65.0)
            t_conv = convergence(wins)
            a = int(max(t_conv, 0.5) * RATE)
            erle = rms_db(echo[a:]) - rms_db(y[a:]) if a < len(y) else float("nan")
            valid = [v for v in wins[int(t_conv * 2) :] if not np.isnan(v)]
            wmin = min(valid) if valid else float("nan")
            texts, errs = [], []
            for text, x, at in zip(NEAR_TEXTS, nears, NEAR_AT_S, strict=True):
                s = int(at * RATE)
                near = np.zeros(len(far))
                near[s : s + len(x)] = x[: len(far) - s]
                yd, _ = fn(mic_echo + near) or (mic_echo + near, 0.0)
                seg = yd[max(0, s - RATE // 5) : s + len(x) + RATE // 5]
                heard = stt(seg, RATE)
                texts.append(heard)
                errs.append(wer(text, heard))
            dt_wer = float(np.mean(errs))
            warm_errs = []
            for text, x, at in zip(NEAR_TEXTS, nears, NEAR_AT_S, strict=True):
                s = warm_n + int(at * RATE)
                near = np.zeros(len(far_w))
                near[s : s + len(x)] = x[: len(far_w) - s]
                yd, _ = warm_runs[name](mic_echo_w + near) or (mic_echo_w + near, 0.0)
                seg = yd[max(0, s - RATE // 5) : s + len(x) + RATE // 5]
                warm_errs.append(wer(text, stt(seg, RATE)))
            warm_wer = float(np.mean(warm_errs))
            results[(delay, name)] = {
                "erle": erle,
                "conv": t_conv,
                "wer": dt_wer,
                "warm_wer": warm_wer,
                "min": wmin,
            }
            shown = " | ".join(texts)
            print(
                f"  {delay:>4.0f}ms {name:<14} {erle:>8.1f}dB {t_conv:>8.1f} {wmin:>6.1f}dB "
                f"{dt_wer:>7.2f} {warm_wer:>5.2f}  {shown}"
            )
    clean = [stt(x, RATE) for x in nears]
    clean_wer = float(np.mean([wer(t, h) for t, h in zip(NEAR_TEXTS, clean, strict=True)]))
    print(f"  near-end alone (no echo): WER {clean_wer:.2f}  {' | '.join(clean)}")
    results["clean_wer"] = clean_wer
    return results


# -- part 2 ------------------------------------------------------------------------------------


def part_devices(quick: bool, stt: Stt, tmp: Path) -> dict[str, Any]:
    from virtual_pulse import RATE as MON_RATE
    from virtual_pulse import PulseUnavailable, VirtualPulse, write_wav_mono

    print(f"\n2. real devices: PortAudio -> PulseAudio, module-loopback (load {load_average()})")
    vp = VirtualPulse()
    try:
        vp.start()
    except PulseUnavailable as exc:
        vp.stop()
        print(f"  skipped: {exc}")
        return {}
    results: dict[str, Any] = {}
    try:
        far = np.concatenate([load(n, 24000) for n in FAR_FILES])
        pcm = (np.clip(far, -1, 1) * 32767).astype("<i2").tobytes()
        near = espeak(NEAR_TEXTS[0], MON_RATE, tmp)
        near *= np.float32(0.3 / np.max(np.abs(near)))
        near_wav = tmp / "near_dev.wav"
        write_wav_mono(near_wav, near, MON_RATE)
        trials = [(lat, dt) for lat in ((60,) if quick else (60, 200)) for dt in (False, True)]
        for latency, double_talk in trials:
            r = asyncio.run(_device_trial(vp, pcm, near_wav, latency, stt, double_talk))
            results[(latency, double_talk)] = r
            name = "aec3+speex" if double_talk else "aec3"
            print(
                f"  loopback {latency:>3} ms, {name}: ERLE {r['erle']:.1f} dB "
                f"after {r['conv']:.1f} s "
                f"(min 0.5 s window {r['min']:.1f} dB; raw echo {r['echo_db']:.1f} dBFS), "
                f"stage delay {r['delay']:.0f} ms, drift {r['drift']:+.0f} ppm, realignments "
                f"{r['realign']}, xruns {r['xruns']}, CPU {r['cpu'] * 1000:.1f} ms/s"
            )
            print(
                f"    double talk: canceller WER {r['wer']:.2f} '{r['heard']}'; raw mic WER "
                f"{r['raw_wer']:.2f} '{r['raw_heard']}'{r['speex']}"
            )
    finally:
        vp.stop()
    return results


async def _device_trial(
    vp: Any, pcm: bytes, near_wav: Path, latency: int, stt: Stt, double_talk: bool
) -> dict[str, Any]:
    from audio.microphone import Microphone
    from audio.speaker import Speaker

    module = vp.add_echo_path(latency_ms=latency, volume_percent=70)
    raw: list[tuple[float, F32]] = []
    out: list[tuple[float, F32]] = []
    stop = asyncio.Event()

    async def cap(mic: Microphone, into: list[tuple[float, F32]]) -> None:
        async for chunk in mic:
            into.append((time.monotonic(), np.frombuffer(chunk, "<i2").astype(np.float32) / 32768))
            if stop.is_set():
                return

    try:
        async with Speaker() as speaker:
            raw_mic = Microphone(chunk_ms=20, echo="off")
            canceller = EchoCanceller(double_talk=double_talk)
            aec_mic = Microphone(chunk_ms=20, speaker=speaker, echo=canceller)
            async with raw_mic, aec_mic:
                tasks = [
                    asyncio.ensure_future(cap(raw_mic, raw)),
                    asyncio.ensure_future(cap(aec_mic, out)),
                ]
                await asyncio.sleep(0.3)
                t0 = time.monotonic()
                speaker.enqueue(pcm, "reply1")
                await asyncio.wait_for(speaker.drained(), 60)
                t_end = time.monotonic()
                await asyncio.sleep(0.3)
                # double talk: the same reply again, the user speaking 4 s into it
                speaker.enqueue(pcm, "reply2")
                await asyncio.sleep(4.0)
                t_near = time.monotonic()
                player = vp.play_into_mic(near_wav)
                await asyncio.to_thread(player.wait, 30)
                t_near_end = time.monotonic()
                speaker.interrupt()
                await asyncio.sleep(0.3)
                stop.set()
                await asyncio.wait_for(asyncio.gather(*tasks), 5)
            ec = aec_mic.echo_canceller
            assert ec is not None
            xruns = speaker.xruns + raw_mic.overflows + aec_mic.overflows
    finally:
        vp.remove_echo_path(module)

    def span(chunks: list[tuple[float, F32]], a: float, b: float) -> F64:
        xs = [x for t, x in chunks if a <= t < b]
        return np.concatenate(xs).astype(np.float64) if xs else np.zeros(1)

    wins = []
    t = t0
    while t + 0.5 <= t_end:
        e, y = span(raw, t, t + 0.5), span(out, t, t + 0.5)
        wins.append(rms_db(e) - rms_db(y) if rms_db(e) > -60 else float("nan"))
        t += 0.5
    t_conv = convergence(wins)
    echo_all = span(raw, t0 + max(t_conv, 0.5), t_end)
    out_all = span(out, t0 + max(t_conv, 0.5), t_end)
    valid = [v for v in wins[int(t_conv * 2) :] if not np.isnan(v)]
    heard = stt(span(out, t_near - 0.2, t_near_end + 0.2), 24000)
    raw_heard = stt(span(raw, t_near - 0.2, t_near_end + 0.2), 24000)
    return {
        "erle": rms_db(echo_all) - rms_db(out_all),
        "conv": t_conv,
        "min": min(valid) if valid else float("nan"),
        "echo_db": rms_db(echo_all),
        "delay": ec.delay_ms,
        "drift": ec.relative_drift_ppm,
        "realign": ec.realignments + ec.resyncs,
        "xruns": xruns,
        "cpu": ec.cpu_per_audio_second,
        "heard": heard,
        "wer": wer(NEAR_TEXTS[0], heard),
        "raw_heard": raw_heard,
        "raw_wer": wer(NEAR_TEXTS[0], raw_heard),
        "speex": _speex_state(ec),
    }


def _speex_state(ec: EchoCanceller) -> str:
    """What the double-talk backend did: SpeexDSP's delay, its echo reduction, its use."""
    backend: Any = getattr(ec, "_backend", None)
    if not hasattr(backend, "near_active_ms"):
        return ""
    return (
        f"; SpeexDSP delay {backend.delay_ms:.0f} ms, {backend.speex_erle_db:.1f} dB off the "
        f"echo, its output used {backend.near_active_ms:.0f} ms"
    )


# -- part 3 ------------------------------------------------------------------------------------


def part_e2e(quick: bool, tmp: Path) -> dict[str, Any]:
    from virtual_pulse import RATE as MON_RATE
    from virtual_pulse import PulseUnavailable, VirtualPulse, write_wav_mono

    print(f"\n3. end to end: LocalServer, server VAD, interrupt_response (load {load_average()})")
    vp = VirtualPulse()
    try:
        vp.start()
    except PulseUnavailable as exc:
        vp.stop()
        print(f"  skipped: {exc}")
        return {}
    results: dict[str, Any] = {}
    try:
        user = load("question.wav", MON_RATE)
        user *= np.float32(0.5 / np.max(np.abs(user)))
        user_wav = tmp / "user.wav"
        write_wav_mono(user_wav, user, MON_RATE)
        n_replies = 5 if quick else 20
        for mode, n in (("aec", n_replies), ("aec+dt", n_replies), ("off", 3)):
            r = asyncio.run(_e2e(vp, mode, n, 0, user_wav))
            results[mode] = r
            speex = r.get("speex_ms")
            used = "" if speex is None else f", SpeexDSP's output used {speex:.0f} ms"
            print(
                f"  echo={mode}: {r['replies']} replies with only their echo on the mic: "
                f"{r['false']} speech_started (target 0); xruns {r.get('xruns', 0)}, gaps "
                f"{r.get('gaps', 0)}, alignment jumps {r.get('jumps', 0)}, capture stamps "
                f"ignored {r.get('bad_stamps', 0)}{used} "
                f"[load {load_average()}]"
            )
            for line in r.get("why", []):
                print(f"    {line}")
        n_barge = 2 if quick else 3
        r = asyncio.run(_e2e(vp, "aec", 0, n_barge, user_wav))  # the default canceller
        results["barge"] = r
        for b in r["barge"]:
            print(
                f"  barge-in: speech_started {b['detected_ms']:.0f} ms after the user started; "
                f"reply truncated at {b['truncated_ms']:.0f} ms, speaker heard "
                f"{b['heard_ms']:.0f} ms; user transcript '{b['transcript']}'"
            )
    finally:
        vp.stop()
    return results


async def _e2e(vp: Any, mode: str, replies: int, barge: int, user_wav: Path) -> dict[str, Any]:
    import realtime
    from audio.microphone import Microphone
    from audio.speaker import Speaker
    from realtime.events.common import InputAudioTranscription, ServerVad
    from realtime.events.config import SessionConfig
    from realtime.server import LocalServer

    module = vp.add_echo_path(latency_ms=60, volume_percent=70)
    false_starts = 0
    events: list[tuple[float, str, Any]] = []
    out: dict[str, Any] = {"barge": []}
    try:
        async with LocalServer(port=0, warm=True) as server, Speaker() as speaker:
            echo: Any = mode
            if mode.startswith("aec"):
                echo = EchoCanceller(double_talk=mode == "aec+dt")
            mic = Microphone(chunk_ms=20, speaker=speaker, echo=echo)
            config = SessionConfig(
                output_modalities=["audio"],
                transcription=InputAudioTranscription(model="whisper-1"),
                turn_detection=ServerVad(
                    type="server_vad",
                    threshold=0.5,
                    prefix_padding_ms=300,
                    silence_duration_ms=500,
                    create_response=True,
                    interrupt_response=True,
                ),
            )
            async with (
                mic,
                realtime.connect(url=server.url, config=config, tracker=speaker) as session,
            ):
                session.on("*", lambda e: events.append((time.monotonic(), e.type, e)))

                def on_audio(e: Any) -> None:
                    import base64

                    speaker.enqueue(base64.b64decode(e.delta), e.item_id, e.content_index)

                session.on("response.output_audio.delta", on_audio, any_dialect=True)

                levels: list[tuple[float, float]] = []

                async def pump() -> None:
                    async for chunk in mic:
                        levels.append((time.monotonic(), mic.level_dbfs))
                        await session.append_audio(chunk)

                def state() -> tuple[int, int]:
                    ec = mic.echo_canceller
                    moved = 0 if ec is None else ec.realignments + ec.resyncs + ec.steps
                    return moved, speaker.xruns + mic.overflows + mic.xruns

                async def settle() -> None:
                    """Wait until no response is active and everything queued was heard."""
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline and sum(
                        k == "response.created" for _, k, _ in events
                    ) > sum(k == "response.done" for _, k, _ in events):
                        await asyncio.sleep(0.1)
                    await asyncio.wait_for(speaker.drained(), 60)

                pumping = asyncio.ensure_future(pump())
                await asyncio.sleep(1.0)

                async def reply(text: str) -> None:
                    await settle()
                    mark = len(events)
                    await session.send_text(text, respond=True)
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline and not any(
                        k == "response.done" for _, k, _ in events[mark:]
                    ):
                        await asyncio.sleep(0.05)
                    await asyncio.wait_for(speaker.drained(), 60)
                    await asyncio.sleep(0.8)  # the echo tail and VAD's silence window

                for i in range(replies):
                    mark = len(events)
                    before = state()
                    await reply(f"Tell me about reply number {i + 1}, please, in a sentence.")
                    starts = [
                        t for t, k, _ in events[mark:] if k == "input_audio_buffer.speech_started"
                    ]
                    false_starts += len(starts)
                    after = state()
                    for t in starts:
                        loud = max((lv for tl, lv in levels if t - 1.0 <= tl <= t), default=-120.0)
                        out.setdefault("why", []).append(
                            f"reply {i + 1}: speech_started, mic output peak {loud:.0f} dBFS "
                            f"in the second before; alignment jumps +{after[0] - before[0]}, xruns "
                            f"+{after[1] - before[1]}"
                        )
                    await settle()  # an echo taken for speech makes a reply of its own
                for _ in range(barge):
                    await settle()
                    await asyncio.sleep(1.0)
                    mark = len(events)
                    await session.send_text(
                        "Tell me a long story about the river and the old mill, please.",
                        respond=True,
                    )
                    while not any(k == "response.output_audio.delta" for _, k, _ in events[mark:]):
                        await asyncio.sleep(0.02)
                    await asyncio.sleep(1.5)  # the user lets the reply play 1.5 s
                    t_user = time.monotonic()
                    player = vp.play_into_mic(user_wav)
                    await asyncio.to_thread(player.wait, 30)
                    deadline = time.monotonic() + 30
                    while time.monotonic() < deadline and not any(
                        k == "conversation.item.input_audio_transcription.completed"
                        for _, k, _ in events[mark:]
                    ):
                        await asyncio.sleep(0.05)
                    started = [
                        t for t, k, _ in events[mark:] if k == "input_audio_buffer.speech_started"
                    ]
                    truncated = [
                        e for _, k, e in events[mark:] if k == "conversation.item.truncated"
                    ]
                    transcript = [
                        getattr(e, "transcript", "")
                        for _, k, e in events[mark:]
                        if k == "conversation.item.input_audio_transcription.completed"
                    ]
                    item = truncated[0].item_id if truncated else ""
                    out["barge"].append(
                        {
                            "detected_ms": (started[0] - t_user) * 1000
                            if started
                            else float("nan"),
                            "truncated_ms": truncated[0].audio_end_ms
                            if truncated
                            else float("nan"),
                            "heard_ms": speaker.played_ms(item) if item else float("nan"),
                            "transcript": transcript[-1].strip() if transcript else "",
                        }
                    )
                    await asyncio.wait_for(speaker.drained(), 60)
                    await asyncio.sleep(2.0)
                out["jumps"], out["xruns"] = state()
                ec_done = mic.echo_canceller
                out["gaps"] = 0 if ec_done is None else ec_done.gaps
                out["bad_stamps"] = 0 if ec_done is None else ec_done.bad_stamps
                out["discontinuities"] = 0 if ec_done is None else ec_done.discontinuities
                backend = getattr(ec_done, "_backend", None)
                out["speex_ms"] = getattr(backend, "near_active_ms", None)
                pumping.cancel()
    finally:
        vp.remove_echo_path(module)
    out["replies"] = replies
    out["false"] = false_starts
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("synthetic", "devices", "e2e", "all"), default="all")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--stress",
        type=int,
        default=0,
        metavar="N",
        help="run N busy processes meanwhile (a loaded machine: xruns)",
    )
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        print("espeak-ng is needed for the near-end voice (apt-get install espeak-ng)")
        return 2
    print(f"bench_aec: load average {load_average()}, {os.cpu_count()} CPUs")
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.stress)
    ]
    if hogs:
        print(f"  with {len(hogs)} busy processes running meanwhile (--stress)")
    try:
        return _run(args)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def _run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        stt = Stt() if args.part in ("synthetic", "devices", "all") else None
        res: dict[str, Any] = {}
        if args.part in ("synthetic", "all"):
            assert stt is not None
            res["synthetic"] = part_synthetic(args.quick, stt, tmp)
        if args.part in ("devices", "all"):
            assert stt is not None
            res["devices"] = part_devices(args.quick, stt, tmp)
        if args.part in ("e2e", "all"):
            res["e2e"] = part_e2e(args.quick, tmp)
        if "synthetic" in res:
            print(f"\n4. CPU per audio second (thread time, load {load_average()})")
            for name, vals in res["synthetic"]["cpu"].items():
                if name != "none":
                    print(f"  {name:<14} {np.median(vals) * 1000:.1f} ms/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
