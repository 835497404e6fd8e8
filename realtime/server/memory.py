"""Giving freed memory back to the operating system.

Large transient buffers (a 20 MiB append frame, its decoded audio, a speech-recognition pass,
a decoded upload) are freed by Python, but glibc keeps the pages in its heaps (one per worker
thread), so the server's RSS would only grow. :class:`MemoryTrimmer` calls glibc's
``malloc_trim(0)`` in a worker thread after such work, at most once per ``interval``
seconds; where glibc is not the C library it does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import sys
import time
from collections.abc import Callable

__all__ = ["MemoryTrimmer", "malloc_trim"]

log = logging.getLogger("realtime.server")


def _load_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # musl and others have no malloc_trim
        return None
    return trim


_TRIM = _load_trim()


def malloc_trim() -> bool:
    """Return free heap memory to the OS now (blocking; True where glibc supports it)."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


class MemoryTrimmer:
    """Schedules :func:`malloc_trim` in a worker thread, at most once per ``interval``."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._last = 0.0
        self._task: asyncio.Task[bool] | None = None
        self._again = False

    def request(self) -> None:
        """Ask for a trim soon (from the event loop; never blocks it)."""
        if _TRIM is None:
            return
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Cancel a pending trim (when the server stops)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])

    async def _run(self) -> bool:
        wait = self._last + self.interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._again = False
        done = await asyncio.to_thread(malloc_trim)
        self._last = time.monotonic()
        if self._again:
            self._again = False
            self._task = asyncio.get_running_loop().create_task(self._run())
        return done
