"""Streamed text-to-speech: audio plays while the rest is still being synthesized.

    python examples/tts_stream.py "Hello! This sentence is spoken as it streams in."
    python examples/tts_stream.py "Hello there." --output hello.wav      # no sound card needed

The REST speech endpoint returns PCM16 24 kHz in chunks; :func:`realtime.rest.play` queues
each chunk on a sink as it arrives and reports the time to the first byte and first sample.
The sink is the speaker, or a :class:`audio.FileSpeaker` writing a WAV (headless). Without
``OPENAI_API_KEY`` or ``--url`` it starts the offline local server in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from audio import FileSpeaker, Speaker
from realtime.rest import AsyncAudioClient, play
from realtime.server import LocalServer


@asynccontextmanager
async def rest_base(url: str | None) -> AsyncIterator[str | None]:
    """The REST base URL: --url, else OpenAI (None) when a key is set, else a local server."""
    if url or os.environ.get("OPENAI_API_KEY"):
        yield url
        return
    async with LocalServer(port=0) as server:
        print(f"(no OPENAI_API_KEY: using the local server at {server.http_url})")
        yield server.http_url


async def main(args: argparse.Namespace) -> None:
    sink: Any = FileSpeaker(args.output) if args.output else Speaker()
    async with rest_base(args.url) as base, AsyncAudioClient(base_url=base) as client, sink:
        stream = client.speak(args.text, voice=args.voice, response_format="pcm")
        async with stream:
            report = await play(stream, sink)  # returns once everything was played
    if report.first_byte_s is not None:
        print(f"first audio byte after {report.first_byte_s * 1000:.0f} ms")
    where = f"written to {args.output}" if args.output else "played"
    print(f"{report.audio_ms / 1000:.1f} s of speech {where}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text", nargs="?", default="Hello! This sentence is spoken as it streams.")
    parser.add_argument("--voice", default="alloy")
    parser.add_argument("--output", help="write a WAV file instead of playing (headless)")
    parser.add_argument("--url", help="REST base URL, e.g. http://127.0.0.1:8765/v1")
    asyncio.run(main(parser.parse_args()))
