"""Streamed speech against the REST test server: bytes as they arrive, play(), SSE events."""

# ruff: noqa: F811  (pytest fixtures imported from rest_server are redefined as arguments)
from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from rest_server import (  # noqa: F401 (fixtures)
    API_KEY,
    RestTestServer,
    rest_server,
    rest_server_module,
    sine_pcm,
)
from starlette.responses import PlainTextResponse, StreamingResponse

from audio.playback import AudioSink, HeardPosition
from realtime.exceptions import APIError, ConfigError
from realtime.rest import (
    AsyncAudioClient,
    RetryPolicy,
    SpeechAudioDeltaEvent,
    SpeechAudioDoneEvent,
    play,
)
from realtime.rest.wavio import WavStreamParser, wav_bytes


class RecordingSink:
    """An AudioSink that records what is queued and when; 'plays' instantly."""

    def __init__(self) -> None:
        self.chunks: list[tuple[bytes, str, int]] = []
        self.times: list[float] = []
        self.drained_calls = 0

    def enqueue(self, pcm16: bytes, item_id: str, content_index: int = 0) -> None:
        """Record one queued chunk."""
        self.chunks.append((pcm16, item_id, content_index))
        self.times.append(time.monotonic())

    def played_ms(self, item_id: str, content_index: int = 0) -> float:
        """Everything queued counts as heard."""
        return sum(len(c) for c, i, _ in self.chunks if i == item_id) / 48.0

    def interrupt(self) -> HeardPosition | None:
        """Nothing is ever playing."""
        return None

    def clear(self) -> None:
        """Forget the queue."""
        self.chunks.clear()

    @property
    def is_playing(self) -> bool:
        """Never playing."""
        return False

    async def drained(self) -> None:
        """Already drained."""
        self.drained_calls += 1

    @property
    def pcm(self) -> bytes:
        """All queued audio."""
        return b"".join(c for c, _, _ in self.chunks)


@pytest.fixture
async def client(rest_server: RestTestServer) -> AsyncIterator[AsyncAudioClient]:
    """A client of the test server with quick retries."""
    policy = RetryPolicy(initial_delay=0.01, max_delay=0.05)
    async with AsyncAudioClient(API_KEY, rest_server.base_url, retry=policy) as c:
        yield c


def test_recording_sink_is_an_audio_sink() -> None:
    """The test sink satisfies the AudioSink protocol play() expects."""
    assert isinstance(RecordingSink(), AudioSink)


async def test_bytes_arrive_before_the_body_completes(
    client: AsyncAudioClient, rest_server: RestTestServer
) -> None:
    """The first chunk is received before the server has even sent the last one."""
    state = rest_server.state
    state.speech_chunks, state.speech_delay = 8, 0.05
    received_at: list[float] = []
    parts = []
    async with client.speak("Hello there", instructions="calm", speed=1.25) as audio:
        async for chunk in audio:
            received_at.append(time.monotonic())
            parts.append(chunk)
    assert b"".join(parts) == sine_pcm(1.0)
    assert len(state.sent_times) == 8
    assert received_at[0] < state.sent_times[-1]
    assert audio.time_to_first_byte is not None
    assert audio.request_id == "req_speech" and audio.bytes_received == 48000
    body = state.requests[-1].json
    assert body == {
        "model": "gpt-4o-mini-tts",
        "input": "Hello there",
        "voice": "alloy",
        "response_format": "pcm",
        "instructions": "calm",
        "speed": 1.25,
    }


async def test_play_pcm_with_odd_chunk_boundaries(
    client: AsyncAudioClient, rest_server: RestTestServer
) -> None:
    """play() queues PCM whole samples only, even when chunks split a sample, and reports timing."""
    rest_server.state.speech_chunks = 13  # 3693-byte chunks: every boundary splits a sample
    sink = RecordingSink()
    report = await play(client.speak("hi"), sink, item_id="item_1")
    assert sink.pcm == sine_pcm(1.0)
    assert all(len(c) % 2 == 0 and i == "item_1" for c, i, _ in sink.chunks)
    assert report.audio_ms == pytest.approx(1000.0)
    assert report.first_byte_s is not None and report.first_sample_s is not None
    assert report.first_byte_s <= report.first_sample_s
    assert sink.drained_calls == 1


async def test_play_wav_resamples_to_24k(
    client: AsyncAudioClient, rest_server: RestTestServer
) -> None:
    """A 16 kHz WAV body is parsed as it streams and queued as 24 kHz PCM."""
    rest_server.state.speech_wav_rate = 16000
    rest_server.state.speech_chunks = 11
    sink = RecordingSink()
    report = await play(client.speak("hi", response_format="wav"), sink, wait=False)
    assert report.audio_ms == pytest.approx(1000.0, abs=5.0)
    assert sink.drained_calls == 0
    out = np.frombuffer(sink.pcm, dtype="<i2").astype(np.float64)
    mid = out[2400:-2400]
    # a 440 Hz sine of amplitude 8000: check level and frequency survived the resampling
    assert np.sqrt(np.mean(mid**2)) == pytest.approx(8000 / np.sqrt(2), rel=0.02)
    crossings = np.count_nonzero(np.diff(np.signbit(mid)))
    assert crossings / (len(mid) / 24000) == pytest.approx(880, rel=0.02)


async def test_write_to_file(client: AsyncAudioClient, tmp_path: Path) -> None:
    """write_to() stores the whole body and returns its size."""
    target = tmp_path / "out.pcm"
    n = await client.speak("hi").write_to(target)
    assert n == 48000 and target.read_bytes() == sine_pcm(1.0)


async def test_sse_events_and_bytes(client: AsyncAudioClient, rest_server: RestTestServer) -> None:
    """stream_format='sse' gives typed delta/done events; iterating bytes decodes the deltas."""
    rest_server.state.speech_chunks = 4
    stream = client.speak("hi", stream_format="sse")
    events = [e async for e in stream.events()]
    assert [type(e) for e in events] == [SpeechAudioDeltaEvent] * 4 + [SpeechAudioDoneEvent]
    assert b"".join(e.audio_bytes() for e in events if isinstance(e, SpeechAudioDeltaEvent)) == (
        sine_pcm(1.0)
    )
    assert stream.usage is not None and stream.usage.total_tokens == 55
    assert rest_server.state.requests[-1].json["stream_format"] == "sse"
    audio = await client.speak("hi", stream_format="sse").read()
    assert audio == sine_pcm(1.0)
    sink = RecordingSink()
    report = await play(client.speak("hi", stream_format="sse"), sink)
    assert sink.pcm == sine_pcm(1.0) and report.audio_ms == pytest.approx(1000.0)


async def test_speech_argument_errors(client: AsyncAudioClient) -> None:
    """Bad speech arguments raise ConfigError before anything is sent."""
    with pytest.raises(ConfigError, match="speed"):
        client.speak("hi", speed=5)
    with pytest.raises(ConfigError, match="response_format"):
        client.speak("hi", response_format="ogg")
    with pytest.raises(ConfigError, match="stream_format"):
        client.speak("hi", stream_format="chunks")
    with pytest.raises(ConfigError, match="4096"):
        client.speak("x" * 5000)
    with pytest.raises(ConfigError, match="sse"):
        client.speak("hi").events()
    with pytest.raises(ConfigError, match="mp3"):
        await play(client.speak("hi", response_format="mp3"), RecordingSink())


async def test_speech_error_status_and_drop(
    client: AsyncAudioClient, rest_server: RestTestServer
) -> None:
    """An error status raises at open; a connection dropped mid-audio raises APIError."""
    rest_server.state.push("/audio/speech", PlainTextResponse("bad voice", 400))
    with pytest.raises(APIError, match="bad voice"):
        async with client.speak("hi"):
            pass

    async def dying() -> AsyncIterator[bytes]:
        yield b"\x00" * 1000
        raise RuntimeError("server dies mid-audio (expected in this test)")

    rest_server.state.push("/audio/speech", StreamingResponse(dying()))
    got = 0
    with pytest.raises(APIError, match="connection lost"):
        async for chunk in client.speak("hi"):
            got += len(chunk)
    assert got == 1000


def test_wav_parser_incremental_and_formats() -> None:
    """The WAV parser handles byte-by-byte feeding, extra chunks, stereo and float data."""
    samples = (np.sin(np.arange(480) / 5) * 0.5).astype(np.float32)
    stereo = np.stack([samples, samples], axis=1)
    data = wav_bytes(stereo, 48000)
    # insert a LIST chunk between fmt and data, as some writers do
    data = data[:36] + b"LIST" + (3).to_bytes(4, "little") + b"abc\x00" + data[36:]
    data = data[:4] + (0xFFFFFFFF).to_bytes(4, "little") + data[8:]
    parser = WavStreamParser()
    out = b"".join(parser.feed(data[i : i + 1]) for i in range(len(data)))
    assert parser.rate == 48000 and parser.channels == 2 and parser.header_done
    expected = wav_bytes(samples, 48000)[44:]
    assert out == expected
    header = bytearray(wav_bytes(np.zeros(4, dtype=np.float32), 8000)[:44])
    header[20:22] = (3).to_bytes(2, "little")  # IEEE float
    header[34:36] = (32).to_bytes(2, "little")
    header[32:34] = (4).to_bytes(2, "little")
    header[40:44] = (8).to_bytes(4, "little")
    floats = np.array([0.5, -0.5], dtype="<f4").tobytes()
    parser = WavStreamParser()
    assert np.frombuffer(parser.feed(bytes(header) + floats), "<i2").tolist() == [16384, -16384]


def test_wav_parser_rejects_non_wav() -> None:
    """A body that is not RIFF/WAVE raises AudioFormatError."""
    from audio.exceptions import AudioFormatError

    with pytest.raises(AudioFormatError):
        WavStreamParser().feed(b"ID3\x04" + bytes(20))


async def test_speech_sse_malformed_and_error_events(
    client: AsyncAudioClient, rest_server: RestTestServer
) -> None:
    """A delta without audio, or an error event, in a speech SSE stream raises APIError."""
    bad = b'data: {"type":"speech.audio.delta"}\n\n'
    rest_server.state.push(
        "/audio/speech", StreamingResponse(iter([bad]), media_type="text/event-stream")
    )
    with pytest.raises(APIError, match="audio"):
        async for _ in client.speak("hi", stream_format="sse").events():
            pass
    err = b'data: {"type":"error","error":{"message":"voice not found","code":"bad_voice"}}\n\n'
    rest_server.state.push(
        "/audio/speech", StreamingResponse(iter([err]), media_type="text/event-stream")
    )
    with pytest.raises(APIError, match="voice not found") as info:
        await client.speak("hi", stream_format="sse").read()
    assert info.value.code == "bad_voice"


async def test_sse_requested_but_plain_audio_sent(
    client: AsyncAudioClient, rest_server: RestTestServer
) -> None:
    """When the server answers stream_format='sse' with plain audio, events wrap its chunks."""
    rest_server.state.push(
        "/audio/speech",
        StreamingResponse(iter([b"\x01\x02", b"\x03\x04"]), media_type="audio/pcm"),
    )
    events = [e async for e in client.speak("hi", model="tts-1", stream_format="sse").events()]
    assert [type(e) for e in events] == [SpeechAudioDeltaEvent] * 2 + [SpeechAudioDoneEvent]
    assert b"".join(e.audio_bytes() for e in events if isinstance(e, SpeechAudioDeltaEvent)) == (
        b"\x01\x02\x03\x04"
    )
    rest_server.state.push(
        "/audio/speech", StreamingResponse(iter([b"\x05\x06"]), media_type="audio/pcm")
    )
    assert await client.speak("hi", stream_format="sse").read() == b"\x05\x06"
