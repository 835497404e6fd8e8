"""``realtime transcribe``: live transcription from the microphone, or of WAV files.

With no files: a transcription-only realtime session prints partial text as it streams and each
final line (``--format text | srt | jsonl``; ``--output FILE``). ``--input WAV`` streams a WAV
in real time instead of the microphone (headless).

With files (``realtime transcribe a.wav b.wav``): the REST transcription endpoint, one file
after another with a progress bar on a terminal, each file's text printed once to standard
output (``--format text | json | srt | vtt | verbose_json``); a file without speech is
reported on stderr ("no speech in FILE"), and when no file had any the exit status is 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
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
from .common import CommandError, err_console, out_console

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
    # partial text is a terminal nicety: never in a log or pipe (``2>&1`` shows lines once)
    partials = args.input is None and err_console.is_terminal
    view = LiveTranscript(args.format, out, show_partials=partials)
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


async def _files(args: argparse.Namespace, out: TextIO | None) -> int:
    """REST transcription of each file; ``out`` None means standard output.

    The text goes to standard output only (streamed as it arrives when that is a terminal),
    never also to stderr, so ``2>&1`` shows it once. The progress bar is drawn only on a
    terminal and disappears at the end; lines written meanwhile print above it.
    """
    from ..rest import TranscriptTextDeltaEvent, TranscriptTextDoneEvent

    missing = [f for f in args.files if not Path(f).exists()]
    if missing:
        raise CommandError(f"no such file: {missing[0]}")
    if args.format not in FILE_FORMATS:
        raise CommandError(f"--format for files is one of {', '.join(FILE_FORMATS)}")
    empty: list[str] = []
    async with open_backend(args) as backend:
        err_console.print(backend.description)
        async with backend.rest_client(args.transcription_model) as client:
            with _ProgressBar(len(args.files)) as progress:
                for path in args.files:
                    progress.describe(f"transcribing {Path(path).name}")
                    if args.format == "text":
                        stream = client.transcribe_stream(
                            path, model=args.transcription_model, language=args.language
                        )
                        text = ""  # the deltas, unless a done event gives the whole text
                        async with stream:
                            async for event in stream:
                                if isinstance(event, TranscriptTextDeltaEvent):
                                    text += event.delta
                                elif isinstance(event, TranscriptTextDoneEvent):
                                    text = event.text
                        if not text.strip():
                            empty.append(path)
                            progress.note(f"no speech in {path}")
                        else:
                            progress.emit(text.strip() + "\n", out)
                    else:
                        result = await client.transcribe(
                            path,
                            model=args.transcription_model,
                            language=args.language,
                            response_format=args.format,
                        )
                        if isinstance(result, str):
                            words = result
                            line = result if result.endswith("\n") else result + "\n"
                        else:
                            words = str(getattr(result, "text", "") or "")
                            line = result.model_dump_json(exclude_none=True) + "\n"
                        if not _has_speech(words, args.format):
                            empty.append(path)
                            progress.note(f"no speech in {path}")
                        progress.emit(line, out)
                    progress.advance()
    if empty and len(empty) == len(args.files):
        raise CommandError(
            "no speech recognised" + (f" in {empty[0]}" if len(empty) == 1 else " in any file")
        )
    return 0


def _has_speech(result: str, fmt: str) -> bool:
    """Whether a subtitle or text result holds any words."""
    if fmt in ("srt", "vtt"):
        lines = [
            line
            for line in result.splitlines()
            if line.strip()
            and "-->" not in line
            and not line.strip().isdigit()
            and line.strip() != "WEBVTT"
        ]
        return bool(lines)
    return bool(result.strip())


class _ProgressBar:
    """A transient progress bar on a terminal stderr; output lines print above it."""

    def __init__(self, total: int) -> None:
        self._bar: Progress | None = None
        self._task: Any = None
        if err_console.is_terminal:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=err_console,
                transient=True,
                # stdout on the same terminal: its lines are printed above the bar
                redirect_stdout=out_console.is_terminal,
                redirect_stderr=False,
            )
            self._task = self._bar.add_task("transcribing", total=total)

    def __enter__(self) -> _ProgressBar:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def describe(self, text: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=text)

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    def note(self, text: str) -> None:
        err_console.print(f"[yellow]{text}[/yellow]")

    def emit(self, text: str, out: TextIO | None) -> None:
        """Write a result: to the file, or to stdout above the bar."""
        stream = out if out is not None else sys.stdout  # looked up now: maybe redirected
        stream.write(text)
        stream.flush()


async def handle(args: argparse.Namespace) -> int:
    """Transcribe live or from files."""
    if not args.files and args.format not in LIVE_FORMATS:
        raise CommandError(f"--format for live transcription is one of {', '.join(LIVE_FORMATS)}")
    if args.input is not None and not Path(args.input).exists():
        raise CommandError(f"no such input WAV: {args.input}")
    if args.files and args.input is not None:
        raise CommandError("--input is for live transcription; files are given without it")
    if args.files and args.input_device is not None:
        raise CommandError("--input-device is for live transcription, not for files")
    out: TextIO | None = open(args.output, "w", encoding="utf-8") if args.output else None  # noqa: SIM115
    try:
        if args.files:
            return await _files(args, out)
        return await _live(args, out if out is not None else sys.stdout)
    except Exception:
        if out is not None:
            out.close()
            if Path(args.output).stat().st_size == 0:
                Path(args.output).unlink()  # no empty file after a failure
        raise
    finally:
        if out is not None:
            out.close()
