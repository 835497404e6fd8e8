"""``realtime interpret --to fr``: live speech-to-speech interpretation (a translation session).

The microphone goes in; the translated speech comes out of the speaker, and both transcripts
(source and translation) are shown live on stderr. ``--input WAV --output WAV`` runs headless:
the WAV is streamed in real time and the translated speech written to the output WAV.

What is written to stdout (or ``--transcript FILE``) at the end: ``--format text`` the two
transcripts, ``srt`` bilingual subtitles (source line, then translation), ``jsonl`` every
transcript delta as it arrives.

On the local server the translator is chosen with ``--translator`` (``auto``: Apertium when it
is installed; ``openai-compatible:URL``: a chat endpoint).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from audio.files import FileMicrophone, FileSpeaker

from ..events import ServerEvent
from ..subtitles import srt
from ..translation import DEFAULT_TRANSLATION_MODEL, TranslationClient, connect_translation
from .backend import add_backend_arguments, open_backend
from .common import CommandError, err_console

__all__ = ["LiveView", "add_parser", "handle"]

FORMATS = ("text", "srt", "jsonl")


def add_parser(sub: Any) -> None:
    """Register the command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "interpret",
        help="translate speech live (microphone in, translated speech out)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--to", required=True, metavar="LANG", help="target language (e.g. fr, es)")
    p.add_argument("--input", default=None, help="stream this WAV instead of the microphone")
    p.add_argument("--output", default=None, help="with --input: write translated speech here")
    p.add_argument("--format", default="text", choices=FORMATS, help="text | srt | jsonl")
    p.add_argument("--transcript", default=None, help="write the --format output to this file")
    p.add_argument(
        "--transcription-model",
        default="gpt-realtime-whisper",
        help="source transcript model ('none' turns the source transcript off)",
    )
    p.add_argument(
        "--translator",
        default=None,
        help="local server only: auto | apertium | openai-compatible:URL[#model=NAME]",
    )
    p.add_argument("--record", default=None, help="record every event to this JSONL file")
    p.add_argument("--input-device", default=None, help="microphone (index or name part)")
    p.add_argument("--output-device", default=None, help="speaker (index or name part)")
    add_backend_arguments(p)
    p.set_defaults(handler=handle)


class LiveView:
    """Prints both transcripts as they stream: a labelled line per side, deltas appended."""

    def __init__(self, source: str, target: str, out: TextIO, *, jsonl: TextIO | None) -> None:
        self.labels = {
            "session.input_transcript.delta": source,
            "session.output_transcript.delta": target,
        }
        self.out = out
        self.jsonl = jsonl
        self.side: str | None = None

    def on_event(self, event: ServerEvent) -> None:
        label = self.labels.get(event.type)
        if label is None:
            return
        delta = str(getattr(event, "delta", ""))
        if self.side != event.type:
            self.out.write(("\n" if self.side else "") + f"[{label}] " + delta.lstrip())
            self.side = event.type
        else:
            self.out.write(delta)
        self.out.flush()
        if self.jsonl is not None:
            side = "source" if event.type.startswith("session.input") else "translation"
            line = {"side": side, "delta": delta, "elapsed_ms": getattr(event, "elapsed_ms", None)}
            self.jsonl.write(json.dumps(line, ensure_ascii=False) + "\n")
            self.jsonl.flush()

    def end(self) -> None:
        if self.side is not None:
            self.out.write("\n")
            self.out.flush()


def _result(tr: TranslationClient, fmt: str, out: TextIO) -> None:
    if fmt == "srt":
        out.write(srt((c.start, c.end, c.text) for c in tr.transcript.cues()))
    elif fmt == "text":
        if tr.input_transcript:
            out.write(tr.input_transcript.strip() + "\n")
        out.write(tr.output_transcript.strip() + "\n")
    out.flush()


async def _run(args: argparse.Namespace, out: TextIO) -> int:
    headless = args.input is not None
    transcription = None if args.transcription_model == "none" else args.transcription_model
    async with contextlib.AsyncExitStack() as stack:
        if headless:
            source: Any = FileMicrophone(args.input, rate=24000, chunk_ms=200, realtime=False)
            speaker: Any = (
                FileSpeaker(args.output, rate=24000, clock="instant") if args.output else None
            )
        else:
            from audio.microphone import Microphone
            from audio.speaker import Speaker

            source = await stack.enter_async_context(Microphone(device=args.input_device))
            speaker = await stack.enter_async_context(Speaker(device=args.output_device))
        if speaker is not None:
            stack.callback(speaker.close)
        backend = await stack.enter_async_context(open_backend(args))
        err_console.print(backend.description.replace(" dialect", " dialect, translation"))
        options = {k: v for k, v in backend.connect_kwargs.items() if k not in ("dialect", "model")}
        recorder = None
        if args.record:
            from ..recording import Recorder

            recorder = stack.enter_context(Recorder(args.record))
        tr = await connect_translation(
            args.model or DEFAULT_TRANSLATION_MODEL,
            language=args.to,
            transcription_model=transcription,
            api_key=backend.api_key,
            speaker=speaker,
            recorder=recorder,
            **options,
        )
        view = LiveView(
            "source", args.to, sys.stderr, jsonl=out if args.format == "jsonl" else None
        )
        tr.on("session.*_transcript.delta", view.on_event)
        try:
            if not headless:
                err_console.print(f"interpreting into {args.to!r} (Ctrl-C to stop)")
            async for chunk in source:
                await tr.send_audio(chunk)
            await tr.close(timeout=120)  # flushes the rest and waits for the last translation
        finally:
            view.end()
            if tr.is_open:
                await tr.close(timeout=10, wait_audio=False)
            _result(tr, args.format, out)
        if headless and not tr.output_transcript:
            raise CommandError(f"nothing was translated from {args.input}")
        if headless and args.output:
            err_console.print(f"translated speech written to {args.output}")
    return 0


async def handle(args: argparse.Namespace) -> int:
    """Interpret live, or a WAV headless."""
    if args.input is not None and not Path(args.input).exists():
        raise CommandError(f"no such input WAV: {args.input}")
    if args.output is not None and args.input is None:
        raise CommandError("--output needs --input (headless mode)")
    out: TextIO = open(args.transcript, "w", encoding="utf-8") if args.transcript else sys.stdout  # noqa: SIM115
    try:
        return await _run(args, out)
    finally:
        if args.transcript:
            out.close()
