"""Transcription and translation: ``POST /audio/transcriptions`` and ``/audio/translations``.

:func:`transcription_form` and :func:`translation_form` build the streaming multipart
body; :func:`parse_transcription` / :func:`parse_translation` turn a body into the typed
result of the requested ``response_format``; :class:`TranscriptStream` iterates the typed
events of ``stream=True``. The public entry points are the client methods
(:meth:`realtime.rest.AsyncAudioClient.transcribe` and ``translate``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

import httpx

from realtime.exceptions import APIError, ConfigError
from realtime.rest.models import (
    TranscriptEvent,
    Transcription,
    TranscriptionDiarized,
    TranscriptionVerbose,
    TranscriptTextDeltaEvent,
    TranscriptTextDoneEvent,
    Translation,
    TranslationVerbose,
    UsageTokens,
    parse_transcript_event,
    validate_json,
)
from realtime.rest.multipart import AudioInput, MultipartBody, audio_upload
from realtime.rest.streams import is_event_stream, iter_sse_data, read_body

__all__ = [
    "TEXT_FORMATS",
    "TRANSCRIPTION_FORMATS",
    "TRANSLATION_FORMATS",
    "ChunkingStrategy",
    "TranscriptStream",
    "TranscriptionFormat",
    "TranscriptionResult",
    "TranslationFormat",
    "TranslationResult",
    "parse_transcription",
    "parse_translation",
    "transcription_form",
    "translation_form",
]

TranscriptionFormat = Literal["json", "text", "srt", "verbose_json", "vtt", "diarized_json"]
TranslationFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]
TRANSCRIPTION_FORMATS = frozenset({"json", "text", "srt", "verbose_json", "vtt", "diarized_json"})
TRANSLATION_FORMATS = frozenset({"json", "text", "srt", "verbose_json", "vtt"})
TEXT_FORMATS = frozenset({"text", "srt", "vtt"})

ChunkingStrategy = Literal["auto"] | Mapping[str, Any]
"""``"auto"`` or a server VAD config such as ``{"type": "server_vad", "threshold": 0.5}``."""

TranscriptionResult = Transcription | TranscriptionVerbose | TranscriptionDiarized | str
TranslationResult = Translation | TranslationVerbose | str


def _num(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _num(value)
    return str(value)


def transcription_form(
    file: AudioInput,
    *,
    model: str,
    language: str | None = None,
    prompt: str | None = None,
    response_format: str = "json",
    temperature: float | None = None,
    timestamp_granularities: Sequence[str] | None = None,
    include: Sequence[str] | None = None,
    chunking_strategy: ChunkingStrategy | None = None,
    known_speaker_names: Sequence[str] | None = None,
    known_speaker_references: Sequence[str] | None = None,
    stream: bool = False,
    filename: str | None = None,
    sample_rate: int = 24000,
) -> MultipartBody:
    """The multipart body of a transcription request (the file is not read yet).

    Arrays are sent with ``name[]`` fields and objects with ``name[key]`` fields, as the
    official clients do. Raises ConfigError for an unknown ``response_format``, a
    ``timestamp_granularities`` without ``verbose_json``, or streaming a text format.
    """
    if response_format not in TRANSCRIPTION_FORMATS:
        raise ConfigError(
            f"unknown response_format {response_format!r}; one of {sorted(TRANSCRIPTION_FORMATS)}"
        )
    if timestamp_granularities and response_format != "verbose_json":
        raise ConfigError("timestamp_granularities needs response_format='verbose_json'")
    fields: list[tuple[str, str]] = [("model", model), ("response_format", response_format)]
    if language is not None:
        fields.append(("language", language))
    if prompt is not None:
        fields.append(("prompt", prompt))
    if temperature is not None:
        fields.append(("temperature", _num(temperature)))
    fields += [("timestamp_granularities[]", g) for g in timestamp_granularities or ()]
    fields += [("include[]", i) for i in include or ()]
    fields += [("known_speaker_names[]", n) for n in known_speaker_names or ()]
    fields += [("known_speaker_references[]", r) for r in known_speaker_references or ()]
    if chunking_strategy is not None:
        if isinstance(chunking_strategy, str):
            fields.append(("chunking_strategy", chunking_strategy))
        else:
            for key, value in chunking_strategy.items():
                fields.append((f"chunking_strategy[{key}]", _scalar(value)))
    if stream:
        fields.append(("stream", "true"))
    upload = audio_upload(file, filename=filename, sample_rate=sample_rate)
    return MultipartBody(fields, upload)


def translation_form(
    file: AudioInput,
    *,
    model: str,
    prompt: str | None = None,
    response_format: str = "json",
    temperature: float | None = None,
    filename: str | None = None,
    sample_rate: int = 24000,
) -> MultipartBody:
    """The multipart body of a translation request; ConfigError for an unknown format."""
    if response_format not in TRANSLATION_FORMATS:
        raise ConfigError(
            f"unknown response_format {response_format!r}; one of {sorted(TRANSLATION_FORMATS)}"
        )
    fields: list[tuple[str, str]] = [("model", model), ("response_format", response_format)]
    if prompt is not None:
        fields.append(("prompt", prompt))
    if temperature is not None:
        fields.append(("temperature", _num(temperature)))
    upload = audio_upload(file, filename=filename, sample_rate=sample_rate)
    return MultipartBody(fields, upload)


def parse_transcription(
    response_format: str, body: bytes, request_id: str | None = None
) -> TranscriptionResult:
    """The typed result of a transcription body for ``response_format``.

    ``json`` -> Transcription, ``verbose_json`` -> TranscriptionVerbose, ``diarized_json``
    -> TranscriptionDiarized, ``text``/``srt``/``vtt`` -> str. APIError for a body that
    does not match.
    """
    if response_format in TEXT_FORMATS:
        return body.decode("utf-8", errors="replace")
    if response_format == "verbose_json":
        return validate_json(TranscriptionVerbose, body, request_id)
    if response_format == "diarized_json":
        return validate_json(TranscriptionDiarized, body, request_id)
    return validate_json(Transcription, body, request_id)


def parse_translation(
    response_format: str, body: bytes, request_id: str | None = None
) -> TranslationResult:
    """The typed result of a translation body (Translation, TranslationVerbose or str)."""
    if response_format in TEXT_FORMATS:
        return body.decode("utf-8", errors="replace")
    if response_format == "verbose_json":
        return validate_json(TranslationVerbose, body, request_id)
    return validate_json(Translation, body, request_id)


async def _whole_body_as_done(response: httpx.Response) -> AsyncGenerator[str, None]:
    """A server that ignores ``stream`` (as whisper-1 does) answers with the whole result:
    deliver it as a single ``transcript.text.done`` event."""
    body = await read_body(response, "transcription")
    if response.headers.get("content-type", "").startswith("application/json"):
        result = validate_json(Transcription, body, response.headers.get("x-request-id"))
        done = TranscriptTextDoneEvent(
            text=result.text,
            languages=result.languages,
            logprobs=result.logprobs,
            usage=result.usage if isinstance(result.usage, UsageTokens) else None,
        )
    else:
        done = TranscriptTextDoneEvent(text=body.decode("utf-8", errors="replace").strip())
    yield done.model_dump_json(exclude_none=True)


class TranscriptStream:
    """The typed events of a streamed transcription.

    ``async with stream: async for event in stream: ...``. Iteration ends after
    ``transcript.text.done``; :attr:`text` accumulates the deltas and :attr:`done` holds
    the final event. The request is sent on :meth:`open` (called by ``async with``,
    by the first iteration, or already by ``await client.transcribe(..., stream=True)``).
    Raises APIError for an error status, an ``error`` event, or a body that ends before
    ``transcript.text.done`` (including one cut off mid-event). A server that answers
    with a plain result instead of events yields it as one ``transcript.text.done``.
    """

    def __init__(self, send: Callable[[], Awaitable[httpx.Response]]) -> None:
        self._send = send
        self._response: httpx.Response | None = None
        self._data: AsyncGenerator[str, None] | None = None
        self._finished = False
        self.text = ""
        self.done: TranscriptTextDoneEvent | None = None

    @property
    def request_id(self) -> str | None:
        """The ``x-request-id`` of the response, once open."""
        return None if self._response is None else self._response.headers.get("x-request-id")

    async def open(self) -> TranscriptStream:
        """Send the request (with retries) unless already sent; return self."""
        if self._response is None:
            self._response = await self._send()
            if is_event_stream(self._response):
                self._data = iter_sse_data(self._response, "transcription stream")
            else:
                self._data = _whole_body_as_done(self._response)
        return self

    async def aclose(self) -> None:
        """Stop reading and release the connection."""
        self._finished = True
        if self._data is not None:
            await self._data.aclose()
        if self._response is not None:
            await self._response.aclose()

    async def __aenter__(self) -> TranscriptStream:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> TranscriptStream:
        return self

    async def __anext__(self) -> TranscriptEvent:
        if self._finished:
            raise StopAsyncIteration
        await self.open()
        assert self._data is not None
        try:
            data = await self._data.__anext__()
        except StopAsyncIteration:
            await self.aclose()
            raise APIError(
                "the transcription stream ended before transcript.text.done",
                status=200,
                request_id=self.request_id,
            ) from None
        except BaseException:
            await self.aclose()
            raise
        try:
            event = parse_transcript_event(data)
        except APIError:
            await self.aclose()
            raise
        if isinstance(event, TranscriptTextDeltaEvent):
            self.text += event.delta
        elif isinstance(event, TranscriptTextDoneEvent):
            self.done = event
            self.text = event.text
            await self.aclose()
        return event

    async def final(self) -> TranscriptTextDoneEvent:
        """Consume the remaining events and return ``transcript.text.done``."""
        async for _ in self:
            pass
        if self.done is None:
            raise APIError("the transcription stream ended before transcript.text.done")
        return self.done
