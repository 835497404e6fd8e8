"""The engines a local server shares across its sessions: VAD, speech-to-text, text-to-speech.

Each engine loads once, on first use, in a worker thread (so the event loop never waits on a
model load), and is then shared by every session. Speech recognition and synthesis run in
worker threads; one lock per engine keeps a model from being used by two threads at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from audio.vad import SileroVad, SpeechStarted, StreamingVad, load_silero_vad

from .stt import SttEngine, TranscriptResult, load_stt
from .tts import SentenceBuffer, TtsEngine, load_tts

__all__ = ["EngineSet", "VadEvent", "VadStream"]


@dataclass(frozen=True)
class VadEvent:
    """A turn-detection event on the session's input audio timeline."""

    kind: str  # "started" | "stopped"
    ms: int  # audio_start_ms (with the prefix padding) / audio_end_ms (with the silence)
    speech_ms: int  # where the speech itself starts / ends


class VadStream:
    """Silero VAD for one session's input stream, positioned on the session timeline."""

    def __init__(self, vad: StreamingVad, start_ms: float) -> None:
        self._vad = vad
        self._offset = int(start_ms)

    def process(self, pcm16: bytes) -> list[VadEvent]:
        """Feed PCM16 24 kHz audio; returns started/stopped events in session milliseconds."""
        out = []
        for ev in self._vad.feed(pcm16):
            if isinstance(ev, SpeechStarted):
                out.append(
                    VadEvent(
                        "started",
                        self._offset + ev.audio_start_ms,
                        self._offset + ev.speech_start_ms,
                    )
                )
            else:
                out.append(
                    VadEvent(
                        "stopped", self._offset + ev.audio_end_ms, self._offset + ev.speech_end_ms
                    )
                )
        return out

    @property
    def silence_ms(self) -> int:
        """While speech is in progress: milliseconds of silence since it last spoke (else 0)."""
        return self._vad.silence_ms


class EngineSet:
    """Shared engines with lazy, thread-safe loading.

    ``stt`` / ``tts`` name the engines (``"auto"`` picks the best installed one and falls back
    to the lighter one); ``stt_model`` points at another CTranslate2 Whisper model folder.
    """

    def __init__(
        self,
        *,
        stt: str = "auto",
        tts: str = "auto",
        stt_model: str | None = None,
        tts_voice: str | None = None,
    ) -> None:
        self.stt_name = stt
        self.tts_name = tts
        self.stt_model = stt_model
        self.tts_voice = tts_voice
        self._lock = threading.Lock()
        self._stt_lock = threading.Lock()
        self._tts_lock = threading.Lock()
        self._vad_model: SileroVad | None = None
        self._stt: SttEngine | None = None
        self._tts: TtsEngine | None = None

    # -- loading ------------------------------------------------------------------------
    def vad_model(self) -> SileroVad:
        """The shared Silero model (loaded on first use)."""
        with self._lock:
            if self._vad_model is None:
                self._vad_model = load_silero_vad()
            return self._vad_model

    def stt_engine(self) -> SttEngine:
        """The shared speech-to-text engine (loaded on first use)."""
        with self._lock:
            if self._stt is None:
                self._stt = load_stt(self.stt_name, model_path=self.stt_model)
            return self._stt

    def loaded_stt(self) -> SttEngine | None:
        """The speech-to-text engine if it is already loaded (never blocks on a load)."""
        return self._stt

    def tts_engine(self) -> TtsEngine:
        """The shared text-to-speech engine (loaded on first use)."""
        with self._lock:
            if self._tts is None:
                self._tts = load_tts(self.tts_name, voice=self.tts_voice)
            return self._tts

    async def warm_up(self) -> None:
        """Load every engine now (in a worker thread) instead of on first use."""
        await asyncio.to_thread(self.vad_model)
        await asyncio.to_thread(self.stt_engine)
        await asyncio.to_thread(self.tts_engine)

    # -- use ----------------------------------------------------------------------------
    def vad(
        self,
        *,
        threshold: float,
        prefix_padding_ms: int,
        silence_duration_ms: int,
        start_ms: float = 0.0,
    ) -> VadStream:
        """A VAD stream for one session, starting at ``start_ms`` of its input timeline."""
        stream = StreamingVad(
            self.vad_model(),
            threshold=threshold,
            prefix_padding_ms=prefix_padding_ms,
            silence_duration_ms=silence_duration_ms,
        )
        return VadStream(stream, start_ms)

    async def transcribe(self, pcm16: bytes, options: Mapping[str, Any] | None = None) -> str:
        """Transcribe PCM16 24 kHz audio (``options``: the session's transcription config)."""
        opts = options or {}
        result = await self.transcribe_detailed(
            pcm16, language=opts.get("language") or None, prompt=opts.get("prompt") or None
        )
        return result.text.strip()

    async def transcribe_detailed(
        self, pcm16: bytes, *, language: str | None = None, prompt: str | None = None
    ) -> TranscriptResult:
        """Transcribe PCM16 24 kHz audio, with segments and timings."""

        def work() -> TranscriptResult:
            engine = self.stt_engine()
            with self._stt_lock:
                return engine.transcribe(pcm16, language=language, prompt=prompt)

        return await asyncio.to_thread(work)

    async def synthesize(self, text: str, *, voice: str, speed: float = 1.0) -> bytes:
        """Speak ``text`` as PCM16 24 kHz."""

        def work() -> bytes:
            engine = self.tts_engine()
            with self._tts_lock:
                return engine.synthesize(text, voice=voice, speed=speed)

        return await asyncio.to_thread(work)

    def sentence_buffer(self) -> SentenceBuffer:
        """A buffer turning streamed text deltas into complete sentences."""
        return SentenceBuffer()
