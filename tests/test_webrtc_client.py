"""The Python client over WebRTC (``realtime.connect(..., transport="webrtc")``) against the
local server, in both dialects; the SDP exchange as data; typed errors for a refused offer,
an unusable answer, ICE failure and a closed data channel."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import uvicorn
from python_multipart import MultipartParser
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import realtime
from realtime.events import (
    OutputAudioBufferClearedEvent,
    OutputAudioBufferStartedEvent,
    OutputAudioBufferStoppedEvent,
)
from realtime.events.config import SessionConfig
from realtime.exceptions import AuthenticationError, ConfigError
from realtime.server import LocalServer
from realtime.webrtc import (
    IceError,
    SdpError,
    WebRTC,
    WebRTCTransport,
    answer_from,
    call_id_from,
    offer_request,
)
from tests.server_kit import shared_engines
from tests.webrtc_kit import read_wav, silence

DIALECTS = ["ga", "beta"]
LONG_TEXT = " ".join(["This is a long sentence that keeps the speaker busy for a while."] * 6)


def loud_ms(pcm: bytes | bytearray) -> float:
    a = np.frombuffer(bytes(pcm), np.int16)[: len(pcm) // 960 * 480].reshape(-1, 480)
    return float((np.abs(a).max(axis=1) > 500).sum() * 20)


class RecordingSpeaker:
    """An AudioSink that records what it was given."""

    def __init__(self) -> None:
        self.chunks: list[tuple[str, bytes]] = []
        self.clears = 0

    def enqueue(self, pcm16: bytes, item_id: str, content_index: int = 0) -> None:
        self.chunks.append((item_id, pcm16))

    def clear(self) -> None:
        self.clears += 1


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer(port=0, engines=shared_engines(), warm=True) as srv:
        yield srv


# -- the SDP exchange as data -----------------------------------------------------------------


def test_ga_offer_is_multipart_to_calls() -> None:
    req = offer_request("wss://api.example/v1/realtime?model=gpt-realtime", "ga", "v=0\r\nx\r\n")
    assert req.url == "https://api.example/v1/realtime/calls"
    assert req.content_type.startswith("multipart/form-data; boundary=")
    fields: dict[str, bytes] = {}
    name: list[str] = []

    def on_header_value(data: bytes, start: int, end: int) -> None:
        text = data[start:end].decode()
        if "name=" in text:
            name.append(text.split('name="')[1].split('"')[0])

    parser = MultipartParser(
        req.content_type.split("boundary=")[1],
        callbacks={
            "on_header_value": on_header_value,
            "on_part_data": lambda d, s, e: fields.__setitem__(
                name[-1], fields.get(name[-1], b"") + d[s:e]
            ),
        },
    )
    parser.write(req.body)
    assert fields["sdp"] == b"v=0\r\nx\r\n"
    assert fields["session"] == b'{"type": "realtime", "model": "gpt-realtime"}'


def test_ga_offer_with_an_ephemeral_key_is_bare_sdp() -> None:
    req = offer_request("wss://h/v1/realtime?model=m", "ga", "v=0\r\n", ephemeral=True)
    assert req.url == "https://h/v1/realtime/calls"
    assert req.content_type == "application/sdp" and req.body == b"v=0\r\n"


async def test_connect_with_an_ephemeral_key() -> None:
    """The service's browser flow from Python: mint a client secret, call with it."""
    import httpx

    async with LocalServer(port=0, engines=shared_engines(), api_key="sk-real") as srv:
        async with httpx.AsyncClient() as http:
            minted = await http.post(
                srv.http_url + "/realtime/client_secrets",
                headers={"Authorization": "Bearer sk-real"},
                json={"session": {"type": "realtime", "instructions": "Be brief."}},
            )
        secret = minted.json()["value"]
        async with realtime.connect(url=srv.url, api_key=secret, transport="webrtc") as s:
            for _ in range(100):
                if s.server_session is not None:
                    break
                await asyncio.sleep(0.05)
            assert getattr(s.server_session, "instructions", None) == "Be brief."


def test_beta_offer_is_sdp_to_the_realtime_url() -> None:
    req = offer_request("ws://127.0.0.1:9/v1/realtime?model=m1", "beta", "v=0\r\n")
    assert req.url == "http://127.0.0.1:9/v1/realtime?model=m1"
    assert req.content_type == "application/sdp" and req.body == b"v=0\r\n"


def test_answer_and_call_id() -> None:
    assert call_id_from("/v1/realtime/calls/rtc_abc") == "rtc_abc"
    assert call_id_from(None) is None
    assert answer_from(201, "application/sdp", "v=0\r\n") == "v=0\r\n"
    with pytest.raises(SdpError, match=r"HTTP 400.*bad offer"):
        answer_from(400, "application/json", '{"error": {"message": "bad offer"}}')
    with pytest.raises(SdpError, match="not SDP"):
        answer_from(201, "text/html", "<html>")


def test_unknown_transport_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="transport"):
        realtime.connect(url="ws://127.0.0.1:1/v1", transport="carrier-pigeon")  # type: ignore[arg-type]


# -- sessions over WebRTC ----------------------------------------------------------------------


def transcribing(dialect: str) -> SessionConfig:
    return SessionConfig(transcription={"model": "whisper-1"})


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_voice_turn_over_webrtc(server: LocalServer, dialect: str) -> None:
    """Same Session API: appended audio travels on the track, the reply on the incoming
    track, events (typed, both dialects) on the data channel; the conversation builds up."""
    heard = bytearray()
    speaker = RecordingSpeaker()
    rtc = WebRTC(on_audio=heard.extend, speaker=speaker)
    async with realtime.connect(
        url=server.url, dialect=dialect, transport=rtc, config=transcribing(dialect)
    ) as s:
        transport = s._transport
        assert isinstance(transport, WebRTCTransport)
        if dialect == "ga":
            assert transport.call_id is not None and transport.call_id.startswith("rtc_")
        async with s.expect("conversation.item.input_audio_transcription.completed", 40) as done:
            await s.append_audio(read_wav("question.wav") + silence(1500))
        assert "weather" in done.event.transcript.lower()  # type: ignore[attr-defined]
        started = await s.wait_for("output_audio_buffer.started", 40)
        stopped = await s.wait_for("output_audio_buffer.stopped", 40)
        assert isinstance(started, OutputAudioBufferStartedEvent)
        assert isinstance(stopped, OutputAudioBufferStoppedEvent)
        assert started.response_id == stopped.response_id
        await asyncio.sleep(0.3)
        assert loud_ms(heard) > 1500
        assert {item for item, _ in speaker.chunks} >= {started.response_id}
        assert loud_ms(b"".join(pcm for _, pcm in speaker.chunks)) > 1500
        users = [i for i in s.conversation.items if getattr(i, "role", None) == "user"]
        assistants = [i for i in s.conversation.items if getattr(i, "role", None) == "assistant"]
        assert users and assistants


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_commit_after_append_stays_in_order(server: LocalServer, dialect: str) -> None:
    """Without turn detection: append then commit; the commit waits for the audio it
    follows to be sent, so the committed turn holds the whole question."""
    config = SessionConfig(transcription={"model": "whisper-1"}, turn_detection=None)
    async with realtime.connect(
        url=server.url, dialect=dialect, transport="webrtc", config=config
    ) as s:
        await s.append_audio(read_wav("question.wav"))
        async with s.expect("conversation.item.input_audio_transcription.completed", 40) as done:
            committed = await s.commit_audio(timeout=20)
        assert committed.type == "input_audio_buffer.committed"
        transcript = done.event.transcript.lower()  # type: ignore[attr-defined]
        # the whole question, first word to last ("Paris" may come back as "pairs" after Opus)
        assert "what is the weather" in transcript and "today" in transcript


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_interrupt_clears_the_servers_output_buffer(
    server: LocalServer, dialect: str
) -> None:
    """Barge-in: session.interrupt() cancels the response and sends output_audio_buffer.clear
    (beta too, over WebRTC); the server stops and truncates; the speaker is cleared."""
    speaker = RecordingSpeaker()
    async with realtime.connect(
        url=server.url, dialect=dialect, transport=WebRTC(speaker=speaker)
    ) as s:
        async with s.expect("output_audio_buffer.started", 40):
            await s.send_text(LONG_TEXT)
        await asyncio.sleep(1.0)
        async with (
            s.expect("output_audio_buffer.cleared", 10) as cleared,
            s.expect("conversation.item.truncated", 10) as truncated,
        ):
            await s.interrupt()
        assert isinstance(cleared.event, OutputAudioBufferClearedEvent)
        assert 300 <= truncated.event.audio_end_ms <= 4000  # type: ignore[attr-defined]
        assert speaker.clears >= 1
        # and the explicit command works in both dialects over WebRTC
        async with s.expect("output_audio_buffer.cleared", 10):
            await s.clear_output_audio()


async def test_mic_iterator_feeds_the_track(server: LocalServer) -> None:
    async def mic() -> AsyncIterator[bytes]:
        pcm = silence(500) + read_wav("question.wav") + silence(2000)
        for i in range(0, len(pcm), 1920):  # 40 ms chunks in real time
            yield pcm[i : i + 1920]
            await asyncio.sleep(0.04)
        while True:
            yield silence(40)
            await asyncio.sleep(0.04)

    async with realtime.connect(
        url=server.url,
        transport=WebRTC(mic=mic()),
        config=SessionConfig(transcription={"model": "whisper-1"}),
    ) as s:
        done = await s.wait_for("conversation.item.input_audio_transcription.completed", 40)
        assert "weather" in done.transcript.lower()  # type: ignore[attr-defined]


# -- errors --------------------------------------------------------------------------------


async def test_refused_key_and_refused_offer(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with LocalServer(port=0, engines=shared_engines(), api_key="sk-right") as locked:
        with pytest.raises(AuthenticationError):
            await realtime.connect(url=locked.url, api_key="sk-wrong", transport="webrtc")
    import realtime.server.webrtc as server_webrtc

    monkeypatch.setattr(server_webrtc, "MAX_CALLS", 0)
    with pytest.raises(SdpError, match="HTTP 429"):
        await realtime.connect(url=server.url, transport="webrtc")


@contextlib.asynccontextmanager
async def fake_sdp_server(answer: Any) -> AsyncIterator[str]:
    """A server whose calls endpoint answers with ``await answer(offer_sdp)``."""

    async def calls(request: Request) -> Response:
        form = await request.form()
        text = await answer(str(form["sdp"]))
        return Response(text, 201, media_type="application/sdp")

    app = Starlette(routes=[Route("/v1/realtime/calls", calls, methods=["POST"])])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        await asyncio.sleep(0.01)
    port = srv.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/v1"
    finally:
        srv.should_exit = True
        await task


async def test_unusable_answer_is_an_sdp_error() -> None:
    async def garbage(offer: str) -> str:
        return "v=0\r\nm=audio 9 nonsense\r\n"

    async with fake_sdp_server(garbage) as url:
        with pytest.raises(SdpError, match="answer could not be used"):
            await realtime.connect(url=url, transport="webrtc")


async def test_ice_failure_is_an_ice_error() -> None:
    """A valid answer whose candidates lead nowhere: the call never connects."""
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    peers: list[Any] = []

    async def unreachable(offer: str) -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        peers.append(pc)
        pc.createDataChannel("unused")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        lines = []
        for line in pc.localDescription.sdp.splitlines():
            if line.startswith("a=candidate:"):
                parts = line.split()
                parts[4], parts[5] = "192.0.2.250", "9"  # TEST-NET-1: never answers
                line = " ".join(parts)
            lines.append(line)
        await pc.close()
        return "\r\n".join(lines) + "\r\n"

    async with fake_sdp_server(unreachable) as url:
        with pytest.raises(IceError, match="did not connect within 2 s"):
            await realtime.connect(url=url, transport="webrtc", connect_timeout=2.0)


async def test_closed_data_channel_is_connection_lost(server: LocalServer) -> None:
    """The server hangs up: the session sees connection.lost (code 1006) and ends."""
    import httpx

    async with realtime.connect(url=server.url, transport="webrtc") as s:
        transport = s._transport
        assert isinstance(transport, WebRTCTransport)
        async with s.expect("connection.lost", 15) as lost, httpx.AsyncClient() as http:
            r = await http.post(f"{server.http_url}/realtime/calls/{transport.call_id}/hangup")
            assert r.status_code == 200
        assert lost.event.code == 1006  # type: ignore[attr-defined]
        await asyncio.wait_for(s.wait_closed(), 10)
        assert not s.is_open
