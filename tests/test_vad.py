"""Tests for audio.vad: the Silero model wrapper, the pure segmenter and the streaming VAD."""

from __future__ import annotations

import sys
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime (the server extra) is not installed")

from audio.exceptions import AudioError, AudioFormatError
from audio.vad import (
    WINDOW_MS,
    SileroVad,
    SpeechStarted,
    SpeechStopped,
    StreamingVad,
    VadSegmenter,
    default_model_path,
    load_silero_vad,
)

SAMPLES = Path(__file__).resolve().parents[1] / "share" / "samples"
RATE = 24000


def read_sample(name: str) -> bytes:
    """PCM16 24 kHz bytes of a shipped sample."""
    with wave.open(str(SAMPLES / f"{name}.wav")) as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1
        return w.readframes(w.getnframes())


def silence(ms: int) -> bytes:
    """Digital silence of ``ms`` milliseconds at 24 kHz."""
    return bytes(RATE * ms // 1000 * 2)


def speech_bounds_ms(pcm: bytes) -> tuple[float, float]:
    """First and last 10 ms frame whose RMS is within 40 dB of the loudest frame."""
    x = np.frombuffer(pcm, "<i2").astype(np.float32)
    frame = RATE // 100
    n = len(x) // frame
    rms = np.sqrt(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1))
    loud = np.nonzero(rms > rms.max() * 0.01)[0]
    return float(loud[0] * 10), float((loud[-1] + 1) * 10)


def run(vad: StreamingVad, pcm: bytes, chunk: int) -> list[SpeechStarted | SpeechStopped]:
    """Feed ``pcm`` in chunks of ``chunk`` bytes; returns all events."""
    vad.reset()
    events: list[SpeechStarted | SpeechStopped] = []
    for i in range(0, len(pcm), chunk):
        events += vad.feed(pcm[i : i + chunk])
    return events


@pytest.fixture(scope="module")
def model() -> SileroVad:
    """The shared Silero model."""
    return load_silero_vad()


@pytest.fixture(scope="module")
def utterance() -> tuple[bytes, float, float]:
    """1 s silence + the question sample + 1.5 s silence, with its speech bounds in ms."""
    speech = read_sample("question")
    pcm = silence(1000) + speech + silence(1500)
    return pcm, *speech_bounds_ms(pcm)


def test_model_is_cached_and_shared(model: SileroVad) -> None:
    """load_silero_vad returns one object per model file."""
    assert load_silero_vad() is model
    assert load_silero_vad(default_model_path()) is model


def test_silence_gives_no_events(model: SileroVad) -> None:
    """Three seconds of silence produce no events and near-zero probabilities."""
    vad = StreamingVad(model)
    assert run(vad, silence(3000), 4800) == []
    assert vad.position_ms == 3000 // WINDOW_MS * WINDOW_MS


def test_white_noise_is_not_speech(model: SileroVad) -> None:
    """Loud white noise is not detected as speech."""
    rng = np.random.default_rng(1)
    noise = (rng.normal(0, 0.1, RATE * 3) * 32767).clip(-32768, 32767).astype("<i2")
    vad = StreamingVad(model)
    assert run(vad, noise.tobytes(), 4800) == []
    stream = model.stream()
    probs = stream.process(rng.normal(0, 0.1, 16000 * 2).astype(np.float32))
    assert len(probs) == 2 * 16000 // 512 and probs.max() < 0.5


def test_speech_gives_one_start_stop_pair(
    model: SileroVad, utterance: tuple[bytes, float, float]
) -> None:
    """Speech framed by silence: one start/stop pair within 60 ms of the real bounds."""
    pcm, start, end = utterance
    events = run(StreamingVad(model), pcm, 4800)
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped]
    started, stopped = events
    assert isinstance(started, SpeechStarted) and isinstance(stopped, SpeechStopped)
    assert abs(started.speech_start_ms - start) <= 60
    assert started.audio_start_ms == started.speech_start_ms - 300
    assert abs(stopped.speech_end_ms - end) <= 60
    assert 500 <= stopped.audio_end_ms - stopped.speech_end_ms < 500 + WINDOW_MS


def test_chunk_size_does_not_matter(
    model: SileroVad, utterance: tuple[bytes, float, float]
) -> None:
    """10 ms, 100 ms and odd-sized chunks give the same events."""
    pcm = utterance[0]
    vad = StreamingVad(model)
    ten = run(vad, pcm, 480)
    assert ten == run(vad, pcm, 4800)
    assert ten == run(vad, pcm, 1001)
    assert len(ten) == 2


def test_prefix_padding_and_silence_duration_honoured(
    model: SileroVad, utterance: tuple[bytes, float, float]
) -> None:
    """prefix_padding_ms moves audio_start_ms; silence_duration_ms moves audio_end_ms."""
    pcm = utterance[0]
    vad = StreamingVad(model, prefix_padding_ms=100, silence_duration_ms=1000)
    started, stopped = run(vad, pcm, 4800)
    assert isinstance(started, SpeechStarted) and isinstance(stopped, SpeechStopped)
    assert started.audio_start_ms == started.speech_start_ms - 100
    assert 1000 <= stopped.audio_end_ms - stopped.speech_end_ms < 1000 + WINDOW_MS


def test_prefix_padding_clamped_at_zero(model: SileroVad) -> None:
    """Speech at the very start gives audio_start_ms 0, not a negative position."""
    pcm = read_sample("greeting")[RATE * 2 * 150 // 1000 :] + silence(800)
    events = run(StreamingVad(model), pcm, 4800)
    assert isinstance(events[0], SpeechStarted)
    assert events[0].audio_start_ms == 0 and events[0].speech_start_ms < 300


def test_threshold_honoured(model: SileroVad, utterance: tuple[bytes, float, float]) -> None:
    """A threshold above every probability hides the speech."""
    pcm = utterance[0]
    vad = StreamingVad(model)
    probs: list[float] = []
    vad.reset()
    for i in range(0, len(pcm), 4800):
        vad.feed(pcm[i : i + 4800])
        probs += vad.last_probabilities.tolist()
    peak = max(probs)
    assert peak > 0.8
    high = StreamingVad(model, threshold=min(1.0, peak + 0.001))
    assert run(high, pcm, 4800) == []


def test_sixteen_khz_input(model: SileroVad, utterance: tuple[bytes, float, float]) -> None:
    """rate=16000 input skips resampling and gives the same speech bounds (within a window)."""
    pcm = utterance[0]
    x = np.frombuffer(pcm, "<i2")
    from audio.resample import resample

    pcm16k = np.asarray(resample(x, RATE, 16000), dtype="<i2").tobytes()
    a = run(StreamingVad(model), pcm, 4800)
    b = run(StreamingVad(model, rate=16000), pcm16k, 3200)
    assert len(a) == len(b) == 2
    for ea, eb in zip(a, b, strict=True):
        assert type(ea) is type(eb)
    assert abs(a[0].speech_start_ms - b[0].speech_start_ms) <= WINDOW_MS  # type: ignore[union-attr]


def test_streams_share_one_model_independently(
    model: SileroVad, utterance: tuple[bytes, float, float]
) -> None:
    """Interleaved streams on one model (from two threads) each get their own events."""
    pcm = utterance[0]
    expected = run(StreamingVad(model), pcm, 4800)
    results: dict[int, list[SpeechStarted | SpeechStopped]] = {}

    def worker(k: int, data: bytes) -> None:
        results[k] = run(StreamingVad(model), data, 4800)

    threads = [
        threading.Thread(target=worker, args=(0, pcm)),
        threading.Thread(target=worker, args=(1, silence(len(pcm) // 48))),
        threading.Thread(target=worker, args=(2, pcm)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[0] == expected and results[2] == expected
    assert results[1] == []


def test_configure_mid_stream_keeps_position(model: SileroVad) -> None:
    """configure() changes settings without resetting the stream position."""
    vad = StreamingVad(model)
    vad.feed(silence(640))
    vad.configure(0.6, 200, 300)
    assert vad.position_ms == 640
    assert vad.segmenter.threshold == 0.6 and vad.segmenter.silence_duration_ms == 300


def test_segmenter_pure_sequence() -> None:
    """Exact event positions for a scripted probability sequence."""
    seg = VadSegmenter(threshold=0.5, prefix_padding_ms=64, silence_duration_ms=96, window_ms=32)
    probs = [0.0] * 5 + [0.9] * 4 + [0.0] * 3 + [0.0] * 2
    events = seg.push_many(probs)
    assert events == [SpeechStarted(96, 160), SpeechStopped(384, 288)]
    assert not seg.speaking and seg.position_ms == 14 * 32


def test_segmenter_hysteresis_and_short_gaps() -> None:
    """Probabilities just under the threshold continue speech; short gaps do not stop it."""
    seg = VadSegmenter(threshold=0.5, prefix_padding_ms=0, silence_duration_ms=100, window_ms=10)
    assert seg.push_many([0.9, 0.4, 0.4, 0.0, 0.0, 0.9]) == [SpeechStarted(0, 0)]
    assert seg.speaking
    events = seg.push_many([0.0] * 10)
    assert events == [SpeechStopped(160, 60)]


def test_segmenter_silence_ms_tracks_pauses() -> None:
    """silence_ms counts the pause since the last speech window, and is 0 otherwise."""
    seg = VadSegmenter(0.5, 0, 100, window_ms=10)
    seg.push_many([0.0, 0.9, 0.9])
    assert seg.silence_ms == 0
    seg.push_many([0.0, 0.0, 0.0])
    assert seg.silence_ms == 30
    seg.push(0.9)
    assert seg.silence_ms == 0
    seg.push_many([0.0] * 10)
    assert not seg.speaking and seg.silence_ms == 0


def test_segmenter_threshold_and_silence_duration() -> None:
    """Below-threshold probabilities never start speech; silence_duration_ms sets the stop."""
    assert VadSegmenter(threshold=0.7, window_ms=10).push_many([0.69] * 100) == []
    long = VadSegmenter(0.5, 0, 500, window_ms=10)
    short = VadSegmenter(0.5, 0, 200, window_ms=10)
    probs = [1.0] * 10 + [0.0] * 30 + [1.0] * 10 + [0.0] * 60
    assert long.push_many(probs) == [SpeechStarted(0, 0), SpeechStopped(1000, 500)]
    assert short.push_many(probs) == [
        SpeechStarted(0, 0),
        SpeechStopped(300, 100),
        SpeechStarted(400, 400),
        SpeechStopped(700, 500),
    ]


def test_segmenter_rejects_bad_settings() -> None:
    """Out-of-range settings raise AudioFormatError."""
    with pytest.raises(AudioFormatError):
        VadSegmenter(threshold=1.5)
    with pytest.raises(AudioFormatError):
        VadSegmenter(prefix_padding_ms=-1)
    with pytest.raises(AudioFormatError):
        VadSegmenter(window_ms=0)


def test_bad_model_path_is_clear(tmp_path: Path) -> None:
    """A missing or unreadable model file raises AudioError naming it."""
    with pytest.raises(AudioError, match="not found"):
        SileroVad("/nonexistent/vad.onnx")
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not a model")
    with pytest.raises(AudioError, match=r"bogus\.onnx"):
        SileroVad(bogus)


def test_missing_onnxruntime_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without onnxruntime the error says which extra to install."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(AudioError, match=r"realtime-voice\[server\]"):
        SileroVad()


def test_stream_keeps_partial_windows(model: SileroVad) -> None:
    """Samples short of a window are kept: 3 x 200 samples give one probability at the end."""
    stream = model.stream()
    x = np.zeros(200, np.float32)
    assert len(stream.process(x)) == 0
    assert len(stream.process(x)) == 0
    assert len(stream.process(x)) == 1


def test_espeak_speech_detected(model: SileroVad) -> None:
    """Formant speech (espeak-ng) framed by silence gives one pair near its bounds."""
    tts = pytest.importorskip("realtime.server.tts")
    try:
        engine = tts.load_tts("espeak")
    except Exception as exc:  # no espeak-ng library or command here
        pytest.skip(f"espeak-ng unavailable: {exc}")
    pcm = silence(700) + engine.synthesize("Good morning, how are you today?") + silence(1200)
    start, end = speech_bounds_ms(pcm)
    events = run(StreamingVad(model), pcm, 960)
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped]
    assert abs(events[0].speech_start_ms - start) <= 60  # type: ignore[union-attr]
    assert abs(events[1].speech_end_ms - end) <= 60  # type: ignore[union-attr]
