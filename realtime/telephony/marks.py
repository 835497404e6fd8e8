"""What the caller has heard, from mark acknowledgements (pure; the playback tracker).

A telephony provider plays the reply audio from its own buffer, so the application learns
what the caller heard only from ``mark`` messages: the bridge sends a mark after each chunk
of reply audio and the provider echoes it once the audio before it has been played.

:class:`MarkTracker` keeps one timeline of everything sent to the phone (milliseconds of
audio, across items). Each acknowledged mark pins the timeline position played at the
moment of the acknowledgement; between acknowledgements playback advances in real time
("the audio since"), never beyond what was sent. A chunk sent while nothing is queued at
the provider restarts the clock at that moment (the provider plays it at once).

It is a :class:`audio.playback.PlaybackTracker`: give it to the session as ``tracker=`` and
the session's barge-in logic (:mod:`realtime.interruption`) asks :meth:`interrupt` for the
heard position on ``speech_started``, truncates the item there and cancels as needed.
:meth:`interrupt` drops the pending marks (the provider echoes them when it clears its
buffer: those echoes are recognised and ignored), refuses further audio of the item
(:meth:`accepts`) and calls the ``on_clear`` listener so the bridge sends ``clear``.

No clock is read except through ``clock`` (``time.monotonic`` by default; tests pass
their own). Bounds: at most ``max_pending`` marks outstanding (beyond that, audio goes
out without marks and the position is extrapolated), ``_FORGET`` interrupted items and
cleared mark names remembered.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from audio.playback import HeardPosition

__all__ = ["MarkTracker", "SentAudio"]

_FORGET = 256


@dataclass(slots=True)
class SentAudio:
    """One item's audio on the timeline: where it starts and how much was sent."""

    item_id: str
    content_index: int
    start_ms: float
    sent_ms: float = 0.0


class MarkTracker:
    """Heard position of reply audio from acknowledged marks (see the module docstring)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_pending: int = 4096,
        on_clear: Callable[[], None] | None = None,
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.clock = clock
        self.max_pending = max_pending
        self.on_clear = on_clear
        self._sent_total = 0.0  # ms of audio sent on the timeline
        self._pending: deque[tuple[str, float]] = deque()  # (mark name, timeline position)
        self._anchor_ms = 0.0  # timeline position known played at _anchor_at
        self._anchor_at: float | None = None  # None: nothing is playing
        self._items: OrderedDict[tuple[str, int], SentAudio] = OrderedDict()
        self._current: SentAudio | None = None
        self._interrupted: OrderedDict[str, None] = OrderedDict()
        self._cleared: OrderedDict[str, None] = OrderedDict()
        self._seq = 0
        self.marks_sent = 0
        self.marks_acknowledged = 0
        self.clears = 0

    # -- feeding -----------------------------------------------------------------------

    def accepts(self, item_id: str) -> bool:
        """False for an item that was interrupted: its late audio must not be sent."""
        return item_id not in self._interrupted

    def sent(self, item_id: str, content_index: int, ms: float) -> str | None:
        """Account for ``ms`` of this item's audio just sent; returns the mark name to send.

        ``None`` when too many marks are pending (the audio is still accounted for).
        """
        now = self.clock()
        if self._anchor_at is None or self._played(now) >= self._sent_total:
            # the provider's buffer is empty: this chunk starts playing now
            self._anchor_ms, self._anchor_at = self._sent_total, now
        key = (item_id, content_index)
        cur = self._current
        if cur is None or (cur.item_id, cur.content_index) != key:
            cur = self._items.get(key)
            if cur is None:
                cur = self._items[key] = SentAudio(item_id, content_index, self._sent_total)
                if len(self._items) > _FORGET:
                    self._items.popitem(last=False)
            self._current = cur
        cur.sent_ms += ms
        self._sent_total += ms
        if len(self._pending) >= self.max_pending:
            return None
        self._seq += 1
        name = f"{item_id}.{self._seq}"
        self._pending.append((name, self._sent_total))
        self.marks_sent += 1
        return name

    def acknowledged(self, name: str) -> bool:
        """A ``mark`` came back; returns False when it is unknown or was cleared."""
        if name in self._cleared:
            del self._cleared[name]
            return False
        pending = self._pending
        while pending:
            pname, position = pending.popleft()
            if pname == name:
                self._anchor_ms, self._anchor_at = position, self.clock()
                self.marks_acknowledged += 1
                return True
        return False

    # -- PlaybackTracker -----------------------------------------------------------------

    def _played(self, now: float) -> float:
        """Timeline position played by ``now``."""
        if self._anchor_at is None:
            return self._sent_total
        return min(self._sent_total, self._anchor_ms + (now - self._anchor_at) * 1000.0)

    @property
    def pending_ms(self) -> float:
        """Milliseconds sent but not yet played (the provider's buffer, estimated)."""
        return self._sent_total - self._played(self.clock())

    @property
    def pending_marks(self) -> int:
        """Marks sent and not yet acknowledged."""
        return len(self._pending)

    def played_ms(self, item_id: str, content_index: int = 0) -> float:
        """Milliseconds of this item's audio the caller has heard."""
        item = self._items.get((item_id, content_index))
        if item is None:
            return 0.0
        heard = self._played(self.clock()) - item.start_ms
        return max(0.0, min(item.sent_ms, heard))

    def interrupt(self) -> HeardPosition | None:
        """Barge-in: the heard position of the current item, then clear everything queued.

        Returns ``None`` when no item's audio was sent since the last interruption.
        """
        cur = self._current
        position = None
        if cur is not None:
            position = HeardPosition(
                cur.item_id, cur.content_index, self.played_ms(cur.item_id, cur.content_index)
            )
            cur.sent_ms = position.played_ms  # the rest was never heard: it is gone
            self._interrupted[cur.item_id] = None
            if len(self._interrupted) > _FORGET:
                self._interrupted.popitem(last=False)
        for name, _ in self._pending:
            self._cleared[name] = None
        while len(self._cleared) > self.max_pending + _FORGET:
            self._cleared.popitem(last=False)
        self._pending.clear()
        # nothing is queued at the provider any more: the timeline restarts from here
        self._sent_total = self._played(self.clock())
        self._anchor_at = None
        self._current = None
        self.clears += 1
        if self.on_clear is not None:
            self.on_clear()
        return position

    def reset(self) -> None:
        """Forget everything (a new stream)."""
        self._sent_total = 0.0
        self._pending.clear()
        self._anchor_ms, self._anchor_at = 0.0, None
        self._items.clear()
        self._current = None
        self._interrupted.clear()
        self._cleared.clear()
