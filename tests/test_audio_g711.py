"""Tests for audio.g711: bit-exact G.711 mu-law and A-law tables."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from audio import g711
from audio.exceptions import AudioFormatError

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)
Codec = Callable[..., Any]


def _audioop() -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return importlib.import_module("audioop")
        except ImportError:
            pytest.skip("the stdlib audioop reference is absent (removed in Python 3.13)")


def test_ulaw_encode_matches_audioop_for_every_int16() -> None:
    """mu-law encoding of all 65,536 int16 inputs equals audioop.lin2ulaw."""
    audioop = _audioop()
    assert g711.ulaw_encode(ALL_INT16).tobytes() == audioop.lin2ulaw(ALL_INT16.tobytes(), 2)


def test_alaw_encode_matches_audioop_for_every_int16() -> None:
    """A-law encoding of all 65,536 int16 inputs equals audioop.lin2alaw."""
    audioop = _audioop()
    assert g711.alaw_encode(ALL_INT16).tobytes() == audioop.lin2alaw(ALL_INT16.tobytes(), 2)


def test_ulaw_decode_matches_audioop_for_every_code() -> None:
    """mu-law decoding of all 256 codes equals audioop.ulaw2lin."""
    audioop = _audioop()
    assert g711.ulaw_decode(ALL_CODES).tobytes() == audioop.ulaw2lin(ALL_CODES.tobytes(), 2)


def test_alaw_decode_matches_audioop_for_every_code() -> None:
    """A-law decoding of all 256 codes equals audioop.alaw2lin."""
    audioop = _audioop()
    assert g711.alaw_decode(ALL_CODES).tobytes() == audioop.alaw2lin(ALL_CODES.tobytes(), 2)


@pytest.mark.parametrize(
    ("sample", "code"),
    [
        (0, 0xFF),
        (-1, 0x7E),  # -1 >> 2 = -1: the smallest negative step
        (4, 0xFE),  # one 14-bit step above zero lands in the next code (bias 33, step 2)
        (32767, 0x80),
        (-32768, 0x00),
        (32124, 0x80),  # the clip point: 8159 << 2 = 32636 and above saturate
        (8, 0xFE),
        (1000, 0xCE),
    ],
)
def test_ulaw_known_code_points(sample: int, code: int) -> None:
    """Known mu-law code points: zero, extremes, small steps."""
    assert g711.ulaw_encode(np.array([sample], dtype=np.int16))[0] == code


@pytest.mark.parametrize(
    ("sample", "code"),
    [
        (0, 0xD5),
        (-1, 0x55),
        (-8, 0x55),
        (32767, 0xAA),
        (-32768, 0x2A),
        (16, 0xD4),
        (1000, 0xFA),
    ],
)
def test_alaw_known_code_points(sample: int, code: int) -> None:
    """Known A-law code points: zero, extremes, small steps."""
    assert g711.alaw_encode(np.array([sample], dtype=np.int16))[0] == code


@pytest.mark.parametrize(
    ("code", "sample"),
    [(0xFF, 0), (0x7F, 0), (0x80, 32124), (0x00, -32124), (0xFE, 8), (0x7E, -8)],
)
def test_ulaw_decode_known_values(code: int, sample: int) -> None:
    """mu-law decoding: silence codes give 0, extreme codes give +/-32124."""
    assert g711.ulaw_decode(np.array([code], dtype=np.uint8))[0] == sample


@pytest.mark.parametrize(
    ("code", "sample"),
    [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256)],
)
def test_alaw_decode_known_values(code: int, sample: int) -> None:
    """A-law decoding: the smallest codes give +/-8, the extreme codes +/-32256."""
    assert g711.alaw_decode(np.array([code], dtype=np.uint8))[0] == sample


def test_ulaw_sign_symmetry() -> None:
    """mu-law: a positive code and its sign-flipped twin decode to opposite values."""
    decoded = g711.ulaw_decode(ALL_CODES).astype(np.int32)
    assert np.array_equal(decoded[:128], -decoded[128:])


def test_alaw_sign_symmetry() -> None:
    """A-law: codes differing only in the sign bit decode to opposite values."""
    decoded = g711.alaw_decode(ALL_CODES).astype(np.int32)
    assert np.array_equal(decoded[:128], -decoded[128:])


@pytest.mark.parametrize(
    ("encode", "decode"),
    [(g711.ulaw_encode, g711.ulaw_decode), (g711.alaw_encode, g711.alaw_decode)],
)
def test_decode_then_encode_is_identity_on_codes(encode: Codec, decode: Codec) -> None:
    """Every decoded code re-encodes to a code with the same value (decode is a fixpoint)."""
    values = decode(ALL_CODES)
    assert np.array_equal(decode(encode(values)), values)


@pytest.mark.parametrize(
    ("encode", "decode"),
    [(g711.ulaw_encode, g711.ulaw_decode), (g711.alaw_encode, g711.alaw_decode)],
)
def test_encoding_is_monotonic_and_error_bounded(encode: Codec, decode: Codec) -> None:
    """Round-trip values never decrease with the input and stay within half a segment step."""
    roundtrip = decode(encode(ALL_INT16)).astype(np.int32)
    assert np.all(np.diff(roundtrip) >= 0)
    error = np.abs(roundtrip - ALL_INT16.astype(np.int32))
    assert error.max() <= 644  # half the top step (512), or the clip: 32767 - 32124 = 643
    small = np.abs(ALL_INT16.astype(np.int32)) < 64
    assert error[small].max() <= 8


def test_bytes_wrappers_agree_with_arrays() -> None:
    """The bytes helpers produce the same codes and samples as the array functions."""
    rng = np.random.default_rng(1)
    samples = rng.integers(-32768, 32768, 1000, dtype=np.int16)
    pcm = samples.astype("<i2").tobytes()
    assert g711.ulaw_encode_bytes(pcm) == g711.ulaw_encode(samples).tobytes()
    assert g711.alaw_encode_bytes(pcm) == g711.alaw_encode(samples).tobytes()
    codes = g711.ulaw_encode_bytes(pcm)
    assert (
        g711.ulaw_decode_bytes(codes) == g711.ulaw_decode(np.frombuffer(codes, np.uint8)).tobytes()
    )
    codes = g711.alaw_encode_bytes(pcm)
    assert (
        g711.alaw_decode_bytes(codes) == g711.alaw_decode(np.frombuffer(codes, np.uint8)).tobytes()
    )


def test_shape_is_preserved() -> None:
    """Encoding a 2-D array keeps its shape."""
    samples = np.zeros((10, 2), dtype=np.int16)
    assert g711.ulaw_encode(samples).shape == (10, 2)
    assert g711.alaw_decode(g711.alaw_encode(samples)).shape == (10, 2)


@pytest.mark.parametrize("func", [g711.ulaw_encode, g711.alaw_encode])
def test_encode_rejects_wrong_dtype(func: Codec) -> None:
    """Encoding a float or int32 array raises AudioFormatError."""
    with pytest.raises(AudioFormatError, match="int16"):
        func(np.zeros(4, dtype=np.float32))
    with pytest.raises(AudioFormatError, match="int16"):
        func(np.zeros(4, dtype=np.int32))


@pytest.mark.parametrize("func", [g711.ulaw_decode, g711.alaw_decode])
def test_decode_rejects_wrong_dtype(func: Codec) -> None:
    """Decoding anything but a uint8 array raises AudioFormatError."""
    with pytest.raises(AudioFormatError, match="uint8"):
        func(np.zeros(4, dtype=np.int16))
    with pytest.raises(AudioFormatError, match="uint8"):
        func([1, 2, 3])


@pytest.mark.parametrize("func", [g711.ulaw_encode_bytes, g711.alaw_encode_bytes])
def test_encode_bytes_rejects_odd_length(func: Codec) -> None:
    """An odd PCM16 byte count raises AudioFormatError."""
    with pytest.raises(AudioFormatError, match="odd"):
        func(b"\x00\x01\x02")


def test_tables_are_read_only() -> None:
    """The shared lookup tables cannot be modified by accident."""
    with pytest.raises(ValueError):
        g711.ULAW_TABLE_ENCODE[0] = 1
