"""Microphone: a PortAudio input stream delivered as an async iterator of PCM16 chunks.

The ``sounddevice.InputStream`` runs at the device's default rate (or a requested one).
Its callback only copies the block into a preallocated :class:`~audio.ring.SampleRing`
(counting overflows; it never blocks) and, when the consumer is waiting, wakes it with
``loop.call_soon_threadsafe``. Everything else happens on the event loop: the consumer
drains the ring, mixes to mono, resamples to the session rate with
:class:`~audio.resample.StreamResampler` and yields fixed-size PCM16 chunks::

    async with Microphone() as mic:
        async for chunk in mic:          # 40 ms of PCM16 at 24 kHz by default
            session.append_audio(chunk)

A warning is logged (and :attr:`Microphone.silence_warnings` counted) when the input stays
all zeros for more than ``silence_warning_s`` (muted or wrong device).

Open speakers: give the microphone the speaker it competes with and it removes the echo::

    async with Speaker() as speaker, Microphone(speaker=speaker) as mic:
        print(mic.echo_mode)             # "aec", or "gate" when the canceller cannot load

``echo="auto"`` (the default when a speaker is given) runs :class:`~audio.aec.EchoCanceller`
(WebRTC's AEC3; the ``aec`` extra) on the consumer side, fed the speaker's timed reference and
this stream's ADC times (recorded by the callback in a preallocated
:class:`~audio.timeline.DeviceTimeline`), and falls back to the half-duplex
:class:`~audio.echo.EchoGate` when the canceller cannot load (:attr:`Microphone.echo_note`
says why). ``echo="aec"`` insists (raising :class:`~audio.exceptions.EchoCancellerUnavailable`),
``"gate"`` and ``"off"`` choose; an :class:`~audio.aec.EchoCanceller` instance can be passed
to choose its options. Without a speaker there is nothing to cancel (``"off"``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .aec import EchoCanceller
from .devices import DeviceInfo, close_stream, device_error, resolve_device, sounddevice_module
from .echo import EchoGate, ReferenceSource
from .exceptions import AudioError, AudioFormatError, DeviceError, EchoCancellerUnavailable
from .pcm import pcm16_from_float32
from .resample import StreamResampler, check_rate
from .ring import SampleRing
from .timeline import DeviceTimeline

__all__ = ["EchoMode", "Microphone"]

EchoMode = Literal["auto", "aec", "gate", "off"]
_ECHO_MODES = ("auto", "aec", "gate", "off")

log = logging.getLogger(__name__)

_FLOOR_DBFS = -120.0


class Microphone:
    """Captures from a sound device; ``async for chunk in mic`` yields PCM16 mono chunks.

    Arguments: *device* (index, name substring or ``None`` for the default input), *rate*
    (the session rate of the chunks), *chunk_ms* (10-200, default 40), *channels* (captured
    channels, mixed to mono; default ``min(2, device channels)``), *device_rate* (default:
    the device's default rate), *blocksize* (frames per callback; default 10 ms), *latency*
    (seconds or ``"low"``/``"high"``), *buffer_seconds* (ring capacity) and
    *silence_warning_s*; *speaker* and *echo* (see the module docstring: echo cancellation
    against that speaker, ``"auto"`` by default).

    Iteration ends when the microphone is closed. Use one iterator at a time (the ring has a
    single consumer). Opening raises
    :class:`~audio.exceptions.PortAudioMissing`, :class:`~audio.exceptions.NoDeviceError`
    (listing the devices) or :class:`~audio.exceptions.DeviceError`.
    """

    def __init__(
        self,
        device: int | str | None = None,
        rate: int = 24000,
        chunk_ms: float = 40.0,
        channels: int | None = None,
        device_rate: int | None = None,
        blocksize: int | None = None,
        latency: float | str = "high",
        buffer_seconds: float = 2.0,
        silence_warning_s: float = 2.0,
        *,
        speaker: Any = None,
        echo: EchoMode | EchoCanceller = "auto",
    ) -> None:
        self.rate = check_rate(rate, "rate")
        if not 10.0 <= float(chunk_ms) <= 200.0:
            raise AudioFormatError(f"chunk_ms must be from 10 to 200, got {chunk_ms!r}")
        if channels is not None and (
            isinstance(channels, bool) or not isinstance(channels, int) or not 1 <= channels <= 64
        ):
            raise AudioFormatError(f"channels must be an int from 1 to 64, got {channels!r}")
        if not 0.1 <= float(buffer_seconds) <= 600.0:
            raise AudioFormatError(f"buffer_seconds must be in [0.1, 600], got {buffer_seconds!r}")
        self.chunk_ms = float(chunk_ms)
        self.chunk_frames = max(1, round(self.rate * self.chunk_ms / 1000.0))
        self._device_spec = device
        self._channels_request = channels
        self._dev_rate = 0 if device_rate is None else check_rate(device_rate, "device_rate")
        self._blocksize_request = blocksize
        self._latency = latency
        self._buffer_seconds = float(buffer_seconds)
        self._silence_limit_s = float(silence_warning_s)
        self._info: DeviceInfo | None = None
        self._stream: Any = None
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup = asyncio.Event()
        self._waiting = False
        self._level = _FLOOR_DBFS
        self._zero_frames = 0
        self._pending = np.zeros(0, dtype=np.float32)
        self._ring: SampleRing | None = None
        self._scratch = np.zeros((0, 1), dtype=np.float32)
        self._resampler: StreamResampler | None = None
        self.channels = 0
        self.blocksize = 0
        self.xruns = 0
        """Input overflows reported by PortAudio."""
        self._xruns_seen = 0  # xruns + overflows + the speaker's xruns told to the canceller
        self.silence_warnings = 0
        """How many times the input stayed all zeros longer than ``silence_warning_s``."""
        self.is_silent = False
        """True while the input has been all zeros for longer than ``silence_warning_s``."""
        self._adc = DeviceTimeline(48000)
        self.speaker = speaker
        self.echo_canceller: EchoCanceller | None = None
        self.echo_gate: EchoGate | None = None
        self.echo_note = ""
        """Why the echo handling is what it is when ``echo="auto"`` fell back to the gate."""
        self._echo_request = echo
        self.echo_mode: Literal["aec", "gate", "off"] = self._choose_echo(speaker, echo)

    def _choose_echo(self, speaker: Any, echo: object) -> Literal["aec", "gate", "off"]:
        if isinstance(echo, EchoCanceller):
            if not isinstance(speaker, ReferenceSource):
                raise AudioError("an EchoCanceller needs speaker= with add_reference_listener")
            self.echo_canceller = echo
            return "aec"
        if echo not in _ECHO_MODES:
            raise AudioFormatError(f"echo must be one of {_ECHO_MODES}, got {echo!r}")
        if speaker is None:
            if echo in ("aec", "gate"):
                raise AudioError(f"echo={echo!r} needs the speaker (speaker=...)")
            return "off"
        if echo == "off":
            return "off"
        if echo in ("auto", "aec"):
            if not isinstance(speaker, ReferenceSource):
                if echo == "aec":
                    raise AudioError(
                        f"{type(speaker).__name__} provides no playback reference "
                        "(add_reference_listener) for the echo canceller"
                    )
                self.echo_note = f"{type(speaker).__name__} provides no playback reference"
            else:
                try:
                    self.echo_canceller = EchoCanceller()
                except EchoCancellerUnavailable as exc:
                    if echo == "aec":
                        raise
                    self.echo_note = str(exc)
                else:
                    return "aec"
        self.echo_gate = EchoGate(_RawChunks(self), speaker)
        return "gate"

    @property
    def echo_description(self) -> str:
        """One line saying which echo handling is active (for a status display)."""
        if self.echo_mode == "aec":
            ec = self.echo_canceller
            assert ec is not None
            what = "WebRTC AEC3, SpeexDSP for double talk" if ec.double_talk else "WebRTC AEC3"
            delay = f", delay {ec.delay_ms:.0f} ms" if ec.reference_rate else ""
            return f"echo cancellation ({what}){delay}"
        if self.echo_mode == "gate":
            note = f" ({self.echo_note})" if self.echo_note else ""
            return f"echo gate: the microphone is muted while the speaker plays{note}"
        return "no echo handling (headphones)"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Open and start the input stream (idempotent). Raises a :class:`DeviceError`."""
        if self._closed:
            raise DeviceError("the microphone is closed")
        if self._stream is not None:
            return
        sd = sounddevice_module()
        info = resolve_device(self._device_spec, "input")
        self._info = info
        if not self._dev_rate:
            self._dev_rate = check_rate(round(info.default_samplerate), "device rate")
        channels = self._channels_request or min(2, info.max_input_channels)
        if channels > info.max_input_channels:
            raise DeviceError(
                f"{info.describe()} has {info.max_input_channels} input channels, "
                f"{channels} requested"
            )
        bs = self._blocksize_request
        if bs is None:
            bs = max(1, self._dev_rate // 100)
        elif isinstance(bs, bool) or not isinstance(bs, int) or not 0 <= bs <= self._dev_rate:
            raise AudioFormatError(
                f"blocksize must be an int from 0 to {self._dev_rate}, got {bs!r}"
            )
        self.channels = channels
        self.blocksize = bs
        capacity = max(int(self._dev_rate * self._buffer_seconds), 4 * max(bs, 1))
        ring = SampleRing(capacity, channels, np.float32)
        self._ring = ring
        self._scratch = np.zeros((capacity, channels), dtype=np.float32)
        source_rate = self._dev_rate
        ec = self.echo_canceller
        if ec is not None:
            try:
                source_rate = ec.prepare(self._dev_rate)
            except EchoCancellerUnavailable as exc:  # the library is there but did not start
                if self._echo_request != "auto":
                    raise
                log.warning("echo cancellation unavailable, using the echo gate: %s", exc)
                self.echo_note = str(exc)
                self.echo_canceller = ec = None
                self.echo_gate = EchoGate(_RawChunks(self), self.speaker)
                self.echo_mode = "gate"
        if ec is not None:
            start_speaker = getattr(self.speaker, "start", None)
            if callable(start_speaker):
                start_speaker()  # the reference flows only while its stream runs
            self.speaker.add_reference_listener(ec.on_reference, timed=True)
        self._adc = DeviceTimeline(self._dev_rate)
        self._resampler = (
            StreamResampler(source_rate, self.rate, 1, "float32")
            if source_rate != self.rate
            else None
        )
        try:
            stream = sd.InputStream(
                device=info.index,
                samplerate=self._dev_rate,
                blocksize=bs,
                latency=self._latency,
                channels=channels,
                dtype="float32",
                callback=self._callback,
            )
        except Exception as exc:
            raise device_error(exc, f"opening input device {info.describe()}") from exc
        try:
            stream.start()
        except Exception as exc:
            stream.close()
            raise device_error(exc, f"starting input device {info.describe()}") from exc
        self._stream = stream

    def close(self) -> None:
        """Stop capturing and release the device; a running ``async for`` ends."""
        stream, self._stream = self._stream, None
        self._closed = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wakeup.set)
        if stream is not None:
            name = self._info.describe() if self._info is not None else "the device"
            close_stream(stream, f"input stream on {name}")
        if self.echo_canceller is not None and self.speaker is not None:
            self.speaker.remove_reference_listener(self.echo_canceller.on_reference)

    async def __aenter__(self) -> Microphone:
        self._loop = asyncio.get_running_loop()
        self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ information

    @property
    def device(self) -> DeviceInfo | None:
        """The device in use (``None`` before :meth:`start`)."""
        return self._info

    @property
    def device_rate(self) -> int:
        """The capture rate at the device (0 before it is known)."""
        return self._dev_rate

    @property
    def level_dbfs(self) -> float:
        """RMS level of the last chunk yielded, in dBFS (-120.0 for digital silence)."""
        return self._level

    @property
    def overflows(self) -> int:
        """Callback blocks that did not fit the ring (the consumer fell behind)."""
        return 0 if self._ring is None else self._ring.overflows

    @property
    def dropped_frames(self) -> int:
        """Device frames lost because the ring was full."""
        return 0 if self._ring is None else self._ring.dropped_frames

    # ------------------------------------------------------------------ audio thread

    def _callback(
        self, indata: npt.NDArray[np.float32], frames: int, time: Any, status: Any
    ) -> None:
        """PortAudio input callback: copy into the ring, wake a waiting consumer."""
        if status.input_overflow:
            self.xruns += 1
        ring = self._ring
        if ring is not None:
            adc = getattr(time, "inputBufferAdcTime", 0.0)
            if adc <= 0.0:  # the host API gives no ADC time: estimate it
                adc = getattr(time, "currentTime", 0.0) - frames / self._dev_rate
            self._adc.record(ring.write_index, adc)
            ring.write(indata)
        if self._waiting:
            self._waiting = False
            loop = self._loop
            if loop is not None:
                loop.call_soon_threadsafe(self._wakeup.set)

    # ------------------------------------------------------------------ consumer

    def _drain(self) -> None:
        """Move everything in the ring through mono mixing and resampling into pending."""
        ring = self._ring
        first = 0 if ring is None else ring.read_index
        n = 0 if ring is None else ring.read_into(self._scratch)
        if n == 0:
            return
        block = self._scratch[:n]
        mono = block[:, 0] if self.channels == 1 else block.mean(axis=1, dtype=np.float32)
        self._watch_silence(mono)
        ec = self.echo_canceller
        if ec is not None:
            xruns = self.xruns + self.overflows + int(getattr(self.speaker, "xruns", 0))
            if xruns != self._xruns_seen:  # samples lost or inserted: the stamps' steps count
                self._xruns_seen = xruns
                ec.discontinuity()
            mono = ec.process(np.ascontiguousarray(mono), self._dev_rate, self._adc.stamp_of(first))
        y = mono.copy() if self._resampler is None else self._resampler.process(mono)
        self._pending = np.concatenate((self._pending, np.asarray(y, dtype=np.float32)))

    def _watch_silence(self, mono: npt.NDArray[np.float32]) -> None:
        if mono.any():
            self._zero_frames = 0
            self.is_silent = False
            return
        self._zero_frames += len(mono)
        if not self.is_silent and self._zero_frames > self._silence_limit_s * self._dev_rate:
            self.is_silent = True
            self.silence_warnings += 1
            name = self._info.name if self._info is not None else "?"
            log.warning(
                "microphone %r has delivered only zeros for %.1f s: is it muted or the wrong "
                "device?",
                name,
                self._zero_frames / self._dev_rate,
            )

    def _take_chunk(self) -> bytes:
        chunk = self._pending[: self.chunk_frames]
        self._pending = self._pending[self.chunk_frames :]
        rms = math.sqrt(float(np.dot(chunk, chunk)) / len(chunk))
        self._level = max(_FLOOR_DBFS, 20.0 * math.log10(rms)) if rms > 0 else _FLOOR_DBFS
        return pcm16_from_float32(chunk)

    def __aiter__(self) -> AsyncIterator[bytes]:
        """Iterate over PCM16 chunks of :attr:`chunk_frames` frames (starts the stream).

        With the echo gate, chunks captured while the speaker plays are dropped.
        """
        if self.echo_gate is not None:
            return aiter(self.echo_gate)
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        self._loop = asyncio.get_running_loop()
        self.start()
        block_s = max(self.blocksize, 1) / self._dev_rate
        while True:
            if self._stream is None:
                return
            self._drain()
            while len(self._pending) >= self.chunk_frames:
                yield self._take_chunk()
                if self._stream is None:
                    return
                self._drain()
            self._wakeup.clear()
            self._waiting = True
            if self._ring is None or self._ring.available == 0:
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=max(0.5, 10 * block_s))
                except asyncio.TimeoutError:
                    stream = self._stream
                    if stream is not None and not stream.active:
                        raise DeviceError("the input stream stopped unexpectedly") from None
            self._waiting = False


class _RawChunks:
    """The microphone's own chunks, ungated (the source the echo gate wraps)."""

    def __init__(self, mic: Microphone) -> None:
        self._mic = mic

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._mic._chunks()
