"""Subtitle formatting (SRT and WebVTT) shared by the CLI and the local server."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["srt", "srt_cue", "timestamp", "vtt"]


def timestamp(seconds: float, sep: str = ",") -> str:
    """``HH:MM:SS,mmm`` (SRT, ``sep=","``) or ``HH:MM:SS.mmm`` (WebVTT, ``sep="."``)."""
    ms = round(max(0.0, seconds) * 1000)
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def srt_cue(n: int, start: float, end: float, text: str) -> str:
    """One numbered SRT cue, ending with its blank line."""
    return f"{n}\n{timestamp(start)} --> {timestamp(end)}\n{text}\n\n"


def srt(segments: Iterable[tuple[float, float, str]]) -> str:
    """An SRT document from ``(start, end, text)`` segments."""
    return "".join(srt_cue(n, a, b, t) for n, (a, b, t) in enumerate(segments, start=1))


def vtt(segments: Iterable[tuple[float, float, str]]) -> str:
    """A WebVTT document from ``(start, end, text)`` segments."""
    cues = [f"{timestamp(a, '.')} --> {timestamp(b, '.')}\n{t}\n" for a, b, t in segments]
    return "WEBVTT\n\n" + "\n".join(cues)
