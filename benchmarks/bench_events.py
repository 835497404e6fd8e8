"""Benchmark of realtime.events: parsing a realistic server stream, encoding an audio append.

Run from the repository root::

    python benchmarks/bench_events.py            # full run (well under a minute)
    python benchmarks/bench_events.py --quick    # fewer repetitions, for a smoke test

What it measures (issue 2, section 4):

* **parse**: one assistant turn as a server sends it, in both dialects (beta and GA
  wire names and shapes), as ``bytes`` frames: ``response.created``,
  ``response.output_item.added``, ``conversation.item.created`` (beta) /
  ``conversation.item.added`` (GA), ``response.content_part.added``, 10 s of speech as
  100 ms PCM16 24 kHz audio deltas (4,800 bytes = 6,400 base64 characters each), a
  transcript delta after every other audio chunk, the done events and ``response.done``
  with usage. Events/s for ``realtime.events.parse_server_event`` and for openai-python's
  own ``AsyncRealtimeConnection.parse_event`` (GA: ``openai.resources.realtime``, beta:
  ``openai.resources.beta.realtime``) on the same frames, and the ratio.
  Target: >= 10x openai-python for both dialects.
* **append**: turning 20 ms of PCM16 (960 bytes) into the text frame of an
  ``input_audio_buffer.append`` (base64 + event + JSON): ``InputAudioBufferAppendEvent
  .from_pcm`` + ``encode_client_event``; openai-python's equivalent is base64 plus its
  connection's ``input_audio_buffer.append(audio=...)`` up to the socket (its ``send``
  transforms the params and ``json.dumps`` them; the socket write is replaced by a no-op).
  Target: <= 20 µs.

Each figure is the median of several timed repetitions (best in brackets); a missed
target is printed as MISSED.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pydantic

import realtime.events as rt

__all__ = ["build_turn", "main"]

SAMPLE_RATE = 24_000
CHUNK_MS = 100
SPEECH_S = 10
CHUNK_BYTES = SAMPLE_RATE * 2 * CHUNK_MS // 1000  # 4,800 bytes -> 6,400 base64 chars
APPEND_BYTES = SAMPLE_RATE * 2 * 20 // 1000  # 960 bytes = 20 ms
PARSE_TARGET = 10.0  # x openai-python
APPEND_TARGET_US = 20.0
PCM_FORMAT = {"type": "audio/pcm", "rate": SAMPLE_RATE}

TRANSCRIPT = (
    "Sure thing, here is what I found about the weather in Lisbon this weekend: mostly sunny "
    "with a light breeze from the west, highs around twenty two degrees, and a small chance "
    "of rain on Sunday evening, so you might want to pack a light jacket just in case."
)


def _frame(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def build_turn(dialect: str, seed: int = 1) -> list[bytes]:
    """The frames of one assistant turn in ``dialect`` ("beta" or "ga")."""
    rng = random.Random(seed)
    ga = dialect == "ga"
    counter = iter(range(1, 1_000_000))

    def eid() -> str:
        return f"event_{next(counter):06d}AbCdEfGhIj"

    resp_id, item_id = "resp_CCXHw0UJld10EzIUXQCNh", "item_CCXHwGjjDUfOXbiySlK7i"
    audio_names = (
        ("response.output_audio", "response.output_audio_transcript")
        if ga
        else ("response.audio", "response.audio_transcript")
    )
    ref = {"response_id": resp_id, "item_id": item_id, "output_index": 0, "content_index": 0}

    def response(status: str, output: list[Any], usage: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "object": "realtime.response",
            "id": resp_id,
            "status": status,
            "status_details": None,
            "output": output,
            "usage": usage,
        }
        if ga:
            body.update(
                conversation_id="conv_CCXHsurMKcaVxIZvaCI5m",
                output_modalities=["audio"],
                max_output_tokens="inf",
                audio={"output": {"format": PCM_FORMAT, "voice": "marin"}},
                metadata=None,
            )
        return body

    def item(status: str, content: list[Any]) -> dict[str, Any]:
        return {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": content,
        }

    frames: list[dict[str, Any]] = [
        {
            "type": "response.created",
            "event_id": eid(),
            "response": response("in_progress", [], None),
        },
        {
            "type": "response.output_item.added",
            "event_id": eid(),
            "response_id": resp_id,
            "output_index": 0,
            "item": item("in_progress", []),
        },
        {
            "type": "conversation.item.added" if ga else "conversation.item.created",
            "event_id": eid(),
            "previous_item_id": "item_CCXHvPrevious00000000",
            "item": item("in_progress", []),
        },
        {
            "type": "response.content_part.added",
            "event_id": eid(),
            **ref,
            "part": {"type": "audio", "transcript": ""},
        },
    ]
    transcript: list[str] = []
    words = iter(TRANSCRIPT.split() * 4)
    for i in range(SPEECH_S * 1000 // CHUNK_MS):
        chunk = rng.randbytes(CHUNK_BYTES)
        delta = base64.b64encode(chunk).decode()
        frames.append({"type": f"{audio_names[0]}.delta", "event_id": eid(), **ref, "delta": delta})
        if i % 2 == 1:
            word = next(words) + " "
            transcript.append(word)
            frames.append(
                {"type": f"{audio_names[1]}.delta", "event_id": eid(), **ref, "delta": word}
            )
    text = "".join(transcript).strip()
    done_content = [{"type": "output_audio" if ga else "audio", "transcript": text}]
    if ga:
        usage: dict[str, Any] = {
            "total_tokens": 253,
            "input_tokens": 132,
            "output_tokens": 121,
            "input_token_details": {
                "text_tokens": 119,
                "audio_tokens": 13,
                "image_tokens": 0,
                "cached_tokens": 64,
                "cached_tokens_details": {"text_tokens": 64, "audio_tokens": 0, "image_tokens": 0},
            },
            "output_token_details": {"text_tokens": 30, "audio_tokens": 91},
        }
    else:
        usage = {
            "total_tokens": 275,
            "input_tokens": 127,
            "output_tokens": 148,
            "input_token_details": {
                "cached_tokens": 384,
                "text_tokens": 119,
                "audio_tokens": 8,
                "cached_tokens_details": {"text_tokens": 128, "audio_tokens": 256},
            },
            "output_token_details": {"text_tokens": 36, "audio_tokens": 112},
        }
    frames += [
        {"type": f"{audio_names[0]}.done", "event_id": eid(), **ref},
        {"type": f"{audio_names[1]}.done", "event_id": eid(), **ref, "transcript": text},
        {
            "type": "response.content_part.done",
            "event_id": eid(),
            **ref,
            "part": {"type": "audio", "transcript": text},
        },
        {
            "type": "response.output_item.done",
            "event_id": eid(),
            "response_id": resp_id,
            "output_index": 0,
            "item": item("completed", done_content),
        },
    ]
    if ga:
        frames.append(
            {
                "type": "conversation.item.done",
                "event_id": eid(),
                "previous_item_id": "item_CCXHvPrevious00000000",
                "item": item("completed", done_content),
            }
        )
    frames.append(
        {
            "type": "response.done",
            "event_id": eid(),
            "response": response("completed", [item("completed", done_content)], usage),
        }
    )
    return [_frame(f) for f in frames]


def _calibrate(run: Callable[[], None], min_time: float) -> int:
    """How many calls of ``run`` last at least ``min_time`` seconds (after a warm-up call)."""
    run()  # warm caches (schema build, imports)
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            run()
        if time.perf_counter() - start >= min_time:
            return loops
        loops *= 2


def _sample(run: Callable[[], None], loops: int, cpu: list[float] | None = None) -> float:
    """Wall seconds per call over ``loops`` calls; CPU seconds per call appended to ``cpu``."""
    cpu_start, start = time.thread_time(), time.perf_counter()
    for _ in range(loops):
        run()
    wall = (time.perf_counter() - start) / loops
    if cpu is not None:
        cpu.append((time.thread_time() - cpu_start) / loops)
    return wall


def _timeit(run: Callable[[], None], repeat: int, min_time: float) -> tuple[float, float]:
    """(median, best) seconds of one call of ``run``, each sample lasting >= ``min_time``."""
    loops = _calibrate(run, min_time)
    samples = [_sample(run, loops) for _ in range(repeat)]
    return statistics.median(samples), min(samples)


def _paired(
    ours: Callable[[], None],
    theirs: Callable[[], None],
    repeat: int,
    min_time: float,
    cpu: list[float] | None = None,
) -> tuple[list[float], list[float]]:
    """Interleaved samples (seconds per call) of two functions, so load drift hits both alike.

    ``cpu`` (when given) collects the CPU seconds per call of ``ours``.
    """
    loops_ours, loops_theirs = _calibrate(ours, min_time), _calibrate(theirs, min_time)
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeat):
        a.append(_sample(ours, loops_ours, cpu))
        b.append(_sample(theirs, loops_theirs))
    return a, b


def _openai_parsers() -> dict[str, Callable[[bytes], Any]] | str:
    """openai-python's parse_event per dialect, or why it is unavailable."""
    try:
        import openai
        from openai.resources.beta.realtime.realtime import (
            AsyncRealtimeConnection as BetaAsyncRealtimeConnection,
        )
        from openai.resources.realtime.realtime import AsyncRealtimeConnection
    except ImportError as exc:  # the baseline is optional
        return f"openai-python not available ({exc})"
    # parse_event does not touch the connection; no socket is needed to call it.
    ga_conn = object.__new__(AsyncRealtimeConnection)
    beta_conn = object.__new__(BetaAsyncRealtimeConnection)
    _ = openai.__version__
    return {"ga": ga_conn.parse_event, "beta": beta_conn.parse_event}


def _openai_append() -> Callable[[bytes], Any] | str:
    """openai-python's send path of input_audio_buffer.append (socket write replaced by a no-op)."""
    try:
        from openai.resources.realtime.realtime import (
            RealtimeConnection,
            RealtimeInputAudioBufferResource,
        )
    except ImportError as exc:
        return f"openai-python not available ({exc})"

    class _NoSocket(RealtimeConnection):
        sent: str | bytes = ""

        def _send(self, data: bytes | str) -> None:
            self.sent = data

    conn = object.__new__(_NoSocket)
    resource = RealtimeInputAudioBufferResource(conn)

    def append(pcm: bytes) -> str | bytes:
        resource.append(audio=base64.b64encode(pcm).decode("ascii"))
        return conn.sent

    return append


def _check_parsed(name: str, events: Sequence[Any], dialect: str) -> str:
    """A note when a parser did not give typed events for every frame (figures would mislead)."""
    unknown = sum(
        1
        for e in events
        if isinstance(e, dict) or type(e).__name__ in ("UnknownServerEvent", "BaseModel")
    )
    return f"  note: {name} ({dialect}) gave {unknown} untyped events" if unknown else ""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; returns 0 (misses are printed, not raised)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test)")
    parser.add_argument("--repeat", type=int, default=7, help="timed repetitions per figure")
    args = parser.parse_args(argv)
    repeat, min_time = (3, 0.05) if args.quick else (max(3, args.repeat), 0.25)

    openai_parse = _openai_parsers()
    openai_append = _openai_append()
    try:
        import openai

        openai_version = openai.__version__
    except ImportError:
        openai_version = "absent"
    print(
        f"realtime.events benchmark: Python {platform.python_version()}, "
        f"pydantic {pydantic.VERSION}, openai {openai_version}, {platform.machine()}"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"median of {repeat} interleaved repetitions, best in brackets; "
        f"{os.cpu_count()} CPUs, load average {load:.1f} at start\n"
    )

    notes: list[str] = []
    rows: list[str] = []
    header = f"{'parse':<6} {'events':>6} {'MB':>5}  {'realtime.events ev/s':>24}  "
    header += f"{'openai-python ev/s':>22}  {'ratio':>6}  target"
    for dialect in ("beta", "ga"):
        frames = build_turn(dialect)
        n = len(frames)
        mb = sum(len(f) for f in frames) / 1e6
        ours = [rt.parse_server_event(f, dialect=dialect) for f in frames]  # type: ignore[arg-type]
        notes.append(_check_parsed("realtime.events", ours, dialect))

        def run_ours(frames: list[bytes] = frames, d: Any = dialect) -> None:
            for f in frames:
                rt.parse_server_event(f, dialect=d)

        if isinstance(openai_parse, str):
            med, best = _timeit(run_ours, repeat, min_time)
            other = f"{'n/a':>22}"
            ratio_txt, verdict = f"{'n/a':>6}", "not measured (" + openai_parse + ")"
        else:
            parse = openai_parse[dialect]
            notes.append(_check_parsed("openai-python", [parse(f) for f in frames], dialect))

            def run_theirs(frames: list[bytes] = frames, parse: Any = parse) -> None:
                for f in frames:
                    parse(f)

            mine, theirs = _paired(run_ours, run_theirs, repeat, min_time)
            med, best = statistics.median(mine), min(mine)
            tmed, tbest = statistics.median(theirs), min(theirs)
            # Ratio per interleaved pair, then the median: robust to a busy machine.
            ratio = statistics.median(t / o for o, t in zip(mine, theirs, strict=True))
            other = f"{n / tmed:>10,.0f} ({n / tbest:>9,.0f})"
            ratio_txt = f"{ratio:>5.1f}x"
            verdict = f">= {PARSE_TARGET:.0f}x " + ("PASS" if ratio >= PARSE_TARGET else "MISSED")
        ours_rate, ours_best = n / med, n / best
        rows.append(
            f"{dialect:<6} {n:>6} {mb:>5.2f}  {ours_rate:>11,.0f} ({ours_best:>10,.0f})  "
            f"{other}  {ratio_txt}  {verdict}"
        )
    print(header)
    print("\n".join(rows))

    pcm = random.Random(7).randbytes(APPEND_BYTES)

    def run_append() -> None:
        rt.encode_client_event(rt.InputAudioBufferAppendEvent.from_pcm(pcm))

    frame = json.loads(rt.encode_client_event(rt.InputAudioBufferAppendEvent.from_pcm(pcm)))
    assert base64.b64decode(frame["audio"]) == pcm and frame["type"] == "input_audio_buffer.append"
    cpu_samples: list[float] = []
    if isinstance(openai_append, str):
        loops = _calibrate(run_append, min_time / 2)
        mine = [_sample(run_append, loops, cpu_samples) for _ in range(repeat)]
        med, best = statistics.median(mine), min(mine)
        theirs_line = f"  openai-python    not measured: {openai_append}"
    else:
        sent = openai_append(pcm)
        assert json.loads(sent)["audio"] == frame["audio"]
        mine, theirs = _paired(
            run_append, lambda: openai_append(pcm), repeat, min_time / 2, cpu_samples
        )
        med, best = statistics.median(mine), min(mine)
        tmed, tbest = statistics.median(theirs), min(theirs)
        ratio = statistics.median(t / o for o, t in zip(mine, theirs, strict=True))
        theirs_line = (
            f"  openai-python    {tmed * 1e6:>7.2f} µs ({tbest * 1e6:.2f})   "
            f"realtime.events is {ratio:.1f}x faster"
        )
    verdict = "PASS" if med * 1e6 <= APPEND_TARGET_US else "MISSED"
    print(f"\nencode input_audio_buffer.append, 20 ms PCM16 ({APPEND_BYTES} bytes -> text frame)")
    print(
        f"  realtime.events  {med * 1e6:>7.2f} µs ({best * 1e6:.2f})   "
        f"target <= {APPEND_TARGET_US:.0f} µs  {verdict}"
    )
    print(
        f"  realtime.events  {statistics.median(cpu_samples) * 1e6:>7.2f} µs of CPU (thread time)"
    )
    print(theirs_line)
    for note in filter(None, notes):
        print(note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
