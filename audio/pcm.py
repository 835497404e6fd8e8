"""PCM16 bytes and numpy arrays, base64, duration arithmetic, and the session audio formats.

The session formats are ``"pcm16"`` (little-endian signed 16-bit, 24 kHz mono) and the G.711
formats ``"g711_ulaw"`` / ``"g711_alaw"`` (one byte per sample, 8 kHz mono).

Conversions between bytes and arrays:

* :func:`int16_from_pcm16` -- bytes -> ``int16`` array, zero-copy (a read-only view of *bytes*);
* :func:`pcm16_from_int16` -- ``int16`` array -> bytes;
* :func:`float32_from_pcm16` / :func:`pcm16_from_float32` -- bytes <-> ``float32`` in [-1, 1);
* :func:`float32_to_int16` -- clipping-safe: beyond [-1, 1] clips, NaN becomes 0;
* :func:`to_mono` -- mixes ``[frames, channels]`` down to one channel.

:func:`encode` / :func:`decode` convert whole buffers between 24 kHz PCM16 and a session format
(G.711 includes the 24 kHz <-> 8 kHz resampling). For a *stream* sent or received in chunks use
:class:`StreamEncoder` / :class:`StreamDecoder`, which keep the resampler's state between chunks:
one-shot resampling of each chunk separately puts a click at every boundary (measured on a
440 Hz tone in 20 ms chunks through G.711 and back: spikes of 14 % of full scale, SNR 31 dB,
against 37 dB and no spikes when streaming).

Every bad input (odd byte count, wrong dtype, invalid base64, unknown format, bad rate) raises
:class:`~audio.exceptions.AudioFormatError`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final, Literal, get_args

import numpy as np
import numpy.typing as npt

from . import g711
from .exceptions import AudioFormatError
from .resample import StreamResampler, check_rate, resample

__all__ = [
    "BYTES_PER_SAMPLE",
    "FORMATS",
    "PCM16_RATE",
    "SAMPLE_RATES",
    "AudioFormat",
    "StreamDecoder",
    "StreamEncoder",
    "b64decode",
    "b64encode",
    "check_format",
    "decode",
    "duration_ms",
    "encode",
    "float32_from_pcm16",
    "float32_to_int16",
    "int16_from_pcm16",
    "n_bytes_for_ms",
    "pcm16_from_float32",
    "pcm16_from_int16",
    "to_mono",
]

AudioFormat = Literal["pcm16", "g711_ulaw", "g711_alaw"]
FORMATS: Final[tuple[AudioFormat, ...]] = get_args(AudioFormat)
SAMPLE_RATES: Final[dict[AudioFormat, int]] = {"pcm16": 24000, "g711_ulaw": 8000, "g711_alaw": 8000}
BYTES_PER_SAMPLE: Final[dict[AudioFormat, int]] = {"pcm16": 2, "g711_ulaw": 1, "g711_alaw": 1}
PCM16_RATE: Final = 24000

_Buffer = bytes | bytearray | memoryview
_SCALE: Final = np.float32(1.0 / 32768.0)


def check_format(format: object) -> AudioFormat:
    """Return *format* if it names a session audio format; else raise :class:`AudioFormatError`."""
    if format not in FORMATS:
        raise AudioFormatError(f"unknown audio format {format!r} (expected one of {FORMATS})")
    return format


def _check_buffer(data: object, what: str = "PCM16 data") -> _Buffer:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise AudioFormatError(f"{what} must be bytes, got {type(data).__name__}")
    return data


def int16_from_pcm16(data: _Buffer) -> npt.NDArray[np.int16]:
    """View little-endian PCM16 bytes as an ``int16`` array (zero-copy, read-only for bytes).

    Raises :class:`AudioFormatError` for an odd byte count or a non-bytes argument.
    """
    data = _check_buffer(data)
    if len(data) % 2:
        raise AudioFormatError(f"PCM16 data has an odd byte count ({len(data)})")
    samples = np.frombuffer(data, dtype="<i2")
    if not samples.dtype.isnative:  # big-endian host: a converted copy
        return samples.astype(np.int16)
    return samples.view(np.int16)


def pcm16_from_int16(samples: npt.NDArray[np.int16]) -> bytes:
    """Return the little-endian PCM16 bytes of an ``int16`` array (interleaved if 2-D).

    Raises :class:`AudioFormatError` when *samples* is not an ``int16`` array.
    """
    if not isinstance(samples, np.ndarray) or samples.dtype != np.int16:
        got = samples.dtype if isinstance(samples, np.ndarray) else type(samples).__name__
        raise AudioFormatError(f"expected an int16 array, got {got}")
    return samples.astype("<i2", copy=False).tobytes()


def float32_from_pcm16(data: _Buffer) -> npt.NDArray[np.float32]:
    """Convert PCM16 bytes to ``float32`` samples in [-1, 1) (a new array)."""
    out: npt.NDArray[np.float32] = int16_from_pcm16(data) * _SCALE
    return out


def float32_to_int16(samples: npt.NDArray[np.floating]) -> npt.NDArray[np.int16]:
    """Convert float samples (nominally in [-1, 1]) to ``int16``, rounding to nearest.

    Values beyond the range clip to -32768 / 32767; NaN becomes 0. Any shape. Raises
    :class:`AudioFormatError` when *samples* is not a floating-point array.
    """
    if not isinstance(samples, np.ndarray) or not np.issubdtype(samples.dtype, np.floating):
        got = samples.dtype if isinstance(samples, np.ndarray) else type(samples).__name__
        raise AudioFormatError(f"expected a float array, got {got}")
    scaled = np.multiply(samples, np.float32(32768.0), dtype=np.float32)
    nan = np.isnan(scaled)
    if nan.any():
        scaled[nan] = 0.0
    # minimum/maximum: np.clip has a much larger fixed cost on short blocks
    np.minimum(scaled, np.float32(32767.0), out=scaled)
    np.maximum(scaled, np.float32(-32768.0), out=scaled)
    np.rint(scaled, out=scaled)
    out: npt.NDArray[np.int16] = scaled.astype(np.int16)
    return out


def pcm16_from_float32(samples: npt.NDArray[np.floating]) -> bytes:
    """Convert float samples to little-endian PCM16 bytes (clipping-safe, NaN -> 0)."""
    return pcm16_from_int16(float32_to_int16(samples))


def to_mono(samples: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    """Mix ``[frames, channels]`` down to 1-D by averaging; a 1-D array is returned as is.

    ``int16`` input gives ``int16`` (rounded), float input keeps its dtype. Raises
    :class:`AudioFormatError` for more than two dimensions or a non-numeric dtype.
    """
    if not isinstance(samples, np.ndarray) or samples.ndim not in (1, 2):
        raise AudioFormatError("to_mono takes a 1-D or 2-D [frames, channels] array")
    if samples.ndim == 1:
        return samples
    if samples.shape[1] == 1:
        return samples[:, 0]
    out: npt.NDArray[Any]
    if np.issubdtype(samples.dtype, np.floating):
        out = samples.mean(axis=1, dtype=samples.dtype)
        return out
    if samples.dtype == np.int16:
        out = np.rint(samples.mean(axis=1, dtype=np.float32)).astype(np.int16)
        return out
    raise AudioFormatError(f"to_mono takes int16 or float arrays, got {samples.dtype}")


def b64encode(data: _Buffer) -> str:
    """Base64-encode audio bytes for a JSON event (standard alphabet, padded)."""
    return base64.b64encode(_check_buffer(data, "audio data")).decode("ascii")


def b64decode(text: str | bytes) -> bytes:
    """Decode base64 audio from a JSON event; raises :class:`AudioFormatError` if invalid."""
    if not isinstance(text, (str, bytes)):
        raise AudioFormatError(f"base64 audio must be str, got {type(text).__name__}")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AudioFormatError(f"invalid base64 audio: {exc}") from None


def _rate_of(format: AudioFormat, rate: int | None) -> int:
    return SAMPLE_RATES[format] if rate is None else check_rate(rate)


def duration_ms(n_bytes: int, format: AudioFormat = "pcm16", rate: int | None = None) -> float:
    """Milliseconds of audio in *n_bytes* of *format* at *rate* (default: the format's rate)."""
    fmt = check_format(format)
    if n_bytes < 0:
        raise AudioFormatError(f"byte count must not be negative, got {n_bytes}")
    return n_bytes / BYTES_PER_SAMPLE[fmt] * 1000.0 / _rate_of(fmt, rate)


def n_bytes_for_ms(ms: float, format: AudioFormat = "pcm16", rate: int | None = None) -> int:
    """Bytes holding *ms* milliseconds of *format* at *rate*: a whole number of samples."""
    fmt = check_format(format)
    if not ms >= 0:
        raise AudioFormatError(f"duration must be a non-negative number, got {ms!r}")
    return round(ms * _rate_of(fmt, rate) / 1000.0) * BYTES_PER_SAMPLE[fmt]


def _g711_encode(pcm16_8k: npt.NDArray[np.int16], fmt: AudioFormat) -> bytes:
    codes = g711.ulaw_encode(pcm16_8k) if fmt == "g711_ulaw" else g711.alaw_encode(pcm16_8k)
    return codes.tobytes()


def _g711_decode(data: _Buffer, fmt: AudioFormat) -> npt.NDArray[np.int16]:
    codes = np.frombuffer(data, dtype=np.uint8)
    return g711.ulaw_decode(codes) if fmt == "g711_ulaw" else g711.alaw_decode(codes)


def encode(pcm16: _Buffer, format: AudioFormat, rate: int = PCM16_RATE) -> bytes:
    """Convert a whole buffer of PCM16 at *rate* (default 24 kHz) to a session *format*.

    ``"pcm16"`` resamples to 24 kHz when *rate* differs; G.711 resamples to 8 kHz and companding
    follows. For a chunked stream use :class:`StreamEncoder`.
    """
    fmt = check_format(format)
    samples = int16_from_pcm16(pcm16)
    target = SAMPLE_RATES[fmt]
    rate = check_rate(rate)
    if rate != target:
        samples = resample(samples, rate, target)  # type: ignore[assignment]
    if fmt == "pcm16":
        return pcm16_from_int16(samples)
    return _g711_encode(samples, fmt)


def decode(data: _Buffer, format: AudioFormat, rate: int = PCM16_RATE) -> bytes:
    """Convert a whole buffer of a session *format* to PCM16 at *rate* (default 24 kHz).

    For a chunked stream use :class:`StreamDecoder`.
    """
    fmt = check_format(format)
    data = _check_buffer(data, "audio data")
    samples = int16_from_pcm16(data) if fmt == "pcm16" else _g711_decode(data, fmt)
    rate = check_rate(rate)
    if rate != SAMPLE_RATES[fmt]:
        samples = resample(samples, SAMPLE_RATES[fmt], rate)  # type: ignore[assignment]
    return pcm16_from_int16(samples)


class StreamEncoder:
    """Converts a PCM16 stream (at *rate*, default 24 kHz) to a session format chunk by chunk.

    Call :meth:`encode` with each chunk (any length, even byte count); it returns the encoded
    bytes completed so far. Call :meth:`flush` at the end of the stream for the resampler's tail
    (a few ms). Where no resampling is needed the output is immediate and exact.
    """

    def __init__(self, format: AudioFormat, rate: int = PCM16_RATE) -> None:
        self.format = check_format(format)
        self.rate = check_rate(rate)
        target = SAMPLE_RATES[self.format]
        self._resampler = (
            StreamResampler(self.rate, target, dtype="int16") if self.rate != target else None
        )

    def _finish(self, samples: npt.NDArray[np.int16]) -> bytes:
        if self.format == "pcm16":
            return pcm16_from_int16(samples)
        return _g711_encode(samples, self.format)

    def encode(self, pcm16: _Buffer) -> bytes:
        """Encode the next chunk of PCM16; returns the bytes it completes."""
        samples = int16_from_pcm16(pcm16)
        if self._resampler is not None:
            samples = self._resampler.process(samples)  # type: ignore[assignment]
        return self._finish(samples)

    def flush(self) -> bytes:
        """End the stream: return the resampler's remaining output (empty without one)."""
        if self._resampler is None:
            return b""
        return self._finish(self._resampler.flush())  # type: ignore[arg-type]


class StreamDecoder:
    """Converts a stream of a session format to PCM16 at *rate* (default 24 kHz), chunk by chunk.

    Call :meth:`decode` with each chunk (e.g. each audio delta); :meth:`flush` at the end.
    """

    def __init__(self, format: AudioFormat, rate: int = PCM16_RATE) -> None:
        self.format = check_format(format)
        self.rate = check_rate(rate)
        source = SAMPLE_RATES[self.format]
        self._resampler = (
            StreamResampler(source, self.rate, dtype="int16") if self.rate != source else None
        )

    def decode(self, data: _Buffer) -> bytes:
        """Decode the next chunk; returns the PCM16 bytes it completes."""
        data = _check_buffer(data, "audio data")
        if self.format == "pcm16":
            samples = int16_from_pcm16(data)
        else:
            samples = _g711_decode(data, self.format)
        if self._resampler is not None:
            samples = self._resampler.process(samples)  # type: ignore[assignment]
        return pcm16_from_int16(samples)

    def flush(self) -> bytes:
        """End the stream: return the resampler's remaining output (empty without one)."""
        if self._resampler is None:
            return b""
        return pcm16_from_int16(self._resampler.flush())  # type: ignore[arg-type]
