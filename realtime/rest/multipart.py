"""A streaming ``multipart/form-data`` body for audio uploads.

The file part is read from disk in 1 MiB pieces while the request is being sent, so a
500 MB recording is never held in memory; the total length is computed up front from
the file size, so the request carries a ``Content-Length`` (no chunked encoding). The
body can be iterated again for a retry: a path is reopened, a seekable file object is
rewound to where it stood.

:func:`audio_upload` turns what a caller passes (path, bytes, file object, numpy array)
into an :class:`Upload`.
"""

from __future__ import annotations

import asyncio
import io
import mimetypes
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np

from realtime.exceptions import ConfigError
from realtime.rest.wavio import wav_bytes

__all__ = ["AudioInput", "MultipartBody", "Upload", "audio_upload", "sniff_audio_type"]

CHUNK = 1024 * 1024

AudioInput = Union[  # noqa: UP007 (a runtime alias; `|` on os.PathLike[str] needs 3.10+ anyway)
    str, os.PathLike[str], bytes, bytearray, memoryview, BinaryIO, np.ndarray
]
"""What the transcription and translation calls accept as ``file``."""

_MAGIC: tuple[tuple[bytes, int, str, str], ...] = (
    (b"RIFF", 0, "wav", "audio/wav"),
    (b"fLaC", 0, "flac", "audio/flac"),
    (b"OggS", 0, "ogg", "audio/ogg"),
    (b"ID3", 0, "mp3", "audio/mpeg"),
    (b"\x1a\x45\xdf\xa3", 0, "webm", "audio/webm"),
    (b"ftyp", 4, "m4a", "audio/mp4"),
)


def sniff_audio_type(head: bytes) -> tuple[str, str]:
    """Guess ``(extension, content type)`` from the first bytes of an audio file."""
    for magic, offset, ext, ctype in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return ext, ctype
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "mp3", "audio/mpeg"
    return "bin", "application/octet-stream"


@dataclass
class Upload:
    """The file part of a form: where the bytes come from, its name, type and size.

    Exactly one of ``path``, ``data`` and ``fileobj`` is set. ``size`` is ``None`` only
    for a file object whose length cannot be found without reading it.
    """

    filename: str
    content_type: str
    size: int | None
    path: Path | None = None
    data: bytes | None = None
    fileobj: BinaryIO | None = None
    start: int = 0

    @property
    def replayable(self) -> bool:
        """True when the bytes can be produced again (needed to retry the request)."""
        if self.fileobj is None:
            return True
        try:
            return self.fileobj.seekable()
        except (AttributeError, ValueError, OSError):
            return False

    async def chunks(self) -> AsyncIterator[bytes]:
        """Yield the file's bytes in pieces of at most 1 MiB, reading as they are sent."""
        if self.data is not None:
            view = memoryview(self.data)
            for i in range(0, len(view), CHUNK):
                yield bytes(view[i : i + CHUNK])
            return
        if self.path is not None:
            f = await asyncio.to_thread(self.path.open, "rb")
            try:
                while piece := await asyncio.to_thread(f.read, CHUNK):
                    yield piece
            finally:
                f.close()
            return
        assert self.fileobj is not None
        if self.replayable:
            self.fileobj.seek(self.start)
        while piece := await asyncio.to_thread(self.fileobj.read, CHUNK):
            yield piece


def _named(name: str | None, head: bytes) -> tuple[str, str]:
    if name:
        ctype = mimetypes.guess_type(name)[0]
        if ctype is None:
            ctype = sniff_audio_type(head)[1]
        return os.path.basename(name), ctype
    ext, ctype = sniff_audio_type(head)
    return f"audio.{ext}", ctype


def audio_upload(
    file: AudioInput, *, filename: str | None = None, sample_rate: int = 24000
) -> Upload:
    """Describe ``file`` as an upload without reading it (a path is only stat'ed).

    A numpy array is encoded as a 16-bit WAV at ``sample_rate``; bytes are sent as they
    are; a file object is read from its current position. ``filename`` overrides the name
    sent to the server (which uses its extension to tell the format). Raises
    :class:`~realtime.exceptions.ConfigError` for a missing file or an unusable input.
    """
    if isinstance(file, np.ndarray):
        data = wav_bytes(file, sample_rate)
        return Upload(filename or "audio.wav", "audio/wav", len(data), data=data)
    if isinstance(file, bytes | bytearray | memoryview):
        data = bytes(file)
        name, ctype = _named(filename, data[:16])
        return Upload(name, ctype, len(data), data=data)
    if isinstance(file, str | os.PathLike):
        path = Path(file)
        try:
            size = path.stat().st_size
            with path.open("rb") as f:
                head = f.read(16)
        except OSError as exc:
            raise ConfigError(f"cannot read audio file {str(path)!r}: {exc.strerror}") from exc
        name, ctype = _named(filename or path.name, head)
        return Upload(name, ctype, size, path=path)
    if isinstance(file, io.IOBase) or hasattr(file, "read"):
        fobj: BinaryIO = file
        known: int | None = None
        start = 0
        head = b""
        try:
            if fobj.seekable():
                start = fobj.tell()
                known = fobj.seek(0, os.SEEK_END) - start
                fobj.seek(start)
                head = fobj.read(16)
                fobj.seek(start)
        except (AttributeError, OSError, ValueError):
            known = None
        name, ctype = _named(filename or getattr(fobj, "name", None) or None, head)
        if isinstance(head, str):
            raise ConfigError("the audio file object must be opened in binary mode")
        return Upload(name, ctype, known, fileobj=fobj, start=start)
    raise ConfigError(f"cannot upload {type(file).__name__}: expected a path, bytes, file or array")


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class MultipartBody:
    """A ``multipart/form-data`` body: text fields, then one file part.

    :attr:`content_type` and :attr:`content_length` go in the request headers; iterate
    :meth:`stream` once per attempt.
    """

    def __init__(
        self, fields: Sequence[tuple[str, str]], upload: Upload, *, file_field: str = "file"
    ) -> None:
        self.boundary = uuid.uuid4().hex
        self.upload = upload
        parts = []
        for name, value in fields:
            parts.append(
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"'
                f"\r\n\r\n{value}\r\n".encode()
            )
        parts.append(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quote(file_field)}"; '
            f'filename="{_quote(upload.filename)}"\r\n'
            f"Content-Type: {upload.content_type}\r\n\r\n".encode()
        )
        self._head = b"".join(parts)
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` header value, boundary included."""
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def content_length(self) -> int | None:
        """Total body length, or ``None`` when the file's size is unknown (chunked upload)."""
        if self.upload.size is None:
            return None
        return len(self._head) + self.upload.size + len(self._tail)

    async def stream(self) -> AsyncIterator[bytes]:
        """Yield the body: the fields and part header, the file in pieces, the closing line."""
        yield self._head
        async for piece in self.upload.chunks():
            yield piece
        yield self._tail
