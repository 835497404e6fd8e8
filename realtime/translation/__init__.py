"""Realtime translation sessions: live speech-to-speech interpretation.

A translation session is a protocol of its own (``/v1/realtime/translations``, see
:mod:`realtime.events.translation`), so it has its own entry point beside
:func:`realtime.connect`: :func:`connect_translation`.

- :mod:`.pacing`: :class:`FramePacer`, the pure, clock-free 200 ms frame cadence (silence
  while the caller has nothing to say);
- :mod:`.transcript`: :class:`TranslationTranscript`, both transcripts in order, and bilingual
  subtitle cues;
- :mod:`.session`: :class:`TranslationClient` and :func:`connect_translation`, the asyncio shell.
"""

from __future__ import annotations

from .pacing import FramePacer, PacedFrame
from .session import (
    DEFAULT_TRANSLATION_MODEL,
    TranslationClient,
    connect_translation,
    translation_endpoint,
)
from .transcript import Cue, TranscriptDelta, TranslationTranscript

__all__ = [
    "DEFAULT_TRANSLATION_MODEL",
    "Cue",
    "FramePacer",
    "PacedFrame",
    "TranscriptDelta",
    "TranslationClient",
    "TranslationTranscript",
    "connect_translation",
    "translation_endpoint",
]
