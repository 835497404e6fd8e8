"""The local server over a real WebSocket: every client event of both dialects, strict events."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from audio.wav import read_wav
from realtime.server import LocalServer
from realtime.server.responders import ScriptResponder
from tests.server_kit import StrictClient, b64, pcm_of, shared_engines, silence

SAMPLES = Path(__file__).resolve().parents[1] / "share" / "samples"
DIALECTS = ["ga", "beta"]


def names(dialect: str) -> dict[str, str]:
    """Event names per dialect."""
    if dialect == "ga":
        return {
            "added": "conversation.item.added",
            "audio": "response.output_audio.delta",
            "transcript": "response.output_audio_transcript.delta",
            "text": "response.output_text.delta",
            "text_done": "response.output_text.done",
        }
    return {
        "added": "conversation.item.created",
        "audio": "response.audio.delta",
        "transcript": "response.audio_transcript.delta",
        "text": "response.text.delta",
        "text_done": "response.text.done",
    }


def text_session(dialect: str) -> dict:
    """A session.update payload: text output, no turn detection."""
    if dialect == "ga":
        return {
            "type": "realtime",
            "output_modalities": ["text"],
            "audio": {"input": {"turn_detection": None}},
        }
    return {"modalities": ["text"], "turn_detection": None}


def audio_session(dialect: str, *, vad: bool = False, transcription: bool = True) -> dict:
    """A session.update payload: audio output, optional VAD and input transcription."""
    td = (
        {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 500,
        }
        if vad
        else None
    )
    tr = {"model": "whisper-1"} if transcription else None
    if dialect == "ga":
        return {
            "type": "realtime",
            "output_modalities": ["audio"],
            "audio": {
                "input": {"turn_detection": td, "transcription": tr},
                "output": {"voice": "alloy"},
            },
        }
    return {
        "modalities": ["audio", "text"],
        "turn_detection": td,
        "input_audio_transcription": tr,
        "voice": "alloy",
    }


@pytest.fixture
async def server():
    """A local server on a free port with the shared engines."""
    async with LocalServer(port=0, engines=shared_engines()) as srv:
        yield srv


async def configured(server: LocalServer, dialect: str, session: dict) -> StrictClient:
    c = await StrictClient.open(server.url, dialect)
    created = await c.recv()
    assert created["type"] == "session.created"
    await c.send({"type": "session.update", "session": session, "event_id": "evt_cfg"})
    await c.until("session.updated")
    return c


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_session_created_shape(server, dialect):
    """session.created arrives first, in the dialect's shape."""
    c = await StrictClient.open(server.url, dialect)
    ev = await c.recv()
    assert ev["type"] == "session.created"
    session = ev["session"]
    if dialect == "ga":
        assert session["type"] == "realtime"
        assert session["audio"]["output"]["format"]["type"] == "audio/pcm"
    else:
        assert session["input_audio_format"] == "pcm16"
        assert "audio" not in session
    assert session["expires_at"] > 0
    await c.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_bad_events_keep_connection_open(server, dialect):
    """Malformed JSON, unknown types and invalid fields get errors; the session goes on."""
    c = await StrictClient.open(server.url, dialect)
    await c.recv()
    await c.ws.send("{not json")
    err = await c.until("error")
    assert err["error"]["type"] == "invalid_request_error"
    await c.send({"type": "no.such.event", "event_id": "evt_1"})
    err = await c.until("error")
    assert err["error"]["event_id"] == "evt_1"
    assert err["error"]["param"] == "type"
    await c.send({"type": "conversation.item.delete", "event_id": "evt_2", "item_id": 42})
    err = await c.until("error")
    assert err["error"]["event_id"] == "evt_2"
    await c.send({"type": "session.update", "event_id": "evt_3", "session": "nope"})
    err = await c.until("error")
    assert err["error"]["event_id"] == "evt_3"
    await c.send({"type": "input_audio_buffer.clear"})
    assert (await c.until("input_audio_buffer.cleared"))["type"] == "input_audio_buffer.cleared"
    await c.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_commit_too_small(server, dialect):
    """Committing under 100 ms of audio gets the service's error."""
    c = await configured(server, dialect, text_session(dialect))
    await c.send({"type": "input_audio_buffer.append", "audio": b64(silence(50))})
    await c.send({"type": "input_audio_buffer.commit", "event_id": "evt_commit"})
    err = await c.until("error")
    assert err["error"]["code"] == "input_audio_buffer_commit_empty"
    assert err["error"]["event_id"] == "evt_commit"
    assert "buffer too small" in err["error"]["message"]
    await c.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_text_turn(server, dialect):
    """A typed user message and response.create give a streamed text reply."""
    n = names(dialect)
    c = await configured(server, dialect, text_session(dialect))
    part_type = "input_text"
    await c.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": part_type, "text": "hello there"}],
            },
        }
    )
    added = await c.until(n["added"])
    assert added["item"]["role"] == "user"
    await c.send({"type": "response.create"})
    events = await c.collect_until("response.done")
    text = "".join(e["delta"] for e in events if e["type"] == n["text"])
    assert "hello there" in text
    done = events[-1]["response"]
    assert done["status"] == "completed"
    assert done["usage"]["total_tokens"] > 0
    order = [e["type"] for e in events]
    assert order.index("response.created") < order.index("response.output_item.added")
    assert order.index("response.content_part.added") < order.index(n["text"])
    assert order.index(n["text_done"]) < order.index("response.content_part.done")
    assert order.index("response.output_item.done") < order.index("response.done")
    await c.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_audio_turn_with_transcription(server, dialect):
    """Manual commit of spoken audio: input transcription, then a spoken reply."""
    n = names(dialect)
    c = await configured(server, dialect, audio_session(dialect))
    pcm = read_wav(SAMPLES / "question.wav")
    for i in range(0, len(pcm), 9600):
        await c.send({"type": "input_audio_buffer.append", "audio": b64(pcm[i : i + 9600])})
    await c.send({"type": "input_audio_buffer.commit", "event_id": "evt_c"})
    committed = await c.until("input_audio_buffer.committed")
    done = await c.until("conversation.item.input_audio_transcription.completed")
    assert done["item_id"] == committed["item_id"]
    assert "paris" in done["transcript"].lower()
    await c.send({"type": "response.create"})
    events = await c.collect_until("response.done")
    audio = pcm_of(events, n["audio"])
    assert len(audio) > 24000 * 2  # more than a second of speech
    assert np.abs(np.frombuffer(audio, np.int16)).max() > 1000
    transcript = "".join(e["delta"] for e in events if e["type"] == n["transcript"])
    assert "paris" in transcript.lower()
    assert events[-1]["response"]["status"] == "completed"
    await c.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_server_vad_turn(server, dialect):
    """Server VAD: speech started/stopped at the right times, auto-commit, auto-response."""
    n = names(dialect)
    c = await configured(server, dialect, audio_session(dialect, vad=True))
    pcm = silence(1000) + read_wav(SAMPLES / "greeting.wav") + silence(1200)
    for i in range(0, len(pcm), 960):  # 20 ms chunks
        await c.send({"type": "input_audio_buffer.append", "audio": b64(pcm[i : i + 960])})
    started = await c.until("input_audio_buffer.speech_started")
    stopped = await c.until("input_audio_buffer.speech_stopped")
    # the sample has 200 ms of lead-in silence: speech at ~1200 ms, minus 300 ms padding
    assert 700 <= started["audio_start_ms"] <= 1200
    assert stopped["audio_end_ms"] > started["audio_start_ms"] + 800
    assert stopped["item_id"] == started["item_id"]
    committed = await c.until("input_audio_buffer.committed")
    assert committed["item_id"] == started["item_id"]
    events = await c.collect_until("response.done")
    assert pcm_of(events, n["audio"])
    transcript = "".join(e["delta"] for e in events if e["type"] == n["transcript"])
    assert "hear" in transcript.lower()
    await c.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_cancel_mid_stream(server, dialect):
    """response.cancel stops generation; response.done says cancelled; a second cancel errs."""
    c = await configured(server, dialect, audio_session(dialect, transcription=False))
    long_text = " ".join(["This is a long sentence that keeps the synthesizer busy."] * 8)
    await c.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": long_text}],
            },
        }
    )
    await c.send({"type": "response.create"})
    await c.until("response.created")
    await c.until(names(dialect)["audio"])
    await c.send({"type": "response.cancel", "event_id": "evt_cancel"})
    done = await c.until("response.done")
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"]["reason"] == "client_cancelled"
    await c.send({"type": "response.cancel", "event_id": "evt_cancel2"})
    err = await c.until("error")
    assert err["error"]["code"] == "response_cancel_not_active"
    assert err["error"]["event_id"] == "evt_cancel2"
    await c.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_one_active_response(server, dialect):
    """A second response.create while one is active gets the service's error."""
    c = await configured(server, dialect, text_session(dialect))
    await c.send({"type": "response.create"})
    await c.send({"type": "response.create", "event_id": "evt_second"})
    err = await c.until("error")
    assert err["error"]["code"] == "conversation_already_has_active_response"
    await c.until("response.done")
    await c.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_truncate_cuts_audio_and_transcript(server, dialect):
    """Truncate really cuts the item's audio and transcript (seen through retrieve)."""
    n = names(dialect)
    c = await configured(server, dialect, audio_session(dialect, transcription=False))
    text = "First sentence is here. Second sentence follows it. Third one ends it all."
    await c.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": text}],
            },
        }
    )
    await c.send({"type": "response.create"})
    events = await c.collect_until("response.done")
    item_id = next(e["item_id"] for e in events if e["type"] == n["audio"])
    full = pcm_of(events, n["audio"])
    assert len(full) > 48 * 2000
    await c.send(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 1000,
        }
    )
    tr = await c.until("conversation.item.truncated")
    assert tr["audio_end_ms"] == 1000
    await c.send({"type": "conversation.item.retrieve", "item_id": item_id})
    got = await c.until("conversation.item.retrieved")
    part = got["item"]["content"][0]
    assert len(base64.b64decode(part["audio"])) == 48 * 1000
    assert len(part["transcript"]) < len("You said: " + text)
    await c.send(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 5000,
            "event_id": "evt_tr",
        }
    )
    err = await c.until("error")
    assert err["error"]["event_id"] == "evt_tr"
    await c.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_item_create_delete_retrieve_order(server, dialect):
    """Items insert after previous_item_id; delete and retrieve work; unknown ids err."""
    n = names(dialect)
    c = await configured(server, dialect, text_session(dialect))
    for ident, text in (("item_a", "one"), ("item_b", "two")):
        await c.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "id": ident,
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                },
            }
        )
        await c.until(n["added"])
    await c.send(
        {
            "type": "conversation.item.create",
            "previous_item_id": "item_a",
            "item": {
                "id": "item_mid",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "between"}],
            },
        }
    )
    ev = await c.until(n["added"])
    assert ev["previous_item_id"] == "item_a"
    await c.send({"type": "conversation.item.delete", "item_id": "item_b"})
    assert (await c.until("conversation.item.deleted"))["item_id"] == "item_b"
    await c.send({"type": "conversation.item.retrieve", "item_id": "item_b", "event_id": "e9"})
    err = await c.until("error")
    assert err["error"]["event_id"] == "e9"
    await c.send({"type": "conversation.item.retrieve", "item_id": "item_mid"})
    got = await c.until("conversation.item.retrieved")
    assert got["item"]["content"][0]["text"] == "between"
    await c.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_out_of_band_response(server, dialect):
    """conversation "none" responses add nothing to the conversation."""
    n = names(dialect)
    c = await configured(server, dialect, text_session(dialect))
    await c.send(
        {
            "type": "response.create",
            "response": {
                "conversation": "none",
                "metadata": {"purpose": "summary"},
                "input": [
                    {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "summarize this"}],
                    }
                ],
            },
        }
    )
    events = await c.collect_until("response.done")
    assert not [e for e in events if e["type"] == n["added"]]
    text = "".join(e["delta"] for e in events if e["type"] == n["text"])
    assert "summarize this" in text
    assert events[-1]["response"]["metadata"] == {"purpose": "summary"}
    await c.close()


async def test_g711_in_and_out(server):
    """G.711 mu-law input is transcribed and A-law output is produced."""
    c = await StrictClient.open(server.url, "ga")
    await c.recv()
    await c.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "output_modalities": ["audio"],
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcmu"},
                        "turn_detection": None,
                        "transcription": {"model": "whisper-1"},
                    },
                    "output": {"format": {"type": "audio/pcma"}},
                },
            },
        }
    )
    await c.until("session.updated")
    from audio.pcm import encode

    ulaw = encode(read_wav(SAMPLES / "greeting.wav"), "g711_ulaw")
    await c.send({"type": "input_audio_buffer.append", "audio": b64(ulaw)})
    await c.send({"type": "input_audio_buffer.commit"})
    done = await c.until("conversation.item.input_audio_transcription.completed")
    assert "hear" in done["transcript"].lower()
    await c.send({"type": "response.create"})
    events = await c.collect_until("response.done")
    alaw = pcm_of(events, "response.output_audio.delta")
    seconds = len(alaw) / 8000
    assert seconds > 1.0  # 8-bit samples at 8 kHz
    await c.close()


async def test_function_call_turn():
    """A script responder calls a tool, then speaks a text built from its output."""
    script = ScriptResponder.from_yaml(
        "rules:\n"
        "  - when: 'time'\n"
        "    call: {name: get_time, arguments: {city: Tokyo}}\n"
        "    then: 'It is {output[time]} in {args[city]}.'\n"
    )
    async with LocalServer(port=0, engines=shared_engines(), responder=script) as srv:
        c = await configured(srv, "ga", text_session("ga"))
        await c.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "what time is it"}],
                },
            }
        )
        await c.send({"type": "response.create"})
        events = await c.collect_until("response.done")
        args_done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
        assert args_done["name"] == "get_time"
        assert json.loads(args_done["arguments"]) == {"city": "Tokyo"}
        assert [e for e in events if e["type"] == "response.function_call_arguments.delta"]
        await c.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "function_call_output",
                    "call_id": args_done["call_id"],
                    "output": json.dumps({"time": "9 pm"}),
                },
            }
        )
        await c.send({"type": "response.create"})
        events = await c.collect_until("response.done")
        text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        assert text.strip() == "It is 9 pm in Tokyo."
        await c.close()


async def test_api_key_and_ephemeral_keys():
    """With an API key, a bare connection is refused; the key and minted keys are accepted."""
    import httpx

    async with LocalServer(port=0, engines=shared_engines(), api_key="sk-local") as srv:
        with pytest.raises(InvalidStatus) as info:
            await StrictClient.open(srv.url, "ga")
        assert info.value.response.status_code == 401
        c = await StrictClient.open(srv.url, "ga", headers={"Authorization": "Bearer sk-local"})
        assert (await c.recv())["type"] == "session.created"
        await c.close()
        async with httpx.AsyncClient() as http:
            r = await http.post(
                f"{srv.http_url}/realtime/client_secrets",
                headers={"Authorization": "Bearer sk-local"},
                json={"session": {"type": "realtime", "instructions": "Be brief."}},
            )
            assert r.status_code == 200
            secret = r.json()
            assert secret["value"].startswith("ek_")
            bad = await http.post(f"{srv.http_url}/realtime/client_secrets", json={})
            assert bad.status_code == 401
        c = await StrictClient.open(srv.url, "ga", headers={"api-key": secret["value"]})
        created = await c.recv()
        assert created["session"]["instructions"] == "Be brief."
        await c.close()


async def test_append_limit_and_expiry():
    """Appends over 15 MiB are refused with an error; an expired session closes with 1001."""
    async with LocalServer(port=0, engines=shared_engines(), session_seconds=1.5) as srv:
        c = await configured(srv, "ga", text_session("ga"))
        big = base64.b64encode(b"\0" * (15 * 1024 * 1024 + 4)).decode()
        await c.send({"type": "input_audio_buffer.append", "audio": big, "event_id": "evt_big"})
        err = await c.until("error")
        assert err["error"]["event_id"] == "evt_big"
        err = await c.until("error", timeout=5)
        assert err["error"]["code"] == "session_expired"
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(c.ws.recv(), 5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_transcription_session(server, dialect):
    """Transcription-only sessions: ?intent=transcription (GA) / transcription_session.update."""
    c = await StrictClient.open(server.url, dialect, query="intent=transcription")
    created = await c.recv()
    if dialect == "beta":
        assert created["type"] == "transcription_session.created"
        await c.send(
            {
                "type": "transcription_session.update",
                "session": {
                    "input_audio_transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                    "turn_detection": None,
                },
            }
        )
        await c.until("transcription_session.updated")
    else:
        assert created["session"]["type"] == "transcription"
        await c.send(
            {
                "type": "session.update",
                "session": {"type": "transcription", "audio": {"input": {"turn_detection": None}}},
            }
        )
        await c.until("session.updated")
    await c.send(
        {"type": "input_audio_buffer.append", "audio": b64(read_wav(SAMPLES / "tool_call.wav"))}
    )
    await c.send({"type": "input_audio_buffer.commit"})
    deltas = []
    while True:
        ev = await c.recv(30)
        if ev["type"] == "conversation.item.input_audio_transcription.delta":
            deltas.append(ev["delta"])
        if ev["type"] == "conversation.item.input_audio_transcription.completed":
            break
    assert "tokyo" in ev["transcript"].lower()
    assert "".join(deltas).strip() == ev["transcript"].strip()
    await c.send({"type": "response.create", "event_id": "evt_r"})
    err = await c.until("error")
    assert err["error"]["event_id"] == "evt_r"
    await c.close()


async def test_many_concurrent_sessions(server):
    """Several sessions at once each get their own complete reply."""

    async def one(i: int) -> str:
        c = await configured(server, "ga", text_session("ga"))
        await c.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": f"number {i}"}],
                },
            }
        )
        await c.send({"type": "response.create"})
        events = await c.collect_until("response.done")
        await c.close()
        return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")

    texts = await asyncio.gather(*(one(i) for i in range(8)))
    for i, text in enumerate(texts):
        assert f"number {i}" in text
