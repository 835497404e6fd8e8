"""Transcription and translation against the REST test server on 127.0.0.1."""

# ruff: noqa: F811  (pytest fixtures imported from rest_server are redefined as arguments)
from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from rest_server import (  # noqa: F401 (fixtures)
    API_KEY,
    TRANSCRIPT,
    RestTestServer,
    rest_server,
    rest_server_module,
)
from starlette.responses import PlainTextResponse, StreamingResponse

from realtime.exceptions import APIError, ConfigError
from realtime.rest import (
    AsyncAudioClient,
    RetryPolicy,
    Transcription,
    TranscriptionDiarized,
    TranscriptionVerbose,
    TranscriptStream,
    TranscriptTextDeltaEvent,
    TranscriptTextDoneEvent,
    TranscriptTextSegmentEvent,
    Translation,
    TranslationVerbose,
    UsageDuration,
    UsageTokens,
)
from realtime.rest.wavio import wav_bytes

WAV = wav_bytes(np.zeros(2400, dtype=np.int16), 24000)


@pytest.fixture
async def client(rest_server: RestTestServer) -> AsyncIterator[AsyncAudioClient]:
    """A client of the test server with quick retries."""
    policy = RetryPolicy(initial_delay=0.01, max_delay=0.05)
    async with AsyncAudioClient(API_KEY, rest_server.base_url, retry=policy) as c:
        yield c


def sha(data: bytes) -> str:
    """Hex SHA-256 of data."""
    return hashlib.sha256(data).hexdigest()


# --- every response format --------------------------------------------------------------


async def test_json(client: AsyncAudioClient, rest_server: RestTestServer) -> None:
    """json -> Transcription with token usage; the multipart fields arrive as sent."""
    result = await client.transcribe(
        WAV, language="fr", prompt="Bonjour", temperature=0.2, include=["logprobs"]
    )
    assert isinstance(result, Transcription)
    assert result.text == TRANSCRIPT
    assert isinstance(result.usage, UsageTokens) and result.usage.total_tokens == 17
    assert result.logprobs is not None and result.logprobs[0].token == "H"
    req = rest_server.state.requests[-1]
    assert req.fields == {
        "model": ["gpt-4o-mini-transcribe"],
        "response_format": ["json"],
        "language": ["fr"],
        "prompt": ["Bonjour"],
        "temperature": ["0.2"],
        "include[]": ["logprobs"],
    }
    assert req.file is not None
    assert (req.file.filename, req.file.content_type) == ("audio.wav", "audio/wav")
    assert req.file.sha256 == sha(WAV)
    assert req.headers["authorization"] == f"Bearer {API_KEY}"
    assert int(req.headers["content-length"]) > len(WAV)  # announced up front, not chunked
    assert "transfer-encoding" not in req.headers


@pytest.mark.parametrize("fmt", ["text", "srt", "vtt"])
async def test_text_formats(
    client: AsyncAudioClient, rest_server: RestTestServer, fmt: str
) -> None:
    """text, srt and vtt return the body as str, UTF-8 intact."""
    result = await client.transcribe(WAV, response_format=fmt)  # type: ignore[call-overload]
    assert isinstance(result, str) and TRANSCRIPT in result
    if fmt == "vtt":
        assert result.startswith("WEBVTT")
    if fmt == "srt":
        assert "00:00:00,000 --> 00:00:01,500" in result
    assert rest_server.state.requests[-1].fields["response_format"] == [fmt]


async def test_verbose_json_with_words(
    client: AsyncAudioClient, rest_server: RestTestServer
) -> None:
    """verbose_json -> TranscriptionVerbose with segments, words and duration usage."""
    result = await client.transcribe(
        WAV, response_format="verbose_json", timestamp_granularities=["word", "segment"]
    )
    assert isinstance(result, TranscriptionVerbose)
    assert result.language == "english" and result.duration == 1.5
    assert result.segments is not None and result.segments[0].avg_logprob == -0.2
    assert result.words is not None and result.words[0].word == "Héllo"
    assert isinstance(result.usage, UsageDuration)
    fields = rest_server.state.requests[-1].fields
    assert fields["timestamp_granularities[]"] == ["word", "segment"]


async def test_diarized_json_with_speakers(
    client: AsyncAudioClient, rest_server: RestTestServer
) -> None:
    """diarized_json -> TranscriptionDiarized; chunking strategy and speaker hints are sent."""
    result = await client.transcribe(
        WAV,
        model="gpt-4o-transcribe-diarize",
        response_format="diarized_json",
        chunking_strategy={"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 300},
        known_speaker_names=["agent"],
        known_speaker_references=["data:audio/wav;base64,AAA="],
    )
    assert isinstance(result, TranscriptionDiarized)
    assert result.segments[0].speaker == "A"
    fields = rest_server.state.requests[-1].fields
    assert fields["chunking_strategy[type]"] == ["server_vad"]
    assert fields["chunking_strategy[threshold]"] == ["0.5"]
    assert fields["chunking_strategy[silence_duration_ms]"] == ["300"]
    assert fields["known_speaker_names[]"] == ["agent"]
    await client.transcribe(WAV, chunking_strategy="auto")
    assert rest_server.state.requests[-1].fields["chunking_strategy"] == ["auto"]


@pytest.mark.parametrize(
    ("fmt", "kind"),
    [
        ("json", Translation),
        ("verbose_json", TranslationVerbose),
        ("text", str),
        ("srt", str),
        ("vtt", str),
    ],
)
async def test_translation_formats(
    client: AsyncAudioClient, rest_server: RestTestServer, fmt: str, kind: type
) -> None:
    """Every translation format returns its type and hits /audio/translations with whisper-1."""
    result = await client.translate(WAV, response_format=fmt, prompt="p")
    assert isinstance(result, kind)
    text = result if isinstance(result, str) else result.text
    assert "Hello world, done." in text
    req = rest_server.state.requests[-1]
    assert req.path == "/v1/audio/translations"
    assert req.fields["model"] == ["whisper-1"] and req.fields["prompt"] == ["p"]


async def test_bad_arguments_fail_before_sending(
    client: AsyncAudioClient, rest_server: RestTestServer, tmp_path: Path
) -> None:
    """Unknown formats, misplaced options and missing files raise ConfigError, nothing is sent."""
    with pytest.raises(ConfigError, match="response_format"):
        await client.transcribe(WAV, response_format="mp3")  # type: ignore[call-overload]
    with pytest.raises(ConfigError, match="verbose_json"):
        await client.transcribe(WAV, timestamp_granularities=["word"])
    with pytest.raises(ConfigError, match="response_format"):
        await client.translate(WAV, response_format="diarized_json")
    with pytest.raises(ConfigError, match="cannot read"):
        await client.transcribe(tmp_path / "missing.wav")
    with pytest.raises(ConfigError, match="expected"):
        await client.transcribe(12345)  # type: ignore[call-overload]
    assert rest_server.state.requests == []


async def test_invalid_json_body_is_an_api_error(
    client: AsyncAudioClient, rest_server: RestTestServer
) -> None:
    """A 200 whose body is not the expected JSON raises APIError, not a pydantic error."""
    rest_server.state.push("/audio/transcriptions", PlainTextResponse("oops"))
    with pytest.raises(APIError, match="invalid JSON"):
        await client.transcribe(WAV)
    rest_server.state.push("/audio/transcriptions", PlainTextResponse('{"txt": 1}'))
    with pytest.raises(APIError, match="text"):
        await client.transcribe(WAV)


# --- inputs -----------------------------------------------------------------------------


async def test_path_and_file_object_inputs(
    client: AsyncAudioClient, rest_server: RestTestServer, tmp_path: Path
) -> None:
    """A path keeps its name; a file object is read from its current position."""
    path = tmp_path / "talk.flac"
    path.write_bytes(b"fLaC" + bytes(5000))
    await client.transcribe(path)
    f = rest_server.state.requests[-1].file
    assert f is not None and (f.filename, f.content_type, f.size) == (
        "talk.flac",
        "audio/flac",
        5004,
    )
    with path.open("rb") as fh:
        fh.seek(4)
        await client.transcribe(fh, filename="x.mp3")
    f = rest_server.state.requests[-1].file
    assert f is not None and (f.filename, f.content_type, f.sha256) == (
        "x.mp3",
        "audio/mpeg",
        sha(bytes(5000)),
    )
    await client.transcribe(io.BytesIO(b"OggS" + bytes(10)))
    f = rest_server.state.requests[-1].file
    assert f is not None and (f.filename, f.content_type) == ("audio.ogg", "audio/ogg")


async def test_ndarray_is_sent_as_wav(
    client: AsyncAudioClient, rest_server: RestTestServer
) -> None:
    """A float array becomes a 16-bit WAV at the given rate (header and samples)."""
    samples = np.linspace(-1, 1, 1600, dtype=np.float32)
    await client.transcribe(samples, sample_rate=16000)
    f = rest_server.state.requests[-1].file
    expected = wav_bytes(samples, 16000)
    assert f is not None and f.filename == "audio.wav" and f.size == 44 + 3200
    assert f.sha256 == sha(expected)
    assert expected[24:28] == (16000).to_bytes(4, "little")
    pcm = np.frombuffer(expected[44:], dtype="<i2")
    assert pcm[0] == -32767 and pcm[-1] == 32767


# --- streaming --------------------------------------------------------------------------


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
async def test_stream_events_across_chopped_chunks(
    client: AsyncAudioClient, rest_server: RestTestServer, line_end: str
) -> None:
    """Deltas sent in 1-13 byte pieces (mid-line, mid-UTF-8) arrive intact, then done."""
    rest_server.state.sse_line_end = line_end
    stream = await client.transcribe(WAV, stream=True, include=["logprobs"])
    assert isinstance(stream, TranscriptStream)
    events = []
    async with stream:
        async for event in stream:
            events.append(event)
    deltas = [e for e in events if isinstance(e, TranscriptTextDeltaEvent)]
    assert "".join(d.delta for d in deltas) == TRANSCRIPT
    assert deltas[0].logprobs is not None and deltas[0].logprobs[0].logprob == -0.1
    done = events[-1]
    assert isinstance(done, TranscriptTextDoneEvent) and done.text == TRANSCRIPT
    assert done.usage is not None and done.usage.input_token_details is not None
    assert done.usage.input_token_details.audio_tokens == 10
    assert stream.text == TRANSCRIPT and stream.done is done
    fields = rest_server.state.requests[-1].fields
    assert fields["stream"] == ["true"]
    assert rest_server.state.requests[-1].headers["accept"] == "text/event-stream"


async def test_stream_segments_and_final(client: AsyncAudioClient) -> None:
    """A diarizing model's stream carries transcript.text.segment; final() returns done."""
    stream = client.transcribe_stream(WAV, model="gpt-4o-transcribe-diarize")
    seen = []
    async for event in stream:
        seen.append(event)
        if isinstance(event, TranscriptTextSegmentEvent):
            assert event.speaker == "A" and event.end == 1.5
    assert any(isinstance(e, TranscriptTextSegmentEvent) for e in seen)
    assert (await client.transcribe_stream(WAV).final()).text == TRANSCRIPT


def _canned_sse(body: bytes, *, fail: bool = False) -> StreamingResponse:
    async def gen() -> AsyncIterator[bytes]:
        yield body
        if fail:
            raise RuntimeError("server dies mid-stream (expected in this test)")

    return StreamingResponse(gen(), media_type="text/event-stream")


async def test_stream_cut_off_mid_event(
    client: AsyncAudioClient, rest_server: RestTestServer
) -> None:
    """A body that ends inside an event raises APIError naming the cut, after the good events."""
    rest_server.state.push(
        "/audio/transcriptions",
        _canned_sse(
            b'data: {"type":"transcript.text.delta","delta":"Hel"}\n\n'
            b'data: {"type":"transcript.text.delta","del'
        ),
    )
    got = []
    with pytest.raises(APIError, match="cut off in the middle of an event"):
        async for event in client.transcribe_stream(WAV):
            got.append(event)
    assert [e.delta for e in got if isinstance(e, TranscriptTextDeltaEvent)] == ["Hel"]


async def test_stream_connection_dropped(
    client: AsyncAudioClient, rest_server: RestTestServer
) -> None:
    """A connection dropped mid-body raises APIError saying the connection was lost."""
    rest_server.state.push(
        "/audio/transcriptions",
        _canned_sse(
            b'data: {"type":"transcript.text.delta","delta":"Hel"}\n\ndata: {"ty', fail=True
        ),
    )
    with pytest.raises(APIError, match="connection lost"):
        async for _ in client.transcribe_stream(WAV):
            pass


async def test_stream_without_done_and_error_events(
    client: AsyncAudioClient, rest_server: RestTestServer
) -> None:
    """A stream that ends cleanly before done, or sends an error event, raises APIError."""
    rest_server.state.push(
        "/audio/transcriptions",
        _canned_sse(b'data: {"type":"transcript.text.delta","delta":"x"}\n\ndata: [DONE]\n\n'),
    )
    with pytest.raises(APIError, match=r"before transcript\.text\.done"):
        async for _ in client.transcribe_stream(WAV):
            pass
    rest_server.state.push(
        "/audio/transcriptions",
        _canned_sse(
            b'event: error\ndata: {"type":"error","error":{"message":"audio too long",'
            b'"type":"invalid_request_error","code":"audio_too_long"}}\n\n'
        ),
    )
    with pytest.raises(APIError, match="audio too long") as info:
        async for _ in client.transcribe_stream(WAV):
            pass
    assert info.value.code == "audio_too_long"


async def test_stream_open_error_raised_at_await(
    client: AsyncAudioClient, rest_server: RestTestServer
) -> None:
    """An error status of a streamed request surfaces when the stream is opened."""
    rest_server.state.push("/audio/transcriptions", PlainTextResponse("nope", 400))
    with pytest.raises(APIError) as info:
        await client.transcribe(WAV, stream=True)
    assert info.value.status == 400 and info.value.message == "nope"


async def test_stream_ignored_by_server_gives_one_done_event(
    client: AsyncAudioClient, rest_server: RestTestServer
) -> None:
    """A server that ignores stream=true (JSON or text body) still yields transcript.text.done."""
    rest_server.state.push(
        "/audio/transcriptions",
        PlainTextResponse(
            '{"text": "whole", "usage": {"type": "tokens", "input_tokens": 1, '
            '"output_tokens": 2, "total_tokens": 3}}',
            media_type="application/json",
        ),
    )
    events = [e async for e in client.transcribe_stream(WAV, model="whisper-1")]
    assert len(events) == 1 and isinstance(events[0], TranscriptTextDoneEvent)
    assert events[0].text == "whole" and events[0].usage is not None
    rest_server.state.push("/audio/transcriptions", PlainTextResponse("plain text\n"))
    done = await client.transcribe_stream(WAV, model="whisper-1").final()
    assert done.text == "plain text"
