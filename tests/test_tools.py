"""Tests for realtime.tools: schemas, validation, execution and the call coordinator."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from realtime.events import (
    BetaConversationItemCreateEvent,
    BetaResponseCreateEvent,
    ClientEvent,
    ServerEvent,
    encode_client_event,
    parse_server_event,
)
from realtime.exceptions import ToolError
from realtime.response_state import ResponseTracker
from realtime.tools import (
    Tool,
    ToolCall,
    ToolCallCoordinator,
    ToolRegistry,
    ToolResult,
    error_output,
    parse_docstring,
    tool,
)


def ev(dialect: str, **fields: Any) -> ServerEvent:
    """Parse a server event of ``dialect`` from keyword fields."""
    fields.setdefault("event_id", "evt_s")
    return parse_server_event(json.dumps(fields), dialect)  # type: ignore[arg-type]


def wire(events: list[ClientEvent]) -> list[dict[str, Any]]:
    """The JSON objects the client events encode to."""
    return [json.loads(encode_client_event(e)) for e in events]


def get_weather(city: str, unit: Literal["c", "f"] = "c", days: int = 1) -> dict[str, Any]:
    """Current weather for a city.

    Spans two lines of summary.

    Args:
        city: The city name,
            e.g. "Paris".
        unit: Temperature unit.
        days (int): How many days.

    Returns:
        The forecast.
    """
    return {"city": city, "unit": unit, "days": days}


class Point(BaseModel):
    """A 2D point."""

    x: float
    y: float


# -- schema -----------------------------------------------------------------------


def test_parse_docstring_description_and_args() -> None:
    """The first paragraph is the description; Args lines (with continuations) are parsed."""
    desc, args = parse_docstring(get_weather.__doc__)
    assert desc == "Current weather for a city."
    assert args == {
        "city": 'The city name, e.g. "Paris".',
        "unit": "Temperature unit.",
        "days": "How many days.",
    }


def test_parse_docstring_empty() -> None:
    """A missing docstring gives no description and no parameter docs."""
    assert parse_docstring(None) == ("", {})


def test_schema_from_hints_and_docstring() -> None:
    """Types, defaults, enums and descriptions end up in the JSON schema, without titles."""
    t = Tool(get_weather)
    params = t.parameters
    assert params["type"] == "object"
    assert params["required"] == ["city"]
    props = params["properties"]
    assert props["city"] == {"type": "string", "description": 'The city name, e.g. "Paris".'}
    assert props["unit"]["enum"] == ["c", "f"]
    assert props["unit"]["default"] == "c"
    assert props["days"]["type"] == "integer"
    assert "title" not in json.dumps(params)


def test_definition_wire_shape() -> None:
    """definitions() gives the wire tool shape."""
    reg = ToolRegistry()
    reg.register(get_weather)
    (d,) = reg.definitions()
    assert set(d) == {"type", "name", "description", "parameters"}
    assert d["type"] == "function" and d["name"] == "get_weather"
    assert d["description"] == "Current weather for a city."


def test_nested_model_parameter_and_property_named_title() -> None:
    """A pydantic model parameter is described via $defs; a parameter named title survives."""

    def place(title: str, where: Point) -> str:
        """Place a labelled point."""
        return f"{title}@{where.x},{where.y}"

    t = Tool(place)
    assert "title" in t.parameters["properties"]
    assert t.validate('{"title": "a", "where": {"x": 1, "y": 2}}')["where"] == Point(x=1, y=2)


def test_field_defaults_and_extra_properties() -> None:
    """pydantic Field defaults keep their constraints; the schema forbids extra properties."""

    def count(n: int = Field(3, ge=0), step: Annotated[int, Field(le=10)] = 1) -> list[int]:
        """Count.

        Args:
            n: How many.
        """
        return list(range(0, n * step, step))

    t = Tool(count)
    props = t.parameters["properties"]
    assert props["n"]["minimum"] == 0 and props["n"]["description"] == "How many."
    assert props["step"]["maximum"] == 10
    assert t.parameters["additionalProperties"] is False
    assert t.validate("{}") == {"n": 3, "step": 1}
    with pytest.raises(ToolError, match="n"):
        t.validate('{"n": -1}')


def test_decorator_forms_and_overrides() -> None:
    """@registry.tool, @registry.tool(...) and module-level @tool all register."""
    reg = ToolRegistry()

    @reg.tool
    def ping() -> str:
        """Ping."""
        return "pong"

    @reg.tool(name="add_numbers", description="Adds.", timeout=2)
    def add(a: int, b: int) -> int:
        return a + b

    @tool(timeout=1)
    def shout(text: str) -> str:
        """Upper-case the text."""
        return text.upper()

    reg.register(shout)
    assert reg.names == ["ping", "add_numbers", "shout"]
    assert reg.get("add_numbers") is not None and reg.get("add_numbers").timeout == 2  # type: ignore[union-attr]
    assert reg.get("add_numbers").description == "Adds."  # type: ignore[union-attr]
    assert ping() == "pong" and shout("a") == "A"  # decorated functions stay callable
    assert "shout" in reg and len(reg) == 3


def test_registration_errors() -> None:
    """Duplicates, *args, bad names and bad timeouts raise ToolError."""
    reg = ToolRegistry()
    reg.register(get_weather)
    with pytest.raises(ToolError, match="already registered"):
        reg.register(get_weather)

    def varargs(*args: int) -> None:
        """Nope."""

    with pytest.raises(ToolError, match=r"\*args"):
        reg.register(varargs)
    with pytest.raises(ToolError, match="invalid tool name"):
        reg.register(get_weather, name="has space")
    with pytest.raises(ToolError, match="timeout"):
        reg.register(get_weather, name="w2", timeout=0)
    with pytest.raises(ToolError, match="no tool"):
        reg.unregister("missing")
    reg.unregister("get_weather")
    assert reg.definitions() == []


# -- validation -------------------------------------------------------------------


def test_validate_ok_and_empty_arguments() -> None:
    """Valid JSON gives keyword arguments with defaults; an empty string means {}."""
    t = Tool(get_weather)
    assert t.validate('{"city": "Oslo"}') == {"city": "Oslo", "unit": "c", "days": 1}

    def now() -> str:
        """Time."""
        return "t"

    assert Tool(now).validate("") == {}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ('{"city": "Oslo"', "not valid JSON"),
        ('["Oslo"]', "must be a JSON object"),
        ('{"city": 3}', "city"),
        ('{"unit": "c"}', "city: Field required"),
        ('{"city": "Oslo", "unit": "k"}', "unit"),
        ('{"city": "Oslo", "extra": 1}', "extra"),
    ],
)
def test_validate_errors(arguments: str, message: str) -> None:
    """Broken JSON, non-objects, wrong types, missing and unknown fields raise ToolError."""
    with pytest.raises(ToolError, match=message):
        Tool(get_weather).validate(arguments)


# -- execution --------------------------------------------------------------------


async def test_execute_sync_runs_in_thread() -> None:
    """A sync tool runs in a worker thread and its dict result is JSON."""
    reg = ToolRegistry()
    seen: list[int] = []

    @reg.tool
    def where(city: str) -> dict[str, Any]:
        """Where."""
        seen.append(threading.get_ident())
        return {"city": city}

    res = await reg.execute(ToolCall("c1", "where", '{"city": "Rome"}'))
    assert res.ok and json.loads(res.output) == {"city": "Rome"}
    assert seen and seen[0] != threading.get_ident()
    assert res.call_id == "c1" and res.name == "where"


async def test_execute_async_and_string_result() -> None:
    """An async tool is awaited; a str result is passed through unchanged."""
    reg = ToolRegistry()

    @reg.tool
    async def echo(text: str) -> str:
        """Echo."""
        await asyncio.sleep(0)
        return text

    res = await reg.execute(ToolCall("c1", "echo", '{"text": "hi"}'))
    assert res.output == "hi" and res.error is None


async def test_execute_tool_that_raises() -> None:
    """An exception becomes an error output naming it."""
    reg = ToolRegistry()

    @reg.tool
    def broken() -> None:
        """Always fails."""
        raise RuntimeError("disk on fire")

    res = await reg.execute(ToolCall("c1", "broken", "{}"))
    assert not res.ok
    assert json.loads(res.output) == {"error": "tool 'broken' raised RuntimeError: disk on fire"}


async def test_execute_async_tool_hangs_past_timeout() -> None:
    """A hanging async tool is cancelled at its timeout and yields an error output."""
    reg = ToolRegistry()
    cancelled = asyncio.Event()

    @reg.tool(timeout=0.05)
    async def hang() -> None:
        """Never returns."""
        try:
            await asyncio.sleep(60)
        finally:
            cancelled.set()

    start = time.monotonic()
    res = await reg.execute(ToolCall("c1", "hang", "{}"))
    assert time.monotonic() - start < 5
    assert "timed out after 0.05 s" in json.loads(res.output)["error"]
    assert cancelled.is_set()


async def test_execute_sync_tool_hangs_past_timeout() -> None:
    """A hanging sync tool yields a timeout error output (the thread finishes on its own)."""
    reg = ToolRegistry(default_timeout=0.05)

    @reg.tool
    def slow() -> str:
        """Sleeps."""
        time.sleep(0.3)
        return "late"

    res = await reg.execute(ToolCall("c1", "slow", "{}"))
    assert res.error is not None and "timed out" in res.error


async def test_execute_unknown_tool_and_broken_arguments() -> None:
    """An unknown name and broken argument JSON both give error outputs, no exception."""
    reg = ToolRegistry()
    reg.register(get_weather)
    unknown = await reg.execute(ToolCall("c1", "nope", "{}"))
    assert json.loads(unknown.output) == {"error": "unknown tool 'nope'"}
    broken = await reg.execute(ToolCall("c2", "get_weather", '{"city": '))
    assert "not valid JSON" in json.loads(broken.output)["error"]
    wrong = await reg.execute(ToolCall("c3", "get_weather", '{"city": 1}'))
    assert "invalid arguments" in json.loads(wrong.output)["error"]


async def test_execute_unserialisable_result() -> None:
    """A result that cannot be JSON-encoded becomes an error output."""
    reg = ToolRegistry()

    @reg.tool
    def weird() -> object:
        """Returns an object."""
        return object()

    res = await reg.execute(ToolCall("c1", "weird", "{}"))
    assert not res.ok and "not JSON" in json.loads(res.output)["error"]


async def test_execute_propagates_caller_cancellation() -> None:
    """Cancelling the task running execute() cancels it (it is not turned into output)."""
    reg = ToolRegistry()

    @reg.tool
    async def hang() -> None:
        """Never returns."""
        await asyncio.sleep(60)

    task = asyncio.create_task(reg.execute(ToolCall("c1", "hang", "{}")))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_error_output_is_json() -> None:
    """error_output wraps a message as {"error": ...}."""
    assert json.loads(error_output('bad "x"')) == {"error": 'bad "x"'}


# -- coordinator ------------------------------------------------------------------


def _fc_item(
    item_id: str, call_id: str, name: str, args: str, status: str = "completed"
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": args,
    }


def _two_calls(dialect: str) -> list[ServerEvent]:
    """Server events of a response making two parallel function calls."""
    out: list[ServerEvent] = [
        ev(
            dialect,
            type="response.created",
            response={"id": "r1", "status": "in_progress", "output": []},
        )
    ]
    for i, (call_id, name, args) in enumerate(
        [
            ("call_a", "get_weather", '{"city": "Oslo"}'),
            ("call_b", "get_weather", '{"city": "Rome"}'),
        ]
    ):
        item_id = f"fc{i}"
        out.append(
            ev(
                dialect,
                type="response.output_item.added",
                response_id="r1",
                output_index=i,
                item=_fc_item(item_id, call_id, name, "", "in_progress"),
            )
        )
        out.append(
            ev(
                dialect,
                type="response.function_call_arguments.delta",
                response_id="r1",
                item_id=item_id,
                output_index=i,
                call_id=call_id,
                delta=args,
            )
        )
        done = {
            "type": "response.function_call_arguments.done",
            "response_id": "r1",
            "item_id": item_id,
            "output_index": i,
            "call_id": call_id,
            "arguments": args,
        }
        if dialect == "ga":
            done["name"] = name
        out.append(ev(dialect, **done))
        out.append(
            ev(
                dialect,
                type="response.output_item.done",
                response_id="r1",
                output_index=i,
                item=_fc_item(item_id, call_id, name, args),
            )
        )
    return out


def _response_done(dialect: str, status: str = "completed") -> ServerEvent:
    return ev(
        dialect,
        type="response.done",
        response={
            "id": "r1",
            "status": status,
            "output": [
                _fc_item("fc0", "call_a", "get_weather", '{"city": "Oslo"}'),
                _fc_item("fc1", "call_b", "get_weather", '{"city": "Rome"}'),
            ],
        },
    )


@pytest.mark.parametrize("dialect", ["beta", "ga"])
def test_two_parallel_calls_then_exactly_one_response_create(dialect: str) -> None:
    """Two calls in one response: two outputs, then one response.create after both and done."""
    coord = ToolCallCoordinator()
    sent: list[ClientEvent] = []
    for e in _two_calls(dialect):
        sent += coord.apply(e)
    calls = coord.take_calls()
    assert [(c.call_id, c.name, c.response_id) for c in calls] == [
        ("call_a", "get_weather", "r1"),
        ("call_b", "get_weather", "r1"),
    ]
    assert coord.take_calls() == []  # handed out once
    sent += coord.complete(ToolResult("call_a", "get_weather", '{"t": 1}'))
    sent += coord.apply(_response_done(dialect))
    assert [e.type for e in sent] == ["conversation.item.create"]
    sent += coord.complete(ToolResult("call_b", "get_weather", '{"t": 2}'))
    objs = wire(sent)
    assert [o["type"] for o in objs] == [
        "conversation.item.create",
        "conversation.item.create",
        "response.create",
    ]
    assert [o["item"]["call_id"] for o in objs[:2]] == ["call_a", "call_b"]
    assert objs[0]["item"] == {
        "type": "function_call_output",
        "call_id": "call_a",
        "output": '{"t": 1}',
    }
    # Nothing more, however often the done event is repeated.
    assert coord.apply(_response_done(dialect)) == []
    assert coord.pending == []


def test_results_before_response_done() -> None:
    """When every output is in before response.done, the done event releases response.create."""
    coord = ToolCallCoordinator()
    for e in _two_calls("ga"):
        coord.apply(e)
    for c in coord.take_calls():
        assert [e.type for e in coord.complete(ToolResult(c.call_id, c.name, "ok"))] == [
            "conversation.item.create"
        ]
    assert [e.type for e in coord.apply(_response_done("ga"))] == ["response.create"]


def test_calls_discovered_from_response_done_only() -> None:
    """Calls missed earlier are picked up from response.done's output."""
    coord = ToolCallCoordinator()
    assert coord.apply(_response_done("beta")) == []
    assert {c.call_id for c in coord.take_calls()} == {"call_a", "call_b"}


def test_cancelled_response_gets_outputs_but_no_follow_up() -> None:
    """A cancelled response's calls get outputs but no automatic response.create."""
    coord = ToolCallCoordinator()
    for e in _two_calls("ga"):
        coord.apply(e)
    coord.apply(_response_done("ga", status="cancelled"))
    sent: list[ClientEvent] = []
    for c in coord.take_calls():
        sent += coord.complete(ToolResult(c.call_id, c.name, "x"))
    assert [e.type for e in sent] == ["conversation.item.create"] * 2


def test_auto_respond_off() -> None:
    """auto_respond=False never sends response.create."""
    coord = ToolCallCoordinator(auto_respond=False)
    for e in _two_calls("ga"):
        coord.apply(e)
    coord.apply(_response_done("ga"))
    sent = [
        x for c in coord.take_calls() for x in coord.complete(ToolResult(c.call_id, c.name, "x"))
    ]
    assert [e.type for e in sent] == ["conversation.item.create"] * 2


def test_complete_unknown_or_twice_raises() -> None:
    """A result for an unknown call, or a second result, raises ToolError."""
    coord = ToolCallCoordinator()
    with pytest.raises(ToolError):
        coord.complete(ToolResult("nope", "x", "y"))
    for e in _two_calls("ga"):
        coord.apply(e)
    coord.complete(ToolResult("call_a", "get_weather", "1"))
    with pytest.raises(ToolError, match="already"):
        coord.complete(ToolResult("call_a", "get_weather", "1"))


def test_follow_up_goes_through_tracker_queue() -> None:
    """With a tracker, the follow-up response.create waits while another response is active."""
    tracker = ResponseTracker()
    coord = ToolCallCoordinator(tracker=tracker)
    events = _two_calls("ga")
    for e in events:
        tracker.apply(e)
        coord.apply(e)
    done = _response_done("ga")
    tracker.apply(done)
    coord.apply(done)
    # The server starts another response (server VAD) before the tools finish.
    tracker.apply(ev("ga", type="response.created", response={"id": "r2", "status": "in_progress"}))
    sent = [
        x for c in coord.take_calls() for x in coord.complete(ToolResult(c.call_id, c.name, "x"))
    ]
    assert [e.type for e in sent] == ["conversation.item.create"] * 2
    assert tracker.queued == 1
    released = tracker.apply(
        ev("ga", type="response.done", response={"id": "r2", "status": "completed"})
    )
    assert [e.type for e in released] == ["response.create"]


async def test_end_to_end_with_registry() -> None:
    """Calls from the coordinator run through the registry; failures still produce outputs."""
    reg = ToolRegistry()
    reg.register(get_weather)
    coord = ToolCallCoordinator()
    events = [
        ev(
            "ga",
            type="response.output_item.added",
            response_id="r1",
            output_index=0,
            item=_fc_item("fc0", "call_a", "get_weather", "", "in_progress"),
        ),
        ev(
            "ga",
            type="response.function_call_arguments.done",
            response_id="r1",
            item_id="fc0",
            output_index=0,
            call_id="call_a",
            name="get_weather",
            arguments='{"city": "Oslo"}',
        ),
        ev(
            "ga",
            type="response.function_call_arguments.done",
            response_id="r1",
            item_id="fc1",
            output_index=1,
            call_id="call_b",
            name="launch_rocket",
            arguments="{}",
        ),
        ev(
            "ga",
            type="response.function_call_arguments.done",
            response_id="r1",
            item_id="fc2",
            output_index=2,
            call_id="call_c",
            name="get_weather",
            arguments="{oops",
        ),
        ev("ga", type="response.done", response={"id": "r1", "status": "completed"}),
    ]
    sent: list[ClientEvent] = []
    for e in events:
        sent += coord.apply(e)
    results = await asyncio.gather(*(reg.execute(c) for c in coord.take_calls()))
    for r in results:
        sent += coord.complete(r)
    objs = wire(sent)
    assert [o["type"] for o in objs] == ["conversation.item.create"] * 3 + ["response.create"]
    outputs = {o["item"]["call_id"]: o["item"]["output"] for o in objs[:3]}
    assert json.loads(outputs["call_a"])["city"] == "Oslo"
    assert "unknown tool" in json.loads(outputs["call_b"])["error"]
    assert "not valid JSON" in json.loads(outputs["call_c"])["error"]


def test_beta_coordinator_builds_beta_events() -> None:
    """With dialect="beta" the output and follow-up events are the beta model classes."""
    coord = ToolCallCoordinator(dialect="beta")
    for e in _two_calls("beta"):
        coord.apply(e)
    coord.apply(_response_done("beta"))
    sent = [
        x for c in coord.take_calls() for x in coord.complete(ToolResult(c.call_id, c.name, "x"))
    ]
    assert [type(e) for e in sent] == [
        BetaConversationItemCreateEvent,
        BetaConversationItemCreateEvent,
        BetaResponseCreateEvent,
    ]


async def test_schema_tool_from_json_schema():
    """Tool.from_schema validates against the schema's top level and calls with keywords."""
    from realtime.tools import SchemaTool, Tool, ToolCall, ToolRegistry

    seen = {}

    def lookup(city: str, days: int = 1):
        seen.update(city=city, days=days)
        return {"city": city, "days": days}

    t = Tool.from_schema(
        "lookup",
        description="Look a city up.",
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        func=lookup,
    )
    assert isinstance(t, SchemaTool)
    assert t.definition()["parameters"]["required"] == ["city"]
    reg = ToolRegistry()
    reg.register(t)
    ok = await reg.execute(ToolCall("c1", "lookup", '{"city": "Oslo", "days": 2}'))
    assert ok.ok and json.loads(ok.output) == {"city": "Oslo", "days": 2}
    for bad in (
        '{"days": 2}',
        '{"city": 3}',
        '{"city": "x", "zz": 1}',
        '{"city": "x", "days": true}',
        "[1]",
        "{",
    ):
        res = await reg.execute(ToolCall("c2", "lookup", bad))
        assert not res.ok and "error" in json.loads(res.output)
