"""Reconnection policy and the synthetic events a session emits about its connection.

Reconnecting is opt-in: pass ``reconnect=ReconnectPolicy(...)`` to
:func:`realtime.connect`. When the connection closes for a *recoverable* reason (an
abnormal closure 1006, 1011 internal error, 1012 service restart, 1013 try again later,
or a network error while connecting), the session waits
``min(max_delay, base_delay * 2**attempt)`` seconds, scaled by a random factor in
``[1 - jitter, 1]``, and tries again, up to ``max_attempts`` times. After a successful
reconnect it re-sends the session configuration and, when ``reinject_history`` is set,
re-creates the conversation once, as text, with the original item ids (the server forgot
them): a reply cut short keeps only what was heard of it. The restore goes out through
the normal send path (send listeners and :class:`~realtime.recording.Recorder` see it).
A response in progress when the connection dropped ends with a ``response.done`` of
status ``incomplete`` (``status_details.reason == "connection_lost"``), so nothing
waits for it forever; ``connection.restored`` lists what was lost.

Handlers see the connection's life through synthetic events (they never come from the
wire; they subclass :class:`realtime.events.ServerEvent`):

* ``connection.lost`` (:class:`ConnectionLostEvent`): the connection dropped; a reconnect
  follows when the policy allows it.
* ``connection.restored`` (:class:`ConnectionRestoredEvent`): connected again.
* ``connection.failed`` (:class:`ConnectionFailedEvent`): giving up; the session closes.
* ``session.expiring`` (:class:`SessionExpiringEvent`): the server's ``expires_at`` is
  near (``expiry_warning`` seconds ahead, a :func:`realtime.connect` option).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from .conversation import Conversation, Item
from .events import ServerEvent
from .exceptions import ConfigError

__all__ = [
    "RECOVERABLE_CLOSE_CODES",
    "ConnectionFailedEvent",
    "ConnectionLostEvent",
    "ConnectionRestoredEvent",
    "ReconnectPolicy",
    "HistoryRestore",
    "SessionExpiringEvent",
    "heard_text",
    "history_items",
]

RECOVERABLE_CLOSE_CODES = frozenset({1006, 1011, 1012, 1013})
"""Close codes after which reconnecting makes sense."""


@dataclass(frozen=True)
class ReconnectPolicy:
    """When and how often to reconnect.

    Args:
        max_attempts: connection attempts after a loss before giving up (>= 1).
        base_delay: seconds before the first attempt.
        max_delay: cap of the exponential backoff.
        jitter: fraction (0..1) of each delay that is randomised away.
        reinject_history: after reconnecting, re-create the text and transcripts of the
            conversation as items.
        close_codes: the close codes treated as recoverable.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 15.0
    jitter: float = 0.2
    reinject_history: bool = False
    close_codes: frozenset[int] = RECOVERABLE_CLOSE_CODES

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ConfigError("reconnect delays must not be negative")
        if not 0 <= self.jitter <= 1:
            raise ConfigError(f"jitter must be between 0 and 1, got {self.jitter}")

    def is_recoverable(self, code: int | None) -> bool:
        """True when a close with ``code`` (``None``: a network error) should reconnect."""
        return code is None or code in self.close_codes

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt number ``attempt`` (0-based)."""
        raw = min(self.max_delay, self.base_delay * 2.0**attempt)
        if self.jitter:
            draw = rng.random() if rng is not None else random.random()
            factor = 1 - self.jitter * draw
            raw *= factor
        return raw

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The delays before each attempt, ``max_attempts`` of them."""
        for attempt in range(self.max_attempts):
            yield self.delay(attempt, rng)


class ConnectionLostEvent(ServerEvent):
    """Synthetic: the connection closed unexpectedly (``code`` 1006 for an abrupt drop)."""

    type: Literal["connection.lost"] = "connection.lost"
    code: int | None = None
    reason: str = ""
    will_reconnect: bool = False


class ConnectionRestoredEvent(ServerEvent):
    """Synthetic: the session is connected again after ``attempts`` tries.

    ``lost_responses``: ids of the responses the drop cut short (each already ended
    with a ``response.done`` of status ``incomplete``, reason ``connection_lost``);
    ``incomplete_items``: their items, marked ``incomplete`` in the conversation;
    ``restored_items``: how many items were re-created (``reinject_history``).
    """

    type: Literal["connection.restored"] = "connection.restored"
    attempts: int = 1
    downtime: float = 0.0
    lost_responses: list[str] = Field(default_factory=list)
    incomplete_items: list[str] = Field(default_factory=list)
    restored_items: int = 0


class ConnectionFailedEvent(ServerEvent):
    """Synthetic: reconnecting gave up (or was not allowed); the session is closing."""

    type: Literal["connection.failed"] = "connection.failed"
    code: int | None = None
    reason: str = ""
    attempts: int = 0


class SessionExpiringEvent(ServerEvent):
    """Synthetic: the server session expires at ``expires_at`` (Unix seconds), soon."""

    type: Literal["session.expiring"] = "session.expiring"
    expires_at: float = 0.0
    seconds_left: float = 0.0


def history_items(items: Iterable[Mapping[str, Any]], dialect: str = "ga") -> list[dict[str, Any]]:
    """Client ``item`` payloads re-creating conversation items (wire JSON) as text.

    ``items`` are wire items (decoded JSON objects with ``type``, ``role``,
    ``content``). Messages keep their text; audio parts become their transcript as text
    (audio itself is not re-sent); function calls and outputs are kept. Items with
    nothing to say are skipped. Assistant text is ``output_text`` (GA) or ``text``
    (beta). The session's own restore after a reconnect is
    :meth:`realtime.protocol.ClientProtocol.connection_made` (original ids, heard text).
    """
    out: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type")
        if kind == "message":
            role = item.get("role") or "user"
            texts = [
                str(part.get("text") or part.get("transcript"))
                for part in item.get("content") or ()
                if isinstance(part, Mapping) and (part.get("text") or part.get("transcript"))
            ]
            if not texts:
                continue
            assistant = "output_text" if dialect == "ga" else "text"
            part_type = assistant if role == "assistant" else "input_text"
            content = [{"type": part_type, "text": " ".join(texts)}]
            out.append({"type": "message", "role": role, "content": content})
        elif kind == "function_call":
            call_id, name = item.get("call_id"), item.get("name")
            if call_id and name:
                arguments = item.get("arguments") or ""
                call = {"type": "function_call", "call_id": call_id, "name": name}
                out.append({**call, "arguments": arguments})
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            if call_id:
                output = item.get("output") or ""
                out.append({"type": "function_call_output", "call_id": call_id, "output": output})
    return out


def heard_text(item: Item) -> str:
    """The text of ``item`` the listener actually got: a truncated part's transcript is cut.

    A part truncated at ``audio_end_ms`` keeps the share of its transcript that matches
    the share of its audio that was heard, cut back to a word boundary; parts with text
    (not audio) are kept whole.
    """
    texts: list[str] = []
    for part in item.content:
        if part.text:
            texts.append(part.text)
            continue
        transcript = part.transcript
        if part.truncated and part.audio_ms_before_truncation > 0:
            share = min(1.0, (part.audio_end_ms or 0) / part.audio_ms_before_truncation)
            cut = int(len(transcript) * share)
            if cut < len(transcript):
                space = transcript.rfind(" ", 0, cut + 1)
                cut = space if space > 0 else 0
            transcript = transcript[:cut].rstrip()
        if transcript:
            texts.append(transcript)
    return " ".join(texts)


def restorable(item: Item, dialect: str = "ga") -> dict[str, Any] | None:
    """The wire item re-creating ``item`` (with its id) as text, or ``None`` when it has
    nothing to restore. Messages keep what was heard; cut-short ones say ``incomplete``."""
    if item.type == "message":
        text = heard_text(item)
        if not text:
            return None
        role = item.role or "user"
        part = ("text" if dialect == "beta" else "output_text") if role == "assistant" else None
        wire: dict[str, Any] = {
            "id": item.id,
            "type": "message",
            "role": role,
            "content": [{"type": part or "input_text", "text": text}],
        }
        if item.status == "incomplete":
            wire["status"] = "incomplete"  # cut short (the spec: no effect on the model)
        return wire
    if item.type == "function_call" and item.call_id and item.name:
        call = {"id": item.id, "type": "function_call", "call_id": item.call_id}
        return {**call, "name": item.name, "arguments": item.arguments}
    if item.type == "function_call_output" and item.call_id and item.output is not None:
        output = {"id": item.id, "type": "function_call_output", "call_id": item.call_id}
        return {**output, "output": item.output}
    return None


class HistoryRestore:
    """The history part of a reconnect's restore plan, and the echoes still expected.

    :meth:`plan` lists the items to re-create (each chained to the previous one by
    ``previous_item_id``, under its original id); :meth:`echoed` ticks off each
    ``conversation.item.added``/``created`` the server answers with, in any order, and
    renames the local item when the server chose its own id, so nothing is duplicated.
    """

    def __init__(self) -> None:
        self._pending: deque[str] = deque()

    def __bool__(self) -> bool:
        return bool(self._pending)

    def plan(
        self, conversation: Conversation, dialect: str = "ga"
    ) -> list[tuple[dict[str, Any], str | None]]:
        """``(wire item, previous_item_id)`` pairs re-creating ``conversation``, in order."""
        out: list[tuple[dict[str, Any], str | None]] = []
        previous: str | None = None
        for item in conversation.items:
            wire = restorable(item, dialect)
            if wire is not None:
                out.append((wire, previous))
                self._pending.append(item.id)
                previous = item.id
        return out

    def echoed(self, item_id: str, conversation: Conversation, *, requested: bool) -> None:
        """The server announced item ``item_id``; ``requested``: the application asked for
        an item of that id meanwhile (not a restored one)."""
        pending = self._pending
        if item_id in pending:
            pending.remove(item_id)
        elif pending and not requested and item_id not in conversation:
            conversation.rename(pending.popleft(), item_id)

    def clear(self) -> None:
        """Forget the echoes still expected (the connection dropped again)."""
        self._pending.clear()
