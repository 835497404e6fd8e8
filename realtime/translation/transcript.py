"""Both transcripts of a translation session, accumulated in order (pure).

:class:`TranslationTranscript` is fed the session's server events and keeps the source text
(``session.input_transcript.delta``) and the translated text
(``session.output_transcript.delta``) exactly as streamed: deltas are append-only fragments
joined without added spaces. Each delta is also kept with its position (``elapsed_ms``, or
the arrival time the shell passes when the server sends none), so :meth:`cues` can pair source
and translation into bilingual subtitle cues.

Cues: each side is cut into sentences (after ``.``, ``?``, ``!``, ``…`` and their CJK forms,
or where ``gap_ms`` passes between two deltas); the n-th source sentence is paired with the
n-th translated sentence (a sentence without a partner gets a cue of its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from realtime.events import (
    ServerEvent,
    TranslationInputTranscriptDeltaEvent,
    TranslationOutputTranscriptDeltaEvent,
)

__all__ = ["Cue", "TranscriptDelta", "TranslationTranscript"]

Side = Literal["input", "output"]

_ENDS = (".", "?", "!", "…", "\u3002", "\uff1f", "\uff01")  # and the CJK full stop, ? and !


@dataclass(frozen=True)
class TranscriptDelta:
    """One received fragment: which side, its text and where it sits (milliseconds)."""

    side: Side
    text: str
    ms: float


@dataclass(frozen=True)
class Cue:
    """A bilingual subtitle cue (seconds)."""

    start: float
    end: float
    source: str
    target: str

    @property
    def text(self) -> str:
        """Source line, then translation line (either omitted when empty)."""
        return "\n".join(line for line in (self.source, self.target) if line)


@dataclass
class _Sentence:
    text: str
    start: float
    end: float


class TranslationTranscript:
    """The source and translated transcripts of one session (see the module docstring).

    ``max_deltas`` bounds the kept deltas (the oldest go first; the texts stay whole).
    """

    def __init__(self, *, max_deltas: int = 100_000) -> None:
        self._input: list[str] = []
        self._output: list[str] = []
        self._deltas: list[TranscriptDelta] = []
        self._max = max_deltas

    @property
    def input_text(self) -> str:
        """The source-language transcript so far."""
        return "".join(self._input)

    @property
    def output_text(self) -> str:
        """The translated transcript so far."""
        return "".join(self._output)

    @property
    def deltas(self) -> tuple[TranscriptDelta, ...]:
        """Every kept delta of both sides, in arrival order."""
        return tuple(self._deltas)

    def feed(self, event: ServerEvent, arrival_ms: float = 0.0) -> TranscriptDelta | None:
        """Take one server event; returns the delta it carried (None for other events).

        ``arrival_ms`` places a delta whose ``elapsed_ms`` is null.
        """
        side: Side
        if isinstance(event, TranslationInputTranscriptDeltaEvent):
            side, parts = "input", self._input
        elif isinstance(event, TranslationOutputTranscriptDeltaEvent):
            side, parts = "output", self._output
        else:
            return None
        parts.append(event.delta)
        ms = float(event.elapsed_ms) if event.elapsed_ms is not None else arrival_ms
        delta = TranscriptDelta(side, event.delta, ms)
        self._deltas.append(delta)
        if len(self._deltas) > self._max:
            del self._deltas[: len(self._deltas) - self._max]
        return delta

    def _sentences(self, side: Side, gap_ms: float) -> list[_Sentence]:
        out: list[_Sentence] = []
        cur: _Sentence | None = None
        for d in self._deltas:
            if d.side != side:
                continue
            if cur is not None and d.ms - cur.end >= gap_ms and cur.text.strip():
                out.append(cur)
                cur = None
            if cur is None:
                cur = _Sentence(d.text, d.ms, d.ms)
            else:
                cur.text += d.text
                cur.end = max(cur.end, d.ms)
            if cur.text.rstrip().endswith(_ENDS):
                out.append(cur)
                cur = None
        if cur is not None and cur.text.strip():
            out.append(cur)
        return out

    def cues(self, *, gap_ms: float = 1000.0, min_duration: float = 1.0) -> list[Cue]:
        """Bilingual cues, source sentence paired with translated sentence, in order."""
        src = self._sentences("input", gap_ms)
        dst = self._sentences("output", gap_ms)
        n = max(len(src), len(dst))
        if n == 0:
            return []
        cues: list[Cue] = []
        for i in range(n):
            a = src[i] if i < len(src) else None
            b = dst[i] if i < len(dst) else None
            times = [s for s in (a, b) if s is not None]
            start = min(s.start for s in times) / 1000
            end = max(s.end for s in times) / 1000
            cues.append(
                Cue(
                    start,
                    max(end, start + min_duration),
                    a.text.strip() if a else "",
                    b.text.strip() if b else "",
                )
            )
        # cues stay in order and never overlap
        fixed: list[Cue] = []
        for cue in cues:
            if fixed and cue.start < fixed[-1].end:
                prev = fixed[-1]
                start = max(cue.start, prev.start)
                fixed[-1] = Cue(
                    prev.start, max(start, prev.start + 0.001), prev.source, prev.target
                )
                cue = Cue(start, max(cue.end, start + 0.001), cue.source, cue.target)
            fixed.append(cue)
        return fixed
