"""Translation sessions: the third realtime protocol of the GA spec (``RealtimeTranslation*``).

A translation session lives at ``/v1/realtime/translations``. The client streams 24 kHz
PCM16 mono audio (``session.input_audio_buffer.append``), changes the target language
with ``session.update`` and ends with ``session.close``; the server sends
``session.created`` / ``session.updated``, the source and translated transcripts
(``session.input_transcript.delta``, ``session.output_transcript.delta``), the translated
speech (``session.output_audio.delta``) and finally ``session.closed``. ``error`` is the
ordinary :class:`~realtime.events.errors.ErrorEvent`.

Three wire types (``session.update``, ``session.created``, ``session.updated``) are spelled
as in a conversation session but carry a translation session, so these events form their
own event set, ``"translation"``: ``parse_server_event(frame, "translation")``.

Translation audio is fixed: only PCM16 at 24 kHz is accepted (the spec: other formats are a
validation error). The session objects have no format field; :func:`unsupported_format`
checks one that a caller adds anyway (``audio.input.format``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Literal

from ._support import decode_b64
from .base import ClientEvent, Int, Model, ServerEvent
from .errors import ErrorEvent

__all__ = [
    "TRANSLATION_CLIENT_EVENTS",
    "TRANSLATION_SAMPLE_RATE",
    "TRANSLATION_SERVER_EVENTS",
    "TranslationAudio",
    "TranslationAudioInput",
    "TranslationAudioOutput",
    "TranslationInputAudioBufferAppendEvent",
    "TranslationInputTranscriptDeltaEvent",
    "TranslationNoiseReduction",
    "TranslationOutputAudioDeltaEvent",
    "TranslationOutputTranscriptDeltaEvent",
    "TranslationSession",
    "TranslationSessionCloseEvent",
    "TranslationSessionClosedEvent",
    "TranslationSessionConfig",
    "TranslationSessionCreatedEvent",
    "TranslationSessionUpdate",
    "TranslationSessionUpdateEvent",
    "TranslationSessionUpdatedEvent",
    "TranslationTranscription",
    "unsupported_format",
]

TRANSLATION_SAMPLE_RATE = 24000
"""The only input rate a translation session accepts (PCM16 mono little-endian)."""


# -- the session objects ---------------------------------------------------------------


class TranslationTranscription(Model):
    """Source-language transcription; when set, the server sends input transcript deltas."""

    model: str


class TranslationNoiseReduction(Model):
    """Input noise reduction: ``type`` ``"near_field"`` or ``"far_field"``."""

    type: str


class TranslationAudioInput(Model):
    """``audio.input``: optional source transcription and noise reduction (``None`` = off)."""

    transcription: TranslationTranscription | None = None
    noise_reduction: TranslationNoiseReduction | None = None


class TranslationAudioOutput(Model):
    """``audio.output``: the target ``language`` of the translated speech and transcript."""

    language: str | None = None


class TranslationAudio(Model):
    """``audio`` of a translation session."""

    input: TranslationAudioInput | None = None
    output: TranslationAudioOutput | None = None


class TranslationSessionUpdate(Model):
    """The fields ``session.update`` may change (``RealtimeTranslationSessionUpdateRequest``)."""

    audio: TranslationAudio | None = None

    @staticmethod
    def build(
        *,
        language: str | None = None,
        transcription_model: str | None = None,
        noise_reduction: str | None = None,
    ) -> TranslationSessionUpdate:
        """The object with the given target language, transcription model and noise reduction
        (only the arguments given are set)."""
        audio: dict[str, Any] = {}
        if language is not None:
            audio["output"] = {"language": language}
        entry: dict[str, Any] = {}
        if transcription_model is not None:
            entry["transcription"] = {"model": transcription_model}
        if noise_reduction is not None:
            entry["noise_reduction"] = {"type": noise_reduction}
        if entry:
            audio["input"] = entry
        return TranslationSessionUpdate.model_validate({"audio": audio} if audio else {})


class TranslationSessionConfig(TranslationSessionUpdate):
    """A session to create (``RealtimeTranslationSessionCreateRequest``): ``model`` and audio."""

    model: str


class TranslationSession(Model):
    """A translation session as the server describes it (``RealtimeTranslationSession``)."""

    id: str
    type: Literal["translation"]
    expires_at: Int
    model: str
    audio: TranslationAudio

    @property
    def language(self) -> str | None:
        """The target language (``audio.output.language``)."""
        out = self.audio.output
        return out.language if out is not None else None


def _format_ok(value: Any) -> bool:
    if value is None or value == "pcm16":
        return True
    if isinstance(value, Mapping):
        rate = value.get("rate", TRANSLATION_SAMPLE_RATE)
        return value.get("type") == "audio/pcm" and rate == TRANSLATION_SAMPLE_RATE
    return False


def unsupported_format(session: Mapping[str, Any] | Model | None) -> str | None:
    """Why a session config's input format is refused, or ``None`` when it is acceptable.

    Translation accepts only 24 kHz PCM16 mono (absent, ``"pcm16"`` or
    ``{"type": "audio/pcm", "rate": 24000}``); anything else (``audio/pcmu``, another
    rate, …) is refused, as the spec says.
    """
    if session is None:
        return None
    data = session.model_dump() if isinstance(session, Model) else session
    audio = data.get("audio") if isinstance(data, Mapping) else None
    entry = audio.get("input") if isinstance(audio, Mapping) else None
    if not isinstance(entry, Mapping) or "format" not in entry:
        return None
    value = entry["format"]
    if _format_ok(value):
        return None
    return (
        f"unsupported audio format {value!r}: translation sessions take 24 kHz PCM16 mono "
        "(audio/pcm, rate 24000) only"
    )


# -- client events ----------------------------------------------------------------------


class TranslationSessionUpdateEvent(ClientEvent):
    """Change the target language, source transcription or noise reduction."""

    type: Literal["session.update"] = "session.update"
    session: TranslationSessionUpdate


class TranslationInputAudioBufferAppendEvent(ClientEvent):
    """Append base64 24 kHz PCM16 mono audio; the server consumes it in 200 ms frames."""

    type: Literal["session.input_audio_buffer.append"] = "session.input_audio_buffer.append"
    audio: str

    @classmethod
    def from_pcm(cls, pcm: bytes) -> TranslationInputAudioBufferAppendEvent:
        """Build the event from raw PCM16 bytes."""
        return cls(audio=base64.b64encode(pcm).decode("ascii"))

    def audio_bytes(self) -> bytes:
        """Decode the audio; raises :class:`~realtime.exceptions.ProtocolError` if invalid."""
        return decode_b64(self.audio, self.type)


class TranslationSessionCloseEvent(ClientEvent):
    """Close gracefully: the server flushes pending input and remaining output first."""

    type: Literal["session.close"] = "session.close"


# -- server events ----------------------------------------------------------------------


class TranslationSessionCreatedEvent(ServerEvent):
    """The first event of a connection: the session and its default configuration."""

    type: Literal["session.created"] = "session.created"
    session: TranslationSession


class TranslationSessionUpdatedEvent(ServerEvent):
    """The session after a ``session.update``."""

    type: Literal["session.updated"] = "session.updated"
    session: TranslationSession


class TranslationSessionClosedEvent(ServerEvent):
    """The session is closed (after ``session.close``, all output sent)."""

    type: Literal["session.closed"] = "session.closed"


class _DeltaEvent(ServerEvent):
    delta: str
    elapsed_ms: Int | None = None


class TranslationInputTranscriptDeltaEvent(_DeltaEvent):
    """Append-only source transcript text (when ``audio.input.transcription`` is set).

    ``elapsed_ms`` is alignment metadata in 200 ms steps, shared by several deltas.
    """

    type: Literal["session.input_transcript.delta"] = "session.input_transcript.delta"


class TranslationOutputTranscriptDeltaEvent(_DeltaEvent):
    """Append-only transcript text of the translated speech."""

    type: Literal["session.output_transcript.delta"] = "session.output_transcript.delta"


class TranslationOutputAudioDeltaEvent(ServerEvent):
    """A chunk of translated speech: base64 PCM16 of varying length."""

    type: Literal["session.output_audio.delta"] = "session.output_audio.delta"
    delta: str
    sample_rate: Int = TRANSLATION_SAMPLE_RATE
    channels: Int = 1
    format: Literal["pcm16"] | None = None
    elapsed_ms: Int | None = None

    @classmethod
    def from_pcm(
        cls, pcm: bytes, *, elapsed_ms: int | None = None, event_id: str | None = None
    ) -> TranslationOutputAudioDeltaEvent:
        """Build the event from PCM16 24 kHz mono bytes."""
        return cls(
            delta=base64.b64encode(pcm).decode("ascii"),
            sample_rate=TRANSLATION_SAMPLE_RATE,
            channels=1,
            format="pcm16",
            elapsed_ms=elapsed_ms,
            event_id=event_id,
        )

    def audio_bytes(self) -> bytes:
        """Decode the audio; raises :class:`~realtime.exceptions.ProtocolError` if invalid."""
        return decode_b64(self.delta, self.type)


TRANSLATION_CLIENT_EVENTS: tuple[type[ClientEvent], ...] = (
    TranslationSessionUpdateEvent,
    TranslationInputAudioBufferAppendEvent,
    TranslationSessionCloseEvent,
)
"""The members of ``RealtimeTranslationClientEvent``."""

TRANSLATION_SERVER_EVENTS: tuple[type[ServerEvent], ...] = (
    ErrorEvent,
    TranslationSessionCreatedEvent,
    TranslationSessionUpdatedEvent,
    TranslationSessionClosedEvent,
    TranslationInputTranscriptDeltaEvent,
    TranslationOutputTranscriptDeltaEvent,
    TranslationOutputAudioDeltaEvent,
)
"""The members of ``RealtimeTranslationServerEvent``."""
