"""``realtime transcribe``: live transcription from the microphone, or of WAV files.

With no files: a transcription-only realtime session prints partial text as it streams and each
final line (``--format text | srt | jsonl``; ``--output FILE``). ``--input WAV`` streams a WAV
in real time instead of the microphone (headless).

With files (``realtime transcribe a.wav b.wav``): the REST transcription endpoint, one file
after another with a progress bar, the text streamed as it arrives (``--format text | json |
srt | vtt | verbose_json``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any, TextIO

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from audio.files import FileMicrophone

from ..events import ServerEvent
from ..events.common import InputAudioTranscription, ServerVad
from ..events.config import SessionConfig
from ..session import connect
from ..subtitles import srt_cue
from .backend import add_backend_arguments, open_backend
from .common import CommandError, err_console

__all__ = ["LiveTranscript", "add_parser", "handle"]

LIVE_FORMATS = ("text", "srt", "jsonl")
FILE_FORMATS = ("text", "json", "srt", "vtt", "verbose_json")


def add_parser(sub: Any) -> None:
    """Register the command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "transcribe", help="transcribe the microphone live, or WAV files", description=__doc__
    )
    p.add_argument("files", nargs="*", help="WAV files (REST); none = live microphone")
    p.add_argument(
        "--format",
        default="text",
        help="live: text | srt | jsonl; files: text | json | srt | vtt | verbose_json",
    )
    p.add_argument("--output", default=None, help="write the result to this file")
    p.add_argument("--input", default=None, help="live mode: stream this WAV instead of a mic")
    p.add_argument("--language", default=None, help="language hint (e.g. en)")
    p.add_argument(
        "--transcription-model",
        default="gpt-4o-transcribe",
        help="transcription model (default gpt-4o-transcribe)",
    )
    p.add_argument("--input-device", default=None, help="microphone (index or name part)")
    add_backend_arguments(p)
    p.set_defaults(handler=handle)


class LiveTranscript:
    """Turns transcription events into printed partials and final lines in a format."""

    def __init__(self, fmt: str, out: TextIO, *, show_partials: bool) -> None:
        self.fmt = fmt
        self.out = out
        self.show_partials = show_partials
        self.partial = ""
        self.n = 0
        self.starts: dict[str, float] = {}
        self.ends: dict[str, float] = {}
        self.finals: list[str] = []
        self.changed = asyncio.Event()

    def on_event(self, event: ServerEvent) -> None:
        kind = event.type
        item = str(getattr(event, "item_id", ""))
        if kind == "input_audio_buffer.speech_started":
            self.starts[item] = float(getattr(event, "audio_start_ms", 0)) / 1000
        elif kind == "input_audio_buffer.speech_stopped":
            self.ends[item] = float(getattr(event, "audio_end_ms", 0)) / 1000
        elif kind == "conversation.item.input_audio_transcription.delta":
            self.partial += str(getattr(event, "delta", ""))
            if self.show_partials:
                err_console.print(f"[dim]… {self.partial}[/dim]", end="\r")
        elif kind == "conversation.item.input_audio_transcription.completed":
            text = str(getattr(event, "transcript", "")).strip()
            self.partial = ""
            self.n += 1
            self.finals.append(text)
            self._write(item, text)
            self.changed.set()

    def _write(self, item: str, text: str) -> None:
        start, end = self.starts.get(item, 0.0), self.ends.get(item, 0.0)
        if self.fmt == "jsonl":
            line = json.dumps({"item_id": item, "start": start, "end": end, "text": text})
            self.out.write(line + "\n")
        elif self.fmt == "srt":
            self.out.write(srt_cue(self.n, start, end, text))
        else:
            self.out.write(text + "\n")
        self.out.flush()


async def _live(args: argparse.Namespace, out: TextIO) -> int:
    config = SessionConfig(
        kind="transcription",
        transcription=InputAudioTranscription(
            model=args.transcription_model, language=args.language
        ),
        turn_detection=ServerVad(
            type="server_vad", threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500
        ),
    )
    view = LiveTranscript(args.format, out, show_partials=args.input is None)
    async with open_backend(args) as backend:
        err_console.print(backend.description)
        async with connect(
            **backend.connect_kwargs,
            api_key=backend.api_key,
            config=config,
            query={"intent": "transcription"},
        ) as session:
            session.on("*", view.on_event)
            if args.input is not None:
                source: Any = FileMicrophone(args.input, rate=24000, chunk_ms=40, realtime=True)
                async for chunk in source:
                    await session.append_audio(chunk)
                silence = bytes(1920)
                deadline = time.monotonic() + 3.0
                # trailing silence lets the VAD end the last turn, then wait for its text
                while time.monotonic() < deadline:
                    await session.append_audio(silence)
                    await asyncio.sleep(0.04)
                await _settle(view, 30.0)
                if not view.finals:
                    raise CommandError(f"no speech recognised in {args.input}")
            else:
                from audio.microphone import Microphone

                err_console.print("listening (Ctrl-C to stop)")
                async with Microphone(device=args.input_device) as mic:
                    async for chunk in mic:
                        await session.append_audio(chunk)
    return 0


async def _settle(view: LiveTranscript, timeout: float) -> None:
    """Wait until no new final line has arrived for a moment."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        view.changed.clear()
        try:
            await asyncio.wait_for(view.changed.wait(), 2.5 if view.finals else timeout)
        except asyncio.TimeoutError:
            return


async def _files(args: argparse.Namespace, out: TextIO) -> int:
    from ..rest import TranscriptTextDeltaEvent, TranscriptTextDoneEvent

    missing = [f for f in args.files if not Path(f).exists()]
    if missing:
        raise CommandError(f"no such file: {missing[0]}")
    if args.format not in FILE_FORMATS:
        raise CommandError(f"--format for files is one of {', '.join(FILE_FORMATS)}")
    async with open_backend(args) as backend:
        err_console.print(backend.description)
        async with backend.rest_client(args.transcription_model) as client:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=err_console,
                transient=True,
            ) as progress:
                task = progress.add_task("transcribing", total=len(args.files))
                for path in args.files:
                    progress.update(task, description=f"transcribing {Path(path).name}")
                    if args.format == "text":
                        stream = client.transcribe_stream(
                            path, model=args.transcription_model, language=args.language
                        )
                        text = ""  # the deltas, unless a done event gives the whole text
                        async with stream:
                            async for event in stream:
                                if isinstance(event, TranscriptTextDeltaEvent):
                                    progress.console.print(event.delta, end="")
                                    text += event.delta
                                elif isinstance(event, TranscriptTextDoneEvent):
                                    progress.console.print()
                                    text = event.text
                        out.write(text.strip() + "\n")
                    else:
                        result = await client.transcribe(
                            path,
                            model=args.transcription_model,
                            language=args.language,
                            response_format=args.format,
                        )
                        if isinstance(result, str):
                            out.write(result if result.endswith("\n") else result + "\n")
                        else:
                            out.write(result.model_dump_json(exclude_none=True) + "\n")
                    out.flush()
                    progress.advance(task)
    return 0


async def handle(args: argparse.Namespace) -> int:
    """Transcribe live or from files."""
    if not args.files and args.format not in LIVE_FORMATS:
        raise CommandError(f"--format for live transcription is one of {', '.join(LIVE_FORMATS)}")
    if args.input is not None and not Path(args.input).exists():
        raise CommandError(f"no such input WAV: {args.input}")
    import sys

    out: TextIO = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    try:
        return await (_files(args, out) if args.files else _live(args, out))
    finally:
        if args.output:
            out.close()
