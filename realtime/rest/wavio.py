"""WAV on the wire: encode an array for upload, parse a WAV body as it streams in.

:func:`wav_bytes` turns a numpy array into a 16-bit PCM WAV file (what the transcription
endpoints receive for an ndarray). :class:`WavStreamParser` is sans-I/O: feed it the
bytes of a WAV body in arbitrary chunks; once the header is through it returns PCM16
mono at the file's own rate, so playback can start before the body is complete.
"""

from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt

from audio.exceptions import AudioFormatError

__all__ = ["WavStreamParser", "wav_bytes", "wav_header"]

_STREAMING_SIZES = (0, 0xFFFFFFFF)
_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


def wav_header(rate: int, channels: int, data_bytes: int, bits: int = 16) -> bytes:
    """The 44-byte header of a PCM WAV file holding ``data_bytes`` bytes of samples."""
    block = channels * bits // 8
    return b"".join(
        [
            b"RIFF",
            struct.pack("<I", 36 + data_bytes),
            b"WAVEfmt ",
            struct.pack("<IHHIIHH", 16, _PCM, channels, rate, rate * block, block, bits),
            b"data",
            struct.pack("<I", data_bytes),
        ]
    )


def wav_bytes(samples: npt.NDArray[np.generic], rate: int) -> bytes:
    """Encode an array as a 16-bit PCM WAV file.

    ``samples`` is ``[frames]`` or ``[frames, channels]``; float arrays are taken as
    [-1, 1] and clipped, int16 arrays are used as they are, other integer types are
    rejected. Raises :class:`~audio.exceptions.AudioFormatError` for a bad shape or dtype.
    """
    if rate <= 0:
        raise AudioFormatError(f"sample rate must be positive, got {rate}")
    arr = np.asarray(samples)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise AudioFormatError(f"expected [frames] or [frames, channels], got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating):
        pcm = (np.clip(arr, -1.0, 1.0) * 32767.0).round().astype("<i2")
    elif arr.dtype == np.int16:
        pcm = arr.astype("<i2", copy=False)
    else:
        raise AudioFormatError(f"expected a float or int16 array, got {arr.dtype}")
    data = np.ascontiguousarray(pcm).tobytes()
    return wav_header(rate, int(arr.shape[1]), len(data)) + data


class WavStreamParser:
    """Incremental WAV reader: RIFF header, ``fmt``, then ``data`` as PCM16 mono.

    Call :meth:`feed` with each chunk; it returns PCM16 mono bytes (possibly empty) at
    :attr:`rate`, which is ``None`` until the ``fmt`` chunk has been read. Supports 8, 16,
    24 and 32-bit integer and 32/64-bit float samples; channels are averaged. A data size
    of 0 or 0xFFFFFFFF (streaming writers) means "until the end of the body".
    Raises :class:`~audio.exceptions.AudioFormatError` for a body that is not such a WAV.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._state = "riff"
        self._skip = 0
        self._data_left: int | None = None
        self.rate: int | None = None
        self.channels = 0
        self._bits = 0
        self._float = False

    @property
    def header_done(self) -> bool:
        """True once the ``data`` chunk has started."""
        return self._state == "data"

    def feed(self, chunk: bytes) -> bytes:
        """Add body bytes; return the PCM16 mono samples they complete."""
        self._buf += chunk
        while True:
            if self._state == "data":
                return self._take_data()
            if self._state == "riff":
                if len(self._buf) < 12:
                    return b""
                if self._buf[:4] != b"RIFF" or self._buf[8:12] != b"WAVE":
                    raise AudioFormatError("the audio is not a RIFF/WAVE file")
                del self._buf[:12]
                self._state = "chunk"
            elif self._state == "skip":
                n = min(self._skip, len(self._buf))
                del self._buf[:n]
                self._skip -= n
                if self._skip:
                    return b""
                self._state = "chunk"
            elif self._state == "chunk":
                if len(self._buf) < 8:
                    return b""
                cid = bytes(self._buf[:4])
                (size,) = struct.unpack("<I", self._buf[4:8])
                if cid == b"data":
                    if self.rate is None:
                        raise AudioFormatError("WAV data chunk before its fmt chunk")
                    del self._buf[:8]
                    self._data_left = None if size in _STREAMING_SIZES else size
                    self._state = "data"
                elif cid == b"fmt ":
                    if len(self._buf) < 8 + size:
                        return b""
                    self._read_fmt(bytes(self._buf[8 : 8 + size]))
                    del self._buf[: 8 + size + (size & 1)]
                else:
                    del self._buf[:8]
                    self._skip = size + (size & 1)
                    self._state = "skip"

    def _read_fmt(self, fmt: bytes) -> None:
        if len(fmt) < 16:
            raise AudioFormatError("WAV fmt chunk is too short")
        tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", fmt[:16])
        if tag == _EXTENSIBLE and len(fmt) >= 26:
            (tag,) = struct.unpack("<H", fmt[24:26])
        if channels < 1 or rate < 1:
            raise AudioFormatError(f"WAV header has {channels} channels at {rate} Hz")
        if tag == _PCM and bits in (8, 16, 24, 32):
            self._float = False
        elif tag == _FLOAT and bits in (32, 64):
            self._float = True
        else:
            raise AudioFormatError(f"unsupported WAV sample format {tag} with {bits} bits")
        self.rate, self.channels, self._bits = rate, channels, bits

    def _take_data(self) -> bytes:
        frame = self.channels * self._bits // 8
        usable = len(self._buf) - len(self._buf) % frame
        if self._data_left is not None:
            usable = min(usable, self._data_left - self._data_left % frame)
            self._data_left -= usable
        if usable <= 0:
            if self._data_left is not None and self._data_left < frame:
                self._buf.clear()  # trailing chunks after the data are ignored
            return b""
        raw = bytes(self._buf[:usable])
        del self._buf[:usable]
        return self._to_pcm16(raw)

    def _to_pcm16(self, raw: bytes) -> bytes:
        width = self._bits // 8
        if self._float:
            x = np.frombuffer(raw, dtype="<f4" if width == 4 else "<f8").astype(np.float64)
            x = np.clip(x, -1.0, 1.0) * 32767.0
        elif width == 1:
            x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
        elif width == 2:
            x = np.frombuffer(raw, dtype="<i2").astype(np.float64)
        elif width == 3:
            b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
            v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
            v = np.where(v >= 1 << 23, v - (1 << 24), v)
            x = v.astype(np.float64) / 256.0
        else:
            x = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 65536.0
        if self.channels > 1:
            x = x.reshape(-1, self.channels).mean(axis=1)
        return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()
