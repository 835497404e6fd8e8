"""Tests for audio.pcm: PCM16 <-> arrays, base64, durations, session formats."""

from __future__ import annotations

import base64
import importlib
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest

from audio import pcm
from audio.exceptions import AudioFormatError


def _sine(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_int16_from_pcm16_is_zero_copy_little_endian() -> None:
    """Bytes are viewed, not copied, and read as little-endian int16."""
    data = b"\x01\x00\xff\xff\x00\x80"
    arr = pcm.int16_from_pcm16(data)
    assert arr.dtype == np.int16
    assert arr.tolist() == [1, -1, -32768]
    assert not arr.flags.owndata
    assert not arr.flags.writeable


def test_int16_from_bytearray_is_writable_view() -> None:
    """A bytearray is viewed in place (writes go through)."""
    buf = bytearray(4)
    arr = pcm.int16_from_pcm16(buf)
    arr[0] = 258
    assert buf[:2] == b"\x02\x01"


def test_int16_from_pcm16_odd_length() -> None:
    """An odd byte count raises AudioFormatError."""
    with pytest.raises(AudioFormatError, match="odd byte count"):
        pcm.int16_from_pcm16(b"\x00\x00\x00")


def test_int16_from_pcm16_rejects_non_bytes() -> None:
    """A str or list is not PCM16 data."""
    with pytest.raises(AudioFormatError, match="bytes"):
        pcm.int16_from_pcm16("abcd")  # type: ignore[arg-type]


def test_pcm16_roundtrip() -> None:
    """int16 -> bytes -> int16 is exact."""
    samples = np.array([0, 1, -1, 32767, -32768], dtype=np.int16)
    data = pcm.pcm16_from_int16(samples)
    assert data == b"\x00\x00\x01\x00\xff\xff\xff\x7f\x00\x80"
    assert np.array_equal(pcm.int16_from_pcm16(data), samples)


def test_pcm16_from_int16_rejects_other_dtypes() -> None:
    """A float or int32 array is refused with AudioFormatError."""
    with pytest.raises(AudioFormatError, match="int16"):
        pcm.pcm16_from_int16(np.zeros(3, dtype=np.float32))  # type: ignore[arg-type]
    with pytest.raises(AudioFormatError, match="int16"):
        pcm.pcm16_from_int16(np.zeros(3, dtype=np.int32))  # type: ignore[arg-type]


def test_float32_from_pcm16_range() -> None:
    """Samples map to [-1, 1): -32768 -> -1.0, 32767 -> just below 1."""
    out = pcm.float32_from_pcm16(b"\x00\x80\xff\x7f\x00\x00")
    assert out.dtype == np.float32
    assert out[0] == -1.0
    assert 0.9999 < out[1] < 1.0
    assert out[2] == 0.0


def test_float_int16_roundtrip_is_exact() -> None:
    """Every int16 survives int16 -> float32 -> int16 unchanged."""
    samples = np.arange(-32768, 32768, dtype=np.int16)
    floats = pcm.float32_from_pcm16(samples.tobytes())
    assert np.array_equal(pcm.float32_to_int16(floats), samples)


def test_float32_to_int16_clips_and_zeroes_nan() -> None:
    """Values beyond [-1, 1] clip, NaN becomes 0, infinities clip."""
    values = np.array([np.nan, 2.0, -2.0, 1.0, -1.0, 0.5, np.inf, -np.inf], dtype=np.float32)
    out = pcm.float32_to_int16(values)
    assert out.tolist() == [0, 32767, -32768, 32767, -32768, 16384, 32767, -32768]


def test_float32_to_int16_accepts_float64_and_keeps_input() -> None:
    """float64 input is accepted and the input array is not modified."""
    values = np.array([np.nan, 0.25], dtype=np.float64)
    out = pcm.float32_to_int16(values)
    assert out.tolist() == [0, 8192]
    assert np.isnan(values[0])


def test_float32_to_int16_rejects_int() -> None:
    """An integer array is not float audio."""
    with pytest.raises(AudioFormatError, match="float"):
        pcm.float32_to_int16(np.zeros(2, dtype=np.int16))  # type: ignore[arg-type]


def test_pcm16_from_float32() -> None:
    """Float samples become little-endian PCM16 bytes."""
    assert pcm.pcm16_from_float32(np.array([0.5, -3.0], dtype=np.float32)) == b"\x00\x40\x00\x80"


def test_to_mono_float_and_int() -> None:
    """Stereo is averaged; int16 stays int16 (rounded); mono passes through."""
    stereo = np.array([[1.0, 0.0], [0.5, 0.5]], dtype=np.float32)
    assert pcm.to_mono(stereo).tolist() == [0.5, 0.5]
    ints = np.array([[1, 2], [-3, -4], [32767, 32767]], dtype=np.int16)
    mixed = pcm.to_mono(ints)
    assert mixed.dtype == np.int16
    assert mixed.tolist() == [2, -4, 32767]
    mono = np.zeros(5, dtype=np.float32)
    assert pcm.to_mono(mono) is mono
    assert pcm.to_mono(np.ones((3, 1), dtype=np.float32)).shape == (3,)


def test_to_mono_rejects_3d() -> None:
    """A 3-D array raises AudioFormatError."""
    with pytest.raises(AudioFormatError):
        pcm.to_mono(np.zeros((2, 2, 2), dtype=np.float32))


def test_b64_roundtrip() -> None:
    """b64encode gives a str, b64decode reverses it (also from bytes)."""
    data = bytes(range(256))
    text = pcm.b64encode(data)
    assert isinstance(text, str)
    assert text == base64.b64encode(data).decode()
    assert pcm.b64decode(text) == data
    assert pcm.b64decode(text.encode()) == data
    assert pcm.b64decode("") == b""


@pytest.mark.parametrize("bad", ["abc", "a$bc", "ab=c", "ééé=", "QUJD\n"])
def test_b64decode_invalid(bad: str) -> None:
    """Invalid base64 (bad length, alphabet, padding, non-ASCII) raises AudioFormatError."""
    with pytest.raises(AudioFormatError, match="base64"):
        pcm.b64decode(bad)


def test_b64decode_rejects_non_text() -> None:
    """A number is not base64 audio."""
    with pytest.raises(AudioFormatError):
        pcm.b64decode(12)  # type: ignore[arg-type]


def test_duration_and_size_arithmetic() -> None:
    """Durations and sizes follow each format's sample size and rate."""
    assert pcm.duration_ms(48000) == 1000.0
    assert pcm.duration_ms(960) == 20.0
    assert pcm.duration_ms(160, "g711_ulaw") == 20.0
    assert pcm.duration_ms(320, "pcm16", rate=8000) == 20.0
    assert pcm.n_bytes_for_ms(20) == 960
    assert pcm.n_bytes_for_ms(40) == 1920
    assert pcm.n_bytes_for_ms(20, "g711_alaw") == 160
    assert pcm.n_bytes_for_ms(10, rate=16000) == 320
    assert pcm.n_bytes_for_ms(0.03) % 2 == 0  # always a whole number of samples
    assert pcm.SAMPLE_RATES == {"pcm16": 24000, "g711_ulaw": 8000, "g711_alaw": 8000}


@pytest.mark.parametrize(
    "call",
    [
        lambda: pcm.duration_ms(10, "mp3"),  # type: ignore[arg-type]
        lambda: pcm.duration_ms(-2),
        lambda: pcm.duration_ms(10, rate=0),
        lambda: pcm.n_bytes_for_ms(-1.0),
        lambda: pcm.n_bytes_for_ms(float("nan")),
        lambda: pcm.n_bytes_for_ms(10, rate=-8000),
        lambda: pcm.n_bytes_for_ms(10, rate=8000.5),  # type: ignore[arg-type]
    ],
)
def test_duration_bad_arguments(call: Callable[[], object]) -> None:
    """Unknown formats, negative sizes and bad rates raise AudioFormatError."""
    with pytest.raises(AudioFormatError):
        call()


def test_encode_decode_pcm16_is_identity() -> None:
    """pcm16 at 24 kHz passes through unchanged."""
    data = pcm.pcm16_from_float32(_sine(440, 24000, 0.1))
    assert pcm.encode(data, "pcm16") == data
    assert pcm.decode(data, "pcm16") == data


@pytest.mark.parametrize("fmt", ["g711_ulaw", "g711_alaw"])
def test_encode_decode_g711(fmt: pcm.AudioFormat) -> None:
    """G.711 encode gives 8 kHz bytes (a third of the samples) and decodes back closely."""
    x = _sine(440, 24000, 0.5)
    data = pcm.pcm16_from_float32(x)
    encoded = pcm.encode(data, fmt)
    assert len(encoded) == len(x) // 3
    decoded = pcm.decode(encoded, fmt)
    assert len(decoded) == len(data)
    y = pcm.float32_from_pcm16(decoded)
    assert np.max(np.abs(y[300:-300] - x[300:-300])) < 0.03


def test_encode_from_other_rate() -> None:
    """encode() resamples PCM16 at another rate first; decode() can target another rate."""
    data = pcm.pcm16_from_float32(_sine(440, 16000, 0.25))
    assert len(pcm.encode(data, "pcm16", rate=16000)) == 6000 * 2
    assert (
        len(pcm.decode(pcm.encode(data, "g711_ulaw", rate=16000), "g711_ulaw", rate=16000)) == 8000
    )


def test_encode_decode_bad_input() -> None:
    """Unknown formats and odd PCM16 byte counts raise AudioFormatError."""
    with pytest.raises(AudioFormatError, match="unknown audio format"):
        pcm.encode(b"\x00\x00", "opus")  # type: ignore[arg-type]
    with pytest.raises(AudioFormatError, match="odd"):
        pcm.encode(b"\x00", "g711_ulaw")
    with pytest.raises(AudioFormatError, match="odd"):
        pcm.decode(b"\x00", "pcm16")
    with pytest.raises(AudioFormatError):
        pcm.decode("abc", "g711_ulaw")  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["g711_ulaw", "g711_alaw"])
def test_stream_encoder_decoder_chunked(fmt: pcm.AudioFormat) -> None:
    """Chunked G.711 streaming keeps exact sizes per chunk and matches the signal."""
    x = _sine(300, 24000, 1.0)
    data = pcm.pcm16_from_float32(x)
    enc = pcm.StreamEncoder(fmt)
    dec = pcm.StreamDecoder(fmt)
    pieces = []
    for i in range(0, len(data), 960):  # 20 ms chunks
        codes = enc.encode(data[i : i + 960])
        assert len(codes) == 160
        pieces.append(dec.decode(codes))
        assert len(pieces[-1]) == 960
    pieces.append(dec.decode(enc.flush()))
    pieces.append(dec.flush())
    y = pcm.float32_from_pcm16(b"".join(pieces))
    delay = len(y) - len(x)  # encoder + decoder latency, in 24 kHz samples
    assert 0 < delay < 240
    aligned = y[delay : delay + len(x)]
    assert np.max(np.abs(aligned[500:-500] - x[500:-500])) < 0.03


def test_stream_encoder_pcm16_passthrough() -> None:
    """Streaming pcm16 at 24 kHz is a pass-through with an empty flush."""
    enc = pcm.StreamEncoder("pcm16")
    dec = pcm.StreamDecoder("pcm16")
    assert enc.encode(b"\x01\x02") == b"\x01\x02"
    assert dec.decode(b"\x01\x02") == b"\x01\x02"
    assert enc.flush() == b"" and dec.flush() == b""


def test_stream_encoder_bad_format() -> None:
    """An unknown format is refused at construction."""
    with pytest.raises(AudioFormatError):
        pcm.StreamEncoder("flac")  # type: ignore[arg-type]
    with pytest.raises(AudioFormatError):
        pcm.StreamDecoder("g711_ulaw", rate=0)


AUDIO_CORE = ["audio.pcm", "audio.g711", "audio.resample", "audio.wav", "audio.files", "audio.echo"]


def test_audio_core_never_imports_realtime() -> None:
    """Importing the audio core modules pulls in nothing from the realtime package."""
    code = (
        "import sys\n"
        f"for name in {AUDIO_CORE!r}:\n"
        "    __import__(name)\n"
        "print(sorted(m for m in sys.modules if m == 'realtime' or m.startswith('realtime.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", AUDIO_CORE)
def test_module_all_lists_real_documented_names(name: str) -> None:
    """Every name in a module's __all__ exists, and the module has a docstring."""
    module = importlib.import_module(name)
    assert module.__doc__
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.{attr}"
