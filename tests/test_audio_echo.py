"""Tests for audio.echo: the half-duplex EchoGate and the reference-listener hook."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest

from audio.echo import EchoGate
from audio.exceptions import AudioError, AudioFormatError
from audio.files import FileMicrophone, FileSpeaker, NullSpeaker
from audio.playback import AudioSource

CHUNK = bytes(range(256)) * 7 + bytes(128)  # 1920 bytes: 40 ms of 24 kHz PCM16


class FakeClock:
    """A manually advanced monotonic clock."""

    def __init__(self) -> None:
        self.t = 50.0

    def __call__(self) -> float:
        return self.t


class SteppingSource:
    """A microphone whose every chunk advances the fake clock by 40 ms."""

    def __init__(
        self, clock: FakeClock, chunks: int, on_step: Callable[[int], None] | None = None
    ) -> None:
        self.clock = clock
        self.chunks = chunks
        self.on_step = on_step

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._run()

    async def _run(self) -> AsyncIterator[bytes]:
        for i in range(1, self.chunks + 1):
            self.clock.t += 0.040
            if self.on_step is not None:
                self.on_step(i * 40)  # ms since the start
            yield CHUNK


def _pcm_ms(ms: float) -> bytes:
    return np.full(round(ms * 24), 3000, dtype="<i2").tobytes()


async def test_gate_drops_while_playing_and_for_the_tail() -> None:
    """Chunks are dropped while the speaker plays and for tail_ms after it stops."""
    clock = FakeClock()
    speaker = NullSpeaker(time_source=clock)
    source = SteppingSource(clock, 20)  # 800 ms
    gate = EchoGate(source, speaker, tail_ms=100, time_source=clock)
    assert isinstance(gate, AudioSource)
    speaker.enqueue(_pcm_ms(200), "a")  # plays from t=0 to 200 ms
    passed = [chunk async for chunk in gate]
    # chunks arrive at 40..800 ms; playing through 160 ms (at 200 it has ended), tail to < 260
    assert gate.gated_chunks == 6  # 40, 80, 120, 160 (playing), 200, 240 (tail)
    assert gate.passed_chunks == 14
    assert passed == [CHUNK] * 14


async def test_gate_silence_mode_keeps_the_timeline() -> None:
    """mode='silence' replaces gated chunks by PCM16 silence of the same length."""
    clock = FakeClock()
    speaker = NullSpeaker(time_source=clock)
    gate = EchoGate(
        SteppingSource(clock, 10), speaker, tail_ms=0, mode="silence", time_source=clock
    )
    speaker.enqueue(_pcm_ms(100), "a")
    out = [chunk async for chunk in gate]
    assert len(out) == 10
    assert out[:2] == [bytes(1920)] * 2  # 40 and 80 ms: playing; at 120 ms it has ended
    assert out[2:] == [CHUNK] * 8
    assert gate.gated_chunks == 2


async def test_gate_disabled_passes_everything() -> None:
    """With enabled=False (headphones) every chunk passes even while playing."""
    clock = FakeClock()
    speaker = NullSpeaker(time_source=clock)
    gate = EchoGate(SteppingSource(clock, 5), speaker, enabled=False, time_source=clock)
    speaker.enqueue(_pcm_ms(1000), "a")
    assert len([c async for c in gate]) == 5
    assert gate.gated_chunks == 0
    assert not gate.is_gating


async def test_gate_can_be_toggled_while_running() -> None:
    """Setting enabled during iteration takes effect at the next chunk."""
    clock = FakeClock()
    speaker = NullSpeaker(time_source=clock)

    def toggle(ms: int) -> None:
        if ms == 120:
            gate.enabled = False

    gate = EchoGate(SteppingSource(clock, 6, toggle), speaker, tail_ms=0, time_source=clock)
    speaker.enqueue(_pcm_ms(1000), "a")
    out = [chunk async for chunk in gate]
    assert gate.gated_chunks == 2  # 40 and 80 ms; from 120 ms on the gate is off
    assert len(out) == 4


async def test_gate_interrupted_speaker_reopens_after_tail() -> None:
    """After interrupt() the gate stays closed for the tail, then opens."""
    clock = FakeClock()
    speaker = NullSpeaker(time_source=clock)

    def barge_in(ms: int) -> None:
        if ms == 160:  # before the gate looks at the 160 ms chunk
            assert speaker.interrupt() is not None

    source = SteppingSource(clock, 10, barge_in)
    gate = EchoGate(source, speaker, tail_ms=70, time_source=clock)
    speaker.enqueue(_pcm_ms(5000), "a")
    out = [chunk async for chunk in gate]
    # gated: 40, 80, 120 (playing, last seen at 120 ms), 160 (tail); 200 is 80 ms after: open
    assert gate.gated_chunks == 4
    assert len(out) == 6


async def test_gate_with_file_microphone_and_speaker_in_real_time(tmp_path: Path) -> None:
    """Real clock: a 600 ms mic stream loses ~ the 150 ms of playback plus the 100 ms tail."""
    mic = FileMicrophone.from_pcm16(_pcm_ms(600), chunk_ms=20, realtime=True)
    speaker = FileSpeaker(tmp_path / "out.wav")
    gate = EchoGate(mic, speaker, tail_ms=100)
    speaker.enqueue(_pcm_ms(150), "a")
    chunks = [chunk async for chunk in gate]
    speaker.close()
    assert gate.gated_chunks + gate.passed_chunks == 30
    # ideal: chunks at 20..240 ms gated (12); allow scheduler jitter of a few chunks
    assert 9 <= gate.gated_chunks <= 18
    assert len(chunks) == gate.passed_chunks


def test_reference_listener_passthrough(tmp_path: Path) -> None:
    """add/remove_reference_listener reach the sink; the listener gets played blocks."""
    clock = FakeClock()
    speaker = NullSpeaker(time_source=clock)
    gate = EchoGate(SteppingSource(clock, 1), speaker, time_source=clock)
    blocks: list[int] = []

    def on_reference(block: np.ndarray, rate: int) -> None:
        blocks.append(len(block))

    gate.add_reference_listener(on_reference)
    speaker.enqueue(_pcm_ms(50), "a")
    clock.t += 1
    speaker.played_ms("a")
    assert blocks == [1200]
    gate.remove_reference_listener(on_reference)
    speaker.enqueue(_pcm_ms(50), "b")
    clock.t += 1
    speaker.played_ms("b")
    assert blocks == [1200]


def test_reference_listener_needs_a_capable_sink() -> None:
    """A sink without add_reference_listener gives a clear AudioError."""

    class PlainSink:
        is_playing = False

    gate = EchoGate(SteppingSource(FakeClock(), 1), PlainSink())
    with pytest.raises(AudioError, match="PlainSink does not provide a playback reference"):
        gate.add_reference_listener(lambda block, rate: None)


def test_gate_bad_arguments() -> None:
    """A negative tail or an unknown mode raises AudioFormatError."""
    source = SteppingSource(FakeClock(), 1)
    with pytest.raises(AudioFormatError, match="tail_ms"):
        EchoGate(source, NullSpeaker(), tail_ms=-1)
    with pytest.raises(AudioFormatError, match="mode"):
        EchoGate(source, NullSpeaker(), mode="mute")  # type: ignore[arg-type]
