"""The input audio buffer: appending, committing and clearing audio, and the server's
voice-activity events.

Audio travels as base64 text; :meth:`InputAudioBufferAppendEvent.from_pcm` encodes
raw bytes and :meth:`~InputAudioBufferAppendEvent.audio_bytes` decodes them back.
"""

from __future__ import annotations

import base64
from typing import Literal

from ._support import decode_b64
from .base import ClientEvent, Int, ItemRefEvent, ServerEvent

__all__ = [
    "BetaInputAudioBufferCommittedEvent",
    "InputAudioBufferAppendEvent",
    "InputAudioBufferClearEvent",
    "InputAudioBufferClearedEvent",
    "InputAudioBufferCommitEvent",
    "InputAudioBufferCommittedEvent",
    "InputAudioBufferDtmfEventReceivedEvent",
    "InputAudioBufferSpeechStartedEvent",
    "InputAudioBufferSpeechStoppedEvent",
    "InputAudioBufferTimeoutTriggeredEvent",
]


class InputAudioBufferAppendEvent(ClientEvent):
    """Append audio (base64 in ``audio``) to the input buffer."""

    type: Literal["input_audio_buffer.append"] = "input_audio_buffer.append"
    audio: str

    @classmethod
    def from_pcm(cls, pcm: bytes, event_id: str | None = None) -> InputAudioBufferAppendEvent:
        """Build the event from raw audio bytes in the session's input format."""
        audio = base64.b64encode(pcm).decode("ascii")
        if event_id is None:
            return cls(audio=audio)
        return cls(audio=audio, event_id=event_id)

    def audio_bytes(self) -> bytes:
        """Decode the base64 audio; raises :class:`~realtime.exceptions.ProtocolError`
        if it is not valid base64."""
        return decode_b64(self.audio, self.type)


class InputAudioBufferClearEvent(ClientEvent):
    """Discard the audio in the input buffer."""

    type: Literal["input_audio_buffer.clear"] = "input_audio_buffer.clear"


class InputAudioBufferCommitEvent(ClientEvent):
    """Turn the buffered audio into a user message item (without server VAD)."""

    type: Literal["input_audio_buffer.commit"] = "input_audio_buffer.commit"


class InputAudioBufferClearedEvent(ServerEvent):
    """The input buffer was cleared."""

    type: Literal["input_audio_buffer.cleared"] = "input_audio_buffer.cleared"


class BetaInputAudioBufferCommittedEvent(ItemRefEvent):
    """The input buffer became the user message ``item_id`` (beta shape)."""

    type: Literal["input_audio_buffer.committed"] = "input_audio_buffer.committed"
    # Required by the beta spec; servers send null for the first item.
    previous_item_id: str | None


class InputAudioBufferCommittedEvent(ItemRefEvent):
    """The input buffer became the user message ``item_id`` (GA shape)."""

    type: Literal["input_audio_buffer.committed"] = "input_audio_buffer.committed"
    previous_item_id: str | None = None


class InputAudioBufferSpeechStartedEvent(ItemRefEvent):
    """Server VAD heard speech start at ``audio_start_ms`` into the buffer."""

    type: Literal["input_audio_buffer.speech_started"] = "input_audio_buffer.speech_started"
    audio_start_ms: Int


class InputAudioBufferSpeechStoppedEvent(ItemRefEvent):
    """Server VAD heard speech stop at ``audio_end_ms`` into the buffer."""

    type: Literal["input_audio_buffer.speech_stopped"] = "input_audio_buffer.speech_stopped"
    audio_end_ms: Int


class InputAudioBufferTimeoutTriggeredEvent(ItemRefEvent):
    """The VAD idle timeout fired: nothing was said for a while (GA)."""

    type: Literal["input_audio_buffer.timeout_triggered"] = "input_audio_buffer.timeout_triggered"
    audio_start_ms: Int
    audio_end_ms: Int


class InputAudioBufferDtmfEventReceivedEvent(ServerEvent):
    """A telephone keypad press arrived over SIP (GA); ``event`` is the key."""

    type: Literal["input_audio_buffer.dtmf_event_received"] = (
        "input_audio_buffer.dtmf_event_received"
    )
    event: str
    received_at: Int
