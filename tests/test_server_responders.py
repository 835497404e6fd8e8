"""Responders of the local server: script parsing and replies, echo, OpenAI-compatible, specs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from realtime.exceptions import ConfigError, ScriptError
from realtime.server import (
    EchoResponder,
    LocalServer,
    OpenAICompatibleResponder,
    ScriptResponder,
    load_responder,
)
from realtime.server.responders import ResponderContext, ResponderOutput, TextDelta, ToolCall
from tests.server_kit import StrictClient, shared_engines

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
SCRIPT = """\
rules:
  - when: "weather|forecast"
    call: {name: get_weather, arguments: {city: Paris}}
    then: "It is {output[temperature]} degrees in {args[city]}, {user}."
  - when: "^hello"
    say: "Hello! You said {user}."
default: "Sorry, I only know the weather, not {user}."
"""


def user(text: str) -> dict[str, Any]:
    """A GA user message item."""
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def call_items(args: dict[str, Any], output: str) -> list[dict[str, Any]]:
    """A function_call item and the function_call_output answering it."""
    return [
        {
            "type": "function_call",
            "name": "get_weather",
            "call_id": "call_1",
            "arguments": json.dumps(args),
        },
        {"type": "function_call_output", "call_id": "call_1", "output": output},
    ]


async def run(responder: Any, ctx: ResponderContext) -> list[ResponderOutput]:
    """Everything a responder yields for one response."""
    return [out async for out in responder.respond(ctx)]


def spoken(outputs: list[ResponderOutput]) -> str:
    """The text of the TextDelta outputs."""
    return "".join(o.text for o in outputs if isinstance(o, TextDelta))


# -- ScriptResponder parsing ---------------------------------------------------------------


def test_script_bad_yaml_names_line():
    """Invalid YAML raises ScriptError carrying the path and the 1-based line of the problem."""
    text = 'rules:\n  - when: "a"\n    say: "ok"\n  - when: "b"\n    say: [unclosed\n'
    with pytest.raises(ScriptError) as info:
        ScriptResponder.from_yaml(text, path="bad.yaml")
    assert info.value.path == "bad.yaml"
    assert info.value.line is not None and info.value.line >= 5
    assert "invalid YAML" in str(info.value)


def test_script_file_errors_name_the_file(tmp_path: Path):
    """from_file reports the file for an unreadable path and for bad YAML inside it."""
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ScriptError) as info:
        ScriptResponder.from_file(missing)
    assert info.value.path == str(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - when: 'x'\n    say: 'y'\n   oops: [\n", encoding="utf-8")
    with pytest.raises(ScriptError) as info:
        ScriptResponder.from_file(bad)
    assert info.value.path == str(bad)
    assert info.value.line is not None and 3 <= info.value.line <= 5


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("rules:\n  - say: 'hi'\n", "'when'"),
        ("rules:\n  - when: 'a'\n    say: 'x'\n  - say: 'no pattern'\n", "rule 2"),
        ("rules:\n  - when: '(unclosed'\n    say: 'x'\n", "bad pattern"),
        ("rules:\n  - when: 'a'\n", "'say' or 'call'"),
        ("rules:\n  - when: 'a'\n    call: {arguments: {}}\n", "'name'"),
        ("rules:\n  - when: 'a'\n    call: {name: f, arguments: [1]}\n", "mapping"),
        ("- just a list\n", "'rules' list"),
        ("rules: 7\n", "'rules' list"),
    ],
)
def test_script_structure_errors(text: str, needle: str):
    """Missing 'when', a bad regex and other structural mistakes raise a clear ScriptError."""
    with pytest.raises(ScriptError) as info:
        ScriptResponder.from_yaml(text, path="s.yaml")
    assert needle in str(info.value)
    assert info.value.path == "s.yaml"


def test_script_error_is_realtime_error():
    """ScriptError is part of the package's error tree (catchable as RealtimeError)."""
    from realtime.exceptions import RealtimeError

    with pytest.raises(RealtimeError):
        ScriptResponder.from_yaml("rules:\n  - when: '['\n    say: x\n")


# -- ScriptResponder replies ---------------------------------------------------------------


async def test_script_say_fills_user():
    """A 'say' rule fills {user} with the user's words."""
    script = ScriptResponder.from_yaml(SCRIPT)
    out = await run(script, ResponderContext(items=[user("hello robot")]))
    assert spoken(out) == "Hello! You said hello robot."
    assert len(out) > 1  # streamed in several deltas


async def test_script_call_then_template():
    """A 'call' rule emits the tool call; after its output the 'then' template is filled."""
    script = ScriptResponder.from_yaml(SCRIPT)
    out = await run(script, ResponderContext(items=[user("what's the weather")]))
    assert out == [ToolCall("get_weather", json.dumps({"city": "Paris"}))]
    items = [user("what's the weather"), *call_items({"city": "Paris"}, '{"temperature": 21}')]
    out = await run(script, ResponderContext(items=items))
    assert spoken(out) == "It is 21 degrees in Paris, what's the weather."


async def test_script_then_with_non_json_output_and_bad_template():
    """A plain-text output fills {output}; a template that cannot be filled says the raw output."""
    script = ScriptResponder.from_yaml(
        "rules:\n"
        "  - when: 'a'\n"
        "    call: {name: get_weather}\n"
        "    then: 'Got {output} and {missing}.'\n"
    )
    items = [user("a"), *call_items({}, "sunny")]
    assert spoken(await run(script, ResponderContext(items=items))) == "Got sunny and {missing}."
    bad = ScriptResponder.from_yaml(
        "rules:\n  - when: 'a'\n    call: {name: get_weather}\n    then: 'T={output[x]}'\n"
    )
    items = [user("a"), *call_items({}, "[1, 2]")]
    assert spoken(await run(bad, ResponderContext(items=items))) == "The result is [1, 2]."


async def test_script_default_and_echo_fallback():
    """No rule matches: the default reply (with {user}); without a default, the echo reply."""
    script = ScriptResponder.from_yaml(SCRIPT)
    out = await run(script, ResponderContext(items=[user("sing a song")]))
    assert spoken(out) == "Sorry, I only know the weather, not sing a song."
    bare = ScriptResponder.from_yaml("rules:\n  - when: 'x'\n    say: 'y'\n")
    out = await run(bare, ResponderContext(items=[user("sing a song")]))
    assert spoken(out) == "You said: sing a song. I am the local echo assistant."


async def test_script_matches_case_insensitively_first_rule_wins():
    """Patterns are searched case-insensitively and the first matching rule answers."""
    script = ScriptResponder.from_yaml(
        "rules:\n  - when: 'PARIS'\n    say: first\n  - when: 'paris'\n    say: second\n"
    )
    out = await run(script, ResponderContext(items=[user("I love paris")]))
    assert spoken(out) == "first"


# -- EchoResponder -------------------------------------------------------------------------


async def test_echo_replies():
    """Echo repeats the latest user words, reads back tool outputs, and admits silence."""
    echo = EchoResponder()
    items = [user("first"), {"type": "message", "role": "assistant", "content": []}, user("Hi!")]
    out = await run(echo, ResponderContext(items=items))
    assert spoken(out) == "You said: Hi. I am the local echo assistant."
    audio_turn = {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_audio", "transcript": "spoken words"}],
    }
    out = await run(echo, ResponderContext(items=[audio_turn]))
    assert spoken(out) == "You said: spoken words. I am the local echo assistant."
    out = await run(echo, ResponderContext(items=[]))
    assert spoken(out) == "I am the local echo assistant. I did not catch any words."
    out = await run(echo, ResponderContext(items=[user("x"), *call_items({}, "42")]))
    assert spoken(out) == "The get_weather tool returned: 42."


# -- OpenAICompatibleResponder: request shape and streaming (mock transport) ----------------


def sse(chunks: list[dict[str, Any]]) -> bytes:
    """A chat-completions SSE body of these chunks, ending with [DONE]."""
    lines = [f"data: {json.dumps(c)}\n\n" for c in chunks]
    return ("".join(lines) + "data: [DONE]\n\n").encode()


def text_chunks(*pieces: str) -> list[dict[str, Any]]:
    """Chunks streaming these content pieces."""
    return [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]


def tool_chunks(name: str, args: str, parts: int = 3) -> list[dict[str, Any]]:
    """Chunks streaming one tool call, its arguments split in ``parts``."""
    step = max(1, len(args) // parts)
    first = {"index": 0, "id": "call_x", "type": "function", "function": {"name": name}}
    out = [{"choices": [{"index": 0, "delta": {"tool_calls": [first]}}]}]
    for i in range(0, len(args), step):
        piece = {"index": 0, "function": {"arguments": args[i : i + step]}}
        out.append({"choices": [{"index": 0, "delta": {"tool_calls": [piece]}}]})
    return out


async def test_openai_compatible_request_and_text_stream():
    """The request carries model, messages, tools and key; content deltas stream through."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = sse([{"choices": []}, *text_chunks("Bonjour", " tout", " le monde.")])
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    responder = OpenAICompatibleResponder(
        "http://chat.test/v1/",
        model="tiny",
        api_key="sk-x",
        transport=httpx.MockTransport(handler),
    )
    items = [user("weather?"), *call_items({"city": "Oslo"}, "cold")]
    ctx = ResponderContext(items=items, instructions="Be brief.", tools=[WEATHER_TOOL])
    out = await run(responder, ctx)
    assert out == [TextDelta("Bonjour"), TextDelta(" tout"), TextDelta(" le monde.")]
    request = seen[0]
    assert str(request.url) == "http://chat.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-x"
    body = json.loads(request.content)
    assert body["model"] == "tiny" and body["stream"] is True
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][1] == {"role": "user", "content": "weather?"}
    assert body["messages"][2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert body["messages"][3] == {"role": "tool", "tool_call_id": "call_1", "content": "cold"}
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city.",
                "parameters": WEATHER_TOOL["parameters"],
            },
        }
    ]


async def test_openai_compatible_tool_calls_assembled():
    """Tool-call fragments (several calls, split arguments) become whole ToolCalls in order."""
    chunks = tool_chunks("get_weather", '{"city": "Rome"}')
    second = {"index": 1, "function": {"name": "get_time", "arguments": "{}"}}
    chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [second]}}]})

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b": keepalive\n\ndata: {broken\n\n" + sse(chunks))

    responder = OpenAICompatibleResponder(
        "http://chat.test/v1", transport=httpx.MockTransport(handler)
    )
    out = await run(responder, ResponderContext(items=[user("rome")], tools=[WEATHER_TOOL]))
    assert out == [ToolCall("get_weather", '{"city": "Rome"}'), ToolCall("get_time", "{}")]


async def test_openai_compatible_http_error_is_config_error():
    """An error status from the endpoint raises ConfigError naming the status and the body."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"error": "model is loading"})

    responder = OpenAICompatibleResponder(
        "http://chat.test/v1", transport=httpx.MockTransport(handler)
    )
    with pytest.raises(ConfigError) as info:
        await run(responder, ResponderContext(items=[user("hi")]))
    assert "503" in str(info.value) and "model is loading" in str(info.value)


# -- OpenAICompatibleResponder end to end: a real fake endpoint and the local server -------


class _QuietServer(uvicorn.Server):
    """uvicorn without signal handlers (the test runner owns them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def fake_chat() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A chat-completions endpoint on 127.0.0.1 (port 0): yields its base URL and the bodies.

    It calls ``get_weather`` when tools are offered and the user mentions the weather, reads
    back a tool result when the last message is one, and otherwise streams a fixed sentence.
    """
    bodies: list[dict[str, Any]] = []

    async def completions(request: Request) -> Response:
        body = json.loads(await request.body())
        bodies.append(body)
        last = body["messages"][-1]
        if last["role"] == "tool":
            chunks = text_chunks("The tool", " says ", str(last["content"]), ".")
        elif body.get("tools") and "weather" in str(last.get("content")):
            chunks = tool_chunks("get_weather", json.dumps({"city": "Lima"}))
        else:
            chunks = text_chunks("Streamed", " from the", " fake model.")

        async def stream() -> AsyncIterator[bytes]:
            for line in sse(chunks).split(b"\n\n"):
                if line:
                    yield line + b"\n\n"
                    await asyncio.sleep(0.005)

        return StreamingResponse(stream(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1", bodies
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def text_session(dialect: str, tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """session.update payload: text output, no turn detection, optional tools."""
    if dialect == "ga":
        payload: dict[str, Any] = {
            "type": "realtime",
            "output_modalities": ["text"],
            "instructions": "You are terse.",
            "audio": {"input": {"turn_detection": None}},
        }
    else:
        payload = {"modalities": ["text"], "instructions": "You are terse.", "turn_detection": None}
    if tools is not None:
        payload["tools"] = tools
    return payload


async def open_text(srv: LocalServer, dialect: str, **kw: Any) -> StrictClient:
    """A client with a text-only session."""
    c = await StrictClient.open(srv.url, dialect)
    await c.recv()
    await c.send({"type": "session.update", "session": text_session(dialect, **kw)})
    await c.until("session.updated")
    return c


async def say(c: StrictClient, text: str) -> None:
    """A typed user message."""
    await c.send({"type": "conversation.item.create", "item": user(text)})


@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_openai_compatible_end_to_end_text(dialect: str):
    """LocalServer with the responder: a text turn carries the streamed completion text."""
    text_kind = "response.output_text.delta" if dialect == "ga" else "response.text.delta"
    async with fake_chat() as (url, bodies):
        responder = OpenAICompatibleResponder(url, model="fake-1")
        async with LocalServer(port=0, engines=shared_engines(), responder=responder) as srv:
            c = await open_text(srv, dialect)
            await say(c, "tell me something")
            await c.send({"type": "response.create"})
            events = await c.collect_until("response.done")
            deltas = [e["delta"] for e in events if e["type"] == text_kind]
            assert deltas == ["Streamed", " from the", " fake model."]
            assert events[-1]["response"]["status"] == "completed"
            await c.close()
    assert bodies[0]["model"] == "fake-1"
    assert bodies[0]["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "tell me something"},
    ]


async def test_openai_compatible_end_to_end_tool_call():
    """A tool-call completion becomes function_call_arguments.delta/done; the output goes back."""
    async with fake_chat() as (url, bodies):
        responder = OpenAICompatibleResponder(url)
        async with LocalServer(port=0, engines=shared_engines(), responder=responder) as srv:
            c = await open_text(srv, "ga", tools=[WEATHER_TOOL])
            await say(c, "what is the weather")
            await c.send({"type": "response.create"})
            events = await c.collect_until("response.done")
            deltas = [e for e in events if e["type"] == "response.function_call_arguments.delta"]
            done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
            assert done["name"] == "get_weather"
            assert json.loads(done["arguments"]) == {"city": "Lima"}
            assert "".join(d["delta"] for d in deltas) == done["arguments"]
            assert {d["call_id"] for d in deltas} == {done["call_id"]}
            output = events[-1]["response"]["output"]
            assert [o["type"] for o in output] == ["function_call"]
            assert bodies[-1]["tools"][0]["function"]["name"] == "get_weather"
            await c.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "function_call_output",
                        "call_id": done["call_id"],
                        "output": "sunny",
                    },
                }
            )
            await c.send({"type": "response.create"})
            events = await c.collect_until("response.done")
            text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
            assert text == "The tool says sunny."
            sent = bodies[-1]["messages"]
            assert sent[-2]["tool_calls"][0]["id"] == done["call_id"]
            assert sent[-1] == {"role": "tool", "tool_call_id": done["call_id"], "content": "sunny"}
            await c.close()


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_openai_compatible_unreachable_fails_response(dialect: str):
    """An unreachable endpoint: response.done status failed; the session keeps working."""
    responder = OpenAICompatibleResponder(f"http://127.0.0.1:{closed_port()}/v1", timeout=5)
    async with LocalServer(port=0, engines=shared_engines(), responder=responder) as srv:
        c = await open_text(srv, dialect)
        await say(c, "anyone there")
        await c.send({"type": "response.create"})
        done = await c.until("response.done")
        response = done["response"]
        assert response["status"] == "failed"
        assert "unreachable" in response["status_details"]["error"]["message"]
        # the session goes on: more items, config changes and another (failing) response
        await say(c, "still there")
        await c.until(lambda e: e["type"].startswith("conversation.item.") and "item" in e)
        await c.send({"type": "session.update", "session": text_session(dialect)})
        await c.until("session.updated")
        await c.send({"type": "response.create"})
        again = await c.until("response.done")
        assert again["response"]["status"] == "failed"
        assert again["response"]["id"] != response["id"]
        await c.close()


# -- load_responder --------------------------------------------------------------------------


def test_load_responder_specs(tmp_path: Path):
    """Specs: echo (and None), script:FILE, openai-compatible:URL with an optional #model=."""
    assert isinstance(load_responder(None), EchoResponder)
    assert isinstance(load_responder("echo"), EchoResponder)
    script = tmp_path / "rules.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    loaded = load_responder(f"script:{script}")
    assert isinstance(loaded, ScriptResponder)
    assert len(loaded.rules) == 2 and loaded.default is not None
    chat = load_responder("openai-compatible:http://127.0.0.1:11434/v1#model=x")
    assert isinstance(chat, OpenAICompatibleResponder)
    assert chat.base_url == "http://127.0.0.1:11434/v1" and chat.model == "x"
    plain = load_responder("openai-compatible:http://127.0.0.1:11434/v1/")
    assert isinstance(plain, OpenAICompatibleResponder)
    assert plain.base_url == "http://127.0.0.1:11434/v1"


@pytest.mark.parametrize("spec", ["parrot", "script:", "openai-compatible:", "", "echo:x"])
def test_load_responder_bad_spec(spec: str):
    """An unknown or incomplete spec raises ConfigError naming the accepted forms."""
    with pytest.raises(ConfigError) as info:
        load_responder(spec)
    assert "echo" in str(info.value) and "script:FILE" in str(info.value)


def test_load_responder_script_errors_propagate(tmp_path: Path):
    """script:FILE with a missing or broken file raises ScriptError for that file."""
    with pytest.raises(ScriptError):
        load_responder(f"script:{tmp_path / 'missing.yaml'}")
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules:\n  - when: '('\n    say: x\n", encoding="utf-8")
    with pytest.raises(ScriptError) as info:
        load_responder(f"script:{broken}")
    assert info.value.path == str(broken)


async def test_local_server_accepts_spec_string(tmp_path: Path):
    """LocalServer(responder="script:FILE") answers with the script's rules."""
    script = tmp_path / "rules.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    async with LocalServer(port=0, engines=shared_engines(), responder=f"script:{script}") as srv:
        c = await open_text(srv, "ga")
        await say(c, "hello there")
        await c.send({"type": "response.create"})
        events = await c.collect_until("response.done")
        text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        assert text == "Hello! You said hello there."
        await c.close()
