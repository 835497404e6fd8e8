"""Benchmark the local realtime server: turn latency, STT/TTS engine speed, session capacity.

Run from the repository root: ``python benchmarks/bench_server.py`` (about 3 minutes;
``--quick`` about 2 minutes: fewer runs, steps 1, 2, 4). The server runs in a **child
process** (this script started with ``--serve``: a ``LocalServer`` on 127.0.0.1 port 0,
engines warmed), so the client's CPU does not count against the server; the child also
measures its own event-loop lag and CPU time and reports them over a pipe. Engine figures
(b, c) are measured in this process while the server is idle. Every figure depends on the
machine and its load: the load average is printed with the table.

a. Turn latency for a 2.5 s spoken question (``share/samples/question.wav``, streamed in
   20 ms appends in real time; GA; input transcription on; echo responder; audio out):

   * manual commit: ``input_audio_buffer.commit`` + ``response.create`` sent at t0 ->
     transcript completed -> first ``response.output_audio.delta``;
   * server VAD (``silence_duration_ms`` 500): ``speech_stopped`` received at t0 -> the same.

   Median of several runs after a warm-up run, each on a fresh connection. The split
   (t0 -> transcript, transcript -> first audio) shows where the time goes; the peer figures
   are the engine costs of the same work measured in (b) and (c).
b. STT (faster-whisper tiny.en): real-time factor of one pass over the question, as the
   server runs it at commit without live transcription; and the incremental path
   (``IncrementalTranscriber`` fed in real time): the work left at commit, driven as the
   session drives it (manual commit: ``finish()``; VAD turn: ``request_pass()`` when the
   pause begins, ``finish(speech_end_ms)`` when it has lasted 500 ms).
c. TTS: time to first audio of the echo reply's first sentence (the server synthesizes
   sentence by sentence): Piper, against espeak-ng as the peer.
d. Capacity: N sessions (N = 1, 2, 4, 8, 16) each streaming real-time audio (20 ms appends
   paced by the wall clock; a 7.4 s cycle of 0.5 s silence, the question and 4.5 s of
   silence for the reply, staggered across sessions) with server VAD, echo responder and
   audio output, for a fixed time per step. Every 0.5 s each session also sends a
   *probe*: an append with invalid base64, which the server answers with an ``error``
   right after processing the appends queued before it, so its round trip measures how
   far the server's append path lags. A step **falls behind** when the 95th percentile of
   the probe round trip exceeds 200 ms (10 appends queued), or when a speech onset gets no
   ``speech_started`` within 1.5 s. Stepping stops at the first step that falls behind. A
   step whose *client* sent late (95th percentile > 50 ms) is marked client-limited.
e. Cold start: the largest event-loop stall of a server started without warming when one
   session connects and streams audio with VAD on (engines then load on first use).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

__all__ = ["main"]

RATE = 24000
BYTES_PER_MS = 48
CHUNK_MS = 20
REPLY_SENTENCE = "You said: What is the weather like in Paris today."
PROBE_EVERY = 25  # chunks (0.5 s)
PROBE_LIMIT_MS = 200.0
ONSET_LIMIT_S = 1.5
CLIENT_LATE_MS = 50.0

Row = tuple[str, str, str]


def read_sample(name: str) -> bytes:
    """PCM16 24 kHz mono of a shipped sample."""
    with wave.open(str(ROOT / "share" / "samples" / f"{name}.wav")) as w:
        data: bytes = w.readframes(w.getnframes())
        return data


def silence(ms: int) -> bytes:
    """``ms`` of PCM16 silence."""
    return bytes(ms * BYTES_PER_MS)


def append_frames(pcm: bytes) -> list[str]:
    """``input_audio_buffer.append`` frames of 20 ms each."""
    step = CHUNK_MS * BYTES_PER_MS
    return [
        json.dumps(
            {
                "type": "input_audio_buffer.append",
                "audio": base64.b64encode(pcm[i : i + step]).decode("ascii"),
            }
        )
        for i in range(0, len(pcm), step)
    ]


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` (nearest rank); nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def ms(seconds: float) -> str:
    """Seconds as a millisecond string."""
    return f"{seconds * 1000:.0f} ms"


# -- the server child -------------------------------------------------------------------------


def serve_child(warm: bool) -> None:
    """Child process: run a LocalServer; answer ``reset`` / ``stats`` lines on stdin."""
    from realtime.server import LocalServer

    lags: list[float] = []
    mark = {"cpu": time.process_time(), "wall": time.monotonic()}
    lock = threading.Lock()

    async def monitor() -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(0.02)
            with lock:
                lags.append(loop.time() - t - 0.02)

    def control(line: str) -> str:
        with lock:
            if line == "reset":
                lags.clear()
                mark["cpu"], mark["wall"] = time.process_time(), time.monotonic()
                return "ok"
            wall = time.monotonic() - mark["wall"]
            cpu = time.process_time() - mark["cpu"]
            return json.dumps(
                {
                    "lag_p50": pct(lags, 0.5),
                    "lag_p99": pct(lags, 0.99),
                    "lag_max": max(lags, default=float("nan")),
                    "cpu": cpu / wall if wall > 0 else 0.0,
                }
            )

    async def run() -> None:
        async with LocalServer(port=0, warm=warm) as server:
            task = asyncio.create_task(monitor())
            print(f"READY {server.url}", flush=True)
            while True:
                line = await asyncio.to_thread(sys.stdin.readline)
                if not line:
                    break
                print(control(line.strip()), flush=True)
            task.cancel()

    asyncio.run(run())


class Child:
    """The server child process and its control pipe."""

    def __init__(self, warm: bool = True) -> None:
        args = [sys.executable, str(Path(__file__).resolve()), "--serve"]
        if not warm:
            args.append("--cold")
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.proc.kill()
            raise RuntimeError(f"the server child did not start: {line!r}")
        self.url = line.split()[1]

    def ask(self, command: str) -> str:
        """Send a control line; return the answer line."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def stats(self) -> dict[str, float]:
        """Event-loop lag (seconds) and CPU share (1.0 = one core) since the last reset."""
        data: dict[str, float] = json.loads(self.ask("stats"))
        return data

    def close(self) -> None:
        """Stop the child (EOF on its stdin)."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    async def settle(self, limit_s: float = 12.0) -> None:
        """Wait (bounded) until the child is idle: under 15% of a core for 0.5 s."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            await asyncio.to_thread(self.ask, "reset")
            await asyncio.sleep(0.5)
            if (await asyncio.to_thread(self.stats))["cpu"] < 0.15:
                return


# -- a minimal client (no model validation: keep the client cheap) --------------------------


def session_update(*, vad: bool, transcription: bool = True) -> str:
    """GA session.update: audio out, optional server VAD (500 ms silence), transcription."""
    td = (
        {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 500,
            "create_response": True,
            "interrupt_response": True,
        }
        if vad
        else None
    )
    tr = {"model": "whisper-1"} if transcription else None
    session = {
        "type": "realtime",
        "output_modalities": ["audio"],
        "audio": {"input": {"turn_detection": td, "transcription": tr}},
    }
    return json.dumps({"type": "session.update", "session": session})


@dataclass
class Conn:
    """One connection: a receive task that timestamps the events."""

    ws: Any
    first: dict[str, float] = field(default_factory=dict)
    log: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    waiters: list[tuple[Callable[[dict[str, Any]], bool], asyncio.Future[float]]] = field(
        default_factory=list
    )
    on_event: Callable[[float, dict[str, Any]], None] | None = None
    task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str) -> Conn:
        from websockets.asyncio.client import connect

        ws = await connect(f"{url}/realtime?model=gpt-realtime", max_size=None)
        conn = cls(ws)
        conn.task = asyncio.create_task(conn._receive())
        return conn

    async def _receive(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for frame in self.ws:
                now = time.perf_counter()
                event = json.loads(frame)
                kind = event["type"]
                self.first.setdefault(kind, now)
                if self.on_event is not None:
                    self.on_event(now, event)
                else:
                    self.log.append((now, event))
                for pred, fut in list(self.waiters):
                    if not fut.done() and pred(event):
                        fut.set_result(now)
        except ConnectionClosed:
            pass

    async def wait(self, kind: str, timeout: float = 60.0) -> float:
        """Arrival time of the next event of this type (or of an earlier one, if seen)."""
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters.append((lambda e: e["type"] == kind, fut))
        if kind in self.first and self.on_event is None:
            return self.first[kind]
        return await asyncio.wait_for(fut, timeout)

    async def close(self) -> None:
        await self.ws.close()
        if self.task is not None:
            await self.task


async def paced_send(ws: Any, frames: list[str], start: float) -> list[float]:
    """Send ``frames`` one per 20 ms on the wall clock; returns the send times."""
    times = []
    for i, frame in enumerate(frames):
        delay = start + i * CHUNK_MS / 1000 - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await ws.send(frame)
        times.append(time.perf_counter())
    return times


async def latency_run(url: str, question: bytes, *, vad: bool) -> dict[str, float]:
    """One spoken turn; the times (seconds) of its stages from t0."""
    conn = await Conn.open(url)
    await conn.wait("session.created")
    await conn.ws.send(session_update(vad=vad))
    await conn.wait("session.updated")
    audio = question + (silence(1200) if vad else b"")
    sent = await paced_send(conn.ws, append_frames(audio), time.perf_counter())
    if vad:
        t0 = await conn.wait("input_audio_buffer.speech_stopped")
        speech_end = sent[(len(question) // BYTES_PER_MS - 200) // CHUNK_MS]
    else:
        t0 = time.perf_counter()
        await conn.ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        await conn.ws.send(json.dumps({"type": "response.create"}))
    await conn.wait("response.done")
    f = conn.first
    kind = "conversation.item.input_audio_transcription.completed"
    out = {
        "committed": f["input_audio_buffer.committed"] - t0,
        "transcript": f[kind] - t0,
        "first_audio": f["response.output_audio.delta"] - t0,
    }
    out["after_transcript"] = out["first_audio"] - out["transcript"]
    if vad:
        out["speech_end_to_stopped"] = t0 - speech_end
    text = next(e for _, e in conn.log if e["type"] == kind)["transcript"]
    if "paris" not in text.lower():
        print(f"  warning: transcript {text!r}", file=sys.stderr)
    await conn.close()
    return out


async def bench_latency(child: Child, runs: int) -> list[Row]:
    """(a) commit -> first audio delta, manual and server VAD, median of ``runs``."""
    question = read_sample("question")
    rows: list[Row] = []
    for vad in (False, True):
        await latency_run(child.url, question, vad=vad)  # warm-up
        await child.settle()
        results = []
        for _ in range(runs):
            results.append(await latency_run(child.url, question, vad=vad))
            await child.settle()

        def med(key: str, results: list[dict[str, float]] = results) -> float:
            return statistics.median(r[key] for r in results)

        what = "a. server VAD" if vad else "a. manual commit"
        t0 = "speech_stopped" if vad else "commit"
        if vad:
            rows.append(
                (what, "speech end (audio) -> speech_stopped", ms(med("speech_end_to_stopped")))
            )
        rows.append((what, f"{t0} -> committed", ms(med("committed"))))
        rows.append((what, f"{t0} -> input transcript completed", ms(med("transcript"))))
        rows.append((what, "transcript -> first audio delta", ms(med("after_transcript"))))
        spread = (
            f"(min {ms(min(r['first_audio'] for r in results))}, max "
            f"{ms(max(r['first_audio'] for r in results))})"
        )
        rows.append(
            (what, f"{t0} -> first audio delta (n={runs})", f"{ms(med('first_audio'))} {spread}")
        )
    return rows


# -- engines (in this process, server idle) ---------------------------------------------------


def bench_stt(reps: int) -> tuple[list[Row], float]:
    """(b) one-pass RTF and the incremental path's work left at finish()."""
    from realtime.server.stt import FasterWhisperEngine, IncrementalTranscriber

    engine = FasterWhisperEngine()
    question = read_sample("question")
    dur = len(question) / BYTES_PER_MS / 1000
    engine.transcribe(question)  # warm-up
    passes = []
    for _ in range(reps + 1):
        t = time.perf_counter()
        engine.transcribe(question)
        passes.append(time.perf_counter() - t)
    one_pass = statistics.median(passes)
    rows: list[Row] = [
        ("b. STT", f"one pass over the question ({dur:.1f} s)", ms(one_pass)),
        ("b. STT", "real-time factor (one pass)", f"{one_pass / dur:.2f}"),
    ]
    speech_end = len(question) / BYTES_PER_MS - 200  # the sample ends with 200 ms of silence
    step = CHUNK_MS * BYTES_PER_MS
    # as the session does it: a manual commit right after the audio (no speech end known);
    # a VAD turn asks for a pass when the pause begins and commits 500 ms of silence later
    for label, fed, vad in (
        ("manual commit: finish()", question, False),
        (
            "VAD turn: request_pass() at the pause, finish(speech_end_ms)",
            question + silence(500),
            True,
        ),
    ):
        waits, finals = [], 0
        for _ in range(reps):
            inc = IncrementalTranscriber(engine, interval_s=1.0)
            start = time.perf_counter()
            requested = False
            for i in range(0, len(fed), step):
                inc.append(fed[i : i + step])
                if vad and not requested and (i + step) / BYTES_PER_MS >= speech_end + 32:
                    inc.request_pass()  # the VAD's first silent window (32 ms)
                    requested = True
                ahead = (i + step) / BYTES_PER_MS / 1000 - (time.perf_counter() - start)
                if ahead > 0:
                    time.sleep(ahead)
            t = time.perf_counter()
            done = inc.finish(speech_end_ms=speech_end if vad else None)
            waits.append(time.perf_counter() - t)
            finals += done.final_pass
        rows.append(
            (
                "b. STT",
                f"incremental, left at commit: {label}",
                f"{ms(statistics.median(waits))} (final pass {finals}/{reps})",
            )
        )
    return rows, one_pass


def bench_tts(reps: int) -> tuple[list[Row], float]:
    """(c) time to first audio of a one-sentence reply, Piper vs espeak-ng."""
    from realtime.server.tts import EspeakEngine, PiperEngine

    rows: list[Row] = []
    firsts: dict[str, float] = {}
    engines: list[tuple[str, Callable[[], Any]]] = [
        ("piper", PiperEngine),
        ("espeak-ng", EspeakEngine),
    ]
    for name, factory in engines:
        engine = factory()
        engine.synthesize("Warm up.")
        times = []
        pcm = b""
        for _ in range(reps + 2):
            t = time.perf_counter()
            pcm = engine.synthesize(REPLY_SENTENCE)
            times.append(time.perf_counter() - t)
        firsts[name] = statistics.median(times)
        audio_s = len(pcm) / BYTES_PER_MS / 1000
        rows.append(
            ("c. TTS", f"{name}: first audio, one sentence ({audio_s:.1f} s)", ms(firsts[name]))
        )
    rows.append(
        ("c. TTS", "ratio piper / espeak-ng", f"{firsts['piper'] / firsts['espeak-ng']:.0f}x")
    )
    return rows, firsts["piper"]


# -- capacity ----------------------------------------------------------------------------------


class Gate:
    """Holds ``n`` sessions until all are connected and configured, then starts them at once."""

    def __init__(self, n: int) -> None:
        self._n = n
        self._arrived = 0
        self._all = asyncio.Event()
        self._open = asyncio.Event()

    async def arrive(self) -> None:
        """A session is ready: wait for the start."""
        self._arrived += 1
        if self._arrived == self._n:
            self._all.set()
        await self._open.wait()

    async def all_arrived(self) -> None:
        """Wait until every session has arrived."""
        await self._all.wait()

    def open(self) -> None:
        """Start every session."""
        self._open.set()


@dataclass
class SessionLoad:
    """What one streaming session measured."""

    probe_rtt: list[float] = field(default_factory=list)
    late: list[float] = field(default_factory=list)
    onsets: list[float] = field(default_factory=list)  # wall times speech onsets were sent
    started: list[float] = field(default_factory=list)
    stopped: list[float] = field(default_factory=list)
    first_audio_after_stop: list[float] = field(default_factory=list)
    responses: int = 0
    errors: list[str] = field(default_factory=list)


async def stream_session(
    url: str,
    cycle: list[str],
    onset_chunks: list[int],
    offset: int,
    seconds: float,
    gate: Gate,
    load: SessionLoad,
) -> None:
    """Stream the cycle (rotated by ``offset`` chunks) in real time for ``seconds``."""
    conn = await Conn.open(url)
    probes: dict[str, float] = {}
    waiting_audio: list[float] = []

    def on_event(now: float, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "error":
            eid = event["error"].get("event_id")
            if eid in probes:
                load.probe_rtt.append(now - probes.pop(eid))
            else:
                load.errors.append(event["error"].get("message", "")[:80])
        elif kind == "input_audio_buffer.speech_started":
            load.started.append(now)
        elif kind == "input_audio_buffer.speech_stopped":
            load.stopped.append(now)
            waiting_audio.append(now)
        elif kind == "response.output_audio.delta" and waiting_audio:
            load.first_audio_after_stop.append(now - waiting_audio.pop())
            waiting_audio.clear()
        elif kind == "response.done":
            load.responses += 1

    created = asyncio.get_running_loop().create_future()

    def first(now: float, event: dict[str, Any]) -> None:
        if not created.done() and event["type"] in ("session.created", "session.updated"):
            created.set_result(event["type"])
        on_event(now, event)

    conn.on_event = first
    await created
    created = asyncio.get_running_loop().create_future()
    await conn.ws.send(session_update(vad=True))
    await created
    await gate.arrive()
    start = time.perf_counter()
    n = int(seconds * 1000 / CHUNK_MS)
    onset_set = set(onset_chunks)
    for k in range(n):
        due = start + k * CHUNK_MS / 1000
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        load.late.append(max(0.0, time.perf_counter() - due))
        idx = (k + offset) % len(cycle)
        if idx in onset_set:
            load.onsets.append(time.perf_counter())
        await conn.ws.send(cycle[idx])
        if k % PROBE_EVERY == PROBE_EVERY - 1:
            eid = f"probe_{k}"
            probes[eid] = time.perf_counter()
            probe = {"type": "input_audio_buffer.append", "audio": "!", "event_id": eid}
            await conn.ws.send(json.dumps(probe))
    await asyncio.sleep(0.5)  # late answers
    load.probe_rtt.extend(ONSET_LIMIT_S * 10 for _ in probes)  # never answered: count as huge
    await conn.close()


def onset_hits(load: SessionLoad) -> tuple[int, int, list[float]]:
    """Speech onsets answered by a speech_started within the limit: (hits, onsets, delays)."""
    hits, delays = 0, []
    for onset in load.onsets:
        after = [s - onset for s in load.started if 0 <= s - onset <= ONSET_LIMIT_S]
        if after:
            hits += 1
            delays.append(min(after))
    return hits, len(load.onsets), delays


CAPACITY_HEAD = (
    "sessions",
    "verdict",
    "probe p50/p95",
    "onsets",
    "onset->started p50",
    "stopped->1st audio p50 (n)",
    "server loop lag p99/max",
    "server CPU",
    "client late p95",
)


def _ms_or_na(seconds: float) -> str:
    return "n/a" if seconds != seconds else f"{seconds * 1000:.0f} ms"


async def bench_capacity(
    child: Child, steps: list[int], seconds: float
) -> tuple[list[tuple[str, ...]], int]:
    """(d) concurrent real-time sessions until the server falls behind.

    Returns the table rows (see ``CAPACITY_HEAD``) and the largest step that kept up.
    """
    question = read_sample("question")
    cycle = append_frames(silence(500) + question + silence(4500))
    onset_chunk = (500 + 200) // CHUNK_MS  # speech starts 200 ms into the sample
    table: list[tuple[str, ...]] = []
    sustained = 0
    for n in steps:
        await child.settle()
        loads = [SessionLoad() for _ in range(n)]
        gate = Gate(n)
        tasks = [
            asyncio.create_task(
                stream_session(
                    child.url, cycle, [onset_chunk], i * len(cycle) // n, seconds, gate, loads[i]
                )
            )
            for i in range(n)
        ]
        await gate.all_arrived()
        await asyncio.to_thread(child.ask, "reset")
        gate.open()
        await asyncio.gather(*tasks)
        stats = await asyncio.to_thread(child.stats)
        rtts = [r for load in loads for r in load.probe_rtt]
        late = [x for load in loads for x in load.late]
        hits = total = 0
        delays: list[float] = []
        for load in loads:
            h, t, d = onset_hits(load)
            hits, total, delays = hits + h, total + t, delays + d
        replies = [x for load in loads for x in load.first_audio_after_stop]
        behind = pct(rtts, 0.95) * 1000 > PROBE_LIMIT_MS or hits < total
        verdict = "FALLS BEHIND" if behind else "sustained"
        if pct(late, 0.95) * 1000 > CLIENT_LATE_MS:
            verdict += " (client-limited)"
        table.append(
            (
                str(n),
                verdict,
                f"{pct(rtts, 0.5) * 1000:.0f}/{pct(rtts, 0.95) * 1000:.0f} ms",
                f"{hits}/{total}",
                _ms_or_na(pct(delays, 0.5)),
                f"{_ms_or_na(pct(replies, 0.5))} ({len(replies)})",
                f"{stats['lag_p99'] * 1000:.0f}/{stats['lag_max'] * 1000:.0f} ms",
                f"{stats['cpu'] * 100:.0f}%",
                f"{pct(late, 0.95) * 1000:.0f} ms",
            )
        )
        if behind:
            break
        sustained = n
    return table, sustained


async def bench_cold(seconds: float, runs: int) -> list[Row]:
    """(e) the worst event-loop stall of a cold server when the first session streams.

    Each run starts a fresh child without warming; one session connects, turns server VAD
    on and streams audio in real time while the engines load on first use.
    """
    stalls = []
    for _ in range(runs):
        child = await asyncio.to_thread(Child, False)
        try:
            await asyncio.to_thread(child.ask, "reset")
            conn = await Conn.open(child.url)
            await conn.wait("session.created")
            await conn.ws.send(session_update(vad=True))
            await conn.wait("session.updated")
            frames = append_frames(silence(300) + read_sample("greeting"))
            await paced_send(conn.ws, frames[: int(seconds * 1000 / CHUNK_MS)], time.perf_counter())
            await asyncio.sleep(0.5)
            stalls.append((await asyncio.to_thread(child.stats))["lag_max"])
            await conn.close()
        finally:
            await asyncio.to_thread(child.close)
    each = ", ".join(ms(x) for x in stalls)
    what = f"largest event-loop stall, first session streaming, no warm-up (n={runs})"
    return [("e. cold start", what, each)]


# -- main ------------------------------------------------------------------------------------


@dataclass
class Results:
    """Everything one run measured."""

    rows: list[Row] = field(default_factory=list)
    capacity: list[tuple[str, ...]] = field(default_factory=list)
    sustained: int = 0
    step_seconds: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)


async def run(args: argparse.Namespace) -> Results:
    """Run parts a to e against a server child."""
    quick = args.quick
    runs = args.runs or (2 if quick else 4)
    steps = [int(s) for s in (args.steps or ("1,2,4" if quick else "1,2,4,8,16")).split(",")]
    res = Results(step_seconds=args.step_seconds or (6.0 if quick else 10.0))
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        res.parts[name] = time.monotonic() - clock
        clock = time.monotonic()

    child = await asyncio.to_thread(Child, True)
    try:
        lap("server start")
        res.rows += await bench_latency(child, runs)
        lap("a")
        await child.settle()
        stt_rows, one_pass = await asyncio.to_thread(bench_stt, 1 if quick else 2)
        lap("b")
        tts_rows, first_audio = await asyncio.to_thread(bench_tts, 1 if quick else 3)
        lap("c")
        res.rows += stt_rows + tts_rows
        floor = one_pass + first_audio
        res.rows.append(("a/b/c", "engine floor: one STT pass + first TTS sentence", ms(floor)))
        res.capacity, res.sustained = await bench_capacity(child, steps, res.step_seconds)
        lap("d")
    finally:
        await asyncio.to_thread(child.close)
    res.rows += await bench_cold(2.5, 1 if quick else 2)
    lap("e")
    return res


def print_table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """Print rows as aligned columns (the last column is not padded)."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        cells = [c.ljust(w) for c, w in zip(r[:-1], widths, strict=False)]
        print("  ".join([*cells, r[-1]]))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the tables."""
    parser = argparse.ArgumentParser(description="local realtime server benchmark")
    parser.add_argument("--quick", action="store_true", help="fewer runs and steps (~1.5 min)")
    parser.add_argument("--runs", type=int, help="latency runs per mode (default 4, quick 2)")
    parser.add_argument("--steps", help="session counts (default 1,2,4,8,16; quick 1,2,4)")
    parser.add_argument("--step-seconds", type=float, help="streaming time per capacity step")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve_child(warm=not args.cold)
        return 0
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    res = asyncio.run(run(args))
    load = os.getloadavg()
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in res.parts.items())
    print(
        f"# bench_server: {os.cpu_count()} CPUs, load average {load_before:.2f} at start, "
        f"{load[0]:.2f} at end; {time.monotonic() - started:.0f} s ({parts}); "
        "server in a child process"
    )
    print_table(("part", "measure", "value"), res.rows)
    print()
    print(
        f"# d. capacity: real-time sessions (20 ms appends, server VAD, echo, audio out), "
        f"{res.step_seconds:.0f} s per step. Falls behind when the probe round trip p95 > "
        f"{PROBE_LIMIT_MS:.0f} ms or a speech onset gets no speech_started within "
        f"{ONSET_LIMIT_S:.1f} s."
    )
    print_table(CAPACITY_HEAD, res.capacity)
    print(f"sessions sustained by one server process: {res.sustained}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
