"""Lock-free structures shared between an audio callback thread and the event loop.

- :class:`SampleRing`: a preallocated single-producer/single-consumer ring of audio frames.
  The producer calls :meth:`~SampleRing.write`, the consumer :meth:`~SampleRing.read_into`
  (which copies into an array the caller owns: no allocation on the consumer side). Positions
  are absolute frame counters that only grow; each side writes only its own counter, and
  CPython makes a single attribute assignment atomic, so no lock is needed. Frames that do
  not fit are dropped and counted, never blocked on.
- :class:`BlockLog`: a preallocated record, written by an output callback, of which ring
  frames each block played and when that block reaches the DAC.
- :class:`SegmentTags`: which item (``item_id``, ``content_index``) and which offset inside it
  each range of ring frames belongs to, and how far into each item the listener has heard.

Together they let a speaker answer "how much of this item has been heard" from sample
counters and PortAudio's timing information alone.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from .exceptions import AudioFormatError

__all__ = ["BlockLog", "Segment", "SampleRing", "SegmentTags"]


class SampleRing:
    """A fixed-capacity ring of ``[frames, channels]`` samples for one producer and one consumer.

    ``write_index`` and ``read_index`` count frames since creation; ``available`` frames
    lie between them. Only the producer may call :meth:`write`; only the consumer may call
    :meth:`read_into`, :meth:`skip_to` and :meth:`discard`.
    """

    def __init__(self, capacity: int, channels: int = 1, dtype: npt.DTypeLike = np.float32) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity <= 0:
            raise AudioFormatError(f"ring capacity must be a positive int, got {capacity!r}")
        if isinstance(channels, bool) or not isinstance(channels, int) or channels <= 0:
            raise AudioFormatError(f"channels must be a positive int, got {channels!r}")
        self.capacity = capacity
        self.channels = channels
        self.buffer: npt.NDArray[Any] = np.zeros((capacity, channels), dtype=dtype)
        self.write_index = 0
        self.read_index = 0
        self.overflows = 0
        """How many :meth:`write` calls could not store all their frames."""
        self.dropped_frames = 0
        """How many frames were dropped because the ring was full."""

    @property
    def available(self) -> int:
        """Frames written and not yet read."""
        return self.write_index - self.read_index

    @property
    def free(self) -> int:
        """Frames that can be written without overflow."""
        return self.capacity - (self.write_index - self.read_index)

    def write(self, data: npt.NDArray[Any]) -> int:
        """Producer: copy *data* (``[frames, channels]``, or 1-D when mono) into the ring.

        Returns the number of frames stored. When the ring is full the newest frames that do
        not fit are dropped and counted (:attr:`overflows`, :attr:`dropped_frames`); this never
        blocks and never allocates.
        """
        if data.ndim == 1:
            if self.channels != 1:
                raise AudioFormatError(f"ring has {self.channels} channels; got 1-D samples")
            n_in = int(data.shape[0])
        elif data.ndim == 2 and data.shape[1] == self.channels:
            n_in = int(data.shape[0])
        else:
            raise AudioFormatError(
                f"samples must be [frames, {self.channels}], got shape {data.shape}"
            )
        w = self.write_index
        n = min(n_in, self.capacity - (w - self.read_index))
        if n < n_in:
            self.overflows += 1
            self.dropped_frames += n_in - n
        if n <= 0:
            return 0
        start = w % self.capacity
        first = min(n, self.capacity - start)
        buf = self.buffer
        if data.ndim == 1:
            buf[start : start + first, 0] = data[:first]
            if n > first:
                buf[: n - first, 0] = data[first:n]
        else:
            buf[start : start + first] = data[:first]
            if n > first:
                buf[: n - first] = data[first:n]
        self.write_index = w + n  # publish only after the copy
        return n

    def read_into(self, out: npt.NDArray[Any], limit: int = -1) -> int:
        """Consumer: copy up to ``len(out)`` (and at most *limit*, if >= 0) frames into *out*.

        *out* is ``[frames, channels]`` with the ring's channel count. Returns the number of
        frames copied to ``out[:n]``; the rest of *out* is left untouched. Never allocates a
        sample buffer.
        """
        r = self.read_index
        n = min(int(out.shape[0]), self.write_index - r)
        if limit >= 0 and limit < n:
            n = limit
        if n <= 0:
            return 0
        start = r % self.capacity
        first = min(n, self.capacity - start)
        buf = self.buffer
        out[:first] = buf[start : start + first]
        if n > first:
            out[first:n] = buf[: n - first]
        self.read_index = r + n  # publish only after the copy
        return n

    def skip_to(self, index: int) -> int:
        """Consumer: drop frames up to absolute *index* (clamped to what was written).

        Returns the number of frames dropped.
        """
        r = self.read_index
        target = min(index, self.write_index)
        if target <= r:
            return 0
        self.read_index = target
        return target - r

    def discard(self) -> int:
        """Consumer: drop everything written so far; returns the number of frames dropped."""
        return self.skip_to(self.write_index)


class BlockLog:
    """What each output block played and when it reaches the listener.

    The audio callback calls :meth:`record` once per block with the ring index of the first
    frame it took from the ring, how many ring frames it played, and the block's DAC time
    (PortAudio's ``outputBufferDacTime``). Storage is preallocated numpy arrays: storing a
    value copies it into the array, so recording neither allocates nor keeps Python objects
    alive. ``count`` is written last, so a reader on another thread sees only complete
    records. The log keeps the last ``size`` blocks.
    """

    def __init__(self, size: int = 8192) -> None:
        if size <= 0:
            raise AudioFormatError(f"block log size must be positive, got {size}")
        self.size = size
        self.ring_start: npt.NDArray[np.int64] = np.zeros(size, dtype=np.int64)
        self.frames: npt.NDArray[np.int64] = np.zeros(size, dtype=np.int64)
        self.dac_time: npt.NDArray[np.float64] = np.zeros(size, dtype=np.float64)
        self.count = 0

    def record(self, ring_start: int, frames: int, dac_time: float) -> None:
        """Callback: append one block record (overwrites the oldest when full)."""
        i = self.count % self.size
        self.ring_start[i] = ring_start
        self.frames[i] = frames
        self.dac_time[i] = dac_time
        self.count += 1

    def last_end(self) -> int:
        """The ring index just after the frames of the newest block (0 before any block)."""
        c = self.count
        if c == 0:
            return 0
        i = (c - 1) % self.size
        return int(self.ring_start[i] + self.frames[i])


class Segment(NamedTuple):
    """A run of ring frames belonging to one item: ``[start, start + length)``.

    ``offset`` is the position, in frames, of the run's first frame inside the item's audio.
    """

    start: int
    length: int
    item_id: str
    content_index: int
    offset: int


class SegmentTags:
    """Maps ring frame ranges to ``(item_id, content_index, offset)`` and tracks heard positions.

    Used from the producer side only (not the audio callback): the producer calls :meth:`add`
    for each run of frames it writes; the heard-accounting code calls :meth:`heard` for each
    range of ring frames the listener has heard, which moves the item's heard position to
    the end of that range. Positions are in frames at the ring's rate.
    """

    def __init__(self, max_items: int = 256) -> None:
        self._segments: deque[Segment] = deque()
        self._positions: OrderedDict[tuple[str, int], int] = OrderedDict()
        self._max_items = max_items

    def __len__(self) -> int:
        return len(self._segments)

    def add(self, start: int, length: int, item_id: str, content_index: int, offset: int) -> None:
        """Tag ring frames ``[start, start + length)`` as the item's frames from *offset* on.

        A run continuing the previous one (same item, adjacent in the ring and in the item) is
        merged into it.
        """
        if length <= 0:
            return
        if self._segments:
            last = self._segments[-1]
            if (
                last.item_id == item_id
                and last.content_index == content_index
                and last.start + last.length == start
                and last.offset + last.length == offset
            ):
                self._segments[-1] = last._replace(length=last.length + length)
                return
        self._segments.append(Segment(start, length, item_id, content_index, offset))

    def heard(self, start: int, end: int) -> None:
        """Mark ring frames ``[start, end)`` as heard; segments wholly before *start* are pruned.

        Ranges are expected in increasing order (a later range never starts before an earlier
        one); frames skipped between ranges were dropped and are never counted.
        """
        segs = self._segments
        while segs and segs[0].start + segs[0].length <= start:
            segs.popleft()
        for seg in segs:
            if seg.start >= end:
                break
            seg_end = seg.start + seg.length
            if seg_end <= start:
                continue
            upto = min(end, seg_end) - seg.start
            key = (seg.item_id, seg.content_index)
            pos = seg.offset + upto
            old = self._positions.get(key)
            if old is None or pos > old:
                self._positions[key] = pos
                self._positions.move_to_end(key)
                while len(self._positions) > self._max_items:
                    self._positions.popitem(last=False)

    def position(self, item_id: str, content_index: int = 0) -> int:
        """Frames of the item heard so far (0 for an unknown item)."""
        return self._positions.get((item_id, content_index), 0)

    def item_at(self, index: int) -> tuple[str, int, int] | None:
        """The item owning ring frame ``index - 1`` and the offset just after it.

        Returns ``(item_id, content_index, frames)``: the item position reached once every
        frame before ring index *index* has been heard; ``None`` when that frame is untagged.
        """
        frame = index - 1
        for seg in reversed(self._segments):
            if seg.start <= frame < seg.start + seg.length:
                return seg.item_id, seg.content_index, seg.offset + frame - seg.start + 1
            if seg.start + seg.length <= frame:
                return None
        return None

    def items_from(self, index: int) -> set[str]:
        """The ``item_id`` of every segment holding frames at or after ring *index*."""
        return {seg.item_id for seg in self._segments if seg.start + seg.length > index}

    def clear(self) -> None:
        """Forget all segments (heard positions are kept)."""
        self._segments.clear()
