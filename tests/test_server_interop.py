"""The official ``openai`` SDK against the local server (GA and beta realtime, REST audio)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from audio.wav import read_wav
from realtime.events import UnknownServerEvent, parse_server_event
from realtime.server import LocalServer
from realtime.server.responders import ScriptResponder
from tests.server_kit import shared_engines

openai = pytest.importorskip("openai", reason="the openai SDK is in the dev extra")

SAMPLES = Path(__file__).resolve().parents[1] / "share" / "samples"
SCRIPT = ScriptResponder.from_yaml(
    "rules:\n"
    "  - when: 'weather'\n"
    "    call: {name: get_weather, arguments: {city: Paris}}\n"
    "    then: 'It is {output[temp]} degrees in {args[city]}.'\n"
    "default: 'I heard you say {user}.'\n"
)
LONG = " ".join(["Please keep talking for a while. This sentence is one of many."] * 6)
TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
async def server():
    """A local server with a script responder."""
    async with LocalServer(port=0, engines=shared_engines(), responder=SCRIPT) as srv:
        yield srv


@pytest.fixture
async def sdk(server: LocalServer) -> Any:
    """The SDK's client for the server, closed after the test (its HTTP pool with it)."""
    async with openai.AsyncOpenAI(
        api_key="sk-local", base_url=server.http_url, websocket_base_url=server.url
    ) as client:
        yield client


async def drain(conn: Any, dialect: str, until: str = "response.done") -> list[Any]:
    """Receive SDK events until ``until``; each raw frame also validates with our models."""
    out = []
    async for event in conn:
        raw = event.model_dump_json(exclude_unset=True)
        ours = parse_server_event(raw, dialect)  # type: ignore[arg-type]
        assert not isinstance(ours, UnknownServerEvent), raw[:200]
        out.append(event)
        if event.type == until:
            return out
    raise AssertionError("connection ended early")


def texts(events: list[Any], kind: str) -> str:
    return "".join(e.delta for e in events if e.type == kind)


async def test_ga_text_audio_tool_and_cancel(server, sdk):
    """GA client.realtime: a text turn, an audio turn, a function call turn, a cancel."""
    async with sdk.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(
            session={
                "type": "realtime",
                "output_modalities": ["text"],
                "tools": [TOOL],
                "audio": {
                    "input": {"turn_detection": None, "transcription": {"model": "whisper-1"}}
                },
            }
        )
        # text turn
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hello"}],
            }
        )
        await conn.response.create()
        events = await drain(conn, "ga")
        assert "hello" in texts(events, "response.output_text.delta")
        # audio turn with input transcription
        pcm = read_wav(SAMPLES / "greeting.wav")
        await conn.input_audio_buffer.append(audio=base64.b64encode(pcm).decode())
        await conn.input_audio_buffer.commit()
        events = await drain(
            conn, "ga", until="conversation.item.input_audio_transcription.completed"
        )
        assert "hear" in events[-1].transcript.lower()
        await conn.response.create(response={"output_modalities": ["audio"]})
        events = await drain(conn, "ga")
        audio = b"".join(
            base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta"
        )
        assert len(audio) > 24000
        # function call turn
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "what is the weather"}],
            }
        )
        await conn.response.create()
        events = await drain(conn, "ga")
        call = next(e for e in events if e.type == "response.function_call_arguments.done")
        assert call.name == "get_weather"
        await conn.conversation.item.create(
            item={
                "type": "function_call_output",
                "call_id": call.call_id,
                "output": json.dumps({"temp": 21}),
            }
        )
        await conn.response.create()
        events = await drain(conn, "ga")
        assert "21 degrees in Paris" in texts(events, "response.output_text.delta")
        # cancel: a long reply, cancelled after its first audio
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": LONG}],
            }
        )
        await conn.response.create(response={"output_modalities": ["audio"]})
        async for event in conn:
            if event.type == "response.output_audio.delta":
                break
        await conn.response.cancel()
        events = await drain(conn, "ga")
        assert events[-1].response.status == "cancelled"


async def test_beta_text_audio_tool_and_cancel(server, sdk):
    """Beta client.beta.realtime: the same four turns in the beta dialect."""
    async with sdk.beta.realtime.connect(model="gpt-4o-realtime-preview") as conn:
        await conn.session.update(
            session={
                "modalities": ["text"],
                "tools": [TOOL],
                "turn_detection": None,
                "input_audio_transcription": {"model": "whisper-1"},
            }
        )
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hello"}],
            }
        )
        await conn.response.create()
        events = await drain(conn, "beta")
        assert "hello" in texts(events, "response.text.delta")
        pcm = read_wav(SAMPLES / "greeting.wav")
        await conn.input_audio_buffer.append(audio=base64.b64encode(pcm).decode())
        await conn.input_audio_buffer.commit()
        events = await drain(
            conn, "beta", until="conversation.item.input_audio_transcription.completed"
        )
        assert "hear" in events[-1].transcript.lower()
        await conn.response.create(response={"modalities": ["audio", "text"]})
        events = await drain(conn, "beta")
        audio = b"".join(
            base64.b64decode(e.delta) for e in events if e.type == "response.audio.delta"
        )
        assert len(audio) > 24000
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "weather please"}],
            }
        )
        await conn.response.create()
        events = await drain(conn, "beta")
        call = next(e for e in events if e.type == "response.function_call_arguments.done")
        await conn.conversation.item.create(
            item={
                "type": "function_call_output",
                "call_id": call.call_id,
                "output": json.dumps({"temp": 18}),
            }
        )
        await conn.response.create()
        events = await drain(conn, "beta")
        assert "18 degrees in Paris" in texts(events, "response.text.delta")
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": LONG}],
            }
        )
        await conn.response.create(response={"modalities": ["audio", "text"]})
        async for event in conn:
            if event.type == "response.audio.delta":
                break
        await conn.response.cancel()
        events = await drain(conn, "beta")
        assert events[-1].response.status == "cancelled"


async def test_sdk_rest_audio(server, sdk):
    """client.audio.transcriptions and client.audio.speech against the local server."""
    c = sdk
    with (SAMPLES / "question.wav").open("rb") as f:
        result = await c.audio.transcriptions.create(model="whisper-1", file=f)
    assert "paris" in result.text.lower()
    speech = await c.audio.speech.create(
        model="tts-1", voice="alloy", input="Hello there.", response_format="pcm"
    )
    assert len(speech.content) > 24000
