"""Device timelines: which device time each sample of a stream belongs to.

PortAudio tells every callback when its block meets the converter: ``outputBufferDacTime``
for a block being played, ``inputBufferAdcTime`` for a block being captured, both on the
stream's clock (for one host API, the same clock for input and output). A
:class:`DeviceTimeline` records ``(sample index, device time)`` for each block -- from the
audio thread, into preallocated arrays, without allocating or locking -- and answers, on the
consumer side, the device time of any sample index and the index at any time.

The answer comes from a fit over the recorded blocks, not from the last block alone: the
slope is the device's *effective* rate measured over the last few seconds (a converter
clock drifts from its nominal rate by tens to hundreds of ppm, and two devices drift apart),
and the offset is the mean over the last blocks (callback timestamps jitter by a fraction of
a millisecond). A gap in the timestamps (the stream was restarted, the clock jumped) restarts
the fit.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .exceptions import AudioFormatError
from .resample import check_rate

__all__ = ["DeviceTimeline"]

_SLOPE_SPAN_S = 20.0  # fit the effective rate over at most this much recent history
_MIN_SLOPE_S = 4.0  # and over at least this much (the nominal rate until then)
_OFFSET_BLOCKS = 64  # average the offset over this many recent blocks
_MAX_DRIFT = 0.001  # effective rates beyond nominal * (1 +- 0.1 %) are not drift
_JUMP_S = 0.25  # a block's time this far off the fit restarts it


class DeviceTimeline:
    """Maps sample indexes of one stream to device times, tracking the device's drift.

    ``DeviceTimeline(rate, size=2048)``: *rate* is the nominal sample rate; *size* blocks of
    history are kept (preallocated). The producer (an audio callback) calls :meth:`record`;
    the consumer calls :meth:`update` then :meth:`time_of` / :meth:`index_at`.
    """

    def __init__(self, rate: int, size: int = 2048) -> None:
        self.rate = check_rate(rate, "rate")
        if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 1 << 20:
            raise AudioFormatError(f"size must be an int from 16 to 2**20, got {size!r}")
        self.size = size
        self._index = np.zeros(size, dtype=np.float64)
        self._time = np.zeros(size, dtype=np.float64)
        self.count = 0
        """Blocks recorded so far (written by the producer only)."""
        # consumer state
        self._seen = 0
        self._start = 0  # first block of the current fit
        self._anchor = 0  # oldest block used for the slope
        self._rate = float(self.rate)
        self._offset = 0.0  # time of sample index 0 under the fit
        self.fits = 0
        """How many times the fit restarted (the first block, gaps, clock jumps)."""

    # -- producer (audio thread) ----------------------------------------------------------

    def record(self, index: int, device_time: float) -> None:
        """Record that sample *index* meets the converter at *device_time* (seconds).

        Called from the audio thread: it only stores two floats.
        """
        k = self.count % self.size
        self._index[k] = index
        self._time[k] = device_time
        self.count += 1

    # -- consumer ---------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True once at least one block has been recorded and fitted."""
        return self._seen > 0

    @property
    def effective_rate(self) -> float:
        """The measured sample rate of the device clock (nominal until enough history)."""
        return self._rate

    @property
    def drift_ppm(self) -> float:
        """How far the effective rate is from the nominal one, in parts per million."""
        return (self._rate / self.rate - 1.0) * 1e6

    def update(self) -> None:
        """Refit from the blocks recorded since the last call (consumer side)."""
        c = self.count
        if c == self._seen:
            return
        size = self.size
        first = max(self._seen, c - size + 1)
        if self._seen == 0 or first > self._seen:
            # the first block, or history was overwritten: start afresh from there
            self._restart(first)
        for j in range(first, c):
            if j == self._start:
                continue
            k = j % size
            predicted = self._offset + self._index[k] / self._rate
            if abs(self._time[k] - predicted) > _JUMP_S:
                self._restart(j)
        if c - 1 > self._start:
            self._fit(c)
        self._seen = c

    def _restart(self, j: int) -> None:
        k = j % self.size
        self._start = self._anchor = j
        self._rate = float(self.rate)
        self._offset = float(self._time[k] - self._index[k] / self._rate)
        self.fits += 1

    def _fit(self, end: int) -> None:
        """Fit rate and offset over the blocks of the current fit up to *end*."""
        size = self.size
        t_last = self._time[(end - 1) % size]
        a = max(self._anchor, self._start, end - size + 1)
        while a < end - 1 and t_last - self._time[a % size] > _SLOPE_SPAN_S:
            a += 1
        self._anchor = a
        n_recent = min(_OFFSET_BLOCKS, end - max(self._start, end - size + 1))
        ks = np.arange(end - n_recent, end) % size
        idx_recent = self._index[ks]
        t_recent = self._time[ks]
        k0 = a % size
        di = float(idx_recent.mean() - self._index[k0])
        dt = float(t_recent.mean() - self._time[k0])
        rate = float(self.rate)
        if dt > _MIN_SLOPE_S and di > 0:
            measured = di / dt
            if abs(measured / self.rate - 1.0) <= _MAX_DRIFT:
                rate = measured
        self._rate = rate
        self._offset = float(np.mean(t_recent - idx_recent / rate))

    def latest(self) -> tuple[float, float]:
        """The last block recorded: ``(index, device time)`` (zeros before any)."""
        c = self.count
        if c == 0:
            return 0.0, 0.0
        k = (c - 1) % self.size
        return float(self._index[k]), float(self._time[k])

    def stamp_of(self, index: float) -> float:
        """Device time of sample *index* from the stamp of the block holding it (no fit: a
        step in the stamps, such as lost samples, shows at once). Falls back to the fit
        when that block is no longer in the history."""
        c = self.count
        size = self.size
        for j in range(c - 1, max(-1, c - size - 1), -1):
            k = j % size
            if self._index[k] <= index:
                return float(self._time[k] + (index - self._index[k]) / self.rate)
        return self.time_of(index)

    def time_of(self, index: float | npt.NDArray[np.float64]) -> float:
        """Device time (seconds) of sample *index* under the current fit."""
        return float(self._offset + np.asarray(index, dtype=np.float64) / self._rate)

    def index_at(self, device_time: float) -> float:
        """The (fractional) sample index that meets the converter at *device_time*."""
        return (device_time - self._offset) * self._rate
