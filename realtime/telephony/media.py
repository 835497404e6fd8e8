"""Audio between the phone stream and the realtime session (pure).

Telephony streams G.711 mu-law at 8 kHz: the session is configured with the same format
(GA ``audio/pcmu``, beta ``g711_ulaw``) and the base64 payloads pass straight through in
both directions, never decoded or resampled. A-law passes through the same way
(``audio/pcma`` / ``g711_alaw``). Linear PCM streams (``audio/l16``, little-endian, 8 or
16 kHz) are converted chunk by chunk with :mod:`audio.pcm`'s stream encoder/decoder to
and from the session's PCM16 at 24 kHz; so is any phone format paired with a different
session format by choice.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Final

from audio import g711
from audio.exceptions import AudioFormatError
from audio.pcm import (
    AudioFormat,
    StreamDecoder,
    StreamEncoder,
    int16_from_pcm16,
    pcm16_from_int16,
)
from audio.resample import resample

from .exceptions import MediaStreamError, UnsupportedMediaFormat
from .messages import MediaFormat

__all__ = ["MediaCodec", "PhoneAudio", "b64_size", "phone_audio", "phone_to_pcm16"]

_ENCODINGS: Final[dict[str, AudioFormat]] = {
    "audio/x-mulaw": "g711_ulaw",
    "audio/mulaw": "g711_ulaw",
    "audio/pcmu": "g711_ulaw",
    "audio/x-alaw": "g711_alaw",
    "audio/alaw": "g711_alaw",
    "audio/pcma": "g711_alaw",
    "audio/l16": "pcm16",
    "audio/x-l16": "pcm16",
}
_PCM_RATES: Final = (8000, 16000)


def b64_size(data: str) -> int:
    """Decoded size of a base64 string, computed from its length (no decoding)."""
    n = len(data)
    if n == 0:
        return 0
    return (n * 3) // 4 - (2 if data.endswith("==") else 1 if data.endswith("=") else 0)


@dataclass(frozen=True, slots=True)
class PhoneAudio:
    """The phone stream's audio: ``kind`` (a session format name) and ``rate``."""

    kind: AudioFormat
    rate: int = 8000

    @property
    def bytes_per_ms(self) -> float:
        """Bytes of this audio per millisecond."""
        return self.rate / 1000.0 * (2 if self.kind == "pcm16" else 1)

    @property
    def encoding(self) -> str:
        """The media-stream encoding name."""
        return {"g711_ulaw": "audio/x-mulaw", "g711_alaw": "audio/x-alaw"}.get(
            self.kind, "audio/l16"
        )

    def silence(self, ms: int) -> bytes:
        """``ms`` milliseconds of digital silence in this encoding."""
        n = int(self.rate * ms / 1000)
        if self.kind == "g711_ulaw":
            return b"\xff" * n
        if self.kind == "g711_alaw":
            return b"\xd5" * n
        return b"\x00\x00" * n


def phone_audio(fmt: MediaFormat) -> PhoneAudio:
    """The :class:`PhoneAudio` of a ``start`` message's media format.

    Raises UnsupportedMediaFormat for stereo, an unknown encoding, G.711 at a rate other
    than 8 kHz, or linear PCM at a rate other than 8 or 16 kHz.
    """
    kind = _ENCODINGS.get(fmt.encoding.split(";")[0].strip().lower())
    if kind is None:
        raise UnsupportedMediaFormat(f"unsupported stream encoding {fmt.encoding!r}")
    if fmt.channels != 1:
        raise UnsupportedMediaFormat(f"only mono streams are supported, not {fmt.channels}")
    if kind != "pcm16" and fmt.sample_rate != 8000:
        raise UnsupportedMediaFormat(f"G.711 runs at 8000 Hz, not {fmt.sample_rate}")
    if kind == "pcm16" and fmt.sample_rate not in _PCM_RATES:
        raise UnsupportedMediaFormat(f"linear PCM at {fmt.sample_rate} Hz (8000 or 16000 only)")
    return PhoneAudio(kind, fmt.sample_rate)


def _g711(kind: AudioFormat, pcm16: bytes) -> bytes:
    return g711.ulaw_encode_bytes(pcm16) if kind == "g711_ulaw" else g711.alaw_encode_bytes(pcm16)


def _pcm16(kind: AudioFormat, data: bytes) -> bytes:
    return g711.ulaw_decode_bytes(data) if kind == "g711_ulaw" else g711.alaw_decode_bytes(data)


class MediaCodec:
    """Converts base64 audio between the phone stream and the session, per call.

    ``session_format`` defaults to the phone's own G.711 format (pass-through) or, for
    linear PCM, to ``"pcm16"`` (24 kHz). :attr:`passthrough` says whether payloads are
    forwarded untouched. Bad base64 raises MediaStreamError.
    """

    def __init__(self, phone: PhoneAudio, session_format: AudioFormat | None = None) -> None:
        self.phone = phone
        self.session_format: AudioFormat = session_format or phone.kind
        self.passthrough = self.session_format == phone.kind and phone.kind != "pcm16"
        self._encoder: StreamEncoder | None = None
        self._decoder: StreamDecoder | None = None
        if not self.passthrough:
            self._encoder = StreamEncoder(self.session_format, rate=phone.rate)
            self._decoder = StreamDecoder(self.session_format, rate=phone.rate)

    def to_session(self, payload: str) -> str:
        """A phone payload as session audio (base64; may be empty while a resampler fills)."""
        if self._encoder is None:
            return payload
        raw = _decode(payload)
        pcm = raw if self.phone.kind == "pcm16" else _pcm16(self.phone.kind, raw)
        try:
            out = self._encoder.encode(pcm)
        except AudioFormatError as exc:
            raise MediaStreamError(f"bad phone audio: {exc}", event="media") from None
        return base64.b64encode(out).decode("ascii")

    def to_phone(self, delta: str) -> str:
        """Session audio (base64) as a phone payload (base64)."""
        if self._decoder is None:
            return delta
        try:
            pcm = self._decoder.decode(_decode(delta))
        except AudioFormatError as exc:
            raise MediaStreamError(f"bad session audio: {exc}") from None
        out = pcm if self.phone.kind == "pcm16" else _g711(self.phone.kind, pcm)
        return base64.b64encode(out).decode("ascii")

    def phone_ms(self, payload: str) -> float:
        """Duration of a phone payload in milliseconds (from its base64 length)."""
        return b64_size(payload) / self.phone.bytes_per_ms

    def encode_phone(self, pcm16: bytes, rate: int) -> bytes:
        """PCM16 at ``rate`` as raw phone audio (for prerecorded prompts such as an apology)."""
        samples = int16_from_pcm16(pcm16)
        if rate != self.phone.rate:
            samples = resample(samples, rate, self.phone.rate)  # type: ignore[assignment]
        pcm = pcm16_from_int16(samples)
        return pcm if self.phone.kind == "pcm16" else _g711(self.phone.kind, pcm)


def phone_to_pcm16(phone: PhoneAudio, data: bytes) -> bytes:
    """Raw phone audio as PCM16 at the phone's rate."""
    return data if phone.kind == "pcm16" else _pcm16(phone.kind, data)


def _decode(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise MediaStreamError("audio payload is not valid base64", event="media") from None
