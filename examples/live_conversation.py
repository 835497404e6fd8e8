"""A live voice conversation: microphone -> realtime session -> speaker.

Server VAD takes the turns; when you talk over the assistant, its reply stops and the
conversation item is truncated at what you actually heard (the speaker is the session's
playback tracker). The echo gate keeps the speaker out of the microphone unless you pass
``--headphones``.

    python examples/live_conversation.py                      # microphone and speaker
    python examples/live_conversation.py --input share/samples/question.wav --output reply.wav

With ``--input``/``--output`` it runs headless: the WAV is your speech, the reply is written
to the output WAV and the program ends after the reply. Without ``OPENAI_API_KEY`` or
``--url`` it starts the offline local server in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import realtime
from audio import EchoGate, FileMicrophone, FileSpeaker, Microphone, Speaker
from realtime.events.common import InputAudioTranscription, ServerVad
from realtime.server import LocalServer


@asynccontextmanager
async def server_url(url: str | None) -> AsyncIterator[str | None]:
    """The URL to use: --url, else OpenAI (None) when a key is set, else a local server."""
    if url or os.environ.get("OPENAI_API_KEY"):
        yield url
        return
    async with LocalServer(port=0) as server:
        print(f"(no OPENAI_API_KEY: using the local server at {server.url})")
        yield server.url


async def main(args: argparse.Namespace) -> None:
    config = realtime.SessionConfig(
        instructions="You are a friendly voice assistant. Keep answers short.",
        output_modalities=["audio"],
        transcription=InputAudioTranscription(model="whisper-1"),
        turn_detection=ServerVad(type="server_vad", silence_duration_ms=500),
    )
    replied = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        if args.input:  # headless: one WAV is the microphone, another the speaker
            source: Any = FileMicrophone(args.input, trailing_silence_ms=1500)
            speaker: Any = await stack.enter_async_context(FileSpeaker(args.output))
        else:
            mic = await stack.enter_async_context(Microphone())
            speaker = await stack.enter_async_context(Speaker())
            source = mic if args.headphones else EchoGate(mic, speaker)
        url = await stack.enter_async_context(server_url(args.url))
        session = await stack.enter_async_context(
            realtime.connect(url=url, config=config, tracker=speaker)
        )

        def on_audio(event: Any) -> None:
            speaker.enqueue(event.audio_bytes(), event.item_id, event.content_index)

        def on_user(event: Any) -> None:
            print(f"you: {event.transcript.strip()}")

        def on_reply(event: Any) -> None:
            print(f"assistant: {event.transcript}")

        session.on("response.output_audio.delta", on_audio)
        session.on("conversation.item.input_audio_transcription.completed", on_user)
        session.on("response.output_audio_transcript.done", on_reply)
        session.on("response.done", lambda event: replied.set())

        print(f"playing {args.input}" if args.input else "speak now (Ctrl-C to quit)")
        async for chunk in source:
            await session.append_audio(chunk)
        if args.input:
            await asyncio.wait_for(replied.wait(), 120)
            await speaker.aclose()  # wait until the reply is "heard", then finish the WAV
            print(f"reply written to {args.output}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="realtime server URL (default: OpenAI or a local server)")
    parser.add_argument("--input", help="a WAV file to use as the microphone (headless)")
    parser.add_argument("--output", default="reply.wav", help="with --input: the reply WAV")
    parser.add_argument("--headphones", action="store_true", help="turn the echo gate off")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args()))
