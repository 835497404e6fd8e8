"""Audio uploads of the REST routes: streamed to disk with a size cap, the WAV header checked
from the first bytes, decoded in a worker thread with a duration cap.

:func:`receive_upload` parses the multipart body as it arrives (never whole in memory): the
file part goes to a temporary file, its first bytes must be a RIFF/WAVE header (anything else
is refused before the rest is read), and the header must be consistent — sample rate within
8-192 kHz, 1-8 channels, block align and byte rate matching, the data no longer than the
file, the duration within ``Limits.max_upload_seconds``. :func:`decode_wav` then reads the
file slice by slice into PCM16 24 kHz mono (run it in a worker thread): memory is the output
plus one slice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import IO, Any, cast

import numpy as np
import numpy.typing as npt
import soxr
from python_multipart.multipart import MultipartParser, parse_options_header

from audio import g711
from audio.pcm import float32_to_int16

from .exceptions import ClientInputError, InvalidUpload, LimitExceeded
from .limits import Limits

__all__ = ["RATE_RANGE", "Upload", "WavHeader", "decode_wav", "parse_wav_header", "receive_upload"]

RATE_RANGE = (8000, 192_000)
MAX_CHANNELS = 8
HEADER_WINDOW = 64 * 1024  # the fmt and data chunk headers must come within this
OUTPUT_RATE = 24000
MAX_PARTS = 64
FLUSH_BYTES = 1024 * 1024  # file bytes written to disk at a time (in a worker thread)

_PCM, _FLOAT, _ALAW, _ULAW, _EXTENSIBLE = 0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE
_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
_UNSET = (0, 0xFFFFFFFF)


@dataclass(frozen=True)
class WavHeader:
    """What a WAV header declares (``data_size`` is ``None`` when left unset by a streamer)."""

    encoding: str  # pcm | float | ulaw | alaw
    channels: int
    rate: int
    bits: int
    block: int
    data_offset: int
    data_size: int | None

    def seconds(self, data_size: int) -> float:
        """Duration of ``data_size`` bytes of this audio."""
        return data_size // self.block / self.rate


def _bad(message: str) -> InvalidUpload:
    return InvalidUpload(
        f"Invalid file: {message}. The local server reads WAV files (PCM, float or G.711).",
        param="file",
    )


def parse_wav_header(head: bytes, *, complete: bool) -> WavHeader | None:
    """Parse the RIFF header at the start of a file (``head``: its first bytes).

    Returns ``None`` when more bytes are needed (``complete`` False); raises
    :class:`InvalidUpload` for anything but a consistent PCM/float/G.711 WAV header.
    """
    if len(head) >= 4 and head[:4] != b"RIFF":
        raise _bad("not a WAV file (no RIFF header)" if head[:4] != b"RIFX" else "RIFX")
    if len(head) >= 12 and head[8:12] != b"WAVE":
        raise _bad("not a WAV file (no WAVE header)")
    fmt: WavHeader | None = None
    pos = 12
    while True:
        if pos + 8 > len(head):
            if complete or len(head) >= HEADER_WINDOW:
                raise _bad("no 'fmt ' and 'data' chunks at the start of the file")
            return None
        chunk_id, size = struct.unpack_from("<4sI", head, pos)
        body = pos + 8
        if chunk_id == b"fmt ":
            if body + size > len(head):
                if complete or len(head) >= HEADER_WINDOW:
                    raise _bad("the 'fmt ' chunk is cut off")
                return None
            fmt = _parse_fmt(head[body : body + size])
        elif chunk_id == b"data":
            if fmt is None:
                raise _bad("the 'data' chunk comes before the 'fmt ' chunk")
            data_size = None if size in _UNSET else size - size % fmt.block
            return WavHeader(
                fmt.encoding, fmt.channels, fmt.rate, fmt.bits, fmt.block, body, data_size
            )
        pos = body + size + (size & 1)


def _parse_fmt(chunk: bytes) -> WavHeader:
    if len(chunk) < 16:
        raise _bad("the 'fmt ' chunk is shorter than 16 bytes")
    tag, channels, rate, byte_rate, block, bits = struct.unpack_from("<HHIIHH", chunk)
    if tag == _EXTENSIBLE:
        if len(chunk) < 40 or chunk[26:40] != _GUID_TAIL:
            raise _bad("unsupported WAVE_FORMAT_EXTENSIBLE sub-format")
        tag = struct.unpack_from("<H", chunk, 24)[0]
    kinds = {(_PCM, 8), (_PCM, 16), (_PCM, 24), (_PCM, 32), (_FLOAT, 32), (_FLOAT, 64)}
    kinds |= {(_ULAW, 8), (_ALAW, 8)}
    if (tag, bits) not in kinds:
        raise _bad(f"unsupported encoding (format tag 0x{tag:04X}, {bits} bits)")
    encoding = {_PCM: "pcm", _FLOAT: "float", _ULAW: "ulaw", _ALAW: "alaw"}[tag]
    if not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
        raise _bad(f"sample rate {rate} Hz is outside {RATE_RANGE[0]}-{RATE_RANGE[1]} Hz")
    if not 1 <= channels <= MAX_CHANNELS:
        raise _bad(f"{channels} channels (1 to {MAX_CHANNELS} are read)")
    if block != channels * bits // 8:
        raise _bad(f"block align {block} does not match {channels} channels of {bits} bits")
    if byte_rate != rate * block:
        raise _bad(f"byte rate {byte_rate} does not match {rate} Hz x {block} bytes")
    return WavHeader(encoding, channels, rate, bits, block, 0, None)


# --- the multipart body -------------------------------------------------------------------


@dataclass
class Upload:
    """A received upload: the form's text fields and the WAV file on disk (delete with
    :meth:`discard`)."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    path: str | None = None
    filename: str | None = None
    header: WavHeader | None = None
    file_bytes: int = 0

    def get(self, name: str) -> str | None:
        """The first value of a text field."""
        values = self.fields.get(name)
        return values[0] if values else None

    @property
    def data_size(self) -> int:
        """Bytes of audio data in the file (the declared size, or what arrived)."""
        assert self.header is not None
        available = self.file_bytes - self.header.data_offset
        size = self.header.data_size
        return available - available % self.header.block if size is None else size

    def discard(self) -> None:
        """Delete the temporary file."""
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self.path = None


class _Receiver:
    """python-multipart callbacks: text fields in memory (bounded), the file part to disk."""

    def __init__(self, limits: Limits, file_field: str) -> None:
        self.limits = limits
        self.file_field = file_field
        self.upload = Upload()
        self.error: ClientInputError | None = None
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._name: str | None = None
        self._is_file = False
        self._text = bytearray()
        self._text_total = 0
        self._parts = 0
        self._head = bytearray()
        self._out: IO[bytes] | None = None
        self.pending = bytearray()  # file bytes received, not yet written (by flush)

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, a, b: self._add("_field", d[a:b]),
            "on_header_value": lambda d, a, b: self._add("_value", d[a:b]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _fail(self, exc: ClientInputError) -> None:
        if self.error is not None:
            return
        name = self.upload.filename
        if isinstance(exc, InvalidUpload) and name and exc.message.startswith("Invalid file:"):
            message = f"Invalid file {name!r}:" + exc.message[len("Invalid file:") :]
            exc = InvalidUpload(message, code=exc.code, param=exc.param)
        self.error = exc

    def _add(self, name: str, data: bytes) -> None:
        value = getattr(self, name) + data
        if len(value) > 4096:
            self._fail(ClientInputError("A multipart header is too long.", code="invalid_body"))
            return
        setattr(self, name, value)

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            self._fail(ClientInputError("Too many form fields.", code="invalid_body"))
        self._headers = {}
        self._name, self._is_file = None, False
        self._text = bytearray()

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        self._name = name.decode("utf-8", "replace") if name is not None else None
        filename = options.get(b"filename")
        self._is_file = filename is not None and self._name == self.file_field
        if self._is_file and self.error is None:
            if self.upload.path is not None:
                self._fail(ClientInputError("Only one 'file' may be sent.", param="file"))
                return
            self.upload.filename = (filename or b"").decode("utf-8", "replace")
            fd, self.upload.path = tempfile.mkstemp(prefix="realtime-upload-", suffix=".wav")
            self._out = os.fdopen(fd, "wb")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self.error is not None:
            return
        chunk = data[start:end]
        if not self._is_file:
            self._text_total += len(chunk)
            if self._text_total > self.limits.max_body_bytes:
                self._fail(
                    LimitExceeded(
                        "The form's text fields are too large.",
                        code="request_too_large",
                        status=413,
                    )
                )
                return
            self._text += chunk
            return
        up = self.upload
        up.file_bytes += len(chunk)
        if up.file_bytes > self.limits.max_upload_bytes:
            self._fail(_too_large(self.limits))
            return
        if up.header is None:
            self._head += chunk[: HEADER_WINDOW - len(self._head)]
            try:
                up.header = parse_wav_header(bytes(self._head), complete=False)
            except ClientInputError as exc:
                self._fail(exc)
                return
            if up.header is not None:
                self._check_duration(up.header)
        self.pending += chunk  # written in a worker thread by flush(): disks can stall

    def _check_duration(self, header: WavHeader) -> None:
        size = header.data_size
        if size is None:
            return
        seconds = header.seconds(size)
        if seconds > self.limits.max_upload_seconds:
            self._fail(_too_long(seconds, self.limits))

    def _part_end(self) -> None:
        if self._is_file:
            self._finish_file()
        elif self._name is not None and self.error is None:
            self.upload.fields.setdefault(self._name, []).append(
                self._text.decode("utf-8", "replace")
            )

    def _finish_file(self) -> None:
        up = self.upload
        if self.error is not None:
            return
        try:
            if up.header is None:
                up.header = parse_wav_header(bytes(self._head), complete=True)
                assert up.header is not None
            header = up.header
            available = up.file_bytes - header.data_offset
            if header.data_size is not None and header.data_size > available:
                raise _bad(
                    f"the data chunk declares {header.data_size} bytes but the file holds "
                    f"{max(0, available)}"
                )
            seconds = header.seconds(up.data_size)
            if seconds > self.limits.max_upload_seconds:
                raise _too_long(seconds, self.limits)
        except ClientInputError as exc:
            self._fail(exc)

    async def flush(self, *, last: bool = False) -> None:
        """Write the pending file bytes in a worker thread (and close the file if ``last``)."""
        out = self._out
        if out is None:
            self.pending = bytearray()
            return
        data, self.pending = self.pending, bytearray()
        if data:
            await asyncio.to_thread(out.write, data)
        if last:
            self._out = None
            await asyncio.to_thread(out.close)

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


def _too_large(limits: Limits) -> LimitExceeded:
    mib = limits.max_upload_bytes / (1024 * 1024)
    return LimitExceeded(
        f"Maximum content size limit ({mib:g} MiB) exceeded.",
        code="file_too_large",
        param="file",
        status=413,
    )


def _too_long(seconds: float, limits: Limits) -> LimitExceeded:
    return LimitExceeded(
        f"Audio duration {seconds:.0f} seconds is longer than the maximum of "
        f"{limits.max_upload_seconds:g} seconds.",
        code="audio_too_long",
        param="file",
        status=400,
    )


async def receive_upload(
    request_stream: AsyncIterator[bytes],
    content_type: str,
    content_length: str | None,
    limits: Limits,
    *,
    file_field: str = "file",
) -> Upload:
    """Receive a multipart form with a WAV ``file`` (see the module docstring).

    Raises :class:`ClientInputError` subclasses: :class:`LimitExceeded` (413) past
    ``max_upload_bytes``, :class:`InvalidUpload` (400) for a file that is not a consistent
    WAV, 400 for a body that is not multipart, 408 when the body stalls ``body_timeout``.
    The temporary file is deleted on failure; on success the caller deletes it with
    :meth:`Upload.discard`.
    """
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ClientInputError(
            "The body must be multipart/form-data with a 'file'.", code="invalid_body"
        )
    total_cap = limits.max_upload_bytes + limits.max_body_bytes
    if content_length is not None and content_length.isdigit() and int(content_length) > total_cap:
        raise _too_large(limits)
    receiver = _Receiver(limits, file_field)
    parser = MultipartParser(boundary, cast(Any, receiver.callbacks()))
    received = 0
    try:
        stream = request_stream.__aiter__()
        while True:
            try:
                chunk = await asyncio.wait_for(stream.__anext__(), limits.body_timeout)
            except StopAsyncIteration:
                break
            except asyncio.TimeoutError:
                raise ClientInputError(
                    "The request body stalled.", code="request_timeout", status=408
                ) from None
            received += len(chunk)
            if received > total_cap:
                raise _too_large(limits)
            try:
                parser.write(chunk)
            except ValueError as exc:  # python-multipart's MultipartParseError
                raise ClientInputError(
                    f"Could not parse the multipart body: {exc}", code="invalid_body"
                ) from None
            if receiver.error is not None:
                raise receiver.error
            if len(receiver.pending) >= FLUSH_BYTES:
                await receiver.flush()
        parser.finalize()
        if receiver.error is not None:
            raise receiver.error
        await receiver.flush(last=True)
        if receiver.upload.path is None or receiver.upload.header is None:
            raise ClientInputError(
                "Missing required parameter: 'file'.",
                code="missing_required_parameter",
                param="file",
            )
    except BaseException:
        receiver.close()
        receiver.upload.discard()
        raise
    return receiver.upload


# --- decoding (in a worker thread) ---------------------------------------------------------


def decode_wav(path: str, header: WavHeader, data_size: int) -> bytearray:
    """Read the WAV's audio as PCM16 24 kHz mono, slice by slice (blocking: use a thread).

    Resampled with libsoxr's stream (its bursty output does not matter for a file): the
    result is what a one-shot conversion gives, ``round(frames * 24000 / rate)`` samples.
    """
    frames_per_slice = max(4096, header.rate)  # about one second
    resampler = (
        soxr.ResampleStream(header.rate, OUTPUT_RATE, 1, dtype="float32", quality="HQ")
        if header.rate != OUTPUT_RATE
        else None
    )
    out = bytearray()
    left = data_size // header.block * header.block
    with open(path, "rb") as f:
        f.seek(header.data_offset)
        while left > 0:
            raw = f.read(min(left, frames_per_slice * header.block))
            if not raw:
                break
            raw = raw[: len(raw) - len(raw) % header.block]
            left -= len(raw)
            mono = _mono(_samples(raw, header), header.channels)
            if resampler is not None:
                mono = _as_float(resampler.resample_chunk(mono, last=left <= 0))
            out += float32_to_int16(mono).tobytes()
    return out


def _as_float(x: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    out: npt.NDArray[np.float32] = np.asarray(x, dtype=np.float32)
    return out


def _samples(raw: bytes, h: WavHeader) -> npt.NDArray[np.float32]:
    out: npt.NDArray[np.float32]
    if h.encoding == "float":
        dtype = "<f4" if h.bits == 32 else "<f8"
        out = np.frombuffer(raw, dtype=dtype).astype(np.float32)
    elif h.encoding in ("ulaw", "alaw"):
        codes = np.frombuffer(raw, dtype=np.uint8)
        ints = g711.ulaw_decode(codes) if h.encoding == "ulaw" else g711.alaw_decode(codes)
        out = ints.astype(np.float32) * np.float32(1 / 32768)
    elif h.bits == 8:
        u8 = np.frombuffer(raw, dtype=np.uint8).astype(np.float32)
        out = (u8 - np.float32(128.0)) * np.float32(1 / 128)
    elif h.bits == 16:
        out = np.frombuffer(raw, dtype="<i2").astype(np.float32) * np.float32(1 / 32768)
    elif h.bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8
        out = v.astype(np.float32) * np.float32(1 / 8388608)
    else:
        out = np.frombuffer(raw, dtype="<i4").astype(np.float32) * np.float32(1 / 2147483648)
    return out


def _mono(samples: npt.NDArray[np.float32], channels: int) -> npt.NDArray[np.float32]:
    if channels == 1:
        return samples
    frames = samples.reshape(-1, channels)
    mixed: npt.NDArray[np.float32] = frames.mean(axis=1, dtype=np.float32)
    return mixed
