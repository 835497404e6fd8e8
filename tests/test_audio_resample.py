"""Tests for audio.resample: soxr one-shot and the drift-free streaming resampler."""

from __future__ import annotations

import math

import numpy as np
import pytest

from audio.exceptions import AudioFormatError
from audio.resample import StreamResampler, check_rate, resample

CONVERSIONS = [(48000, 24000), (24000, 48000), (44100, 24000), (24000, 8000)]


def _sine(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds), dtype=np.float64) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _stream(resampler: StreamResampler, x: np.ndarray, sizes: list[int]) -> np.ndarray:
    out = []
    i = 0
    k = 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        out.append(resampler.process(x[i : i + n]))
        i += n
        k += 1
    out.append(resampler.flush())
    return np.concatenate(out)


def _db(ratio: float) -> float:
    return 20 * math.log10(ratio)


@pytest.mark.parametrize(("in_rate", "out_rate"), CONVERSIONS)
def test_long_stream_of_10ms_chunks_has_no_drift_and_keeps_level(
    in_rate: int, out_rate: int
) -> None:
    """60 s in 10 ms chunks: length tracks n_in*out/in at every chunk; level within 0.5 dB."""
    x = _sine(997, in_rate, 60.0)
    chunk = in_rate // 100
    rs = StreamResampler(in_rate, out_rate)
    n_in = n_out = 0
    worst = 0.0
    pieces = []
    for i in range(0, len(x), chunk):
        y = rs.process(x[i : i + chunk])
        pieces.append(y)
        n_in += chunk
        n_out += len(y)
        worst = max(worst, abs(n_out - n_in * out_rate / in_rate))
    assert worst < 1.0
    y = np.concatenate(pieces)
    steady = y[out_rate:-out_rate]
    peak = float(np.max(np.abs(steady)))
    rms = float(np.sqrt(np.mean(steady.astype(np.float64) ** 2)))
    assert abs(_db(peak / 0.5)) < 0.5
    assert abs(_db(rms / (0.5 / math.sqrt(2)))) < 0.5


@pytest.mark.parametrize(("in_rate", "out_rate"), CONVERSIONS)
def test_chunking_does_not_change_the_output(in_rate: int, out_rate: int) -> None:
    """Any chunk sizes (0, 1, odd, large) give the same samples as one big chunk."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(in_rate // 2) * 0.1).astype(np.float32)
    whole = _stream(StreamResampler(in_rate, out_rate), x, [len(x)])
    chunked = _stream(StreamResampler(in_rate, out_rate), x, [1, 0, 7, 441, 3, 480, 1000, 13])
    assert len(whole) == len(chunked)
    np.testing.assert_allclose(chunked, whole, atol=1e-6)


@pytest.mark.parametrize(("in_rate", "out_rate"), CONVERSIONS)
def test_stream_matches_one_shot_after_delay(in_rate: int, out_rate: int) -> None:
    """The stream equals soxr's one-shot output, shifted by the declared delay."""
    x = _sine(440, in_rate, 1.0) + _sine(1700, in_rate, 1.0, 0.2)
    rs = StreamResampler(in_rate, out_rate)
    y = _stream(rs, x, [in_rate // 100])
    ref = resample(x, in_rate, out_rate)
    expected_len = math.ceil(len(x) * out_rate / in_rate) + rs.delay
    assert len(y) == expected_len
    aligned = y[rs.delay : rs.delay + len(ref)]
    margin = out_rate // 50
    assert np.max(np.abs(aligned[margin:-margin] - ref[margin:-margin])) < 2e-3


@pytest.mark.parametrize(("in_rate", "out_rate"), CONVERSIONS)
def test_no_clicks_at_chunk_boundaries(in_rate: int, out_rate: int) -> None:
    """The largest sample-to-sample jump of the chunked output is that of the one-shot output."""
    x = _sine(1000, in_rate, 2.0, 0.8)
    y = _stream(StreamResampler(in_rate, out_rate), x, [in_rate // 100, 17, in_rate // 50])
    ref = resample(x, in_rate, out_rate)
    steady = slice(out_rate // 10, -out_rate // 10)
    assert np.max(np.abs(np.diff(y[steady]))) <= np.max(np.abs(np.diff(ref[steady]))) * 1.01


def test_latency_is_small() -> None:
    """The declared delay is a few ms, far below soxr's stream bursts (~38 ms)."""
    for in_rate, out_rate in CONVERSIONS:
        rs = StreamResampler(in_rate, out_rate)
        assert rs.delay_ms == rs.delay * 1000 / out_rate < 5.0


def test_downsampling_rejects_aliases() -> None:
    """A tone above the output Nyquist (20 kHz into 24 kHz) is attenuated by more than 60 dB."""
    x = _sine(20000, 48000, 0.5)
    y = _stream(StreamResampler(48000, 24000), x, [480])
    assert np.max(np.abs(y[1000:-1000])) < 0.5 * 10 ** (-60 / 20)


def test_passband_is_flat_near_the_edge() -> None:
    """A tone at 0.8 of the output Nyquist keeps its level within 0.5 dB."""
    x = _sine(3200, 24000, 0.5)
    y = _stream(StreamResampler(24000, 8000), x, [240])
    assert abs(_db(float(np.max(np.abs(y[1000:-1000]))) / 0.5)) < 0.5


def test_int16_stream() -> None:
    """int16 streams stay int16, round to nearest, and clip instead of wrapping."""
    x = np.round(_sine(440, 48000, 0.5, 0.999) * 32767).astype(np.int16)
    rs = StreamResampler(48000, 24000, dtype="int16")
    y = _stream(rs, x, [480])
    assert y.dtype == np.int16
    assert np.max(np.abs(y.astype(np.int32))) > 32000
    ref = resample(x, 48000, 24000)
    aligned = y[rs.delay : rs.delay + len(ref)].astype(np.int32)
    assert np.max(np.abs(aligned[500:-500] - ref[500:-500].astype(np.int32))) < 80


def test_stereo_stream() -> None:
    """Each channel of a [frames, 2] stream is resampled independently."""
    left = _sine(440, 48000, 0.5)
    right = _sine(880, 48000, 0.5, 0.25)
    stereo = np.stack([left, right], axis=1)
    rs = StreamResampler(48000, 24000, channels=2)
    y = _stream(rs, stereo, [480])
    assert y.shape[1] == 2
    mono_left = _stream(StreamResampler(48000, 24000), left, [480])
    mono_right = _stream(StreamResampler(48000, 24000), right, [480])
    np.testing.assert_allclose(y[:, 0], mono_left, atol=1e-6)
    np.testing.assert_allclose(y[:, 1], mono_right, atol=1e-6)


def test_mono_accepts_single_column() -> None:
    """A mono stream takes [frames, 1] chunks too and returns 1-D output."""
    rs = StreamResampler(48000, 24000)
    assert rs.process(np.zeros((480, 1), dtype=np.float32)).shape == (240,)


def test_unusual_ratio_uses_direct_taps() -> None:
    """A ratio with a huge numerator (44,101 -> 24,000): length, level and shape still right."""
    x = _sine(500, 44101, 1.0)
    rs = StreamResampler(44101, 24000)
    pieces = []
    n_in = n_out = 0
    for i in range(0, len(x), 441):
        piece = rs.process(x[i : i + 441])
        n_in += len(x[i : i + 441])
        n_out += len(piece)
        assert abs(n_out - n_in * 24000 / 44101) < 1.0
        pieces.append(piece)
    y = np.concatenate([*pieces, rs.flush()])
    assert abs(_db(float(np.max(np.abs(y[2000:-2000]))) / 0.5)) < 0.5
    ref = resample(x, 44101, 24000)
    aligned = y[rs.delay : rs.delay + len(ref)]
    assert np.max(np.abs(aligned[500:-500] - ref[500:-500])) < 2e-3


def test_flush_resets_for_a_new_stream() -> None:
    """After flush() the same object starts a fresh stream with identical output."""
    x = _sine(440, 24000, 0.2)
    rs = StreamResampler(24000, 16000)
    first = _stream(rs, x, [240])
    assert rs.frames_in == 0 and rs.frames_out == 0
    second = _stream(rs, x, [240])
    np.testing.assert_array_equal(first, second)
    assert len(rs.flush()) == 0  # nothing fed: nothing to flush


def test_equal_rates_pass_through() -> None:
    """Equal rates copy the input through, in the stream and one-shot."""
    x = _sine(440, 24000, 0.1)
    rs = StreamResampler(24000, 24000)
    assert np.array_equal(rs.process(x), x)
    assert rs.delay == 0
    assert len(rs.flush()) == 0
    assert resample(x, 24000, 24000) is x


def test_one_shot_keeps_dtype_and_shape() -> None:
    """One-shot resample returns the input dtype, mono or multichannel, with rounded length."""
    f = _sine(440, 44100, 0.1)
    out = resample(f, 44100, 24000)
    assert out.dtype == np.float32 and out.shape == (round(len(f) * 24000 / 44100),)
    i16 = (f * 32767).astype(np.int16)
    assert resample(i16, 44100, 24000).dtype == np.int16
    stereo = np.stack([f, f], axis=1)
    assert resample(stereo, 44100, 8000).shape == (round(len(f) * 8000 / 44100), 2)
    assert resample(np.zeros(0, dtype=np.float32), 8000, 24000).shape == (0,)


@pytest.mark.parametrize("rate", [0, -8000, 8000.5, "24000", True, None, 10_000_000])
def test_bad_rates(rate: object) -> None:
    """Zero, negative, fractional, non-numeric and absurd rates raise AudioFormatError."""
    with pytest.raises(AudioFormatError):
        check_rate(rate)
    with pytest.raises(AudioFormatError):
        StreamResampler(rate, 24000)  # type: ignore[arg-type]
    with pytest.raises(AudioFormatError):
        resample(np.zeros(10, dtype=np.float32), 24000, rate)  # type: ignore[arg-type]


def test_whole_float_rate_is_accepted() -> None:
    """A float rate with no fraction (e.g. a device's 48000.0) is accepted."""
    assert check_rate(48000.0) == 48000


def test_bad_arrays() -> None:
    """Wrong dtypes, shapes, channel counts and non-arrays raise AudioFormatError."""
    with pytest.raises(AudioFormatError, match="float32 or int16"):
        resample(np.zeros(10, dtype=np.float64), 48000, 24000)
    with pytest.raises(AudioFormatError, match="1-D"):
        resample(np.zeros((2, 2, 2), dtype=np.float32), 48000, 24000)
    with pytest.raises(AudioFormatError, match="numpy array"):
        resample([0.0, 1.0], 48000, 24000)  # type: ignore[arg-type]
    rs = StreamResampler(48000, 24000)
    with pytest.raises(AudioFormatError, match="dtype"):
        rs.process(np.zeros(10, dtype=np.int16))
    with pytest.raises(AudioFormatError, match="1-D"):
        rs.process(np.zeros((10, 2), dtype=np.float32))
    with pytest.raises(AudioFormatError, match="numpy array"):
        rs.process(b"\x00\x00")  # type: ignore[arg-type]
    stereo = StreamResampler(48000, 24000, channels=2)
    with pytest.raises(AudioFormatError, match="shape"):
        stereo.process(np.zeros(10, dtype=np.float32))


def test_bad_constructor_arguments() -> None:
    """Bad channel counts, dtypes and qualities raise AudioFormatError."""
    with pytest.raises(AudioFormatError, match="channels"):
        StreamResampler(48000, 24000, channels=0)
    with pytest.raises(AudioFormatError, match="dtype"):
        StreamResampler(48000, 24000, dtype="float64")
    with pytest.raises(AudioFormatError, match="quality"):
        StreamResampler(48000, 24000, quality="best")  # type: ignore[arg-type]


@pytest.mark.parametrize("quality", ["LQ", "MQ", "HQ", "VHQ"])
def test_every_quality_keeps_level(quality: str) -> None:
    """Every quality preset passes a 1 kHz tone within 0.5 dB."""
    y = _stream(StreamResampler(48000, 24000, quality=quality), _sine(1000, 48000, 0.3), [480])  # type: ignore[arg-type]
    assert abs(_db(float(np.max(np.abs(y[1000:-1000]))) / 0.5)) < 0.5
