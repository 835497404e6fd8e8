"""The ``realtime`` command line: talk, transcribe, speak, run, serve, phone, devices, replay.

Every command picks its backend the same way (see :mod:`realtime.cli.backend`): ``--url``, else
Azure, else OpenAI when ``OPENAI_API_KEY`` is set, else the embedded local server. Errors are one
line on stderr (exit status 2); ``--debug`` shows the traceback. Ctrl-C ends a command with
status 130 (``serve``, ``phone``: 0, as that is how a server is stopped).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from audio.exceptions import AudioError

from ..exceptions import RealtimeError
from . import devices, phone, replay, run, serve, speak, talk, transcribe
from .common import CommandError

__all__ = ["build_parser", "main"]

_COMMANDS = (talk, transcribe, speak, run, serve, phone, devices, replay)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``realtime`` command."""
    parser = argparse.ArgumentParser(
        prog="realtime",
        description="Realtime voice: conversations, transcription and scripted sessions over "
        "the OpenAI Realtime protocol (local offline server when no API key is set).",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        status: int = asyncio.run(args.handler(args))
        return status
    except KeyboardInterrupt:
        if args.command in ("serve", "phone"):  # Ctrl-C is how a server is stopped
            print("stopped", file=sys.stderr)
            return 0
        print("interrupted", file=sys.stderr)
        return 130
    except (RealtimeError, AudioError, CommandError, OSError) as exc:
        if args.debug:
            raise
        first, *rest = (str(exc).strip() or type(exc).__name__).splitlines()
        more = " (details with --debug)" if rest else ""
        print(f"error: {first}{more}", file=sys.stderr)
        return 2
