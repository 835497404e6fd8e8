"""The output audio buffer of WebRTC/SIP sessions (GA): started, stopped, cleared."""

from __future__ import annotations

from typing import Literal

from .base import ClientEvent, ResponseRefEvent

__all__ = [
    "OutputAudioBufferClearEvent",
    "OutputAudioBufferClearedEvent",
    "OutputAudioBufferStartedEvent",
    "OutputAudioBufferStoppedEvent",
]


class OutputAudioBufferClearEvent(ClientEvent):
    """Stop the audio the server is playing out (GA)."""

    type: Literal["output_audio_buffer.clear"] = "output_audio_buffer.clear"


class OutputAudioBufferStartedEvent(ResponseRefEvent):
    """The server started playing a response's audio (GA)."""

    type: Literal["output_audio_buffer.started"] = "output_audio_buffer.started"


class OutputAudioBufferStoppedEvent(ResponseRefEvent):
    """The server finished playing a response's audio (GA)."""

    type: Literal["output_audio_buffer.stopped"] = "output_audio_buffer.stopped"


class OutputAudioBufferClearedEvent(ResponseRefEvent):
    """The output audio buffer was cleared (GA)."""

    type: Literal["output_audio_buffer.cleared"] = "output_audio_buffer.cleared"
