"""Benchmark translation sessions on the local server: end of a spoken phrase -> first translated
audio, against a conversation turn on the same server in the same run.

Run from the repository root: ``python benchmarks/bench_translation.py`` (about 40 s;
``--runs N``, default 3, after one warm-up run of each). The server is a ``LocalServer`` in
this process (engines warmed; translator: Apertium, English to Spanish), so client and server
share the CPU: the figures are for both together. The load average is printed.

a. Translation: ``realtime.translation.connect_translation`` (language ``es``, source
   transcript on) streams 0.5 s of silence, ``share/samples/question.wav`` (2.5 s) and
   silence, paced by the client's ``FramePacer`` (200 ms frames in real time). The end of
   the phrase is the moment the frame holding the end of the speech (the file minus its
   200 ms tail of silence) was sent; from there: source transcript delta, translated
   transcript delta, first ``session.output_audio.delta``.
b. Peer: a conversation session (GA, server VAD with the same 400 ms of silence, echo
   responder, audio out) gets the same audio in 20 ms appends in real time; from the end of
   the speech: ``speech_stopped``, transcript completed, first ``response.output_audio.delta``.

Medians of the runs; the ratio is translation / conversation for the first-audio figure.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audio.wav import read_wav  # noqa: E402
from realtime.server.local import LocalServer  # noqa: E402
from realtime.translation import FramePacer, PacedFrame, connect_translation  # noqa: E402

BYTES_PER_MS = 48
TAIL_MS = 200  # question.wav ends with about this much silence
LEAD_MS = 500


class TimedPacer(FramePacer):
    """A FramePacer remembering when each frame was handed out (perf_counter)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent_at: list[float] = []

    def poll(self, now: float) -> list[PacedFrame]:
        frames = super().poll(now)
        t = time.perf_counter()
        self.sent_at.extend(t for _ in frames)
        return frames


async def translation_run(url: str, question: bytes) -> dict[str, float]:
    pacer = TimedPacer()
    first: dict[str, float] = {}
    async with connect_translation(
        url=url, language="es", transcription_model="whisper", pacer=pacer
    ) as tr:

        def seen(event: Any) -> None:
            first.setdefault(event.type, time.perf_counter())

        tr.on("session.*", seen)
        start_frames = pacer.frames
        await tr.send_audio(bytes(LEAD_MS * BYTES_PER_MS) + question + bytes(1500 * BYTES_PER_MS))
        await tr.wait_for("session.output_audio.delta", timeout=60)
        end_ms = LEAD_MS + len(question) // BYTES_PER_MS - TAIL_MS
        k = start_frames + end_ms // 200
        while len(pacer.sent_at) <= k:
            await asyncio.sleep(0.05)
        t0 = pacer.sent_at[k]
    if "mesa" not in tr.output_transcript and "París" not in tr.output_transcript:
        print(f"  note: translation {tr.output_transcript!r}", file=sys.stderr)
    return {
        "source transcript": first["session.input_transcript.delta"] - t0,
        "translated transcript": first["session.output_transcript.delta"] - t0,
        "first audio": first["session.output_audio.delta"] - t0,
    }


async def conversation_run(url: str, question: bytes) -> dict[str, float]:
    from websockets.asyncio.client import connect

    first: dict[str, float] = {}
    async with connect(f"{url}/realtime?model=gpt-realtime", max_size=None) as ws:

        async def receive() -> None:
            async for frame in ws:
                first.setdefault(json.loads(frame)["type"], time.perf_counter())

        task = asyncio.create_task(receive())
        td = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300}
        td |= {"silence_duration_ms": 400, "create_response": True}
        session = {
            "type": "realtime",
            "output_modalities": ["audio"],
            "audio": {"input": {"turn_detection": td, "transcription": {"model": "whisper-1"}}},
        }
        await ws.send(json.dumps({"type": "session.update", "session": session}))
        audio = bytes(LEAD_MS * BYTES_PER_MS) + question + bytes(1500 * BYTES_PER_MS)
        chunk = 20 * BYTES_PER_MS
        end = (LEAD_MS + len(question) // BYTES_PER_MS - TAIL_MS) * BYTES_PER_MS
        start = time.perf_counter()
        t0 = 0.0
        for i in range(0, len(audio), chunk):
            delay = start + i / BYTES_PER_MS / 1000 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            b64 = base64.b64encode(audio[i : i + chunk]).decode()
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": b64}))
            if i <= end < i + chunk:
                t0 = time.perf_counter()
        for _ in range(600):
            if "response.output_audio.delta" in first:
                break
            await asyncio.sleep(0.05)
        task.cancel()
    kind = "conversation.item.input_audio_transcription.completed"
    return {
        "speech_stopped": first["input_audio_buffer.speech_stopped"] - t0,
        "transcript": first[kind] - t0,
        "first audio": first["response.output_audio.delta"] - t0,
    }


def med(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    question = bytes(read_wav(ROOT / "share" / "samples" / "question.wav", rate=24000))
    load = os.getloadavg()[0]
    print(f"load average at start: {load:.1f} (2-CPU machine shared with other jobs)")
    async with LocalServer(warm=True, translator="apertium") as server:
        print(f"translator: {server.state.translator!r}")
        await translation_run(server.url, question)  # warm-up (espeak-ng, apertium)
        await conversation_run(server.url, question)
        tr_rows, conv_rows = [], []
        for _ in range(args.runs):
            tr_rows.append(await translation_run(server.url, question))
            conv_rows.append(await conversation_run(server.url, question))
    print(f"\nend of spoken phrase -> ... (median of {args.runs} runs, ms)")
    print("  translation session (200 ms frames, VAD 400 ms, STT, Apertium, espeak-ng):")
    for key in tr_rows[0]:
        runs = ", ".join(f"{r[key] * 1000:.0f}" for r in tr_rows)
        print(f"    {key:<24} {med(tr_rows, key) * 1000:6.0f}   [{runs}]")
    print("  peer: conversation turn (20 ms appends, VAD 400 ms, STT, echo reply, Piper):")
    for key in conv_rows[0]:
        runs = ", ".join(f"{r[key] * 1000:.0f}" for r in conv_rows)
        print(f"    {key:<24} {med(conv_rows, key) * 1000:6.0f}   [{runs}]")
    ratio = med(tr_rows, "first audio") / med(conv_rows, "first audio")
    print(f"  first translated audio / first reply audio: {ratio:.2f}x")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
