"""Session objects of both dialects and the session events.

Beta (openapi-2025-04 ``RealtimeSession``) is flat: ``modalities``,
``input_audio_format``, ``turn_detection``, … side by side.  GA (openapi-2026-08
``RealtimeSessionCreateRequestGA`` / ``…ResponseGA``) nests audio settings under
``audio.input`` / ``audio.output`` and names the session kind in ``type``
(``"realtime"`` or ``"transcription"``).  Applications usually write a
:class:`~realtime.events.config.SessionConfig` instead of these wire shapes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Tag

from ._support import tag_of
from .base import Bool, ClientEvent, Float, Int, Model, ServerEvent
from .common import (
    AudioFormatSpec,
    InputAudioTranscription,
    NoiseReduction,
    Prompt,
    Reasoning,
    Tool,
    ToolChoice,
    TracingConfig,
    TruncationRetentionRatio,
    TurnDetection,
)

__all__ = [
    "AudioInput",
    "AudioOutput",
    "BetaSession",
    "BetaSessionCreatedEvent",
    "BetaSessionUpdateEvent",
    "BetaSessionUpdatedEvent",
    "BetaTranscriptionSession",
    "GenericSession",
    "RealtimeSession",
    "RealtimeSessionConfig",
    "SessionAudio",
    "SessionCreatedEvent",
    "SessionObject",
    "SessionUpdateEvent",
    "SessionUpdatedEvent",
    "TranscriptionSession",
    "TranscriptionSessionConfig",
    "TranscriptionSessionCreatedEvent",
    "TranscriptionSessionUpdateEvent",
    "TranscriptionSessionUpdatedEvent",
]


# --- beta ----------------------------------------------------------------------------------


class BetaSession(Model):
    """A beta session: the ``session`` of ``session.update`` and of
    ``session.created``/``updated`` (the server adds ``id``, ``object``, ``expires_at``)."""

    id: str | None = None
    object: str | None = None
    model: str | None = None
    modalities: list[str] | None = None
    instructions: str | None = None
    voice: str | None = None
    input_audio_format: str | None = None
    output_audio_format: str | None = None
    input_audio_transcription: InputAudioTranscription | None = None
    turn_detection: TurnDetection | None = None
    input_audio_noise_reduction: NoiseReduction | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    temperature: Float | None = None
    max_response_output_tokens: Int | str | None = None
    speed: Float | None = None
    tracing: str | TracingConfig | None = None
    expires_at: Int | None = None


class BetaTranscriptionSession(Model):
    """A beta transcription session (``transcription_session.update``/``updated``)."""

    id: str | None = None
    object: str | None = None
    modalities: list[str] | None = None
    input_audio_format: str | None = None
    input_audio_transcription: InputAudioTranscription | None = None
    turn_detection: TurnDetection | None = None
    input_audio_noise_reduction: NoiseReduction | None = None
    include: list[str] | None = None
    client_secret: dict[str, Any] | None = None
    expires_at: Int | None = None


class BetaSessionUpdateEvent(ClientEvent):
    """Change the session's configuration (beta shape)."""

    type: Literal["session.update"] = "session.update"
    session: BetaSession


class BetaSessionCreatedEvent(ServerEvent):
    """First event of a connection: the session's initial configuration (beta shape)."""

    type: Literal["session.created"] = "session.created"
    session: BetaSession


class BetaSessionUpdatedEvent(ServerEvent):
    """The session's configuration after a ``session.update`` (beta shape)."""

    type: Literal["session.updated"] = "session.updated"
    session: BetaSession


class TranscriptionSessionUpdateEvent(ClientEvent):
    """Change a transcription session's configuration (beta only)."""

    type: Literal["transcription_session.update"] = "transcription_session.update"
    session: BetaTranscriptionSession


class TranscriptionSessionCreatedEvent(ServerEvent):
    """First event of a beta transcription connection: the session's configuration.

    Not in the 2025-04 ``RealtimeServerEvent`` union; the 2026-08 file documents it as
    ``RealtimeBetaServerEventTranscriptionSessionCreated`` (beta only).
    """

    type: Literal["transcription_session.created"] = "transcription_session.created"
    session: BetaTranscriptionSession


class TranscriptionSessionUpdatedEvent(ServerEvent):
    """A transcription session's configuration after an update (beta only)."""

    type: Literal["transcription_session.updated"] = "transcription_session.updated"
    session: BetaTranscriptionSession


# --- GA ------------------------------------------------------------------------------------


class AudioInput(Model):
    """GA ``audio.input``: format, transcription, noise reduction, turn detection."""

    format: AudioFormatSpec | None = None
    transcription: InputAudioTranscription | None = None
    noise_reduction: NoiseReduction | None = None
    turn_detection: TurnDetection | None = None


class AudioOutput(Model):
    """GA ``audio.output``: format, voice (a name or ``{"id": …}``), speed."""

    format: AudioFormatSpec | None = None
    voice: str | dict[str, Any] | None = None
    speed: Float | None = None


class SessionAudio(Model):
    """GA ``audio``: ``input`` and ``output`` settings."""

    input: AudioInput | None = None
    output: AudioOutput | None = None


class RealtimeSessionConfig(Model):
    """A GA speech-to-speech session as sent in ``session.update`` (``type`` ``"realtime"``)."""

    type: Literal["realtime"] = "realtime"
    model: str | None = None
    output_modalities: list[str] | None = None
    instructions: str | None = None
    audio: SessionAudio | None = None
    include: list[str] | None = None
    tracing: str | TracingConfig | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: Bool | None = None
    reasoning: Reasoning | None = None
    max_output_tokens: Int | str | None = None
    truncation: str | TruncationRetentionRatio | None = None
    prompt: Prompt | None = None


class TranscriptionSessionConfig(Model):
    """A GA transcription-only session as sent in ``session.update``
    (``type`` ``"transcription"``)."""

    type: Literal["transcription"] = "transcription"
    audio: SessionAudio | None = None
    include: list[str] | None = None


class RealtimeSession(RealtimeSessionConfig):
    """A GA realtime session as reported by ``session.created``/``updated``."""

    id: str
    object: str
    expires_at: Int | None = None


class TranscriptionSession(TranscriptionSessionConfig):
    """A GA transcription session as reported by ``session.created``/``updated``."""

    id: str
    object: str
    expires_at: Int | None = None


class GenericSession(Model):
    """A GA session of a ``type`` this client does not know yet."""

    type: str


_SESSION_TYPES = frozenset({"realtime", "transcription"})

SessionConfigObject = Annotated[
    Annotated[RealtimeSessionConfig, Tag("realtime")]
    | Annotated[TranscriptionSessionConfig, Tag("transcription")]
    | Annotated[GenericSession, Tag("*")],
    Discriminator(tag_of(_SESSION_TYPES)),
]

SessionObject = Annotated[
    Annotated[RealtimeSession, Tag("realtime")]
    | Annotated[TranscriptionSession, Tag("transcription")]
    | Annotated[GenericSession, Tag("*")],
    Discriminator(tag_of(_SESSION_TYPES)),
]
"""Any GA session as reported by the server."""


class SessionUpdateEvent(ClientEvent):
    """Change the session's configuration (GA shape)."""

    type: Literal["session.update"] = "session.update"
    session: SessionConfigObject


class SessionCreatedEvent(ServerEvent):
    """First event of a connection: the session's initial configuration (GA shape)."""

    type: Literal["session.created"] = "session.created"
    session: SessionObject


class SessionUpdatedEvent(ServerEvent):
    """The session's configuration after a ``session.update`` (GA shape)."""

    type: Literal["session.updated"] = "session.updated"
    session: SessionObject
