"""Voice activity detection: the Silero model (ONNX) and a pure streaming segmenter.

Three layers, usable separately:

* :class:`SileroVad` wraps one ``onnxruntime.InferenceSession`` (1 thread) running the
  Silero VAD model. Load it once (:func:`load_silero_vad` caches it) and share it: the
  session holds no per-stream state, so many streams (and threads) can use it at once.
  :meth:`SileroVad.stream` returns a :class:`SileroStream` holding one stream's recurrent
  state, its 64-sample context and its partial window.
* :class:`VadSegmenter` is pure: fed one speech probability per window, it returns
  :class:`SpeechStarted` / :class:`SpeechStopped` events. No I/O, no model, no clock.
* :class:`StreamingVad` combines both for PCM16 input (24 kHz by default, resampled
  statefully to the model's 16 kHz).

Event positions are milliseconds of the input stream since the stream began (or since
the last :meth:`StreamingVad.reset`), on the model's 32 ms window grid. Following the
Realtime protocol's descriptions of ``input_audio_buffer.speech_started`` and
``speech_stopped``:

* ``SpeechStarted.audio_start_ms`` is the start of the first speech window minus
  ``prefix_padding_ms``, clamped at 0 (the audio the service would send to the model);
  ``speech_start_ms`` is the unpadded start.
* ``SpeechStopped.audio_end_ms`` is where the stop was decided: the end of the last
  speech window plus ``silence_duration_ms`` (rounded up to the window grid), so it
  includes the silence like the service's value; ``speech_end_ms`` is the end of the
  last speech window.

Two model files are understood: the one shipped in ``faster_whisper/assets``
(``silero_vad_v6.onnx``: inputs ``input`` [n, 576], ``h`` and ``c`` [1, 1, 128]; several
windows run in one call) and the ``silero-vad`` package's ``silero_vad.onnx`` (inputs
``input`` [1, 576], ``state`` [2, 1, 128], ``sr``). Each window is 512 samples at
16 kHz preceded by the previous window's last 64 samples.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from audio.exceptions import AudioError, AudioFormatError
from audio.pcm import float32_from_pcm16
from audio.resample import StreamResampler

__all__ = [
    "MODEL_RATE",
    "WINDOW_MS",
    "WINDOW_SAMPLES",
    "SileroStream",
    "SileroVad",
    "SpeechStarted",
    "SpeechStopped",
    "StreamingVad",
    "VadEvent",
    "VadSegmenter",
    "default_model_path",
    "load_silero_vad",
]

MODEL_RATE = 16000
"""Sample rate the Silero model runs at."""
WINDOW_SAMPLES = 512
"""Samples per model window at :data:`MODEL_RATE`."""
WINDOW_MS = WINDOW_SAMPLES * 1000 // MODEL_RATE
"""Duration of one model window in milliseconds (32)."""
_CONTEXT = 64
_SERVER_EXTRA = "realtime-voice[server]"


def default_model_path() -> Path:
    """The Silero model shipped inside ``faster-whisper`` (``assets/silero_vad_v6.onnx``).

    Located without importing ``faster_whisper``. Raises :class:`AudioError` naming the
    extra to install when the package or the file is missing.
    """
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise AudioError(
            "the Silero VAD model ships with faster-whisper, which is not installed: "
            f"install {_SERVER_EXTRA} (or pass model_path=)"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "assets" / "silero_vad_v6.onnx"
        if path.is_file():
            return path
    raise AudioError(
        "faster-whisper is installed but has no assets/silero_vad_v6.onnx: "
        f"reinstall {_SERVER_EXTRA} (or pass model_path=)"
    )


class SileroVad:
    """The Silero VAD model in one shared ``onnxruntime`` session.

    Create once (or use :func:`load_silero_vad`) and call :meth:`stream` per audio
    stream. Raises :class:`AudioError` when onnxruntime or the model file is missing or
    the file is not a Silero model.
    """

    def __init__(self, model_path: str | Path | None = None) -> None:
        try:
            import onnxruntime
        except ImportError as exc:
            raise AudioError(
                f"voice activity detection needs onnxruntime: install {_SERVER_EXTRA}"
            ) from exc
        path = Path(model_path) if model_path is not None else default_model_path()
        if not path.is_file():
            raise AudioError(f"Silero VAD model not found: {path}")
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self._session: Any = onnxruntime.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise AudioError(f"cannot load the Silero VAD model {path}: {exc}") from exc
        names = {i.name for i in self._session.get_inputs()}
        if {"input", "h", "c"} <= names:
            self._batched = True
        elif {"input", "state", "sr"} <= names:
            self._batched = False
        else:
            raise AudioError(f"{path} is not a Silero VAD model (inputs {sorted(names)})")
        self.model_path = path

    def stream(self) -> SileroStream:
        """A new stream with its own state; call once per audio stream."""
        return SileroStream(self)

    def _run(
        self, windows: NDArray[np.float32], state: list[NDArray[np.float32]]
    ) -> NDArray[np.float32]:
        """Run ``windows`` ([n, 576]) through the model, updating ``state`` in place."""
        if self._batched:
            probs, h, c = self._session.run(None, {"input": windows, "h": state[0], "c": state[1]})
            state[0], state[1] = h, c
            return np.asarray(probs, dtype=np.float32).reshape(-1)
        out = np.empty(len(windows), dtype=np.float32)
        sr = np.array(MODEL_RATE, dtype=np.int64)
        for i, window in enumerate(windows):
            prob, new_state = self._session.run(
                None, {"input": window[None, :], "state": state[0], "sr": sr}
            )
            state[0] = new_state
            out[i] = float(np.asarray(prob).reshape(-1)[0])
        return out

    def _initial_state(self) -> list[NDArray[np.float32]]:
        if self._batched:
            return [np.zeros((1, 1, 128), np.float32), np.zeros((1, 1, 128), np.float32)]
        return [np.zeros((2, 1, 128), np.float32)]


_cache: dict[str, SileroVad] = {}
_cache_lock = threading.Lock()


def load_silero_vad(model_path: str | Path | None = None) -> SileroVad:
    """The process-wide :class:`SileroVad` for ``model_path`` (default model when None).

    Loads on first call, then returns the same object; safe to call from any thread.
    """
    path = Path(model_path) if model_path is not None else default_model_path()
    key = str(path.resolve())
    with _cache_lock:
        vad = _cache.get(key)
        if vad is None:
            vad = _cache[key] = SileroVad(path)
        return vad


class SileroStream:
    """One audio stream's Silero state: feed 16 kHz float32 samples, get probabilities.

    Not thread-safe by itself (one stream, one caller at a time); the shared model is.
    """

    def __init__(self, model: SileroVad) -> None:
        self._model = model
        self.reset()

    def reset(self) -> None:
        """Forget the recurrent state, the context and any partial window."""
        self._state = self._model._initial_state()
        self._context = np.zeros(_CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)

    def process(self, samples: NDArray[np.float32]) -> NDArray[np.float32]:
        """Feed 16 kHz mono float32 samples; returns one probability per completed window.

        Samples short of a full window are kept for the next call.
        """
        data = np.concatenate([self._pending, np.asarray(samples, np.float32).reshape(-1)])
        n = len(data) // WINDOW_SAMPLES
        self._pending = data[n * WINDOW_SAMPLES :]
        if n == 0:
            return np.zeros(0, np.float32)
        frames = data[: n * WINDOW_SAMPLES].reshape(n, WINDOW_SAMPLES)
        contexts = np.empty((n, _CONTEXT), np.float32)
        contexts[0] = self._context
        contexts[1:] = frames[:-1, -_CONTEXT:]
        self._context = frames[-1, -_CONTEXT:].copy()
        windows = np.ascontiguousarray(np.concatenate([contexts, frames], axis=1))
        return self._model._run(windows, self._state)


@dataclass(frozen=True)
class SpeechStarted:
    """Speech began. ``audio_start_ms`` includes the prefix padding (clamped at 0)."""

    audio_start_ms: int
    speech_start_ms: int


@dataclass(frozen=True)
class SpeechStopped:
    """Speech ended. ``audio_end_ms`` includes the silence that decided it."""

    audio_end_ms: int
    speech_end_ms: int


VadEvent = SpeechStarted | SpeechStopped


class VadSegmenter:
    """Turn per-window speech probabilities into speech started/stopped events (pure).

    Speech starts at the first window whose probability is >= ``threshold``. While
    speaking, a window >= ``threshold - 0.15`` (the usual Silero hysteresis, floored at
    0.01) continues speech; speech stops once ``silence_duration_ms`` have passed since
    the end of the last speech window. Raises :class:`AudioFormatError` for values out
    of range.
    """

    def __init__(
        self,
        threshold: float = 0.5,
        prefix_padding_ms: int = 300,
        silence_duration_ms: int = 500,
        *,
        window_ms: int = WINDOW_MS,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise AudioFormatError(f"VAD threshold must be within [0, 1], got {threshold}")
        if prefix_padding_ms < 0 or silence_duration_ms < 0:
            raise AudioFormatError("prefix_padding_ms and silence_duration_ms must be >= 0")
        if window_ms <= 0:
            raise AudioFormatError(f"window_ms must be > 0, got {window_ms}")
        self.threshold = threshold
        self.neg_threshold = max(threshold - 0.15, 0.01)
        self.prefix_padding_ms = prefix_padding_ms
        self.silence_duration_ms = silence_duration_ms
        self.window_ms = window_ms
        self.reset()

    def reset(self) -> None:
        """Start over at position 0, not speaking."""
        self._windows = 0
        self._speaking = False
        self._speech_end = 0

    @property
    def speaking(self) -> bool:
        """True between a :class:`SpeechStarted` and the following :class:`SpeechStopped`."""
        return self._speaking

    @property
    def position_ms(self) -> int:
        """Milliseconds of audio consumed so far (a multiple of ``window_ms``)."""
        return self._windows * self.window_ms

    @property
    def silence_ms(self) -> int:
        """While speaking: milliseconds since the end of the last speech window (else 0).

        A pause is beginning when this turns non-zero; speech stops when it reaches
        ``silence_duration_ms``.
        """
        return self.position_ms - self._speech_end if self._speaking else 0

    def push(self, probability: float) -> VadEvent | None:
        """Feed the next window's speech probability; returns the event it causes, if any."""
        start = self._windows * self.window_ms
        self._windows += 1
        end = start + self.window_ms
        if not self._speaking:
            if probability >= self.threshold:
                self._speaking = True
                self._speech_end = end
                return SpeechStarted(max(0, start - self.prefix_padding_ms), start)
            return None
        if probability >= self.neg_threshold:
            self._speech_end = end
            return None
        if end - self._speech_end >= self.silence_duration_ms:
            self._speaking = False
            return SpeechStopped(end, self._speech_end)
        return None

    def push_many(self, probabilities: NDArray[np.float32] | list[float]) -> list[VadEvent]:
        """Feed several windows' probabilities; returns the events in order."""
        events: list[VadEvent] = []
        for p in probabilities:
            event = self.push(float(p))
            if event is not None:
                events.append(event)
        return events


class StreamingVad:
    """Silero + :class:`VadSegmenter` over PCM16 chunks of any size.

    ``rate`` is the input rate (24000 by default; 16000 skips resampling). Feed
    little-endian PCM16 mono bytes with :meth:`feed`; an odd trailing byte is kept for
    the next call. Events do not depend on how the input is chunked.
    """

    def __init__(
        self,
        model: SileroVad | None = None,
        *,
        threshold: float = 0.5,
        prefix_padding_ms: int = 300,
        silence_duration_ms: int = 500,
        rate: int = 24000,
    ) -> None:
        if rate <= 0:
            raise AudioFormatError(f"sample rate must be > 0, got {rate}")
        self._model = model if model is not None else load_silero_vad()
        self.rate = rate
        self.segmenter = VadSegmenter(threshold, prefix_padding_ms, silence_duration_ms)
        self.last_probabilities: NDArray[np.float32] = np.zeros(0, np.float32)
        self.reset()

    def reset(self) -> None:
        """Start a new stream at position 0 (model state, resampler and segmenter)."""
        self._stream = self._model.stream()
        self._resampler = (
            StreamResampler(self.rate, MODEL_RATE) if self.rate != MODEL_RATE else None
        )
        self._odd = b""
        self.segmenter.reset()

    def configure(self, threshold: float, prefix_padding_ms: int, silence_duration_ms: int) -> None:
        """Change the segmenter's settings mid-stream, keeping the position and state."""
        new = VadSegmenter(threshold, prefix_padding_ms, silence_duration_ms)
        new._windows = self.segmenter._windows
        new._speaking = self.segmenter._speaking
        new._speech_end = self.segmenter._speech_end
        self.segmenter = new

    @property
    def speaking(self) -> bool:
        """True while speech is in progress."""
        return self.segmenter.speaking

    @property
    def position_ms(self) -> int:
        """Milliseconds of audio analysed so far (on the 32 ms window grid)."""
        return self.segmenter.position_ms

    @property
    def silence_ms(self) -> int:
        """While speaking: milliseconds of silence since the last speech (else 0)."""
        return self.segmenter.silence_ms

    def feed(self, pcm16: bytes) -> list[VadEvent]:
        """Analyse a chunk of PCM16 audio; returns the events it completes, in order."""
        data = self._odd + pcm16
        usable = len(data) - (len(data) % 2)
        self._odd = data[usable:]
        if usable == 0:
            return []
        samples = float32_from_pcm16(data[:usable])
        if self._resampler is not None:
            samples = np.asarray(self._resampler.process(samples), np.float32).reshape(-1)
        probs = self._stream.process(samples)
        self.last_probabilities = probs
        return self.segmenter.push_many(probs)
