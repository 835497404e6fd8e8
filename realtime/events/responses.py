"""Responses: the response object, ``response.create``/``cancel`` and the events that
stream a response's output (items, content parts, text, audio, transcripts, function
call arguments).

Beta names the output streams ``response.text.*``, ``response.audio.*`` and
``response.audio_transcript.*``; GA names them ``response.output_text.*``,
``response.output_audio.*`` and ``response.output_audio_transcript.*`` with the same
fields.  Audio deltas keep their base64 text; :meth:`audio_bytes` decodes on demand.
"""

from __future__ import annotations

from typing import Any, Literal

from ._support import decode_b64
from .base import (
    Bool,
    ClientEvent,
    ContentRefEvent,
    Float,
    Int,
    Model,
    OutputRefEvent,
    ResponseRefEvent,
    ServerEvent,
)
from .common import Prompt, Reasoning, Tool, ToolChoice, Usage
from .items import BetaConversationItem, ContentPart, ConversationItem
from .session import AudioOutput

__all__ = [
    "BetaResponse",
    "BetaResponseCreateEvent",
    "BetaResponseCreateParams",
    "BetaResponseCreatedEvent",
    "BetaResponseDoneEvent",
    "BetaResponseFunctionCallArgumentsDoneEvent",
    "BetaResponseOutputItemAddedEvent",
    "BetaResponseOutputItemDoneEvent",
    "Response",
    "ResponseAudio",
    "ResponseAudioDeltaEvent",
    "ResponseAudioDoneEvent",
    "ResponseAudioTranscriptDeltaEvent",
    "ResponseAudioTranscriptDoneEvent",
    "ResponseCancelEvent",
    "ResponseContentPartAddedEvent",
    "ResponseContentPartDoneEvent",
    "ResponseCreateEvent",
    "ResponseCreateParams",
    "ResponseCreatedEvent",
    "ResponseDoneEvent",
    "ResponseFunctionCallArgumentsDeltaEvent",
    "ResponseFunctionCallArgumentsDoneEvent",
    "ResponseOutputAudioDeltaEvent",
    "ResponseOutputAudioDoneEvent",
    "ResponseOutputAudioTranscriptDeltaEvent",
    "ResponseOutputAudioTranscriptDoneEvent",
    "ResponseOutputItemAddedEvent",
    "ResponseOutputItemDoneEvent",
    "ResponseOutputTextDeltaEvent",
    "ResponseOutputTextDoneEvent",
    "ResponseTextDeltaEvent",
    "ResponseTextDoneEvent",
    "StatusDetails",
]


# --- the response object -------------------------------------------------------------------


class StatusDetails(Model):
    """Why a response ended as it did (``type``, ``reason``, ``error``)."""

    type: str | None = None
    reason: str | None = None
    error: dict[str, Any] | None = None


class _ResponseBase(Model):
    id: str | None = None
    object: str | None = None
    status: str | None = None
    status_details: StatusDetails | None = None
    metadata: dict[str, str] | None = None
    usage: Usage | None = None
    conversation_id: str | None = None
    max_output_tokens: Int | str | None = None


class BetaResponse(_ResponseBase):
    """A beta response object (``response.created``/``response.done``)."""

    output: list[BetaConversationItem] | None = None
    modalities: list[str] | None = None
    voice: str | None = None
    output_audio_format: str | None = None
    temperature: Float | None = None


class ResponseAudio(Model):
    """GA ``audio`` of a response: its ``output`` format and voice."""

    output: AudioOutput | None = None


class Response(_ResponseBase):
    """A GA response object (``response.created``/``response.done``)."""

    output: list[ConversationItem] | None = None
    output_modalities: list[str] | None = None
    audio: ResponseAudio | None = None


class BetaResponseCreateParams(Model):
    """Per-response overrides of ``response.create`` (beta)."""

    modalities: list[str] | None = None
    instructions: str | None = None
    voice: str | None = None
    output_audio_format: str | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    temperature: Float | None = None
    max_response_output_tokens: Int | str | None = None
    conversation: str | None = None
    metadata: dict[str, str] | None = None
    input: list[BetaConversationItem] | None = None


class ResponseCreateParams(Model):
    """Per-response overrides of ``response.create`` (GA)."""

    output_modalities: list[str] | None = None
    instructions: str | None = None
    audio: ResponseAudio | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: Bool | None = None
    reasoning: Reasoning | None = None
    max_output_tokens: Int | str | None = None
    conversation: str | None = None
    metadata: dict[str, str] | None = None
    prompt: Prompt | None = None
    input: list[ConversationItem] | None = None


# --- client events -------------------------------------------------------------------------


class BetaResponseCreateEvent(ClientEvent):
    """Ask the model to respond (beta shape)."""

    type: Literal["response.create"] = "response.create"
    response: BetaResponseCreateParams | None = None


class ResponseCreateEvent(ClientEvent):
    """Ask the model to respond (GA shape)."""

    type: Literal["response.create"] = "response.create"
    response: ResponseCreateParams | None = None


class ResponseCancelEvent(ClientEvent):
    """Cancel the in-progress response (or the one named by ``response_id``)."""

    type: Literal["response.cancel"] = "response.cancel"
    response_id: str | None = None


# --- response lifecycle --------------------------------------------------------------------


class BetaResponseCreatedEvent(ServerEvent):
    """A response started (beta shape)."""

    type: Literal["response.created"] = "response.created"
    response: BetaResponse


class BetaResponseDoneEvent(ServerEvent):
    """A response ended, with its output and usage (beta shape)."""

    type: Literal["response.done"] = "response.done"
    response: BetaResponse


class ResponseCreatedEvent(ServerEvent):
    """A response started (GA shape)."""

    type: Literal["response.created"] = "response.created"
    response: Response


class ResponseDoneEvent(ServerEvent):
    """A response ended, with its output and usage (GA shape)."""

    type: Literal["response.done"] = "response.done"
    response: Response


class BetaResponseOutputItemAddedEvent(ResponseRefEvent):
    """A response added an output item (beta shape)."""

    type: Literal["response.output_item.added"] = "response.output_item.added"
    output_index: Int
    item: BetaConversationItem


class BetaResponseOutputItemDoneEvent(ResponseRefEvent):
    """A response's output item is complete (beta shape)."""

    type: Literal["response.output_item.done"] = "response.output_item.done"
    output_index: Int
    item: BetaConversationItem


class ResponseOutputItemAddedEvent(ResponseRefEvent):
    """A response added an output item (GA shape)."""

    type: Literal["response.output_item.added"] = "response.output_item.added"
    output_index: Int
    item: ConversationItem


class ResponseOutputItemDoneEvent(ResponseRefEvent):
    """A response's output item is complete (GA shape)."""

    type: Literal["response.output_item.done"] = "response.output_item.done"
    output_index: Int
    item: ConversationItem


class ResponseContentPartAddedEvent(ContentRefEvent):
    """A content part was added to an output item."""

    type: Literal["response.content_part.added"] = "response.content_part.added"
    part: ContentPart


class ResponseContentPartDoneEvent(ContentRefEvent):
    """A content part of an output item is complete."""

    type: Literal["response.content_part.done"] = "response.content_part.done"
    part: ContentPart


# --- output streams (GA names) -------------------------------------------------------------


class _AudioDelta(ContentRefEvent):
    delta: str

    def audio_bytes(self) -> bytes:
        """Decode this chunk's base64 audio; raises :class:`~realtime.exceptions.ProtocolError`
        if it is not valid base64."""
        return decode_b64(self.delta, self.type)


class ResponseOutputAudioDeltaEvent(_AudioDelta):
    """A chunk of the model's audio (GA); ``delta`` is base64, see :meth:`audio_bytes`."""

    type: Literal["response.output_audio.delta"] = "response.output_audio.delta"


class ResponseOutputAudioDoneEvent(ContentRefEvent):
    """The model's audio for one content part is complete (GA)."""

    type: Literal["response.output_audio.done"] = "response.output_audio.done"


class ResponseOutputAudioTranscriptDeltaEvent(ContentRefEvent):
    """A piece of the transcript of the model's audio (GA)."""

    type: Literal["response.output_audio_transcript.delta"] = (
        "response.output_audio_transcript.delta"
    )
    delta: str


class ResponseOutputAudioTranscriptDoneEvent(ContentRefEvent):
    """The whole transcript of the model's audio for one content part (GA)."""

    type: Literal["response.output_audio_transcript.done"] = "response.output_audio_transcript.done"
    transcript: str


class ResponseOutputTextDeltaEvent(ContentRefEvent):
    """A piece of the model's text (GA)."""

    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    delta: str


class ResponseOutputTextDoneEvent(ContentRefEvent):
    """The model's whole text for one content part (GA)."""

    type: Literal["response.output_text.done"] = "response.output_text.done"
    text: str


# --- output streams (beta names) -----------------------------------------------------------


class ResponseAudioDeltaEvent(_AudioDelta):
    """A chunk of the model's audio (beta); ``delta`` is base64, see :meth:`audio_bytes`."""

    type: Literal["response.audio.delta"] = "response.audio.delta"


class ResponseAudioDoneEvent(ContentRefEvent):
    """The model's audio for one content part is complete (beta)."""

    type: Literal["response.audio.done"] = "response.audio.done"


class ResponseAudioTranscriptDeltaEvent(ContentRefEvent):
    """A piece of the transcript of the model's audio (beta)."""

    type: Literal["response.audio_transcript.delta"] = "response.audio_transcript.delta"
    delta: str


class ResponseAudioTranscriptDoneEvent(ContentRefEvent):
    """The whole transcript of the model's audio for one content part (beta)."""

    type: Literal["response.audio_transcript.done"] = "response.audio_transcript.done"
    transcript: str


class ResponseTextDeltaEvent(ContentRefEvent):
    """A piece of the model's text (beta)."""

    type: Literal["response.text.delta"] = "response.text.delta"
    delta: str


class ResponseTextDoneEvent(ContentRefEvent):
    """The model's whole text for one content part (beta)."""

    type: Literal["response.text.done"] = "response.text.done"
    text: str


# --- function calls ------------------------------------------------------------------------


class ResponseFunctionCallArgumentsDeltaEvent(OutputRefEvent):
    """A piece of a function call's JSON arguments."""

    type: Literal["response.function_call_arguments.delta"] = (
        "response.function_call_arguments.delta"
    )
    call_id: str
    delta: str


class BetaResponseFunctionCallArgumentsDoneEvent(OutputRefEvent):
    """A function call's complete JSON arguments (beta: without the function name)."""

    type: Literal["response.function_call_arguments.done"] = "response.function_call_arguments.done"
    call_id: str
    arguments: str


class ResponseFunctionCallArgumentsDoneEvent(OutputRefEvent):
    """A function call's complete JSON arguments and the function's ``name`` (GA)."""

    type: Literal["response.function_call_arguments.done"] = "response.function_call_arguments.done"
    call_id: str
    name: str
    arguments: str
