"""Tests for audio.files: FileMicrophone, FileSpeaker and NullSpeaker."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from audio import pcm
from audio.exceptions import AudioError, AudioFormatError, WavError
from audio.files import FileMicrophone, FileSpeaker, NullSpeaker
from audio.playback import AudioSink, AudioSource, HeardPosition, PlaybackTracker
from audio.wav import read_wav_array, wav_info, write_wav


class FakeClock:
    """A manually advanced monotonic clock."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def advance(self, ms: float) -> None:
        self.t += ms / 1000.0


def _pcm_ms(ms: float, value: int = 1000, rate: int = 24000) -> bytes:
    return np.full(round(ms * rate / 1000), value, dtype="<i2").tobytes()


def _ramp_pcm(n: int) -> bytes:
    return (np.arange(n) % 30000).astype("<i2").tobytes()


async def _collect(source: FileMicrophone) -> list[bytes]:
    return [chunk async for chunk in source]


# -- FileMicrophone ---------------------------------------------------------------------------


async def test_microphone_reads_and_resamples_a_wav(tmp_path: Path) -> None:
    """A 48 kHz stereo WAV comes out as 24 kHz mono PCM16 chunks of 40 ms."""
    t = np.arange(48000) / 48000
    tone = (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    path = tmp_path / "in.wav"
    write_wav(path, np.stack([tone, tone], axis=1), rate=48000)
    mic = FileMicrophone(path, realtime=False)
    assert isinstance(mic, AudioSource)
    chunks = await _collect(mic)
    assert mic.chunk_bytes == 1920
    assert all(len(c) == 1920 for c in chunks)
    assert len(chunks) == 25
    audio = pcm.float32_from_pcm16(b"".join(chunks))
    assert abs(float(np.max(np.abs(audio[1000:-1000]))) - 0.5) < 0.01
    assert mic.chunks_delivered == 25


async def test_microphone_last_chunk_padded_or_short() -> None:
    """The last chunk is padded with silence by default, or shorter with pad_last=False."""
    data = _ramp_pcm(1000)  # 1000 samples, 480-sample chunks
    chunks = await _collect(FileMicrophone.from_pcm16(data, chunk_ms=20, realtime=False))
    assert [len(c) for c in chunks] == [960, 960, 960]
    assert chunks[-1][80:] == bytes(880)
    assert b"".join(chunks)[:2000] == data
    mic = FileMicrophone.from_pcm16(data, chunk_ms=20, realtime=False, pad_last=False)
    assert [len(c) for c in await _collect(mic)] == [960, 960, 80]


async def test_microphone_trailing_silence() -> None:
    """trailing_silence_ms appends silence after the audio."""
    mic = FileMicrophone.from_pcm16(
        _pcm_ms(40), chunk_ms=40, realtime=False, trailing_silence_ms=80
    )
    chunks = await _collect(mic)
    assert len(chunks) == 3
    assert chunks[1] == chunks[2] == bytes(1920)
    assert mic.duration_ms == 120.0


async def test_microphone_loops_seamlessly_until_stopped() -> None:
    """loop=True repeats the audio across chunk boundaries until stop()."""
    data = _ramp_pcm(700)
    mic = FileMicrophone.from_pcm16(data, chunk_ms=20, realtime=False, loop=True)
    out = []
    async for chunk in mic:
        out.append(chunk)
        if len(out) == 10:
            mic.stop()
    assert len(out) == 10
    joined = b"".join(out)
    assert joined == (data * 7)[: len(joined)]


async def test_microphone_each_pass_restarts() -> None:
    """Iterating twice replays the audio from the start."""
    mic = FileMicrophone.from_pcm16(_ramp_pcm(960), chunk_ms=20, realtime=False)
    assert await _collect(mic) == await _collect(mic)


async def test_microphone_realtime_pacing_without_drift() -> None:
    """Real-time chunks arrive on schedule: chunk i at about (i + 1) * chunk_ms."""
    mic = FileMicrophone.from_pcm16(_pcm_ms(300), chunk_ms=20, realtime=True)
    start = time.monotonic()
    arrivals = []
    async for _ in mic:
        arrivals.append(time.monotonic() - start)
    assert len(arrivals) == 15
    assert arrivals[0] >= 0.019
    assert arrivals[-1] >= 0.299
    assert arrivals[-1] < 0.300 + 0.1  # no accumulated drift beyond scheduler jitter
    lateness = [a - (i + 1) * 0.020 for i, a in enumerate(arrivals)]
    assert min(lateness) > -0.002  # never early (beyond the loop clock resolution)


async def test_microphone_catches_up_after_a_slow_consumer() -> None:
    """A consumer that stalls gets the backlog at once, then the schedule resumes (no drift)."""
    mic = FileMicrophone.from_pcm16(_pcm_ms(200), chunk_ms=20, realtime=True)
    start = time.monotonic()
    times = []
    async for _ in mic:
        times.append(time.monotonic() - start)
        if len(times) == 1:
            await asyncio.sleep(0.1)
    assert len(times) == 10
    assert times[-1] < 0.2 + 0.08


def test_microphone_bad_arguments(tmp_path: Path) -> None:
    """Bad files, chunk sizes, rates and empty loops raise typed errors."""
    text = tmp_path / "t.txt"
    text.write_text("not audio")
    with pytest.raises(WavError):
        FileMicrophone(text)
    with pytest.raises(AudioFormatError):
        FileMicrophone.from_pcm16(b"\x00", realtime=False)
    with pytest.raises(AudioFormatError):
        FileMicrophone.from_pcm16(b"", chunk_ms=0)
    with pytest.raises(AudioFormatError):
        FileMicrophone.from_pcm16(b"", rate=0)
    with pytest.raises(AudioFormatError):
        FileMicrophone.from_pcm16(b"", trailing_silence_ms=-1)
    with pytest.raises(AudioError, match="empty"):
        FileMicrophone.from_pcm16(b"", loop=True)


async def test_microphone_other_rate_and_empty(tmp_path: Path) -> None:
    """rate=16000 gives 16 kHz chunks; an empty recording yields nothing."""
    path = tmp_path / "a.wav"
    write_wav(path, _pcm_ms(100), rate=24000)
    chunks = await _collect(FileMicrophone(path, rate=16000, chunk_ms=50, realtime=False))
    assert [len(c) for c in chunks] == [1600, 1600]
    assert await _collect(FileMicrophone.from_pcm16(b"", realtime=False)) == []


# -- speakers: instant clock ------------------------------------------------------------------


async def test_instant_speaker_hears_everything_at_once(tmp_path: Path) -> None:
    """With the instant clock, enqueued audio is heard and written immediately."""
    path = tmp_path / "out.wav"
    spk = FileSpeaker(path, clock="instant")
    assert isinstance(spk, AudioSink) and isinstance(spk, PlaybackTracker)
    spk.enqueue(_pcm_ms(100), "item1")
    spk.enqueue(_pcm_ms(50), "item1")
    assert spk.played_ms("item1") == 150.0
    assert not spk.is_playing
    await spk.drained()
    spk.close()
    assert wav_info(path).frames == 3600


async def test_instant_interrupt_returns_last_item_and_ignores_it_afterwards() -> None:
    """interrupt() returns the last item's position and later audio of it is ignored."""
    spk = NullSpeaker(clock="instant")
    assert spk.interrupt() is None
    spk.enqueue(_pcm_ms(80), "a", 0)
    assert spk.interrupt() == HeardPosition("a", 0, 80.0)
    spk.enqueue(_pcm_ms(80), "a", 0)
    assert spk.played_ms("a") == 80.0
    assert spk.ignored_bytes == 3840
    assert spk.interrupt() is None
    spk.enqueue(_pcm_ms(20), "b", 1)
    assert spk.played_ms("b", 1) == 20.0


# -- speakers: real-time clock (fake time) ----------------------------------------------------


def test_realtime_played_ms_follows_the_clock() -> None:
    """Heard milliseconds grow with the clock, item by item, and stop at the end."""
    clock = FakeClock()
    spk = NullSpeaker(time_source=clock)
    spk.enqueue(_pcm_ms(100), "a")
    spk.enqueue(_pcm_ms(100), "b")
    assert spk.is_playing
    assert spk.played_ms("a") == 0.0
    clock.advance(30)
    assert spk.played_ms("a") == 30.0
    assert spk.queued_ms == 170.0
    clock.advance(100)
    assert spk.played_ms("a") == 100.0
    assert spk.played_ms("b") == 30.0
    clock.advance(500)
    assert spk.played_ms("b") == 100.0
    assert not spk.is_playing
    assert spk.played_ms("unknown") == 0.0


def test_realtime_gap_restarts_the_timeline() -> None:
    """Audio arriving after the queue ran dry starts playing when it arrives."""
    clock = FakeClock()
    spk = NullSpeaker(time_source=clock)
    spk.enqueue(_pcm_ms(50), "a")
    clock.advance(200)
    assert not spk.is_playing
    spk.enqueue(_pcm_ms(50), "a")
    assert spk.played_ms("a") == 50.0
    clock.advance(20)
    assert spk.played_ms("a") == 70.0


def test_realtime_interrupt_mid_item() -> None:
    """interrupt() returns the heard position, drops the queue and ignores that item later."""
    clock = FakeClock()
    spk = NullSpeaker(time_source=clock)
    spk.enqueue(_pcm_ms(200), "a", 0)
    spk.enqueue(_pcm_ms(200), "b", 0)
    clock.advance(123)
    position = spk.interrupt()
    assert position == HeardPosition("a", 0, 123.0)
    assert not spk.is_playing
    spk.enqueue(_pcm_ms(100), "a", 0)
    spk.enqueue(_pcm_ms(100), "b", 0)  # queued behind: also cancelled
    assert not spk.is_playing
    clock.advance(500)
    assert spk.played_ms("a") == 123.0
    assert spk.played_ms("b") == 0.0
    assert spk.interrupt() is None
    spk.enqueue(_pcm_ms(40), "c", 0)
    assert spk.is_playing


def test_realtime_clear_keeps_items_playable() -> None:
    """clear() drops the queue but does not mark the item interrupted."""
    clock = FakeClock()
    spk = NullSpeaker(time_source=clock)
    spk.enqueue(_pcm_ms(100), "a")
    clock.advance(40)
    spk.clear()
    assert not spk.is_playing
    spk.enqueue(_pcm_ms(100), "a")
    clock.advance(10)
    assert spk.played_ms("a") == 50.0


def test_file_speaker_writes_only_what_was_heard(tmp_path: Path) -> None:
    """An interrupted item is cut in the WAV at the heard position."""
    clock = FakeClock()
    path = tmp_path / "heard.wav"
    spk = FileSpeaker(path, time_source=clock)
    data = _ramp_pcm(24000)
    spk.enqueue(data, "a")
    clock.advance(250)
    position = spk.interrupt()
    assert position is not None and position.played_ms == 250.0
    spk.close()
    samples, rate = read_wav_array(path)
    assert rate == 24000
    written = pcm.pcm16_from_float32(samples[:, 0])
    assert written == data[: 6000 * 2]


def test_reference_listeners_get_played_blocks() -> None:
    """Listeners receive the played audio as float32 blocks at the speaker's rate."""
    clock = FakeClock()
    spk = NullSpeaker(rate=16000, time_source=clock)
    got: list[tuple[np.ndarray, int]] = []

    def listener(block: np.ndarray, rate: int) -> None:
        got.append((block, rate))

    spk.add_reference_listener(listener)
    spk.enqueue(_pcm_ms(100, value=16384, rate=16000), "a")
    clock.advance(20)
    spk.played_ms("a")
    clock.advance(200)
    spk.played_ms("a")
    assert [len(b) for b, _ in got] == [320, 1280]
    assert all(r == 16000 and b.dtype == np.float32 for b, r in got)
    assert np.all(np.concatenate([b for b, _ in got]) == 0.5)
    spk.remove_reference_listener(listener)
    spk.remove_reference_listener(listener)
    spk.enqueue(_pcm_ms(10, rate=16000), "b")
    clock.advance(50)
    spk.played_ms("b")
    assert len(got) == 2


def test_failing_listener_does_not_stop_playback() -> None:
    """A listener that raises is counted and playback goes on."""
    clock = FakeClock()
    spk = NullSpeaker(time_source=clock)

    def broken(block: np.ndarray, rate: int) -> None:
        raise RuntimeError("boom")

    spk.add_reference_listener(broken)
    spk.enqueue(_pcm_ms(40), "a")
    clock.advance(100)
    assert spk.played_ms("a") == 40.0
    assert spk.listener_errors == 1


def test_speaker_bad_input(tmp_path: Path) -> None:
    """Odd byte counts, unknown clocks and bad rates raise AudioFormatError."""
    spk = NullSpeaker()
    with pytest.raises(AudioFormatError, match="odd"):
        spk.enqueue(b"\x00", "a")
    with pytest.raises(AudioFormatError):
        spk.enqueue("abcd", "a")  # type: ignore[arg-type]
    with pytest.raises(AudioFormatError, match="clock"):
        NullSpeaker(clock="fast")  # type: ignore[arg-type]
    with pytest.raises(AudioFormatError):
        FileSpeaker(tmp_path / "x.wav", rate=0)
    with pytest.raises(AudioFormatError):
        NullSpeaker(block_ms=0)


def test_enqueue_copies_mutable_buffers() -> None:
    """A bytearray reused by the caller after enqueue does not change what is played."""
    clock = FakeClock()
    spk = NullSpeaker(time_source=clock)
    got: list[np.ndarray] = []
    spk.add_reference_listener(lambda block, rate: got.append(block.copy()))
    buf = bytearray(_pcm_ms(10, value=100))
    spk.enqueue(buf, "a")  # type: ignore[arg-type]
    buf[:] = bytes(len(buf))
    clock.advance(20)
    spk.played_ms("a")
    assert np.all(np.concatenate(got) == np.float32(100 / 32768))


# -- speakers: real time, real clock ----------------------------------------------------------


async def test_realtime_drained_waits_for_the_audio(tmp_path: Path) -> None:
    """drained() returns after the queued audio's duration; the WAV holds all of it."""
    path = tmp_path / "rt.wav"
    async with FileSpeaker(path) as spk:
        start = time.monotonic()
        spk.enqueue(_pcm_ms(150), "a")
        assert spk.is_playing
        await spk.drained()
        elapsed = time.monotonic() - start
        assert 0.149 <= elapsed < 0.3
        assert spk.played_ms("a") == 150.0
    assert wav_info(path).frames == 3600


async def test_ticker_feeds_listeners_while_playing() -> None:
    """While a loop runs, the ticker delivers reference blocks without any method calls."""
    spk = NullSpeaker(block_ms=10)
    total = []
    spk.add_reference_listener(lambda block, rate: total.append(len(block)))
    spk.enqueue(_pcm_ms(100), "a")
    await asyncio.sleep(0.2)
    assert sum(total) == 2400
    assert len(total) >= 5
    spk.close()


async def test_aclose_finishes_the_file(tmp_path: Path) -> None:
    """aclose() waits for queued audio, then finalises the WAV; exiting on error drops audio."""
    path = tmp_path / "a.wav"
    spk = FileSpeaker(path)
    spk.enqueue(_pcm_ms(60), "a")
    await spk.aclose()
    assert wav_info(path).frames == 1440
    with pytest.raises(RuntimeError):
        async with FileSpeaker(path) as spk2:
            spk2.enqueue(_pcm_ms(500), "a")
            raise RuntimeError("stop")
    assert wav_info(path).frames < 12000


async def test_microphone_into_speaker_round_trip(tmp_path: Path) -> None:
    """A FileMicrophone piped into an instant FileSpeaker reproduces the input WAV."""
    src = tmp_path / "src.wav"
    data = _ramp_pcm(4800)
    write_wav(src, data)
    dst = tmp_path / "dst.wav"
    async with FileSpeaker(dst, clock="instant") as spk:
        async for chunk in FileMicrophone(src, chunk_ms=10, realtime=False):
            spk.enqueue(chunk, "x")
    samples, _ = read_wav_array(dst)
    assert pcm.pcm16_from_float32(samples[:, 0]) == data
