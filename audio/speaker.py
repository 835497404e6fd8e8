"""Speaker: one long-lived PortAudio output stream with barge-in-accurate playback tracking.

:class:`Speaker` implements :class:`~audio.playback.AudioSink`. PCM16 at the session rate
(24 kHz) is enqueued tagged with ``(item_id, content_index)``, resampled to the device rate
on the producer side, and written into a preallocated :class:`~audio.ring.SampleRing`. A
single ``sounddevice.OutputStream`` runs from :meth:`Speaker.start` to :meth:`Speaker.close`
and pulls from the ring in its callback, which allocates no sample buffer, blocks on nothing
and takes no lock (the producer-side lock is never touched by the audio thread).

What the listener has *heard* comes from PortAudio's timing information: each callback
records which ring frames it played and the block's ``outputBufferDacTime`` (when its first
frame reaches the DAC) in a :class:`~audio.ring.BlockLog`. A frame is heard once the stream
clock (``stream.time``, the same clock) has passed its DAC time. Audio merely handed to the
driver does not count until then.

Barge-in: :meth:`Speaker.interrupt` asks the next callback to fade the next block out
(linear ramp over at most one block, <= 20 ms), drops everything queued after it, ignores
later audio of the interrupted items, and returns the :class:`~audio.playback.HeardPosition`
the listener will have heard when the sound stops: what has been heard, plus what the
driver already holds (it cannot be recalled), plus the fade. That is the value to send in
``conversation.item.truncate``; :meth:`Speaker.played_ms` converges to it as the DAC plays.

Prebuffering: playback starts once ``prebuffer_ms`` of audio is queued (or once the producer
has paused that long with less queued), at start, after an interrupt and after the ring ran
dry. :attr:`Speaker.underruns` counts gaps inside an item (the ring ran dry and later audio
of the same item arrived); :attr:`Speaker.xruns` counts the output underflows PortAudio
reports.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from .devices import DeviceInfo, close_stream, device_error, resolve_device, sounddevice_module
from .exceptions import AudioFormatError, DeviceError
from .pcm import float32_from_pcm16
from .playback import HeardPosition, ReferenceListener, TimedReferenceListener
from .resample import StreamResampler, check_rate
from .ring import BlockLog, SampleRing, SegmentTags

__all__ = ["Speaker"]

log = logging.getLogger(__name__)

_MAX_FADE_S = 0.020
_MAX_IGNORED = 64


class Speaker:
    """Plays tagged PCM16 on a sound device and tracks what the listener has heard.

    Arguments: *device* (index, name substring or ``None`` for the default output), *rate*
    (the rate of the PCM16 given to :meth:`enqueue`), *latency* (seconds, or PortAudio's
    ``"low"``/``"high"``; the default 0.1 s is what the PulseAudio null sink needs to play
    without underflows; raise the latency, not the block size, for a device that needs
    more buffering), *prebuffer_ms*, *blocksize* (frames per callback at the device rate;
    default 10 ms, at most 20 ms: the interrupt fade lasts one block, and a block no longer
    than the fade is what makes the position :meth:`interrupt` returns exact),
    *device_rate* (default: the device's default rate) and *buffer_seconds* (ring capacity).

    Use as a context manager (sync or async), or call :meth:`start` / :meth:`close`;
    :meth:`enqueue` starts the stream when needed. Raises
    :class:`~audio.exceptions.PortAudioMissing`, :class:`~audio.exceptions.NoDeviceError` or
    :class:`~audio.exceptions.DeviceError` when the device cannot be opened.
    """

    def __init__(
        self,
        device: int | str | None = None,
        rate: int = 24000,
        latency: float | str = 0.1,
        prebuffer_ms: float = 120.0,
        blocksize: int | None = None,
        device_rate: int | None = None,
        buffer_seconds: float = 60.0,
    ) -> None:
        self.rate = check_rate(rate, "rate")
        if isinstance(latency, str):
            if latency not in ("low", "high"):
                raise AudioFormatError(f"latency must be seconds, 'low' or 'high', got {latency!r}")
        elif not 0.0 < float(latency) <= 2.0:
            raise AudioFormatError(f"latency must be in (0, 2] seconds, got {latency!r}")
        if not 0.0 <= float(prebuffer_ms) <= 5000.0:
            raise AudioFormatError(f"prebuffer_ms must be in [0, 5000], got {prebuffer_ms!r}")
        if not 1.0 <= float(buffer_seconds) <= 3600.0:
            raise AudioFormatError(f"buffer_seconds must be in [1, 3600], got {buffer_seconds!r}")
        self._device_spec = device
        self._latency_request = latency
        self._info: DeviceInfo | None = None
        self._dev_rate = 0 if device_rate is None else check_rate(device_rate, "device_rate")
        self._blocksize_request = blocksize
        self._prebuffer_ms = float(prebuffer_ms)
        self._buffer_seconds = float(buffer_seconds)
        self._stream: Any = None
        self._closed = False
        self._stopped_at = float("inf")  # stream clock when closed (inf: never opened)
        self._lock = threading.Lock()  # producer side only; never taken by the callback
        self._listeners: tuple[tuple[Any, bool], ...] = ()
        self.underruns = 0
        """Gaps inside an item: the ring ran dry and then more audio of that item arrived."""
        self.xruns = 0
        """Output underflows reported by PortAudio in the callback's status flags."""
        self.listener_errors = 0
        """Reference listeners that raised (each is removed after its first exception)."""
        self.dac_lead = 0.0
        """Seconds from the last callback to the DAC time of its block (PortAudio's timing)."""
        self.max_dac_lead = 0.0
        """The largest :attr:`dac_lead` seen: what the driver holds beyond the ring, at most."""
        if self._dev_rate:
            self._setup_buffers()

    # ------------------------------------------------------------------ setup

    def _setup_buffers(self) -> None:
        """Allocate everything the callback uses (once the device rate is known)."""
        rate = self._dev_rate
        bs = self._blocksize_request
        if bs is None:
            bs = max(1, rate // 100)
        elif (
            isinstance(bs, bool)
            or not isinstance(bs, int)
            or not 16 <= bs <= max(16, int(rate * _MAX_FADE_S))
        ):
            raise AudioFormatError(
                f"blocksize must be an int from 16 to {max(16, int(rate * _MAX_FADE_S))} "
                f"frames (20 ms at {rate} Hz), got {bs!r}"
            )
        self.blocksize = bs
        self._fade_len = bs  # one block, <= 20 ms
        k = np.arange(1, self._fade_len + 1, dtype=np.float32)
        self._ramp = (1.0 - k / np.float32(self._fade_len)).astype(np.float32)
        self._ring = SampleRing(max(int(rate * self._buffer_seconds), 4 * bs), 1, np.float32)
        self._log = BlockLog(8192)
        self._tags = SegmentTags()
        self._ref_buf = np.zeros(bs, dtype=np.float32)
        self._prebuffer = int(rate * self._prebuffer_ms / 1000.0)
        self._resampler = (
            StreamResampler(self.rate, rate, 1, "float32") if rate != self.rate else None
        )
        # callback state (written by the audio thread)
        self._priming = True
        self._stall = 0
        self._last_w = 0
        self._dry_count = 0
        self._int_done = 0
        # producer state (under self._lock)
        self._int_req: tuple[int, int, int, int] | None = None
        self._int_seq = 0
        self._dry_seen = 0
        self._acc = 0
        self._heard_index = 0
        self._cur_key: tuple[str, int] | None = None
        self._item_frames: OrderedDict[tuple[str, int], int] = OrderedDict()
        self._ignored: OrderedDict[str, None] = OrderedDict()
        self._out_latency = 0.0

    def start(self) -> None:
        """Open and start the output stream (idempotent). Raises a :class:`DeviceError`."""
        if self._closed:
            raise DeviceError("the speaker is closed")
        if self._stream is not None:
            return
        sd = sounddevice_module()
        info = resolve_device(self._device_spec, "output")
        self._info = info
        if not self._dev_rate:
            self._dev_rate = check_rate(round(info.default_samplerate), "device rate")
            self._setup_buffers()
        try:
            stream = sd.OutputStream(
                device=info.index,
                samplerate=self._dev_rate,
                blocksize=self.blocksize,
                latency=self._latency_request,
                channels=1,
                dtype="float32",
                callback=self._callback,
            )
        except Exception as exc:
            raise device_error(exc, f"opening output device {info.describe()}") from exc
        self._out_latency = float(stream.latency)
        try:
            stream.start()
        except Exception as exc:
            stream.close()
            raise device_error(exc, f"starting output device {info.describe()}") from exc
        self._stream = stream

    def close(self) -> None:
        """Stop the stream at once (queued audio is dropped) and release the device."""
        stream = self._stream
        self._closed = True
        if stream is not None:
            # audio the driver still held is aborted: it was never heard
            with self._lock:
                self._stopped_at = self._now()
                self._account()
                self._stream = None
            name = self._info.describe() if self._info is not None else "the device"
            close_stream(stream, f"output stream on {name}")

    def __enter__(self) -> Speaker:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> Speaker:
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
        """The stream's sample rate (0 before the device is known)."""
        return self._dev_rate

    @property
    def output_latency(self) -> float:
        """The output latency PortAudio reports for the open stream, in seconds."""
        return self._out_latency

    @property
    def dropped_frames(self) -> int:
        """Device-rate frames dropped because the ring was full."""
        return self._ring.dropped_frames if self._dev_rate else 0

    @property
    def queued_ms(self) -> float:
        """Milliseconds of audio in the ring, not yet handed to the driver."""
        if not self._dev_rate:
            return 0.0
        return self._ring.available * 1000.0 / self._dev_rate

    def add_reference_listener(
        self, listener: ReferenceListener | TimedReferenceListener, *, timed: bool = False
    ) -> None:
        """Call *listener(block, device_rate)* with every block sent to the device.

        With ``timed=True`` it is called as *listener(block, device_rate, dac_time)*, where
        *dac_time* is when the block's first frame reaches the DAC (PortAudio's
        ``outputBufferDacTime``, on the stream clock; estimated from the reported latency
        when the host API gives none): what an echo canceller needs to align the reference.
        It is called on the audio thread with a preallocated float32 array that is reused
        for the next block (copy it to keep it); it must be quick and must not block. Blocks
        of another length than :attr:`blocksize` (rare) are not reported. A listener that
        raises is removed and counted in :attr:`listener_errors`.
        """
        self._listeners = (*self._listeners, (listener, bool(timed)))

    def remove_reference_listener(
        self, listener: ReferenceListener | TimedReferenceListener
    ) -> None:
        """Stop calling *listener*; unknown listeners are ignored."""
        self._listeners = tuple(x for x in self._listeners if x[0] is not listener)

    # ------------------------------------------------------------------ audio thread

    def _callback(
        self, outdata: npt.NDArray[np.float32], frames: int, time: Any, status: Any
    ) -> None:
        """PortAudio output callback: fill *outdata* from the ring; allocate no buffer."""
        if status.output_underflow:
            self.xruns += 1
        ring = self._ring
        r = ring.read_index
        n = 0
        req = self._int_req
        if req is not None and req[3] != self._int_done:
            fade_from, fade_to, drop_to, seq = req
            if r < fade_to:
                n = ring.read_into(outdata, fade_to - r)
                if n:
                    k0 = r - fade_from if r > fade_from else 0
                    col = outdata[:n, 0]
                    np.multiply(col, self._ramp[k0 : k0 + n], out=col)
            if n < frames:
                outdata[n:].fill(0.0)
            ring.skip_to(drop_to)
            self._int_done = seq
            self._priming = True
            self._stall = 0
            self._last_w = ring.write_index
        elif self._priming:
            w = ring.write_index
            avail = w - r
            if w != self._last_w:
                self._last_w = w
                self._stall = 0
            elif avail > 0:
                self._stall += frames
            if avail >= self._prebuffer or (avail > 0 and self._stall >= self._prebuffer):
                self._priming = False
                n = ring.read_into(outdata)
                if n < frames:
                    outdata[n:].fill(0.0)
                    self._priming = True
                    self._stall = 0
            else:
                outdata.fill(0.0)
        else:
            n = ring.read_into(outdata)
            if n < frames:
                outdata[n:].fill(0.0)
                self._priming = True
                self._stall = 0
                self._last_w = ring.write_index
                self._dry_count += 1
        dac = time.outputBufferDacTime
        now = time.currentTime
        if dac <= 0.0:
            dac = now + self._out_latency
        lead = dac - now
        self.dac_lead = lead
        if lead > self.max_dac_lead:
            self.max_dac_lead = lead
        self._log.record(r, n, dac)
        if self._listeners and frames == self.blocksize:
            ref = self._ref_buf
            np.copyto(ref, outdata[:, 0])
            for entry in self._listeners:
                try:
                    if entry[1]:
                        entry[0](ref, self._dev_rate, dac)
                    else:
                        entry[0](ref, self._dev_rate)
                except Exception:
                    # never let a listener kill the stream: drop it, count it
                    self.listener_errors += 1
                    self._listeners = tuple(x for x in self._listeners if x is not entry)

    # ------------------------------------------------------------------ producer side

    def _now(self) -> float:
        """The stream clock (PortAudio's, as in the callback's time info)."""
        stream = self._stream
        if stream is None:
            return self._stopped_at
        try:
            return float(stream.time)
        except Exception:
            return self._stopped_at

    def _account(self) -> None:
        """Move heard positions forward from the block log (call with the lock held)."""
        blog = self._log
        c = blog.count
        j = self._acc
        if j >= c:
            return
        size = blog.size
        if c - j > size - 2:
            # the log lapped us: blocks were overwritten; count their frames as heard
            j = c - size + 2
            first = int(blog.ring_start[j % size])
            self._tags.heard(self._heard_index, first)
            self._heard_index = max(self._heard_index, first)
        now = self._now()
        rate = self._dev_rate
        while j < c:
            i = j % size
            start = int(blog.ring_start[i])
            n = int(blog.frames[i])
            dac = float(blog.dac_time[i])
            if dac > now:
                break
            heard = min(n, int((now - dac) * rate))
            if heard > 0:
                self._tags.heard(start, start + heard)
            end = start + heard
            if end > self._heard_index:
                self._heard_index = end
            if heard < n:
                break
            j += 1
        self._acc = j

    def _write(self, y: npt.NDArray[np.float32], key: tuple[str, int]) -> None:
        """Write device-rate samples tagged with *key* (lock held)."""
        if len(y) == 0:
            return
        offset = self._item_frames.get(key, 0)
        start = self._ring.write_index
        stored = self._ring.write(y)
        if stored < len(y):
            log.warning("speaker buffer full: dropped %d frames", len(y) - stored)
        self._tags.add(start, stored, key[0], key[1], offset)
        self._item_frames[key] = offset + len(y)
        self._item_frames.move_to_end(key)
        while len(self._item_frames) > 256:
            self._item_frames.popitem(last=False)

    def _flush_resampler(self) -> None:
        """Write the resampler's tail for the current item (lock held)."""
        if self._resampler is not None and self._cur_key is not None:
            tail = self._resampler.flush()
            self._write(np.asarray(tail, dtype=np.float32), self._cur_key)

    def enqueue(self, pcm16: bytes, item_id: str, content_index: int = 0) -> None:
        """Queue PCM16 (at :attr:`rate`, mono) as audio of ``(item_id, content_index)``.

        Audio of an interrupted item is ignored. Starts the stream if needed. Raises
        :class:`AudioFormatError` for non-bytes or an odd byte count, and a
        :class:`DeviceError` if the device cannot be opened. Never blocks on the device:
        audio that does not fit the ring is dropped (see :attr:`dropped_frames`).
        """
        x = float32_from_pcm16(pcm16)
        if not isinstance(item_id, str):
            raise AudioFormatError(f"item_id must be a str, got {type(item_id).__name__}")
        if self._stream is None:
            self.start()
        key = (item_id, int(content_index))
        with self._lock:
            if item_id in self._ignored:
                return
            self._account()
            if key != self._cur_key:
                self._flush_resampler()
            elif self._dry_count != self._dry_seen:
                self.underruns += 1
            self._dry_seen = self._dry_count
            self._cur_key = key
            y = x if self._resampler is None else self._resampler.process(x)
            self._write(np.asarray(y, dtype=np.float32), key)

    def _request_drop(self) -> int:
        """Ask the callback to fade out and drop everything queued (lock held).

        Returns the ring index at which the sound will stop.
        """
        ring = self._ring
        w = ring.write_index
        pending = self._int_req
        if pending is not None and pending[3] != self._int_done:
            fade_from, fade_to = pending[0], pending[1]
        else:
            fade_from = ring.read_index
            fade_to = min(fade_from + self._fade_len, w)
        self._int_seq += 1
        self._int_req = (fade_from, fade_to, w, self._int_seq)
        if self._resampler is not None:
            self._resampler.reset()
        self._cur_key = None
        return fade_to

    def interrupt(self) -> HeardPosition | None:
        """Stop playback now: fade out over the next block, drop the queue, ignore the item.

        Returns where the listener will have stopped hearing the item that was playing
        (heard so far + what the driver already holds + the fade), or ``None`` when nothing
        was playing. Later :meth:`enqueue` calls for the interrupted items (the one playing
        and any whose queued audio was dropped) are ignored.
        """
        if not self._dev_rate or self._stream is None:
            return None
        with self._lock:
            self._account()
            w = self._ring.write_index
            playing = self._heard_index < w
            stop_at = self._request_drop()
            if not playing:
                return None
            where = self._tags.item_at(stop_at)
            dropped = self._tags.items_from(stop_at)
            if where is not None:
                dropped.add(where[0])
            for item_id in dropped:
                self._ignored[item_id] = None
                self._ignored.move_to_end(item_id)
            while len(self._ignored) > _MAX_IGNORED:
                self._ignored.popitem(last=False)
            if where is None:
                return None
            return HeardPosition(where[0], where[1], where[2] * 1000.0 / self._dev_rate)

    def clear(self) -> None:
        """Drop everything queued (with the same short fade) without ignoring any item."""
        if not self._dev_rate or self._stream is None:
            return
        with self._lock:
            self._request_drop()

    def played_ms(self, item_id: str, content_index: int = 0) -> float:
        """Milliseconds of the item's audio whose DAC time has passed (0.0 if unknown)."""
        if not self._dev_rate:
            return 0.0
        with self._lock:
            self._account()
            return self._tags.position(item_id, content_index) * 1000.0 / self._dev_rate

    @property
    def is_playing(self) -> bool:
        """True while audio handed to :meth:`enqueue` has not all been heard."""
        if not self._dev_rate or self._stream is None:
            return False
        with self._lock:
            self._account()
            return self._heard_index < self._ring.write_index

    async def drained(self) -> None:
        """Return once everything queued so far has been heard (or dropped).

        Ends the current item's resampler stream so its last samples are played. Raises
        :class:`DeviceError` if the stream is closed before that.
        """
        if not self._dev_rate or self._stream is None:
            return
        with self._lock:
            self._flush_resampler()
            self._cur_key = None
            target = self._ring.write_index
        step = max(0.002, min(0.01, self.blocksize / self._dev_rate))
        while True:
            if self._stream is None:
                raise DeviceError("the speaker was closed before its audio was heard")
            with self._lock:
                self._account()
                if self._heard_index >= target:
                    return
            await asyncio.sleep(step)
