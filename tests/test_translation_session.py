"""Translation sessions end to end: the client (realtime.translation) against the local server.

Two translators are exercised: the offline default (Apertium, English to Spanish; CI installs
it, see .ci/run) and a chat-completions endpoint written here (any ``openai-compatible:URL``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route
from websockets.asyncio.client import connect as ws_connect

from audio import NullSpeaker
from realtime.events import (
    TranslationOutputAudioDeltaEvent,
    TranslationSessionClosedEvent,
    parse_server_event,
)
from realtime.exceptions import ConfigError, ServerError
from realtime.recording import Recorder
from realtime.rest import AsyncAudioClient
from realtime.server.local import LocalServer
from realtime.translation import FramePacer, connect_translation, translation_endpoint
from tests.server_kit import shared_engines

PHRASE = "Hello, how are you today? I would like to book a table for two people."
SECOND = 48000  # bytes of one second of 24 kHz PCM16

_speech: dict[str, bytes] = {}


async def speech(text: str = PHRASE) -> bytes:
    """English speech (the server's own TTS), cached for the test session."""
    if text not in _speech:
        _speech[text] = await shared_engines().synthesize(text, voice="alloy")
    return _speech[text]


def needs_apertium() -> None:
    """The offline translator is a Debian package: CI installs it, so there it must be present."""
    if shutil.which("apertium") is None:
        if os.environ.get("CI"):
            pytest.fail("apertium is missing: .ci/run installs apertium and apertium-eng-spa")
        pytest.skip("apertium is not installed (apt-get install apertium apertium-eng-spa)")


class _QuietServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        return None


WORDS = {
    "hello": "bonjour",
    "how": "comment",
    "are": "allez",
    "you": "vous",
    "today": "aujourd'hui",
}


async def chat_endpoint(bodies: list[dict[str, Any]]) -> AsyncIterator[str]:
    """A chat-completions endpoint that 'translates' word by word, streaming one word a chunk."""

    async def completions(request: Request) -> StreamingResponse:
        body = await request.json()
        bodies.append(body)
        text = body["messages"][-1]["content"]
        words = [WORDS.get(w.lower(), w.lower()) for w in re.findall(r"[\w']+", text)]
        out = " ".join(words).capitalize() + "."

        async def stream() -> AsyncIterator[bytes]:
            for i, piece in enumerate(re.findall(r"\S+\s*", out)):
                chunk = {"choices": [{"index": 0, "delta": {"content": piece}}], "n": i}
                yield f"data: {json.dumps(chunk)}\n\n".encode()
            yield b"data: [DONE]\n\n"

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
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def test_endpoint_path() -> None:
    ep = translation_endpoint(url="ws://127.0.0.1:9/v1")
    assert ep.url == "ws://127.0.0.1:9/v1/realtime/translations?model=gpt-realtime-translate"
    again = translation_endpoint("m", url="http://127.0.0.1:9/v1/realtime/translations")
    assert again.url == "ws://127.0.0.1:9/v1/realtime/translations?model=m"
    hosted = translation_endpoint(api_key="sk-x", env={})
    assert hosted.url.startswith("wss://api.openai.com/v1/realtime/translations?")


async def test_full_session_offline(tmp_path: Path) -> None:
    """Speech in, Spanish speech and both transcripts out, recorded, with the offline model."""
    needs_apertium()
    pcm = await speech()
    speaker = NullSpeaker(clock="instant")
    played: list[int] = []
    speaker_enqueue = speaker.enqueue

    def enqueue(data: bytes, item_id: str, content_index: int = 0) -> None:
        played.append(len(data))
        speaker_enqueue(data, item_id, content_index)

    speaker.enqueue = enqueue  # type: ignore[method-assign]
    deltas: list[str] = []
    async with LocalServer(engines=shared_engines()) as server:
        assert server.state.translator is not None
        with Recorder(tmp_path / "t.jsonl") as rec:
            async with connect_translation(
                url=server.url,
                language="es",
                transcription_model="gpt-realtime-whisper",
                speaker=speaker,
                recorder=rec,
            ) as tr:
                assert tr.session is not None and tr.session.language == "es"
                tr.on("session.output_transcript.delta", lambda e: deltas.append(e.delta))
                await tr.send_audio(bytes(SECOND // 2) + pcm + bytes(SECOND))
                audio = await tr.wait_for("session.output_audio.delta", timeout=30)
                assert isinstance(audio, TranslationOutputAudioDeltaEvent)
    assert re.match(r"(?i)hello\W+how are you", tr.input_transcript)
    assert "mesa para dos personas" in tr.output_transcript
    assert "".join(deltas) == tr.output_transcript
    assert sum(played) == tr.output_audio_bytes > SECOND  # the Spanish speech was played
    assert tr.pacer.frames >= (len(pcm) + SECOND) // tr.pacer.frame_bytes
    lines = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    sent = {x["event"]["type"] for x in lines if x["direction"] == "client"}
    got = {x["event"]["type"] for x in lines if x["direction"] == "server"}
    assert {"session.update", "session.input_audio_buffer.append", "session.close"} <= sent
    assert {"session.created", "session.updated", "session.closed"} <= got
    cues = tr.transcript.cues()
    assert cues and "Hello" in cues[0].source and "Hola" in cues[0].target


async def test_full_session_with_a_chat_translator() -> None:
    """``openai-compatible:URL``: the recognized text goes to the chat endpoint; the reply is
    spoken (French: espeak-ng) and streamed as the output transcript."""
    pcm = await speech("Hello, how are you today?")
    bodies: list[dict[str, Any]] = []
    gen = chat_endpoint(bodies)
    chat_url = await gen.__anext__()
    try:
        async with (
            LocalServer(
                engines=shared_engines(), translator=f"openai-compatible:{chat_url}#model=tiny"
            ) as server,
            connect_translation(url=server.url, language="fr", transcription_model="whisper") as tr,
        ):
            await tr.send_audio(pcm + bytes(SECOND))
            await tr.wait_for("session.output_audio.delta", timeout=30)
    finally:
        await gen.aclose()
    assert tr.output_transcript == "Bonjour comment allez vous aujourd'hui."
    assert re.match(r"(?i)hello\W+how are you", tr.input_transcript)
    assert tr.output_audio_bytes > SECOND // 2
    (body,) = bodies
    assert body["model"] == "tiny" and body["stream"] is True
    assert "'fr'" in body["messages"][0]["content"]
    assert re.match(r"(?i)hello\W+how are you", body["messages"][-1]["content"])


async def test_close_flushes_pending_audio() -> None:
    """Speech still queued (no trailing silence, not yet sent) is flushed by close: the
    server translates it before ``session.closed``."""
    needs_apertium()
    pcm = await speech("Good morning, my friend.")
    async with LocalServer(engines=shared_engines()) as server:
        tr = await connect_translation(url=server.url, language="es")
        closed: list[Any] = []
        tr.on("session.closed", closed.append)
        await tr.send_audio(pcm)
        assert tr.pacer.pending_ms > 1000  # most of it has not gone out yet
        await tr.close()
    assert tr.pacer.pending_bytes == 0
    assert isinstance(closed[0], TranslationSessionClosedEvent)
    assert "amigo" in tr.output_transcript.lower()
    assert tr.output_audio_bytes > 0
    assert tr.input_transcript == ""  # no transcription configured: no source deltas
    assert not tr.is_open


async def test_silence_flows_while_idle() -> None:
    needs_apertium()
    async with (
        LocalServer(engines=shared_engines()) as server,
        connect_translation(url=server.url) as tr,
    ):
        await asyncio.sleep(0.7)
        assert tr.pacer.silent_frames >= 3
        assert tr.pacer.silent_frames == tr.pacer.frames


async def test_bad_config_is_an_error() -> None:
    """Unsupported audio format: ConfigError on the client; on the wire, an ``error`` and the
    session goes on. An unsupported language is a ServerError and the session goes on."""
    needs_apertium()
    pcmu = {"audio": {"input": {"format": {"type": "audio/pcmu"}}}}
    with pytest.raises(ConfigError, match="24 kHz PCM16"):
        connect_translation(url="ws://127.0.0.1:9/v1", session=pcmu)
    async with LocalServer(engines=shared_engines()) as server:
        async with connect_translation(url=server.url, language="es") as tr:
            with pytest.raises(ConfigError):
                await tr.update(pcmu)
            with pytest.raises(ServerError, match="no Apertium pair") as info:
                await tr.update(language="xx")
            assert info.value.code == "unsupported_language"
            assert (await tr.update(language="es")).language == "es"
        url = server.url + "/realtime/translations"
        async with ws_connect(url) as ws:
            created = parse_server_event(await ws.recv(), "translation")
            assert created.type == "session.created"
            frames = [
                {"type": "session.update", "event_id": "u1", "session": pcmu},
                {"type": "session.update", "event_id": "u2", "session": {"model": "other"}},
                {"type": "session.input_audio_buffer.append", "event_id": "a1", "audio": "AA=="},
                {"type": "response.create", "event_id": "r1"},
                {"type": "session.update", "event_id": "u3", "session": {}},
            ]
            for frame in frames:
                await ws.send(json.dumps(frame))
            replies = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in frames]
            errors = [r["error"] for r in replies[:4]]
            assert [r["type"] for r in replies] == ["error"] * 4 + ["session.updated"]
            assert [e["code"] for e in errors] == [
                "invalid_value",
                "unknown_parameter",
                "invalid_value",
                "invalid_event",
            ]
            assert errors[0]["event_id"] == "u1" and "24 kHz PCM16" in errors[0]["message"]


async def test_server_without_translator_refuses_clearly() -> None:
    async with LocalServer(engines=shared_engines(), translator="none") as server:
        with pytest.raises(ServerError, match="--translator openai-compatible:URL") as info:
            await connect_translation(url=server.url)
        assert info.value.code == "translator_unavailable"


async def test_ephemeral_translation_key() -> None:
    """``POST /v1/realtime/translations/client_secrets`` through the REST client, then a
    session opened with the key; a conversation key does not open a translation session."""
    needs_apertium()
    async with LocalServer(engines=shared_engines(), api_key="sk-local") as server:
        async with AsyncAudioClient(api_key="sk-local", base_url=server.http_url) as client:
            key = await client.create_translation_client_secret(
                {"audio": {"output": {"language": "es"}}}, expires_after_seconds=60
            )
            assert key.value.startswith("ek_") and 0 < key.expires_in <= 60
            assert key.session["type"] == "translation"
            assert key.session["model"] == "gpt-realtime-translate"
            with pytest.raises(ConfigError, match="24 kHz"):
                await client.create_translation_client_secret(
                    {"audio": {"input": {"format": "g711_ulaw"}}}
                )
            other = await client.create_client_secret({"type": "realtime"})
        async with connect_translation(url=server.url, api_key=key.value) as tr:
            assert tr.session is not None and tr.session.language == "es"
        with pytest.raises(Exception, match="401"):
            await connect_translation(url=server.url, api_key=other.value)


def test_output_audio_event_carries_pcm() -> None:
    event = TranslationOutputAudioDeltaEvent.from_pcm(b"\x01\x00" * 10, elapsed_ms=200)
    assert base64.b64decode(event.delta) == b"\x01\x00" * 10
    assert event.sample_rate == 24000 and event.format == "pcm16"


async def test_failing_handler_and_session_time_limit() -> None:
    """A handler that raises does not stop the session; the server's time limit closes it
    with ``session_expired`` (1001)."""
    needs_apertium()
    async with LocalServer(engines=shared_engines(), session_seconds=1.5) as server:
        tr = await connect_translation(url=server.url, language="es")

        def broken(event: Any) -> None:
            raise RuntimeError("handler bug")

        tr.on("session.updated", broken)
        assert (await tr.update(language="es")).language == "es"
        assert (await tr.update(language="es")).language == "es"
        error = await tr.wait_for("error", timeout=10)
        assert error.error.code == "session_expired"  # type: ignore[attr-defined]
        for _ in range(100):
            if tr.closed is not None:
                break
            await asyncio.sleep(0.05)
        assert tr.closed is not None and tr.closed.code == 1001
        await tr.close()  # nothing left to flush: returns at once


async def test_send_audio_resamples_and_waits_for_room() -> None:
    """16 kHz audio is resampled to 24 kHz; beyond the pacer's bound, send_audio waits."""
    needs_apertium()
    pacer = FramePacer(max_pending_ms=400)
    async with (
        LocalServer(engines=shared_engines()) as server,
        connect_translation(url=server.url, pacer=pacer) as tr,
    ):
        audio_before = pacer.frames - pacer.silent_frames
        start = time.monotonic()
        await tr.send_audio(bytes(32000), sample_rate=16000)  # 1 s of audio at 16 kHz
        waited = time.monotonic() - start
        assert waited >= 0.3  # 1 s does not fit in 400 ms: it went out in real time
        assert pacer.pending_bytes <= 19200
        audio_frames = pacer.frames - pacer.silent_frames - audio_before
        queued = audio_frames * pacer.frame_bytes + pacer.pending_bytes
        # one second at 24 kHz (the resampler holds back a short tail; a partial frame is padded)
        assert SECOND - 200 <= queued <= SECOND + pacer.frame_bytes


async def test_client_secret_endpoint_errors() -> None:
    """``POST /v1/realtime/translations/client_secrets`` refuses what the spec does not allow."""
    import httpx

    needs_apertium()
    async with LocalServer(engines=shared_engines(), api_key="sk-local") as server:
        url = server.http_url + "/realtime/translations/client_secrets"
        auth = {"Authorization": "Bearer sk-local"}
        good = {"session": {"model": "m", "audio": {"output": {"language": "es"}}}}
        async with httpx.AsyncClient() as http:
            assert (await http.post(url, json=good)).status_code == 401
            cases: list[tuple[Any, str]] = [
                ([1, 2], "invalid_json"),
                ({"session": {"audio": {}}}, "missing_required"),
                ({"session": {"model": "m", "audio": {"input": {"format": "g711_alaw"}}}},
                 "invalid_value"),
                ({**good, "expires_after": {"seconds": 5}}, "invalid"),
                ({"session": {"model": "m", "audio": {"output": {"language": "xx"}}}},
                 "unsupported_language"),
            ]  # fmt: skip
            for body, code in cases:
                reply = await http.post(url, json=body, headers=auth)
                assert reply.status_code == 400 and reply.json()["error"]["code"] == code, body
            ok = await http.post(url, json=good, headers=auth)
            assert ok.status_code == 200
            key = ok.json()["value"]
            # an ephemeral key cannot mint more keys
            again = await http.post(url, json=good, headers={"Authorization": f"Bearer {key}"})
            assert again.status_code == 401
        with pytest.raises(Exception, match="401"):
            await connect_translation(url=server.url, api_key="sk-wrong")


class _UpperTranslator:
    """A translator for tests that need a session, not a translation."""

    name = "upper"

    def check(self, source: str, target: str) -> str | None:
        return None

    async def translate(self, text: str, *, source: str, target: str) -> AsyncIterator[str]:
        yield text.upper()


async def test_translation_sessions_count_toward_the_session_limit() -> None:
    """A translation session holds one of ``Limits.max_sessions``: a realtime or translation
    handshake beyond it is refused with HTTP 503, and the slot comes back when it closes."""
    from websockets.exceptions import InvalidStatus

    from realtime.server import LocalServer
    from realtime.server.limits import Limits

    async with LocalServer(
        port=0, limits=Limits(max_sessions=1), translator=_UpperTranslator()
    ) as server:
        async with ws_connect(f"{server.url}/realtime/translations?model=gpt-realtime") as first:
            json.loads(await asyncio.wait_for(first.recv(), 10))  # session.created
            for path in ("/realtime?model=gpt-realtime", "/realtime/translations"):
                with pytest.raises(InvalidStatus) as refused:
                    async with ws_connect(server.url + path):
                        pass
                assert refused.value.response.status_code == 503
        for _ in range(50):  # the server notices the close
            if server.state.open_sessions == 0:
                break
            await asyncio.sleep(0.05)
        async with ws_connect(f"{server.url}/realtime?model=gpt-realtime") as again:
            assert json.loads(await asyncio.wait_for(again.recv(), 10))["type"] == "session.created"
