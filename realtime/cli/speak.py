"""``realtime speak "text"``: streamed text-to-speech, played as it arrives or written to a file.

``-`` reads the text from standard input. ``--output FILE`` writes a WAV (``.wav``) or raw
PCM16 24 kHz (any other extension) instead of playing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from audio.wav import WavWriter

from .backend import add_backend_arguments, open_backend
from .common import CommandError, err_console

__all__ = ["add_parser", "handle"]


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
    p.add_argument("--output", default=None, help="write audio to this file instead of playing")
    p.add_argument("--output-device", default=None, help="speaker (index or name part)")
    add_backend_arguments(p)
    p.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    """Synthesize and play (or write) the speech."""
    from ..rest import play

    text = sys.stdin.read() if args.text == "-" else args.text
    if not text.strip():
        raise CommandError("nothing to say: the text is empty")
    async with open_backend(args) as backend:
        err_console.print(backend.description)
        async with backend.rest_client(args.tts_model) as client:
            stream = client.speak(
                text,
                model=args.tts_model,
                voice=args.voice,
                instructions=args.instructions,
                response_format="pcm",
                speed=args.speed,
            )
            if args.output:
                out = Path(args.output)
                n = 0
                async with stream:
                    if out.suffix.lower() == ".wav":
                        with WavWriter(out, rate=24000, channels=1) as writer:
                            odd = b""  # HTTP chunks may split a sample: carry the odd byte
                            async for chunk in stream:
                                data = odd + chunk
                                odd = data[len(data) // 2 * 2 :]
                                writer.write(data[: len(data) - len(odd)])
                                n += len(data) - len(odd)
                    else:
                        with out.open("wb") as f:
                            async for chunk in stream:
                                f.write(chunk)
                                n += len(chunk)
                first = stream.time_to_first_byte
                ttfb = f", first audio after {first * 1000:.0f} ms" if first is not None else ""
                err_console.print(f"wrote {n / 48000:.1f} s of audio to {out}{ttfb}")
                return 0
            from audio.speaker import Speaker

            async with Speaker(device=args.output_device) as speaker, stream:
                report = await play(stream, speaker)
            first = report.first_sample_s
            when = f"; first audio after {first * 1000:.0f} ms" if first is not None else ""
            err_console.print(f"played {report.audio_ms / 1000:.1f} s{when}")
    return 0
