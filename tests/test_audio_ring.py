"""Tests for audio.ring: the SPSC sample ring, the block log and the segment tags."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio.exceptions import AudioFormatError
from audio.ring import BlockLog, SampleRing, SegmentTags


def ramp(start: int, n: int, channels: int = 1) -> np.ndarray:
    """Frames whose value is their absolute index (one column per channel)."""
    col = np.arange(start, start + n, dtype=np.float32)
    return np.repeat(col[:, None], channels, axis=1)


def test_write_then_read_returns_same_frames() -> None:
    """Frames come out in the order they went in."""
    ring = SampleRing(16, 2)
    assert ring.write(ramp(0, 10, 2)) == 10
    out = np.zeros((16, 2), dtype=np.float32)
    assert ring.read_into(out) == 10
    np.testing.assert_array_equal(out[:10], ramp(0, 10, 2))
    assert ring.available == 0 and ring.free == 16


def test_wrap_around_keeps_order() -> None:
    """Writes and reads that cross the end of the buffer keep frame order."""
    ring = SampleRing(8)
    out = np.zeros((8, 1), dtype=np.float32)
    ring.write(ramp(0, 6))
    assert ring.read_into(out[:5]) == 5
    ring.write(ramp(6, 7))
    assert ring.available == 8
    assert ring.read_into(out) == 8
    np.testing.assert_array_equal(out[:, 0], np.arange(5, 13, dtype=np.float32))


def test_overflow_drops_newest_and_counts() -> None:
    """A full ring stores what fits, drops the rest and counts it."""
    ring = SampleRing(8)
    assert ring.write(ramp(0, 6)) == 6
    assert ring.write(ramp(6, 5)) == 2
    assert ring.overflows == 1 and ring.dropped_frames == 3
    assert ring.write(ramp(11, 1)) == 0
    assert ring.overflows == 2 and ring.dropped_frames == 4
    out = np.zeros((8, 1), dtype=np.float32)
    assert ring.read_into(out) == 8
    np.testing.assert_array_equal(out[:, 0], np.arange(8, dtype=np.float32))


def test_read_limit_and_untouched_tail() -> None:
    """read_into honours the limit and leaves the rest of the output untouched."""
    ring = SampleRing(8)
    ring.write(ramp(0, 6))
    out = np.full((8, 1), -1.0, dtype=np.float32)
    assert ring.read_into(out, limit=3) == 3
    np.testing.assert_array_equal(out[:, 0], [0, 1, 2, -1, -1, -1, -1, -1])
    assert ring.read_into(out, limit=0) == 0
    assert ring.read_index == 3


def test_mono_one_dimensional_write() -> None:
    """A mono ring accepts 1-D samples."""
    ring = SampleRing(4)
    ring.write(np.array([0.5, -0.5], dtype=np.float32))
    out = np.zeros((4, 1), dtype=np.float32)
    assert ring.read_into(out) == 2
    assert out[:2, 0].tolist() == [0.5, -0.5]


def test_skip_to_and_discard() -> None:
    """skip_to drops up to an index (clamped to what was written); discard drops everything."""
    ring = SampleRing(16)
    ring.write(ramp(0, 10))
    assert ring.skip_to(4) == 4
    assert ring.skip_to(2) == 0
    out = np.zeros((1, 1), dtype=np.float32)
    ring.read_into(out)
    assert out[0, 0] == 4.0
    assert ring.skip_to(100) == 5
    assert ring.read_index == 10
    ring.write(ramp(10, 3))
    assert ring.discard() == 3 and ring.available == 0


def test_int16_ring() -> None:
    """The ring can hold int16 samples."""
    ring = SampleRing(4, 1, np.int16)
    ring.write(np.array([1, -2, 3], dtype=np.int16))
    out = np.zeros((4, 1), dtype=np.int16)
    assert ring.read_into(out) == 3
    assert out[:3, 0].tolist() == [1, -2, 3]


@pytest.mark.parametrize(("capacity", "channels"), [(0, 1), (-3, 1), (4, 0), (2.5, 1), (True, 1)])
def test_bad_construction(capacity: object, channels: object) -> None:
    """A bad capacity or channel count raises AudioFormatError."""
    with pytest.raises(AudioFormatError):
        SampleRing(capacity, channels)  # type: ignore[arg-type]


def test_wrong_shape_rejected() -> None:
    """Samples with the wrong channel count raise AudioFormatError."""
    ring = SampleRing(8, 2)
    with pytest.raises(AudioFormatError):
        ring.write(np.zeros(4, dtype=np.float32))
    with pytest.raises(AudioFormatError):
        ring.write(np.zeros((4, 3), dtype=np.float32))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=40))
def test_fifo_property(ops: list[tuple[int, int]]) -> None:
    """Any interleaving of writes and reads yields the stored frames in order, none twice."""
    ring = SampleRing(13)
    out = np.zeros((20, 1), dtype=np.float32)
    written = 0
    expected_next = 0
    for n_write, n_read in ops:
        stored = ring.write(ramp(written, n_write))
        # frames that did not fit are lost: renumber so the stream stays contiguous
        written += stored
        got = ring.read_into(out[:n_read])
        np.testing.assert_array_equal(out[:got, 0], np.arange(expected_next, expected_next + got))
        expected_next += got
        assert 0 <= ring.available <= ring.capacity


def test_threaded_producer_consumer() -> None:
    """A producer and a consumer thread without locks transfer a long stream intact."""
    ring = SampleRing(256)
    total = 20_000
    received = np.zeros(total, dtype=np.float32)

    def produce() -> None:
        sent = 0
        while sent < total:
            n = min(37, total - sent)
            if ring.free >= n:
                ring.write(ramp(sent, n))
                sent += n
            else:
                time.sleep(0)

    out = np.zeros((64, 1), dtype=np.float32)
    thread = threading.Thread(target=produce)
    thread.start()
    got = 0
    while got < total:
        n = ring.read_into(out)
        received[got : got + n] = out[:n, 0]
        got += n
        if n == 0:
            time.sleep(0)
    thread.join()
    np.testing.assert_array_equal(received, np.arange(total, dtype=np.float32))
    assert ring.overflows == 0


def test_block_log_records_and_wraps() -> None:
    """The block log keeps the newest records and reports the end of the newest block."""
    blog = BlockLog(4)
    assert blog.last_end() == 0
    for k in range(6):
        blog.record(k * 10, 10, float(k))
    assert blog.count == 6
    assert blog.last_end() == 60
    assert blog.ring_start[5 % 4] == 50 and blog.dac_time[5 % 4] == 5.0
    with pytest.raises(AudioFormatError):
        BlockLog(0)


def test_segment_tags_merge_and_positions() -> None:
    """Adjacent runs of one item merge; heard ranges move the item's position."""
    tags = SegmentTags()
    tags.add(0, 100, "a", 0, 0)
    tags.add(100, 50, "a", 0, 100)
    assert len(tags) == 1
    tags.add(150, 80, "b", 0, 0)
    assert len(tags) == 2
    tags.heard(0, 60)
    assert tags.position("a") == 60
    tags.heard(60, 170)
    assert tags.position("a") == 150
    assert tags.position("b") == 20
    assert tags.position("unknown") == 0
    # segments wholly before a heard range are pruned
    tags.heard(160, 170)
    assert len(tags) == 1


def test_segment_tags_skipped_frames_not_counted() -> None:
    """Frames dropped between heard ranges never count as heard."""
    tags = SegmentTags()
    tags.add(0, 100, "a", 0, 0)
    tags.add(100, 100, "b", 1, 0)
    tags.heard(0, 40)
    tags.heard(150, 160)  # 40..150 were dropped
    assert tags.position("a") == 40
    assert tags.position("b", 1) == 60


def test_segment_tags_item_at_and_items_from() -> None:
    """item_at names the item owning the frame before an index; items_from lists later items."""
    tags = SegmentTags()
    tags.add(10, 20, "a", 0, 5)
    tags.add(30, 20, "b", 2, 0)
    assert tags.item_at(25) == ("a", 0, 20)
    assert tags.item_at(30) == ("a", 0, 25)
    assert tags.item_at(31) == ("b", 2, 1)
    assert tags.item_at(10) is None
    assert tags.item_at(60) is None
    assert tags.items_from(29) == {"a", "b"}
    assert tags.items_from(30) == {"b"}
    tags.clear()
    assert len(tags) == 0


def test_segment_tags_bounded_positions() -> None:
    """Only the most recent items' positions are remembered."""
    tags = SegmentTags(max_items=3)
    for k in range(5):
        tags.add(k * 10, 10, f"i{k}", 0, 0)
    tags.heard(0, 50)
    assert tags.position("i0") == 0
    assert tags.position("i4") == 10
