"""The interfaces shared by every audio source and sink.

A *source* (microphone, file microphone) is an async iterator of PCM16 chunks at the
session rate. A *sink* (speaker, file speaker, null speaker) takes PCM16 tagged with the
``(item_id, content_index)`` it belongs to and reports what the listener has *heard*: the
playback tracker a realtime session needs to truncate an interrupted reply correctly.

These are structural protocols: any object with the same methods qualifies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = [
    "AudioSink",
    "AudioSource",
    "HeardPosition",
    "PlaybackTracker",
    "ReferenceListener",
    "TimedReferenceListener",
]


class HeardPosition(NamedTuple):
    """Where playback stood: the item, its content part, and the milliseconds heard of it."""

    item_id: str
    content_index: int
    played_ms: float


ReferenceListener = Callable[[npt.NDArray[np.float32], int], None]
"""Receives each block of audio as it is sent to the device (float32 mono, device rate).

Used to feed an external echo canceller with the playback reference signal. It is called
from the audio thread: it must be quick and must not block.
"""

TimedReferenceListener = Callable[[npt.NDArray[np.float32], int, float], None]
"""Like :data:`ReferenceListener`, plus the block's DAC time: ``listener(block, rate, dac_time)``.

*dac_time* (seconds) is when the block's first frame reaches the converter, on the output
stream's clock (PortAudio's ``outputBufferDacTime``; for the file and null speakers, their
play clock). Register with ``add_reference_listener(listener, timed=True)``.
"""


@runtime_checkable
class PlaybackTracker(Protocol):
    """What a realtime session needs from playback to handle barge-in."""

    def played_ms(self, item_id: str, content_index: int = 0) -> float:
        """Milliseconds of this item's audio the listener has heard (output time passed)."""
        ...

    def interrupt(self) -> HeardPosition | None:
        """Stop playback now (short fade), drop the queue, ignore later audio of that item.

        Returns the heard position of the item that was playing, or ``None`` when nothing was.
        """
        ...


@runtime_checkable
class AudioSink(PlaybackTracker, Protocol):
    """A speaker-like sink: enqueue tagged PCM16 (24 kHz mono by default) and track playback."""

    def enqueue(self, pcm16: bytes, item_id: str, content_index: int = 0) -> None:
        """Queue audio for playback; audio of an interrupted item is ignored."""
        ...

    def clear(self) -> None:
        """Drop everything queued without marking any item interrupted."""
        ...

    @property
    def is_playing(self) -> bool:
        """True while queued audio has not yet all been heard."""
        ...

    async def drained(self) -> None:
        """Return once everything queued so far has been heard."""
        ...


@runtime_checkable
class AudioSource(Protocol):
    """A microphone-like source: ``async for chunk in source`` yields PCM16 chunks."""

    def __aiter__(self) -> AsyncIterator[bytes]:
        """Iterate over fixed-size PCM16 chunks at the session rate."""
        ...
