"""Benchmark the offline engines of the local server: STT, TTS and VAD.

Run from the repository root: ``python benchmarks/bench_engines.py`` (``--quick`` for one
repetition and no incremental run). Prints one table; each engine is compared with its peer
measured in the same run (faster-whisper vs pocketsphinx, Piper vs espeak-ng). Figures
depend on the machine and on its load, which is printed with them.

* STT: model load time, real-time factor (processing time / audio duration) on the shipped
  samples, and for incremental transcription the time ``finish()`` takes after the last
  audio of a question fed in real time.
* TTS: load time, time to first audio of a ~2 s sentence, real-time factor on a paragraph.
* VAD: CPU milliseconds per second of audio (PCM16 24 kHz in 20 ms chunks, resampling
  included) and the number of real-time streams one core sustains at that cost.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from realtime.server.stt import SttEngine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

__all__ = ["main"]

RATE = 24000
SAMPLES = ["greeting", "question", "tool_call", "long"]
SENTENCE = "What is the weather like in Paris today?"
PARAGRAPH = (
    "The local server speaks the realtime protocol without a network. It listens, "
    "transcribes what it hears, and answers with a synthetic voice. Every engine loads "
    "once and is shared by all sessions. Sentences are spoken as soon as they are ready."
)


def read_sample(name: str) -> bytes:
    """PCM16 24 kHz of a shipped sample."""
    with wave.open(str(ROOT / "share" / "samples" / f"{name}.wav")) as w:
        data: bytes = w.readframes(w.getnframes())
        return data


def seconds(pcm: bytes) -> float:
    """Duration of PCM16 24 kHz bytes."""
    return len(pcm) / 2 / RATE


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds one call of ``fn`` takes."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def best_transcribe(engine: SttEngine, pcm: bytes, reps: int) -> float:
    """Fastest of ``reps`` transcriptions of ``pcm``, in seconds."""
    return min(timed(lambda: engine.transcribe(pcm)) for _ in range(reps))


Row = tuple[str, str, str, str]


def bench_stt(reps: int, incremental: bool) -> list[Row]:
    """Load time, RTF per engine (and incremental finish latency for faster-whisper)."""
    from realtime.server.stt import FasterWhisperEngine, IncrementalTranscriber, PocketsphinxEngine

    rows: list[Row] = []
    audio = {n: read_sample(n) for n in SAMPLES}
    total_audio = sum(seconds(a) for a in audio.values())
    rtf: dict[str, float] = {}
    engines: list[tuple[str, Callable[[], SttEngine]]] = [
        ("faster-whisper", FasterWhisperEngine),
        ("pocketsphinx", PocketsphinxEngine),
    ]
    for name, factory in engines:
        t = time.perf_counter()
        engine = factory()
        load = time.perf_counter() - t
        rows.append(("STT", name, "model load", f"{load * 1000:.0f} ms"))
        engine.transcribe(audio["greeting"])  # warm-up
        spent = 0.0
        c0 = time.process_time()
        for pcm in audio.values():
            spent += best_transcribe(engine, pcm, reps)
        cpu = (time.process_time() - c0) / reps / total_audio
        rtf[name] = spent / total_audio
        what = "CPU seconds per audio second (all threads; load-independent)"
        rows.append(("STT", name, what, f"{cpu:.2f}"))
        for n in ("question", "long"):
            t_n = best_transcribe(engine, audio[n], reps)
            rows.append(
                (
                    "STT",
                    name,
                    f"RTF {n} ({seconds(audio[n]):.1f} s)",
                    f"{t_n / seconds(audio[n]):.2f}",
                )
            )
        rows.append(("STT", name, f"RTF all samples ({total_audio:.1f} s)", f"{rtf[name]:.2f}"))
        if incremental and name == "faster-whisper":
            pcm = audio["question"] + bytes(RATE * 2 // 2)  # + 500 ms silence, like a VAD stop
            waits = []
            for _ in range(reps):
                t_inc = IncrementalTranscriber(engine, interval_s=1.0)
                step = RATE * 2 // 50  # 20 ms
                start = time.perf_counter()
                for i in range(0, len(pcm), step):
                    t_inc.append(pcm[i : i + step])
                    ahead = (i + step) / 2 / RATE - (time.perf_counter() - start)
                    if ahead > 0:
                        time.sleep(ahead)
                t0 = time.perf_counter()
                done = t_inc.finish(speech_end_ms=(len(pcm) / 2 / RATE - 0.5) * 1000)
                waits.append(time.perf_counter() - t0)
            wait_ms = statistics.median(waits) * 1000
            what = "incremental finish() after real-time feed (question)"
            rows.append(("STT", name, what, f"{wait_ms:.0f} ms (final pass: {done.final_pass})"))
            vad_ms = [vad_driven_finish(engine) for _ in range(reps)]
            what = "  with VAD: request_pass() at pause start, finish() at speech_stopped"
            rows.append(("STT", name, what, f"{statistics.median(vad_ms):.0f} ms"))
            full = best_transcribe(engine, pcm, reps)
            rows.append(("STT", name, "  vs one full pass at commit", f"{full * 1000:.0f} ms"))
    ratio = rtf["faster-whisper"] / rtf["pocketsphinx"]
    rows.append(("STT", "ratio", "RTF faster-whisper / pocketsphinx", f"{ratio:.2f}x"))
    return rows


def vad_driven_finish(engine: SttEngine) -> float:
    """Feed the question + 700 ms silence in real time through the VAD, as the server would.

    A pass is requested once 64 ms of pause follow speech; at ``SpeechStopped`` the
    transcriber is finished. Returns the milliseconds ``finish()`` took.
    """
    from audio.vad import SpeechStopped, StreamingVad
    from realtime.server.stt import IncrementalTranscriber

    pcm = bytes(RATE // 5 * 2) + read_sample("question") + bytes(RATE * 7 // 10 * 2)
    vad = StreamingVad()
    inc = IncrementalTranscriber(engine, interval_s=1.0)
    step = RATE * 2 // 50
    start = time.perf_counter()
    requested = False
    for i in range(0, len(pcm), step):
        inc.append(pcm[i : i + step])
        for event in vad.feed(pcm[i : i + step]):
            if isinstance(event, SpeechStopped):
                t0 = time.perf_counter()
                inc.finish(speech_end_ms=event.speech_end_ms)
                return (time.perf_counter() - t0) * 1000
        if vad.silence_ms >= 64 and not requested:
            requested = inc.request_pass()
        elif vad.silence_ms == 0:
            requested = False
        ahead = (i + step) / 2 / RATE - (time.perf_counter() - start)
        if ahead > 0:
            time.sleep(ahead)
    raise RuntimeError("the VAD never reported the end of speech")


def bench_tts(reps: int) -> list[Row]:
    """Load time, time to first audio and RTF per TTS engine."""
    from realtime.server.tts import EspeakEngine, PiperEngine, TtsEngine, synthesize_stream

    rows: list[Row] = []
    ttfa: dict[str, float] = {}
    engines: list[tuple[str, Callable[[], TtsEngine]]] = [
        ("piper", PiperEngine),
        ("espeak", EspeakEngine),
    ]
    for name, factory in engines:
        t = time.perf_counter()
        engine = factory()
        rows.append(("TTS", name, "load", f"{(time.perf_counter() - t) * 1000:.0f} ms"))
        engine.synthesize("Warm up.")
        firsts = []
        for _ in range(reps + 2):
            t = time.perf_counter()
            _, pcm = next(iter(synthesize_stream(engine, SENTENCE)))
            firsts.append(time.perf_counter() - t)
        ttfa[name] = statistics.median(firsts)
        rows.append(("TTS", name, f"time to first audio ({seconds(pcm):.1f} s sentence)",
                     f"{ttfa[name] * 1000:.1f} ms"))  # fmt: skip
        best = float("inf")
        produced = 0.0
        for _ in range(reps):
            t = time.perf_counter()
            produced = sum(seconds(p) for _, p in synthesize_stream(engine, PARAGRAPH))
            best = min(best, time.perf_counter() - t)
        rows.append(("TTS", name, f"RTF paragraph ({produced:.1f} s)", f"{best / produced:.3f}"))
    rows.append(("TTS", "ratio", "first audio piper / espeak",
                 f"{ttfa['piper'] / ttfa['espeak']:.0f}x"))  # fmt: skip
    return rows


def bench_vad(reps: int) -> list[Row]:
    """CPU cost per audio second and real-time streams per core."""
    from audio.vad import StreamingVad, load_silero_vad

    rows: list[Row] = []
    t = time.perf_counter()
    model = load_silero_vad()
    rows.append(("VAD", "silero", "model load", f"{(time.perf_counter() - t) * 1000:.0f} ms"))
    speech = b"".join(read_sample(n) + bytes(RATE) for n in SAMPLES)
    pcm = speech * max(1, int(30 // seconds(speech)))  # ~30 s of speech and pauses
    dur = seconds(pcm)
    for chunk_ms in (20, 100):
        step = RATE * 2 * chunk_ms // 1000
        costs = []
        for _ in range(reps + 1):
            vad = StreamingVad(model)
            c0 = time.process_time()
            for i in range(0, len(pcm), step):
                vad.feed(pcm[i : i + step])
            costs.append((time.process_time() - c0) / dur * 1000)
        cpu_ms = min(costs)
        rows.append(("VAD", "silero", f"CPU per audio second ({chunk_ms} ms chunks)",
                     f"{cpu_ms:.1f} ms"))  # fmt: skip
        rows.append(("VAD", "silero", f"real-time streams per core ({chunk_ms} ms chunks)",
                     f"{1000 / cpu_ms:.0f}"))  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark and print the table."""
    parser = argparse.ArgumentParser(description="offline engine benchmarks")
    parser.add_argument("--quick", action="store_true", help="one repetition, no incremental")
    args = parser.parse_args(argv)
    reps = 1 if args.quick else 3
    rows = bench_vad(reps) + bench_tts(reps) + bench_stt(reps, incremental=not args.quick)
    load = os.getloadavg()
    print(f"# bench_engines: {os.cpu_count()} CPUs, load average {load[0]:.2f} at start of print")
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    head = ("what", "engine", "measure", "value")
    widths = [max(w, len(h)) for w, h in zip(widths, head, strict=True)]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
