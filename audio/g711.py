"""G.711 mu-law and A-law companding, vectorised with numpy lookup tables.

G.711 (ITU-T Recommendation G.711) squeezes a linear sample into 8 bits: a sign bit, a 3-bit
segment (exponent) and a 4-bit step inside the segment. mu-law works on a 14-bit magnitude with
a bias of 33 and inverts all bits; A-law works on a 13-bit magnitude without bias and inverts
the even bits (XOR 0x55). Both are defined here on 16-bit input, as telephony stacks do: the
input is arithmetically shifted right (by 2 for mu-law, by 3 for A-law) before companding, and
decoding returns the segment's mid-point scaled back to 16 bits.

Every function here is a table lookup: the encoders index a 65,536-entry ``uint8`` table with
the ``uint16`` view of the samples, the decoders a 256-entry ``int16`` table. The tables are
built once, at import, by a vectorised transcription of the rules above.

Call :func:`ulaw_encode` / :func:`alaw_encode` with an ``int16`` array to get ``uint8`` codes,
:func:`ulaw_decode` / :func:`alaw_decode` with ``uint8`` codes to get ``int16`` samples; the
``*_bytes`` helpers take and return little-endian PCM16 / code bytes. Raises
:class:`~audio.exceptions.AudioFormatError` for a wrong dtype or an odd PCM16 byte count.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .exceptions import AudioFormatError

__all__ = [
    "ALAW_TABLE_DECODE",
    "ALAW_TABLE_ENCODE",
    "ULAW_TABLE_DECODE",
    "ULAW_TABLE_ENCODE",
    "alaw_decode",
    "alaw_decode_bytes",
    "alaw_encode",
    "alaw_encode_bytes",
    "ulaw_decode",
    "ulaw_decode_bytes",
    "ulaw_encode",
    "ulaw_encode_bytes",
]

_ULAW_BIAS = 33  # added to the 14-bit magnitude (0x84 >> 2)
_ULAW_CLIP = 8159  # largest 14-bit magnitude mu-law represents (before the bias)


def _segment(magnitude: npt.NDArray[np.int32], first_end: int) -> npt.NDArray[np.int32]:
    """Segment number 0..8 of each magnitude: segment s ends at ``first_end * 2**s``."""
    seg = np.zeros(magnitude.shape, dtype=np.int32)
    end = first_end
    for _ in range(8):
        seg += magnitude > end
        end = end * 2 + 1
    return seg


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    """The 65,536-entry mu-law table indexed by the ``uint16`` bit pattern of a sample."""
    linear = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32) >> 2
    negative = linear < 0
    magnitude = np.minimum(np.where(negative, -linear, linear), _ULAW_CLIP) + _ULAW_BIAS
    seg = _segment(magnitude, 0x3F)
    step = (magnitude >> (np.minimum(seg, 7) + 1)) & 0x0F
    code = np.where(seg >= 8, 0x7F, (seg << 4) | step)
    mask = np.where(negative, 0x7F, 0xFF)
    return (code ^ mask).astype(np.uint8)


def _build_ulaw_decode() -> npt.NDArray[np.int16]:
    """The 256-entry mu-law decode table (code -> int16 sample)."""
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((code & 0x0F) << 3) + (_ULAW_BIAS << 2)) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, (_ULAW_BIAS << 2) - t, t - (_ULAW_BIAS << 2)).astype(np.int16)


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    """The 65,536-entry A-law table indexed by the ``uint16`` bit pattern of a sample."""
    linear = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32) >> 3
    negative = linear < 0
    magnitude = np.where(negative, -linear - 1, linear)
    seg = _segment(magnitude, 0x1F)
    shift = np.where(seg < 2, 1, np.minimum(seg, 7))
    step = (magnitude >> shift) & 0x0F
    code = np.where(seg >= 8, 0x7F, (seg << 4) | step)
    mask = np.where(negative, 0x55, 0xD5)
    return (code ^ mask).astype(np.uint8)


def _build_alaw_decode() -> npt.NDArray[np.int16]:
    """The 256-entry A-law decode table (code -> int16 sample)."""
    code = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (code & 0x70) >> 4
    t = (code & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(code & 0x80, t, -t).astype(np.int16)


ULAW_TABLE_ENCODE: npt.NDArray[np.uint8] = _build_ulaw_encode()
ULAW_TABLE_DECODE: npt.NDArray[np.int16] = _build_ulaw_decode()
ALAW_TABLE_ENCODE: npt.NDArray[np.uint8] = _build_alaw_encode()
ALAW_TABLE_DECODE: npt.NDArray[np.int16] = _build_alaw_decode()
for _table in (ULAW_TABLE_ENCODE, ULAW_TABLE_DECODE, ALAW_TABLE_ENCODE, ALAW_TABLE_DECODE):
    _table.flags.writeable = False


def _as_int16(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint16]:
    if not isinstance(samples, np.ndarray) or samples.dtype != np.int16:
        got = samples.dtype if isinstance(samples, np.ndarray) else type(samples).__name__
        raise AudioFormatError(f"G.711 encoding takes an int16 array, got {got}")
    return samples.view(np.uint16)


def _as_codes(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    if not isinstance(codes, np.ndarray) or codes.dtype != np.uint8:
        got = codes.dtype if isinstance(codes, np.ndarray) else type(codes).__name__
        raise AudioFormatError(f"G.711 decoding takes a uint8 array, got {got}")
    return codes


def ulaw_encode(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    """Encode ``int16`` samples to mu-law codes (same shape, ``uint8``).

    Raises :class:`AudioFormatError` when *samples* is not an ``int16`` array.
    """
    return np.take(ULAW_TABLE_ENCODE, _as_int16(samples))


def ulaw_decode(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    """Decode mu-law codes (``uint8``) to ``int16`` samples (same shape)."""
    return np.take(ULAW_TABLE_DECODE, _as_codes(codes))


def alaw_encode(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    """Encode ``int16`` samples to A-law codes (same shape, ``uint8``).

    Raises :class:`AudioFormatError` when *samples* is not an ``int16`` array.
    """
    return np.take(ALAW_TABLE_ENCODE, _as_int16(samples))


def alaw_decode(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    """Decode A-law codes (``uint8``) to ``int16`` samples (same shape)."""
    return np.take(ALAW_TABLE_DECODE, _as_codes(codes))


def _pcm16_view(pcm16: bytes | bytearray | memoryview) -> npt.NDArray[np.uint16]:
    if len(pcm16) % 2:
        raise AudioFormatError(f"PCM16 data has an odd byte count ({len(pcm16)})")
    return np.frombuffer(pcm16, dtype="<u2")


def _decode_bytes(table: npt.NDArray[np.int16], data: bytes | bytearray | memoryview) -> bytes:
    codes = np.frombuffer(data, dtype=np.uint8)
    return np.take(table, codes).astype("<i2", copy=False).tobytes()


def ulaw_encode_bytes(pcm16: bytes | bytearray | memoryview) -> bytes:
    """Encode little-endian PCM16 bytes to mu-law bytes (one byte per sample, same rate)."""
    return np.take(ULAW_TABLE_ENCODE, _pcm16_view(pcm16)).tobytes()


def ulaw_decode_bytes(data: bytes | bytearray | memoryview) -> bytes:
    """Decode mu-law bytes to little-endian PCM16 bytes (same rate)."""
    return _decode_bytes(ULAW_TABLE_DECODE, data)


def alaw_encode_bytes(pcm16: bytes | bytearray | memoryview) -> bytes:
    """Encode little-endian PCM16 bytes to A-law bytes (one byte per sample, same rate)."""
    return np.take(ALAW_TABLE_ENCODE, _pcm16_view(pcm16)).tobytes()


def alaw_decode_bytes(data: bytes | bytearray | memoryview) -> bytes:
    """Decode A-law bytes to little-endian PCM16 bytes (same rate)."""
    return _decode_bytes(ALAW_TABLE_DECODE, data)
