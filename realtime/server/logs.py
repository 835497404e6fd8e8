"""Logging of the local server: credentials redacted everywhere, repeated failures rate-limited.

:class:`RedactingFilter` rewrites every record of the loggers the server runs under
(``uvicorn.*``, ``websockets.*``, ``realtime.server``, ``asyncio``) so that no line, at any
level, carries ``Authorization: Bearer …``, an ``api-key`` header, the
``openai-insecure-api-key.…`` subprotocol, an ephemeral ``ek_…`` key or the configured API
key. :class:`RateLimitedLog` turns a failure repeated thousands of times a second (accepts
failing with the file descriptors exhausted) into one line per interval, with a count.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "GUARDED_LOGGERS",
    "RateLimitedLog",
    "RedactingFilter",
    "RefusalNoiseFilter",
    "accept_error_handler",
    "redact",
]

GUARDED_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "uvicorn.asgi",
    "websockets",
    "websockets.server",
    "websockets.protocol",
    "websockets.asyncio.server",
    "websockets.legacy.server",
    "realtime.server",
    "asyncio",
)

REDACTED = "[redacted]"
_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[^\s'\",;]+"),
    re.compile(r"(?i)(openai-insecure-api-key\.)[^\s'\",;\]]+"),
    re.compile(r"(?i)(api-key['\"]?\s*[:=,]\s*(?:b?['\"])?)[^\s'\",;)\]]+"),
    re.compile(r"()\bek_[A-Za-z0-9_\-]{8,}"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every credential replaced by ``[redacted]``."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (and traceback text) with credentials redacted."""

    def __init__(self, secrets: Callable[[], Iterable[str]] | None = None) -> None:
        super().__init__("realtime.server.redact")
        self._secrets = secrets or (lambda: ())

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = list(self._secrets())
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a record whose args do not fit its format
            message = f"{record.msg!r} {record.args!r}"
        clean = redact(message, secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        return True

    def install(self, names: Iterable[str] = GUARDED_LOGGERS) -> Callable[[], None]:
        """Attach to the loggers (and their handlers); returns the undo function."""
        touched: list[logging.Filterer] = []
        for name in names:
            logger = logging.getLogger(name)
            for target in (logger, *logger.handlers):
                if self not in target.filters:
                    target.addFilter(self)
                    touched.append(target)

        def undo() -> None:
            for target in touched:
                target.removeFilter(self)

        return undo


class RefusalNoiseFilter(logging.Filter):
    """Drops uvicorn's "returned without completing handshake" line after a refusal we sent.

    uvicorn's WebSocket protocol logs that error for any handshake answered with an HTTP
    response (the ASGI denial extension), which is how the server refuses one properly; the
    line is dropped once per refusal announced with :meth:`expect`, and kept otherwise.
    """

    MESSAGE = "ASGI callable returned without completing handshake."

    def __init__(self) -> None:
        super().__init__("realtime.server.refusals")
        self._expected = 0

    def expect(self) -> None:
        """A handshake is being refused with an HTTP response."""
        self._expected += 1

    def filter(self, record: logging.LogRecord) -> bool:
        if self._expected and record.msg == self.MESSAGE:
            self._expected -= 1
            return False
        return True

    def install(self, names: Iterable[str] = ("uvicorn.error",)) -> Callable[[], None]:
        """Attach to the loggers; returns the undo function."""
        loggers = [logging.getLogger(name) for name in names]
        for logger in loggers:
            logger.addFilter(self)

        def undo() -> None:
            for logger in loggers:
                logger.removeFilter(self)

        return undo


class RateLimitedLog:
    """At most one line per ``interval`` seconds per key; the lines skipped are counted."""

    def __init__(self, logger: logging.Logger, interval: float) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def warning(self, key: str, message: str, *args: Any) -> None:
        """Log ``message`` unless ``key`` was logged less than ``interval`` seconds ago."""
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._skipped[key] = self._skipped.get(key, 0) + 1
            return
        skipped = self._skipped.pop(key, 0)
        self._last[key] = now
        if skipped:
            message += f" ({skipped} more in the last {self.interval:g} s)"
        self.logger.warning(message, *args)


def accept_error_handler(
    limited: RateLimitedLog,
    previous: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None,
) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """A loop exception handler logging failed accepts (fds exhausted) as one rate-limited
    line without a traceback; everything else goes to ``previous`` (or the default)."""

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if str(context.get("message", "")).startswith("socket.accept() out of system resource"):
            exc = context.get("exception")
            limited.warning(
                "accept",
                "the local server cannot accept connections: out of file descriptors (%s); "
                "raise the limit (ulimit -n) or lower Limits.max_connections",
                getattr(exc, "strerror", None) or exc,
            )
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    return handler
