"""Session tests against the FakeServer: acks, errors, sending, dispatch, iteration, closing."""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import numpy as np
import pytest

import realtime.session as rs
from realtime.events import ServerEvent, UnknownServerEvent
from realtime.events.config import SessionConfig
from realtime.exceptions import (
    AuthenticationError,
    ConfigError,
    ConnectionClosed,
    ConnectionError,
    RequestTimeout,
    ServerError,
)
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
    reply,
)

DIALECTS = pytest.mark.parametrize("dialect", ["ga", "beta"])
KEY = "sk-proj-TOPSECRET-abcdef0123456789"


def error_for(message: str, code: str) -> Any:
    """A reply step computing an error that names the matched client event."""
    return reply(
        lambda ev: {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": code,
                "message": message,
                "event_id": ev["event_id"],
            },
        }
    )


@DIALECTS
async def test_update_waits_for_session_updated(dialect: str) -> None:
    """update() sends session.update in the dialect's shape and returns session.updated."""
    config = SessionConfig(instructions="Be brief.")
    async with (
        FakeServer(handler=acknowledge) as server,
        rs.connect(url=server.url, dialect=dialect) as session,
    ):
        reply_event = await session.update(config)
        assert reply_event.type == "session.updated"
        assert session.config is config
        assert session.server_session is not None
        sent = await server.wait_received("session.update")
        assert sent["session"]["instructions"] == "Be brief."
        if dialect == "ga":
            assert sent["session"]["type"] == "realtime"
        assert server.connection.dialect == dialect


@DIALECTS
async def test_initial_config_sent_and_acknowledged_on_connect(dialect: str) -> None:
    """A config passed to connect() is sent and acknowledged before the body runs."""
    async with (
        FakeServer(handler=acknowledge) as server,
        rs.connect(
            url=server.url, dialect=dialect, config=SessionConfig(instructions="x")
        ) as session,
    ):
        assert server.received_types() == ["session.update"]
        assert session.is_open
        assert "open" in repr(session)


@DIALECTS
async def test_update_error_reply_raises_server_error(dialect: str) -> None:
    """An error naming the update's event_id raises ServerError with its details."""
    script = [expect("session.update"), error_for("bad voice", "invalid_value")]
    async with FakeServer(script) as server, rs.connect(url=server.url, dialect=dialect) as s:
        with pytest.raises(ServerError) as info:
            await s.update(SessionConfig(instructions="y"))
        assert info.value.code == "invalid_value"
        assert info.value.event_id == server.received[0]["event_id"]
        assert info.value.event is not None and info.value.event.type == "error"
        assert s.config is None
        assert s.is_open


@DIALECTS
async def test_commit_clear_retrieve_truncate_delete_acks(dialect: str) -> None:
    """Each request helper returns its acknowledging server event."""
    async with (
        FakeServer(handler=acknowledge) as server,
        rs.connect(url=server.url, dialect=dialect) as s,
    ):
        committed = await s.commit_audio()
        assert committed.type == "input_audio_buffer.committed"
        assert (await s.clear_audio()).type == "input_audio_buffer.cleared"
        retrieved = await s.retrieve_item("item_x")
        assert retrieved.type == "conversation.item.retrieved"
        truncated = await s.truncate("item_x", 0, 1500)
        assert truncated.type == "conversation.item.truncated"
        assert (await s.delete_item("item_x")).type == "conversation.item.deleted"
        sent = server.received
        assert sent[3] == {
            "type": "conversation.item.truncate",
            "event_id": sent[3]["event_id"],
            "item_id": "item_x",
            "content_index": 0,
            "audio_end_ms": 1500,
        }


@DIALECTS
async def test_commit_error_reply(dialect: str) -> None:
    """A commit refused by the server raises ServerError; later requests still work."""
    script = [expect("input_audio_buffer.commit"), error_for("buffer too small", "small")]
    async with FakeServer(script) as server, rs.connect(url=server.url, dialect=dialect) as s:
        with pytest.raises(ServerError, match="buffer too small"):
            await s.commit_audio()
        await server.send({"type": "input_audio_buffer.cleared"})
        await s.wait_for("input_audio_buffer.cleared", timeout=5)


@DIALECTS
async def test_retrieve_error_reply(dialect: str) -> None:
    """A retrieve of an unknown item raises ServerError naming the request."""
    script = [expect("conversation.item.retrieve"), error_for("no such item", "item_not_found")]
    async with FakeServer(script) as server, rs.connect(url=server.url, dialect=dialect) as s:
        with pytest.raises(ServerError) as info:
            await s.retrieve_item("nope")
        assert info.value.code == "item_not_found"


@DIALECTS
async def test_create_item_matches_its_own_item(dialect: str) -> None:
    """create_item matches the ack by item id, not by the first item event."""
    ev = ServerEvents(dialect)
    other = ev.item_added(ev.user_audio_item("item_server"))

    async def handler(event: dict[str, Any], conn: Connection) -> list[Any]:
        return [other, *acknowledge(event, conn)]

    async with (
        FakeServer(handler=handler) as server,
        rs.connect(url=server.url, dialect=dialect) as s,
    ):
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "hi"}],
        }
        ack = await s.create_item(item)
        sent = server.received[0]
        assert ack.item.id == sent["item"]["id"]  # type: ignore[attr-defined]
        assert sent["item"]["id"] != "item_server"
        assert [i.text for i in s.conversation.items if i.role == "user" and i.text] == ["hi"]


@DIALECTS
async def test_request_timeout(dialect: str) -> None:
    """No acknowledgement within the timeout raises RequestTimeout; the session lives on."""
    async with FakeServer() as server, rs.connect(url=server.url, dialect=dialect) as s:
        with pytest.raises(RequestTimeout, match=r"input_audio_buffer\.committed"):
            await s.commit_audio(timeout=0.1)
        assert s.is_open
        assert s.protocol.pending_requests == 0


@DIALECTS
async def test_send_text_sends_item_then_response(dialect: str) -> None:
    """send_text queues the item and response.create back to back; returns the item ack."""
    async with (
        FakeServer(handler=acknowledge) as server,
        rs.connect(url=server.url, dialect=dialect) as s,
    ):
        ack = await s.send_text("Hello there")
        assert ack.type in ("conversation.item.created", "conversation.item.added")
        await server.wait_received("response.create")
        assert server.received_types() == ["conversation.item.create", "response.create"]
        content = server.received[0]["item"]["content"]
        assert content == [{"type": "input_text", "text": "Hello there"}]


@DIALECTS
async def test_append_audio_bytes_and_array(dialect: str) -> None:
    """append_audio base64-encodes bytes and int16 arrays; bad arrays raise ConfigError."""
    pcm = np.arange(-100, 100, dtype=np.int16)
    async with FakeServer() as server, rs.connect(url=server.url, dialect=dialect) as s:
        await s.append_audio(pcm.tobytes())
        await s.append_audio(pcm)
        await s.append_audio(b"")
        with pytest.raises(ConfigError):
            await s.append_audio(pcm.astype(np.float32))
        await s.flush(timeout=5)
        sent = await server.wait_received("input_audio_buffer.append", count=2)
        assert base64.b64decode(sent["audio"]) == pcm.tobytes()
        assert len(server.received) == 2


@DIALECTS
async def test_create_response_queued_while_active(dialect: str) -> None:
    """A second create_response waits until the active response is done."""
    ev = ServerEvents(dialect)
    async with FakeServer() as server, rs.connect(url=server.url, dialect=dialect) as s:
        await s.create_response()
        await server.wait_received("response.create")
        await server.send(ev.response_created("resp_1"))
        await s.wait_for("response.created", timeout=5)
        await s.create_response(instructions="again")
        await s.flush(timeout=5)
        assert server.received_types() == ["response.create"]
        await server.send(ev.response_done("resp_1"))
        second = await server.wait_received("response.create", count=2)
        assert second["response"]["instructions"] == "again"


@DIALECTS
async def test_cancel_response_only_when_active(dialect: str) -> None:
    """cancel_response sends nothing without an active response and a cancel with one."""
    ev = ServerEvents(dialect)
    async with FakeServer() as server, rs.connect(url=server.url, dialect=dialect) as s:
        assert await s.cancel_response() is False
        await server.send(ev.response_created("resp_9"))
        await s.wait_for("response.created", timeout=5)
        assert await s.cancel_response() is True
        sent = await server.wait_received("response.cancel")
        assert sent.get("response_id") == "resp_9"


async def test_expected_cancel_error_is_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    """A response_cancel_not_active error for the session's own cancel is not warned about."""
    ev = ServerEvents("ga")
    script = [
        emit(ev.response_created("resp_1")),
        expect("response.cancel"),
        error_for("no active response", "response_cancel_not_active"),
    ]
    async with FakeServer(script) as server, rs.connect(url=server.url) as s:
        await s.wait_for("response.created", timeout=5)
        await s.cancel_response()
        await s.wait_for("error", timeout=5)
        await asyncio.sleep(0.01)
    assert "no active response" not in caplog.text


async def test_clear_output_audio_is_ga_only() -> None:
    """clear_output_audio sends output_audio_buffer.clear in GA and refuses in beta."""
    async with FakeServer() as server:
        async with rs.connect(url=server.url) as s:
            await s.clear_output_audio()
            await server.wait_received("output_audio_buffer.clear")
        async with rs.connect(url=server.url, dialect="beta") as s:
            with pytest.raises(ConfigError):
                await s.clear_output_audio()


@DIALECTS
async def test_update_transcription_session(dialect: str) -> None:
    """The transcription session update uses the dialect's event and waits for its ack."""
    async with (
        FakeServer(handler=acknowledge) as server,
        rs.connect(url=server.url, dialect=dialect) as s,
    ):
        ack = await s.update_transcription_session(
            {"include": ["item.input_audio_transcription.logprobs"]}
        )
        sent = server.received[0]
        if dialect == "beta":
            assert sent["type"] == "transcription_session.update"
            assert ack.type == "transcription_session.updated"
        else:
            assert sent["type"] == "session.update"
            assert sent["session"]["type"] == "transcription"
            assert ack.type == "session.updated"


async def test_send_any_event_and_bad_input() -> None:
    """send() takes models and dicts, returns the event_id, and rejects what it cannot encode."""
    from realtime.events import InputAudioBufferClearEvent

    async with FakeServer() as server, rs.connect(url=server.url) as s:
        event_id = await s.send({"type": "custom.thing", "x": 1})
        model_id = await s.send(InputAudioBufferClearEvent())
        got = await server.wait_received("input_audio_buffer.clear")
        assert got["event_id"] == model_id
        assert server.received[0]["event_id"] == event_id
        with pytest.raises(ConfigError):
            await s.send({"no": "type"})
        with pytest.raises(TypeError):
            await s.send(42)  # type: ignore[arg-type]


# --- dispatch ------------------------------------------------------------------------------


async def until(condition: Any, timeout: float = 5.0) -> None:
    """Wait (polling the loop) until ``condition()`` is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.005)


@DIALECTS
async def test_handlers_sync_async_once_off_and_order(dialect: str) -> None:
    """Each subscription gets its events in order; once fires once; off removes; decorator."""
    ev = ServerEvents(dialect)
    seen_async: list[str] = []
    seen_sync: list[str] = []
    seen_once: list[str] = []
    async with FakeServer() as server:
        session_ctx = rs.connect(url=server.url, dialect=dialect)
        s = session_ctx.session

        @s.on("response.*")
        async def on_any_response(event: ServerEvent) -> None:
            await asyncio.sleep(0)
            seen_async.append(event.type)

        def on_created(event: ServerEvent) -> None:
            seen_sync.append(event.response.id)  # type: ignore[attr-defined]

        s.on("response.created", on_created)
        s.once("response.done", lambda e: seen_once.append(e.response.id))  # type: ignore[attr-defined]
        async with session_ctx:
            await server.send(ev.response_created("r1"), ev.response_done("r1"))
            await server.send(ev.response_created("r2"))
            await until(lambda: len(seen_sync) == 2)
            assert s.off("response.created", on_created) == 1
            await server.send(ev.response_done("r2"), ev.response_created("r3"))
            await until(lambda: len(seen_async) == 5)
    assert seen_async == ["response.created", "response.done"] * 2 + ["response.created"]
    assert seen_sync == ["r1", "r2"]
    assert seen_once == ["r1"]


async def test_handler_exception_is_logged_and_session_continues(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A handler that raises is logged; later events still reach handlers."""
    got: list[str] = []
    async with FakeServer() as server, rs.connect(url=server.url) as s:

        @s.on("custom.boom")
        def boom(event: ServerEvent) -> None:
            raise RuntimeError("handler failure")

        s.on("custom.ok", lambda e: got.append(e.type))
        await server.send({"type": "custom.boom"}, {"type": "custom.ok"})
        await s.wait_for("custom.ok", timeout=5)
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.01)
    assert got == ["custom.ok"]
    assert "handler failure" in caplog.text


async def test_slow_handler_does_not_stall_receiving() -> None:
    """A handler sleeping 1 s while 100 events arrive: iteration sees all 100 meanwhile."""
    finished = asyncio.Event()
    async with FakeServer() as server, rs.connect(url=server.url) as s:

        @s.on("custom.tick")
        async def slow(event: ServerEvent) -> None:
            if not finished.is_set():
                await asyncio.sleep(1.0)
                finished.set()

        await server.send(*[{"type": "custom.tick", "n": i} for i in range(100)])
        ticks = []
        async for event in s:
            if event.type == "custom.tick":
                ticks.append(event)
                if len(ticks) == 100:
                    break
        assert not finished.is_set()  # the slow handler is still in its first call
        assert [t.raw["n"] for t in ticks] == list(range(100))  # type: ignore[attr-defined]
        last = await s.wait_for("custom.after", timeout=5) if await _send_after(server) else None
        assert last is not None and not finished.is_set()


async def _send_after(server: FakeServer) -> bool:
    """Push one more event (helper for the slow-handler test)."""
    await server.send({"type": "custom.after"})
    return True


async def test_unknown_event_types_reach_star_handlers() -> None:
    """Unknown types are parsed as UnknownServerEvent and reach '*' handlers only."""
    star: list[ServerEvent] = []
    exact: list[ServerEvent] = []
    async with FakeServer() as server, rs.connect(url=server.url) as s:
        s.on("*", star.append)
        s.on("response.done", exact.append)
        await server.send({"type": "brand.new.event", "payload": {"a": 1}})
        event = await s.wait_for("brand.new.event", timeout=5)
        for _ in range(100):
            if any(e.type == "brand.new.event" for e in star):
                break
            await asyncio.sleep(0.01)
    assert isinstance(event, UnknownServerEvent)
    assert event.raw["payload"] == {"a": 1}
    assert any(e is event for e in star)
    assert exact == []


async def test_dialect_neutral_subscription() -> None:
    """any_dialect=True subscribes to both names of an event."""
    seen: list[str] = []
    async with FakeServer() as server, rs.connect(url=server.url, dialect="beta") as s:
        s.on("response.output_audio.delta", lambda e: seen.append(e.type), any_dialect=True)
        ev = ServerEvents("beta")
        await server.send(ev.audio_delta("r", "i", b"\0\0"))
        await s.wait_for("response.output_audio.delta", timeout=5, any_dialect=True)
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
    assert seen == ["response.audio.delta"]


async def test_wait_for_forms_and_timeout() -> None:
    """wait_for accepts types, globs, classes and predicates; times out with RequestTimeout."""
    from realtime.events import ResponseCreatedEvent

    ev = ServerEvents("ga")
    async with FakeServer() as server, rs.connect(url=server.url) as s:
        tasks = [
            asyncio.ensure_future(s.wait_for("response.created", 5)),
            asyncio.ensure_future(s.wait_for("response.*", 5)),
            asyncio.ensure_future(s.wait_for(ResponseCreatedEvent, 5)),
            asyncio.ensure_future(s.wait_for(lambda e: e.type.endswith("created"), 5)),
        ]
        await asyncio.sleep(0.01)
        await server.send(ev.response_created("r1"))
        results = await asyncio.gather(*tasks)
        assert all(r is results[0] for r in results)
        with pytest.raises(RequestTimeout):
            await s.wait_for("never.happens", timeout=0.05)
        assert not s._waiters
        with pytest.raises(TypeError):
            await s.wait_for(42, timeout=1)  # type: ignore[arg-type]


async def test_iteration_yields_same_objects_and_ends_on_close() -> None:
    """async for yields the objects handlers get and stops after close()."""
    handled: list[ServerEvent] = []
    async with FakeServer([emit({"type": "custom.a"}, {"type": "custom.b"})]) as server:
        s = await rs.connect(url=server.url)
        s.on("custom.*", handled.append)
        seen: list[ServerEvent] = []

        async def consume() -> None:
            async for event in s:
                seen.append(event)

        task = asyncio.ensure_future(consume())
        await s.wait_for("custom.b", timeout=5)
        await asyncio.sleep(0.05)
        await s.close()
        await asyncio.wait_for(task, 5)
    assert [e.type for e in seen] == ["session.created", "custom.a", "custom.b"]
    assert handled == seen[1:]
    assert handled[0] is seen[1]


# --- closing -------------------------------------------------------------------------------


@DIALECTS
async def test_pending_awaits_fail_with_close_code(dialect: str) -> None:
    """A server close fails pending acks and waiters with ConnectionClosed(code, reason)."""
    script = [expect("input_audio_buffer.commit"), delay(0.05), close(4001, "go away")]
    async with FakeServer(script) as server, rs.connect(url=server.url, dialect=dialect) as s:
        waiter = asyncio.ensure_future(s.wait_for("never"))
        with pytest.raises(ConnectionClosed) as info:
            await s.commit_audio()
        assert info.value.code == 4001 and info.value.reason == "go away"
        with pytest.raises(ConnectionClosed):
            await waiter
        await s.wait_closed()
        with pytest.raises(ConnectionClosed) as info2:
            await s.commit_audio()
        assert info2.value.code == 4001
        with pytest.raises(ConnectionClosed):
            await s.append_audio(b"\0\0")


@DIALECTS
async def test_abrupt_drop_fails_pending_with_1006(dialect: str) -> None:
    """A TCP drop fails a pending ack with code 1006; iteration raises ConnectionClosed."""
    script = [expect("conversation.item.retrieve"), drop()]
    async with FakeServer(script) as server, rs.connect(url=server.url, dialect=dialect) as s:
        with pytest.raises(ConnectionClosed) as info:
            await s.retrieve_item("x", timeout=5)
        assert info.value.code == 1006
        with pytest.raises(ConnectionClosed):
            async for _ in s:
                pass
        assert not s.is_open


async def test_close_is_idempotent_and_fails_later_calls() -> None:
    """close() twice is harmless; afterwards requests raise ConnectionClosed(1000)."""
    async with FakeServer() as server:
        s = await rs.connect(url=server.url)
        await s.close()
        await s.close()
        with pytest.raises(ConnectionClosed) as info:
            await s.update()
        assert info.value.code == 1000


# --- connecting and secrets ----------------------------------------------------------------


async def test_auth_header_sent_and_beta_header() -> None:
    """The key goes in Authorization; beta adds OpenAI-Beta; the model is in the query."""
    async with (
        FakeServer(require_key=KEY) as server,
        rs.connect("my-model", url=server.url, api_key=KEY, dialect="beta"),
    ):
        await server.wait_connections(1)
    conn = server.connections[0]
    assert conn.headers["Authorization"] == f"Bearer {KEY}"
    assert conn.headers["OpenAI-Beta"] == "realtime=v1"
    assert conn.path == "/v1/realtime?model=my-model"


async def test_key_absent_from_logs_and_errors(caplog: pytest.LogCaptureFixture) -> None:
    """A refused key raises AuthenticationError; neither it nor logs contain the key."""
    caplog.set_level(logging.DEBUG)
    logging.getLogger("realtime.websockets").setLevel(logging.DEBUG)
    async with FakeServer(require_key="sk-other") as server:
        with pytest.raises(AuthenticationError) as info:
            async with rs.connect(url=server.url, api_key=KEY):
                pass
        ctx = rs.connect(url=server.url, api_key=lambda: KEY)
        with pytest.raises(AuthenticationError):
            await ctx
        assert KEY not in repr(ctx.session) and KEY not in repr(ctx.session.endpoint)
    assert KEY not in str(info.value)
    assert "401" in str(info.value)
    assert "Authorization" in caplog.text  # the handshake was logged, redacted
    assert KEY not in caplog.text
    for record in caplog.records:
        assert KEY not in record.getMessage()


async def test_connection_refused_is_connection_error() -> None:
    """Nothing listening: ConnectionError naming the URL without the query."""
    async with FakeServer() as server:
        url = server.url
    with pytest.raises(ConnectionError) as info:
        async with rs.connect(url=url, connect_timeout=2):
            pass
    assert "127.0.0.1" in str(info.value)


def test_missing_key_for_remote_url_raises_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """connect() with no key for a remote server fails at once with ConfigError."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_REALTIME_URL", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        rs.connect()


async def test_expiry_warning_event() -> None:
    """session.created with expires_at yields a session.expiring event ahead of it."""
    import time

    from realtime.testing import session_created

    expires = int(time.time()) + 2
    script = [emit(session_created("ga", expires_at=expires))]
    async with (
        FakeServer(script, hello=False) as server,
        rs.connect(url=server.url, expiry_warning=5) as s,
    ):
        warning = await s.wait_for("session.expiring", timeout=5)
    assert warning.expires_at == expires  # type: ignore[attr-defined]
    assert 0 <= warning.seconds_left <= 5  # type: ignore[attr-defined]


@DIALECTS
async def test_late_input_transcription_lands_in_user_item(dialect: str) -> None:
    """An input transcription arriving after the response finished fills the user item."""
    ev = ServerEvents(dialect)
    user = ev.user_audio_item("item_user")
    script = [
        emit(ev.item_added(user)),
        emit(ev.response_created("resp_1")),
        emit(ev.output_item_added("resp_1", ev.message_item("item_bot"))),
        emit(ev.transcript_delta("resp_1", "item_bot", "Sure.")),
        emit(ev.response_done("resp_1", output=[ev.message_item("item_bot", status="completed")])),
        emit(ev.input_transcription_completed("item_user", "what time is it")),
    ]
    got: list[ServerEvent] = []
    async with FakeServer(script) as server:
        ctx = rs.connect(url=server.url, dialect=dialect)
        ctx.session.on("conversation.item.input_audio_transcription.*", got.append)
        async with ctx as s:
            await s.wait_for("conversation.item.input_audio_transcription.completed", timeout=5)
            item = s.conversation.get("item_user")
            assert item is not None
            assert item.transcript == "what time is it"
            assert [i.id for i in s.conversation.items] == ["item_user", "item_bot"]
            assert s.responses.get("resp_1") is not None
            assert s.responses.get("resp_1").status == "completed"  # type: ignore[union-attr]
    assert len(got) == 1


# --- framing -------------------------------------------------------------------------------


async def test_pings_fragments_and_big_frames_while_streaming() -> None:
    """Pings are answered, fragmented and multi-megabyte messages arrive whole, in order."""
    big = "x" * (3 * 1024 * 1024)
    async with FakeServer() as server, rs.connect(url=server.url) as s:
        ws = server.connection.ws
        assert ws is not None
        await server.send({"type": "custom.one"})
        pong = await ws.ping()
        await asyncio.wait_for(pong, 5)  # the client answered while in its fast path
        await ws.send(['{"type":"custom.', "frag", 'mented","n":2}'])
        await server.send({"type": "custom.big", "blob": big})
        await ws.ping()
        await server.send({"type": "custom.last"})
        seen = []
        async for event in s:
            seen.append(event)
            if event.type == "custom.last":
                break
    assert [e.type for e in seen] == [
        "session.created",
        "custom.one",
        "custom.fragmented",
        "custom.big",
        "custom.last",
    ]
    assert seen[3].raw["blob"] == big  # type: ignore[attr-defined]


async def test_message_over_max_size_closes_with_1009() -> None:
    """A message larger than max_size fails the connection with code 1009."""
    async with (
        FakeServer([delay(0.05), emit({"type": "custom.big", "blob": "y" * 5000})]) as server,
        rs.connect(url=server.url, max_size=4096) as s,
    ):
        await asyncio.wait_for(s.wait_closed(), 5)
        with pytest.raises(ConnectionClosed) as info:
            await s.commit_audio()
        assert info.value.code == 1009


async def test_malformed_frame_is_skipped() -> None:
    """A frame that is not valid JSON is logged and skipped; the session continues."""
    script = [emit("{not json", {"type": "custom.ok"})]
    async with FakeServer(script) as server, rs.connect(url=server.url) as s:
        await s.wait_for("custom.ok", timeout=5)
        assert s.protocol_errors == 1


async def test_frames_split_at_every_byte_boundary() -> None:
    """Frames cut into tiny TCP writes (7/16/64-bit lengths, a ping between) arrive whole."""
    import json as _json

    from websockets.frames import Frame, Opcode

    sizes = [10, 300, 70_000]
    raw = b"".join(
        Frame(
            Opcode.TEXT, _json.dumps({"type": "custom.sized", "pad": "p" * n}).encode()
        ).serialize(mask=False)
        for n in sizes
    )
    ping = Frame(Opcode.PING, b"hi").serialize(mask=False)
    first_end = len(raw) - len(raw) // 2
    async with FakeServer() as server, rs.connect(url=server.url) as s:
        ws = server.connection.ws
        assert ws is not None
        pieces = [raw[i : min(i + 7, first_end)] for i in range(0, first_end, 7)]
        for piece in pieces[:40]:
            ws.transport.write(piece)
            await asyncio.sleep(0)
        rest = b"".join(pieces[40:])
        ws.transport.write(rest[:3])
        await asyncio.sleep(0.01)
        ws.transport.write(rest[3:] + raw[first_end:] + ping)
        got = []
        async for event in s:
            if event.type == "custom.sized":
                got.append(len(event.raw["pad"]))  # type: ignore[attr-defined]
                if len(got) == len(sizes):
                    break
        assert got == sizes
        await server.send({"type": "custom.after"})
        await s.wait_for("custom.after", timeout=5)


async def test_close_from_inside_a_handler() -> None:
    """A handler may close the session; close() returns promptly and the session ends."""
    closed: list[bool] = []
    async with FakeServer([emit({"type": "custom.stop"})]) as server:
        ctx = rs.connect(url=server.url)

        @ctx.session.on("custom.stop")
        async def stop(event: ServerEvent) -> None:
            await ctx.session.close()
            closed.append(True)

        async with ctx as s:
            await asyncio.wait_for(s.wait_closed(), 5)
    assert closed == [True]
    assert not s.is_open


@DIALECTS
async def test_response_state_through_a_stream_of_deltas(dialect: str) -> None:
    """The tracker sees created -> in_progress -> completed; a late delta is still reported."""
    ev = ServerEvents(dialect)
    script = [
        emit(ev.response_created("r1")),
        emit(ev.output_item_added("r1", ev.message_item("item_a"))),
        emit(*[ev.audio_delta("r1", "item_a", b"\0\0" * 240) for _ in range(5)]),
        emit({"type": "custom.mid"}),
        emit(ev.transcript_delta("r1", "item_a", "hi")),
        emit(
            ev.response_done("r1", usage={"total_tokens": 7, "input_tokens": 3, "output_tokens": 4})
        ),
        emit(ev.audio_delta("r1", "item_a", b"\0\0")),
        emit({"type": "custom.end"}),
    ]
    async with FakeServer(script) as server, rs.connect(url=server.url, dialect=dialect) as s:
        seen = []
        async for event in s:
            seen.append(event.type)
            if event.type == "custom.end":
                break
        assert "custom.mid" in seen
        state = s.responses.get("r1")
        assert state is not None and state.status == "completed"
        assert s.usage.total_tokens == 7
        assert len(s.responses.protocol_errors) == 1  # the delta after response.done
        assert s.conversation.get("item_a").audio_ms == pytest.approx(50 + 2 / 48)  # type: ignore[union-attr]


async def test_text_that_is_not_unicode_is_refused_and_the_session_keeps_sending() -> None:
    """A lone surrogate (text from a bad decode) raises ConfigError at send time, whether
    the send queue is empty or not, and everything sent afterwards still goes out (the
    writer used to die on it silently while the session claimed to be open)."""
    bad = {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "caf\ud800"}],
        },
    }
    async with FakeServer(handler=acknowledge) as server, rs.connect(url=server.url) as session:
        with pytest.raises(ConfigError, match="not valid Unicode"):
            await session.send(bad)
        with pytest.raises(ConfigError, match="not valid Unicode"):
            await session.send_text("caf\ud800")
        # with frames queued ahead of it (the writer has not run yet)
        queued = [asyncio.ensure_future(session.send({"type": "input_audio_buffer.clear"}))]
        with pytest.raises(ConfigError, match="not valid Unicode"):
            await session.send(bad)
        await asyncio.gather(*queued)
        await session.send({"type": "input_audio_buffer.commit"})
        await server.wait_received("input_audio_buffer.commit")
        assert session.is_open
        assert server.received_types() == ["input_audio_buffer.clear", "input_audio_buffer.commit"]
