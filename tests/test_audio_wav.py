"""Tests for audio.wav: the RIFF reader (every PCM/float layout, errors) and the writers."""

from __future__ import annotations

import struct
import warnings
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audio import g711, pcm
from audio.exceptions import AudioFormatError, WavError
from audio.wav import WavWriter, read_wav, read_wav_array, wav_info, write_wav

PCM_GUID = struct.pack("<H", 1) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
FLOAT_GUID = struct.pack("<H", 3) + PCM_GUID[2:]


def _chunk(cid: bytes, body: bytes) -> bytes:
    return cid + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) % 2 else b"")


def _fmt(tag: int, channels: int, rate: int, bits: int, guid: bytes | None = None) -> bytes:
    block = channels * bits // 8
    body = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    if guid is not None:
        body += struct.pack("<HHI", 22, bits, 0) + guid
    return _chunk(b"fmt ", body)


def _riff(*chunks: bytes) -> bytes:
    payload = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


def _write(path: Path, *chunks: bytes) -> Path:
    path.write_bytes(_riff(*chunks))
    return path


def _ramp(frames: int, channels: int) -> np.ndarray:
    """A float signal in [-0.9, 0.9] with a different ramp per channel."""
    t = np.linspace(-0.9, 0.9, frames, dtype=np.float64)
    return np.stack([t * (1 - 0.3 * c) for c in range(channels)], axis=1)


def _encode(x: np.ndarray, bits: int, floating: bool) -> bytes:
    if floating:
        return x.astype("<f4" if bits == 32 else "<f8").tobytes()
    if bits == 8:
        return np.round(x * 127 + 128).astype(np.uint8).tobytes()
    if bits == 16:
        return np.round(x * 32767).astype("<i2").tobytes()
    if bits == 24:
        v = np.round(x * 8388607).astype("<i4").reshape(-1)
        return np.frombuffer(v.tobytes(), np.uint8).reshape(-1, 4)[:, :3].tobytes()
    return np.round(x * 2147483647).astype("<i4").tobytes()


LAYOUTS = [
    (1, 8, False),
    (1, 16, False),
    (1, 24, False),
    (1, 32, False),
    (3, 32, True),
    (3, 64, True),
]


@pytest.mark.parametrize(("tag", "bits", "floating"), LAYOUTS)
@pytest.mark.parametrize("channels", [1, 2, 3])
@pytest.mark.parametrize("extensible", [False, True])
def test_reads_every_layout(
    tmp_path: Path, tag: int, bits: int, floating: bool, channels: int, extensible: bool
) -> None:
    """8/16/24/32-bit int and 32/64-bit float, 1-3 channels, plain and extensible: exact values."""
    x = _ramp(1000, channels)
    guid = (FLOAT_GUID if floating else PCM_GUID) if extensible else None
    fmt = _fmt(0xFFFE if extensible else tag, channels, 44100, bits, guid)
    path = _write(tmp_path / "a.wav", fmt, _chunk(b"data", _encode(x, bits, floating)))
    samples, rate = read_wav_array(path)
    assert rate == 44100
    assert samples.dtype == np.float32
    assert samples.shape == (1000, channels)
    tolerance = {8: 1 / 64, 16: 1e-4, 24: 1e-6, 32: 1e-6, 64: 1e-6}[bits]
    np.testing.assert_allclose(samples, x, atol=tolerance)


def test_full_scale_values(tmp_path: Path) -> None:
    """Integer extremes map to -1.0 and just below +1.0; 8-bit 128 is zero."""
    data = struct.pack("<hhh", -32768, 0, 32767)
    path = _write(tmp_path / "s.wav", _fmt(1, 1, 8000, 16), _chunk(b"data", data))
    s, _ = read_wav_array(path)
    assert s[:, 0].tolist() == [-1.0, 0.0, 32767 / 32768]
    path = _write(tmp_path / "u.wav", _fmt(1, 1, 8000, 8), _chunk(b"data", bytes([0, 128, 255])))
    s, _ = read_wav_array(path)
    assert s[:, 0].tolist() == [-1.0, 0.0, 127 / 128]
    path = _write(
        tmp_path / "t.wav", _fmt(1, 1, 8000, 24), _chunk(b"data", b"\x00\x00\x80\xff\xff\x7f")
    )
    s, _ = read_wav_array(path)
    assert s[:, 0].tolist() == [-1.0, 8388607 / 8388608]


def test_agrees_with_stdlib_wave(tmp_path: Path) -> None:
    """A file written by the stdlib wave module (stereo, 24-bit) reads back identically."""
    x = _ramp(500, 2)
    path = tmp_path / "std.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(3)
        w.setframerate(22050)
        w.writeframes(_encode(x, 24, False))
    samples, rate = read_wav_array(path)
    assert rate == 22050
    np.testing.assert_allclose(samples, x, atol=1e-6)


def test_g711_wav(tmp_path: Path) -> None:
    """mu-law and A-law WAVs (format tags 7 and 6) decode through the G.711 tables."""
    codes = np.arange(256, dtype=np.uint8)
    for tag, table in ((7, g711.ULAW_TABLE_DECODE), (6, g711.ALAW_TABLE_DECODE)):
        path = _write(
            tmp_path / f"g{tag}.wav", _fmt(tag, 1, 8000, 8), _chunk(b"data", codes.tobytes())
        )
        s, rate = read_wav_array(path)
        assert rate == 8000
        np.testing.assert_array_equal(s[:, 0], table.astype(np.float32) / 32768)
        assert wav_info(path).encoding == ("ulaw" if tag == 7 else "alaw")


def test_skips_unknown_chunks_and_odd_padding(tmp_path: Path) -> None:
    """LIST/fact chunks (odd-sized, padded) before and after fmt are skipped."""
    data = struct.pack("<3h", 1, 2, 3)
    path = _write(
        tmp_path / "c.wav",
        _chunk(b"LIST", b"INFOabc"),  # 7 bytes + pad byte
        _fmt(1, 1, 16000, 16),
        _chunk(b"fact", b"\x03\x00\x00\x00\x01"),
        _chunk(b"data", data),
        _chunk(b"id3 ", b"tail"),
    )
    s, rate = read_wav_array(path)
    assert rate == 16000
    assert (s[:, 0] * 32768).tolist() == [1, 2, 3]


def test_odd_sized_data_chunk(tmp_path: Path) -> None:
    """An 8-bit mono data chunk of odd size reads all of its frames."""
    path = _write(tmp_path / "o.wav", _fmt(1, 1, 8000, 8), _chunk(b"data", bytes([128] * 5)))
    assert read_wav_array(path)[0].shape == (5, 1)


def test_truncated_data_warns_and_reads_what_exists(tmp_path: Path) -> None:
    """A data chunk shorter than declared gives a warning naming the file and the whole frames."""
    blob = _riff(_fmt(1, 2, 8000, 16), _chunk(b"data", bytes(400)))
    path = tmp_path / "cut.wav"
    path.write_bytes(blob[:-101])  # 299 bytes of data remain: 74 whole stereo frames
    with pytest.warns(UserWarning, match="cut.wav"):
        s, _ = read_wav_array(path)
    assert s.shape == (74, 2)
    with pytest.warns(UserWarning):
        assert wav_info(path).truncated


@pytest.mark.parametrize("size", [0, 0xFFFFFFFF])
def test_unset_data_size_means_to_end_of_file(tmp_path: Path, size: int) -> None:
    """A data size of 0 or 0xFFFFFFFF (never finalised) reads to the end of the file."""
    body = struct.pack("<4h", 1, 2, 3, 4)
    blob = _riff(_fmt(1, 1, 8000, 16)) + b"data" + struct.pack("<I", size) + body
    path = tmp_path / "u.wav"
    path.write_bytes(blob)
    assert read_wav_array(path)[0].shape == (4, 1)


def test_header_cut_off_is_an_error(tmp_path: Path) -> None:
    """A file ending inside the fmt chunk, or before any data chunk, raises WavError."""
    blob = _riff(_fmt(1, 1, 8000, 16), _chunk(b"data", bytes(10)))
    path = tmp_path / "h.wav"
    path.write_bytes(blob[:30])
    with pytest.raises(WavError, match=r"h\.wav.*cut off"):
        read_wav_array(path)
    path.write_bytes(blob[:36])
    with pytest.raises(WavError, match="no 'data' chunk"):
        read_wav_array(path)


def test_text_file_is_not_a_wav(tmp_path: Path) -> None:
    """A text file raises WavError naming the file."""
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not audio\n")
    with pytest.raises(WavError, match=r"notes\.txt: not a WAV file") as info:
        read_wav(path)
    assert info.value.path == str(path)


def test_empty_file_is_not_a_wav(tmp_path: Path) -> None:
    """An empty file raises WavError."""
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(WavError, match="not a WAV"):
        read_wav_array(path)


@pytest.mark.parametrize(
    ("tag", "name"), [(2, "ADPCM"), (0x11, "IMA ADPCM"), (0x55, "MP3"), (0x1234, "unknown")]
)
def test_compressed_encodings_are_refused(tmp_path: Path, tag: int, name: str) -> None:
    """ADPCM, MP3-in-WAV and unknown tags raise WavError naming the encoding and the file."""
    body = struct.pack("<HHIIHH", tag, 1, 8000, 4000, 256, 4) + struct.pack("<HH", 2, 505)
    path = _write(tmp_path / "adpcm.wav", _chunk(b"fmt ", body), _chunk(b"data", bytes(256)))
    with pytest.raises(WavError, match=rf"adpcm\.wav: compressed .*{name}.*0x{tag:04X}"):
        read_wav_array(path)


def test_other_format_problems(tmp_path: Path) -> None:
    """Unsupported bit depths, bad extensible GUIDs, bad block align and data-before-fmt."""
    cases = {
        "bits12.wav": (_fmt(1, 1, 8000, 12), "unsupported sample size"),
        "float16.wav": (_fmt(3, 1, 8000, 16), "unsupported sample size"),
        "guid.wav": (_fmt(0xFFFE, 1, 8000, 16, b"\x01\x00" + bytes(14)), "sub-format GUID"),
        "norate.wav": (_fmt(1, 1, 0, 16), "sample rate"),
        "nochan.wav": (_fmt(1, 0, 8000, 16), "no channels"),
    }
    for name, (fmt, problem) in cases.items():
        path = _write(tmp_path / name, fmt, _chunk(b"data", bytes(8)))
        with pytest.raises(WavError, match=problem):
            read_wav_array(path)
    bad_block = _chunk(b"fmt ", struct.pack("<HHIIHH", 1, 2, 8000, 32000, 3, 16))
    with pytest.raises(WavError, match="block align"):
        read_wav_array(_write(tmp_path / "block.wav", bad_block, _chunk(b"data", bytes(8))))
    with pytest.raises(WavError, match="before any 'fmt '"):
        read_wav_array(
            _write(tmp_path / "order.wav", _chunk(b"data", bytes(8)), _fmt(1, 1, 8000, 16))
        )
    short_ext = _chunk(b"fmt ", struct.pack("<HHIIHH", 0xFFFE, 1, 8000, 16000, 2, 16))
    with pytest.raises(WavError, match="shorter than 40"):
        read_wav_array(_write(tmp_path / "ext.wav", short_ext, _chunk(b"data", bytes(8))))
    rifx = tmp_path / "rifx.wav"
    rifx.write_bytes(b"RIFX" + _riff()[4:])
    with pytest.raises(WavError, match="big-endian"):
        read_wav_array(rifx)


def test_missing_file(tmp_path: Path) -> None:
    """A missing file raises WavError naming it."""
    with pytest.raises(WavError, match=r"nothere\.wav: cannot read"):
        read_wav_array(tmp_path / "nothere.wav")


def test_read_wav_converts_to_session_formats(tmp_path: Path) -> None:
    """Stereo 44.1 kHz 24-bit -> mono PCM16 24 kHz / 16 kHz, or 8 kHz G.711, keeping the tone."""
    rate = 44100
    t = np.arange(rate) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    x = np.stack([tone, tone], axis=1)
    path = _write(tmp_path / "st.wav", _fmt(1, 2, rate, 24), _chunk(b"data", _encode(x, 24, False)))
    out = read_wav(path)
    assert len(out) == 24000 * 2
    y = pcm.float32_from_pcm16(out)
    assert abs(float(np.max(np.abs(y[1000:-1000]))) - 0.5) < 0.01
    assert len(read_wav(path, rate=16000)) == 16000 * 2
    ulaw = read_wav(path, format="g711_ulaw")
    assert len(ulaw) == 8000
    decoded = g711.ulaw_decode(np.frombuffer(ulaw, np.uint8)) / 32768
    assert abs(float(np.max(np.abs(decoded[500:-500]))) - 0.5) < 0.02
    assert len(read_wav(path, format="g711_alaw")) == 8000


def test_read_wav_mixes_opposite_channels(tmp_path: Path) -> None:
    """Mixing to mono averages the channels (equal and opposite channels cancel)."""
    x = np.stack([np.full(100, 0.5), np.full(100, -0.5)], axis=1)
    path = _write(tmp_path / "m.wav", _fmt(3, 2, 24000, 32), _chunk(b"data", _encode(x, 32, True)))
    assert read_wav(path) == bytes(200)


def test_read_wav_bad_arguments(tmp_path: Path) -> None:
    """A bad rate or format raises AudioFormatError."""
    path = tmp_path / "a.wav"
    write_wav(path, bytes(100))
    with pytest.raises(AudioFormatError):
        read_wav(path, rate=0)
    with pytest.raises(AudioFormatError):
        read_wav(path, format="ogg")  # type: ignore[arg-type]


def test_write_wav_roundtrips_through_stdlib_and_reader(tmp_path: Path) -> None:
    """write_wav output is a 16-bit PCM WAV the stdlib and read_wav_array both read back."""
    samples = np.array([0, 1000, -1000, 32767, -32768], dtype=np.int16)
    path = tmp_path / "w.wav"
    write_wav(path, pcm.pcm16_from_int16(samples), rate=16000)
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        assert np.array_equal(np.frombuffer(w.readframes(10), "<i2"), samples)
    back, rate = read_wav_array(path)
    assert rate == 16000
    assert np.array_equal(pcm.float32_to_int16(back[:, 0]), samples)


def test_write_wav_arrays(tmp_path: Path) -> None:
    """int16 arrays, float arrays (clipped) and 2-D stereo arrays are written."""
    path = tmp_path / "f.wav"
    write_wav(path, np.array([0.5, 2.0, -2.0, np.nan], dtype=np.float32))
    s, _ = read_wav_array(path)
    assert (s[:, 0] * 32768).tolist() == [16384, 32767, -32768, 0]
    stereo = np.array([[1, -1], [2, -2], [3, -3]], dtype=np.int16)
    write_wav(path, stereo, rate=48000)
    info = wav_info(path)
    assert (info.channels, info.rate, info.frames, info.bits) == (2, 48000, 3, 16)
    s, _ = read_wav_array(path)
    assert np.array_equal(pcm.float32_to_int16(s), stereo)
    write_wav(path, pcm.pcm16_from_int16(stereo), channels=2)
    assert wav_info(path).frames == 3


def test_write_wav_bad_input(tmp_path: Path) -> None:
    """Odd byte counts, channel mismatches, int32 arrays and bad rates raise AudioFormatError."""
    path = tmp_path / "bad.wav"
    with pytest.raises(AudioFormatError, match="odd"):
        write_wav(path, b"\x00\x00\x00")
    with pytest.raises(AudioFormatError, match="channels"):
        write_wav(path, np.zeros((4, 2), dtype=np.int16), channels=3)
    with pytest.raises(AudioFormatError, match="frames"):
        write_wav(path, np.zeros(5, dtype=np.int16), channels=2)
    with pytest.raises(AudioFormatError, match="int16 or float"):
        write_wav(path, np.zeros(4, dtype=np.int32))
    with pytest.raises(AudioFormatError):
        write_wav(path, bytes(4), rate=-1)
    with pytest.raises(AudioFormatError):
        write_wav(path, "text")  # type: ignore[arg-type]


def test_write_to_unwritable_path(tmp_path: Path) -> None:
    """A path in a missing directory raises WavError naming it."""
    with pytest.raises(WavError, match="cannot write"):
        write_wav(tmp_path / "no" / "such" / "dir.wav", bytes(4))


def test_wav_writer_header_valid_after_each_flush(tmp_path: Path) -> None:
    """While the writer is open, each flush leaves a complete readable WAV."""
    path = tmp_path / "stream.wav"
    writer = WavWriter(path, rate=24000, autoflush_ms=None)
    assert wav_info(path).frames == 0
    for n in range(1, 4):
        writer.write(np.full(240, n, dtype=np.int16))
        writer.flush()
        with wave.open(str(path), "rb") as w:
            assert w.getnframes() == 240 * n
        assert read_wav_array(path)[0].shape == (240 * n, 1)
    assert writer.duration_ms == 30.0
    writer.close()
    writer.close()
    assert writer.closed


def test_wav_writer_autoflush_survives_a_crash(tmp_path: Path) -> None:
    """Without close, autoflush leaves a valid file holding all but the last unflushed audio."""
    path = tmp_path / "crash.wav"
    writer = WavWriter(path, rate=8000, autoflush_ms=100)
    for _ in range(25):  # 25 x 10 ms: autoflush at 100 and 200 ms
        writer.write(bytes(160))
    with wave.open(str(path), "rb") as w:  # the writer was never closed
        assert w.getnframes() == 1600
    writer.close()
    assert wav_info(path).frames == 2000


def test_wav_writer_context_manager_and_closed_write(tmp_path: Path) -> None:
    """The context manager closes the file; writing afterwards raises WavError."""
    path = tmp_path / "cm.wav"
    with WavWriter(path, channels=2) as writer:
        writer.write(np.zeros((10, 2), dtype=np.float32))
        writer.write(b"")
    assert wav_info(path).frames == 10
    with pytest.raises(WavError, match="closed"):
        writer.write(bytes(4))
    with pytest.raises(AudioFormatError, match="channels"):
        WavWriter(path, channels=0)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=120), cut=st.integers(0, 200), flip=st.integers(0, 199))
def test_fuzzed_files_raise_only_wav_error(
    tmp_path: Path, data: bytes, cut: int, flip: int
) -> None:
    """Random, cut and bit-flipped files either read or raise WavError, nothing else."""
    good = _riff(_fmt(1, 2, 8000, 16), _chunk(b"LIST", b"abc"), _chunk(b"data", bytes(40)))
    blob = bytearray(good[:cut] + data)
    if blob:
        blob[flip % len(blob)] ^= 0xFF
    path = tmp_path / "fuzz.wav"
    path.write_bytes(bytes(blob))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            samples, rate = read_wav_array(path)
        except WavError:
            return
    assert samples.dtype == np.float32 and samples.ndim == 2 and rate > 0
