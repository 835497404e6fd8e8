"""``realtime speak "text"``: streamed text-to-speech, played as it arrives or written to a file.

``-`` reads the text from standard input. Text longer than one request allows (4,096
characters) is split at sentence ends and spoken piece after piece. ``--output FILE`` writes
instead of playing, in the format its extension names: ``.wav`` (PCM16 24 kHz in a WAV),
``.pcm``/``.raw`` (bare PCM16 24 kHz), or ``.mp3``/``.opus``/``.aac``/``.flac`` (encoded by
the server; the local server has no encoder and says so).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from audio.wav import WavWriter

from .backend import add_backend_arguments, open_backend
from .common import CommandError, err_console

__all__ = ["OUTPUT_FORMATS", "add_parser", "handle"]

OUTPUT_FORMATS = {
    ".wav": "pcm",
    ".pcm": "pcm",
    ".raw": "pcm",
    ".mp3": "mp3",
    ".opus": "opus",
    ".aac": "aac",
    ".flac": "flac",
}
"""Output file extension -> the response_format requested."""

_CONCATENABLE = frozenset({"pcm", "mp3", "aac"})  # formats whose pieces may be joined


def add_parser(sub: Any) -> None:
    """Register the command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "speak", help="speak text (streamed text-to-speech)", description=__doc__
    )
    p.add_argument("text", help="the text, or - to read standard input")
    p.add_argument("--voice", default="alloy", help="voice (default alloy)")
    p.add_argument("--speed", type=float, default=None, help="0.25 to 4.0")
    p.add_argument("--instructions", default=None, help="how to speak (models that support it)")
    p.add_argument("--tts-model", default="gpt-4o-mini-tts", help="speech model")
    p.add_argument(
        "--output",
        default=None,
        help="write audio to this file instead of playing (.wav .pcm .mp3 .opus .aac .flac)",
    )
    p.add_argument("--output-device", default=None, help="speaker (index or name part)")
    add_backend_arguments(p)
    p.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    """Synthesize and play (or write) the speech."""
    from ..rest import split_speech

    out = Path(args.output) if args.output else None
    fmt = "pcm"
    if out is not None:
        if out.suffix.lower() not in OUTPUT_FORMATS:
            raise CommandError(
                f"--output {out.name}: unknown audio extension; use one of "
                + " ".join(OUTPUT_FORMATS)
            )
        fmt = OUTPUT_FORMATS[out.suffix.lower()]
        if args.output_device:
            raise CommandError("--output-device plays; it cannot be combined with --output")
    text = sys.stdin.read() if args.text == "-" else args.text
    if not text.strip():
        raise CommandError("nothing to say: the text is empty")
    pieces = split_speech(text)
    if len(pieces) > 1:
        if fmt not in _CONCATENABLE:
            raise CommandError(
                f"the text needs {len(pieces)} requests and {fmt} files cannot be joined: "
                "use .wav, .pcm, .mp3 or .aac"
            )
        err_console.print(f"{len(text)} characters: spoken in {len(pieces)} pieces")
    try:
        async with open_backend(args) as backend:
            err_console.print(backend.description)
            async with backend.rest_client(args.tts_model) as client:

                def request(piece: str) -> Any:
                    return client.speak(
                        piece,
                        model=args.tts_model,
                        voice=args.voice,
                        instructions=args.instructions,
                        response_format=fmt,
                        speed=args.speed,
                    )

                if out is None:
                    return await _play(args, pieces, request)
                return await _write(out, fmt, pieces, request)
    except Exception:
        if out is not None and out.is_file():
            out.unlink()  # no empty or partial file after a failure
        raise


async def _write(out: Path, fmt: str, pieces: list[str], request: Any) -> int:
    n = 0
    first: float | None = None
    writer: WavWriter | None = None
    try:
        with out.open("wb") if out.suffix.lower() != ".wav" else _NoFile() as raw:
            for i, piece in enumerate(pieces):
                stream = request(piece)
                async with stream:
                    odd = b""  # HTTP chunks may split a sample: carry the odd byte
                    async for chunk in stream:
                        if raw is not None:
                            raw.write(chunk)
                            n += len(chunk)
                            continue
                        if writer is None:
                            writer = WavWriter(out, rate=24000, channels=1)
                        data = odd + chunk
                        odd = data[len(data) // 2 * 2 :]
                        writer.write(data[: len(data) - len(odd)])
                        n += len(data) - len(odd)
                if i == 0:
                    first = stream.time_to_first_byte
    finally:
        if writer is not None:
            writer.close()
    if n == 0:
        raise CommandError("the server sent no audio")
    ttfb = f", first audio after {first * 1000:.0f} ms" if first is not None else ""
    size = f"{n / 48000:.1f} s of audio" if fmt == "pcm" else f"{n} bytes of {fmt}"
    err_console.print(f"wrote {size} to {out}{ttfb}")
    return 0


class _NoFile:
    """``with`` stand-in yielding None (the WAV writer opens the file itself)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


async def _play(args: argparse.Namespace, pieces: list[str], request: Any) -> int:
    from audio.speaker import Speaker

    from ..rest import play

    audio_ms = 0.0
    first: float | None = None
    async with Speaker(device=args.output_device) as speaker:
        for piece in pieces:
            async with request(piece) as stream:
                report = await play(stream, speaker)
            audio_ms += report.audio_ms
            if first is None:
                first = report.first_sample_s
    when = f"; first audio after {first * 1000:.0f} ms" if first is not None else ""
    err_console.print(f"played {audio_ms / 1000:.1f} s{when}")
    return 0
