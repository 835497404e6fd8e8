"""Transcription of the user's input audio: deltas, completion, failure, segments."""

from __future__ import annotations

from typing import Literal

from .base import Float, Int, ItemRefEvent, Model
from .common import LogProb, TranscriptionLanguage, TranscriptionUsage

__all__ = [
    "BetaConversationItemInputAudioTranscriptionCompletedEvent",
    "ConversationItemInputAudioTranscriptionCompletedEvent",
    "ConversationItemInputAudioTranscriptionDeltaEvent",
    "ConversationItemInputAudioTranscriptionFailedEvent",
    "ConversationItemInputAudioTranscriptionSegmentEvent",
    "TranscriptionError",
]


class BetaConversationItemInputAudioTranscriptionCompletedEvent(ItemRefEvent):
    """The transcript of a user audio item (beta shape)."""

    type: Literal["conversation.item.input_audio_transcription.completed"] = (
        "conversation.item.input_audio_transcription.completed"
    )
    content_index: Int
    transcript: str
    logprobs: list[LogProb] | None = None


class ConversationItemInputAudioTranscriptionCompletedEvent(ItemRefEvent):
    """The transcript of a user audio item, with usage (GA shape)."""

    type: Literal["conversation.item.input_audio_transcription.completed"] = (
        "conversation.item.input_audio_transcription.completed"
    )
    content_index: Int
    transcript: str
    languages: list[TranscriptionLanguage] | None = None
    logprobs: list[LogProb] | None = None
    usage: TranscriptionUsage


class ConversationItemInputAudioTranscriptionDeltaEvent(ItemRefEvent):
    """A piece of the transcript of a user audio item."""

    type: Literal["conversation.item.input_audio_transcription.delta"] = (
        "conversation.item.input_audio_transcription.delta"
    )
    content_index: Int | None = None
    delta: str | None = None
    logprobs: list[LogProb] | None = None


class TranscriptionError(Model):
    """Why transcribing an input audio item failed."""

    type: str | None = None
    code: str | None = None
    message: str | None = None
    param: str | None = None


class ConversationItemInputAudioTranscriptionFailedEvent(ItemRefEvent):
    """Transcribing a user audio item failed."""

    type: Literal["conversation.item.input_audio_transcription.failed"] = (
        "conversation.item.input_audio_transcription.failed"
    )
    content_index: Int
    error: TranscriptionError


class ConversationItemInputAudioTranscriptionSegmentEvent(ItemRefEvent):
    """A diarized segment of a user audio item's transcript (GA)."""

    type: Literal["conversation.item.input_audio_transcription.segment"] = (
        "conversation.item.input_audio_transcription.segment"
    )
    content_index: Int
    text: str
    id: str
    speaker: str
    start: Float
    end: Float
