"""WAV files: a small RIFF parser that reads any PCM/float WAV, and a crash-safe writer.

The stdlib :mod:`wave` module rejects float and ``WAVE_FORMAT_EXTENSIBLE`` files, so the RIFF
chunks are parsed here: the ``RIFF``/``WAVE`` header, the ``fmt `` chunk, the ``data`` chunk;
unknown chunks (``LIST``, ``fact``, ``cue ``...) are skipped, odd-sized chunks are padded to an
even size as RIFF requires.

Readable encodings (format tag, or the sub-format of an extensible file):

* PCM integer, 8-bit unsigned and 16/24/32-bit signed little-endian;
* IEEE float, 32 and 64 bit;
* G.711 mu-law and A-law (8 bit).

Any number of channels and any rate. Other tags (ADPCM, MP3-in-WAV, GSM...) raise
:class:`~audio.exceptions.WavError` naming the file and the encoding, as does a file that is not
a WAV or whose header is cut off. A ``data`` chunk shorter than its declared size (a recording
that was interrupted) is read as far as it goes with a :class:`UserWarning`; a declared size of
0 or 0xFFFFFFFF (a writer that never finalised the header) means "to the end of the file".

Reading: :func:`read_wav_array` (float32 ``[frames, channels]`` and the rate), :func:`read_wav`
(mono, resampled, in a session format), :func:`wav_info`. Writing: :func:`write_wav` (one call),
:class:`WavWriter` (streaming; the header is rewritten on every :meth:`~WavWriter.flush`, so an
interrupted program leaves a valid file). Files are always written as 16-bit PCM.
"""

from __future__ import annotations

import os
import struct
import warnings
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from . import g711
from .exceptions import AudioFormatError, WavError
from .pcm import (
    SAMPLE_RATES,
    AudioFormat,
    check_format,
    float32_to_int16,
    int16_from_pcm16,
    pcm16_from_int16,
)
from .resample import check_rate, resample

__all__ = ["WavInfo", "WavWriter", "read_wav", "read_wav_array", "wav_info", "write_wav"]

StrPath = str | os.PathLike[str]

_PCM, _FLOAT, _ALAW, _ULAW, _EXTENSIBLE = 0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE
_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
_TAG_NAMES = {
    0x0002: "Microsoft ADPCM",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0040: "G.721 ADPCM",
    0x0050: "MPEG audio",
    0x0055: "MPEG Layer 3 (MP3)",
    0x00FF: "AAC",
    0x1610: "HE-AAC",
    0x2000: "AC-3",
    0xF1AC: "FLAC",
}
_UNSET = (0, 0xFFFFFFFF)  # data sizes left by writers that never finalised the header
_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")  # RIFF header + 16-byte fmt chunk + data header


@dataclass(frozen=True)
class WavInfo:
    """What a WAV file holds: ``encoding`` is ``"pcm"``, ``"float"``, ``"ulaw"`` or ``"alaw"``."""

    path: str
    encoding: str
    channels: int
    rate: int
    bits: int
    frames: int
    data_offset: int
    truncated: bool

    @property
    def duration_ms(self) -> float:
        """Length of the audio in milliseconds."""
        return self.frames * 1000.0 / self.rate


def _parse(path: str, blob: bytes) -> WavInfo:
    """Walk the RIFF chunks of *blob*; raise :class:`WavError` on anything unreadable."""
    if len(blob) < 12 or blob[:4] not in (b"RIFF", b"RIFX") or blob[8:12] != b"WAVE":
        raise WavError(path, "not a WAV file (no RIFF/WAVE header)")
    if blob[:4] == b"RIFX":
        raise WavError(path, "big-endian RIFX files are not supported")
    fmt: tuple[str, int, int, int, int] | None = None
    pos = 12
    while True:
        if pos + 8 > len(blob):
            missing = "fmt " if fmt is None else "data"
            raise WavError(path, f"header cut off: no '{missing}' chunk before the end of the file")
        chunk_id, size = struct.unpack_from("<4sI", blob, pos)
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + size > len(blob):
                raise WavError(path, "header cut off: the 'fmt ' chunk is incomplete")
            fmt = _parse_fmt(path, blob[body : body + size])
        elif chunk_id == b"data":
            if fmt is None:
                raise WavError(path, "the 'data' chunk comes before any 'fmt ' chunk")
            encoding, channels, rate, bits, block = fmt
            available = len(blob) - body
            truncated = False
            if size in _UNSET:
                size = available - available % block
            elif size > available:
                truncated = True
                warnings.warn(
                    f"{path}: data chunk declares {size} bytes but only {available} are present;"
                    " reading what exists",
                    UserWarning,
                    stacklevel=4,
                )
                size = available
            return WavInfo(path, encoding, channels, rate, bits, size // block, body, truncated)
        pos = body + size + (size & 1)


def _parse_fmt(path: str, fmt: bytes) -> tuple[str, int, int, int, int]:
    """Decode a ``fmt `` chunk to (encoding, channels, rate, bits, block_align)."""
    tag, channels, rate, _byte_rate, block, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _EXTENSIBLE:
        if len(fmt) < 40:
            raise WavError(path, "WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk is shorter than 40 bytes")
        guid = fmt[24:40]
        if guid[2:] != _GUID_TAIL:
            raise WavError(path, f"unsupported extensible sub-format GUID {guid.hex()}")
        tag = struct.unpack_from("<H", guid)[0]
    if tag == _PCM and bits in (8, 16, 24, 32):
        encoding = "pcm"
    elif tag == _FLOAT and bits in (32, 64):
        encoding = "float"
    elif tag in (_ULAW, _ALAW) and bits == 8:
        encoding = "ulaw" if tag == _ULAW else "alaw"
    elif tag in (_PCM, _FLOAT, _ULAW, _ALAW):
        raise WavError(path, f"unsupported sample size: {bits} bits for format tag 0x{tag:04X}")
    else:
        name = _TAG_NAMES.get(tag, "an unknown encoding")
        raise WavError(
            path,
            f"compressed or unsupported encoding: {name} (format tag 0x{tag:04X});"
            " only PCM, IEEE float and G.711 WAV files can be read",
        )
    if channels < 1:
        raise WavError(path, "the 'fmt ' chunk declares no channels")
    if rate < 1:
        raise WavError(path, f"the 'fmt ' chunk declares an invalid sample rate ({rate})")
    if block != channels * (bits // 8):
        raise WavError(
            path, f"block align {block} does not match {channels} channels of {bits} bits"
        )
    return encoding, channels, rate, bits, block


def _read_blob(path: StrPath) -> tuple[str, bytes]:
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            return name, f.read()
    except OSError as exc:
        raise WavError(name, f"cannot read the file: {exc.strerror or exc}") from None


def wav_info(path: StrPath) -> WavInfo:
    """Describe a WAV file (encoding, channels, rate, bits, frames) without decoding it."""
    name, blob = _read_blob(path)
    return _parse(name, blob)


def _decode(info: WavInfo, blob: bytes) -> npt.NDArray[np.float32]:
    n = info.frames * info.channels
    start = info.data_offset
    width = info.bits // 8
    raw = memoryview(blob)[start : start + n * width]
    out: npt.NDArray[np.float32]
    if info.encoding == "float":
        out = np.frombuffer(raw, dtype="<f4" if width == 4 else "<f8").astype(np.float32)
    elif info.encoding in ("ulaw", "alaw"):
        codes = np.frombuffer(raw, dtype=np.uint8)
        table = g711.ULAW_TABLE_DECODE if info.encoding == "ulaw" else g711.ALAW_TABLE_DECODE
        out = table[codes] * np.float32(1 / 32768)
    elif width == 1:
        out = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) * np.float32(1 / 128)
    elif width == 2:
        out = np.frombuffer(raw, dtype="<i2") * np.float32(1 / 32768)
    elif width == 3:
        wide = np.zeros((n, 4), dtype=np.uint8)
        wide[:, 1:] = np.frombuffer(raw, dtype=np.uint8).reshape(n, 3)
        out = (wide.view("<i4")[:, 0] >> 8).astype(np.float32) * np.float32(1 / 8388608)
    else:
        out = (np.frombuffer(raw, dtype="<i4") * (1 / 2147483648)).astype(np.float32)
    return out.reshape(info.frames, info.channels)


def read_wav_array(path: StrPath) -> tuple[npt.NDArray[np.float32], int]:
    """Read a WAV file as float32 ``[frames, channels]`` samples (full scale +/-1) and its rate.

    Raises :class:`WavError` naming the file and the problem (not a WAV, header cut off,
    compressed encoding); warns (``UserWarning``) and reads what exists when the data is
    shorter than declared.
    """
    name, blob = _read_blob(path)
    info = _parse(name, blob)
    return _decode(info, blob), info.rate


def read_wav(path: StrPath, rate: int | None = None, format: AudioFormat = "pcm16") -> bytes:
    """Read a WAV file into a session format: mono, at *rate*, as PCM16 or G.711 bytes.

    *rate* defaults to the format's rate (24 kHz for ``"pcm16"``, 8 kHz for G.711); 16 kHz
    PCM16 (or any other rate) can be asked for. Channels are mixed down by averaging.
    Raises :class:`WavError` for an unreadable file, :class:`AudioFormatError` for a bad
    *rate* or *format*.
    """
    fmt = check_format(format)
    target = SAMPLE_RATES[fmt] if rate is None else check_rate(rate)
    samples, file_rate = read_wav_array(path)
    mono = samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1, dtype=np.float32)
    if file_rate != target:
        mono = resample(np.ascontiguousarray(mono), file_rate, target)
    ints = float32_to_int16(mono)
    if fmt == "g711_ulaw":
        return g711.ulaw_encode(ints).tobytes()
    if fmt == "g711_alaw":
        return g711.alaw_encode(ints).tobytes()
    return pcm16_from_int16(ints)


def _to_int16(audio: bytes | bytearray | memoryview | npt.NDArray[np.generic]) -> np.ndarray:
    """PCM16 bytes, an int16 array or a float array as int16 samples (1-D or 2-D)."""
    if isinstance(audio, (bytes, bytearray, memoryview)):
        return int16_from_pcm16(audio)
    if not isinstance(audio, np.ndarray):
        raise AudioFormatError(f"audio must be PCM16 bytes or a numpy array, not {type(audio)}")
    if audio.ndim not in (1, 2):
        raise AudioFormatError(f"audio must be 1-D or [frames, channels], got {audio.shape}")
    if audio.dtype == np.int16:
        return audio
    if np.issubdtype(audio.dtype, np.floating):
        return float32_to_int16(audio.astype(np.float32, copy=False))
    raise AudioFormatError(f"audio arrays must be int16 or float, got {audio.dtype}")


def _frames(samples: np.ndarray, channels: int) -> npt.NDArray[np.int16]:
    """Check *samples* against *channels* and return them interleaved (1-D, int16)."""
    if samples.ndim == 2:
        if samples.shape[1] != channels:
            raise AudioFormatError(
                f"array has {samples.shape[1]} channels but the file has {channels}"
            )
        return np.ascontiguousarray(samples).reshape(-1)
    if samples.size % channels:
        raise AudioFormatError(
            f"{samples.size} samples is not a whole number of {channels}-channel frames"
        )
    return samples


def _header(rate: int, channels: int, data_bytes: int) -> bytes:
    block = 2 * channels
    return _HEADER.pack(
        b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, _PCM, channels, rate, rate * block,
        block, 16, b"data", data_bytes,
    )  # fmt: skip


def write_wav(
    path: StrPath,
    audio: bytes | bytearray | memoryview | npt.NDArray[np.generic],
    rate: int = 24000,
    channels: int | None = None,
) -> None:
    """Write 16-bit PCM WAV from PCM16 bytes (interleaved), an int16 array or a float array.

    A 2-D array ``[frames, channels]`` sets the channel count; otherwise *channels* (default 1)
    says how the samples are interleaved. Float input is clipped to [-1, 1]. Raises
    :class:`AudioFormatError` for bad audio/rate/channels and :class:`WavError` if the file
    cannot be written.
    """
    samples = _to_int16(audio)
    if channels is None:
        channels = samples.shape[1] if samples.ndim == 2 else 1
    with WavWriter(path, rate=rate, channels=channels) as writer:
        writer.write(samples)


class WavWriter:
    """Streams 16-bit PCM into a WAV file whose header is valid after every flush and on close.

    Open with ``WavWriter(path, rate=24000, channels=1)`` (or as a context manager), call
    :meth:`write` with PCM16 bytes or arrays, :meth:`flush` to make everything written so far
    readable (the header sizes are rewritten), :meth:`close` at the end. With *autoflush_ms*
    (default 500 ms of audio) :meth:`write` flushes by itself once that much audio has
    accumulated, so a program that dies leaves a valid file missing at most that much.
    """

    def __init__(
        self,
        path: StrPath,
        rate: int = 24000,
        channels: int = 1,
        autoflush_ms: float | None = 500.0,
    ) -> None:
        self.path = os.fspath(path)
        self.rate = check_rate(rate)
        if isinstance(channels, bool) or not isinstance(channels, int) or not 1 <= channels <= 64:
            raise AudioFormatError(f"channels must be an int from 1 to 64, got {channels!r}")
        self.channels = channels
        self._autoflush = (
            None if autoflush_ms is None else max(1, round(autoflush_ms * self.rate / 1000))
        )
        self.frames_written = 0
        self._unflushed = 0
        try:
            self._file: BinaryIO | None = open(self.path, "wb")  # noqa: SIM115
            self._file.write(_header(self.rate, channels, 0))
            self._file.flush()
        except OSError as exc:
            raise WavError(self.path, f"cannot write the file: {exc.strerror or exc}") from None

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._file is None

    @property
    def duration_ms(self) -> float:
        """Milliseconds of audio written so far."""
        return self.frames_written * 1000.0 / self.rate

    def write(self, audio: bytes | bytearray | memoryview | npt.NDArray[np.generic]) -> None:
        """Append audio: PCM16 bytes (interleaved), an int16 array, or a float array.

        Raises :class:`AudioFormatError` for malformed audio, :class:`WavError` after close.
        """
        if self._file is None:
            raise WavError(self.path, "write to a closed WavWriter")
        samples = _frames(_to_int16(audio), self.channels)
        if samples.size == 0:
            return
        try:
            self._file.write(samples.astype("<i2", copy=False).tobytes())
        except OSError as exc:
            raise WavError(self.path, f"cannot write the file: {exc.strerror or exc}") from None
        frames = samples.size // self.channels
        self.frames_written += frames
        self._unflushed += frames
        if self._autoflush is not None and self._unflushed >= self._autoflush:
            self.flush()

    def flush(self) -> None:
        """Rewrite the header sizes and flush to the OS: the file is now a complete WAV."""
        if self._file is None:
            return
        data_bytes = self.frames_written * 2 * self.channels
        try:
            self._file.seek(4)
            self._file.write(struct.pack("<I", 36 + data_bytes))
            self._file.seek(40)
            self._file.write(struct.pack("<I", data_bytes))
            self._file.seek(0, os.SEEK_END)
            self._file.flush()
        except OSError as exc:
            raise WavError(self.path, f"cannot write the file: {exc.strerror or exc}") from None
        self._unflushed = 0

    def close(self) -> None:
        """Finalise the header and close the file (idempotent)."""
        if self._file is None:
            return
        try:
            self.flush()
        finally:
            self._file.close()
            self._file = None

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
