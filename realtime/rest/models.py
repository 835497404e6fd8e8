"""Typed results of the REST audio endpoints.

Written from the shapes in the OpenAPI files (``/audio/transcriptions``,
``/audio/translations``, ``/audio/speech`` and the realtime key endpoints). Every model
allows extra fields, so a server that adds a field does not break parsing; fields the
spec marks as required are required here too.

Use :func:`parse_transcript_event` and :func:`parse_speech_event` to turn one SSE
``data`` payload into its typed event.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from realtime.exceptions import APIError

__all__ = [
    "ClientSecret",
    "DiarizedSegment",
    "InputTokenDetails",
    "Language",
    "Logprob",
    "RealtimeSessionResponse",
    "RestModel",
    "SpeechAudioDeltaEvent",
    "SpeechAudioDoneEvent",
    "SpeechEvent",
    "SpeechUsage",
    "TranscriptEvent",
    "TranscriptTextDeltaEvent",
    "TranscriptTextDoneEvent",
    "TranscriptTextSegmentEvent",
    "Transcription",
    "TranscriptionDiarized",
    "TranscriptionSegment",
    "TranscriptionVerbose",
    "TranscriptionWord",
    "Translation",
    "TranslationVerbose",
    "UnknownStreamEvent",
    "UsageDuration",
    "UsageTokens",
    "ClientSecretResponse",
    "TranscriptionSessionResponse",
    "parse_speech_event",
    "parse_transcript_event",
    "validate_json",
]


class RestModel(BaseModel):
    """Base of every REST model: unknown fields are kept (``model_extra``), not rejected."""

    model_config = ConfigDict(extra="allow")


# --- transcription results -------------------------------------------------------------


class Logprob(RestModel):
    """Log probability of one token of a transcript (``include=["logprobs"]``)."""

    token: str | None = None
    logprob: float | None = None
    bytes: list[int] | None = None


class Language(RestModel):
    """A language detected in the audio (ISO code)."""

    code: str


class InputTokenDetails(RestModel):
    """How the input tokens split between text (prompt) and audio."""

    text_tokens: int | None = None
    audio_tokens: int | None = None


class UsageTokens(RestModel):
    """Token usage of a transcription billed by tokens (``type="tokens"``)."""

    type: Literal["tokens"] = "tokens"
    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_token_details: InputTokenDetails | None = None


class UsageDuration(RestModel):
    """Usage of a transcription billed by audio duration (``type="duration"``)."""

    type: Literal["duration"] = "duration"
    seconds: float


class TranscriptionWord(RestModel):
    """A word with its start and end time in seconds (``timestamp_granularities=["word"]``)."""

    word: str
    start: float
    end: float


class TranscriptionSegment(RestModel):
    """A segment of a verbose transcript or translation, with Whisper's decoding statistics."""

    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class DiarizedSegment(RestModel):
    """A segment of a diarized transcript: who spoke what, when."""

    type: str = "transcript.text.segment"
    id: str
    start: float
    end: float
    text: str
    speaker: str


class Transcription(RestModel):
    """Result of ``response_format="json"``: the text, and logprobs/usage when available."""

    text: str
    languages: list[Language] | None = None
    logprobs: list[Logprob] | None = None
    usage: UsageTokens | UsageDuration | None = Field(default=None, discriminator="type")


class TranscriptionVerbose(RestModel):
    """Result of ``response_format="verbose_json"``: language, duration, words and segments."""

    language: str
    duration: float
    text: str
    words: list[TranscriptionWord] | None = None
    segments: list[TranscriptionSegment] | None = None
    usage: UsageDuration | None = None


class TranscriptionDiarized(RestModel):
    """Result of ``response_format="diarized_json"``: speaker-labelled segments."""

    task: str = "transcribe"
    duration: float
    text: str
    segments: list[DiarizedSegment]
    usage: UsageTokens | UsageDuration | None = Field(default=None, discriminator="type")


class Translation(RestModel):
    """Result of a translation with ``response_format="json"``: English text."""

    text: str


class TranslationVerbose(RestModel):
    """Result of a translation with ``response_format="verbose_json"``."""

    language: str
    duration: float
    text: str
    segments: list[TranscriptionSegment] | None = None


# --- streamed transcription events -----------------------------------------------------


class TranscriptTextDeltaEvent(RestModel):
    """``transcript.text.delta``: more text of the transcript."""

    type: Literal["transcript.text.delta"] = "transcript.text.delta"
    delta: str
    logprobs: list[Logprob] | None = None
    segment_id: str | None = None


class TranscriptTextDoneEvent(RestModel):
    """``transcript.text.done``: the whole transcript, with logprobs and token usage."""

    type: Literal["transcript.text.done"] = "transcript.text.done"
    text: str
    languages: list[Language] | None = None
    logprobs: list[Logprob] | None = None
    usage: UsageTokens | None = None


class TranscriptTextSegmentEvent(RestModel):
    """``transcript.text.segment``: a finished diarized segment (speaker, start, end)."""

    type: Literal["transcript.text.segment"] = "transcript.text.segment"
    id: str
    start: float
    end: float
    text: str
    speaker: str


class UnknownStreamEvent(RestModel):
    """A streamed event of a type this client does not know; every field is kept."""

    type: str


TranscriptEvent = (
    TranscriptTextDeltaEvent
    | TranscriptTextDoneEvent
    | TranscriptTextSegmentEvent
    | UnknownStreamEvent
)

# --- speech ------------------------------------------------------------------------------


class SpeechUsage(RestModel):
    """Token usage of a speech request."""

    input_tokens: int
    output_tokens: int
    total_tokens: int


class SpeechAudioDeltaEvent(RestModel):
    """``speech.audio.delta``: a base64 chunk of audio; :meth:`audio_bytes` decodes it."""

    type: Literal["speech.audio.delta"] = "speech.audio.delta"
    audio: str

    def audio_bytes(self) -> bytes:
        """The decoded audio of this chunk."""
        return base64.b64decode(self.audio)


class SpeechAudioDoneEvent(RestModel):
    """``speech.audio.done``: the audio is complete; carries the usage."""

    type: Literal["speech.audio.done"] = "speech.audio.done"
    usage: SpeechUsage | None = None


SpeechEvent = SpeechAudioDeltaEvent | SpeechAudioDoneEvent | UnknownStreamEvent

# --- realtime keys -----------------------------------------------------------------------


class ClientSecret(RestModel):
    """An ephemeral key as nested in the beta session responses (value hidden in repr)."""

    value: str = Field(repr=False)
    expires_at: int


class RealtimeSessionResponse(RestModel):
    """Response of the beta ``POST /realtime/sessions``: the session and its client secret."""

    id: str | None = None
    object: str | None = None
    model: str | None = None
    client_secret: ClientSecret


class TranscriptionSessionResponse(RestModel):
    """Response of the beta ``POST /realtime/transcription_sessions``."""

    id: str | None = None
    object: str | None = None
    client_secret: ClientSecret


class ClientSecretResponse(RestModel):
    """Response of the GA ``POST /realtime/client_secrets``: the key, its expiry, the session."""

    value: str = Field(repr=False)
    expires_at: int
    session: dict[str, Any] = Field(default_factory=dict)


# --- parsing -----------------------------------------------------------------------------

_TRANSCRIPT_EVENTS: dict[str, type[RestModel]] = {
    "transcript.text.delta": TranscriptTextDeltaEvent,
    "transcript.text.done": TranscriptTextDoneEvent,
    "transcript.text.segment": TranscriptTextSegmentEvent,
}
_SPEECH_EVENTS: dict[str, type[RestModel]] = {
    "speech.audio.delta": SpeechAudioDeltaEvent,
    "speech.audio.done": SpeechAudioDoneEvent,
}


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _load_event(data: str, table: dict[str, type[RestModel]]) -> RestModel:
    try:
        raw = json.loads(data)
    except json.JSONDecodeError as exc:
        raise APIError(f"malformed JSON in a streamed event near {data[:60]!r}") from exc
    if not isinstance(raw, dict):
        raise APIError(f"streamed event is not a JSON object near {data[:60]!r}")
    kind = raw.get("type")
    if kind == "error" or (isinstance(raw.get("error"), dict) and kind not in table):
        err = raw["error"] if isinstance(raw.get("error"), dict) else raw
        raise APIError(
            str(err.get("message") or "the server reported an error in the stream"),
            type=_opt_str(err.get("type")),
            code=_opt_str(err.get("code")),
            param=_opt_str(err.get("param")),
        )
    if not isinstance(kind, str):
        raise APIError(f"streamed event without a type near {data[:60]!r}")
    model = table.get(kind, UnknownStreamEvent)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise APIError(f"invalid {kind!r} event: {where}: {first['msg']}") from exc


def parse_transcript_event(data: str) -> TranscriptEvent:
    """Parse the JSON ``data`` of one streamed transcription event.

    Returns the typed event (:class:`UnknownStreamEvent` for a type not in the spec).
    Raises :class:`~realtime.exceptions.APIError` for malformed JSON, an event with invalid
    fields, or an ``error`` event sent by the server.
    """
    event = _load_event(data, _TRANSCRIPT_EVENTS)
    assert isinstance(
        event,
        TranscriptTextDeltaEvent
        | TranscriptTextDoneEvent
        | TranscriptTextSegmentEvent
        | UnknownStreamEvent,
    )
    return event


def parse_speech_event(data: str) -> SpeechEvent:
    """Parse the JSON ``data`` of one streamed speech event (``stream_format="sse"``).

    Same rules as :func:`parse_transcript_event`.
    """
    event = _load_event(data, _SPEECH_EVENTS)
    assert isinstance(event, SpeechAudioDeltaEvent | SpeechAudioDoneEvent | UnknownStreamEvent)
    return event


M = TypeVar("M", bound=RestModel)


def validate_json(model: type[M], body: bytes, request_id: str | None = None) -> M:
    """Parse a successful response body as ``model``.

    Raises :class:`~realtime.exceptions.APIError` (status 200, with the request id) for
    invalid JSON or a body that does not have the model's required fields.
    """
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(
            f"the server sent invalid JSON for a {model.__name__}: {body[:60]!r}",
            status=200,
            request_id=request_id,
        ) from exc
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise APIError(
            f"unexpected {model.__name__} from the server: {where}: {first['msg']}",
            status=200,
            request_id=request_id,
        ) from exc
