"""Benchmark WebRTC against WebSocket on the same local server, in the same run.

Run from the repository root: ``python benchmarks/bench_webrtc.py`` (about 1.5 minutes;
``--quick`` about 40 s). Needs the ``webrtc`` extra. The server runs in a **child process**
(this script with ``--serve``: a ``LocalServer`` on 127.0.0.1, engines warmed, echo
responder), so client and server CPU are measured apart (psutil on the child).

For each transport, one session (GA, server VAD, input transcription on) whose microphone
streams, in real time, ``turns`` cycles of: the question (``share/samples/question.wav``,
2.5 s) and 6 s of silence, during which the reply comes and is played. The transports run
one after the other, alternating which goes first over the rounds.

a. **End of speech -> first reply audio**, per turn: from the moment the last speech sample
   of the question left the client (WebSocket: its ``input_audio_buffer.append`` was sent;
   WebRTC: the mic frame holding it went into the track) to the first reply audio at the
   client (WebSocket: the first ``response.output_audio.delta``; WebRTC: the first decoded
   frame from the incoming track louder than -50 dBFS). WebRTC's figure includes Opus
   encoding both ways, the receiver's jitter buffer and the server's real-time playout.
b. **CPU per session-second**: CPU seconds used by the client process and by the server
   process during the session, divided by the session's wall time (1.0 = one core busy).

Figures depend on the machine and its load (printed). Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

__all__ = ["main"]

RATE = 24000
BYTES_PER_MS = 48
CHUNK_MS = 20
PAUSE_MS = 6000
TRAIL_MS = 200  # the samples end with 200 ms of silence after the speech
LOUD = 100  # int16 peak of a frame counted as reply audio (about -50 dBFS)


def read_sample(name: str) -> bytes:
    with wave.open(str(ROOT / "share" / "samples" / f"{name}.wav")) as w:
        return w.readframes(w.getnframes())


def serve() -> None:
    """The child: a warmed local server until stdin closes."""
    from realtime.server import LocalServer

    async def run() -> None:
        async with LocalServer(port=0, warm=True) as server:
            print(f"READY {server.url}", flush=True)
            await asyncio.to_thread(sys.stdin.read)

    asyncio.run(run())


class Mic:
    """A real-time microphone script: the question then a pause, ``turns`` times.

    Yields 20 ms chunks paced by the wall clock; ``speech_ends`` gets the time at which the
    chunk holding each question's last speech sample was handed over.
    """

    def __init__(self, turns: int) -> None:
        question = read_sample("question")
        self.speech_end_offset = len(question) - TRAIL_MS * BYTES_PER_MS
        self.cycle = question + bytes(PAUSE_MS * BYTES_PER_MS)
        self.turns = turns
        self.speech_ends: list[float] = []
        self.done = asyncio.Event()

    async def chunks(self) -> AsyncIterator[bytes]:
        step = CHUNK_MS * BYTES_PER_MS
        start = time.monotonic()
        sent = 0
        for _ in range(self.turns):
            for i in range(0, len(self.cycle), step):
                target = start + sent / BYTES_PER_MS / 1000
                delay = target - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                yield self.cycle[i : i + step]
                sent += step
                if i <= self.speech_end_offset < i + step:
                    self.speech_ends.append(time.monotonic())
        self.done.set()
        while True:  # silence until the session closes
            await asyncio.sleep(CHUNK_MS / 1000)
            yield bytes(step)


def first_after(times: list[float], t0: float) -> float | None:
    later = [t for t in times if t > t0]
    return min(later) if later else None


def latencies(speech_ends: list[float], audio_starts: list[float]) -> list[float]:
    out = []
    for t0 in speech_ends:
        t1 = first_after(audio_starts, t0)
        if t1 is not None:
            out.append((t1 - t0) * 1000)
    return out


async def run_websocket(url: str, turns: int) -> tuple[list[float], float]:
    import realtime
    from realtime.events.config import SessionConfig

    mic = Mic(turns)
    audio_starts: list[float] = []
    seen: set[str] = set()

    def on_delta(event: Any) -> None:
        if event.response_id not in seen:
            seen.add(event.response_id)
            audio_starts.append(time.monotonic())

    config = SessionConfig(transcription={"model": "whisper-1"})
    async with realtime.connect(url=url, config=config) as s:
        s.on("response.output_audio.delta", on_delta)
        t0 = time.monotonic()
        async for chunk in mic.chunks():
            await s.append_audio(chunk)
            if mic.done.is_set():
                break
        wall = time.monotonic() - t0
    return latencies(mic.speech_ends, audio_starts), wall


async def run_webrtc(url: str, turns: int) -> tuple[list[float], float]:
    import numpy as np

    import realtime
    from realtime.events.config import SessionConfig
    from realtime.webrtc import WebRTC

    mic = Mic(turns)
    audio_starts: list[float] = []
    state = {"playing": False, "last_loud": 0.0}

    def on_audio(pcm: bytes) -> None:
        now = time.monotonic()
        if int(np.abs(np.frombuffer(pcm, np.int16)).max(initial=0)) > LOUD:
            if not state["playing"] and now - state["last_loud"] > 1.0:
                audio_starts.append(now)
            state["playing"] = True
            state["last_loud"] = now
        elif now - state["last_loud"] > 1.0:
            state["playing"] = False

    config = SessionConfig(transcription={"model": "whisper-1"})
    rtc = WebRTC(mic=mic.chunks(), on_audio=on_audio)
    async with realtime.connect(url=url, config=config, transport=rtc):
        t0 = time.monotonic()
        await mic.done.wait()
        wall = time.monotonic() - t0
    return latencies(mic.speech_ends, audio_starts), wall


async def measure(
    name: str, run: Callable[[str, int], Any], url: str, turns: int, child: Any
) -> dict[str, Any]:
    server = child.cpu_times()
    c0 = time.process_time()
    lat, wall = await run(url, turns)
    client_cpu = time.process_time() - c0
    server_after = child.cpu_times()
    server_cpu = (server_after.user + server_after.system) - (server.user + server.system)
    return {
        "name": name,
        "latency": lat,
        "wall": wall,
        "client": client_cpu / wall,
        "server": server_cpu / wall,
    }


def fmt(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):7.0f} ms (min {min(values):.0f}, max {max(values):.0f})"


async def bench(turns: int, rounds: int) -> None:
    import psutil

    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"the server child did not start: {line!r}")
        url = line.split()[1]
        child = psutil.Process(proc.pid)
        print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
        print(f"{rounds} round(s) x {turns} turn(s) per transport; server in a child process\n")
        results: dict[str, list[dict[str, Any]]] = {"websocket": [], "webrtc": []}
        runs = {"websocket": run_websocket, "webrtc": run_webrtc}
        for r in range(rounds):
            order = ["websocket", "webrtc"] if r % 2 == 0 else ["webrtc", "websocket"]
            for name in order:
                results[name].append(await measure(name, runs[name], url, turns, child))
        print("a. end of speech -> first reply audio at the client (median over turns)")
        lat = {n: [x for res in results[n] for x in res["latency"]] for n in results}
        for name in ("websocket", "webrtc"):
            print(f"   {name:9}  {fmt(lat[name])}   n={len(lat[name])}")
        if lat["websocket"] and lat["webrtc"]:
            diff = statistics.median(lat["webrtc"]) - statistics.median(lat["websocket"])
            ratio = statistics.median(lat["webrtc"]) / statistics.median(lat["websocket"])
            print(f"   webrtc - websocket: {diff:+.0f} ms ({ratio:.2f}x)")
        print("\nb. CPU per session-second (1.0 = one core), median over rounds")
        print("   transport  client   server")
        for name in ("websocket", "webrtc"):
            client = statistics.median(res["client"] for res in results[name])
            server = statistics.median(res["server"] for res in results[name])
            print(f"   {name:9}  {client:6.3f}   {server:6.3f}")
        print(f"\nload average at end: {os.getloadavg()[0]:.1f}")
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round of two turns")
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return
    turns, rounds = (2, 1) if args.quick else (args.turns, args.rounds)
    asyncio.run(bench(turns, rounds))


if __name__ == "__main__":
    main()
