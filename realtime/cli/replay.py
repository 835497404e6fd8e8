"""``realtime replay FILE.jsonl``: re-drive the conversation state from a recording, offline.

The transcript is printed as the conversation state rebuilds it. An assistant reply the user
interrupted (``conversation.item.truncated``) is marked: the part heard (estimated from the
audio played, ``audio_end_ms``, against the audio received) is printed, the rest is shown as
not heard. The dialect is guessed from the events (beta names, beta-only event types such as
``transcription_session.*``) unless ``--dialect`` says it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text

from ..conversation import Conversation, Item
from ..events import UnknownServerEvent, parse_server_event
from ..exceptions import ProtocolError
from .common import CommandError, err_console, out_console

__all__ = ["Replay", "add_parser", "guess_dialect", "handle", "read_recording", "replay_file"]

_BETA_TYPES = frozenset(
    {
        "response.audio.delta",
        "response.audio.done",
        "response.audio_transcript.delta",
        "response.audio_transcript.done",
        "response.text.delta",
        "response.text.done",
    }
)
_GA_TYPES = frozenset(
    {
        "response.output_audio.delta",
        "response.output_audio_transcript.delta",
        "response.output_text.delta",
        "conversation.item.added",
        "conversation.item.done",
    }
)


def add_parser(sub: Any) -> None:
    """Register the command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "replay",
        help="print the transcript of a recorded session",
        description=__doc__,
    )
    p.add_argument("file", help="a JSONL recording")
    p.add_argument(
        "--dialect",
        choices=["ga", "beta"],
        default=None,
        help="dialect of the recording (default: guessed from its events)",
    )
    p.set_defaults(handler=handle)


def read_recording(path: Path) -> list[dict[str, Any]]:
    """The records (``{"t", "direction", "event"}``) of a JSONL recording; CommandError if bad."""
    if not path.exists():
        raise CommandError(f"no such recording: {path}")
    records: list[dict[str, Any]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise CommandError(f"{path}:{n}: not JSON ({exc.args[0]})") from None
        if isinstance(record, dict) and isinstance(record.get("event"), dict):
            records.append(record)
    return records


def guess_dialect(records: list[dict[str, Any]]) -> str:
    """``"beta"`` or ``"ga"`` from the events of a recording.

    Event names only one dialect has decide first. A transcription-only session has none:
    then a transcript without ``usage`` (the beta shape), or a session object without a
    ``type`` (beta sessions carry none), means beta. Otherwise GA.
    """
    events = [r["event"] for r in records]
    types = {str(e.get("type", "")) for e in events}
    if types & _BETA_TYPES:
        return "beta"
    if types & _GA_TYPES:
        return "ga"
    for e in events:
        if e.get("type") == "conversation.item.input_audio_transcription.completed":
            return "ga" if "usage" in e else "beta"
    for e in events:
        session = e.get("session")
        if isinstance(session, dict) and str(e.get("type", "")).endswith(
            ("session.created", "session.updated")
        ):
            return "ga" if "type" in session else "beta"
    return "ga"


@dataclass
class Replay:
    """A conversation rebuilt from a recording."""

    conversation: Conversation
    applied: int = 0
    skipped: int = 0
    dialect: str = "ga"
    received_ms: dict[tuple[str, int], float] = field(default_factory=dict)
    """Audio received per (item, part) before a truncation cut it."""


def replay_file(path: Path, dialect: str | None = None) -> Replay:
    """The conversation rebuilt from a recording, with the events applied and skipped."""
    records = read_recording(path)
    server = [r["event"] for r in records if r.get("direction") == "server"]
    chosen = dialect or guess_dialect(records)
    result = Replay(Conversation(), dialect=chosen)
    conv = result.conversation
    for raw in server:
        try:
            event = parse_server_event(json.dumps(raw), chosen)  # type: ignore[arg-type]
        except ProtocolError:
            result.skipped += 1
            continue
        if isinstance(event, UnknownServerEvent):
            result.skipped += 1
            continue
        if event.type == "conversation.item.truncated":
            item = conv.get(str(getattr(event, "item_id", "")))
            index = int(getattr(event, "content_index", 0) or 0)
            if item is not None and index < len(item.content):
                result.received_ms[(item.id, index)] = item.content[index].audio_ms
        conv.apply(event)
        result.applied += 1
    return result


def _message_line(item: Item, replay: Replay) -> Text:
    """``role: words``, with the unheard end of an interrupted reply marked."""
    line = Text.assemble((f"{item.role}:", "bold"), " ")
    for part in item.content:
        words = part.text or part.transcript
        if not part.truncated or part.audio_end_ms is None:
            line.append(words)
            continue
        total = replay.received_ms.get((item.id, part.index), 0.0)
        heard_s = part.audio_end_ms / 1000
        if total <= 0:
            line.append(words)
            line.append(f" [interrupted at {heard_s:.1f} s]", style="yellow")
            continue
        cut = int(len(words) * min(1.0, part.audio_end_ms / total))
        space = words.rfind(" ", 0, cut + 1)
        cut = space if space > 0 and cut < len(words) else cut
        line.append(words[:cut].rstrip())
        line.append(
            f" [interrupted after ~{heard_s:.1f} of {total / 1000:.1f} s; not heard: "
            f"{words[cut:].strip()}]",
            style="yellow",
        )
    return line


async def handle(args: argparse.Namespace) -> int:
    """Print the transcript."""
    replay = replay_file(Path(args.file), args.dialect)
    for item in replay.conversation.items:
        if item.type == "message":
            out_console.print(_message_line(item, replay))
        elif item.type == "function_call":
            out_console.print(
                Text.assemble(("tool call:", "bold"), f" {item.name}({item.arguments})")
            )
        elif item.type == "function_call_output":
            out_console.print(Text.assemble(("tool output:", "bold"), f" {item.output}"))
    err_console.print(
        f"{replay.applied} events replayed, {replay.skipped} skipped ({replay.dialect} dialect)"
    )
    return 0
