"""REST audio over httpx: transcription, translation, streamed speech, ephemeral keys.

Start with :class:`AsyncAudioClient` (or the blocking :class:`AudioClient`):
``transcribe`` / ``transcribe_stream`` / ``translate`` upload audio (streamed from
disk), ``speak`` returns a :class:`SpeechStream` of audio bytes as they arrive
(:func:`play` feeds a speaker with it), and ``create_client_secret`` /
``create_realtime_session`` / ``create_transcription_session`` mint an
:class:`EphemeralKey` for a realtime session. Failures raise
:class:`~realtime.exceptions.APIError`; bad arguments raise
:class:`~realtime.exceptions.ConfigError`.
"""

from __future__ import annotations

from realtime.rest._http import AzureConfig, RetryPolicy
from realtime.rest.client import AsyncAudioClient, AudioClient, TranscribeOptions
from realtime.rest.models import (
    ClientSecretResponse,
    DiarizedSegment,
    Language,
    Logprob,
    RealtimeSessionResponse,
    SpeechAudioDeltaEvent,
    SpeechAudioDoneEvent,
    SpeechEvent,
    SpeechUsage,
    TranscriptEvent,
    Transcription,
    TranscriptionDiarized,
    TranscriptionSegment,
    TranscriptionSessionResponse,
    TranscriptionVerbose,
    TranscriptionWord,
    TranscriptTextDeltaEvent,
    TranscriptTextDoneEvent,
    TranscriptTextSegmentEvent,
    Translation,
    TranslationVerbose,
    UnknownStreamEvent,
    UsageDuration,
    UsageTokens,
)
from realtime.rest.multipart import AudioInput
from realtime.rest.secrets import EphemeralKey
from realtime.rest.speech import PlaybackReport, SpeechStream, play, split_speech
from realtime.rest.sse import SSEDecoder, SSEEvent
from realtime.rest.transcription import TranscriptStream

__all__ = [
    "AsyncAudioClient",
    "AudioClient",
    "AudioInput",
    "AzureConfig",
    "ClientSecretResponse",
    "DiarizedSegment",
    "EphemeralKey",
    "Language",
    "Logprob",
    "PlaybackReport",
    "RealtimeSessionResponse",
    "RetryPolicy",
    "SSEDecoder",
    "SSEEvent",
    "SpeechAudioDeltaEvent",
    "SpeechAudioDoneEvent",
    "SpeechEvent",
    "SpeechStream",
    "SpeechUsage",
    "TranscribeOptions",
    "TranscriptEvent",
    "TranscriptStream",
    "TranscriptTextDeltaEvent",
    "TranscriptTextDoneEvent",
    "TranscriptTextSegmentEvent",
    "Transcription",
    "TranscriptionDiarized",
    "TranscriptionSegment",
    "TranscriptionSessionResponse",
    "TranscriptionVerbose",
    "TranscriptionWord",
    "Translation",
    "TranslationVerbose",
    "UnknownStreamEvent",
    "UsageDuration",
    "UsageTokens",
    "play",
    "split_speech",
]
