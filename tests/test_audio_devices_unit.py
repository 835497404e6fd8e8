"""Device-free tests for audio.devices, audio.speaker and audio.microphone.

A fake ``sounddevice`` module stands in for PortAudio; the stream callbacks are driven
directly with fake timing information, so the playback-tracker arithmetic is checked exactly.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from audio.devices import DeviceInfo, devices, resolve_device, sounddevice_module
from audio.exceptions import AudioFormatError, DeviceError, NoDeviceError, PortAudioMissing
from audio.microphone import Microphone
from audio.playback import AudioSink, AudioSource, HeardPosition, PlaybackTracker
from audio.speaker import Speaker

# the module itself (``audio.devices`` may be re-bound to the devices() function)
devices_mod = importlib.import_module("audio.devices")

RATE = 24000
BLOCK = 240  # 10 ms at 24 kHz


# ---------------------------------------------------------------------------- fakes


class FakeStream:
    """Records how it was opened; ``time`` is set by the test."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.callback = kwargs["callback"]
        self.time = 0.0
        self.latency = 0.05
        self.active = False
        self.closed = False

    def start(self) -> None:
        self.active = True

    def abort(self) -> None:
        self.active = False

    def close(self) -> None:
        self.closed = True


class FailingStream:
    """A stream whose constructor fails like PortAudio does."""

    def __init__(self, **kwargs: Any) -> None:
        raise RuntimeError("Error opening OutputStream: Invalid sample rate [PaErrorCode -9997]")


def fake_sd(
    listing: list[dict[str, Any]] | None = None, default: tuple[int, int] = (0, 1)
) -> SimpleNamespace:
    """A fake sounddevice module with the given device listing."""
    if listing is None:
        listing = [
            {
                "name": "Fake Mic",
                "hostapi": 0,
                "max_input_channels": 2,
                "max_output_channels": 0,
                "default_samplerate": 48000.0,
            },
            {
                "name": "Fake Speaker",
                "hostapi": 0,
                "max_input_channels": 0,
                "max_output_channels": 2,
                "default_samplerate": 24000.0,
            },
        ]
    module = SimpleNamespace(
        query_devices=lambda: listing,
        query_hostapis=lambda: [{"name": "FakeAPI"}],
        default=SimpleNamespace(device=list(default)),
        OutputStream=FakeStream,
        InputStream=FakeStream,
        streams=[],
    )
    return module


@pytest.fixture
def sd(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """Install the fake sounddevice module in audio.devices."""
    module = fake_sd()
    monkeypatch.setattr(devices_mod, "_module", module)
    return module


def info(
    index: int, name: str, ins: int, outs: int, din: bool = False, dout: bool = False
) -> DeviceInfo:
    """A DeviceInfo for resolution tests."""
    return DeviceInfo(index, name, "ALSA", ins, outs, 48000.0, din, dout)


LISTING = [
    info(0, "HDA Intel PCH: ALC892 Analog", 2, 2),
    info(1, "USB Headset", 1, 2, din=True),
    info(2, "pulse", 32, 32),
    info(3, "default", 32, 32, dout=True),
    info(4, "HDMI 0", 0, 8),
]


def status(underflow: bool = False, overflow: bool = False) -> SimpleNamespace:
    """Fake callback status flags."""
    return SimpleNamespace(output_underflow=underflow, input_overflow=overflow)


def pcm(samples: np.ndarray) -> bytes:
    """float samples -> PCM16 bytes."""
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def tone(n: int, value: float = 0.5) -> np.ndarray:
    """A constant-valued signal (easy to recognise after a 1:1 path)."""
    return np.full(n, value, dtype=np.float32)


class Driver:
    """Drives a Speaker's callback with a fake clock: block k reaches the DAC at k*block + lead."""

    def __init__(self, speaker: Speaker, lead: float = 0.05) -> None:
        self.speaker = speaker
        self.stream: FakeStream = speaker._stream
        self.lead = lead
        self.blocks = 0
        self.out = np.zeros((speaker.blocksize, 1), dtype=np.float32)
        self.period = speaker.blocksize / speaker.device_rate

    def block(self) -> np.ndarray:
        """Run one callback at the current time; return a copy of the output block."""
        now = self.blocks * self.period
        self.stream.time = now
        t = SimpleNamespace(currentTime=now, outputBufferDacTime=now + self.lead)
        self.speaker._callback(self.out, self.speaker.blocksize, t, status())
        self.blocks += 1
        return self.out[:, 0].copy()

    def at(self, seconds: float) -> None:
        """Set the stream clock (what the consumer side reads)."""
        self.stream.time = seconds


@pytest.fixture
def speaker(sd: SimpleNamespace) -> Speaker:
    """A started Speaker at 24 kHz on the fake device (1:1, 10 ms blocks, 50 ms prebuffer)."""
    sp = Speaker(rate=RATE, device_rate=RATE, blocksize=BLOCK, prebuffer_ms=50)
    sp.start()
    return sp


# ---------------------------------------------------------------------------- devices


def test_sounddevice_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing sounddevice package names the extra to install."""
    monkeypatch.setattr(devices_mod, "_module", None)
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(PortAudioMissing, match=r"realtime-voice\[audio\]"):
        sounddevice_module()


def test_portaudio_library_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing PortAudio library (OSError on import) names libportaudio2 and brew."""
    monkeypatch.setattr(devices_mod, "_module", None)

    def fail(name: str) -> Any:
        raise OSError("PortAudio library not found")

    monkeypatch.setattr(importlib, "import_module", fail)
    with pytest.raises(PortAudioMissing, match="libportaudio2") as caught:
        sounddevice_module()
    assert "brew install portaudio" in str(caught.value)


def test_devices_listing(sd: SimpleNamespace) -> None:
    """devices() reports names, channels, rates and the defaults."""
    found = devices()
    assert [d.name for d in found] == ["Fake Mic", "Fake Speaker"]
    assert found[0].is_default_input and not found[0].is_default_output
    assert found[1].is_default_output
    assert found[0].default_samplerate == 48000.0 and found[0].hostapi == "FakeAPI"
    assert "Fake Mic" in found[0].describe() and "default input" in found[0].describe()


def test_devices_listing_error_converted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A PortAudio failure while listing becomes a DeviceError."""
    module = fake_sd()

    def broken() -> Any:
        raise RuntimeError("PortAudio not initialized")

    module.query_devices = broken
    monkeypatch.setattr(devices_mod, "_module", module)
    with pytest.raises(DeviceError, match="listing sound devices"):
        devices()


@pytest.mark.parametrize(
    ("spec", "direction", "expected"),
    [
        (None, "input", 1),
        (None, "output", 3),
        (0, "input", 0),
        ("usb", "input", 1),
        ("DEFAULT", "output", 3),
        ("hdmi", "output", 4),
        ("pulse", "input", 2),
    ],
)
def test_resolve_device(spec: int | str | None, direction: Any, expected: int) -> None:
    """Devices resolve by default, index, or case-insensitive name substring."""
    assert resolve_device(spec, direction, LISTING).index == expected


def test_resolve_exact_name_wins() -> None:
    """An exact name beats an earlier substring match."""
    listing = [info(0, "pulse monitor", 2, 0), info(1, "pulse", 2, 2)]
    assert resolve_device("pulse", "input", listing).index == 1


def test_resolve_unknown_lists_devices() -> None:
    """An unknown name or index raises NoDeviceError listing what exists."""
    with pytest.raises(NoDeviceError, match="USB Headset") as caught:
        resolve_device("bluetooth", "input", LISTING)
    assert "HDMI 0" in str(caught.value)
    with pytest.raises(NoDeviceError, match="index 9"):
        resolve_device(9, "output", LISTING)


def test_resolve_no_input_channels() -> None:
    """A device without channels in that direction is refused, naming it."""
    with pytest.raises(NoDeviceError, match="no input channels"):
        resolve_device(4, "input", LISTING)


def test_resolve_no_input_device_at_all() -> None:
    """With no input device at all, the error says so."""
    outputs_only = [info(0, "HDMI", 0, 2), info(1, "Speakers", 0, 2)]
    with pytest.raises(NoDeviceError, match="there is no input device"):
        resolve_device(None, "input", outputs_only)
    with pytest.raises(NoDeviceError, match="there is no input device"):
        resolve_device("hdmi", "input", outputs_only)
    with pytest.raises(NoDeviceError, match="no devices at all"):
        resolve_device(None, "output", [])


def test_resolve_bad_arguments() -> None:
    """A bad device type or direction is rejected."""
    with pytest.raises(NoDeviceError):
        resolve_device(1.5, "input", LISTING)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        resolve_device(None, "sideways", LISTING)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- speaker


def test_speaker_implements_protocols(speaker: Speaker) -> None:
    """Speaker satisfies the AudioSink and PlaybackTracker protocols."""
    assert isinstance(speaker, AudioSink)
    assert isinstance(speaker, PlaybackTracker)


def test_speaker_opens_one_stream(sd: SimpleNamespace, speaker: Speaker) -> None:
    """The stream is opened once, mono float32 at the device rate with the given latency."""
    stream = speaker._stream
    assert stream.kwargs["samplerate"] == RATE and stream.kwargs["channels"] == 1
    assert stream.kwargs["dtype"] == "float32" and stream.kwargs["latency"] == 0.1
    assert stream.kwargs["device"] == 1 and stream.kwargs["blocksize"] == BLOCK
    speaker.start()
    assert speaker._stream is stream
    speaker.close()
    assert stream.closed
    with pytest.raises(DeviceError, match="closed"):
        speaker.start()


def test_speaker_open_error_converted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A PortAudio error opening the stream becomes a DeviceError naming the device."""
    module = fake_sd()
    module.OutputStream = FailingStream
    monkeypatch.setattr(devices_mod, "_module", module)
    with pytest.raises(DeviceError, match=r"Fake Speaker.*Invalid sample rate"):
        Speaker().start()


def test_speaker_default_device_rate(sd: SimpleNamespace) -> None:
    """Without device_rate the device's default rate is used, 10 ms blocks."""
    sp = Speaker()
    sp.start()
    assert sp.device_rate == 24000 and sp.blocksize == 240
    assert sp.device is not None and sp.device.name == "Fake Speaker"


def test_speaker_prebuffers_then_plays_exact_samples(speaker: Speaker) -> None:
    """Nothing plays until the prebuffer fills; then the enqueued samples come out unchanged."""
    drv = Driver(speaker)
    signal = np.linspace(-0.5, 0.5, 2400, dtype=np.float32)
    speaker.enqueue(pcm(signal[:960]), "a")  # 40 ms < 50 ms prebuffer
    assert not drv.block().any()
    speaker.enqueue(pcm(signal[960:]), "a")
    played = np.concatenate([drv.block() for _ in range(10)])
    expected = np.frombuffer(pcm(signal), "<i2").astype(np.float32) / 32768.0
    np.testing.assert_allclose(played, expected, atol=1e-6)
    assert speaker.underruns == 0


def test_speaker_short_clip_plays_after_stall(speaker: Speaker) -> None:
    """A clip shorter than the prebuffer plays once the producer has paused that long."""
    drv = Driver(speaker)
    speaker.enqueue(pcm(tone(480)), "a")
    outputs = [drv.block() for _ in range(10)]
    assert sum(int(o.any()) for o in outputs) == 2


def test_played_ms_follows_dac_time(speaker: Speaker) -> None:
    """played_ms counts only samples whose DAC time has passed."""
    drv = Driver(speaker, lead=0.05)
    speaker.enqueue(pcm(tone(RATE)), "a")  # 1 s
    for _ in range(10):
        drv.block()  # 100 ms handed to the driver, first block at the DAC at t=0.05
    drv.at(0.0499)
    assert speaker.played_ms("a") == 0.0  # handed over, not heard
    drv.at(0.05 + 0.0125)
    assert speaker.played_ms("a") == pytest.approx(12.5, abs=0.05)
    drv.at(0.05 + 0.1)
    assert speaker.played_ms("a") == pytest.approx(100.0)
    drv.at(5.0)
    assert speaker.played_ms("a") == pytest.approx(100.0)  # never more than was played
    assert speaker.played_ms("other") == 0.0
    assert speaker.is_playing


def test_played_ms_per_item_and_content_index(speaker: Speaker) -> None:
    """Consecutive items (and content parts) are tracked separately."""
    drv = Driver(speaker, lead=0.0)
    speaker.enqueue(pcm(tone(1200)), "a", 0)  # 50 ms
    speaker.enqueue(pcm(tone(720)), "a", 1)  # 30 ms
    speaker.enqueue(pcm(tone(1200)), "b")  # 50 ms
    for _ in range(14):
        drv.block()
    drv.at(0.065)
    assert speaker.played_ms("a", 0) == pytest.approx(50.0)
    assert speaker.played_ms("a", 1) == pytest.approx(15.0)
    assert speaker.played_ms("b") == 0.0
    drv.at(0.14)
    assert speaker.played_ms("a", 1) == pytest.approx(30.0)
    assert speaker.played_ms("b") == pytest.approx(50.0)
    assert not speaker.is_playing


def test_interrupt_fades_drops_and_reports(speaker: Speaker) -> None:
    """interrupt() fades over the next block, drops the queue and returns the stop position."""
    drv = Driver(speaker, lead=0.05)
    speaker.enqueue(pcm(tone(RATE, 0.5)), "a")
    for _ in range(20):
        drv.block()  # 200 ms handed over
    drv.at(0.2)  # heard: 150 ms
    assert speaker.played_ms("a") == pytest.approx(150.0)
    heard = speaker.interrupt()
    # the listener hears what the driver holds (200 ms) plus the fade block (10 ms)
    assert heard == HeardPosition("a", 0, pytest.approx(210.0))
    fade = drv.block()
    assert fade[0] == pytest.approx(0.5 * (1 - 1 / BLOCK), rel=1e-3)
    assert fade[-1] == 0.0 and np.all(np.diff(fade) <= 0)
    assert not np.concatenate([drv.block() for _ in range(5)]).any()
    drv.at(10.0)
    assert speaker.played_ms("a") == pytest.approx(210.0)
    assert not speaker.is_playing


def test_interrupt_ignores_later_audio_of_item(speaker: Speaker) -> None:
    """After interrupt() later audio of that item is ignored; other items play."""
    drv = Driver(speaker)
    speaker.enqueue(pcm(tone(4800)), "a")
    drv.block()
    speaker.interrupt()
    drv.block()
    speaker.enqueue(pcm(tone(4800)), "a")
    assert speaker.queued_ms == 0.0
    speaker.enqueue(pcm(tone(2400, 0.25)), "b")
    assert speaker.queued_ms == pytest.approx(100.0)
    played = np.concatenate([drv.block() for _ in range(8)])
    assert played.max() == pytest.approx(0.25, abs=1e-4)


def test_interrupt_when_idle_returns_none(speaker: Speaker) -> None:
    """Nothing playing: interrupt() returns None."""
    drv = Driver(speaker)
    assert speaker.interrupt() is None
    speaker.enqueue(pcm(tone(240)), "a")
    for _ in range(12):
        drv.block()
    drv.at(10.0)
    assert speaker.interrupt() is None


def test_interrupt_before_start_returns_none(sd: SimpleNamespace) -> None:
    """A speaker that never started has nothing to interrupt."""
    sp = Speaker(device_rate=RATE)
    assert sp.interrupt() is None
    assert sp.played_ms("a") == 0.0
    assert not sp.is_playing
    sp.clear()


def test_interrupt_race_with_callback(speaker: Speaker) -> None:
    """If a full-volume block is taken after the snapshot, the stop position still holds."""
    drv = Driver(speaker, lead=0.0)
    speaker.enqueue(pcm(tone(RATE)), "a")
    for _ in range(5):
        drv.block()
    heard = speaker.interrupt()
    assert heard is not None and heard.played_ms == pytest.approx(60.0)
    # simulate the callback having been mid-block: it plays the snapshot block unfaded
    req = speaker._int_req
    speaker._int_req = None
    drv.block()
    speaker._int_req = req
    tail = drv.block()
    assert not tail.any()
    drv.at(10.0)
    assert speaker.played_ms("a") == pytest.approx(60.0)


def test_clear_drops_without_ignoring(speaker: Speaker) -> None:
    """clear() drops the queue but later audio of the same item still plays."""
    drv = Driver(speaker)
    speaker.enqueue(pcm(tone(4800)), "a")
    for _ in range(6):
        drv.block()
    speaker.clear()
    drv.block()
    assert speaker.queued_ms == 0.0
    speaker.enqueue(pcm(tone(2400)), "a")
    assert speaker.queued_ms == pytest.approx(100.0)


def test_underrun_counted_inside_item_only(speaker: Speaker) -> None:
    """A gap inside an item is an underrun; the end of an item is not."""
    drv = Driver(speaker)
    speaker.enqueue(pcm(tone(1200)), "a")
    for _ in range(8):
        drv.block()  # plays 50 ms then runs dry
    speaker.enqueue(pcm(tone(1200)), "a")
    assert speaker.underruns == 1
    for _ in range(10):
        drv.block()
    speaker.enqueue(pcm(tone(1200)), "b")
    assert speaker.underruns == 1


def test_xruns_counted_from_status(speaker: Speaker) -> None:
    """PortAudio's output-underflow flag is counted."""
    out = np.zeros((BLOCK, 1), dtype=np.float32)
    t = SimpleNamespace(currentTime=0.0, outputBufferDacTime=0.02)
    speaker._callback(out, BLOCK, t, status(underflow=True))
    assert speaker.xruns == 1
    assert speaker.dac_lead == pytest.approx(0.02) and speaker.max_dac_lead == pytest.approx(0.02)


def test_missing_dac_time_falls_back_to_latency(speaker: Speaker) -> None:
    """A host API reporting no DAC time: the stream latency is used instead."""
    out = np.zeros((BLOCK, 1), dtype=np.float32)
    t = SimpleNamespace(currentTime=1.0, outputBufferDacTime=0.0)
    speaker._callback(out, BLOCK, t, status())
    assert speaker._log.dac_time[0] == pytest.approx(1.05)


def test_reference_listener_gets_each_block(speaker: Speaker) -> None:
    """Reference listeners receive every block as sent to the device, then can be removed."""
    drv = Driver(speaker)
    seen: list[tuple[float, int]] = []

    def listener(block: np.ndarray, rate: int) -> None:
        seen.append((float(block.max()), rate))

    speaker.add_reference_listener(listener)
    speaker.enqueue(pcm(tone(2400, 0.5)), "a")
    for _ in range(3):
        drv.block()
    assert seen == [(pytest.approx(0.5, abs=1e-4), RATE)] * 3
    speaker.remove_reference_listener(listener)
    drv.block()
    assert len(seen) == 3


def test_resampled_positions(sd: SimpleNamespace) -> None:
    """24 kHz audio on a 48 kHz device: positions stay in item milliseconds."""
    sp = Speaker(rate=RATE, device_rate=48000, prebuffer_ms=0)
    sp.start()
    drv = Driver(sp, lead=0.0)
    chunk = pcm(0.3 * np.sin(np.arange(2400) * 0.05).astype(np.float32))
    for _ in range(10):
        sp.enqueue(chunk, "a")  # 1 s in 100 ms pieces
    for _ in range(50):
        drv.block()
    drv.at(0.5)
    assert sp.played_ms("a") == pytest.approx(500.0, abs=0.1)
    out = np.concatenate([drv.block() for _ in range(3)])
    assert 0.25 < float(np.abs(out).max()) < 0.35


def test_enqueue_validation(speaker: Speaker) -> None:
    """Odd byte counts, non-bytes and non-str item ids are refused."""
    with pytest.raises(AudioFormatError):
        speaker.enqueue(b"\x00\x01\x02", "a")
    with pytest.raises(AudioFormatError):
        speaker.enqueue("abcd", "a")  # type: ignore[arg-type]
    with pytest.raises(AudioFormatError):
        speaker.enqueue(b"\x00\x00", 5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"latency": 0.0},
        {"latency": "medium"},
        {"prebuffer_ms": -1},
        {"buffer_seconds": 0.1},
        {"rate": 0},
        {"device_rate": 48000, "blocksize": 4},
        {"device_rate": 48000, "blocksize": 961},
    ],
)
def test_speaker_bad_arguments(sd: SimpleNamespace, kwargs: dict[str, Any]) -> None:
    """Bad constructor arguments raise AudioFormatError."""
    with pytest.raises(AudioFormatError):
        Speaker(**kwargs)


def test_ring_full_drops_and_counts(sd: SimpleNamespace) -> None:
    """Audio beyond the ring capacity is dropped and counted, never blocking."""
    sp = Speaker(rate=RATE, device_rate=RATE, buffer_seconds=1.0)
    sp.start()
    sp.enqueue(pcm(tone(RATE + 2400)), "a")
    assert sp.dropped_frames == 2400


async def test_drained_waits_for_heard(speaker: Speaker) -> None:
    """drained() returns only once the DAC time of the last queued sample has passed."""
    drv = Driver(speaker, lead=0.02)
    speaker.enqueue(pcm(tone(1200)), "a")  # 50 ms
    task = asyncio.create_task(speaker.drained())
    for _ in range(7):
        drv.block()
        await asyncio.sleep(0.005)
    assert not task.done()
    drv.at(drv.blocks * drv.period + 0.02)
    await asyncio.wait_for(task, 1.0)
    assert speaker.played_ms("a") == pytest.approx(50.0)


async def test_drained_after_interrupt(speaker: Speaker) -> None:
    """drained() returns after an interrupt once the fade has been heard."""
    drv = Driver(speaker, lead=0.0)
    speaker.enqueue(pcm(tone(RATE)), "a")
    drv.block()
    drv.block()
    speaker.interrupt()
    drv.block()
    drv.block()
    drv.at(1.0)
    await asyncio.wait_for(speaker.drained(), 1.0)


async def test_drained_raises_when_closed(speaker: Speaker) -> None:
    """drained() on a speaker closed mid-way raises DeviceError."""
    speaker.enqueue(pcm(tone(2400)), "a")
    task = asyncio.create_task(speaker.drained())
    await asyncio.sleep(0.01)
    speaker.close()
    with pytest.raises(DeviceError):
        await asyncio.wait_for(task, 1.0)


async def test_speaker_async_context(sd: SimpleNamespace) -> None:
    """async with opens and closes the stream."""
    async with Speaker(device_rate=RATE) as sp:
        stream = sp._stream
        assert stream.active
    assert stream.closed


# ---------------------------------------------------------------------------- microphone


def feed(mic: Microphone, block: np.ndarray) -> None:
    """Call the microphone's callback with one block of device samples."""
    mic._callback(block, len(block), SimpleNamespace(), status())


async def test_microphone_chunks_mono_resampled(sd: SimpleNamespace) -> None:
    """Stereo 48 kHz input comes out as mono 24 kHz PCM16 chunks of 40 ms."""
    mic = Microphone()
    assert isinstance(mic, AudioSource)
    t = np.arange(48000 * 2) / 48000
    left = (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    stereo = np.stack([left, left * 0.5], axis=1)
    chunks: list[bytes] = []
    async with mic:
        assert mic.device_rate == 48000 and mic.channels == 2 and mic.blocksize == 480
        it = aiter(mic)
        for k in range(0, len(stereo), 480):
            feed(mic, stereo[k : k + 480])
        while len(chunks) < 49:
            chunks.append(await anext(it))
    assert all(len(c) == 960 * 2 for c in chunks)
    y = np.frombuffer(b"".join(chunks), "<i2").astype(np.float32) / 32768
    # expected: the mono mix (0.75 * left) at 24 kHz, amplitude 0.3
    assert float(np.abs(y[2000:]).max()) == pytest.approx(0.3, abs=0.01)
    assert mic.level_dbfs == pytest.approx(20 * np.log10(0.3 / np.sqrt(2)), abs=0.3)
    with pytest.raises(StopAsyncIteration):
        await anext(it)


async def test_microphone_wakes_waiting_consumer(sd: SimpleNamespace) -> None:
    """A consumer waiting for audio is woken by the callback via the event loop."""
    mic = Microphone(chunk_ms=10, device_rate=24000, channels=1)
    async with mic:
        got = asyncio.create_task(anext(aiter(mic)))
        await asyncio.sleep(0.02)
        assert not got.done() and mic._waiting
        feed(mic, np.full((240, 1), 0.25, dtype=np.float32))
        chunk = await asyncio.wait_for(got, 1.0)
    assert len(chunk) == 480
    assert np.frombuffer(chunk, "<i2")[0] == round(0.25 * 32768)


async def test_microphone_silence_warning(
    sd: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    """More than 2 s of all-zero input logs one warning and sets is_silent."""
    mic = Microphone(device_rate=24000, channels=1, buffer_seconds=4.0)
    zeros = np.zeros((240, 1), dtype=np.float32)
    with caplog.at_level(logging.WARNING, logger="audio.microphone"):
        async with mic:
            it = aiter(mic)
            for _ in range(230):  # 2.3 s
                feed(mic, zeros)
            for _ in range(57):
                await anext(it)
            assert mic.is_silent and mic.silence_warnings == 1
            assert mic.level_dbfs == -120.0
            feed(mic, np.full((1920, 1), 0.1, dtype=np.float32))
            for _ in range(2):
                await anext(it)
            assert not mic.is_silent
    assert sum("only zeros" in r.getMessage() for r in caplog.records) == 1


async def test_microphone_overflow_counted(sd: SimpleNamespace) -> None:
    """A consumer that falls behind loses blocks, counted, without blocking the callback."""
    mic = Microphone(device_rate=24000, channels=1, buffer_seconds=0.1)
    async with mic:
        for _ in range(20):
            feed(mic, np.zeros((240, 1), dtype=np.float32))
        assert mic.overflows == 10 and mic.dropped_frames == 2400
        mic._callback(np.zeros((240, 1), np.float32), 240, SimpleNamespace(), status(overflow=True))
        assert mic.xruns == 1


def test_microphone_no_input_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """No input device at all: NoDeviceError listing the devices that exist."""
    module = fake_sd(
        [
            {
                "name": "HDMI",
                "hostapi": 0,
                "max_input_channels": 0,
                "max_output_channels": 2,
                "default_samplerate": 48000.0,
            }
        ],
        default=(-1, 0),
    )
    monkeypatch.setattr(devices_mod, "_module", module)
    with pytest.raises(NoDeviceError, match=r"no input device.*HDMI"):
        Microphone().start()


def test_microphone_too_many_channels(sd: SimpleNamespace) -> None:
    """Asking for more channels than the device has is a DeviceError."""
    with pytest.raises(DeviceError, match="2 input channels"):
        Microphone(channels=4).start()


@pytest.mark.parametrize(
    "kwargs",
    [{"chunk_ms": 5}, {"chunk_ms": 250}, {"channels": 0}, {"rate": -1}, {"buffer_seconds": 0}],
)
def test_microphone_bad_arguments(kwargs: dict[str, Any]) -> None:
    """Bad constructor arguments raise AudioFormatError."""
    with pytest.raises(AudioFormatError):
        Microphone(**kwargs)


def test_microphone_chunk_size() -> None:
    """chunk_ms sets the chunk length at the session rate."""
    assert Microphone(chunk_ms=10).chunk_frames == 240
    assert Microphone(rate=16000, chunk_ms=200).chunk_frames == 3200


def test_failing_listener_removed_stream_survives(speaker: Speaker) -> None:
    """A reference listener that raises is dropped and counted; playback goes on."""
    drv = Driver(speaker)
    calls: list[int] = []

    def bad(block: np.ndarray, rate: int) -> None:
        calls.append(rate)
        raise RuntimeError("echo canceller crashed")

    speaker.add_reference_listener(bad)
    speaker.enqueue(pcm(tone(2400, 0.5)), "a")
    first = drv.block()
    drv.block()
    assert calls == [RATE] and speaker.listener_errors == 1
    assert first.max() == pytest.approx(0.5, abs=1e-4)


class AbortFails(FakeStream):
    """A stream whose abort fails like a PortAudio error."""

    def abort(self) -> None:
        raise RuntimeError("Error stopping stream [PaErrorCode -9999]")


def test_close_error_converted_and_stream_closed(sd: SimpleNamespace) -> None:
    """A PortAudio error while closing becomes a DeviceError; the stream is still closed."""
    sd.OutputStream = AbortFails
    sp = Speaker(device_rate=RATE)
    sp.start()
    stream = sp._stream
    with pytest.raises(DeviceError, match="closing output stream"):
        sp.close()
    assert stream.closed


def test_close_counts_only_heard_audio(speaker: Speaker) -> None:
    """Audio the driver held when the stream was closed (aborted) is not counted as heard."""
    drv = Driver(speaker, lead=0.05)
    speaker.enqueue(pcm(tone(RATE)), "a")
    for _ in range(10):
        drv.block()
    drv.at(0.1)
    speaker.close()
    assert speaker.played_ms("a") == pytest.approx(50.0)
    assert not speaker.is_playing
