"""``realtime devices``: list audio input and output devices."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from .common import CommandError, out_console

__all__ = ["add_parser", "handle"]


def add_parser(sub: Any) -> None:
    """Register the command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "devices",
        help="list audio devices",
        description="List audio input and output "
        "devices with their default sample rates; * marks the defaults.",
    )
    p.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    """Print the device table; a one-line error when PortAudio sees no device at all."""
    from audio.devices import devices

    found = devices()
    if not found:
        raise CommandError(
            "no audio devices: PortAudio sees no input or output device (on Linux, start "
            "PulseAudio or check ALSA; headless commands take --input/--output WAV files)"
        )
    table = Table(title="audio devices")
    for col in ("index", "name", "api", "in", "out", "rate", "default"):
        table.add_column(col)
    for d in found:
        default = " ".join(
            x for x, on in (("input", d.is_default_input), ("output", d.is_default_output)) if on
        )
        table.add_row(
            str(d.index),
            d.name,
            d.hostapi,
            str(d.max_input_channels),
            str(d.max_output_channels),
            f"{d.default_samplerate:.0f}",
            f"* {default}" if default else "",
        )
    out_console.print(table)
    return 0
