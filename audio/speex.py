"""SpeexDSP's echo canceller as a backend of :class:`audio.aec.EchoCanceller`.

SpeexDSP (Debian's ``libspeexdsp1``, through ``ctypes``) pairs an adaptive linear filter
(the multidelay block frequency-domain filter) with a residual echo suppressor whose
strength while the near end talks is set separately (``suppress_active_db``). That second
knob is why it is here: WebRTC's AEC3, through the bindings available, cancels more echo
and converges at once, but its suppressor cannot be tuned and garbles a voice talking
over the reply; SpeexDSP keeps that voice (see the README's figures). Its filter needs a
few seconds of echo to converge.

The stage hands it the reference already aligned by the devices' clocks (a few tens of
milliseconds ahead of the echo), so the filter only has to span the residual delay and
the room's tail: ``filter_ms`` (default 300 ms).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from typing import Any

import numpy as np
import numpy.typing as npt

from .exceptions import AudioError, AudioFormatError, EchoCancellerUnavailable

__all__ = ["SpeexBackend", "speex_available"]

_LIBRARY = "speexdsp"
_ECHO_SET_SAMPLING_RATE = 24
_PRE_SET_DENOISE = 0
_PRE_SET_AGC = 2
_PRE_SET_DEREVERB = 8
_PRE_SET_ECHO_SUPPRESS = 20
_PRE_SET_ECHO_SUPPRESS_ACTIVE = 22
_PRE_SET_ECHO_STATE = 24

_lib: Any = None


def _load() -> Any:
    global _lib
    if _lib is not None:
        return _lib
    name = ctypes.util.find_library(_LIBRARY) or "libspeexdsp.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise EchoCancellerUnavailable(
            "SpeexDSP's echo canceller needs the libspeexdsp library "
            "(Debian/Ubuntu: apt install libspeexdsp1)"
        ) from exc
    p16 = ctypes.POINTER(ctypes.c_int16)
    lib.speex_echo_state_init.restype = ctypes.c_void_p
    lib.speex_echo_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.speex_echo_state_destroy.argtypes = [ctypes.c_void_p]
    lib.speex_echo_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    lib.speex_echo_cancellation.argtypes = [ctypes.c_void_p, p16, p16, p16]
    lib.speex_preprocess_state_init.restype = ctypes.c_void_p
    lib.speex_preprocess_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.speex_preprocess_state_destroy.argtypes = [ctypes.c_void_p]
    lib.speex_preprocess_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    lib.speex_preprocess_run.argtypes = [ctypes.c_void_p, p16]
    _lib = lib
    return lib


def speex_available() -> bool:
    """True when ``libspeexdsp`` can be loaded."""
    try:
        _load()
    except EchoCancellerUnavailable:
        return False
    return True


class SpeexBackend:
    """SpeexDSP's canceller and residual echo suppressor on 10 ms int16 frames.

    ``suppress_db``: the most the residual echo is attenuated while only the far end
    talks; ``suppress_active_db``: while the near end talks too (milder, so the user's
    voice survives double talk); ``residual_suppression=False`` leaves only the linear
    filter. ``noise_suppression`` turns on Speex's denoiser.
    Preallocated buffers; library errors become :class:`~audio.exceptions.AudioError`.
    """

    def __init__(
        self,
        rate: int,
        *,
        filter_ms: float = 300.0,
        suppress_db: int = -40,
        suppress_active_db: int = -15,
        noise_suppression: bool = False,
        residual_suppression: bool = True,
    ) -> None:
        lib = _load()
        if rate not in (8000, 16000, 32000, 48000):
            raise AudioFormatError(f"SpeexDSP's canceller runs at 8/16/32/48 kHz, not {rate}")
        if not 50.0 <= float(filter_ms) <= 1000.0:
            raise AudioFormatError(f"filter_ms must be in [50, 1000], got {filter_ms!r}")
        self.rate = rate
        self._n = rate // 100
        self._lib = lib
        self._echo = lib.speex_echo_state_init(self._n, int(rate * float(filter_ms) / 1000.0))
        self._pre = lib.speex_preprocess_state_init(self._n, rate)
        if not self._echo or not self._pre:
            self.close()
            raise EchoCancellerUnavailable("SpeexDSP could not create its canceller state")
        self._ctl_echo(_ECHO_SET_SAMPLING_RATE, rate)
        self._ctl_pre(_PRE_SET_DENOISE, int(noise_suppression))
        self._ctl_pre(_PRE_SET_AGC, 0)
        self._ctl_pre(_PRE_SET_DEREVERB, 0)
        self._ctl_pre(_PRE_SET_ECHO_SUPPRESS, int(suppress_db))
        self._ctl_pre(_PRE_SET_ECHO_SUPPRESS_ACTIVE, int(suppress_active_db))
        if residual_suppression:
            echo = ctypes.c_void_p(self._echo)
            lib.speex_preprocess_ctl(self._pre, _PRE_SET_ECHO_STATE, echo)
        self._run_pre = residual_suppression or noise_suppression
        self._near = np.zeros(self._n, dtype=np.int16)
        self._far = np.zeros(self._n, dtype=np.int16)
        self._out = np.zeros(self._n, dtype=np.int16)
        p16 = ctypes.POINTER(ctypes.c_int16)
        self._near_p = self._near.ctypes.data_as(p16)
        self._far_p = self._far.ctypes.data_as(p16)
        self._out_p = self._out.ctypes.data_as(p16)

    def _ctl_echo(self, request: int, value: int) -> None:
        self._lib.speex_echo_ctl(self._echo, request, ctypes.byref(ctypes.c_int(value)))

    def _ctl_pre(self, request: int, value: int) -> None:
        self._lib.speex_preprocess_ctl(self._pre, request, ctypes.byref(ctypes.c_int(value)))

    def process(self, near: npt.NDArray[np.int16], far: npt.NDArray[np.int16]) -> None:
        """Cancel *far*'s echo from *near* (one 10 ms frame each) in place."""
        if self._echo is None:
            raise AudioError("echo canceller: the SpeexDSP state was closed")
        self._near[:] = near
        self._far[:] = far
        self._lib.speex_echo_cancellation(self._echo, self._near_p, self._far_p, self._out_p)
        if self._run_pre:
            self._lib.speex_preprocess_run(self._pre, self._out_p)
        near[:] = self._out

    def set_stream_delay_ms(self, delay_ms: int) -> None:
        """Nothing to do: the adaptive filter finds the delay within ``filter_ms``."""

    def close(self) -> None:
        """Free the library's states (also done when the object is collected)."""
        lib = self._lib
        if getattr(self, "_pre", None):
            lib.speex_preprocess_state_destroy(self._pre)
        if getattr(self, "_echo", None):
            lib.speex_echo_state_destroy(self._echo)
        self._pre = None
        self._echo = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: the library may be gone
            self.close()
