"""Echo handling for open speakers: a half-duplex gate and the echo-canceller hook.

With loudspeakers (no headphones) the microphone hears the assistant's own voice; sent to the
server, that echo triggers barge-in against itself. :class:`EchoGate` is the simple cure: it
wraps the microphone (any :class:`~audio.playback.AudioSource`) and the speaker (anything with
an ``is_playing`` property: :class:`~audio.speaker.Speaker`, :class:`~audio.files.FileSpeaker`,
:class:`~audio.files.NullSpeaker`) and drops each microphone chunk that arrives while the
speaker plays or within ``tail_ms`` (default 300 ms: room reverberation and output latency)
after it was last seen playing -- or, with ``mode="silence"``, replaces it with PCM16 silence of
the same length, so the server's audio timeline keeps pace with the wall clock. The cost is
that the user cannot interrupt by voice while the assistant speaks. Turn the gate off
(``enabled=False``, settable at any time) when the user wears headphones.

The full-duplex alternative is :class:`~audio.aec.EchoCanceller` (WebRTC's AEC3, the ``aec``
extra), which needs the *reference* signal -- the audio actually sent to the loudspeaker --
with its DAC times: sinks call every listener registered with
``add_reference_listener(listener, timed=True)`` as *listener(block, rate, dac_time)* (from the
audio thread for a sound card, so it must be quick and must not block).
``Microphone(speaker=speaker)`` wires it (``echo="auto"``: the canceller when it loads, else
this gate). :meth:`EchoGate.add_reference_listener` passes a listener through to the sink.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Literal, Protocol, runtime_checkable

from .exceptions import AudioError, AudioFormatError
from .playback import AudioSource, ReferenceListener, TimedReferenceListener

__all__ = ["EchoGate", "GateMode", "PlayingSink", "ReferenceSource"]

GateMode = Literal["drop", "silence"]


@runtime_checkable
class PlayingSink(Protocol):
    """Anything that says whether it is playing (every :class:`~audio.playback.AudioSink`)."""

    @property
    def is_playing(self) -> bool:
        """True while audio is being heard."""
        ...


@runtime_checkable
class ReferenceSource(Protocol):
    """A sink that can feed the playback reference to listeners."""

    def add_reference_listener(
        self, listener: ReferenceListener | TimedReferenceListener, *, timed: bool = False
    ) -> None:
        """Call *listener(block, rate)* (``timed``: *(block, rate, dac_time)*) per block."""
        ...

    def remove_reference_listener(
        self, listener: ReferenceListener | TimedReferenceListener
    ) -> None:
        """Stop calling *listener*."""
        ...


class EchoGate:
    """A half-duplex gate: microphone chunks are dropped while the speaker plays, plus a tail.

    ``EchoGate(source, sink, tail_ms=300.0, mode="drop", enabled=True)``. Iterate over it
    (``async for chunk in gate``) instead of over *source*. Counters: ``gated_chunks`` and
    ``passed_chunks``. ``time_source`` (default :func:`time.monotonic`) can be replaced for
    deterministic tests. Raises :class:`~audio.exceptions.AudioFormatError` for a negative
    tail or an unknown mode.
    """

    def __init__(
        self,
        source: AudioSource,
        sink: PlayingSink,
        tail_ms: float = 300.0,
        mode: GateMode = "drop",
        enabled: bool = True,
        *,
        time_source: Callable[[], float] = time.monotonic,
    ) -> None:
        if not tail_ms >= 0:
            raise AudioFormatError(f"tail_ms must be >= 0, got {tail_ms!r}")
        if mode not in ("drop", "silence"):
            raise AudioFormatError(f"mode must be 'drop' or 'silence', got {mode!r}")
        self.source = source
        self.sink = sink
        self.tail_ms = tail_ms
        self.mode: GateMode = mode
        self.enabled = enabled
        self._now = time_source
        self._last_playing: float | None = None
        self.gated_chunks = 0
        self.passed_chunks = 0

    @property
    def is_gating(self) -> bool:
        """True when the gate would drop a chunk arriving now (the speaker plays, or the tail)."""
        return self._should_gate(self._now())

    def _should_gate(self, now: float) -> bool:
        if self.sink.is_playing:
            self._last_playing = now
            return self.enabled
        if not self.enabled or self._last_playing is None:
            return False
        return (now - self._last_playing) * 1000.0 < self.tail_ms

    def __aiter__(self) -> AsyncIterator[bytes]:
        """Iterate over the source's chunks with the echo-prone ones removed or silenced."""
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self.source:
            if self._should_gate(self._now()):
                self.gated_chunks += 1
                if self.mode == "silence":
                    yield bytes(len(chunk))
                continue
            self.passed_chunks += 1
            yield chunk

    def _reference_sink(self) -> ReferenceSource:
        if not isinstance(self.sink, ReferenceSource):
            raise AudioError(
                f"{type(self.sink).__name__} does not provide a playback reference"
                " (no add_reference_listener)"
            )
        return self.sink

    def add_reference_listener(
        self, listener: ReferenceListener | TimedReferenceListener, *, timed: bool = False
    ) -> None:
        """Register an echo canceller's reference listener with the sink.

        Raises :class:`~audio.exceptions.AudioError` if the sink has no reference output.
        """
        self._reference_sink().add_reference_listener(listener, timed=timed)

    def remove_reference_listener(
        self, listener: ReferenceListener | TimedReferenceListener
    ) -> None:
        """Unregister a listener added with :meth:`add_reference_listener`."""
        self._reference_sink().remove_reference_listener(listener)
