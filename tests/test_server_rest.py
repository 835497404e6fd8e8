"""The local server's REST audio endpoints over real HTTP."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from realtime.server import LocalServer
from tests.server_kit import shared_engines

SAMPLES = Path(__file__).resolve().parents[1] / "share" / "samples"


@pytest.fixture
async def server():
    """A local server on a free port with the shared engines."""
    async with LocalServer(port=0, engines=shared_engines()) as srv:
        yield srv


async def post_file(srv: LocalServer, path: str, fmt: str, **fields: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as http:
        with (SAMPLES / "question.wav").open("rb") as f:
            return await http.post(
                f"{srv.http_url}{path}",
                files={"file": ("question.wav", f, "audio/wav")},
                data={"model": "whisper-1", "response_format": fmt, **fields},
            )


@pytest.mark.parametrize("fmt", ["json", "text", "srt", "vtt", "verbose_json"])
async def test_transcription_formats(server, fmt):
    """Every response format the local server lists comes back in its shape."""
    r = await post_file(server, "/audio/transcriptions", fmt)
    assert r.status_code == 200, r.text
    if fmt == "json":
        assert "paris" in r.json()["text"].lower()
        assert r.json()["usage"]["seconds"] > 2
    elif fmt == "text":
        assert "paris" in r.text.lower()
    elif fmt == "srt":
        assert r.text.startswith("1\n00:00:0")
        assert " --> " in r.text
    elif fmt == "vtt":
        assert r.text.startswith("WEBVTT")
    else:
        body = r.json()
        assert body["task"] == "transcribe"
        assert body["segments"] and body["segments"][0]["end"] > body["segments"][0]["start"]


async def test_transcription_stream(server):
    """stream=true gives transcript.text.delta events then transcript.text.done."""
    r = await post_file(server, "/audio/transcriptions", "json", stream="true")
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data:")]
    assert events[-1]["type"] == "transcript.text.done"
    deltas = "".join(e["delta"] for e in events if e["type"] == "transcript.text.delta")
    assert deltas.strip() == events[-1]["text"].strip()


async def test_translation(server):
    """Translations answer like transcriptions (English model)."""
    r = await post_file(server, "/audio/translations", "json")
    assert r.status_code == 200
    assert "paris" in r.json()["text"].lower()


async def test_bad_upload(server):
    """A non-WAV upload gets a clear 400 naming the problem."""
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{server.http_url}/audio/transcriptions",
            files={"file": ("notes.txt", b"hello world", "text/plain")},
            data={"model": "whisper-1"},
        )
    assert r.status_code == 400
    assert "notes.txt" in r.json()["error"]["message"]


@pytest.mark.parametrize("fmt", ["pcm", "wav"])
async def test_speech_streams(server, fmt):
    """Speech arrives as a streamed body: raw PCM16 24 kHz or a streamed WAV."""
    async with (
        httpx.AsyncClient(timeout=60) as http,
        http.stream(
            "POST",
            f"{server.http_url}/audio/speech",
            json={
                "model": "tts-1",
                "input": "Hello there. This is a test.",
                "voice": "alloy",
                "response_format": fmt,
            },
        ) as r,
    ):
        assert r.status_code == 200
        chunks = [c async for c in r.aiter_bytes()]
    body = b"".join(chunks)
    if fmt == "wav":
        assert body[:4] == b"RIFF" and body[8:12] == b"WAVE"
        body = body[44:]
    samples = np.frombuffer(body[: len(body) // 2 * 2], np.int16)
    assert len(samples) > 24000
    assert np.abs(samples).max() > 1000


async def test_speech_sse_and_errors(server):
    """stream_format=sse gives speech.audio.delta/done; compressed formats get a clear 400."""
    async with httpx.AsyncClient(timeout=60) as http:
        r = await http.post(
            f"{server.http_url}/audio/speech",
            json={
                "model": "tts-1",
                "input": "Short test.",
                "voice": "alloy",
                "response_format": "pcm",
                "stream_format": "sse",
            },
        )
        events = [json.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data:")]
        assert events[-1]["type"] == "speech.audio.done"
        audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
        assert len(audio) > 4800
        r = await http.post(
            f"{server.http_url}/audio/speech",
            json={"model": "tts-1", "input": "x", "voice": "alloy", "response_format": "mp3"},
        )
        assert r.status_code == 400
        assert "pcm" in r.json()["error"]["message"]
        r = await http.post(f"{server.http_url}/audio/speech", json={"model": "tts-1"})
        assert r.status_code == 400
        assert r.json()["error"]["param"] == "input"
