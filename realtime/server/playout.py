"""The server side of a WebRTC call's output audio buffer: what the remote peer hears.

Over WebRTC the reply audio is not sent as ``response.output_audio.delta`` events: the server
plays it into the call's outgoing track in real time, and reports playback itself with
``output_audio_buffer.started`` / ``.stopped`` / ``.cleared``. :class:`OutputAudioBuffer` is
that state, with no I/O and no clock: the session pushes synthesized PCM tagged with its
response and item; the track pulls fixed frames (20 ms) at the pace it plays them; each call
returns the events to send. It also knows how much of the current item was actually played,
so that an interruption truncates the conversation to what the user heard.

The buffer holds at most ``max_bytes`` of audio (default 5 minutes at 24 kHz PCM16); audio
pushed beyond that is dropped (and counted in ``dropped_bytes``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

__all__ = ["BYTES_PER_MS", "OutputAudioBuffer", "PlayedAudio"]

BYTES_PER_MS = 48  # PCM16 mono at 24 kHz
_MAX_FINISHED = 16


@dataclass(frozen=True)
class PlayedAudio:
    """How much of an assistant item the peer heard before a clear."""

    response_id: str
    item_id: str
    audio_end_ms: int


@dataclass
class _Chunk:
    response_id: str
    item_id: str
    data: memoryview


class OutputAudioBuffer:
    """Reply audio waiting to be played on a call (see the module docstring)."""

    def __init__(self, max_bytes: int = 5 * 60 * 1000 * BYTES_PER_MS) -> None:
        self.max_bytes = max_bytes
        self.dropped_bytes = 0
        self._chunks: deque[_Chunk] = deque()
        self._queued = 0
        self._finished: deque[str] = deque(maxlen=_MAX_FINISHED)
        self._cleared: deque[str] = deque(maxlen=_MAX_FINISHED)
        self.playing: str | None = None  # response whose audio is being played
        self._item: str | None = None  # item whose audio is being played
        self._item_played = 0  # bytes of that item played

    @property
    def queued_bytes(self) -> int:
        """Audio waiting to be played, in bytes."""
        return self._queued

    @property
    def active(self) -> bool:
        """True while a response's audio is playing or waiting to play."""
        return self.playing is not None or bool(self._chunks)

    def push(self, response_id: str, item_id: str, pcm: bytes) -> bool:
        """Queue a response's audio; False (and counted as dropped) when the buffer is full."""
        if not pcm or response_id in self._cleared:
            return True
        if self._queued + len(pcm) > self.max_bytes:
            self.dropped_bytes += len(pcm)
            return False
        self._chunks.append(_Chunk(response_id, item_id, memoryview(bytes(pcm))))
        self._queued += len(pcm)
        return True

    def finish(self, response_id: str) -> list[dict[str, Any]]:
        """All of this response's audio has been pushed (its ``response.done``)."""
        if response_id not in self._finished:
            self._finished.append(response_id)
        return self._maybe_stopped()

    def pull(self, nbytes: int) -> tuple[bytes, list[dict[str, Any]]]:
        """The next ``nbytes`` to play (silence-padded) and the events playing them causes."""
        events: list[dict[str, Any]] = []
        out = bytearray()
        while len(out) < nbytes and self._chunks:
            chunk = self._chunks[0]
            if chunk.response_id != self.playing:
                if self.playing is not None:
                    events.append(_event("output_audio_buffer.stopped", self.playing))
                self.playing = chunk.response_id
                events.append(_event("output_audio_buffer.started", chunk.response_id))
            if chunk.item_id != self._item:
                self._item, self._item_played = chunk.item_id, 0
            take = min(nbytes - len(out), len(chunk.data))
            out += chunk.data[:take]
            self._item_played += take
            self._queued -= take
            if take == len(chunk.data):
                self._chunks.popleft()
            else:
                chunk.data = chunk.data[take:]
        events += self._maybe_stopped()
        if len(out) < nbytes:
            out += bytes(nbytes - len(out))
        return bytes(out), events

    def clear(self, *, always: bool = True) -> tuple[list[dict[str, Any]], PlayedAudio | None]:
        """Drop the queued audio: ``output_audio_buffer.cleared`` and what was heard.

        With ``always=False`` nothing is reported when nothing was playing (an interruption
        by new speech while the assistant is silent).
        """
        response_id = self.playing or (self._chunks[0].response_id if self._chunks else None)
        if response_id is None and not always:
            return [], None
        played: PlayedAudio | None = None
        if self.playing is not None and self._item is not None:
            played = PlayedAudio(self.playing, self._item, self._item_played // BYTES_PER_MS)
        if response_id is not None:
            self.discard(response_id)
        self._chunks.clear()
        self._queued = 0
        self.playing = None
        self._item, self._item_played = None, 0
        return [_event("output_audio_buffer.cleared", response_id)], played

    def discard(self, response_id: str) -> None:
        """Drop any audio of this response still to come (it was cleared or cancelled)."""
        if response_id not in self._cleared:
            self._cleared.append(response_id)

    def _maybe_stopped(self) -> list[dict[str, Any]]:
        if self.playing is not None and not self._chunks and self.playing in self._finished:
            rid, self.playing = self.playing, None
            self._item, self._item_played = None, 0
            return [_event("output_audio_buffer.stopped", rid)]
        return []


def _event(kind: str, response_id: str | None) -> dict[str, Any]:
    return {"type": kind, "response_id": response_id}
