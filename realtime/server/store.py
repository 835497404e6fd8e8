"""The local server's conversation: ordered items, their audio, truncation and deletion.

Items are kept GA-shaped (``input_text``, ``input_audio``, ``output_text``,
``output_audio`` parts). Audio is kept per content part as PCM16 24 kHz so that
``conversation.item.truncate`` really cuts it, and the transcript with it: every spoken
sentence records the audio offset where it starts, so a cut keeps the words heard.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .exceptions import StoreError

__all__ = ["ConversationStore", "StoreError", "StoredItem"]

BYTES_PER_MS = 48  # PCM16 mono 24 kHz


@dataclass
class StoredItem:
    """One item: its wire fields (GA-shaped), audio per content index, spoken sentence marks."""

    data: dict[str, Any]
    audio: dict[int, bytearray] = field(default_factory=dict)
    # content_index -> [(audio byte offset where the sentence starts, sentence text)]
    marks: dict[int, list[tuple[int, str]]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The item id."""
        return str(self.data["id"])

    def audio_ms(self, content_index: int) -> float:
        """Milliseconds of audio stored for a content part."""
        return len(self.audio.get(content_index, b"")) / BYTES_PER_MS


class ConversationStore:
    """Ordered conversation items with lookup by id."""

    def __init__(self) -> None:
        self._order: list[str] = []
        self._items: dict[str, StoredItem] = {}

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __iter__(self) -> Iterator[StoredItem]:
        return (self._items[i] for i in self._order)

    def get(self, item_id: str) -> StoredItem:
        """The item, or :class:`StoreError` (``item_not_found``)."""
        try:
            return self._items[item_id]
        except KeyError:
            raise StoreError(
                f"Item with item_id '{item_id}' not found.", code="item_not_found", param="item_id"
            ) from None

    @property
    def last_id(self) -> str | None:
        """The id of the last item, ``None`` when empty."""
        return self._order[-1] if self._order else None

    def previous_id(self, item_id: str) -> str | None:
        """The id of the item before this one (``None`` for the first)."""
        idx = self._order.index(item_id)
        return self._order[idx - 1] if idx > 0 else None

    def insert(self, data: dict[str, Any], previous_item_id: str | None = None) -> StoredItem:
        """Insert after ``previous_item_id`` (``"root"`` = first; ``None`` = at the end)."""
        item_id = str(data["id"])
        if item_id in self._items:
            raise StoreError(
                f"Item with id '{item_id}' already exists.", code="item_id_exists", param="item.id"
            )
        stored = StoredItem(data=data)
        if previous_item_id is None:
            self._order.append(item_id)
        elif previous_item_id == "root":
            self._order.insert(0, item_id)
        else:
            if previous_item_id not in self._items:
                raise StoreError(
                    f"Previous item with id '{previous_item_id}' not found.",
                    code="previous_item_not_found",
                    param="previous_item_id",
                )
            self._order.insert(self._order.index(previous_item_id) + 1, item_id)
        self._items[item_id] = stored
        return stored

    def delete(self, item_id: str) -> None:
        """Remove an item."""
        self.get(item_id)
        self._order.remove(item_id)
        del self._items[item_id]

    def truncate(self, item_id: str, content_index: int, audio_end_ms: int) -> None:
        """Cut an assistant audio part at ``audio_end_ms``; the transcript keeps the words heard.

        Raises :class:`StoreError` for a non-assistant item, a missing audio part, or a cut
        beyond the audio that exists (the service's rules).
        """
        item = self.get(item_id)
        if item.data.get("type") != "message" or item.data.get("role") != "assistant":
            raise StoreError(
                "Only assistant messages can be truncated.",
                code="invalid_item_type",
                param="item_id",
            )
        content = item.data.get("content") or []
        if content_index < 0 or content_index >= len(content) or content_index not in item.audio:
            raise StoreError(
                f"Content index {content_index} has no audio to truncate.",
                code="invalid_content_index",
                param="content_index",
            )
        if audio_end_ms < 0:
            raise StoreError(
                "audio_end_ms must be >= 0.", code="invalid_value", param="audio_end_ms"
            )
        have = item.audio_ms(content_index)
        if audio_end_ms > have + 0.5:
            raise StoreError(
                f"Audio content of {have:.0f}ms is already shorter than {audio_end_ms}ms",
                code="invalid_value",
                param="audio_end_ms",
            )
        cut = audio_end_ms * BYTES_PER_MS
        total = len(item.audio[content_index])
        del item.audio[content_index][cut:]
        marks = item.marks.get(content_index, [])
        content[content_index]["transcript"] = _heard_words(marks, cut, total)
        item.marks[content_index] = [m for m in marks if m[0] < cut]

    def items(self) -> list[dict[str, Any]]:
        """The items' wire data in order."""
        return [self._items[i].data for i in self._order]

    def find_call(self, call_id: str) -> Mapping[str, Any] | None:
        """The function_call item with this ``call_id``."""
        for item in self:
            if item.data.get("type") == "function_call" and item.data.get("call_id") == call_id:
                return item.data
        return None


def _heard_words(marks: list[tuple[int, str]], cut: int, total: int) -> str:
    """The transcript of the sentences heard before byte offset ``cut``.

    A sentence cut part-way keeps the share of its words proportional to the audio heard
    of it (the audio is evenly paced within a sentence).
    """
    words: list[str] = []
    for n, (start, sentence) in enumerate(marks):
        if start >= cut:
            break
        end = marks[n + 1][0] if n + 1 < len(marks) else total
        if end <= cut:
            words.append(sentence)
            continue
        parts = sentence.split()
        share = (cut - start) / max(1, end - start)
        keep = int(len(parts) * share)
        if keep:
            words.append(" ".join(parts[:keep]))
        break
    return " ".join(w.strip() for w in words if w.strip())
