"""The engines a local server shares across its sessions: VAD, speech-to-text, text-to-speech.

Each engine loads once, on first use, in a worker thread (so the event loop never waits on a
model load), and is then shared by every session; each has its own load lock, and none is
taken once it is loaded. Speech recognition and synthesis run in worker threads (the engines
serialise their own model use).
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
        self._load_locks = {name: threading.Lock() for name in ("vad", "stt", "tts")}
        self._vad_model: SileroVad | None = None
        self._stt: SttEngine | None = None
        self._tts: TtsEngine | None = None

    # -- loading (one lock per engine; no lock at all once loaded) -----------------------
    def vad_model(self) -> SileroVad:
        """The shared Silero model (loaded on first use; blocks while it loads)."""
        model = self._vad_model
        if model is None:
            with self._load_locks["vad"]:
                if self._vad_model is None:
                    self._vad_model = load_silero_vad()
                model = self._vad_model
        return model

    def loaded_vad(self) -> SileroVad | None:
        """The VAD model if it is already loaded (never blocks)."""
        return self._vad_model

    def stt_engine(self) -> SttEngine:
        """The shared speech-to-text engine (loaded on first use; blocks while it loads)."""
        engine = self._stt
        if engine is None:
            with self._load_locks["stt"]:
                if self._stt is None:
                    self._stt = load_stt(self.stt_name, model_path=self.stt_model)
                engine = self._stt
        return engine

    def loaded_stt(self) -> SttEngine | None:
        """The speech-to-text engine if it is already loaded (never blocks on a load)."""
        return self._stt

    def tts_engine(self) -> TtsEngine:
        """The shared text-to-speech engine (loaded on first use; blocks while it loads)."""
        engine = self._tts
        if engine is None:
            with self._load_locks["tts"]:
                if self._tts is None:
                    self._tts = load_tts(self.tts_name, voice=self.tts_voice)
                engine = self._tts
        return engine

    async def warm_up(self) -> None:
        """Load every engine now (in worker threads, concurrently) instead of on first use."""
        await asyncio.gather(
            asyncio.to_thread(self.vad_model),
            asyncio.to_thread(self.stt_engine),
            asyncio.to_thread(self.tts_engine),
        )

    # -- use ----------------------------------------------------------------------------
    async def vad(
        self,
        *,
        threshold: float,
        prefix_padding_ms: int,
        silence_duration_ms: int,
        start_ms: float = 0.0,
    ) -> VadStream:
        """A VAD stream for one session, starting at ``start_ms`` of its input timeline.

        Awaits the model load in a worker thread the first time (never blocks the loop).
        """
        model = self.loaded_vad() or await asyncio.to_thread(self.vad_model)
        stream = StreamingVad(
            model,
            threshold=threshold,
            prefix_padding_ms=prefix_padding_ms,
            silence_duration_ms=silence_duration_ms,
        )
        return VadStream(stream, start_ms)

    async def transcribe(
        self,
        pcm16: bytes | bytearray,
        options: Mapping[str, Any] | None = None,
        *,
        cancelled: threading.Event | None = None,
    ) -> str:
        """Transcribe PCM16 24 kHz audio (``options``: the session's transcription config).

        ``cancelled`` (set when the session closes) skips the work if it has not started.
        """
        opts = options or {}
        result = await self.transcribe_detailed(
            pcm16,
            language=opts.get("language") or None,
            prompt=opts.get("prompt") or None,
            cancelled=cancelled,
        )
        return result.text.strip()

    async def transcribe_detailed(
        self,
        pcm16: bytes | bytearray,
        *,
        language: str | None = None,
        prompt: str | None = None,
        cancelled: threading.Event | None = None,
    ) -> TranscriptResult:
        """Transcribe PCM16 24 kHz audio, with segments and timings."""

        def work() -> TranscriptResult:
            engine = self.stt_engine()
            if cancelled is not None and cancelled.is_set():
                raise asyncio.CancelledError  # the session is gone: skip the model run
            return engine.transcribe(pcm16, language=language, prompt=prompt)

        return await asyncio.to_thread(work)

    async def synthesize(self, text: str, *, voice: str, speed: float = 1.0) -> bytes:
        """Speak ``text`` as PCM16 24 kHz."""

        def work() -> bytes:
            return self.tts_engine().synthesize(text, voice=voice, speed=speed)

        return await asyncio.to_thread(work)

    def sentence_buffer(self) -> SentenceBuffer:
        """A buffer turning streamed text deltas into complete sentences."""
        return SentenceBuffer()
