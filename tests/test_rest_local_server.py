"""realtime.rest against the real local server (realtime.server.LocalServer): offline engines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from audio.files import NullSpeaker
from realtime.exceptions import APIError
from realtime.rest import (
    AsyncAudioClient,
    SpeechAudioDoneEvent,
    Transcription,
    TranscriptTextDeltaEvent,
    TranscriptTextDoneEvent,
    play,
)
from realtime.server import LocalServer
from tests.server_kit import shared_engines

SAMPLE = Path(__file__).resolve().parents[1] / "share" / "samples" / "question.wav"
KEY = "sk-local-test-key-0123456789"

pytestmark = pytest.mark.slow


@pytest.fixture
async def local() -> AsyncIterator[LocalServer]:
    """A local server requiring KEY, with the engines shared across the test session."""
    async with LocalServer(port=0, api_key=KEY, engines=shared_engines()) as srv:
        yield srv


async def test_transcribe_json_and_stream(local: LocalServer) -> None:
    """A real recording is transcribed, both whole and as a stream of deltas."""
    async with AsyncAudioClient(KEY, local.http_url) as client:
        result = await client.transcribe(SAMPLE)
        assert isinstance(result, Transcription) and "paris" in result.text.lower()
        stream = await client.transcribe(SAMPLE, stream=True)
        events = [event async for event in stream]
    assert any(isinstance(e, TranscriptTextDeltaEvent) for e in events)
    done = events[-1]
    assert isinstance(done, TranscriptTextDoneEvent) and done.text == result.text


async def test_speech_pcm_wav_sse_into_a_speaker(local: LocalServer) -> None:
    """Synthesized speech plays into a NullSpeaker as PCM, WAV and SSE alike."""
    async with AsyncAudioClient(KEY, local.http_url) as client:
        reports = []
        for fmt, sse in (("pcm", None), ("wav", None), ("pcm", "sse")):
            speaker = NullSpeaker(clock="instant")
            stream = client.speak(
                "Hello from the local server.", response_format=fmt, stream_format=sse
            )
            reports.append(await play(stream, speaker, wait=False))
            speaker.close()
        events = [e async for e in client.speak("Hi.", stream_format="sse").events()]
    for report in reports:
        assert report.audio_ms > 500 and report.first_sample_s is not None
    assert isinstance(events[-1], SpeechAudioDoneEvent)


async def test_ephemeral_key_works_on_the_local_server(local: LocalServer) -> None:
    """A client secret minted by the local server is for realtime sessions only: the REST
    audio routes refuse it, like the service (issue 11); a wrong key fails."""
    async with AsyncAudioClient(KEY, local.http_url) as client:
        key = await client.create_client_secret({"model": "gpt-realtime"})
        text = await client.transcribe(SAMPLE, response_format="text")
    assert not key.expired
    assert "paris" in text.lower()
    async with AsyncAudioClient(key.value, local.http_url, max_retries=0) as ephemeral:
        with pytest.raises(APIError) as refused:
            await ephemeral.transcribe(SAMPLE, response_format="text")
    assert refused.value.status == 401
    async with AsyncAudioClient("sk-wrong", local.http_url, max_retries=0) as wrong:
        with pytest.raises(APIError) as info:
            await wrong.create_client_secret()
    assert info.value.status == 401
