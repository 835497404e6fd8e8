"""Streamed speech: time to first audio byte and to first played sample.

``realtime.rest`` (``play(client.speak(...), speaker)``: audio is queued on the speaker as
chunks arrive) against two ways of using openai-python, measured in the same run in rotating
order on the same local server:

* read-the-whole-body-first, which is what its ``LocalAudioPlayer.play`` does
  (``client.audio.speech.create(...)`` returns once the body is complete, then the bytes
  become a float32 array and playback starts);
* its own streaming path, ``client.audio.speech.with_streaming_response.create(...)`` with
  ``iter_bytes()``, each chunk queued on the speaker as it arrives (odd bytes carried), which
  is what a careful openai-python user writes.

The server (Starlette + uvicorn on 127.0.0.1, port 0) answers ``POST /v1/audio/speech``
with ``--seconds`` of PCM16 24 kHz in 100 ms chunks, paced at ``--pace`` times real
time after a ``--first-chunk-ms`` synthesis delay, like a TTS engine that streams. The
sink is ``audio.files.NullSpeaker`` (real-time clock, no device).

    python benchmarks/bench_rest.py            # 5 repetitions of 3 s at real-time pace
    python benchmarks/bench_rest.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import numpy as np
import uvicorn
from openai import AsyncOpenAI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from audio.files import NullSpeaker
from realtime.rest import AsyncAudioClient, play

__all__ = ["main"]

RATE = 24000
CHUNK_MS = 100
KEY = "sk-bench"
TEXT = "The quick brown fox jumps over the lazy dog, then naps in the afternoon sun."


def make_app(seconds: float, pace: float, first_chunk_ms: float) -> Starlette:
    """The paced speech server."""
    t = np.arange(int(seconds * RATE)) / RATE
    pcm = (8000 * np.sin(2 * np.pi * 220 * t)).astype("<i2").tobytes()
    step = RATE * 2 * CHUNK_MS // 1000
    pieces = [pcm[i : i + step] for i in range(0, len(pcm), step)]

    async def speech(request: Request) -> Response:
        await request.body()

        async def gen() -> AsyncIterator[bytes]:
            await asyncio.sleep(first_chunk_ms / 1000)
            start = time.monotonic()
            for i, piece in enumerate(pieces):
                due = start + i * CHUNK_MS / 1000 / pace
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                yield piece

        return StreamingResponse(gen(), media_type="application/octet-stream")

    return Starlette(routes=[Route("/v1/audio/speech", speech, methods=["POST"])])


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Run ``app`` on 127.0.0.1:0 in a thread; yield its /v1 base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(10)


async def ours(client: AsyncAudioClient) -> tuple[float, float, float]:
    """realtime.rest: (first byte, first queued sample, total) in seconds."""
    speaker = NullSpeaker(clock="realtime")
    start = time.monotonic()
    report = await play(client.speak(TEXT), speaker, wait=False)
    total = time.monotonic() - start
    speaker.close()
    assert report.first_byte_s is not None and report.first_sample_s is not None
    return report.first_byte_s, report.first_sample_s, total


async def peer(client: AsyncOpenAI) -> tuple[float, float, float]:
    """openai-python, body first (LocalAudioPlayer.play): (body complete, first sample, total)."""
    speaker = NullSpeaker(clock="realtime")
    start = time.monotonic()
    response = await client.audio.speech.create(
        model="gpt-4o-mini-tts", voice="alloy", input=TEXT, response_format="pcm"
    )
    # LocalAudioPlayer._tts_response_to_buffer: join 1 KiB chunks, int16 -> float32
    chunks = [c for c in response.iter_bytes(chunk_size=1024) if c]
    body_done = time.monotonic() - start
    audio = np.frombuffer(b"".join(chunks), dtype=np.int16).astype(np.float32) / 32767.0
    speaker.enqueue((audio * 32767.0).astype("<i2").tobytes(), "speech")
    first_sample = time.monotonic() - start
    speaker.close()
    return body_done, first_sample, time.monotonic() - start


async def peer_streaming(client: AsyncOpenAI) -> tuple[float, float, float]:
    """openai-python ``with_streaming_response``: (first byte, first sample queued, total)."""
    speaker = NullSpeaker(clock="realtime")
    start = time.monotonic()
    first_byte = first_sample = None
    odd = b""
    async with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="alloy", input=TEXT, response_format="pcm"
    ) as response:
        async for chunk in response.iter_bytes():
            if not chunk:
                continue
            if first_byte is None:
                first_byte = time.monotonic() - start
            data = odd + chunk
            odd = data[len(data) // 2 * 2 :]
            whole = data[: len(data) - len(odd)]
            if whole:
                speaker.enqueue(whole, "speech")
                if first_sample is None:
                    first_sample = time.monotonic() - start
    total = time.monotonic() - start
    speaker.close()
    assert first_byte is not None and first_sample is not None
    return first_byte, first_sample, total


def fmt(values: list[float]) -> str:
    """Median in ms with the best in brackets."""
    return f"{statistics.median(values) * 1000:8.1f} ms [{min(values) * 1000:7.1f}]"


async def run(base_url: str, repeat: int) -> None:
    """Rotate the three clients ``repeat`` times and print the figures."""
    mine: list[tuple[float, float, float]] = []
    theirs: list[tuple[float, float, float]] = []
    streamed: list[tuple[float, float, float]] = []
    async with AsyncAudioClient(KEY, base_url) as client:
        oa = AsyncOpenAI(api_key=KEY, base_url=base_url, max_retries=0)
        await ours(client)  # warm-up: connections, imports
        await peer(oa)
        await peer_streaming(oa)
        runs = [
            (lambda: ours(client), mine),
            (lambda: peer(oa), theirs),
            (lambda: peer_streaming(oa), streamed),
        ]
        for i in range(repeat):
            for k in range(3):
                measure, into = runs[(i + k) % 3]
                into.append(await measure())
        await oa.close()
    print(f"{'':52s}{'median':>11s}   [best]")
    print(f"{'realtime.rest  first audio byte':52s}{fmt([m[0] for m in mine])}")
    print(f"{'realtime.rest  first sample queued':52s}{fmt([m[1] for m in mine])}")
    print(f"{'realtime.rest  whole body':52s}{fmt([m[2] for m in mine])}")
    print(
        f"{'openai-python  body complete (= first byte usable)':52s}{fmt([t[0] for t in theirs])}"
    )
    print(f"{'openai-python  first sample queued':52s}{fmt([t[1] for t in theirs])}")
    print(f"{'openai-python streaming  first audio byte':52s}{fmt([s[0] for s in streamed])}")
    print(f"{'openai-python streaming  first sample queued':52s}{fmt([s[1] for s in streamed])}")
    print(f"{'openai-python streaming  whole body':52s}{fmt([s[2] for s in streamed])}")
    first = statistics.median(m[1] for m in mine)
    ratio = statistics.median(t[1] for t in theirs) / first
    ratio_byte = statistics.median(t[0] for t in theirs) / statistics.median(m[0] for m in mine)
    ratio_stream = statistics.median(s[1] for s in streamed) / first
    print(
        f"\nfirst played sample: realtime.rest is {ratio:.1f}x sooner than body-first "
        f"(openai-python LocalAudioPlayer.play)"
    )
    print(f"first usable audio byte: {ratio_byte:.1f}x sooner")
    print(
        f"against openai-python's own streaming (with_streaming_response): first sample "
        f"{ratio_stream:.2f}x (>1: realtime.rest sooner)"
    )


def main() -> None:
    """Parse arguments, start the server, run the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="audio length (s)")
    parser.add_argument("--pace", type=float, default=1.0, help="x real time the server sends")
    parser.add_argument(
        "--first-chunk-ms",
        type=float,
        default=100.0,
        help="server delay before the first chunk (synthesis latency)",
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 s of audio, 4x pace, 2 repeats")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.pace, args.repeat = 1.0, 4.0, 2
    print(
        f"speech: {args.seconds:g} s PCM16 24 kHz in {CHUNK_MS} ms chunks at {args.pace:g}x "
        f"real time, first chunk after {args.first_chunk_ms:g} ms; {args.repeat} repetitions"
    )
    with serve(make_app(args.seconds, args.pace, args.first_chunk_ms)) as url:
        asyncio.run(run(url, args.repeat))


if __name__ == "__main__":
    main()
