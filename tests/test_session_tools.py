"""Session tool calling against the FakeServer: definitions, parallel calls, failures."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import realtime.session as rs
from realtime.events.config import SessionConfig
from realtime.testing import FakeServer, ServerEvents, acknowledge

DIALECTS = pytest.mark.parametrize("dialect", ["ga", "beta"])


def function_call_response(
    ev: ServerEvents, response_id: str, calls: list[tuple[str, str, str]]
) -> list[dict[str, Any]]:
    """The server events of one response made of function calls (item, call id, name+args)."""
    frames: list[dict[str, Any]] = [ev.response_created(response_id)]
    items = []
    for index, (call_id, name, args) in enumerate(calls):
        item_id = f"item_{call_id}"
        frames.append(
            ev.output_item_added(
                response_id,
                ev.function_call_item(item_id, call_id, name, "", status="in_progress"),
                index,
            )
        )
        items.append(ev.function_call_item(item_id, call_id, name, args))
    for index, (call_id, name, args) in enumerate(calls):
        frames.append(ev.arguments_done(response_id, f"item_{call_id}", call_id, name, args))
        frames.append(ev.output_item_done(response_id, items[index], index))
    frames.append(ev.response_done(response_id, output=items))
    return frames


async def outputs_then_follow_up(
    server: FakeServer, session: rs.Session, ev: ServerEvents, n_outputs: int
) -> dict[str, dict[str, Any]]:
    """Wait for the tool outputs and the single follow-up response.create; returns outputs."""
    await server.wait_received("response.create", timeout=10)
    # Let the follow-up response finish so a duplicate request would have gone out.
    await server.send(ev.response_created("resp_follow"), ev.response_done("resp_follow"))
    await server.send({"type": "custom.marker"})
    await session.wait_for("custom.marker", timeout=5)
    await session.flush(timeout=5)
    outputs = {
        e["item"]["call_id"]: e["item"]
        for e in server.received
        if e["type"] == "conversation.item.create"
        and e["item"].get("type") == "function_call_output"
    }
    assert len(outputs) == n_outputs
    assert server.received_types().count("response.create") == 1
    types = server.received_types()
    last_output = max(i for i, t in enumerate(types) if t == "conversation.item.create")
    assert types.index("response.create") > last_output
    return outputs


@DIALECTS
async def test_tool_definitions_go_out_in_session_config(dialect: str) -> None:
    """Registered tools are added to session.update with their JSON schema."""
    async with FakeServer(handler=acknowledge) as server:
        ctx = rs.connect(url=server.url, dialect=dialect, config=SessionConfig(instructions="x"))
        session = ctx.session

        @session.tool
        def get_weather(city: str, unit: str = "c") -> dict[str, Any]:
            """Current weather for a city.

            Args:
                city: The city name.
                unit: c or f.
            """
            return {"city": city, "temp": 21}

        async with ctx:
            pass
    tools = server.received[0]["session"]["tools"]
    assert [t["name"] for t in tools] == ["get_weather"]
    assert tools[0]["type"] == "function"
    assert tools[0]["description"] == "Current weather for a city."
    assert tools[0]["parameters"]["required"] == ["city"]
    assert server.received[0]["session"]["tool_choice"] == "auto"


@DIALECTS
async def test_two_parallel_calls_then_one_response_create(dialect: str) -> None:
    """Two calls in one response both run; their outputs go out, then one response.create."""
    ev = ServerEvents(dialect)
    started: list[str] = []
    release = asyncio.Event()

    async def get_weather(city: str) -> dict[str, Any]:
        """Weather."""
        started.append(city)
        if len(started) == 2:
            release.set()
        await asyncio.wait_for(release.wait(), 5)  # both calls run at the same time
        return {"city": city, "temp": 20 + len(city)}

    def get_time(zone: str) -> str:
        """Time."""
        return f"12:00 {zone}"

    async with (
        FakeServer(handler=acknowledge) as server,
        rs.connect(url=server.url, dialect=dialect, tools=[get_weather, get_time]) as session,
    ):
        frames = function_call_response(
            ev,
            "resp_1",
            [
                ("call_a", "get_weather", json.dumps({"city": "Paris"})),
                ("call_b", "get_weather", json.dumps({"city": "Oslo"})),
            ],
        )
        await server.send(*frames)
        outputs = await outputs_then_follow_up(server, session, ev, 2)
    assert sorted(started) == ["Oslo", "Paris"]
    assert json.loads(outputs["call_a"]["output"]) == {"city": "Paris", "temp": 25}
    assert json.loads(outputs["call_b"]["output"]) == {"city": "Oslo", "temp": 24}
    fc = session.conversation.get("item_call_a")
    assert fc is not None and fc.name == "get_weather"


@DIALECTS
async def test_raising_hanging_and_unknown_tools_give_error_outputs(dialect: str) -> None:
    """A tool that raises, one that hangs past its timeout and an unknown name: error outputs."""
    ev = ServerEvents(dialect)

    async with FakeServer(handler=acknowledge) as server:
        ctx = rs.connect(url=server.url, dialect=dialect)
        session = ctx.session

        @session.tool
        def explode(reason: str) -> str:
            """Always fails."""
            raise ValueError(f"kaboom: {reason}")

        @session.tool(timeout=0.2)
        async def hang() -> str:
            """Never returns in time."""
            await asyncio.sleep(30)
            return "late"

        async with ctx:
            frames = function_call_response(
                ev,
                "resp_1",
                [
                    ("call_x", "explode", json.dumps({"reason": "test"})),
                    ("call_h", "hang", "{}"),
                    ("call_u", "no_such_tool", "{}"),
                    ("call_v", "explode", json.dumps({"wrong": 1})),
                ],
            )
            await server.send(*frames)
            outputs = await outputs_then_follow_up(server, session, ev, 4)
    errors = {cid: json.loads(item["output"])["error"] for cid, item in outputs.items()}
    assert "kaboom: test" in errors["call_x"] and "ValueError" in errors["call_x"]
    assert "timed out" in errors["call_h"]
    assert "unknown tool" in errors["call_u"]
    assert "invalid arguments" in errors["call_v"]


@DIALECTS
async def test_cancelled_response_gets_outputs_but_no_follow_up(dialect: str) -> None:
    """Calls of a cancelled response get outputs but no automatic response.create."""
    ev = ServerEvents(dialect)

    def ping() -> str:
        """Ping."""
        return "pong"

    async with (
        FakeServer(handler=acknowledge) as server,
        rs.connect(url=server.url, dialect=dialect, tools=[ping]) as session,
    ):
        frames = function_call_response(ev, "resp_1", [("call_p", "ping", "{}")])
        frames[-1]["response"]["status"] = "cancelled"
        await server.send(*frames)
        await server.wait_received({"type": "conversation.item.create"}, timeout=5)
        await server.send({"type": "custom.marker"})
        await session.wait_for("custom.marker", timeout=5)
        await session.flush(timeout=5)
        assert "response.create" not in server.received_types()


async def test_register_tool_after_connect_goes_out_with_update() -> None:
    """A tool registered after connecting is included in the next update()."""

    def later(x: int) -> int:
        """Add one."""
        return x + 1

    async with (
        FakeServer(handler=acknowledge) as server,
        rs.connect(url=server.url) as session,
    ):
        session.register_tool(later, name="add_one")
        await session.update()
    assert [t["name"] for t in server.received[0]["session"]["tools"]] == ["add_one"]
