"""The realtime WebSocket of the local server under hostile input (issue 11, items 2 and 3).

Every invalid input gets an ``error`` event naming the client's ``event_id`` and the session
goes on; every resource is bounded by a :class:`Limits` field.
"""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from typing import Any

import pytest

from realtime.server import Limits, LocalServer
from realtime.server.engine_set import EngineSet
from realtime.server.responders import EchoResponder
from realtime.server.session import ServerSession
from tests.server_kit import StrictClient, b64, shared_engines, silence

DIALECTS = ["ga", "beta"]


@pytest.fixture
async def server():
    async with LocalServer(port=0, engines=shared_engines()) as srv:
        yield srv


def vad(dialect: str, **fields: Any) -> dict[str, Any]:
    """A session.update payload setting server VAD fields."""
    td = {"type": "server_vad", **fields}
    if dialect == "ga":
        return {"type": "realtime", "audio": {"input": {"turn_detection": td}}}
    return {"turn_detection": td}


async def open_client(srv: LocalServer, dialect: str) -> StrictClient:
    c = await StrictClient.open(srv.url, dialect)
    await c.until(lambda e: e["type"].endswith("session.created"))
    return c


async def still_works(c: StrictClient, dialect: str) -> None:
    """The session answers a valid update and takes audio after the refused event."""
    await c.send({"type": "session.update", "session": vad(dialect, threshold=0.6)})
    done = await c.until(lambda e: e["type"] in ("session.updated", "error"))
    assert done["type"] == "session.updated", done
    await c.send({"type": "input_audio_buffer.append", "audio": b64(silence(300))})
    await c.send({"type": "input_audio_buffer.clear", "event_id": "evt_clear"})
    await c.until("input_audio_buffer.cleared")


BAD_VAD = [
    {"threshold": 1.5},
    {"threshold": -0.1},
    {"threshold": float("inf")},
    {"threshold": float("nan")},
    {"silence_duration_ms": -5},
    {"prefix_padding_ms": -1},
    {"idle_timeout_ms": 10},
]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("fields", BAD_VAD, ids=[json.dumps(f) for f in BAD_VAD])
async def test_vad_values_out_of_range(server, dialect, fields):
    """VAD values outside the spec are refused with an error; the session goes on."""
    c = await open_client(server, dialect)
    # json.dumps writes NaN / Infinity, which Python's json (and the server) would read
    await c.ws.send(
        json.dumps(
            {"type": "session.update", "event_id": "evt_vad", "session": vad(dialect, **fields)}
        )
    )
    err = await c.until("error")
    assert err["error"]["event_id"] == "evt_vad"
    assert err["error"]["code"] == "invalid_value"
    assert "turn_detection" in (err["error"]["param"] or "")
    await still_works(c, dialect)
    await c.close()


def bad_sessions(dialect: str) -> list[tuple[dict[str, Any], str]]:
    """(session payload, a word the error's param holds)."""
    if dialect == "ga":
        return [
            ({"type": "realtime", "output_modalities": ["banana"]}, "output_modalities"),
            ({"type": "realtime", "output_modalities": ["text", "audio"]}, "output_modalities"),
            ({"type": "realtime", "audio": {"output": {"voice": 123}}}, "voice"),
            ({"type": "realtime", "audio": {"output": {"speed": 9}}}, "speed"),
            (
                {"type": "realtime", "audio": {"input": {"format": {"type": "audio/mp3"}}}},
                "format",
            ),
            ({"type": "realtime", "max_output_tokens": 0}, "max_output_tokens"),
            ({"type": "realtime", "instructions": 5}, "instructions"),
            (
                {
                    "type": "realtime",
                    "audio": {
                        "input": {"turn_detection": {"type": "semantic_vad", "eagerness": "x"}}
                    },
                },
                "eagerness",
            ),
            (
                {"type": "realtime", "audio": {"input": {"noise_reduction": {"type": "loud"}}}},
                "noise_reduction",
            ),
            ({"type": "banana"}, "type"),
        ]
    return [
        ({"modalities": ["banana"]}, "modalities"),
        ({"voice": 123}, "voice"),
        ({"input_audio_format": "mp3"}, "input_audio_format"),
        ({"output_audio_format": 7}, "output_audio_format"),
        ({"temperature": 3.0}, "temperature"),
        ({"max_response_output_tokens": -1}, "max_response_output_tokens"),
        ({"turn_detection": {"type": "banana_vad"}}, "turn_detection"),
        ({"tool_choice": 5}, "tool_choice"),
    ]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_session_values_against_spec(server, dialect):
    """Enums and ranges of the spec are enforced in both dialects, each with an error event."""
    c = await open_client(server, dialect)
    for n, (session, word) in enumerate(bad_sessions(dialect)):
        await c.send({"type": "session.update", "event_id": f"evt_{n}", "session": session})
        err = await c.until(lambda e: e["type"] in ("error", "session.updated"))
        assert err["type"] == "error", (session, err)
        assert err["error"]["event_id"] == f"evt_{n}"
        assert word in (err["error"]["param"] or ""), (session, err["error"])
    await still_works(c, dialect)
    await c.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_deep_json_answered_with_error(server, dialect):
    """A frame nested 1,000 levels deep gets an error event; the session goes on."""
    c = await open_client(server, dialect)
    deep = "[" * 1000 + "]" * 1000
    await c.ws.send('{"type": "session.update", "event_id": "evt_deep", "session": ' + deep + "}")
    err = await c.until("error")
    assert err["error"]["event_id"] in ("evt_deep", None)
    assert err["error"]["code"] in ("invalid_json", "nesting_too_deep")
    deeper = "{" + '"a":{' * 5000 + "}" * 5000 + "}"
    await c.ws.send(deeper)
    await c.until("error")
    await still_works(c, dialect)
    await c.close()


async def test_frame_size_limit_answered_with_error():
    """A frame over max_frame_bytes gets an error event; the session goes on."""
    limits = Limits(max_frame_bytes=64 * 1024, max_append_bytes=40 * 1024)
    async with LocalServer(port=0, engines=shared_engines(), limits=limits) as srv:
        c = await open_client(srv, "ga")
        pad = "x" * (70 * 1024)
        await c.ws.send(json.dumps({"type": "session.update", "event_id": "evt_big", "x": pad}))
        err = await c.until("error")
        assert err["error"]["code"] == "frame_too_large"
        await still_works(c, "ga")
        await c.close()


async def test_internal_failure_is_an_error_event_not_a_silent_close(server, monkeypatch):
    """A bug in a handler is answered with a server_error event; the session goes on."""

    async def broken(self: ServerSession, data: dict[str, Any], event_id: str | None) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(ServerSession, "on_item_retrieve", broken)
    c = await open_client(server, "ga")
    await c.send({"type": "conversation.item.retrieve", "item_id": "x", "event_id": "evt_r"})
    err = await c.until("error")
    assert err["error"]["type"] == "server_error"
    assert err["error"]["event_id"] == "evt_r"
    assert "boom" not in err["error"]["message"]
    await still_works(c, "ga")
    await c.close()


async def test_server_wide_audio_cap():
    """Input audio across all sessions is capped; the session over it gets an error."""
    limits = Limits(max_server_audio_ms=2000)
    async with LocalServer(port=0, engines=shared_engines(), limits=limits) as srv:
        a = await open_client(srv, "ga")
        b = await open_client(srv, "ga")
        off = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
        for c in (a, b):
            await c.send({"type": "session.update", "session": off})
            await c.until("session.updated")
        await a.send({"type": "input_audio_buffer.append", "audio": b64(silence(1500))})
        await a.send({"type": "input_audio_buffer.commit", "event_id": "evt_c"})
        await a.until("input_audio_buffer.committed")
        await b.send(
            {"type": "input_audio_buffer.append", "audio": b64(silence(1500)), "event_id": "e1"}
        )
        err = await b.until("error")
        assert err["error"]["event_id"] == "e1"
        assert err["error"]["code"] == "server_audio_limit_reached"
        await a.close()  # its committed audio is released with the session
        await asyncio.sleep(0.2)
        await b.send({"type": "input_audio_buffer.append", "audio": b64(silence(1500))})
        await b.send({"type": "input_audio_buffer.commit"})
        await b.until("input_audio_buffer.committed")
        await b.close()


async def test_append_memory_is_a_small_multiple_of_the_audio():
    """Handling appends allocates at most a small multiple of the audio they carry.

    Traced with tracemalloc (Python allocations: the frame, its JSON, the decoded audio).
    """
    out: list[dict[str, Any]] = []

    async def emit(event: dict[str, Any]) -> None:
        out.append(event)

    session = ServerSession(dialect="ga", emit=emit, engines=EngineSet(), responder=EchoResponder())
    await session.handle(
        json.dumps(
            {
                "type": "session.update",
                "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
            }
        )
    )
    audio = b"\x01\x02" * (4 * 1024 * 1024)  # 8 MiB
    frame = json.dumps({"type": "input_audio_buffer.append", "audio": b64(audio)})
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        await session.handle(frame)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not [e for e in out if e["type"] == "error"]
    assert len(session.buffer) == len(audio)
    assert held - base <= 1.25 * len(audio), (held - base) / len(audio)
    # the frame itself (4/3 of the audio) is the caller's; at most ~3x more in flight
    assert peak - base <= 3.0 * len(audio), (peak - base) / len(audio)
    await session.close()


class _CountingStt:
    """A fake speech recogniser recording how much audio each run gets (no words)."""

    name = "counting"

    def __init__(self) -> None:
        self.longest = 0
        self.runs: list[int] = []

    def transcribe(self, pcm16_24k, language=None, prompt=None, *, word_timestamps=False):
        from realtime.server.stt import TranscriptResult

        self.runs.append(len(pcm16_24k))
        self.longest = max(self.longest, len(pcm16_24k))
        return TranscriptResult("", (), "en", len(pcm16_24k) / 48000)


class _FakeEngines(EngineSet):
    def __init__(self, stt: _CountingStt) -> None:
        super().__init__()
        self.fake = stt

    def stt_engine(self):  # type: ignore[override]
        return self.fake

    def loaded_stt(self):  # type: ignore[override]
        return self.fake


async def test_live_transcription_is_bounded_for_long_turns():
    """Live passes never cover more than a minute of a turn; a longer turn (noise that never
    settles into words) is transcribed once at commit, whole."""
    stt = _CountingStt()
    out: list[dict[str, Any]] = []

    async def emit(event: dict[str, Any]) -> None:
        out.append(event)

    session = ServerSession(
        dialect="ga", emit=emit, engines=_FakeEngines(stt), responder=EchoResponder()
    )
    off = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
    await session.handle(json.dumps({"type": "session.update", "session": off}))
    second = b"\x10\x00" * 24000
    for _ in range(90):
        await session.handle(
            json.dumps({"type": "input_audio_buffer.append", "audio": b64(second)})
        )
        await asyncio.sleep(0.01)  # let live passes run
    await session.handle(json.dumps({"type": "input_audio_buffer.commit"}))
    for _ in range(200):
        if any(e["type"] == "input_audio_buffer.committed" for e in out) and stt.runs[-1:] == [
            90 * len(second)
        ]:
            break
        await asyncio.sleep(0.05)
    assert stt.runs and stt.runs[-1] == 90 * len(second)  # the whole turn, at commit
    passes = stt.runs[:-1]
    assert passes, "no live pass ran"
    assert max(passes) <= 61 * len(second), max(passes) / len(second)
    await session.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_response_overrides_against_spec(server, dialect):
    """response.create overrides are validated too (a voice of 123 is an error, not a
    response that never finishes)."""
    c = await open_client(server, dialect)
    if dialect == "ga":
        bad = [
            {"audio": {"output": {"voice": 123}}},
            {"output_modalities": ["banana"]},
            {"max_output_tokens": 0},
        ]
    else:
        bad = [{"voice": 123}, {"modalities": ["banana"]}, {"temperature": 9}]
    for n, response in enumerate(bad):
        await c.send({"type": "response.create", "event_id": f"evt_{n}", "response": response})
        err = await c.until(lambda e: e["type"] in ("error", "response.created"))
        assert err["type"] == "error", (response, err)
        assert err["error"]["event_id"] == f"evt_{n}"
        assert (err["error"]["param"] or "").startswith("response"), err["error"]
    await still_works(c, dialect)
    await c.close()
