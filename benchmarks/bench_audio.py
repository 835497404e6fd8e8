"""Benchmark of the device audio paths: Microphone capture, Speaker playback, barge-in timing.

Run from the repository root::

    python benchmarks/bench_audio.py            # full run (~1 minute)
    python benchmarks/bench_audio.py --quick    # fewer seconds of audio, fewer latencies
    python benchmarks/bench_audio.py --no-device

CPU part (no device: the PortAudio callbacks are driven directly with fake timing):

* capture path: callback (stereo, device rate, 10 ms blocks) -> ring -> mono -> resample to
  24 kHz -> 40 ms chunks -> PCM16 -> base64, in CPU µs per second of audio; peer measured
  in the same run: the common ``queue.Queue`` + ``indata.copy()`` pattern from the
  sounddevice examples with one-shot soxr per chunk.
* playback path: base64 -> decode -> resample 24 kHz -> device rate -> ring -> output
  callback, in CPU µs per second of audio; peer: a ``queue.Queue`` of decoded chunks that
  the callback slices and concatenates.
* allocations in the output callback: net memory blocks retained over many callbacks
  (tracemalloc snapshot difference and ``sys.getallocatedblocks`` delta), and the largest
  transient allocation inside one callback compared with the size of one block of samples.

Device part (a private PulseAudio daemon with null sinks, started like the device tests):
for each output latency from the default (0.1 s) downwards, 2 s of audio are played and
interrupted near 1 s, the sink's monitor is recorded, and the script reports underruns,
the time from ``interrupt()`` to silence on the monitor (against the bound: the DAC lead of
the last block + that block + the one fade block), and the error of the heard position
``interrupt()`` returned against what the monitor shows.

Targets (issue 4): zero allocations in the output callback; silence within the output
latency plus one block; heard-position error <= 30 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import importlib
import os
import queue
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "audio_devices"))

from audio.microphone import Microphone  # noqa: E402
from audio.pcm import b64decode, b64encode  # noqa: E402
from audio.speaker import Speaker  # noqa: E402

__all__ = ["main"]

# the module itself (``audio.devices`` may be re-bound to the devices() function)
devices_mod = importlib.import_module("audio.devices")

SESSION_RATE = 24000
DEVICE_RATE = 48000


# ----------------------------------------------------------------------------- fakes


class _FakeStream:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.time = 0.0
        self.latency = 0.1
        self.active = True

    def start(self) -> None:
        self.active = True

    def abort(self) -> None:
        self.active = False

    def close(self) -> None:
        self.active = False


def _install_fake_sounddevice() -> None:
    listing = [
        {
            "name": "bench",
            "hostapi": 0,
            "max_input_channels": 2,
            "max_output_channels": 2,
            "default_samplerate": float(DEVICE_RATE),
        }
    ]
    fake = SimpleNamespace(
        query_devices=lambda: listing,
        query_hostapis=lambda: [{"name": "bench"}],
        default=SimpleNamespace(device=[0, 0]),
        InputStream=_FakeStream,
        OutputStream=_FakeStream,
    )
    setattr(devices_mod, "_module", fake)  # noqa: B010 (a private hook of audio.devices)


def _signal(seconds: float, rate: int, channels: int = 1) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(0)
    x = (0.2 * rng.standard_normal((int(seconds * rate), channels))).astype(np.float32)
    return x if channels > 1 else x[:, 0]


_STATUS = SimpleNamespace(output_underflow=False, input_overflow=False)


# ----------------------------------------------------------------------------- capture


def bench_capture(seconds: float) -> tuple[float, float]:
    """CPU µs per audio second: (ours, peer)."""
    block = DEVICE_RATE // 100
    audio = _signal(seconds, DEVICE_RATE, 2)
    blocks = [audio[k : k + block] for k in range(0, len(audio) - block + 1, block)]

    mic = Microphone(channels=2)
    mic.start()
    sink: list[str] = []
    t0 = time.process_time()
    for k, b in enumerate(blocks):
        mic._callback(b, block, None, _STATUS)
        if k % 4 == 3:
            mic._drain()
            while len(mic._pending) >= mic.chunk_frames:
                sink.append(b64encode(mic._take_chunk()))
    ours = time.process_time() - t0
    mic.close()

    import soxr

    q: queue.Queue[npt.NDArray[np.float32]] = queue.Queue()
    chunk = DEVICE_RATE * 40 // 1000
    pending = np.zeros((0, 2), dtype=np.float32)
    peer_sink: list[str] = []
    t0 = time.process_time()
    for k, b in enumerate(blocks):
        q.put(b.copy())  # the callback of the sounddevice examples
        if k % 4 == 3:
            while not q.empty():
                pending = np.concatenate((pending, q.get_nowait()))
            while len(pending) >= chunk:
                piece, pending = pending[:chunk], pending[chunk:]
                mono = piece.mean(axis=1)
                y = soxr.resample(mono, DEVICE_RATE, SESSION_RATE)
                pcm = (np.clip(y, -1, 1) * 32767).astype("<i2").tobytes()
                peer_sink.append(base64.b64encode(pcm).decode())
    peer = time.process_time() - t0
    return ours / seconds * 1e6, peer / seconds * 1e6


# ----------------------------------------------------------------------------- playback


def _drive(sp: Speaker, n_blocks: int, clock: list[float]) -> None:
    out = np.zeros((sp.blocksize, 1), dtype=np.float32)
    period = sp.blocksize / sp.device_rate
    cb = sp._callback
    for _ in range(n_blocks):
        now = clock[0]
        t = SimpleNamespace(currentTime=now, outputBufferDacTime=now + 0.05)
        cb(out, sp.blocksize, t, _STATUS)
        clock[0] = now + period


def bench_playback(seconds: float) -> tuple[float, float]:
    """CPU µs per audio second: (ours, peer)."""
    pcm = (_signal(seconds, SESSION_RATE) * 32767).astype("<i2").tobytes()
    piece = SESSION_RATE // 10 * 2  # 100 ms deltas, as a server sends them
    deltas = [base64.b64encode(pcm[k : k + piece]).decode() for k in range(0, len(pcm), piece)]
    sp = Speaker(device_rate=DEVICE_RATE, prebuffer_ms=0)
    sp.start()
    clock = [0.0]
    per_delta = int(0.1 * DEVICE_RATE / sp.blocksize)
    t0 = time.process_time()
    for delta in deltas:
        sp.enqueue(b64decode(delta), "item")
        _drive(sp, per_delta, clock)
        sp._stream.time = clock[0]
        sp.played_ms("item")
    ours = time.process_time() - t0
    sp.close()

    import soxr

    q: queue.Queue[npt.NDArray[np.float32]] = queue.Queue()
    out = np.zeros((DEVICE_RATE // 100, 1), dtype=np.float32)
    leftover = np.zeros(0, dtype=np.float32)
    t0 = time.process_time()
    for delta in deltas:
        x = np.frombuffer(base64.b64decode(delta), "<i2").astype(np.float32) / 32768
        q.put(soxr.resample(x, SESSION_RATE, DEVICE_RATE))
        for _ in range(per_delta):  # the callback: concatenate what is queued, slice a block
            while not q.empty() and len(leftover) < len(out):
                leftover = np.concatenate((leftover, q.get_nowait()))
            n = min(len(out), len(leftover))
            out[:n, 0] = leftover[:n]
            out[n:] = 0
            leftover = leftover[n:]
    peer = time.process_time() - t0
    return ours / seconds * 1e6, peer / seconds * 1e6


# ----------------------------------------------------------------------------- allocations


def bench_allocations(n_callbacks: int) -> dict[str, Any]:
    """Net blocks retained by the output callback, and its largest transient allocation."""
    sp = Speaker(device_rate=DEVICE_RATE, prebuffer_ms=0, buffer_seconds=n_callbacks / 100 + 30)
    sp.start()
    pcm = (_signal(n_callbacks / 100 + 12.0, SESSION_RATE) * 32767).astype("<i2").tobytes()
    sp.enqueue(pcm, "item")
    out = np.zeros((sp.blocksize, 1), dtype=np.float32)
    times = [
        SimpleNamespace(currentTime=k * 0.01, outputBufferDacTime=k * 0.01 + 0.05)
        for k in range(n_callbacks + 1000)
    ]
    cb = sp._callback
    bs = sp.blocksize
    for k in range(1000):  # warm up: caches and other first-use allocations
        cb(out, bs, times[k], _STATUS)

    gc.disable()
    deltas = []
    window = n_callbacks // 6
    for w in range(3):  # three windows: a one-off first-use allocation shows in one only
        blocks_before = sys.getallocatedblocks()
        for k in range(1000 + w * window, 1000 + (w + 1) * window):
            cb(out, bs, times[k], _STATUS)
        deltas.append(sys.getallocatedblocks() - blocks_before)
    gc.enable()
    blocks_delta = min(deltas)

    # tracing starts here: objects replaced during the first traced callbacks (counters)
    # were allocated untraced, so take the first snapshot after a few traced callbacks
    tracemalloc.start()
    ours = [
        tracemalloc.Filter(True, str(ROOT / "audio" / "speaker.py")),
        tracemalloc.Filter(True, str(ROOT / "audio" / "ring.py")),
    ]
    first = 1000 + n_callbacks // 2
    for k in range(first, first + 100):
        cb(out, bs, times[k], _STATUS)
    snap1 = tracemalloc.take_snapshot().filter_traces(ours)
    peak = 0
    for k in range(first + 100, 1000 + n_callbacks):
        tracemalloc.reset_peak()
        current = tracemalloc.get_traced_memory()[0]
        cb(out, bs, times[k], _STATUS)
        peak = max(peak, tracemalloc.get_traced_memory()[1] - current)
    snap2 = tracemalloc.take_snapshot().filter_traces(ours)
    tracemalloc.stop()
    stats = snap2.compare_to(snap1, "lineno")
    retained = sum(max(0, s.count_diff) for s in stats)
    sp.close()
    return {
        "net_blocks_getallocatedblocks": blocks_delta,
        "window_deltas": deltas,
        "net_blocks_tracemalloc": retained,
        "peak_transient_bytes": peak,
        "block_bytes": bs * 4,
    }


# ----------------------------------------------------------------------------- device run


def _speechlike(seconds: float, rate: int, seed: int) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    spectrum[(freqs < 100.0) | (freqs > 3400.0)] = 0.0
    x = np.fft.irfft(spectrum, n) * (
        0.25 + 0.75 * np.abs(np.sin(2 * np.pi * 2.1 * np.arange(n) / rate))
    )
    out: npt.NDArray[np.float32] = (0.5 * x / np.abs(x).max()).astype(np.float32)
    return out


def _align(recording: npt.NDArray[np.float32], reference: npt.NDArray[np.float32]) -> int:
    probe = reference[:24000]
    n = 1 << int(np.ceil(np.log2(len(recording) + len(probe))))
    corr = np.fft.irfft(np.fft.rfft(recording, n) * np.conj(np.fft.rfft(probe, n)), n)
    return int(np.argmax(corr[: len(recording)]))


async def _trial(pulse: Any, latency: float, seed: int, tmp: Path) -> dict[str, float]:
    from audio.resample import resample

    signal = _speechlike(2.0, SESSION_RATE, seed)
    data = (signal * 32767).astype("<i2").tobytes()
    recorder = pulse.record("spk.monitor", tmp / f"trial-{latency}-{seed}.raw")
    try:
        async with Speaker(latency=latency) as sp:
            await asyncio.sleep(0.1)
            for k in range(0, len(data), 4800):
                sp.enqueue(data[k : k + 4800], "item")
            while sp.played_ms("item") < 1000.0:
                await asyncio.sleep(0.003)
            xruns, underruns = sp.xruns, sp.underruns
            at_interrupt = recorder.path.stat().st_size // 2
            heard = sp.interrupt()
            while sp.is_playing:
                await asyncio.sleep(0.003)
            await asyncio.sleep(0.3)
            block_s = sp.blocksize / sp.device_rate
            lead = sp.max_dac_lead
            reported = sp.output_latency
        await asyncio.sleep(0.05)
    finally:
        recorded = recorder.stop()
    reference = np.asarray(resample(signal, SESSION_RATE, 48000), dtype=np.float32)
    start = _align(recorded, reference)
    loud = np.nonzero(np.abs(recorded[start:]) > 2e-3)[0]
    end = start + int(loud[-1]) + 1
    monitor_ms = (end - start) / 48.0
    return {
        "latency": latency,
        "reported": reported * 1000,
        "lead": lead * 1000,
        "block": block_s * 1000,
        "xruns": xruns,
        "underruns": underruns,
        "silence_ms": (end - at_interrupt) / 48.0,
        "bound_ms": (lead + 2 * block_s) * 1000,
        "nominal_ms": (reported + block_s) * 1000,
        "heard_err_ms": (heard.played_ms if heard else float("nan")) - monitor_ms,
    }


def bench_device(latencies: list[float], repeats: int) -> list[dict[str, float]] | str:
    """Interrupt-to-silence and heard error per latency; a string says why it did not run."""
    try:
        from virtual_pulse import (  # type: ignore[import-not-found]
            PulseUnavailable,
            VirtualPulse,
        )
    except ImportError as exc:
        return f"tests/audio_devices/virtual_pulse.py not importable: {exc}"
    setattr(devices_mod, "_module", None)  # noqa: B010 (import the real sounddevice now)
    pulse = VirtualPulse()
    try:
        pulse.start()
    except PulseUnavailable as exc:
        pulse.stop()
        return f"PulseAudio cannot start: {exc}"
    results: list[dict[str, float]] = []
    try:
        for latency in latencies:
            for seed in range(repeats):
                results.append(asyncio.run(_trial(pulse, latency, seed, pulse.runtime_dir)))
            if any(r["xruns"] or r["underruns"] for r in results if r["latency"] == latency):
                break  # the first latency that underruns ends the scan
    finally:
        pulse.stop()
    return results


# ----------------------------------------------------------------------------- report


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="less audio, fewer latencies")
    parser.add_argument("--no-device", action="store_true", help="skip the PulseAudio part")
    parser.add_argument("--repeat", type=int, default=5, help="CPU timing repetitions")
    args = parser.parse_args(argv)
    seconds = 5.0 if args.quick else 20.0
    repeat = 2 if args.quick else args.repeat

    print(f"bench_audio: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    _install_fake_sounddevice()
    cap = [bench_capture(seconds) for _ in range(repeat)]
    play = [bench_playback(seconds) for _ in range(repeat)]
    alloc = bench_allocations(2000 if args.quick else 20000)

    cap_ours = statistics.median(c[0] for c in cap)
    cap_peer = statistics.median(c[1] for c in cap)
    play_ours = statistics.median(p[0] for p in play)
    play_peer = statistics.median(p[1] for p in play)
    print()
    print(f"CPU per second of audio (median of {repeat} runs; 48 kHz device, 24 kHz session)")
    print(f"{'path':<52}{'ours µs':>10}{'peer µs':>10}{'ours/peer':>11}")
    print(
        f"{'capture  callback->ring->mono->resample->chunk->b64':<52}"
        f"{cap_ours:>10.0f}{cap_peer:>10.0f}{cap_ours / cap_peer:>11.2f}"
    )
    print(
        f"{'playback b64->decode->resample->ring->callback':<52}"
        f"{play_ours:>10.0f}{play_peer:>10.0f}{play_ours / play_peer:>11.2f}"
    )
    print()
    zero = alloc["net_blocks_tracemalloc"] == 0 and alloc["net_blocks_getallocatedblocks"] <= 0
    no_buffer = alloc["peak_transient_bytes"] < alloc["block_bytes"]
    print("Output callback allocations")
    print(f"  net blocks retained (tracemalloc, audio/ files) : {alloc['net_blocks_tracemalloc']}")
    print(
        "  sys.getallocatedblocks() delta, 3 windows        : "
        f"{alloc['window_deltas']} (min {alloc['net_blocks_getallocatedblocks']})"
    )
    print(
        f"  largest transient allocation in one callback     : {alloc['peak_transient_bytes']} B "
        f"(one block of samples = {alloc['block_bytes']} B; transient = numpy views, ints, "
        "floats created and freed by CPython)"
    )
    print(f"  zero net allocations                             : {_verdict(zero)}")
    print(f"  no sample buffer allocated in the callback       : {_verdict(no_buffer)}")

    if args.no_device:
        return 0
    latencies = [0.1, 0.05, 0.03] if args.quick else [0.1, 0.08, 0.06, 0.05, 0.04, 0.03, 0.02]
    res = bench_device(latencies, 1 if args.quick else 2)
    print()
    if isinstance(res, str):
        print(f"Device run skipped: {res}")
        return 0
    print("Barge-in on the PulseAudio null sink (2 s played, interrupt() near 1 s heard)")
    print(
        f"{'latency s':>10}{'reported ms':>12}{'DAC lead ms':>12}{'xruns':>7}{'underr':>7}"
        f"{'silence ms':>11}{'bound ms':>10}{'rep+blk ms':>11}{'heard err ms':>13}"
    )
    for r in res:
        print(
            f"{r['latency']:>10.3f}{r['reported']:>12.1f}{r['lead']:>12.1f}{r['xruns']:>7.0f}"
            f"{r['underruns']:>7.0f}{r['silence_ms']:>11.1f}{r['bound_ms']:>10.1f}"
            f"{r['nominal_ms']:>11.1f}"
            + (f"{r['heard_err_ms']:>13.1f}" if not r["xruns"] else f"{'(gaps)':>13}")
        )
    print(
        "bound = DAC lead of the last block (PortAudio's outputBufferDacTime - currentTime: "
        "what the driver and the sound server hold) + that block + the fade block;\n"
        "rep+blk = the stream latency PortAudio reports + one block (it leaves out the "
        "sound server's own buffering, so real silence can exceed it);\n"
        "(gaps) = the device underflowed, the recording has gaps: no heard-error figure"
    )
    clean = [r for r in res if not r["xruns"] and not r["underruns"]]
    lowest = min((r["latency"] for r in clean), default=None)
    default = [r for r in res if r["latency"] == 0.1]
    print()
    if default:
        worst = max(r["silence_ms"] - r["bound_ms"] for r in default)
        nominal = max(r["silence_ms"] - r["nominal_ms"] for r in default)
        print(
            "default latency 0.1 s: interrupt->silence "
            f"{max(r['silence_ms'] for r in default):.1f} ms; within DAC lead + 2 blocks "
            f"({max(r['bound_ms'] for r in default):.1f} ms): {_verdict(worst <= 0)}; within "
            f"reported latency + 1 block ({max(r['nominal_ms'] for r in default):.1f} ms): "
            f"{_verdict(nominal <= 0)}"
        )
    if lowest is not None:
        low = [r for r in clean if r["latency"] == lowest]
        worst = max(r["silence_ms"] - r["bound_ms"] for r in low)
        nominal = max(r["silence_ms"] - r["nominal_ms"] for r in low)
        print(
            f"lowest latency without underruns here: {lowest} s: interrupt->silence "
            f"{max(r['silence_ms'] for r in low):.1f} ms; within DAC lead + 2 blocks "
            f"({max(r['bound_ms'] for r in low):.1f} ms): {_verdict(worst <= 0)}; within "
            f"reported latency + 1 block ({max(r['nominal_ms'] for r in low):.1f} ms): "
            f"{_verdict(nominal <= 0)}"
        )
    # with device underflows the recording contains gaps of silence, so its span no
    # longer measures the audio heard: the error is only meaningful in clean runs
    err = max((abs(r["heard_err_ms"]) for r in res if not r["xruns"]), default=float("nan"))
    print(
        f"heard-position error, worst run without xruns: {err:.1f} ms (target <= 30 ms): "
        f"{_verdict(err <= 30)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
