"""Giving freed memory back to the operating system.

Large transient buffers (a 20 MiB append frame, its decoded audio, a speech-recognition pass,
a decoded upload) are freed by Python, but glibc serves blocks under its *dynamic* mmap
threshold (which climbs to 32 MiB after the first large free) from its heaps, and keeps the
pages: the server's RSS would only grow. :func:`mmap_large_blocks` fixes the threshold
(``mallopt(M_MMAP_THRESHOLD)``): every block above it gets its own mapping, returned to the
OS the moment it is freed, with no lock held on the heaps (``malloc_trim`` would do the
same work later while blocking every thread's allocations, the event loop's included: 90 ms
measured on a 600 MB heap). 4 MiB sits above the speech engines' per-window working
buffers, which a lower threshold would map and fault in again and again (speech
recognition ran slower at 256 KiB and 1 MiB in ``bench_server_limits.py``), and below the
frames, decoded audio and uploads the server must give back.
Process-wide and glibc-only; elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable

__all__ = ["MMAP_THRESHOLD", "mmap_large_blocks"]

MMAP_THRESHOLD = 4 * 1024 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def _load_mallopt() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt: Callable[[int, int], int] = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return None
    return mallopt


_MALLOPT = _load_mallopt()


def mmap_large_blocks(threshold: int = MMAP_THRESHOLD) -> bool:
    """Serve blocks of ``threshold`` bytes and more with their own mappings (see the module
    docstring); True where glibc took the setting."""
    if _MALLOPT is None:
        return False
    return bool(_MALLOPT(_M_MMAP_THRESHOLD, threshold))
