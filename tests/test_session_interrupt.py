"""Barge-in through the session: playback tracker, truncation point, cancel decision."""

from __future__ import annotations

import time
from typing import Any

import pytest

import realtime.session as rs
from audio.playback import HeardPosition, PlaybackTracker
from realtime.events import ServerEvent
from realtime.testing import FakeServer, ServerEvents, delay, emit, session_created

DIALECTS = pytest.mark.parametrize("dialect", ["ga", "beta"])
CHUNK_MS = 100
CHUNK = b"\x01\x00" * (24 * CHUNK_MS)  # 100 ms of PCM16 at 24 kHz


class ClockTracker:
    """A playback tracker that 'plays' in real time from the first audio it is given."""

    def __init__(self) -> None:
        self.received_ms: dict[tuple[str, int], float] = {}
        self.started: dict[tuple[str, int], float] = {}
        self.current: tuple[str, int] | None = None
        self.interrupts = 0

    def enqueue(self, pcm16: bytes, item_id: str, content_index: int = 0) -> None:
        """Queue audio (only its duration matters here)."""
        key = (item_id, content_index)
        self.started.setdefault(key, time.monotonic())
        self.received_ms[key] = self.received_ms.get(key, 0.0) + len(pcm16) / 48.0
        self.current = key

    def played_ms(self, item_id: str, content_index: int = 0) -> float:
        """Elapsed time since the item started, capped at what was received."""
        key = (item_id, content_index)
        if key not in self.started:
            return 0.0
        elapsed = (time.monotonic() - self.started[key]) * 1000.0
        return min(elapsed, self.received_ms[key])

    def interrupt(self) -> HeardPosition | None:
        """Stop: report the heard position of the item playing."""
        self.interrupts += 1
        if self.current is None:
            return None
        item_id, index = self.current
        heard = self.played_ms(item_id, index)
        self.current = None
        return HeardPosition(item_id, index, heard)


class FixedTracker:
    """A playback tracker whose answer the test sets."""

    def __init__(self, position: HeardPosition | None) -> None:
        self.position = position
        self.interrupts = 0

    def played_ms(self, item_id: str, content_index: int = 0) -> float:
        """The fixed position's milliseconds for its item, else 0."""
        if self.position is not None and self.position.item_id == item_id:
            return self.position.played_ms
        return 0.0

    def interrupt(self) -> HeardPosition | None:
        """Return the fixed position."""
        self.interrupts += 1
        return self.position


def hello(dialect: str, interrupt_response: bool) -> dict[str, Any]:
    """session.created with server VAD and the given interrupt_response."""
    vad = {"type": "server_vad", "interrupt_response": interrupt_response}
    if dialect == "ga":
        return session_created("ga", audio={"input": {"turn_detection": vad}})
    return session_created("beta", turn_detection=vad)


def reply_frames(ev: ServerEvents, seconds: float) -> list[dict[str, Any]]:
    """The start of an audio reply: response, item, then ``seconds`` of audio deltas."""
    frames = [
        ev.response_created("resp_1"),
        ev.output_item_added("resp_1", ev.message_item("item_a")),
    ]
    frames += [ev.audio_delta("resp_1", "item_a", CHUNK) for _ in range(int(seconds * 10))]
    return frames


@DIALECTS
async def test_interruption_1200ms_into_3s_reply(dialect: str) -> None:
    """Speech 1.2 s into a 3 s reply truncates at ~1200 ms; the server VAD cancels itself."""
    ev = ServerEvents(dialect)
    tracker = ClockTracker()
    assert isinstance(tracker, PlaybackTracker)
    script = [
        emit(hello(dialect, interrupt_response=True)),
        emit(*reply_frames(ev, 3.0)),
        delay(1.2),
        emit(ev.speech_started("item_user", 3000)),
    ]
    async with FakeServer(script, hello=False) as server:
        ctx = rs.connect(url=server.url, dialect=dialect, tracker=tracker)
        session = ctx.session
        session.on(
            ev.audio_delta_type,
            lambda e: tracker.enqueue(e.audio_bytes(), e.item_id, e.content_index),  # type: ignore[attr-defined]
        )
        async with ctx:
            sent = await server.wait_received("conversation.item.truncate", timeout=10)
            await session.flush(timeout=5)
    assert tracker.interrupts == 1
    assert sent["item_id"] == "item_a" and sent["content_index"] == 0
    assert 1150 <= sent["audio_end_ms"] <= 2000  # heard ~1200 ms of the 3000 received
    assert "response.cancel" not in server.received_types()
    decision = session.last_interruption
    assert decision is not None and decision.received_ms == pytest.approx(3000)


@DIALECTS
async def test_interruption_sends_cancel_when_server_does_not(dialect: str) -> None:
    """With interrupt_response off, the session also cancels the active response."""
    ev = ServerEvents(dialect)
    tracker = FixedTracker(HeardPosition("item_a", 0, 1200.0))
    script = [
        emit(hello(dialect, interrupt_response=False)),
        emit(*reply_frames(ev, 3.0)),
        emit(ev.speech_started("item_user", 3000)),
    ]
    async with (
        FakeServer(script, hello=False) as server,
        rs.connect(url=server.url, dialect=dialect, tracker=tracker),
    ):
        cancel = await server.wait_received("response.cancel", timeout=10)
    truncate = next(e for e in server.received if e["type"] == "conversation.item.truncate")
    assert truncate["audio_end_ms"] == 1200
    assert cancel.get("response_id") == "resp_1"
    types = server.received_types()
    assert types.index("conversation.item.truncate") < types.index("response.cancel")


@DIALECTS
async def test_nothing_heard_means_no_truncate(dialect: str) -> None:
    """A tracker reporting nothing playing: no truncate (and no cancel with server VAD)."""
    ev = ServerEvents(dialect)
    tracker = FixedTracker(None)
    script = [
        emit(hello(dialect, interrupt_response=True)),
        emit(*reply_frames(ev, 1.0)),
        emit(ev.speech_started("item_user", 1000)),
        emit({"type": "custom.marker"}),
    ]
    async with FakeServer(script, hello=False) as server:
        async with rs.connect(url=server.url, dialect=dialect, tracker=tracker) as session:
            await session.wait_for("custom.marker", timeout=10)
            await session.flush(timeout=5)
        assert tracker.interrupts == 1
        assert server.received_types() == []


async def test_fallback_without_tracker_uses_elapsed_time() -> None:
    """Without a tracker the time since the first delta stands for what was heard."""
    ev = ServerEvents("ga")
    script = [
        emit(hello("ga", interrupt_response=True)),
        emit(*reply_frames(ev, 3.0)),
        delay(1.2),
        emit(ev.speech_started("item_user", 3000)),
    ]
    async with FakeServer(script, hello=False) as server, rs.connect(url=server.url):
        sent = await server.wait_received("conversation.item.truncate", timeout=10)
    assert 1150 <= sent["audio_end_ms"] <= 2000


async def test_speech_without_assistant_audio_does_nothing() -> None:
    """speech_started with no reply in flight sends nothing and calls no tracker."""
    ev = ServerEvents("ga")
    tracker = FixedTracker(HeardPosition("x", 0, 10.0))
    seen: list[ServerEvent] = []
    script = [emit(ev.speech_started("item_user", 0)), emit({"type": "custom.marker"})]
    async with FakeServer(script) as server:
        async with rs.connect(url=server.url, tracker=tracker) as session:
            session.on("input_audio_buffer.speech_started", seen.append)
            await session.wait_for("custom.marker", timeout=10)
            await session.flush(timeout=5)
        assert server.received_types() == []
    assert tracker.interrupts == 0


class PlayingSpeaker(FixedTracker):
    """A speaker-like tracker that says whether it is playing."""

    is_playing = True


@DIALECTS
async def test_ptt_talk_over_interrupts_a_playing_reply(dialect: str) -> None:
    """talk --ptt: pressing Enter while the reply plays barges in through Session.interrupt."""
    from realtime.cli.talk import ptt_talk_over

    ev = ServerEvents(dialect)
    script = [
        emit(ev.response_created("resp_1")),
        emit(ev.output_item_added("resp_1", ev.message_item("item_b"))),
        emit(ev.audio_delta("resp_1", "item_b", CHUNK * 10)),
    ]
    speaker = PlayingSpeaker(HeardPosition("item_b", 0, 250.0))
    async with FakeServer(script) as server, rs.connect(url=server.url, dialect=dialect) as s:
        await s.wait_for(ev.audio_delta_type, timeout=5)
        task = ptt_talk_over(s, speaker)
        assert task is not None
        decision = await task
        truncate = await server.wait_received("conversation.item.truncate")
        await server.wait_received("response.cancel")
        assert speaker.interrupts == 1 and decision.audio_end_ms == 250
        assert truncate["audio_end_ms"] == 250
        speaker.is_playing = False
        await server.send(ev.response_done("resp_1", status="cancelled"))
        await s.wait_for("response.done", timeout=5)
        assert ptt_talk_over(s, speaker) is None  # nothing playing, no response: no barge-in
