"""Raw connections of the local server: a connection limit and a handshake timeout.

uvicorn's HTTP and WebSocket protocol classes are wrapped (through the ``http`` / ``ws``
options of ``uvicorn.Config``, which take protocol classes) in :func:`guarded_protocols`:

- past ``Limits.max_connections`` open connections, a new one is answered
  ``HTTP/1.1 503`` with an OpenAI-shaped body and closed, before any parsing;
- a connection must complete its request headers within ``Limits.handshake_timeout``
  (a client that connects and never sends, or trickles its headers, is closed).

Idle keep-alive connections are closed by uvicorn's ``timeout_keep_alive``
(``Limits.idle_timeout``); WebSocket peers that stop answering pings, by its ping timeout.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from .limits import Limits
from .logs import RateLimitedLog

__all__ = ["ConnectionGuard", "guarded_protocols"]

_HEADERS_END = b"\r\n\r\n"


class ConnectionGuard:
    """Open connections of one server (transports, counted once each)."""

    def __init__(self, limits: Limits, refusals: RateLimitedLog) -> None:
        self.limits = limits
        self.refusals = refusals
        self.open: set[asyncio.BaseTransport] = set()
        self.refused = 0

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        """Count a new connection; False (and a 503 sent, the transport closed) when full."""
        if len(self.open) >= self.limits.max_connections:
            self.refused += 1
            self.refusals.warning(
                "connections",
                "refusing connections: %d open (Limits.max_connections)",
                len(self.open),
            )
            _refuse(transport)
            return False
        self.open.add(transport)
        return True

    def release(self, transport: asyncio.BaseTransport) -> None:
        """The connection ended."""
        self.open.discard(transport)


def _refuse(
    transport: asyncio.BaseTransport,
    status: int = 503,
    reason: str = "Service Unavailable",
    message: str = "The server is handling too many connections; try again later.",
    code: str = "server_busy",
) -> None:
    """Answer with an HTTP error and an OpenAI-shaped body, then close."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = json.dumps(
        {"error": {"message": message, "type": kind, "code": code, "param": None}}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n"
        + ("retry-after: 1\r\n" if status == 503 else "")
        + "\r\n"
    ).encode()
    if isinstance(transport, asyncio.WriteTransport):
        transport.write(head + body)
    transport.close()


def guarded_protocols(
    http_class: type[asyncio.Protocol],
    ws_class: type[asyncio.Protocol] | None,
    guard: ConnectionGuard,
) -> tuple[type[asyncio.Protocol], type[asyncio.Protocol] | None]:
    """The HTTP and WebSocket protocol classes to hand uvicorn (see the module docstring)."""

    class GuardedHttp(asyncio.Protocol):
        """uvicorn's HTTP protocol behind the connection limit and the handshake timeout."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.inner = http_class(*args, **kwargs)
            self._transport: asyncio.BaseTransport | None = None
            self._timer: asyncio.TimerHandle | None = None
            self._tail = b""
            self._head_bytes = 0
            self._admitted = False

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self._transport = transport
            if not guard.admit(transport):
                return
            self._admitted = True
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(guard.limits.handshake_timeout, self._expired)
            self.inner.connection_made(transport)

        def _expired(self) -> None:
            self._timer = None
            if self._transport is not None and not self._transport.is_closing():
                self._transport.close()

        def data_received(self, data: bytes) -> None:
            if not self._admitted:
                return
            if self._timer is not None and not self._first_headers(data):
                return
            self.inner.data_received(data)

        def _first_headers(self, data: bytes) -> bool:
            """Watch the first request's headers: their end stops the handshake timer; past
            ``max_header_bytes`` the connection gets 431 and is closed (False)."""
            seen = self._tail + data
            end = seen.find(_HEADERS_END)
            size = self._head_bytes + (len(data) if end < 0 else end + 4 - len(self._tail))
            if size > guard.limits.max_header_bytes:
                assert self._timer is not None and self._transport is not None
                self._timer.cancel()
                self._timer = None
                self._admitted = False  # the inner protocol never sees this connection again
                guard.refusals.warning("headers", "refused a request: headers over the limit")
                _refuse(
                    self._transport,
                    431,
                    "Request Header Fields Too Large",
                    "The request headers are too large.",
                    "request_headers_too_large",
                )
                self.inner.connection_lost(None)
                return False
            if end >= 0:
                assert self._timer is not None
                self._timer.cancel()
                self._timer = None
            self._head_bytes = size
            self._tail = seen[-3:]
            return True

        def eof_received(self) -> bool | None:
            return self.inner.eof_received() if self._admitted else None

        def connection_lost(self, exc: Exception | None) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._transport is not None:
                guard.release(self._transport)
            if self._admitted:
                self.inner.connection_lost(exc)

        def pause_writing(self) -> None:
            self.inner.pause_writing()

        def resume_writing(self) -> None:
            self.inner.resume_writing()

    if ws_class is None:
        return GuardedHttp, None
    ws_inner = ws_class

    class GuardedWs(asyncio.Protocol):
        """uvicorn's WebSocket protocol; releases the connection's slot when it ends."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.inner = ws_inner(*args, **kwargs)
            self._transport: asyncio.BaseTransport | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self._transport = transport
            self.inner.connection_made(transport)

        def data_received(self, data: bytes) -> None:
            self.inner.data_received(data)

        def eof_received(self) -> bool | None:
            return self.inner.eof_received()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._transport is not None:
                guard.release(self._transport)
            self.inner.connection_lost(exc)

        def pause_writing(self) -> None:
            self.inner.pause_writing()

        def resume_writing(self) -> None:
            self.inner.resume_writing()

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    return GuardedHttp, GuardedWs
