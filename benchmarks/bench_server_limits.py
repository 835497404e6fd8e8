"""Benchmark the local server's resource bounds (issue 11): memory per session, memory per
minute of buffered audio, and the event-loop stall a live session sees during a maximal upload.

Run from the repository root: ``python benchmarks/bench_server_limits.py`` (about 2-4 minutes;
``--quick``: fewer sessions, less audio, one upload). The server runs in a **child process**
(``LocalServer`` on 127.0.0.1, engines warmed), whose RSS is read from ``/proc``; the child
also measures its own event-loop lag (a 5 ms ticker) and reports the worst at the end. The
machine may be shared: the load average is printed at the start and the end.

a. RSS per session: N idle sessions (GA defaults) opened at once, RSS growth / N; and what
   is left after they close.
b. RSS per minute of buffered audio, against the audio itself (PCM16 24 kHz: 2.88 MB a
   minute): one session without turn detection (manual commit), fed (1) like a microphone,
   100 ms appends, and (2) in maximal appends (15 MiB each). The peer is the size of the
   audio held: the ratio is the memory cost per byte of audio.
c. Event-loop stall: a live session sends a probe every 20 ms (an append with invalid
   base64, answered at once with an ``error``) and records the round trip, first with the
   server idle (the peer), then while a maximal upload is received, decoded, resampled and
   transcribed over ``POST /v1/audio/transcriptions``: 25 MiB of 44.1 kHz stereo PCM16
   (148 s) and, unless ``--quick``, the longest file accepted (25 minutes of 8 kHz 8-bit,
   12 MB: the most resampling). Both hold speech (the sample question every 4 s).
   Stall = worst round trip - median idle round trip; target < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MIB = 1024 * 1024
AUDIO_MB_PER_MINUTE = 24000 * 2 * 60 / 1e6
STALL_TARGET_MS = 50.0


# --- the server (child process) -----------------------------------------------------------


async def serve(release_memory: bool) -> None:
    from realtime.server import LocalServer

    worst = 0.0

    async def ticker() -> None:
        nonlocal worst
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(0.005)
            worst = max(worst, (loop.time() - t - 0.005) * 1000)

    async with LocalServer(port=0, warm=True, release_memory=release_memory) as srv:
        task = asyncio.create_task(ticker())
        print(json.dumps({"port": srv.port, "pid": os.getpid()}), flush=True)
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            if line.strip() == b"lag":
                print(json.dumps({"lag_ms": worst}), flush=True)
                worst = 0.0
        task.cancel()


# --- measuring ----------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def settle(pid: int, seconds: float = 1.0) -> float:
    """RSS once it stops moving (bounded)."""
    last = rss_mb(pid)
    for _ in range(20):
        await asyncio.sleep(seconds / 2)
        now = rss_mb(pid)
        if abs(now - last) < 0.5:
            return now
        last = now
    return last


async def open_session(url: str) -> Any:
    from websockets.asyncio.client import connect

    ws = await connect(f"{url}/realtime?model=gpt-realtime", max_size=None)
    created = json.loads(await ws.recv())
    assert created["type"] == "session.created", created
    return ws


async def per_session(url: str, pid: int, n: int) -> None:
    base = await settle(pid)
    sessions = [await open_session(url) for _ in range(n)]
    held = await settle(pid)
    for ws in sessions:
        await ws.close()
    after = await settle(pid)
    print(f"a. RSS per session ({n} idle sessions)")
    per = (held - base) / n * 1024
    print(f"   baseline {base:.1f} MB, with the sessions {held:.1f} MB: {per:.0f} kB/session")
    print(f"   after they closed: {after:.1f} MB ({after - base:+.1f} MB)")


async def per_minute(url: str, pid: int, minutes: float, chunk_bytes: int, label: str) -> None:
    import numpy as np

    ws = await open_session(url)
    off = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
    await ws.send(json.dumps({"type": "session.update", "session": off}))
    while json.loads(await ws.recv())["type"] != "session.updated":
        pass
    base = await settle(pid)
    total = int(minutes * 60 * 24000) * 2
    rng = np.random.default_rng(1)
    sent = 0
    t0 = time.perf_counter()
    while sent < total:
        n = min(chunk_bytes, total - sent)
        pcm = (rng.standard_normal(n // 2) * 3000).astype("<i2").tobytes()
        import base64

        await ws.send(
            json.dumps(
                {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}
            )
        )
        sent += n
    # a round trip: everything before it has been handled
    await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": "@@@@"}))
    while True:
        ev = json.loads(await ws.recv())
        if ev["type"] == "error" and ev["error"]["code"] == "invalid_value":
            break
        if ev["type"] == "error":
            print("   server error:", ev["error"]["message"])
    elapsed = time.perf_counter() - t0
    held = await settle(pid)
    audio_mb = sent / 1e6
    await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
    await ws.close()
    after = await settle(pid)
    per = (held - base) / minutes
    print(
        f"   {label}: {minutes:.1f} min ({audio_mb:.1f} MB) in {elapsed:.1f} s: "
        f"+{held - base:.1f} MB RSS = {per:.1f} MB per minute of audio, "
        f"{(held - base) / audio_mb:.2f}x the audio; after clear+close {after - base:+.1f} MB"
    )


def wav_file(path: Path, rate: int, channels: int, bits: int, seconds: float) -> int:
    """Speech (the sample question, every 4 s) at this rate, channels and sample size."""
    import numpy as np

    from audio.wav import read_wav

    question = np.frombuffer(read_wav(ROOT / "share/samples/question.wav", rate=rate), "<i2")
    period = np.zeros(rate * 4, np.int16)
    period[: len(question)] = question[: len(period)]
    frames = int(rate * seconds)
    block = channels * bits // 8
    with path.open("wb") as f:
        data_bytes = frames * block
        fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, bits)
        f.write(b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE")
        f.write(b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", data_bytes))
        for start in range(0, frames, len(period)):
            chunk = period[: min(len(period), frames - start)]
            data = ((chunk.astype(np.int32) >> 8) + 128).astype(np.uint8) if bits == 8 else chunk
            if channels > 1:
                data = np.repeat(data, channels)
            f.write(data.tobytes())
    return path.stat().st_size


async def probe_loop(ws: Any, stop: asyncio.Event, rtts: list[float]) -> None:
    while not stop.is_set():
        t = time.perf_counter()
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": "@@@@"}))
        while json.loads(await ws.recv())["type"] != "error":
            pass
        rtts.append((time.perf_counter() - t) * 1000)
        await asyncio.sleep(0.02)


async def server_lag(child: subprocess.Popen[bytes]) -> float:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(b"lag\n")
    child.stdin.flush()
    line = await asyncio.to_thread(child.stdout.readline)
    return float(json.loads(line)["lag_ms"])


async def stall(
    url: str, http_url: str, pid: int, child: subprocess.Popen[bytes], files: list[tuple[str, Path]]
) -> None:
    import httpx

    ws = await open_session(url)
    stop = asyncio.Event()
    idle: list[float] = []
    task = asyncio.create_task(probe_loop(ws, stop, idle))
    await asyncio.sleep(3)
    stop.set()
    await task
    await server_lag(child)
    median_idle = statistics.median(idle)
    print("c. event-loop stall seen by a live session (probe every 20 ms)")
    print(
        f"   idle server (peer): median round trip {median_idle:.1f} ms, "
        f"worst {max(idle):.1f} ms ({len(idle)} probes)"
    )
    for label, path in files:
        rtts: list[float] = []
        stop = asyncio.Event()
        base = rss_mb(pid)
        task = asyncio.create_task(probe_loop(ws, stop, rtts))
        t0 = time.perf_counter()
        async with httpx.AsyncClient(timeout=600) as http:
            with path.open("rb") as f:
                r = await http.post(
                    f"{http_url}/audio/transcriptions",
                    files={"file": (path.name, f, "audio/wav")},
                    data={"model": "whisper-1", "response_format": "json"},
                )
        took = time.perf_counter() - t0
        peak = rss_mb(pid)
        stop.set()
        await task
        lag = await server_lag(child)
        worst = max(rtts) - median_idle
        verdict = "PASS" if worst < STALL_TARGET_MS else "MISSED"
        status = (
            r.status_code
            if r.status_code != 200
            else f"200, {r.json()['usage']['seconds']:.0f} s of audio"
        )
        print(f"   {label}: HTTP {status} in {took:.1f} s; RSS after {peak - base:+.1f} MB")
        print(
            f"      round trip median {statistics.median(rtts):.1f} ms, worst {max(rtts):.1f} ms "
            f"({len(rtts)} probes): stall {worst:.1f} ms "
            f"(target < {STALL_TARGET_MS:.0f} ms) {verdict}; "
            f"server loop's own worst lag {lag:.1f} ms"
        )
    await ws.close()


async def main(args: argparse.Namespace) -> None:
    print(f"load average at start: {load()} ({os.cpu_count()} CPUs)")
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"]
        + ([] if args.release_memory else ["--keep-allocator"]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None
        info = json.loads(await asyncio.to_thread(child.stdout.readline))
        url = f"ws://127.0.0.1:{info['port']}/v1"
        http_url = f"http://127.0.0.1:{info['port']}/v1"
        pid = info["pid"]
        warm = await open_session(url)
        await warm.close()
        if "a" in args.parts:
            await per_session(url, pid, 10 if args.quick else 40)
        if "b" in args.parts:
            print("b. RSS per minute of buffered audio (one session, manual commit)")
            minutes = 2.0 if args.quick else 5.0
            # the engine's first live passes allocate its working memory once: not counted
            await per_minute(url, pid, 0.5, 4800, "warm-up, not counted")
            await per_minute(url, pid, minutes, 4800, "100 ms appends")
            await per_minute(url, pid, minutes * 2, 15 * MIB, "15 MiB appends")
        if "c" in args.parts:
            tmp = Path(args.tmp)
            tmp.mkdir(parents=True, exist_ok=True)
            big = tmp / "max_size.wav"
            wav_file(big, 44100, 2, 16, (25 * MIB - 44) / (44100 * 4))
            files = [("25 MiB, 44.1 kHz stereo", big)]
            if not args.quick:
                long = tmp / "max_duration.wav"
                wav_file(long, 8000, 1, 8, 25 * 60 - 1)
                files.append(("25 min, 8 kHz 8-bit", long))
            await stall(url, http_url, pid, child, files)
            for _, path in files:
                path.unlink()
    finally:
        child.terminate()
        child.wait(10)
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="fewer sessions, less audio")
    parser.add_argument("--tmp", default="/tmp/bench_server_limits", help="folder for the WAVs")
    parser.add_argument("--parts", default="abc", help="which measurements (default abc)")
    parser.add_argument(
        "--keep-allocator",
        dest="release_memory",
        action="store_false",
        help="LocalServer(release_memory=False): glibc's default mmap threshold",
    )
    ns = parser.parse_args()
    asyncio.run(serve(ns.release_memory) if ns.serve else main(ns))
