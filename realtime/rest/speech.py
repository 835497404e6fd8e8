"""Streamed speech: ``POST /audio/speech``.

:class:`SpeechStream` yields audio bytes as the body arrives, so playback can start
after the first chunk instead of after the whole file. :func:`play` feeds an
:class:`~audio.playback.AudioSink` while the audio arrives (PCM as it is, WAV parsed
incrementally and resampled to 24 kHz with :class:`audio.resample.StreamResampler`)
and reports time to first byte and to first queued sample. With ``stream_format="sse"``
the body is a stream of typed ``speech.audio.delta`` / ``speech.audio.done`` events
(:meth:`SpeechStream.events`); iterating bytes then yields the decoded audio of the deltas.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import httpx
import numpy as np

from audio.playback import AudioSink
from audio.resample import StreamResampler
from realtime.exceptions import APIError, ConfigError
from realtime.rest.models import (
    SpeechAudioDeltaEvent,
    SpeechAudioDoneEvent,
    SpeechEvent,
    SpeechUsage,
    parse_speech_event,
)
from realtime.rest.streams import is_event_stream, iter_body, iter_sse_data
from realtime.rest.wavio import WavStreamParser

__all__ = [
    "SPEECH_FORMATS",
    "PlaybackReport",
    "SpeechFormat",
    "SpeechStream",
    "StreamFormat",
    "MAX_SPEECH_CHARS",
    "play",
    "speech_request",
    "split_speech",
]

SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]
StreamFormat = Literal["audio", "sse"]
SPEECH_FORMATS = frozenset({"mp3", "opus", "aac", "flac", "wav", "pcm"})
PLAYBACK_RATE = 24000
MAX_SPEECH_CHARS = 4096
"""The most characters one speech request may carry (the API's limit)."""

_SENTENCE_END = re.compile(
    "(?<=[.!?\u2026\u3002\uff01\uff1f])\\s+"  # . ! ? … and the CJK full stops
    "|(?<=[.!?\u2026][\"')\\]\u201d\u2019])\\s+"  # ... followed by a closing quote
    "|\\n\\s*\\n"  # a blank line
)


def split_speech(text: str, limit: int = MAX_SPEECH_CHARS) -> list[str]:
    """``text`` cut into pieces of at most ``limit`` characters, at sentence ends if possible.

    Sentences are packed greedily; a sentence longer than ``limit`` is cut at its last space
    before the limit (a single longer word is cut at the limit). Whitespace between pieces
    is dropped; every piece is non-empty.
    """
    if limit < 1:
        raise ConfigError("limit must be at least 1")
    sentences = [p.strip() for p in _SENTENCE_END.split(text.strip()) if p and p.strip()]
    pieces: list[str] = []
    current = ""
    for sentence in sentences:
        while len(sentence) > limit:
            cut = sentence.rfind(" ", 0, limit + 1)
            cut = cut if cut > 0 else limit
            head, sentence = sentence[:cut].strip(), sentence[cut:].strip()
            if current:
                pieces.append(current)
                current = ""
            pieces.append(head)
        if not sentence:
            continue
        if not current:
            current = sentence
        elif len(current) + 1 + len(sentence) <= limit:
            current += " " + sentence
        else:
            pieces.append(current)
            current = sentence
    if current:
        pieces.append(current)
    return pieces


def speech_request(
    text: str,
    *,
    model: str,
    voice: str | dict[str, str],
    instructions: str | None = None,
    response_format: str = "pcm",
    speed: float | None = None,
    stream_format: str | None = None,
) -> dict[str, Any]:
    """The JSON body of a speech request; ConfigError for values the spec does not allow."""
    if response_format not in SPEECH_FORMATS:
        raise ConfigError(
            f"unknown response_format {response_format!r}; one of {sorted(SPEECH_FORMATS)}"
        )
    if stream_format not in (None, "audio", "sse"):
        raise ConfigError(f"stream_format must be 'audio' or 'sse', got {stream_format!r}")
    if speed is not None and not 0.25 <= speed <= 4.0:
        raise ConfigError(f"speed must be within 0.25..4.0, got {speed}")
    if len(text) > MAX_SPEECH_CHARS:
        raise ConfigError(
            f"speech input is limited to {MAX_SPEECH_CHARS} characters, got {len(text)} "
            "(split_speech() cuts a text at sentence ends)"
        )
    body: dict[str, Any] = {
        "model": model,
        "input": text,
        "voice": voice,
        "response_format": response_format,
    }
    if instructions is not None:
        body["instructions"] = instructions
    if speed is not None:
        body["speed"] = speed
    if stream_format is not None:
        body["stream_format"] = stream_format
    return body


class SpeechStream:
    """The audio of one speech request, available as it arrives.

    ``async with client.speak(text) as audio: async for chunk in audio: ...``. The
    request is sent on :meth:`open` (``async with`` or the first iteration call it).
    :attr:`time_to_first_byte` is measured from :meth:`open`. For ``stream_format="sse"``
    use :meth:`events` for the typed events; :attr:`usage` is set by ``speech.audio.done``
    (a server that answers with plain audio anyway yields deltas of its chunks).
    Raises APIError for an error status, a dropped connection or a malformed event.
    """

    def __init__(
        self,
        send: Callable[[], Awaitable[httpx.Response]],
        *,
        response_format: str = "pcm",
        stream_format: str | None = None,
    ) -> None:
        self._send = send
        self.response_format = response_format
        self.sse = stream_format == "sse"
        self._response: httpx.Response | None = None
        self._chunks: AsyncGenerator[bytes, None] | None = None
        self._events: AsyncGenerator[SpeechEvent, None] | None = None
        self.opened_at: float | None = None
        self.first_byte_at: float | None = None
        self.usage: SpeechUsage | None = None
        self.bytes_received = 0

    @property
    def time_to_first_byte(self) -> float | None:
        """Seconds from :meth:`open` to the first audio byte (None before it arrives)."""
        if self.opened_at is None or self.first_byte_at is None:
            return None
        return self.first_byte_at - self.opened_at

    @property
    def request_id(self) -> str | None:
        """The ``x-request-id`` of the response, once open."""
        return None if self._response is None else self._response.headers.get("x-request-id")

    async def open(self) -> SpeechStream:
        """Send the request (with retries) unless already sent; return self."""
        if self._response is None:
            self.opened_at = time.monotonic()
            self._response = await self._send()
        return self

    async def aclose(self) -> None:
        """Stop reading and release the connection."""
        if self._chunks is not None:
            await self._chunks.aclose()
        if self._events is not None:
            await self._events.aclose()
        if self._response is not None:
            await self._response.aclose()

    async def __aenter__(self) -> SpeechStream:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._chunks is None:
            self._chunks = self._audio()
        return self._chunks

    def events(self) -> AsyncIterator[SpeechEvent]:
        """The typed SSE events (``stream_format="sse"`` only; ConfigError otherwise)."""
        if not self.sse:
            raise ConfigError("events() needs stream_format='sse'")
        if self._events is None:
            self._events = self._sse_events()
        return self._events

    async def _sse_events(self) -> AsyncGenerator[SpeechEvent, None]:
        await self.open()
        assert self._response is not None
        if not is_event_stream(self._response):
            # the server sent plain audio although events were asked for (tts-1 does)
            async for chunk in self._raw_audio():
                yield SpeechAudioDeltaEvent(audio=base64.b64encode(chunk).decode("ascii"))
            yield SpeechAudioDoneEvent()
            return
        data_stream = iter_sse_data(self._response, "speech stream")
        try:
            async for data in data_stream:
                event = parse_speech_event(data)
                if isinstance(event, SpeechAudioDeltaEvent):
                    if self.first_byte_at is None:
                        self.first_byte_at = time.monotonic()
                    self.bytes_received += len(event.audio_bytes())
                elif isinstance(event, SpeechAudioDoneEvent):
                    self.usage = event.usage
                yield event
                if isinstance(event, SpeechAudioDoneEvent):
                    return
        finally:
            await data_stream.aclose()
        raise APIError(
            "the speech stream ended before speech.audio.done",
            status=200,
            request_id=self.request_id,
        )

    async def _audio(self) -> AsyncGenerator[bytes, None]:
        await self.open()
        assert self._response is not None
        if self.sse and is_event_stream(self._response):
            async for event in self.events():
                if isinstance(event, SpeechAudioDeltaEvent):
                    yield event.audio_bytes()
            return
        async for chunk in self._raw_audio():
            yield chunk

    async def _raw_audio(self) -> AsyncGenerator[bytes, None]:
        assert self._response is not None
        async for chunk in iter_body(self._response, "speech audio"):
            if self.first_byte_at is None:
                self.first_byte_at = time.monotonic()
            self.bytes_received += len(chunk)
            yield chunk

    async def read(self) -> bytes:
        """All remaining audio as one bytes object (waits for the whole body)."""
        parts = [chunk async for chunk in self]
        return b"".join(parts)

    async def write_to(self, path: str | os.PathLike[str]) -> int:
        """Write the audio to ``path`` as it arrives; return the number of bytes written."""
        total = 0
        with Path(path).open("wb") as f:
            async for chunk in self:
                await asyncio.to_thread(f.write, chunk)
                total += len(chunk)
        return total


@dataclass(frozen=True)
class PlaybackReport:
    """What :func:`play` measured: seconds from the request to the first audio byte and to
    the first sample queued on the sink, and how much audio was queued."""

    first_byte_s: float | None
    first_sample_s: float | None
    audio_ms: float
    bytes_received: int


class _ToPcm24k:
    """Turns arriving audio bytes (``pcm`` or ``wav``) into PCM16 mono 24 kHz."""

    def __init__(self, response_format: str) -> None:
        if response_format not in ("pcm", "wav"):
            raise ConfigError(f"play() decodes 'pcm' and 'wav' audio, not {response_format!r}")
        self._wav = WavStreamParser() if response_format == "wav" else None
        self._odd = b""
        self._resampler: StreamResampler | None = None

    def feed(self, chunk: bytes) -> bytes:
        if self._wav is None:
            data = self._odd + chunk
            cut = len(data) - len(data) % 2
            self._odd = data[cut:]
            return data[:cut]
        pcm = self._wav.feed(chunk)
        rate = self._wav.rate
        if not pcm or rate is None or rate == PLAYBACK_RATE:
            return pcm
        if self._resampler is None:
            self._resampler = StreamResampler(rate, PLAYBACK_RATE, 1, dtype="int16")
        out = self._resampler.process(np.frombuffer(pcm, dtype="<i2"))
        return bytes(np.asarray(out, dtype="<i2").tobytes())

    def flush(self) -> bytes:
        if self._resampler is None:
            return b""
        out = self._resampler.flush()
        return bytes(np.asarray(out, dtype="<i2").tobytes())


async def play(
    stream: SpeechStream,
    sink: AudioSink,
    *,
    item_id: str = "speech",
    content_index: int = 0,
    wait: bool = True,
) -> PlaybackReport:
    """Feed the speech to ``sink`` as it arrives; return timings measured from the request.

    ``pcm`` audio is queued as it is (24 kHz), ``wav`` is parsed incrementally and
    resampled to 24 kHz when needed. With ``wait`` the call returns once the sink has
    played everything. ConfigError for other formats (mp3, opus, aac, flac).
    """
    convert = _ToPcm24k(stream.response_format)
    first_sample: float | None = None
    queued = 0
    async with stream:
        async for chunk in stream:
            pcm = convert.feed(chunk)
            if pcm:
                sink.enqueue(pcm, item_id, content_index)
                if first_sample is None:
                    first_sample = time.monotonic()
                queued += len(pcm)
        tail = convert.flush()
        if tail:
            sink.enqueue(tail, item_id, content_index)
            queued += len(tail)
            if first_sample is None:
                first_sample = time.monotonic()
    if wait:
        await sink.drained()
    origin = stream.opened_at
    return PlaybackReport(
        first_byte_s=stream.time_to_first_byte,
        first_sample_s=None if first_sample is None or origin is None else first_sample - origin,
        audio_ms=queued / 2 / PLAYBACK_RATE * 1000.0,
        bytes_received=stream.bytes_received,
    )
