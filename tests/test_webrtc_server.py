"""The local server over WebRTC: SDP exchange, events on ``oai-events``, Opus audio both ways.

A raw aiortc peer (tests/webrtc_kit.py) plays the sample question into its outgoing track and
records the server's track; every data-channel event is validated with our models.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import pytest

from realtime.server import LocalServer
from realtime.server.playout import BYTES_PER_MS, OutputAudioBuffer
from tests.server_kit import shared_engines
from tests.webrtc_kit import RawPeer, read_wav, silence

LONG_TEXT = " ".join(["This is a long sentence that keeps the speaker busy for a while."] * 6)


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer(port=0, engines=shared_engines(), warm=True) as srv:
        yield srv


def transcription_session(dialect: str) -> dict[str, Any]:
    if dialect == "ga":
        return {"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1"}}}}
    return {"input_audio_transcription": {"model": "whisper-1"}}


def loud(pcm: bytes | bytearray) -> float:
    """Seconds of audio above a low threshold (20 ms frames)."""
    a = np.frombuffer(bytes(pcm), np.int16)[: len(pcm) // 960 * 480].reshape(-1, 480)
    return float((np.abs(a).max(axis=1) > 500).sum() * 0.02)


# -- the output audio buffer, without I/O -------------------------------------------------------


def test_output_buffer_reports_started_then_stopped_after_the_response_is_done() -> None:
    buf = OutputAudioBuffer()
    buf.push("resp_1", "item_1", b"\x01\x00" * 480)  # 20 ms
    pcm, events = buf.pull(960)
    assert pcm == b"\x01\x00" * 480
    assert events == [{"type": "output_audio_buffer.started", "response_id": "resp_1"}]
    pcm, events = buf.pull(960)  # drained but the response is still generating: no stop yet
    assert pcm == bytes(960) and events == []
    assert buf.finish("resp_1") == [
        {"type": "output_audio_buffer.stopped", "response_id": "resp_1"}
    ]
    assert not buf.active


def test_output_buffer_stops_when_the_last_frame_of_a_finished_response_plays() -> None:
    buf = OutputAudioBuffer()
    buf.push("resp_1", "item_1", b"\x01\x00" * 700)
    assert buf.finish("resp_1") == []
    _, first = buf.pull(960)
    pcm, last = buf.pull(960)
    assert [e["type"] for e in first] == ["output_audio_buffer.started"]
    assert [e["type"] for e in last] == ["output_audio_buffer.stopped"]
    assert pcm[: 220 * 2] == b"\x01\x00" * 220 and pcm[440:] == bytes(960 - 440)


def test_output_buffer_clear_reports_what_was_heard_and_drops_late_audio() -> None:
    buf = OutputAudioBuffer()
    buf.push("resp_1", "item_1", bytes(BYTES_PER_MS * 1000))
    for _ in range(10):
        buf.pull(960)
    events, played = buf.clear()
    assert events == [{"type": "output_audio_buffer.cleared", "response_id": "resp_1"}]
    assert played is not None and (played.item_id, played.audio_end_ms) == ("item_1", 200)
    assert buf.queued_bytes == 0 and not buf.active
    buf.push("resp_1", "item_1", b"\x01\x00" * 480)  # still arriving from the cancelled run
    assert buf.pull(960) == (bytes(960), [])


def test_output_buffer_interruption_reports_nothing_when_silent() -> None:
    buf = OutputAudioBuffer()
    assert buf.clear(always=False) == ([], None)
    assert buf.clear() == ([{"type": "output_audio_buffer.cleared", "response_id": None}], None)


def test_output_buffer_is_bounded() -> None:
    buf = OutputAudioBuffer(max_bytes=1000)
    assert buf.push("r", "i", bytes(800))
    assert not buf.push("r", "i", bytes(400))
    assert buf.queued_bytes == 800 and buf.dropped_bytes == 400


def test_output_buffer_switches_responses() -> None:
    buf = OutputAudioBuffer()
    buf.push("resp_1", "item_1", b"\x01\x00" * 240)
    buf.push("resp_2", "item_2", b"\x02\x00" * 240)
    _, events = buf.pull(960)
    assert [(e["type"], e["response_id"]) for e in events] == [
        ("output_audio_buffer.started", "resp_1"),
        ("output_audio_buffer.stopped", "resp_1"),
        ("output_audio_buffer.started", "resp_2"),
    ]


# -- calls ----------------------------------------------------------------------------------


async def test_ga_call_hears_the_question_and_plays_the_reply(server: LocalServer) -> None:
    peer = RawPeer("ga")
    try:
        r = await peer.connect(server.http_url, session=transcription_session("ga"))
        assert r.status_code == 201
        assert r.headers["content-type"].startswith("application/sdp")
        assert r.headers["location"].startswith("/v1/realtime/calls/rtc_")
        await peer.until("session.created")
        peer.mic.play(read_wav("question.wav") + silence(1200))
        done = await peer.until("conversation.item.input_audio_transcription.completed", 40)
        assert "weather" in done["transcript"].lower()
        started = await peer.until("output_audio_buffer.started", 40)
        stopped = await peer.until("output_audio_buffer.stopped", 40)
        assert started["response_id"] == stopped["response_id"]
        assert peer.index_of(started) < peer.index_of(stopped)
        # the reply audio travelled on the track, not as events
        assert "response.output_audio.delta" not in peer.types()
        transcript = await peer.until("response.output_audio_transcript.done")
        assert "local echo assistant" in transcript["transcript"]
        await asyncio.sleep(0.3)
        assert loud(peer.audio) > 1.5
    finally:
        await peer.close()


async def test_beta_sdp_exchange_at_the_realtime_url(server: LocalServer) -> None:
    peer = RawPeer("beta")
    try:
        r = await peer.connect(
            server.http_url, path="/realtime?model=gpt-4o-realtime-preview", multipart=False
        )
        assert r.status_code == 201, r.text
        created = await peer.until("session.created")
        assert created["session"]["object"] == "realtime.session"
        peer.send({"type": "session.update", "session": transcription_session("beta")})
        await peer.until("session.updated")
        peer.mic.play(read_wav("question.wav") + silence(1200))
        done = await peer.until("conversation.item.input_audio_transcription.completed", 40)
        assert "weather" in done["transcript"].lower()
        await peer.until("response.audio_transcript.done", 40)
        # beta WebRTC reports playback too (typed in beta by our registry)
        await peer.until("output_audio_buffer.started", 40)
        await peer.until("output_audio_buffer.stopped", 40)
        assert "response.audio.delta" not in peer.types()
        assert loud(peer.audio) > 1.0
    finally:
        await peer.close()


@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_output_audio_buffer_clear_stops_playback_and_truncates(
    server: LocalServer, dialect: str
) -> None:
    peer = RawPeer(dialect)
    try:
        path = "/realtime/calls" if dialect == "ga" else "/realtime?model=gpt-4o-realtime-preview"
        assert (await peer.connect(server.http_url, path=path, multipart=False)).status_code == 201
        await peer.until("session.created")
        part_type = "input_text"
        peer.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": part_type, "text": LONG_TEXT}],
                },
            }
        )
        peer.send({"type": "response.create"})
        started = await peer.until("output_audio_buffer.started", 40)
        await asyncio.sleep(1.0)
        peer.send({"type": "output_audio_buffer.clear", "event_id": "evt_clear"})
        cleared = await peer.until("output_audio_buffer.cleared", 10)
        assert cleared["response_id"] == started["response_id"]
        truncated = await peer.until("conversation.item.truncated", 10)
        assert 500 <= truncated["audio_end_ms"] <= 3000
        heard = len(peer.audio)
        await asyncio.sleep(1.0)
        # silence after the clear (past the ~300 ms the receiver's jitter buffer still holds)
        assert loud(peer.audio[heard + 15 * 960 :]) == 0.0
        assert "output_audio_buffer.stopped" not in peer.types()
    finally:
        await peer.close()


async def test_speech_interrupts_playback(server: LocalServer) -> None:
    peer = RawPeer("ga")
    try:
        await peer.connect(server.http_url, multipart=False)
        await peer.until("session.created")
        peer.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": LONG_TEXT}],
                },
            }
        )
        peer.send({"type": "response.create"})
        await peer.until("output_audio_buffer.started", 40)
        n = len(peer.events)
        peer.mic.play(read_wav("greeting.wav") + silence(1000))
        await peer.until("input_audio_buffer.speech_started", 20, start=n)
        cleared = await peer.until("output_audio_buffer.cleared", 10, start=n)
        truncated = await peer.until("conversation.item.truncated", 10, start=n)
        assert truncated["audio_end_ms"] > 0
        assert peer.index_of(cleared) < peer.index_of(truncated)
    finally:
        await peer.close()


async def test_hangup_ends_the_call(server: LocalServer) -> None:
    peer = RawPeer("ga")
    try:
        await peer.connect(server.http_url)
        await peer.until("session.created")
        assert len(server.state.sessions) == 1
        async with httpx.AsyncClient() as http:
            url = f"{server.http_url}/realtime/calls/{peer.call_id}/hangup"
            assert (await http.post(url)).status_code == 200
            assert (await http.post(url)).status_code == 404
        for _ in range(50):
            if not server.state.sessions:
                break
            await asyncio.sleep(0.05)
        assert not server.state.sessions
    finally:
        await peer.close()


async def test_server_stop_closes_calls() -> None:
    async with LocalServer(port=0, engines=shared_engines()) as srv:
        peer = RawPeer("ga")
        await peer.connect(srv.http_url)
        await peer.until("session.created")
    for _ in range(100):
        if peer.pc.connectionState in ("closed", "failed") or peer.channel.readyState == "closed":
            break
        await asyncio.sleep(0.05)
    assert peer.channel.readyState == "closed" or peer.pc.connectionState in ("closed", "failed")
    await peer.close()


async def test_bad_offers_get_typed_http_errors(server: LocalServer) -> None:
    url = server.http_url + "/realtime/calls"
    async with httpx.AsyncClient() as http:
        r = await http.post(url, content="hello", headers={"Content-Type": "application/sdp"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_sdp"
        garbage = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=audio nonsense\r\n"
        r = await http.post(url, content=garbage, headers={"Content-Type": "application/sdp"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_sdp"
        r = await http.post(url, json={"sdp": "v=0"})
        assert r.status_code == 415
        r = await http.post(url, files={"session": (None, "{}", "application/json")})
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "missing_required_parameter"
    assert not server.state.sessions
    # the server still works after the bad offers
    peer = RawPeer("ga")
    try:
        assert (await peer.connect(server.http_url)).status_code == 201
        await peer.until("session.created")
    finally:
        await peer.close()


async def test_keys_and_ephemeral_session() -> None:
    async with LocalServer(port=0, engines=shared_engines(), api_key="sk-local") as srv:
        peer = RawPeer("ga")
        r = await peer.connect(srv.http_url)
        assert r.status_code == 401
        await peer.close()
        async with httpx.AsyncClient() as http:
            minted = await http.post(
                srv.http_url + "/realtime/client_secrets",
                headers={"Authorization": "Bearer sk-local"},
                json={"session": {"type": "realtime", "instructions": "Be brief."}},
            )
        key = minted.json()["value"]
        peer = RawPeer("ga")
        try:
            r = await peer.connect(srv.http_url, key=key, multipart=False)
            assert r.status_code == 201
            created = await peer.until("session.created")
            assert created["session"]["instructions"] == "Be brief."
        finally:
            await peer.close()


async def test_a_call_without_data_channel_is_ended(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bounded: an offer that never opens ``oai-events`` does not hold a call forever."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    import realtime.server.webrtc as server_webrtc
    from tests.webrtc_kit import PcmTrack

    monkeypatch.setattr(server_webrtc, "SETUP_TIMEOUT_S", 0.5)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(PcmTrack())
    await pc.setLocalDescription(await pc.createOffer())
    try:
        async with httpx.AsyncClient() as http:
            r = await http.post(
                server.http_url + "/realtime/calls",
                content=pc.localDescription.sdp,
                headers={"Content-Type": "application/sdp"},
            )
        assert r.status_code == 201
        assert len(server_webrtc.active_calls(server.state)) == 1
        for _ in range(40):
            if not server_webrtc.active_calls(server.state):
                break
            await asyncio.sleep(0.1)
        assert not server_webrtc.active_calls(server.state)
    finally:
        await pc.close()
