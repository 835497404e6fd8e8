"""Reconnect policy (pure) and reconnecting sessions against the FakeServer."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

import realtime.session as rs
from realtime.events import ServerEvent
from realtime.events.config import SessionConfig
from realtime.exceptions import ConfigError, ConnectionClosed
from realtime.reconnect import (
    ConnectionFailedEvent,
    ConnectionLostEvent,
    ConnectionRestoredEvent,
    ReconnectPolicy,
    history_items,
)
from realtime.testing import (
    FakeServer,
    ServerEvents,
    acknowledge,
    close,
    delay,
    drop,
    emit,
    expect,
    reply,
    session_created,
)

DIALECTS = pytest.mark.parametrize("dialect", ["ga", "beta"])
FAST = ReconnectPolicy(max_attempts=3, base_delay=0.02, max_delay=0.1, jitter=0.0)


def updated(dialect: str) -> Any:
    """A reply step answering session.update with session.updated."""
    return reply(
        lambda ev: {
            "type": "session.updated",
            "session": {**session_created(dialect)["session"], **ev["session"]},
        }
    )


def record(session: rs.Session, pattern: str) -> list[ServerEvent]:
    """Collect the events matching ``pattern`` through a handler."""
    seen: list[ServerEvent] = []
    session.on(pattern, seen.append)
    return seen


async def until(check: Any, timeout: float = 5.0) -> None:
    """Wait until ``check()`` is true (polls the loop; test helper only)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# --- the policy ----------------------------------------------------------------------------


def test_policy_backoff_and_jitter_bounds() -> None:
    """Delays double up to max_delay; jitter only shortens them within its fraction."""
    policy = ReconnectPolicy(max_attempts=6, base_delay=0.5, max_delay=4.0, jitter=0.0)
    assert list(policy.delays()) == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    jittery = ReconnectPolicy(max_attempts=50, base_delay=1.0, max_delay=1.0, jitter=0.3)
    values = list(jittery.delays(random.Random(7)))
    assert len(values) == 50
    assert all(0.7 <= v <= 1.0 for v in values)
    assert len(set(values)) > 1


def test_policy_recoverable_codes_and_validation() -> None:
    """1006/1011/1012/1013 and network errors are recoverable; bad options raise ConfigError."""
    policy = ReconnectPolicy()
    assert all(policy.is_recoverable(c) for c in (1006, 1011, 1012, 1013, None))
    assert not any(policy.is_recoverable(c) for c in (1000, 1001, 1008, 4000))
    with pytest.raises(ConfigError):
        ReconnectPolicy(max_attempts=0)
    with pytest.raises(ConfigError):
        ReconnectPolicy(jitter=2)
    with pytest.raises(ConfigError):
        ReconnectPolicy(base_delay=-1)


def test_history_items_keep_text_and_transcripts() -> None:
    """history_items turns messages into text (transcripts included), keeps calls, skips empties."""
    items = [
        {"type": "message", "role": "user", "content": [{"transcript": "hello"}]},
        {"type": "message", "role": "assistant", "content": [{"text": "hi"}, {"transcript": "!"}]},
        {"type": "message", "role": "user", "content": [{"audio": "AAAA"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "42"},
        {"type": "mystery"},
    ]
    ga = history_items(items, "ga")
    assert ga[0] == {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "hello"}],
    }
    assert ga[1]["content"] == [{"type": "output_text", "text": "hi !"}]
    assert [i["type"] for i in ga] == [
        "message",
        "message",
        "function_call",
        "function_call_output",
    ]
    beta = history_items(items, "beta")
    assert beta[1]["content"] == [{"type": "text", "text": "hi !"}]


# --- sessions ------------------------------------------------------------------------------


@DIALECTS
async def test_reconnect_after_abrupt_drop_mid_response(dialect: str) -> None:
    """A TCP drop mid-response: the pending await fails, the config is re-sent, work resumes."""
    ev = ServerEvents(dialect)
    first = [
        expect("session.update"),
        updated(dialect),
        emit(ev.response_created("resp_1")),
        emit(ev.output_item_added("resp_1", ev.message_item("item_a"))),
        emit(ev.audio_delta("resp_1", "item_a", b"\0\0" * 2400)),
        expect("input_audio_buffer.commit"),
        drop(),
    ]
    config = SessionConfig(instructions="Remember me.")

    def ping() -> str:
        """Ping."""
        return "pong"

    async with FakeServer(scripts=[first], handler=acknowledge) as server:
        ctx = rs.connect(
            url=server.url, dialect=dialect, config=config, reconnect=FAST, tools=[ping]
        )
        session = ctx.session
        lost = record(session, "connection.lost")
        restored = record(session, "connection.restored")
        deltas = record(session, ev.audio_delta_type)
        async with ctx:
            await until(lambda: bool(deltas))
            assert session.responses.busy
            with pytest.raises(ConnectionClosed) as info:
                await session.commit_audio(timeout=5)
            assert info.value.code == 1006
            await session.wait_for("connection.restored", timeout=5)
            # A request on the new connection works, and the response state was reset.
            assert (await session.commit_audio(timeout=5)).type == "input_audio_buffer.committed"
            assert not session.responses.busy
            await session.create_response()
            await server.wait_received("response.create")
            await until(lambda: bool(restored))
        second = server.connections[1]
        resent = [e for e in second.received if e["type"] == "session.update"]
        assert resent and resent[0]["session"]["instructions"] == "Remember me."
        assert [t["name"] for t in resent[0]["session"]["tools"]] == ["ping"]
        assert second.received[0]["type"] == "session.update"
    assert isinstance(lost[0], ConnectionLostEvent)
    assert lost[0].code == 1006 and lost[0].will_reconnect
    assert isinstance(restored[0], ConnectionRestoredEvent) and restored[0].attempts == 1


@DIALECTS
async def test_history_reinjected_after_reconnect(dialect: str) -> None:
    """With reinject_history, text and transcripts are re-created as items after the config."""
    ev = ServerEvents(dialect)
    user = {
        "id": "item_u",
        "object": "realtime.item",
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_text", "text": "My name is Ada."}],
    }
    first = [
        expect("session.update"),
        updated(dialect),
        emit(ev.item_added(user)),
        emit(ev.response_created("resp_1")),
        emit(ev.output_item_added("resp_1", ev.message_item("item_b"))),
        emit(ev.transcript_delta("resp_1", "item_b", "Hello Ada.")),
        emit(ev.response_done("resp_1", output=[ev.message_item("item_b", status="completed")])),
        delay(0.1),
        drop(),
    ]
    policy = ReconnectPolicy(max_attempts=2, base_delay=0.02, jitter=0.0, reinject_history=True)
    async with FakeServer(scripts=[first], handler=acknowledge) as server:
        ctx = rs.connect(
            url=server.url,
            dialect=dialect,
            config=SessionConfig(instructions="x"),
            reconnect=policy,
        )
        async with ctx as session:
            await session.wait_for("connection.restored", timeout=5)
            second = await server.wait_connections(2)
            await server.wait_received("conversation.item.create", count=2)
        creates = [e["item"] for e in second.received if e["type"] == "conversation.item.create"]
        assert second.received[0]["type"] == "session.update"
    assert creates[0]["role"] == "user"
    assert creates[0]["content"][0]["text"] == "My name is Ada."
    assert creates[1]["role"] == "assistant"
    assert creates[1]["content"][0]["text"] == "Hello Ada."


async def test_sends_during_outage_go_out_after_reconnect() -> None:
    """Audio appended while reconnecting is delivered on the new connection, after the config."""
    first = [expect("session.update"), updated("ga"), delay(0.05), drop()]
    slow = ReconnectPolicy(max_attempts=3, base_delay=0.3, jitter=0.0)
    async with FakeServer(scripts=[first], handler=acknowledge) as server:
        ctx = rs.connect(url=server.url, config=SessionConfig(instructions="x"), reconnect=slow)
        async with ctx as session:
            await session.wait_for("connection.lost", timeout=5)
            await session.append_audio(b"\x05\x00" * 100)
            await session.wait_for("connection.restored", timeout=5)
            await server.wait_received("input_audio_buffer.append")
        second = server.connections[1]
    assert [e["type"] for e in second.received[:2]] == [
        "session.update",
        "input_audio_buffer.append",
    ]


async def test_reconnect_gives_up_with_connection_failed() -> None:
    """When every attempt fails: connection.failed, pending awaits fail, iteration raises."""
    first = [delay(0.05), drop()]
    policy = ReconnectPolicy(max_attempts=2, base_delay=0.02, jitter=0.0)
    server = FakeServer(scripts=[first])
    await server.__aenter__()
    try:
        session = await rs.connect(url=server.url, reconnect=policy)
        failed = record(session, "connection.failed")
        waiter = asyncio.ensure_future(session.wait_for("never.arrives"))
        await session.wait_for("connection.lost", timeout=5)
        await server.aclose()  # nothing listens any more: both attempts are refused
        await asyncio.wait_for(session.wait_closed(), 10)
        with pytest.raises(ConnectionClosed) as info:
            await waiter
        assert info.value.code == 1006
        with pytest.raises(ConnectionClosed):
            async for _ in session:
                pass
        await until(lambda: bool(failed))
        assert isinstance(failed[0], ConnectionFailedEvent) and failed[0].attempts == 2
        await session.close()
    finally:
        await server.aclose()


async def test_normal_close_is_not_retried() -> None:
    """A close with a non-recoverable code ends the session even with a policy."""
    async with FakeServer(scripts=[[delay(0.05), close(4000, "policy")]]) as server:
        session = await rs.connect(url=server.url, reconnect=FAST)
        lost = record(session, "connection.lost")
        failed = record(session, "connection.failed")
        await asyncio.wait_for(session.wait_closed(), 5)
        await until(lambda: bool(failed))
        assert len(server.connections) == 1
        assert lost[0].will_reconnect is False  # type: ignore[attr-defined]
        with pytest.raises(ConnectionClosed) as info:
            await session.commit_audio()
        assert info.value.code == 4000 and info.value.reason == "policy"
        await session.close()


async def test_no_policy_means_no_reconnect() -> None:
    """Without a policy an abrupt drop ends the session with 1006 and connection.lost only."""
    async with FakeServer(scripts=[[delay(0.05), drop()]]) as server:
        session = await rs.connect(url=server.url)
        lost = record(session, "connection.lost")
        failed = record(session, "connection.failed")
        await asyncio.wait_for(session.wait_closed(), 5)
        await until(lambda: bool(lost))
        assert failed == []
        assert len(server.connections) == 1
        await session.close()
