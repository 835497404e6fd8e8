"""Transcribe audio files through the REST endpoint, as plain text or timed subtitles.

    python examples/file_transcription.py share/samples/greeting.wav share/samples/question.wav
    python examples/file_transcription.py share/samples/long.wav --format srt

``text`` streams the words as they are recognised; ``json``, ``verbose_json`` (segments with
times), ``srt`` and ``vtt`` print the finished result. Without ``OPENAI_API_KEY`` or ``--url``
it starts the offline local server in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from realtime.rest import AsyncAudioClient, TranscriptTextDeltaEvent
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
    async with rest_base(args.url) as base, AsyncAudioClient(base_url=base) as client:
        for path in args.files:
            print(f"== {path}")
            if args.format == "text":  # stream the words as they arrive
                async with client.transcribe_stream(path, model=args.model) as stream:
                    async for event in stream:
                        if isinstance(event, TranscriptTextDeltaEvent):
                            print(event.delta, end="", flush=True)
                print()
            elif args.format == "verbose_json":
                result = await client.transcribe(
                    path, model="whisper-1", response_format="verbose_json"
                )
                for seg in result.segments or []:
                    print(f"[{seg.start:6.2f} - {seg.end:6.2f}] {seg.text.strip()}")
            else:
                print(await client.transcribe(path, model=args.model, response_format=args.format))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="audio files (WAV)")
    parser.add_argument(
        "--format", default="text", choices=["text", "json", "verbose_json", "srt", "vtt"]
    )
    parser.add_argument("--model", default="gpt-4o-mini-transcribe")
    parser.add_argument("--url", help="REST base URL, e.g. http://127.0.0.1:8765/v1")
    asyncio.run(main(parser.parse_args()))
