"""Live transcription: stream the microphone to a transcription-only session, print each line.

    python examples/mic_transcription.py                          # the microphone
    python examples/mic_transcription.py --input share/samples/long.wav

Partial text streams as ``...`` lines on stderr; each final line goes to stdout. With
``--input`` a WAV file plays the microphone's part (in real time) and the program ends when
its last words are transcribed. Without ``OPENAI_API_KEY`` or ``--url`` it starts the offline
local server in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import realtime
from audio import FileMicrophone, Microphone
from realtime.events.common import InputAudioTranscription, ServerVad
from realtime.server import LocalServer


@asynccontextmanager
async def server_url(url: str | None) -> AsyncIterator[str | None]:
    """The URL to use: --url, else OpenAI (None) when a key is set, else a local server."""
    if url or os.environ.get("OPENAI_API_KEY"):
        yield url
        return
    async with LocalServer(port=0) as server:
        print(f"(no OPENAI_API_KEY: using the local server at {server.url})", file=sys.stderr)
        yield server.url


async def main(args: argparse.Namespace) -> None:
    config = realtime.SessionConfig(
        kind="transcription",
        transcription=InputAudioTranscription(model="gpt-4o-transcribe", language="en"),
        turn_detection=ServerVad(type="server_vad", silence_duration_ms=500),
    )
    pending: set[str] = set()  # turns heard but not yet transcribed
    finished = asyncio.Event()

    def on_stopped(event: Any) -> None:
        pending.add(event.item_id)

    def on_partial(event: Any) -> None:
        print(f"... {event.delta}", file=sys.stderr)

    def on_final(event: Any) -> None:
        print(event.transcript.strip(), flush=True)
        pending.discard(event.item_id)
        if not pending:
            finished.set()

    async with contextlib.AsyncExitStack() as stack:
        if args.input:
            source: Any = FileMicrophone(args.input, trailing_silence_ms=1500)
        else:
            source = await stack.enter_async_context(Microphone())
        url = await stack.enter_async_context(server_url(args.url))
        session = await stack.enter_async_context(
            realtime.connect(url=url, config=config, query={"intent": "transcription"})
        )
        session.on("input_audio_buffer.speech_stopped", on_stopped)
        session.on("conversation.item.input_audio_transcription.delta", on_partial)
        session.on("conversation.item.input_audio_transcription.completed", on_final)
        print("listening (Ctrl-C to stop)" if not args.input else f"playing {args.input}",
              file=sys.stderr)  # fmt: skip
        async for chunk in source:
            await session.append_audio(chunk)
        if pending or not finished.is_set():
            await asyncio.wait_for(finished.wait(), 120)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="realtime server URL (default: OpenAI or a local server)")
    parser.add_argument("--input", help="a WAV file to use as the microphone (headless)")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args()))
