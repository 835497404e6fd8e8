"""The conversation as the client sees it, rebuilt from server events (pure, no I/O).

Feed every server event to :meth:`Conversation.apply`; it returns the high-level
:data:`Change` objects the event caused (often none) and keeps:

* the items in conversation order, placed by ``previous_item_id`` rather than by
  arrival (an item whose predecessor is not known yet goes at the end and moves into
  place when the predecessor arrives);
* per item its role, status, content parts accumulating text, transcript and (only
  with ``audio_retention_ms`` > 0, at most that many milliseconds per content part)
  audio, and a function call's name, call id and arguments;
* input audio transcriptions, placed by ``item_id`` and ``content_index`` whenever
  they arrive (also after the response that followed them finished);
* truncation (audio cut, transcript marked truncated) and deletion.

Both dialects are understood: beta ``conversation.item.created``,
``response.text.delta``, ``response.audio.delta``, ``response.audio_transcript.delta``
and GA ``conversation.item.added`` / ``conversation.item.done``,
``response.output_text.delta``, ``response.output_audio.delta``,
``response.output_audio_transcript.delta``.

Each delta costs O(1): chunks are appended to lists and joined lazily when read;
items are found through a dict and linked in a doubly linked list.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Union

from realtime.events import (
    BetaConversationItem,
    BetaConversationItemCreatedEvent,
    BetaConversationItemCreateEvent,
    BetaConversationItemInputAudioTranscriptionCompletedEvent,
    BetaConversationItemRetrievedEvent,
    BetaResponseDoneEvent,
    BetaResponseFunctionCallArgumentsDoneEvent,
    BetaResponseOutputItemAddedEvent,
    BetaResponseOutputItemDoneEvent,
    ClientEvent,
    ConversationItemAddedEvent,
    ConversationItemCreatedEvent,
    ConversationItemCreateEvent,
    ConversationItemDeletedEvent,
    ConversationItemDoneEvent,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    ConversationItemInputAudioTranscriptionFailedEvent,
    ConversationItemRetrievedEvent,
    ConversationItemTruncatedEvent,
    FunctionCallItem,
    FunctionCallOutputItem,
    GenericItem,
    InputAudioBufferSpeechStartedEvent,
    InvalidServerEvent,
    McpApprovalRequestItem,
    McpApprovalResponseItem,
    McpCallItem,
    McpListToolsItem,
    MessageItem,
    ResponseAudioDeltaEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseAudioTranscriptDoneEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseDoneEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseOutputAudioDeltaEvent,
    ResponseOutputAudioTranscriptDeltaEvent,
    ResponseOutputAudioTranscriptDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputTextDeltaEvent,
    ResponseOutputTextDoneEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    ServerEvent,
    UnknownServerEvent,
)
from realtime.events import ContentPart as WireContentPart

__all__ = [
    "Change",
    "ContentPart",
    "Conversation",
    "ConversationInterrupted",
    "Item",
    "ItemAdded",
    "ItemDeleted",
    "ItemDone",
    "ItemTruncated",
    "ItemUpdated",
    "UpdateKind",
    "b64_decoded_len",
]

BYTES_PER_MS = {"pcm16": 48.0, "g711_ulaw": 8.0, "g711_alaw": 8.0}
"""Bytes of audio per millisecond for each wire audio format."""

_FINAL_STATUSES = frozenset({"completed", "incomplete", "cancelled", "failed"})

UpdateKind = Literal[
    "text",
    "transcript",
    "audio",
    "arguments",
    "input_transcript",
    "input_transcript_completed",
    "input_transcript_failed",
    "moved",
]
"""What an :class:`ItemUpdated` changed; ``delta`` holds the new piece:

``text``/``transcript``/``arguments``/``input_transcript``: the appended text;
``audio``: the base64 chunk as received; ``input_transcript_completed``: the full
transcript; ``input_transcript_failed``: the error message; ``moved``: the new
``previous_item_id`` (or ``""`` when the item is now first).
"""


_UNTYPED = (UnknownServerEvent, InvalidServerEvent)


def b64_decoded_len(data: str) -> int:
    """Length in bytes of the base64 string ``data`` once decoded (no decoding done)."""
    n = len(data)
    if n == 0:
        return 0
    pad = 2 if data.endswith("==") else 1 if data.endswith("=") else 0
    return (n * 3) // 4 - pad


class _Wire(NamedTuple):
    """The fields of a wire item the conversation keeps, whichever model carried them."""

    id: str | None
    type: str | None
    role: str | None = None
    status: str | None = None
    call_id: str | None = None
    name: str | None = None
    output: str | None = None
    arguments: str | None = None
    content: tuple[WireContentPart, ...] = ()


def _wire(item: object) -> _Wire:
    """Read a wire item (GA union member or beta item) with typed field access."""
    if isinstance(item, MessageItem):
        return _Wire(item.id, item.type, item.role, item.status, content=tuple(item.content))
    if isinstance(item, FunctionCallItem):
        return _Wire(
            item.id, item.type, None, item.status, item.call_id, item.name, None, item.arguments
        )
    if isinstance(item, FunctionCallOutputItem):
        return _Wire(item.id, item.type, None, item.status, item.call_id, output=item.output)
    if isinstance(item, BetaConversationItem):
        return _Wire(
            item.id,
            item.type,
            item.role,
            item.status,
            item.call_id,
            item.name,
            item.output,
            item.arguments,
            tuple(item.content or ()),
        )
    if isinstance(item, (McpCallItem, McpApprovalRequestItem)):
        return _Wire(item.id, item.type, name=item.name, arguments=item.arguments)
    if isinstance(item, (McpApprovalResponseItem, McpListToolsItem, GenericItem)):
        return _Wire(item.id, item.type)
    return _Wire(None, None)


_OutputRef = (
    ResponseOutputTextDeltaEvent
    | ResponseTextDeltaEvent
    | ResponseOutputTextDoneEvent
    | ResponseTextDoneEvent
    | ResponseOutputAudioTranscriptDeltaEvent
    | ResponseAudioTranscriptDeltaEvent
    | ResponseOutputAudioTranscriptDoneEvent
    | ResponseAudioTranscriptDoneEvent
    | ResponseOutputAudioDeltaEvent
    | ResponseAudioDeltaEvent
    | ResponseContentPartAddedEvent
    | ResponseContentPartDoneEvent
)
_ItemAddedEvent = (
    ConversationItemAddedEvent | ConversationItemCreatedEvent | BetaConversationItemCreatedEvent
)
_OutputItemEvent = (
    ResponseOutputItemAddedEvent
    | ResponseOutputItemDoneEvent
    | BetaResponseOutputItemAddedEvent
    | BetaResponseOutputItemDoneEvent
)
_InputTranscriptEvent = (
    ConversationItemInputAudioTranscriptionDeltaEvent
    | ConversationItemInputAudioTranscriptionCompletedEvent
    | BetaConversationItemInputAudioTranscriptionCompletedEvent
    | ConversationItemInputAudioTranscriptionFailedEvent
)


def _join(chunks: list[str]) -> str:
    if len(chunks) > 1:
        joined = "".join(chunks)
        chunks.clear()
        chunks.append(joined)
    return chunks[0] if chunks else ""


class ContentPart:
    """One content part of an item: text, transcript and (bounded) audio.

    ``audio_ms`` counts all audio received for the part (whether retained or not);
    ``audio`` holds at most the first ``audio_retention_ms`` of it.
    """

    __slots__ = (
        "_audio",
        "_bytes_per_ms",
        "_retain",
        "_text",
        "_transcript",
        "audio_bytes_received",
        "audio_end_ms",
        "audio_ms_before_truncation",
        "index",
        "transcript_truncated",
        "transcription_error",
        "transcription_status",
        "truncated",
        "type",
    )

    def __init__(self, index: int, type: str | None, bytes_per_ms: float, retain: int) -> None:
        self.index = index
        self.type = type
        self._text: list[str] = []
        self._transcript: list[str] = []
        self._audio = bytearray()
        self._bytes_per_ms = bytes_per_ms
        self._retain = retain
        self.audio_bytes_received = 0
        self.truncated = False
        self.audio_end_ms: int | None = None
        self.audio_ms_before_truncation = 0.0
        self.transcript_truncated = False
        self.transcription_status: str | None = None
        self.transcription_error: Any = None

    @property
    def text(self) -> str:
        """The text received so far (``""`` when none)."""
        return _join(self._text)

    @property
    def transcript(self) -> str:
        """The audio transcript received so far (``""`` when none)."""
        return _join(self._transcript)

    @property
    def audio(self) -> bytes:
        """The retained audio (empty unless the conversation retains audio)."""
        return bytes(self._audio)

    @property
    def audio_ms(self) -> float:
        """Milliseconds of audio received for this part (after truncation: what is left)."""
        return self.audio_bytes_received / self._bytes_per_ms

    def _add_audio(self, b64: str) -> None:
        self.audio_bytes_received += b64_decoded_len(b64)
        if not self._retain:
            return
        room = self._retain - len(self._audio)
        if room > 0:
            try:
                self._audio += binascii.a2b_base64(b64)[:room]
            except (binascii.Error, ValueError):
                return

    def _truncate(self, audio_end_ms: int) -> None:
        end = int(audio_end_ms * self._bytes_per_ms)
        end -= end % 2 if self._bytes_per_ms == BYTES_PER_MS["pcm16"] else 0
        if not self.truncated:
            self.audio_ms_before_truncation = self.audio_ms
        del self._audio[end:]
        self.audio_bytes_received = min(self.audio_bytes_received, end)
        self.truncated = True
        self.audio_end_ms = audio_end_ms
        self.transcript_truncated = True

    def __repr__(self) -> str:
        return f"ContentPart({self.index}, {self.type!r})"


class Item:
    """One conversation item (message, function call, function call output, …)."""

    __slots__ = (
        "_arguments",
        "_bytes_per_ms",
        "_next",
        "_prev",
        "_retain",
        "call_id",
        "content",
        "done",
        "id",
        "name",
        "output",
        "previous_item_id",
        "response_id",
        "role",
        "status",
        "type",
    )

    def __init__(self, id: str, type: str | None, bytes_per_ms: float, retain: int) -> None:
        self.id = id
        self.type = type
        self.role: str | None = None
        self.status: str | None = None
        self.content: list[ContentPart] = []
        self.call_id: str | None = None
        self.name: str | None = None
        self.output: str | None = None
        self.response_id: str | None = None
        self.previous_item_id: str | None = None
        self.done = False
        self._arguments: list[str] = []
        self._bytes_per_ms = bytes_per_ms
        self._retain = retain
        self._prev: Item | None = None
        self._next: Item | None = None

    @property
    def arguments(self) -> str:
        """A function call's arguments JSON as received so far."""
        return _join(self._arguments)

    @property
    def text(self) -> str:
        """All text of the item: each part's text, or its transcript when it has none."""
        return "".join(p.text or p.transcript for p in self.content)

    @property
    def transcript(self) -> str:
        """The transcripts of the item's audio parts, joined."""
        return "".join(p.transcript for p in self.content)

    @property
    def audio_ms(self) -> float:
        """Milliseconds of audio received over all parts."""
        return sum(p.audio_ms for p in self.content)

    def part(self, index: int, type: str | None = None) -> ContentPart:
        """The content part at ``index``, created (with earlier ones) when missing."""
        content = self.content
        while len(content) <= index:
            content.append(ContentPart(len(content), None, self._bytes_per_ms, self._retain))
        p = content[index]
        if type is not None and p.type is None:
            p.type = type
        return p

    def __repr__(self) -> str:
        return f"Item({self.id!r}, type={self.type!r}, role={self.role!r}, status={self.status!r})"


@dataclass(frozen=True)
class ItemAdded:
    """An item appeared (``previous_item_id`` as the server gave it, if it did)."""

    item: Item
    previous_item_id: str | None = None


@dataclass(frozen=True)
class ItemUpdated:
    """An item changed: ``kind`` says how, ``delta`` is the new piece (see UpdateKind)."""

    item: Item
    kind: UpdateKind
    delta: str
    content_index: int = 0


@dataclass(frozen=True)
class ItemDone:
    """An item is final (its status is ``completed`` or ``incomplete``)."""

    item: Item


@dataclass(frozen=True)
class ItemDeleted:
    """An item was deleted from the conversation."""

    item_id: str
    item: Item | None = None


@dataclass(frozen=True)
class ItemTruncated:
    """An item's audio was cut at ``audio_end_ms``; its transcript is marked truncated."""

    item: Item
    content_index: int
    audio_end_ms: int


@dataclass(frozen=True)
class ConversationInterrupted:
    """The user started speaking while an assistant item was still being generated."""

    item: Item
    audio_start_ms: int | None = None
    input_item_id: str | None = None


Change = Union[  # noqa: UP007 - a runtime alias must work on Python 3.10
    ItemAdded, ItemUpdated, ItemDone, ItemDeleted, ItemTruncated, ConversationInterrupted
]
"""Any high-level change :meth:`Conversation.apply` reports."""


class Conversation:
    """Items and their content, kept up to date from server events.

    ``audio_retention_ms`` bounds the audio kept per content part (0, the default,
    keeps none; ``audio_ms`` still counts what was received). ``audio_format`` is the
    wire format of output audio (``pcm16``, ``g711_ulaw``, ``g711_alaw``), used to turn
    byte counts into milliseconds. ``report_deltas=False``: :meth:`apply` leaves the
    :class:`ItemUpdated` of streamed deltas (text, transcript, audio, arguments) out of
    the changes it returns (for an owner that never reads them: the protocol core).
    """

    def __init__(
        self,
        audio_retention_ms: int = 0,
        *,
        audio_format: str = "pcm16",
        report_deltas: bool = True,
    ) -> None:
        if audio_retention_ms < 0:
            raise ValueError("audio_retention_ms must be >= 0")
        if audio_format not in BYTES_PER_MS:
            raise ValueError(f"unknown audio format {audio_format!r}")
        self.audio_retention_ms = audio_retention_ms
        self._report = report_deltas
        self._bytes_per_ms = BYTES_PER_MS[audio_format]
        retain = int(audio_retention_ms * self._bytes_per_ms)
        self._retain = retain - retain % 2
        self._items: dict[str, Item] = {}
        self._followers: dict[str, list[str]] = {}
        self._head: Item | None = None
        self._tail: Item | None = None
        self._generating: Item | None = None
        self._handlers: dict[str, Callable[[Any], list[Change]]] = {}
        h = self._handlers
        for t in ("conversation.item.created", "conversation.item.added"):
            h[t] = self._on_item_added
        h["conversation.item.done"] = self._on_item_done
        h["conversation.item.retrieved"] = self._on_item_retrieved
        h["response.output_item.added"] = self._on_output_item_added
        h["response.output_item.done"] = self._on_output_item_done
        h["response.content_part.added"] = self._on_part
        h["response.content_part.done"] = self._on_part
        for t in ("response.text.delta", "response.output_text.delta"):
            h[t] = self._on_text_delta
        for t in ("response.text.done", "response.output_text.done"):
            h[t] = self._on_text_done
        for t in ("response.audio_transcript.delta", "response.output_audio_transcript.delta"):
            h[t] = self._on_transcript_delta
        for t in ("response.audio_transcript.done", "response.output_audio_transcript.done"):
            h[t] = self._on_transcript_done
        for t in ("response.audio.delta", "response.output_audio.delta"):
            h[t] = self._on_audio_delta
        h["response.function_call_arguments.delta"] = self._on_arguments_delta
        h["response.function_call_arguments.done"] = self._on_arguments_done
        p = "conversation.item.input_audio_transcription."
        h[p + "delta"] = self._on_input_transcript_delta
        h[p + "completed"] = self._on_input_transcript_completed
        h[p + "failed"] = self._on_input_transcript_failed
        h["conversation.item.truncated"] = self._on_truncated
        h["conversation.item.deleted"] = self._on_deleted
        h["input_audio_buffer.speech_started"] = self._on_speech_started
        h["response.done"] = self._on_response_done

    # -- reading -----------------------------------------------------------------

    @property
    def items(self) -> list[Item]:
        """The items in conversation order (a new list)."""
        out = []
        node = self._head
        while node is not None:
            out.append(node)
            node = node._next
        return out

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __getitem__(self, item_id: str) -> Item:
        return self._items[item_id]

    def get(self, item_id: str) -> Item | None:
        """The item with this id, or ``None``."""
        return self._items.get(item_id)

    @property
    def generating(self) -> Item | None:
        """The assistant message the server is generating right now, if any."""
        return self._generating

    # -- feeding -----------------------------------------------------------------

    def apply(self, event: ServerEvent) -> list[Change]:
        """Update the state from one server event; returns the changes it caused.

        Events that do not concern the conversation return ``[]``, and so do events the
        parser could not type (:class:`~realtime.events.UnknownServerEvent`, e.g. the
        other dialect's name for an event): their fields were never validated.
        """
        handler = self._handlers.get(event.type)
        if handler is None or type(event) in _UNTYPED:
            return []
        return handler(event)

    def replay_events(self, dialect: Literal["beta", "ga"] = "ga") -> list[ClientEvent]:
        """``conversation.item.create`` events re-creating the history as text, in order.

        For re-injecting a conversation into a fresh session (after a reconnect):
        messages become text (a part's text, else its transcript; empty messages are
        skipped), function calls and their outputs are re-created as they were. Item
        ids are not reused (the new session assigns its own); audio is not replayed.
        """
        events: list[ClientEvent] = []
        cls = BetaConversationItemCreateEvent if dialect == "beta" else ConversationItemCreateEvent
        assistant_type = "text" if dialect == "beta" else "output_text"
        for item in self.items:
            wire: dict[str, Any]
            if item.type == "message":
                text = item.text
                if not text:
                    continue
                role = item.role or "user"
                part_type = assistant_type if role == "assistant" else "input_text"
                wire = {
                    "type": "message",
                    "role": role,
                    "content": [{"type": part_type, "text": text}],
                }
            elif item.type == "function_call" and item.call_id and item.name:
                wire = {
                    "type": "function_call",
                    "call_id": item.call_id,
                    "name": item.name,
                    "arguments": item.arguments,
                }
            elif item.type == "function_call_output" and item.call_id and item.output is not None:
                wire = {
                    "type": "function_call_output",
                    "call_id": item.call_id,
                    "output": item.output,
                }
            else:
                continue
            events.append(cls(item=wire))
        return events

    def mark_incomplete(self, response_id: str) -> list[Item]:
        """Mark the unfinished items of ``response_id`` ``incomplete`` (a lost response).

        Returns the items marked; they count as done from now on.
        """
        marked: list[Item] = []
        for item in self._items.values():
            if item.response_id == response_id and not item.done:
                item.status = "incomplete"
                item.done = True
                marked.append(item)
        gen = self._generating
        if gen is not None and gen.response_id == response_id:
            self._generating = None
        return marked

    def rename(self, old_id: str, new_id: str) -> None:
        """Give item ``old_id`` the id ``new_id`` (a server re-created it under its own id).

        The item keeps its place and content; references to it as a predecessor follow.
        Unknown ``old_id`` or an existing ``new_id``: nothing happens.
        """
        item = self._items.get(old_id)
        if item is None or new_id in self._items:
            return
        del self._items[old_id]
        item.id = new_id
        self._items[new_id] = item
        followers = self._followers.pop(old_id, None)
        if followers is not None:
            self._followers[new_id] = followers
        for other in self._items.values():
            if other.previous_item_id == old_id:
                other.previous_item_id = new_id
        prev = item.previous_item_id
        if prev is not None:
            siblings = self._followers.get(prev)
            if siblings and old_id in siblings:
                siblings[siblings.index(old_id)] = new_id

    def clear(self) -> None:
        """Forget every item (for example after reconnecting to a fresh session)."""
        self._items.clear()
        self._followers.clear()
        self._head = self._tail = None
        self._generating = None

    # -- item lifecycle ----------------------------------------------------------

    def _new_item(self, item_id: str, type: str | None) -> Item:
        item = Item(item_id, type, self._bytes_per_ms, self._retain)
        self._items[item_id] = item
        self._append(item)
        return item

    def _ensure(self, item_id: str, type: str, role: str | None, changes: list[Change]) -> Item:
        """The item ``item_id``; a placeholder is added at the end when it is unknown."""
        item = self._items.get(item_id)
        if item is None:
            item = self._new_item(item_id, type)
            item.role = role
            changes.append(ItemAdded(item))
        return item

    def _merge(self, item: Item, wire: _Wire, final: bool) -> None:
        """Copy a wire item's fields; ``final`` ones overwrite accumulated text."""
        if wire.type is not None:
            item.type = wire.type
        if wire.role is not None:
            item.role = wire.role
        if wire.status is not None:
            item.status = wire.status
        if wire.call_id is not None:
            item.call_id = wire.call_id
        if wire.name is not None:
            item.name = wire.name
        if wire.output is not None:
            item.output = wire.output
        arguments = wire.arguments
        if arguments and (final or not item._arguments):
            item._arguments[:] = [arguments]
        for index, wpart in enumerate(wire.content):
            part = item.part(index, wpart.type)
            self._merge_part(part, wpart, final)
            audio = wpart.audio
            if audio and part.audio_bytes_received == 0 and not part.truncated:
                part._add_audio(audio)

    @staticmethod
    def _merge_part(part: ContentPart, wire: WireContentPart, final: bool) -> None:
        text = wire.text
        if text and (final or not part._text):
            part._text[:] = [text]
        transcript = wire.transcript
        if transcript and (final or not part._transcript) and not part.truncated:
            part._transcript[:] = [transcript]

    def _upsert(
        self, item_model: object, previous_item_id: str | None, has_previous: bool, final: bool
    ) -> tuple[Item | None, list[Change]]:
        wire = _wire(item_model)
        item_id = wire.id
        if not item_id:
            return None, []
        changes: list[Change] = []
        item = self._items.get(item_id)
        if item is None:
            item = self._new_item(item_id, wire.type)
            self._merge(item, wire, final)
            if has_previous:
                self._place(item, previous_item_id, changes, report=False)
            changes.insert(0, ItemAdded(item, previous_item_id))
        else:
            self._merge(item, wire, final)
            if has_previous and previous_item_id != item.previous_item_id:
                self._place(item, previous_item_id, changes, report=True)
        self._settle(item, changes)
        return item, changes

    def _finish(self, item: Item, changes: list[Change]) -> None:
        if not item.done:
            item.done = True
            changes.append(ItemDone(item))
        if self._generating is item:
            self._generating = None

    def _on_item_added(self, event: _ItemAddedEvent) -> list[Change]:
        item, changes = self._upsert(event.item, event.previous_item_id, True, final=False)
        if item is not None and item.status in _FINAL_STATUSES and item.role != "assistant":
            self._finish(item, changes)
        return changes

    def _on_item_done(self, event: ConversationItemDoneEvent) -> list[Change]:
        item, changes = self._upsert(event.item, event.previous_item_id, True, final=True)
        if item is not None:
            self._finish(item, changes)
        return changes

    def _on_item_retrieved(
        self, event: ConversationItemRetrievedEvent | BetaConversationItemRetrievedEvent
    ) -> list[Change]:
        return self._upsert(event.item, None, False, final=True)[1]

    def _on_output_item_added(self, event: _OutputItemEvent) -> list[Change]:
        item, changes = self._upsert(event.item, None, False, final=False)
        if item is not None:
            item.response_id = event.response_id
            if item.type == "message" and item.role in (None, "assistant"):
                self._generating = item
        return changes

    def _on_output_item_done(self, event: _OutputItemEvent) -> list[Change]:
        item, changes = self._upsert(event.item, None, False, final=True)
        if item is not None:
            if item.response_id is None:
                item.response_id = event.response_id
            self._finish(item, changes)
        return changes

    def _on_response_done(self, event: ResponseDoneEvent | BetaResponseDoneEvent) -> list[Change]:
        response = event.response
        changes: list[Change] = []
        for wire in response.output or ():
            item, more = self._upsert(wire, None, False, final=True)
            changes.extend(more)
            if item is not None:
                self._finish(item, changes)
        gen = self._generating
        if gen is not None and gen.response_id == response.id:
            self._generating = None
        return changes

    # -- content -----------------------------------------------------------------

    def _output_part(self, event: _OutputRef, changes: list[Change]) -> tuple[Item, ContentPart]:
        item = self._items.get(event.item_id)
        if item is None:
            item = self._ensure(event.item_id, "message", "assistant", changes)
        index = event.content_index  # every output content event carries it
        content = item.content
        if index < len(content):
            return item, content[index]
        return item, item.part(index)

    def _on_part(
        self, event: ResponseContentPartAddedEvent | ResponseContentPartDoneEvent
    ) -> list[Change]:
        changes: list[Change] = []
        _, part = self._output_part(event, changes)
        wire = event.part
        if part.type is None:
            part.type = wire.type
        self._merge_part(part, wire, event.type.endswith(".done"))
        return changes

    def _on_text_delta(
        self, event: ResponseOutputTextDeltaEvent | ResponseTextDeltaEvent
    ) -> list[Change]:
        changes: list[Change] = []
        item, part = self._output_part(event, changes)
        delta = event.delta
        part._text.append(delta)
        if self._report:
            changes.append(ItemUpdated(item, "text", delta, part.index))
        return changes

    def _on_text_done(
        self, event: ResponseOutputTextDoneEvent | ResponseTextDoneEvent
    ) -> list[Change]:
        changes: list[Change] = []
        _, part = self._output_part(event, changes)
        part._text[:] = [event.text]
        return changes

    def _on_transcript_delta(
        self, event: ResponseOutputAudioTranscriptDeltaEvent | ResponseAudioTranscriptDeltaEvent
    ) -> list[Change]:
        changes: list[Change] = []
        item, part = self._output_part(event, changes)
        delta = event.delta
        part._transcript.append(delta)
        if self._report:
            changes.append(ItemUpdated(item, "transcript", delta, part.index))
        return changes

    def _on_transcript_done(
        self, event: ResponseOutputAudioTranscriptDoneEvent | ResponseAudioTranscriptDoneEvent
    ) -> list[Change]:
        changes: list[Change] = []
        _, part = self._output_part(event, changes)
        if not part.truncated:
            part._transcript[:] = [event.transcript]
        return changes

    def _on_audio_delta(
        self, event: ResponseOutputAudioDeltaEvent | ResponseAudioDeltaEvent
    ) -> list[Change]:
        changes: list[Change] = []
        item, part = self._output_part(event, changes)
        delta = event.delta
        part._add_audio(delta)
        if self._report:
            changes.append(ItemUpdated(item, "audio", delta, part.index))
        return changes

    def _on_arguments_delta(self, event: ResponseFunctionCallArgumentsDeltaEvent) -> list[Change]:
        changes: list[Change] = []
        item = self._ensure(event.item_id, "function_call", None, changes)
        if item.call_id is None:
            item.call_id = event.call_id
        delta = event.delta
        item._arguments.append(delta)
        if self._report:
            changes.append(ItemUpdated(item, "arguments", delta))
        return changes

    def _on_arguments_done(
        self,
        event: ResponseFunctionCallArgumentsDoneEvent | BetaResponseFunctionCallArgumentsDoneEvent,
    ) -> list[Change]:
        changes: list[Change] = []
        item = self._ensure(event.item_id, "function_call", None, changes)
        item.call_id = event.call_id
        if isinstance(event, ResponseFunctionCallArgumentsDoneEvent):
            item.name = event.name  # the beta event has no name
        item._arguments[:] = [event.arguments]
        return changes

    def _input_part(
        self, event: _InputTranscriptEvent, changes: list[Change]
    ) -> tuple[Item, ContentPart]:
        item = self._ensure(event.item_id, "message", "user", changes)
        return item, item.part(event.content_index or 0, "input_audio")

    def _on_input_transcript_delta(
        self, event: ConversationItemInputAudioTranscriptionDeltaEvent
    ) -> list[Change]:
        changes: list[Change] = []
        item, part = self._input_part(event, changes)
        delta = event.delta or ""
        part._transcript.append(delta)
        part.transcription_status = "in_progress"
        changes.append(ItemUpdated(item, "input_transcript", delta, part.index))
        return changes

    def _on_input_transcript_completed(
        self,
        event: ConversationItemInputAudioTranscriptionCompletedEvent
        | BetaConversationItemInputAudioTranscriptionCompletedEvent,
    ) -> list[Change]:
        changes: list[Change] = []
        item, part = self._input_part(event, changes)
        transcript = event.transcript
        part._transcript[:] = [transcript]
        part.transcription_status = "completed"
        changes.append(ItemUpdated(item, "input_transcript_completed", transcript, part.index))
        return changes

    def _on_input_transcript_failed(
        self, event: ConversationItemInputAudioTranscriptionFailedEvent
    ) -> list[Change]:
        changes: list[Change] = []
        item, part = self._input_part(event, changes)
        error = event.error
        part.transcription_status = "failed"
        part.transcription_error = error
        message = error.message or "transcription failed"
        changes.append(ItemUpdated(item, "input_transcript_failed", message, part.index))
        return changes

    def _on_truncated(self, event: ConversationItemTruncatedEvent) -> list[Change]:
        item = self._items.get(event.item_id)
        if item is None:
            return []
        index, end = event.content_index, event.audio_end_ms
        item.part(index)._truncate(end)
        return [ItemTruncated(item, index, end)]

    def _on_deleted(self, event: ConversationItemDeletedEvent) -> list[Change]:
        item = self._items.pop(event.item_id, None)
        if item is None:
            return [ItemDeleted(event.item_id)]
        self._unlink(item)
        prev = item.previous_item_id
        if prev is not None:
            followers = self._followers.get(prev)
            if followers and item.id in followers:
                followers.remove(item.id)
                if not followers:
                    del self._followers[prev]
        self._followers.pop(item.id, None)
        if self._generating is item:
            self._generating = None
        return [ItemDeleted(item.id, item)]

    def _on_speech_started(self, event: InputAudioBufferSpeechStartedEvent) -> list[Change]:
        gen = self._generating
        if gen is None or gen.done:
            return []
        return [ConversationInterrupted(gen, event.audio_start_ms, event.item_id)]

    # -- ordering (a doubly linked list kept in previous_item_id order) ----------

    def _append(self, item: Item) -> None:
        item._prev = self._tail
        item._next = None
        if self._tail is None:
            self._head = item
        else:
            self._tail._next = item
        self._tail = item

    def _unlink(self, item: Item) -> None:
        prev, nxt = item._prev, item._next
        if prev is None:
            if self._head is item:
                self._head = nxt
        else:
            prev._next = nxt
        if nxt is None:
            if self._tail is item:
                self._tail = prev
        else:
            nxt._prev = prev
        item._prev = item._next = None

    def _insert_after(self, item: Item, anchor: Item) -> None:
        nxt = anchor._next
        item._prev = anchor
        item._next = nxt
        anchor._next = item
        if nxt is None:
            self._tail = item
        else:
            nxt._prev = item

    def _insert_first(self, item: Item) -> None:
        item._prev = None
        item._next = self._head
        if self._head is None:
            self._tail = item
        else:
            self._head._prev = item
        self._head = item

    def _place(
        self, item: Item, previous_item_id: str | None, changes: list[Change], *, report: bool
    ) -> None:
        """Record the item's predecessor and move it after it when that one is known.

        ``None`` as predecessor puts the item first only when it is alone or was just
        added; an unknown predecessor leaves it where it is until that item arrives.
        """
        old = item.previous_item_id
        if old is not None and old != previous_item_id:
            followers = self._followers.get(old)
            if followers and item.id in followers:
                followers.remove(item.id)
        item.previous_item_id = previous_item_id
        if previous_item_id is None:
            return
        self._followers.setdefault(previous_item_id, []).append(item.id)
        anchor = self._items.get(previous_item_id)
        if anchor is not None and item._prev is not anchor and anchor is not item:
            self._unlink(item)
            self._insert_after(item, anchor)
            if report:
                changes.append(ItemUpdated(item, "moved", previous_item_id))

    def _settle(self, item: Item, changes: list[Change]) -> None:
        """Move the items waiting for ``item`` (their predecessor) right after it."""
        stack = [item]
        seen = {item.id}
        while stack:
            anchor = stack.pop()
            for follower_id in self._followers.get(anchor.id, ()):
                follower = self._items.get(follower_id)
                if follower is None or follower_id in seen:
                    continue
                seen.add(follower_id)
                if follower._prev is not anchor:
                    self._unlink(follower)
                    self._insert_after(follower, anchor)
                    changes.append(ItemUpdated(follower, "moved", anchor.id))
                    stack.append(follower)
