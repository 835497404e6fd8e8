"""Building blocks shared by both dialects: tools, turn detection, transcription,
noise reduction, audio formats, log probabilities, usage and error details.

Enumerations of the spec are plain ``str`` here (a value a server adds later is
accepted); unions tagged by ``type`` fall back to a generic model for a type this
client does not know yet.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Tag

from ._support import tag_of
from .base import Bool, Float, Int, Model

__all__ = [
    "AudioFormatSpec",
    "ErrorDetails",
    "FunctionTool",
    "GenericTool",
    "GenericTurnDetection",
    "InputAudioTranscription",
    "InputTokenDetails",
    "LogProb",
    "McpTool",
    "NoiseReduction",
    "OutputTokenDetails",
    "Prompt",
    "Reasoning",
    "SemanticVad",
    "ServerVad",
    "Tool",
    "ToolChoice",
    "ToolChoiceFunction",
    "ToolChoiceMcp",
    "TracingConfig",
    "TranscriptionLanguage",
    "TranscriptionUsage",
    "TruncationRetentionRatio",
    "TurnDetection",
    "Usage",
]


# --- tools (RealtimeFunctionTool, MCPTool) ------------------------------------------------


class FunctionTool(Model):
    """A function the model may call (``type`` ``"function"``)."""

    type: Literal["function"] = "function"
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None


class McpTool(Model):
    """A remote MCP server's tools made available to the model (GA only)."""

    type: Literal["mcp"] = "mcp"
    server_label: str
    server_url: str | None = None
    connector_id: str | None = None
    authorization: str | None = None
    server_description: str | None = None
    headers: dict[str, str] | None = None
    allowed_tools: list[str] | dict[str, Any] | None = None
    require_approval: str | dict[str, Any] | None = None


class GenericTool(Model):
    """A tool of a type this client does not know yet."""

    type: str


Tool = Annotated[
    Annotated[FunctionTool, Tag("function")]
    | Annotated[McpTool, Tag("mcp")]
    | Annotated[GenericTool, Tag("*")],
    Discriminator(tag_of(frozenset({"function", "mcp"}))),
]
"""Any tool of a session or response."""


class ToolChoiceFunction(Model):
    """Force a call of the named function."""

    type: Literal["function"] = "function"
    name: str


class ToolChoiceMcp(Model):
    """Force a call of a tool of the named MCP server (GA only)."""

    type: Literal["mcp"] = "mcp"
    server_label: str
    name: str | None = None


ToolChoice = str | ToolChoiceFunction | ToolChoiceMcp
"""``"auto"``, ``"none"``, ``"required"`` (or a function name in beta), or an object."""


# --- turn detection (RealtimeTurnDetection; beta session.turn_detection) -------------------


class ServerVad(Model):
    """Voice activity detection on the server by silence (``server_vad``)."""

    type: Literal["server_vad"] = "server_vad"
    threshold: Float | None = None
    prefix_padding_ms: Int | None = None
    silence_duration_ms: Int | None = None
    create_response: Bool | None = None
    interrupt_response: Bool | None = None
    idle_timeout_ms: Int | None = None


class SemanticVad(Model):
    """Turn detection by a model judging whether the user has finished (``semantic_vad``)."""

    type: Literal["semantic_vad"] = "semantic_vad"
    eagerness: str | None = None
    create_response: Bool | None = None
    interrupt_response: Bool | None = None


class GenericTurnDetection(Model):
    """Turn detection of a type this client does not know yet."""

    type: str


TurnDetection = Annotated[
    Annotated[ServerVad, Tag("server_vad")]
    | Annotated[SemanticVad, Tag("semantic_vad")]
    | Annotated[GenericTurnDetection, Tag("*")],
    Discriminator(tag_of(frozenset({"server_vad", "semantic_vad"}))),
]
"""Any turn-detection configuration (``None`` on the wire disables it)."""


# --- input audio: transcription, noise reduction, format ----------------------------------


class InputAudioTranscription(Model):
    """How input audio is transcribed (beta ``input_audio_transcription``, GA
    ``audio.input.transcription``)."""

    model: str | None = None
    language: str | None = None
    prompt: str | None = None
    languages: list[str] | None = None
    keywords: list[str] | None = None
    delay: str | None = None


class NoiseReduction(Model):
    """Input noise reduction: ``type`` ``"near_field"`` or ``"far_field"``."""

    type: str | None = None


class AudioFormatSpec(Model):
    """A GA audio format object (``RealtimeAudioFormats``): ``audio/pcm`` with ``rate``,
    ``audio/pcmu`` or ``audio/pcma``."""

    type: str
    rate: Int | None = None


# --- sessions: tracing, truncation, prompt, reasoning (GA) ---------------------------------


class TracingConfig(Model):
    """Tracing configuration of a GA session (the alternative to ``"auto"``)."""

    workflow_name: str | None = None
    group_id: str | None = None
    metadata: dict[str, Any] | None = None


class TruncationRetentionRatio(Model):
    """GA truncation keeping a fraction of the conversation when the context overflows."""

    type: str = "retention_ratio"
    retention_ratio: Float
    token_limits: dict[str, Any] | None = None


class Prompt(Model):
    """A reference to a stored prompt template (GA)."""

    id: str
    version: str | None = None
    variables: dict[str, Any] | None = None


class Reasoning(Model):
    """Reasoning settings of a GA session or response."""

    effort: str | None = None


# --- transcription results -----------------------------------------------------------------


class LogProb(Model):
    """The log probability of one transcribed token."""

    token: str
    logprob: Float
    bytes: list[Int]


class TranscriptionLanguage(Model):
    """A language detected in transcribed audio (GA)."""

    code: str


class TranscriptionUsage(Model):
    """Usage of an input transcription (GA): ``type`` ``"tokens"`` or ``"duration"``."""

    type: str
    input_tokens: Int | None = None
    output_tokens: Int | None = None
    total_tokens: Int | None = None
    input_token_details: dict[str, Any] | None = None
    seconds: Float | None = None


# --- response usage ------------------------------------------------------------------------


class InputTokenDetails(Model):
    """Breakdown of a response's input tokens."""

    cached_tokens: Int | None = None
    text_tokens: Int | None = None
    image_tokens: Int | None = None
    audio_tokens: Int | None = None
    cached_tokens_details: dict[str, Any] | None = None


class OutputTokenDetails(Model):
    """Breakdown of a response's output tokens."""

    text_tokens: Int | None = None
    audio_tokens: Int | None = None


class Usage(Model):
    """Token usage of a response (``response.done``)."""

    total_tokens: Int | None = None
    input_tokens: Int | None = None
    output_tokens: Int | None = None
    input_token_details: InputTokenDetails | None = None
    output_token_details: OutputTokenDetails | None = None


# --- errors --------------------------------------------------------------------------------


class ErrorDetails(Model):
    """The ``error`` object of an ``error`` event."""

    type: str
    message: str
    code: str | None = None
    param: str | None = None
    event_id: str | None = None
