"""Tests of realtime.testing.FakeServer with a plain websockets client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from realtime.exceptions import ServerError
from realtime.testing import (
    Connection,
    FakeServer,
    close,
    delay,
    drop,
    emit,
    expect,
    matches,
    reply,
    session_created,
)


async def recv_json(ws: Any) -> dict[str, Any]:
    """Receive one frame as JSON."""
    return dict(json.loads(await asyncio.wait_for(ws.recv(), 5)))


def test_matches_type_glob_partial_and_predicate() -> None:
    """Type strings, globs, partial dicts and predicates all match as documented."""
    ev = {"type": "response.create", "response": {"modalities": ["text"], "x": 1}}
    assert matches(ev, "response.create")
    assert matches(ev, "response.*")
    assert not matches(ev, "session.update")
    assert matches(ev, {"type": "response.create", "response": {"x": 1}})
    assert not matches(ev, {"response": {"x": 2}})
    assert not matches(ev, {"missing": 1})
    assert matches(ev, lambda e: "response" in e)


def test_session_created_shapes() -> None:
    """session_created builds a GA or beta shaped event with overrides."""
    ga = session_created("ga", expires_at=123)
    assert ga["type"] == "session.created"
    assert ga["session"]["type"] == "realtime" and ga["session"]["expires_at"] == 123
    beta = session_created("beta")
    assert "type" not in beta["session"] and "modalities" in beta["session"]


async def test_script_expect_reply_emit_and_record() -> None:
    """A script waits for a client event, replies with its event_id and records headers."""
    script = [
        expect("session.update"),
        reply(lambda ev: {"type": "session.updated", "echo": ev["event_id"]}),
        emit({"type": "custom.one"}, '{"type":"custom.raw"}'),
    ]
    async with FakeServer(script) as server:
        assert server.url.startswith("ws://127.0.0.1:") and server.url.endswith("/v1")
        async with ws_connect(
            server.url + "/realtime?model=m", additional_headers={"OpenAI-Beta": "realtime=v1"}
        ) as ws:
            hello = await recv_json(ws)
            assert hello["type"] == "session.created" and "modalities" in hello["session"]
            await ws.send(json.dumps({"type": "noise"}))
            await ws.send(json.dumps({"type": "session.update", "event_id": "e1"}))
            updated = await recv_json(ws)
            assert updated["echo"] == "e1" and updated["event_id"]
            assert (await recv_json(ws))["type"] == "custom.one"
            assert (await recv_json(ws))["type"] == "custom.raw"
        conn = server.connection
        assert conn.path == "/v1/realtime?model=m"
        assert conn.dialect == "beta"
        assert server.received_types() == ["noise", "session.update"]


async def test_strict_expect_failure_raises_on_exit() -> None:
    """A strict expectation that sees another event fails the script on exit."""
    with pytest.raises(AssertionError, match="expected 'a'"):
        async with (
            FakeServer([expect("a", strict=True)], hello=False) as server,
            ws_connect(server.url) as ws,
        ):
            await ws.send(json.dumps({"type": "b"}))
            await server.wait_received("b")
            await asyncio.sleep(0.05)


async def test_expect_timeout_is_reported() -> None:
    """An expectation that is never met is reported after its timeout."""
    with pytest.raises(AssertionError, match="no client event matching"):
        async with (
            FakeServer([expect("never", timeout=0.1)], hello=False) as server,
            ws_connect(server.url),
        ):
            await asyncio.sleep(0.3)


async def test_close_with_code_and_reason() -> None:
    """A close step closes cleanly with the given code and reason."""
    async with (
        FakeServer([delay(0.01), close(4000, "bye")], hello=False) as server,
        ws_connect(server.url) as ws,
    ):
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 4000 and info.value.rcvd.reason == "bye"


async def test_drop_is_abnormal_closure() -> None:
    """A drop step aborts TCP: the client sees 1006 and no close frame."""
    async with (
        FakeServer([emit({"type": "x"}), delay(0.05), drop()], hello=False) as server,
        ws_connect(server.url) as ws,
    ):
        assert (await recv_json(ws))["type"] == "x"
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd is None
        assert ws.close_code == 1006


async def test_free_running_handler_and_push() -> None:
    """After the script the handler answers each client event; send() pushes events."""

    async def handler(event: dict[str, Any], conn: Connection) -> list[dict[str, Any]]:
        return [{"type": "ack", "of": event.get("type")}]

    async with FakeServer(handler=handler, hello=False) as server:
        async with ws_connect(server.url) as ws:
            await ws.send(json.dumps({"type": "ping.me"}))
            assert (await recv_json(ws))["of"] == "ping.me"
            await server.send({"type": "pushed"})
            assert (await recv_json(ws))["type"] == "pushed"
            await ws.send("not json")
            await ws.send(json.dumps({"type": "two"}))
            assert (await recv_json(ws))["of"] is None
            assert (await recv_json(ws))["of"] == "two"
        assert server.received[1] == {"raw": "not json"}


async def test_handler_exception_is_a_failure() -> None:
    """A handler that raises is reported on exit and the connection keeps serving."""

    def handler(event: dict[str, Any], conn: Connection) -> list[dict[str, Any]]:
        if event["type"] == "bad":
            raise ValueError("boom")
        return [{"type": "ok"}]

    with pytest.raises(AssertionError, match="boom"):
        async with FakeServer(handler=handler, hello=False) as server, ws_connect(server.url) as ws:
            await ws.send(json.dumps({"type": "bad"}))
            await ws.send(json.dumps({"type": "good"}))
            assert (await recv_json(ws))["type"] == "ok"


async def test_successive_connections_take_successive_scripts() -> None:
    """scripts= gives each connection its own script; later ones get none."""
    scripts = [[emit({"type": "first"})], [emit({"type": "second"})]]
    async with FakeServer(scripts=scripts, hello=False) as server:
        for expected in ("first", "second"):
            async with ws_connect(server.url) as ws:
                assert (await recv_json(ws))["type"] == expected
        async with ws_connect(server.url) as ws:
            await ws.send(json.dumps({"type": "third"}))
            await server.wait_received("third")
        assert [c.index for c in server.connections] == [0, 1, 2]
        await server.wait_connections(3)


async def test_require_key_refuses_bad_credentials() -> None:
    """require_key answers 401 to a wrong key and accepts bearer and api-key headers."""
    async with FakeServer(require_key="sk-good", hello=False) as server:
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(server.url, additional_headers={"Authorization": "Bearer no"}):
                pass
        assert info.value.response.status_code == 401
        assert server.refused == 1
        async with ws_connect(server.url, additional_headers={"Authorization": "Bearer sk-good"}):
            pass
        async with ws_connect(server.url, additional_headers={"api-key": "sk-good"}):
            pass
        assert len(server.connections) == 2


async def test_wait_received_times_out_with_assertion() -> None:
    """wait_received raises AssertionError when nothing matching arrives."""
    async with FakeServer(hello=False) as server:
        with pytest.raises(AssertionError, match="timed out"):
            await server.wait_received("x", timeout=0.05)
        with pytest.raises(RuntimeError):
            _ = server.connection


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_server_event_builders_parse_in_their_dialect(dialect: str) -> None:
    """Every ServerEvents builder produces an event the dialect's parser accepts."""
    from realtime.events import UnknownServerEvent, parse_server_event
    from realtime.testing import ServerEvents

    ev = ServerEvents(dialect)
    msg = ev.message_item("item_b", status="completed")
    call = ev.function_call_item("item_c", "call_1", "f", "{}")
    events = [
        ev.response_created("r1"),
        ev.output_item_added("r1", ev.message_item("item_b")),
        ev.audio_delta("r1", "item_b", b"\0\0"),
        ev.transcript_delta("r1", "item_b", "hi"),
        ev.arguments_done("r1", "item_c", "call_1", "f", "{}"),
        ev.output_item_done("r1", call),
        ev.response_done("r1", output=[msg, call], usage={"total_tokens": 3}),
        ev.speech_started("item_u", 100),
        ev.input_transcription_completed("item_u", "hello"),
        ev.item_added(ev.user_audio_item("item_u")),
        ev.error("bad", code="x", event_id="evt_1"),
        session_created(dialect),
    ]
    for data in events:
        parsed = parse_server_event(json.dumps(data), dialect)  # type: ignore[arg-type]
        assert not isinstance(parsed, UnknownServerEvent), data["type"]
        assert parsed.type == data["type"]


@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_acknowledge_answers_requests(dialect: str) -> None:
    """acknowledge answers each request type with its parseable acknowledgement."""
    from realtime.events import UnknownServerEvent, parse_server_event
    from realtime.testing import acknowledge

    headers = {"OpenAI-Beta": "realtime=v1"} if dialect == "beta" else {}
    requests = [
        {"type": "session.update", "session": {"instructions": "x"}},
        {"type": "input_audio_buffer.commit"},
        {"type": "input_audio_buffer.clear"},
        {"type": "conversation.item.create", "item": {"type": "message", "role": "user"}},
        {"type": "conversation.item.retrieve", "item_id": "i1"},
        {
            "type": "conversation.item.truncate",
            "item_id": "i1",
            "content_index": 0,
            "audio_end_ms": 5,
        },
        {"type": "conversation.item.delete", "item_id": "i1"},
    ]
    if dialect == "beta":
        requests.append({"type": "transcription_session.update", "session": {}})
    async with (
        FakeServer(handler=acknowledge) as server,
        ws_connect(server.url, additional_headers=headers) as ws,
    ):
        await recv_json(ws)  # session.created
        for request in requests:
            await ws.send(json.dumps(request))
            answer = await recv_json(ws)
            parsed = parse_server_event(json.dumps(answer), dialect)  # type: ignore[arg-type]
            assert not isinstance(parsed, UnknownServerEvent)
            if request["type"] == "conversation.item.create" and dialect == "ga":
                assert (await recv_json(ws))["type"] == "conversation.item.done"
        await ws.send(json.dumps({"type": "response.cancel"}))
        await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
        assert (await recv_json(ws))["type"] == "input_audio_buffer.cleared"


async def drive(url: str, recorder: Any = None, drop_link: Any = None) -> list[str]:
    """One client run: a text turn, a refused commit, a drop, another turn."""
    from realtime.reconnect import ReconnectPolicy
    from realtime.session import connect

    policy = ReconnectPolicy(max_attempts=2, base_delay=0.01, jitter=0.0)
    ctx = connect(url=url, reconnect=policy)
    seen: list[str] = []
    ctx.session.on("*", lambda e: seen.append(e.type))
    if recorder is not None:
        ctx.session.add_send_listener(recorder.client)
        ctx.session.add_receive_listener(recorder.server)
    async with ctx as s:
        await s.send_text("Hi", wait=True, timeout=5)
        with pytest.raises(ServerError):
            await s.commit_audio(timeout=5)
        async with s.expect("connection.restored", timeout=5):
            if drop_link is not None:
                drop_link()
        await s.send_text("Again", timeout=5)
        await s.flush(timeout=5)
    return seen


async def test_a_recording_re_drives_a_client(tmp_path: Any) -> None:
    """FakeServer.from_recording answers a new client as the recorded server did: ids the
    client makes up (event ids, item ids) are substituted, so acks and errors still match,
    and the recorded drop is replayed."""
    from realtime.recording import Recorder
    from realtime.testing import ServerEvents, acknowledge, recording_scripts

    path = tmp_path / "bug.jsonl"
    ev = ServerEvents("ga")

    def answer(event: dict[str, Any], conn: Connection) -> list[dict[str, Any]]:
        if event.get("type") == "response.create":
            return [ev.response_created("resp_1"), ev.response_done("resp_1")]
        if event.get("type") == "input_audio_buffer.commit":
            code = "input_audio_buffer_commit_empty"
            return [ev.error("buffer too small", code=code, event_id=event["event_id"])]
        return acknowledge(event, conn)

    async with FakeServer(handler=answer) as server:
        with Recorder(path) as recorder:

            def drop_link() -> None:
                ws = server.connection.ws
                assert ws is not None
                ws.transport.abort()

            recorded = await drive(server.url, recorder, drop_link)
    assert len(recording_scripts(path)) == 2
    async with FakeServer.from_recording(path) as replayed:
        assert await drive(replayed.url) == recorded
        assert replayed.failures == []
