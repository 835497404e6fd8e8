"""``realtime replay FILE.jsonl``: re-drive the conversation state from a recording, offline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..conversation import Conversation
from ..events import UnknownServerEvent, parse_server_event
from ..exceptions import ProtocolError
from .common import CommandError, err_console, out_console

__all__ = ["add_parser", "handle", "replay_file"]


def add_parser(sub: Any) -> None:
    """Register the command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "replay",
        help="print the transcript of a recorded session",
        description="Feed the server events of a recording (--record / events.jsonl) through "
        "the conversation state and print the transcript; needs no server.",
    )
    p.add_argument("file", help="a JSONL recording")
    p.add_argument(
        "--dialect",
        choices=["ga", "beta"],
        default=None,
        help="dialect of the recording (default: guessed from its events)",
    )
    p.set_defaults(handler=handle)


def replay_file(path: Path, dialect: str | None = None) -> tuple[Conversation, int, int]:
    """The conversation rebuilt from a recording, the events applied and the lines skipped."""
    if not path.exists():
        raise CommandError(f"no such recording: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError as exc:
            raise CommandError(f"{path}:{n}: not JSON ({exc.args[0]})") from None
    server = [r["event"] for r in records if isinstance(r, dict) and r.get("direction") == "server"]
    if dialect is None:
        beta = {"response.audio.delta", "response.audio_transcript.delta", "response.text.delta"}
        dialect = "beta" if any(e.get("type") in beta for e in server) else "ga"
    conv = Conversation()
    applied = skipped = 0
    for raw in server:
        try:
            event = parse_server_event(json.dumps(raw), dialect)  # type: ignore[arg-type]
        except ProtocolError:
            skipped += 1
            continue
        if isinstance(event, UnknownServerEvent):
            skipped += 1
            continue
        conv.apply(event)
        applied += 1
    return conv, applied, skipped


async def handle(args: argparse.Namespace) -> int:
    """Print the transcript."""
    conv, applied, skipped = replay_file(Path(args.file), args.dialect)
    for item in conv.items:
        if item.type == "message":
            words = item.text or item.transcript or ""
            out_console.print(f"[bold]{item.role}:[/bold] {words}")
        elif item.type == "function_call":
            out_console.print(f"[bold]tool call:[/bold] {item.name}({item.arguments})")
        elif item.type == "function_call_output":
            out_console.print(f"[bold]tool output:[/bold] {item.output}")
    err_console.print(f"{applied} events replayed, {skipped} skipped")
    return 0
