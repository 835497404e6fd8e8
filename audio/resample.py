"""Sample-rate conversion: one-shot with ``soxr``, streaming with a polyphase FIR.

:func:`resample` converts a whole signal at once with libsoxr (``soxr.resample``); the output
has ``round(n * out_rate / in_rate)`` frames, no delay, and the input's dtype.

:class:`StreamResampler` converts a live stream fed in chunks of any size (10 ms device frames
included). It does *not* wrap ``soxr.ResampleStream``: measured here (soxr 1.1, quality HQ),
that stream holds output back and releases it in bursts of ~830 samples every 3-4 chunks of
10 ms, so its cumulative output lags the input by 100 to 920 samples (up to 38 ms at 24 kHz),
which breaks real-time pacing. This class is a Kaiser-windowed-sinc polyphase filter in numpy
with a fixed, small latency (:attr:`StreamResampler.delay`, an integer number of output frames,
about 0.7 ms for 48 kHz -> 24 kHz): after every :meth:`~StreamResampler.process` call the
cumulative output is exactly ``ceil(n_in * out_rate / in_rate)`` frames, so it never drifts and
never bursts. Each chunk of output is the input delayed by ``delay`` frames; :meth:`flush`
returns the tail still inside the filter (``delay`` frames and the rounding remainder).

Errors (bad rate, dtype, shape or quality) raise :class:`~audio.exceptions.AudioFormatError`.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt
import soxr

from .exceptions import AudioFormatError

__all__ = ["Quality", "StreamResampler", "check_rate", "resample"]

Quality = Literal["LQ", "MQ", "HQ", "VHQ"]

# quality -> (zero crossings each side at the lower rate, Kaiser beta). The stopband starts at
# the lower rate's Nyquist frequency; the transition band (Kaiser's estimate) lies below it.
# Stopband attenuation ~ beta / 0.1102 + 8.7 dB: LQ ~ 55, MQ ~ 70, HQ ~ 81, VHQ ~ 104 dB.
_DESIGNS: dict[str, tuple[int, float]] = {
    "LQ": (8, 5.0),
    "MQ": (16, 6.5),
    "HQ": (32, 8.0),
    "VHQ": (64, 10.5),
}
_MAX_PHASES = 1024  # above this many polyphase branches the taps are computed per output frame
_CORRELATE_MAX_PHASES = 4  # up to this many branches, strided np.correlate beats a gather
_FINE_PHASES = 1024  # table resolution for ratios with more phases (linear interpolation)
_MAX_BLOCK_SIZE = 1 << 20  # largest block matrix (floats) for the many-phase path
_MAX_RATE = 768_000
_DTYPES = ("float32", "int16")


def check_rate(rate: object, what: str = "sample rate") -> int:
    """Return *rate* as an ``int`` if it is a plausible sample rate (1 Hz to 768 kHz).

    Raises :class:`AudioFormatError` otherwise (non-integer, zero, negative, too large).
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)):
        if isinstance(rate, float) and rate.is_integer():
            rate = int(rate)
        else:
            raise AudioFormatError(f"{what} must be a whole number of Hz, got {rate!r}")
    value = int(rate)
    if not 0 < value <= _MAX_RATE:
        raise AudioFormatError(f"{what} must be between 1 and {_MAX_RATE} Hz, got {value}")
    return value


def _check_array(x: object, what: str) -> npt.NDArray[np.generic]:
    if not isinstance(x, np.ndarray):
        raise AudioFormatError(f"{what} must be a numpy array, got {type(x).__name__}")
    if x.ndim not in (1, 2):
        raise AudioFormatError(
            f"{what} must be 1-D (mono) or 2-D [frames, channels], got {x.shape}"
        )
    if x.dtype not in (np.float32, np.int16):
        raise AudioFormatError(f"{what} must be float32 or int16, got {x.dtype}")
    return x


def resample(x: npt.NDArray[np.generic], in_rate: int, out_rate: int) -> npt.NDArray[np.generic]:
    """Resample a whole signal (``int16`` or ``float32``, mono 1-D or ``[frames, channels]``).

    Returns an array of the same dtype and number of dimensions with
    ``round(len(x) * out_rate / in_rate)`` frames (the input itself when the rates are equal).
    Raises :class:`AudioFormatError` for another dtype or shape, or an invalid rate.
    """
    x = _check_array(x, "resample input")
    in_rate = check_rate(in_rate, "input rate")
    out_rate = check_rate(out_rate, "output rate")
    if in_rate == out_rate:
        return x
    if x.shape[0] == 0:
        return np.zeros((0, *x.shape[1:]), dtype=x.dtype)
    out: npt.NDArray[np.generic] = soxr.resample(np.ascontiguousarray(x), in_rate, out_rate, "HQ")
    return out


def _kaiser_sinc(
    tau: npt.NDArray[np.float64], cutoff: float, half: float, beta: float
) -> npt.NDArray[np.float64]:
    """The windowed-sinc prototype at offsets *tau* (input samples); zero outside ``|tau|<half``."""
    inside = np.abs(tau) < half
    ratio = np.where(inside, tau / half, 0.0)
    window = np.i0(beta * np.sqrt(1.0 - ratio * ratio)) / np.i0(beta)
    return np.where(inside, 2.0 * cutoff * np.sinc(2.0 * cutoff * tau) * window, 0.0)


class StreamResampler:
    """A stateful resampler for a continuous stream fed in chunks of any size.

    Create one per stream. Call :meth:`process` with each chunk (1-D for mono or
    ``[frames, channels]``, of the dtype given here); it returns the output produced so far,
    of the same dtype and dimensionality. Call :meth:`flush` at the end of the stream to get
    the tail; the resampler is then reset and can take a new stream. :meth:`reset` drops the
    state without output. ``int16`` chunks are filtered in float32 and rounded back with
    clipping.

    Attributes: ``in_rate``, ``out_rate``, ``channels``, ``dtype``, ``delay`` (latency in
    output frames), ``frames_in`` and ``frames_out`` (totals since the last reset).
    """

    def __init__(
        self,
        in_rate: int,
        out_rate: int,
        channels: int = 1,
        dtype: str = "float32",
        quality: Quality = "HQ",
    ) -> None:
        self.in_rate = check_rate(in_rate, "input rate")
        self.out_rate = check_rate(out_rate, "output rate")
        if isinstance(channels, bool) or not isinstance(channels, int) or not 1 <= channels <= 64:
            raise AudioFormatError(f"channels must be an int from 1 to 64, got {channels!r}")
        if dtype not in _DTYPES:
            raise AudioFormatError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
        if quality not in _DESIGNS:
            raise AudioFormatError(f"quality must be one of {sorted(_DESIGNS)}, got {quality!r}")
        self.channels = channels
        self.dtype = np.dtype(dtype)
        g = math.gcd(self.in_rate, self.out_rate)
        self._up = self.out_rate // g  # L: output frames per M input frames
        self._down = self.in_rate // g  # M
        zeros, self._beta = _DESIGNS[quality]
        ratio = max(1.0, self.in_rate / self.out_rate)
        self._half = zeros * ratio  # half filter length in input samples
        attenuation = self._beta / 0.1102 + 8.7
        transition = (attenuation - 7.95) / (14.36 * 2 * zeros)  # in units of the lower rate
        # -6 dB cutoff as a fraction of the input rate
        self._cutoff = (0.5 - transition / 2) * min(self.in_rate, self.out_rate) / self.in_rate
        # integer delay in output frames; d is the same delay in input samples
        same = self.in_rate == self.out_rate
        self.delay = 0 if same else math.ceil(self._half * self._up / self._down)
        self._d = self.delay * self._down / self._up
        self._taps = math.ceil(self._d + self._half) + 1
        self._keep = self._taps - 1  # input history kept between chunks
        self._bank: npt.NDArray[np.float32] | None = None
        self._fine: npt.NDArray[np.float32] | None = None
        self._block: npt.NDArray[np.float32] | None = None
        if self.in_rate != self.out_rate and self._up <= _MAX_PHASES:
            phases = np.arange(self._up, dtype=np.float64)[:, None] / self._up
            self._bank = self._taps_for(phases)
            span = self._down + self._taps - 1
            if self._up > _CORRELATE_MAX_PHASES and self._up * span <= _MAX_BLOCK_SIZE:
                r = np.arange(self._up)
                offset = (r * self._down) // self._up
                block = np.zeros((self._up, span), dtype=np.float32)
                block[r[:, None], offset[:, None] + np.arange(self._taps)] = self._bank[
                    (r * self._down) % self._up
                ]
                self._block = block
                self._span_index = np.arange(span)
                self._keep += self._down  # a block may start up to M samples back
        elif self.in_rate != self.out_rate:  # huge L: interpolate in a fine table of phases
            self._fine = self._taps_for(np.arange(_FINE_PHASES + 1)[:, None] / _FINE_PHASES)
        self.reset()

    @property
    def delay_ms(self) -> float:
        """The stream's latency in milliseconds (:attr:`delay` output frames)."""
        return self.delay * 1000.0 / self.out_rate

    def _taps_for(self, frac: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
        """Filter rows (reversed: oldest sample first) for fractional positions *frac* [n, 1]."""
        i = np.arange(self._taps - 1, -1, -1, dtype=np.float64)[None, :]
        h = _kaiser_sinc(frac + i - self._d, self._cutoff, self._half, self._beta)
        h /= h.sum(axis=1, keepdims=True)  # unity gain at DC for every phase
        return h.astype(np.float32)

    def reset(self) -> None:
        """Forget the stream: the next :meth:`process` starts a new one from silence."""
        shape = (self._keep,) if self.channels == 1 else (self._keep, self.channels)
        self._history: npt.NDArray[np.float32] = np.zeros(shape, dtype=np.float32)
        self.frames_in = 0
        self.frames_out = 0

    def _check_chunk(self, chunk: object) -> npt.NDArray[np.generic]:
        if not isinstance(chunk, np.ndarray):
            raise AudioFormatError(f"chunk must be a numpy array, got {type(chunk).__name__}")
        if chunk.dtype != self.dtype:
            raise AudioFormatError(
                f"chunk dtype {chunk.dtype} differs from the stream's {self.dtype}"
            )
        if self.channels == 1:
            if chunk.ndim == 2 and chunk.shape[1] == 1:
                return chunk[:, 0]
            if chunk.ndim != 1:
                raise AudioFormatError(f"mono chunk must be 1-D, got shape {chunk.shape}")
        elif chunk.ndim != 2 or chunk.shape[1] != self.channels:
            raise AudioFormatError(
                f"chunk must have shape [frames, {self.channels}], got {chunk.shape}"
            )
        return chunk

    def _out(self, y: npt.NDArray[np.float32]) -> npt.NDArray[np.generic]:
        if self.dtype == np.int16:
            out: npt.NDArray[np.int16] = np.clip(np.rint(y * 32768.0), -32768, 32767).astype(
                np.int16
            )
            return out
        return y

    def process(self, chunk: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        """Feed a chunk; return the output frames it completes (possibly none).

        Raises :class:`AudioFormatError` for a wrong dtype or shape.
        """
        x = self._check_chunk(chunk)
        if self.in_rate == self.out_rate:
            self.frames_in += len(x)
            self.frames_out += len(x)
            same: npt.NDArray[np.generic] = x.copy()
            return same
        xf = x.astype(np.float32, copy=False)
        if x.dtype == np.int16:
            xf = xf * np.float32(1 / 32768)
        return self._out(self._run(xf))

    def _run(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        n = len(x)
        ext = np.concatenate((self._history, x), axis=0)
        start_in = self.frames_in
        self.frames_in += n
        k0 = self.frames_out
        k1 = -(-self.frames_in * self._up // self._down)  # ceil: outputs whose input is here
        self.frames_out = k1
        self._history = ext[len(ext) - self._keep :]
        if k1 == k0:
            return np.zeros((0, *x.shape[1:]), dtype=np.float32)
        if self._block is not None:
            return self._blocks(ext, start_in, k0, k1)
        if self._bank is not None and self._up <= _CORRELATE_MAX_PHASES:
            return self._correlate(ext, start_in, k0, k1)
        pos = np.arange(k0, k1, dtype=np.int64) * self._down
        # ext index of each output's oldest tap (ext starts `keep` samples before start_in)
        start = pos // self._up - (self._taps - 1) - start_in + self._keep
        phase = pos % self._up
        if self._bank is not None:
            taps = self._bank[phase]
        else:
            assert self._fine is not None
            where = phase * (_FINE_PHASES / self._up)
            below = where.astype(np.int64)
            weight = (where - below).astype(np.float32)[:, None]
            taps = self._fine[below] * (1 - weight) + self._fine[below + 1] * weight
        windows = ext[start[:, None] + np.arange(self._taps)]  # [n, taps(, channels)]
        spec = "nt,nt->n" if ext.ndim == 1 else "ntc,nt->nc"
        y: npt.NDArray[np.float32] = np.einsum(spec, windows, taps).astype(np.float32, copy=False)
        return y

    def _blocks(
        self, ext: npt.NDArray[np.float32], start_in: int, k0: int, k1: int
    ) -> npt.NDArray[np.float32]:
        """Many phases: every M inputs give L outputs, one matrix product for all blocks."""
        assert self._block is not None
        up, down = self._up, self._down
        span = self._block.shape[1]
        q0 = k0 // up
        q1 = (k1 - 1) // up
        first = q0 * down - start_in + self._keep - (self._taps - 1)  # ext index of block q0
        need = first + (q1 - q0) * down + span
        if need > len(ext):  # the last block reaches past the input: its extra outputs are cut
            pad = np.zeros((need - len(ext), *ext.shape[1:]), dtype=np.float32)
            ext = np.concatenate((ext, pad), axis=0)
        rows = first + np.arange(q1 - q0 + 1)[:, None] * down + self._span_index
        if ext.ndim == 1:
            out = (ext[rows] @ self._block.T).ravel()  # [blocks, L] -> outputs
        else:  # [blocks, span, channels] -> [blocks, channels, L] -> [outputs, channels]
            segs = ext[rows].transpose(0, 2, 1)
            out = (segs @ self._block.T).transpose(0, 2, 1).reshape(-1, ext.shape[1])
        y: npt.NDArray[np.float32] = out[k0 - q0 * up : k1 - q0 * up]
        return y

    def _correlate(
        self, ext: npt.NDArray[np.float32], start_in: int, k0: int, k1: int
    ) -> npt.NDArray[np.float32]:
        """Few phases: outputs of one phase are a strided correlation (numpy's fast kernel)."""
        assert self._bank is not None
        up, down, taps = self._up, self._down, self._taps
        y = np.empty((k1 - k0, *ext.shape[1:]), dtype=np.float32)
        for first in range(min(up, k1 - k0)):
            pos = (k0 + first) * down
            s0 = pos // up - (taps - 1) - start_in + self._keep  # ext index of the oldest tap
            count = (k1 - k0 - first + up - 1) // up
            seg = ext[s0 : s0 + (count - 1) * down + taps]
            row = self._bank[pos % up]
            if ext.ndim == 1:
                y[first::up] = np.correlate(seg, row, "valid")[::down]
            else:
                for c in range(ext.shape[1]):
                    y[first::up, c] = np.correlate(seg[:, c], row, "valid")[::down]
        return y

    def flush(self) -> npt.NDArray[np.generic]:
        """End the stream: return the remaining output (the filter's tail), then reset.

        After a flush the total output is ``ceil(n_in * out_rate / in_rate) + delay`` frames:
        the whole input, delayed by :attr:`delay` frames.
        """
        if self.in_rate == self.out_rate or self.frames_in == 0:
            self.reset()
            return np.zeros((0,) if self.channels == 1 else (0, self.channels), dtype=self.dtype)
        target = -(-self.frames_in * self._up // self._down) + self.delay
        need_in = -(-(target * self._down) // self._up) - self.frames_in + 1
        shape = (need_in,) if self.channels == 1 else (need_in, self.channels)
        y = self._run(np.zeros(shape, dtype=np.float32))
        already = self.frames_out - len(y)
        y = y[: max(0, target - already)]
        self.reset()
        return self._out(y)
