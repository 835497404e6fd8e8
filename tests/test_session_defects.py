"""Issue 10's session defects (#1 #2 #3 #7 #8) and issue 12's protocol odds and ends,
each reproduced through a real Session against the FakeServer.

Every test here failed on the code before the sans-I/O protocol (commit c3c0aba).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import realtime.session as rs
from audio.playback import HeardPosition
from realtime.events import InvalidServerEvent, ServerEvent
from realtime.events.common import InputAudioTranscription
from realtime.events.config import SessionConfig
from realtime.exceptions import AuthenticationError, ConnectionClosed, ProtocolError
from realtime.reconnect import ConnectionRestoredEvent, ReconnectPolicy
from realtime.testing import (
    Connection,
    FakeServer,
    ServerEvents,
    acknowledge,
    close,
    delay,
    drop,
    emit,
    expect,
)

DIALECTS = pytest.mark.parametrize("dialect", ["ga", "beta"])


def restore_policy() -> ReconnectPolicy:
    return ReconnectPolicy(max_attempts=3, base_delay=0.02, jitter=0.0, reinject_history=True)


async def until(check: Any, timeout: float = 5.0) -> None:
    """Wait until ``check()`` is true (polls the loop)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.005)


def user_text(item_id: str, text: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_text", "text": text}],
    }


# --- #1: reconnect with reinject_history restores history once ------------------------------


@DIALECTS
async def test_restore_recreates_history_once_with_original_ids(dialect: str) -> None:
    """Two drops: history is restored once per connection, under the original ids; the
    local conversation keeps 2 items (not 4, then 8); the restore goes through the send
    path (a send listener sees it)."""
    ev = ServerEvents(dialect)
    first = [
        emit(ev.item_added(user_text("item_u", "My name is Ada."))),
        emit(ev.response_created("resp_1")),
        emit(ev.output_item_added("resp_1", ev.message_item("item_b"))),
        emit(ev.transcript_delta("resp_1", "item_b", "Hello Ada.")),
        emit(ev.response_done("resp_1", output=[ev.message_item("item_b", status="completed")])),
        delay(0.1),
        drop(),
    ]
    second = [delay(0.3), drop()]
    async with FakeServer(scripts=[first, second], handler=acknowledge) as server:
        ctx = rs.connect(url=server.url, dialect=dialect, reconnect=restore_policy())
        sent: list[dict[str, Any]] = []
        ctx.session.add_send_listener(lambda frame: sent.append(json.loads(frame)))
        restored: list[ServerEvent] = []
        ctx.session.on("connection.restored", restored.append)
        async with ctx as session:
            await until(lambda: len(restored) == 2)
            third = await server.wait_connections(3)
            await until(lambda: len(third.received) >= 2)
            await asyncio.sleep(0.1)
            assert [i.id for i in session.conversation.items] == ["item_u", "item_b"]
        for conn in server.connections[1:]:
            creates = [e for e in conn.received if e["type"] == "conversation.item.create"]
            assert [c["item"]["id"] for c in creates] == ["item_u", "item_b"]
            assert "previous_item_id" not in creates[0]
            assert creates[1]["previous_item_id"] == "item_u"
            assert creates[1]["item"]["content"][0]["text"] == "Hello Ada."
    assert sum(1 for e in sent if e["type"] == "conversation.item.create") == 4
    assert isinstance(restored[0], ConnectionRestoredEvent) and restored[0].restored_items == 2


@DIALECTS
async def test_restore_keeps_only_what_was_heard_of_a_truncated_reply(dialect: str) -> None:
    """A reply truncated at 500 of 1000 ms is restored with about half of its words."""
    ev = ServerEvents(dialect)
    words = "one two three four five six seven eight nine ten"
    truncated = {
        "type": "conversation.item.truncated",
        "item_id": "item_b",
        "content_index": 0,
        "audio_end_ms": 500,
    }
    first = [
        emit(ev.response_created("resp_1")),
        emit(ev.output_item_added("resp_1", ev.message_item("item_b"))),
        emit(ev.audio_delta("resp_1", "item_b", b"\0\0" * 24000)),  # 1000 ms
        emit(ev.transcript_delta("resp_1", "item_b", words)),
        emit(ev.response_done("resp_1", output=[ev.message_item("item_b", status="completed")])),
        emit(truncated),
        delay(0.1),
        drop(),
    ]
    async with FakeServer(scripts=[first], handler=acknowledge) as server:
        ctx = rs.connect(url=server.url, dialect=dialect, reconnect=restore_policy())
        async with ctx as session:
            await session.wait_for("connection.restored", timeout=5)
            await server.wait_received("conversation.item.create")
        conn = server.connections[1]
        creates = [e for e in conn.received if e["type"] == "conversation.item.create"]
    assert creates[0]["item"]["content"][0]["text"] == "one two three four five"


@DIALECTS
async def test_restore_keeps_only_what_was_heard_of_a_reply_lost_to_the_drop(
    dialect: str,
) -> None:
    """The drop itself cuts a reply: the speaker stops (tracker interrupted) and the restore
    re-creates only what was heard of it (300 of 1000 ms: three words), incomplete."""
    ev = ServerEvents(dialect)
    words = "one two three four five six seven eight nine ten"
    first = [
        emit(ev.response_created("resp_1")),
        emit(ev.output_item_added("resp_1", ev.message_item("item_b"))),
        emit(ev.audio_delta("resp_1", "item_b", b"\0\0" * 24000)),  # 1000 ms
        emit(ev.transcript_delta("resp_1", "item_b", words)),
        delay(0.1),
        drop(),
    ]
    tracker = FakeTracker("item_b", 300.0)
    async with FakeServer(scripts=[first], handler=acknowledge) as server:
        ctx = rs.connect(
            url=server.url, dialect=dialect, reconnect=restore_policy(), tracker=tracker
        )
        async with ctx as session:
            await session.wait_for("connection.restored", timeout=5)
            await server.wait_received("conversation.item.create")
            item = session.conversation["item_b"]
            assert item.status == "incomplete" and item.content[0].audio_end_ms == 300
        conn = server.connections[1]
        creates = [e for e in conn.received if e["type"] == "conversation.item.create"]
    assert tracker.calls == 1
    assert [c["item"]["content"][0]["text"] for c in creates] == ["one two three"]
    assert creates[0]["item"]["status"] == "incomplete"


# --- #2: a response lost to a drop ends ---------------------------------------------------


@DIALECTS
async def test_wait_for_response_done_ends_when_the_response_is_lost(dialect: str) -> None:
    """A wait_for("response.done") pending across a drop gets a response.done of status
    incomplete (reason connection_lost); its item is incomplete; restored says so."""
    ev = ServerEvents(dialect)
    first = [
        emit(ev.response_created("resp_1")),
        emit(ev.output_item_added("resp_1", ev.message_item("item_b"))),
        emit(ev.transcript_delta("resp_1", "item_b", "Half a")),
        delay(0.2),
        drop(),
    ]
    async with FakeServer(scripts=[first], handler=acknowledge) as server:
        ctx = rs.connect(url=server.url, dialect=dialect, reconnect=restore_policy())
        restored: list[ServerEvent] = []
        ctx.session.on("connection.restored", restored.append)
        async with ctx as session:
            await session.wait_for("response.created", timeout=5)
            done = await session.wait_for("response.done", timeout=5)
            await until(lambda: bool(restored))
            assert session.conversation["item_b"].status == "incomplete"
            assert not session.responses.busy
    assert done.response.status == "incomplete"  # type: ignore[attr-defined]
    assert done.response.status_details.reason == "connection_lost"  # type: ignore[attr-defined]
    assert done.response.id == "resp_1"  # type: ignore[attr-defined]
    event = restored[0]
    assert isinstance(event, ConnectionRestoredEvent)
    assert event.lost_responses == ["resp_1"] and event.incomplete_items == ["item_b"]


# --- #3: close() cancelled by a caller's timeout still ends the session -------------------


async def test_cancelled_close_on_a_stalled_link_leaves_no_zombie() -> None:
    """close() under a short timeout on a link that never answers the close: the session
    ends anyway (waiters get ConnectionClosed, tasks gone, is_open False)."""
    async with FakeServer() as server:
        session = await rs.connect(url=server.url)
        await session.wait_for("session.created", timeout=5)
        waiter = asyncio.ensure_future(session.wait_for("never.happens"))
        ended = asyncio.ensure_future(session.wait_closed())
        await asyncio.sleep(0.01)
        ws = server.connection.ws
        assert ws is not None
        ws.transport.pause_reading()  # the server stops reading: the close is never answered
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(session.close(), 0.1)
        assert not session.is_open
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(waiter, 1)
        await asyncio.wait_for(ended, 1)
        await until(lambda: not session._tasks, timeout=2)
        with pytest.raises(ConnectionClosed):
            await session.commit_audio()
        ws.transport.resume_reading()


# --- #7: acknowledgements matched by ids; 4001 -> AuthenticationError ----------------------


@DIALECTS
async def test_vad_commit_does_not_satisfy_a_manual_commit(dialect: str) -> None:
    """A server VAD commit arriving first is not taken for the manual commit's answer."""
    vad = [
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "item_vad"},
        {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 900, "item_id": "item_vad"},
        {"type": "input_audio_buffer.committed", "previous_item_id": None, "item_id": "item_vad"},
    ]
    manual = {
        "type": "input_audio_buffer.committed",
        "previous_item_id": "item_vad",
        "item_id": "item_manual",
    }
    script = [expect("input_audio_buffer.commit"), emit(*vad), delay(0.05), emit(manual)]
    async with FakeServer(script) as server, rs.connect(url=server.url, dialect=dialect) as s:
        committed = await s.commit_audio(timeout=5)
        assert committed.item_id == "item_manual"  # type: ignore[attr-defined]


async def test_close_4001_raises_authentication_error() -> None:
    """A pending request on a connection closed with 4001 raises AuthenticationError."""
    script = [expect("input_audio_buffer.commit"), close(4001, "invalid api key")]
    async with FakeServer(script) as server, rs.connect(url=server.url) as s:
        with pytest.raises(AuthenticationError) as info:
            await s.commit_audio(timeout=5)
        assert isinstance(info.value, ConnectionClosed) and info.value.code == 4001


# --- #8: Session.interrupt() ----------------------------------------------------------------


class FakeTracker:
    """A playback tracker that was playing ``item_id`` and has heard ``heard_ms`` of it."""

    def __init__(self, item_id: str, heard_ms: float) -> None:
        self.position = HeardPosition(item_id, 0, heard_ms)
        self.calls = 0

    def played_ms(self, item_id: str, content_index: int = 0) -> float:
        return self.position.played_ms if item_id == self.position.item_id else 0.0

    def interrupt(self) -> HeardPosition | None:
        self.calls += 1
        return self.position


@DIALECTS
async def test_interrupt_stops_playback_cancels_and_truncates(dialect: str) -> None:
    """interrupt(): the tracker stops (once), the item is truncated where it was heard,
    and the active response is cancelled."""
    ev = ServerEvents(dialect)
    script = [
        emit(ev.response_created("resp_1")),
        emit(ev.output_item_added("resp_1", ev.message_item("item_b"))),
        emit(ev.audio_delta("resp_1", "item_b", b"\0\0" * 24000)),
    ]
    tracker = FakeTracker("item_b", 400.0)
    async with (
        FakeServer(script, handler=acknowledge) as server,
        rs.connect(url=server.url, dialect=dialect, tracker=tracker) as s,
    ):
        await s.wait_for(ev.audio_delta_type, timeout=5)
        decision = await s.interrupt()
        truncate = await server.wait_received("conversation.item.truncate")
        cancel = await server.wait_received("response.cancel")
    assert tracker.calls == 1
    assert decision.audio_end_ms == 400 and decision.cancel
    assert truncate["item_id"] == "item_b" and truncate["audio_end_ms"] == 400
    assert cancel["response_id"] == "resp_1"


# --- issue 12 -------------------------------------------------------------------------------


async def test_beta_transcription_session_sends_transcription_session_update() -> None:
    """A beta transcription config goes out as transcription_session.update."""
    config = SessionConfig(
        kind="transcription", transcription=InputAudioTranscription(model="whisper-1")
    )
    async with (
        FakeServer(handler=acknowledge) as server,
        rs.connect(url=server.url, dialect="beta", config=config) as s,
    ):
        assert server.received_types() == ["transcription_session.update"]
        reply_event = await s.update(config)
        assert reply_event.type == "transcription_session.updated"


def instant_reply(event: dict[str, Any], conn: Connection) -> list[dict[str, Any]]:
    """A server answering response.create at once, in the same write as the item ack."""
    ev = ServerEvents(conn.dialect)
    if event.get("type") == "response.create":
        return [ev.response_created("resp_fast"), ev.response_done("resp_fast")]
    return acknowledge(event, conn)


@DIALECTS
async def test_send_text_wait_returns_the_reply_even_from_a_fast_server(dialect: str) -> None:
    """send_text(wait=True) and expect() cannot miss a reply that arrives before they return."""
    async with (
        FakeServer(handler=instant_reply) as server,
        rs.connect(url=server.url, dialect=dialect) as s,
    ):
        done = await s.send_text("Hi", wait=True, timeout=5)
        assert done.type == "response.done" and done.response.id == "resp_fast"  # type: ignore[attr-defined]
        async with s.expect("response.done", timeout=5) as reply_to:
            await s.send_text("Again")
            await asyncio.sleep(0.2)  # the reply has certainly arrived by now
        assert reply_to.event is not None and reply_to.event.type == "response.done"


def bad_delta(dialect: str) -> str:
    etype = "response.output_audio.delta" if dialect == "ga" else "response.audio.delta"
    event = {"type": etype, "response_id": "r", "item_id": "i", "output_index": 0, "delta": "AA=="}
    return json.dumps(event)  # no content_index


@DIALECTS
async def test_invalid_event_reaches_star_handlers_and_the_iterator(dialect: str) -> None:
    """A known event with a missing field is delivered, marked invalid, to "*" and the
    iterator (not to the handlers of its type)."""
    etype = "response.output_audio.delta" if dialect == "ga" else "response.audio.delta"
    script = [emit(bad_delta(dialect), {"type": "custom.after"})]
    async with FakeServer(script) as server:
        ctx = rs.connect(url=server.url, dialect=dialect)
        star: list[ServerEvent] = []
        typed: list[ServerEvent] = []
        ctx.session.on("*", star.append)
        ctx.session.on(etype, typed.append)
        async with ctx as s:
            seen = []
            async for event in s:
                seen.append(event)
                if event.type == "custom.after":
                    break
            await until(lambda: len(star) >= 3)
    invalid = [e for e in seen if isinstance(e, InvalidServerEvent)]
    assert len(invalid) == 1 and invalid[0].type == etype and "content_index" in invalid[0].error
    assert any(isinstance(e, InvalidServerEvent) for e in star)
    assert typed == []


async def test_strict_mode_raises_on_an_invalid_event() -> None:
    """strict=True: an invalid event ends the session with the ProtocolError."""
    script = [delay(0.05), emit(bad_delta("ga"))]
    async with FakeServer(script) as server, rs.connect(url=server.url, strict=True) as s:
        with pytest.raises(ProtocolError):
            await s.wait_for("never.happens", timeout=5)
        assert not s.is_open
