"""Barge-in: what to send when the user starts speaking over the assistant (pure).

When ``input_audio_buffer.speech_started`` arrives while assistant audio is playing,
the session should

1. stop playback (``PlaybackTracker.interrupt()`` from :mod:`audio.playback`, which
   returns the :class:`~audio.playback.HeardPosition`),
2. send ``conversation.item.truncate`` with ``audio_end_ms`` = what the listener heard,
   clamped to the audio received, so the server forgets what was never heard,
3. send ``response.cancel`` only when the server will not cancel by itself (its
   ``turn_detection.interrupt_response`` is off or there is no server VAD) and a
   response is still active.

:func:`plan_interruption` makes that decision from plain values and returns the client
events; :class:`OutputAudioLog` keeps the values it needs (which item is receiving
audio, how much, and the clock value of its first delta, the fallback when no playback
tracker exists: with real-time playback, elapsed time approximates what was heard).
No clock is read here: the caller passes ``now`` (``time.monotonic()``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from realtime.conversation import b64_decoded_len
from realtime.events import (
    ClientEvent,
    ConversationItemTruncateEvent,
    ResponseAudioDeltaEvent,
    ResponseCancelEvent,
    ResponseOutputAudioDeltaEvent,
    ServerEvent,
)

if TYPE_CHECKING:
    from audio.playback import HeardPosition

__all__ = ["AudioProgress", "Interruption", "OutputAudioLog", "plan_interruption"]

_BYTES_PER_MS = {"pcm16": 48.0, "g711_ulaw": 8.0, "g711_alaw": 8.0}
_AUDIO_DELTAS = frozenset({"response.audio.delta", "response.output_audio.delta"})
_FORGET_LIMIT = 64


_DELTA_TYPES = (ResponseAudioDeltaEvent, ResponseOutputAudioDeltaEvent)


@dataclass
class AudioProgress:
    """Audio received for one (item, content part): amount and first-delta clock value."""

    item_id: str
    content_index: int = 0
    received_ms: float = 0.0
    first_delta_at: float | None = None
    response_id: str | None = None


@dataclass(frozen=True)
class Interruption:
    """The decision :func:`plan_interruption` took, with the events to send in order.

    ``audio_end_ms`` is the truncation point (``None`` when no truncate is sent),
    ``heard_ms`` what was estimated as heard (``None`` when unknown), ``cancel`` whether
    a ``response.cancel`` is among ``events``.
    """

    events: list[ClientEvent] = field(default_factory=list)
    item_id: str | None = None
    content_index: int = 0
    audio_end_ms: int | None = None
    heard_ms: float | None = None
    received_ms: float = 0.0
    cancel: bool = False


def plan_interruption(
    playing: AudioProgress | None,
    *,
    heard: HeardPosition | None = None,
    now: float | None = None,
    server_cancels: bool,
    response_active: bool,
    response_id: str | None = None,
) -> Interruption:
    """Decide what to send for a barge-in.

    ``playing``: the assistant audio received last (from :class:`OutputAudioLog`).
    ``heard``: the playback tracker's answer to ``interrupt()`` when there is a
    tracker (``None`` from it means nothing was playing: no truncate). Without a
    tracker pass ``heard=None`` and ``now`` (same clock as the log): the time elapsed
    since the first delta stands for what was heard. With neither, nothing is known and
    no truncate is sent.

    ``server_cancels``: the server cancels the response itself (server VAD with
    ``interrupt_response``). ``response_active``: a response is still in progress
    (``response_id`` names it in the cancel when given).

    The truncate is skipped when nothing was heard, and when everything received was
    heard and the response is over (the item holds nothing unheard). Returns an
    :class:`Interruption`; never raises.
    """
    events: list[ClientEvent] = []
    item_id: str | None = None
    content_index = 0
    received = 0.0
    heard_ms: float | None = None

    if heard is not None:
        item_id, content_index, heard_ms = heard.item_id, heard.content_index, heard.played_ms
        if playing is not None and (playing.item_id, playing.content_index) == (
            item_id,
            content_index,
        ):
            received = playing.received_ms
        else:
            received = max(heard_ms, 0.0)  # a tracker only plays what was received
    elif playing is not None and now is not None and playing.first_delta_at is not None:
        item_id, content_index = playing.item_id, playing.content_index
        received = playing.received_ms
        heard_ms = max(0.0, now - playing.first_delta_at) * 1000.0

    audio_end_ms: int | None = None
    if item_id is not None and heard_ms is not None:
        end = round(min(max(heard_ms, 0.0), received))
        everything = end >= received and not response_active
        if end > 0 and not everything:
            audio_end_ms = end
            events.append(
                ConversationItemTruncateEvent(
                    item_id=item_id, content_index=content_index, audio_end_ms=end
                )
            )

    cancel = response_active and not server_cancels
    if cancel:
        events.append(
            ResponseCancelEvent(response_id=response_id) if response_id else ResponseCancelEvent()
        )
    return Interruption(
        events=events,
        item_id=item_id,
        content_index=content_index,
        audio_end_ms=audio_end_ms,
        heard_ms=heard_ms,
        received_ms=received,
        cancel=cancel,
    )


class OutputAudioLog:
    """Which assistant audio was received last, how much, and since when.

    Feed it every server event with the current clock value (:meth:`apply`); it reads
    only the audio deltas. After an interruption call :meth:`interrupted` so the
    in-flight deltas of that item are ignored. ``audio_format`` is the output format.
    """

    def __init__(self, audio_format: str = "pcm16") -> None:
        if audio_format not in _BYTES_PER_MS:
            raise ValueError(f"unknown audio format {audio_format!r}")
        self._bytes_per_ms = _BYTES_PER_MS[audio_format]
        self._current: AudioProgress | None = None
        self._bytes = 0
        self._ignored: OrderedDict[str, None] = OrderedDict()

    @property
    def current(self) -> AudioProgress | None:
        """The (item, part) that received audio last, or ``None``."""
        return self._current

    def apply(self, event: ServerEvent, now: float) -> None:
        """Account for an audio delta (beta ``response.audio.delta`` or GA equivalent)."""
        if not isinstance(event, _DELTA_TYPES):
            return  # not an audio delta, or an untyped one (no validated fields)
        item_id, delta, index = event.item_id, event.delta, event.content_index
        if item_id in self._ignored:
            return
        cur = self._current
        if cur is None or cur.item_id != item_id or cur.content_index != index:
            cur = self._current = AudioProgress(item_id, index, 0.0, now, event.response_id)
            self._bytes = 0
        self._bytes += b64_decoded_len(delta)
        cur.received_ms = self._bytes / self._bytes_per_ms

    def interrupted(self, item_id: str | None = None) -> None:
        """Forget the current audio and ignore later deltas of ``item_id`` (default: current)."""
        target = item_id if item_id is not None else (self._current and self._current.item_id)
        if target:
            self._ignored[target] = None
            if len(self._ignored) > _FORGET_LIMIT:
                self._ignored.popitem(last=False)
        if self._current is not None and (item_id is None or self._current.item_id == item_id):
            self._current = None
            self._bytes = 0

    def reset(self) -> None:
        """Forget everything (new session)."""
        self._current = None
        self._bytes = 0
        self._ignored.clear()
