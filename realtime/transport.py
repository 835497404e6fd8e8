"""The WebSocket under a session, on websockets' sans-I/O public API.

:class:`FrameTransport` is the small interface a session drives: send a text message,
receive the inbound messages in batches (with back-pressure), close. A WebRTC data
channel implements the same interface.

:class:`WebSocketTransport` implements it with websockets' sans-I/O
:class:`websockets.client.ClientProtocol` driven from an :class:`asyncio.Protocol` of
ours (websockets parses and writes frames, answers pings and runs the closing
handshake; we own the socket):

* **Back-pressure.** Inbound messages are buffered until :meth:`~FrameTransport.receive`
  takes them; once ``max_buffer`` bytes are waiting, reading from the socket stops
  (TCP then pushes back on the server) and resumes at the next ``receive()``. Nothing
  is dropped. Memory held: at most ``max_buffer`` + one socket read (256 KiB) + one
  message being assembled (``max_size``). Once :meth:`~FrameTransport.close` is called
  reading goes on (the server's close frame must be read); what was in flight is kept.
* **UTF-8.** A text message that is not valid UTF-8 fails the connection with close
  code 1007 (RFC 6455 section 8.1).
* **Keepalive.** A ping every ``ping_interval`` seconds (5 s); when neither its pong nor
  any other byte arrives within ``ping_timeout`` (5 s) the link is declared dead and
  the connection dropped (close code 1006, reason ``"keepalive timeout"``): a dead link
  is noticed within ``ping_interval + ping_timeout`` = 10 s by default. While reading
  is paused for back-pressure the deadline is not enforced (the pong cannot be read).
* **Errors** become :mod:`realtime.exceptions`: HTTP 401/403 ->
  :class:`AuthenticationError`, any other failure -> :class:`ConnectionError`; messages
  name the URL without its query and never contain the key.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import socket
import ssl
import urllib.request
from collections.abc import Sequence
from typing import Protocol, TypeAlias, cast, runtime_checkable
from urllib.parse import unquote, urlsplit

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from .connection import CredentialFilter, Endpoint, is_local_url, safe_url
from .exceptions import AuthenticationError, ConfigError, ConnectionClosed, ConnectionError

__all__ = [
    "DEFAULT_MAX_BUFFER",
    "FrameTransport",
    "Message",
    "WebSocketTransport",
    "open_connection",
    "ws_logger",
]

ws_logger = logging.getLogger("realtime.websockets")
"""The logger handed to websockets (its handshake debug lines have credentials redacted)."""
ws_logger.addFilter(CredentialFilter())

Message: TypeAlias = "str | bytes | bytearray"
"""An inbound message: text, or bytes-like (a ``bytearray`` is handed over, never reused)."""

DEFAULT_MAX_BUFFER = 4 * 1024 * 1024
"""Bytes of received messages buffered before reading from the socket stops."""


@runtime_checkable
class FrameTransport(Protocol):
    """A message transport a realtime session runs on (WebSocket, WebRTC data channel)."""

    async def receive(self) -> list[Message]:
        """Wait for inbound messages; return every buffered one, in order (never empty).

        One consumer at a time (the session's reader).

        A message is ``str`` or bytes-like (``bytes`` or a ``bytearray`` the transport
        hands over and never touches again): pass it straight to the JSON parser.

        Messages are buffered (up to a stated limit) only between calls: a consumer
        that falls behind simply calls this later, and the transport stops reading
        from the network meanwhile. Raises :class:`ConnectionClosed` once the
        connection has ended and every message received before was returned.
        """
        ...

    async def send(self, text: str) -> None:
        """Send one text message; raises :class:`ConnectionClosed` when closed.

        Waits while the network is slower than the sender (write back-pressure). Text
        that cannot be encoded as UTF-8 (a lone surrogate) raises :class:`ConfigError`.
        """
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close (handshake bounded by a timeout, then drop); idempotent.

        Cancelling it drops the connection at once; the transport is closed either way.
        """
        ...

    def abort(self) -> None:
        """Drop the connection now, without a closing handshake."""
        ...

    @property
    def closed(self) -> bool:
        """True once the connection has ended."""
        ...

    @property
    def close_code(self) -> int | None:
        """The close code (None while open; 1006 when no close frame was exchanged)."""
        ...

    @property
    def close_reason(self) -> str:
        """The close reason ("" while open)."""
        ...

    async def wait_closed(self) -> None:
        """Return once the connection has ended."""
        ...


class WebSocketTransport(asyncio.Protocol):
    """A client WebSocket: websockets' sans-I/O protocol on an asyncio transport.

    Create it with :func:`open_connection`. Implements :class:`FrameTransport`.
    """

    def __init__(
        self,
        protocol: ClientProtocol,
        *,
        where: str,
        max_buffer: int = DEFAULT_MAX_BUFFER,
        ping_interval: float | None = 5.0,
        ping_timeout: float | None = 5.0,
        close_timeout: float = 2.0,
    ) -> None:
        if max_buffer < 1:
            raise ConfigError("max_buffer must be at least 1 byte")
        self._ws = protocol
        self._where = where
        self.max_buffer = max_buffer
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._handshake: asyncio.Future[None] = self._loop.create_future()
        self._done: asyncio.Future[None] = self._loop.create_future()
        self._inbox: list[Message] = []
        self._inbox_bytes = 0
        self._parts: list[bytes | bytearray] | None = None
        self._part_text = False
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False  # reading paused by us (back-pressure)
        self._closing = False  # close() called: read on, to see the server's close frame
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._code: int | None = None
        self._reason = ""
        self._fail_code: int | None = None
        self._fail_reason = ""
        self._ping_handle: asyncio.TimerHandle | None = None
        self._pong_handle: asyncio.TimerHandle | None = None
        self._close_handle: asyncio.TimerHandle | None = None
        self._ping_payload: bytes | None = None
        self._rx = False
        self.response: Response | None = None
        self.pauses = 0
        """How many times reading was paused for back-pressure (for tests and metrics)."""

    def __repr__(self) -> str:
        state = "closed" if self.closed else self._ws.state.name.lower()
        return f"<WebSocketTransport {self._where} {state}>"

    # -- FrameTransport ----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._done.done()

    @property
    def close_code(self) -> int | None:
        return self._code if self._done.done() else None

    @property
    def close_reason(self) -> str:
        return self._reason if self._done.done() else ""

    @property
    def reading_paused(self) -> bool:
        """True while reading from the socket is paused because the consumer is behind."""
        return self._paused

    @property
    def buffered(self) -> int:
        """Bytes of received messages waiting for :meth:`receive`."""
        return self._inbox_bytes

    async def receive(self) -> list[Message]:
        while not self._inbox:
            if self._done.done():
                raise ConnectionClosed(self._code, self._reason)
            waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        batch, self._inbox = self._inbox, []
        self._inbox_bytes = 0
        if self._paused:
            self._paused = False
            transport = self._transport
            if transport is not None and not self._done.done():
                transport.resume_reading()
        return batch

    async def send(self, text: str) -> None:
        if self._ws.state is not State.OPEN or self._done.done():
            raise ConnectionClosed(*self._end_info())
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ConfigError(
                f"cannot send text that is not valid Unicode ({exc.reason} at {exc.start})"
            ) from None
        self._ws.send_text(data)
        self._flush()
        if self._write_paused:
            drain = self._drain
            if drain is None:
                drain = self._drain = self._loop.create_future()
            await asyncio.shield(drain)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self._closing = True
        if not self._done.done():
            if self._paused and self._transport is not None:
                # The server's close frame must be read; what is still in flight (bounded
                # by the socket buffers) is kept for receive().
                self._paused = False
                self._transport.resume_reading()
            if self._ws.state is State.OPEN:
                self._ws.send_close(code, reason)
                self._flush()
                self._arm_close_timer()
            elif self._close_handle is None:
                self._arm_close_timer()
        try:
            await asyncio.shield(self._done)
        except asyncio.CancelledError:
            self.abort()
            raise

    def abort(self) -> None:
        transport = self._transport
        if transport is not None:
            transport.abort()
        self._finish()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._done)

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance check
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._rx = True
        ws = self._ws
        ws.receive_data(data)
        events = ws.events_received()
        if events:
            self._process(events)
        self._flush()
        if self._close_handle is None and ws.close_expected():
            self._arm_close_timer()

    def eof_received(self) -> bool | None:
        self._ws.receive_eof()
        self._process(self._ws.events_received())
        self._flush()
        return None  # let asyncio close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._ws.receive_eof()
        self._process(self._ws.events_received())
        self._finish()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- internals -----------------------------------------------------------------------

    def _process(self, events: Sequence[object]) -> None:
        inbox = self._inbox
        append = inbox.append
        added = 0
        message: bytes | bytearray
        text, binary = Opcode.TEXT, Opcode.BINARY
        for event in events:
            if type(event) is not Frame:
                if isinstance(event, Response):
                    self._handshake_done(event)
                continue
            opcode = event.opcode
            # websockets gives each received frame its own buffer (never a memoryview):
            # it is passed on, not copied.
            message = event.data  # type: ignore[assignment]
            if opcode is text:
                if not event.fin:
                    self._parts, self._part_text = [message], True
                    continue
                if not message.isascii() and not self._utf8(message):
                    break
            elif opcode is binary:
                if not event.fin:
                    self._parts, self._part_text = [message], False
                    continue
            elif opcode is Opcode.CONT:
                parts = self._parts
                if parts is None:  # websockets rejects this before it gets here
                    continue
                parts.append(message)
                if not event.fin:
                    continue
                message = b"".join(parts)
                self._parts = None
                if self._part_text and not message.isascii() and not self._utf8(message):
                    break
            elif opcode is Opcode.PONG:
                if self._ping_payload is not None and message == self._ping_payload:
                    self._pong()
                continue
            else:  # ping (answered by websockets) or close (handled by websockets)
                continue
            append(message)
            added += len(message)
        if added:
            self._inbox_bytes += added
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            if self._inbox_bytes >= self.max_buffer and not self._paused and not self._closing:
                transport = self._transport
                if transport is not None and not self._done.done():
                    self._paused = True
                    self.pauses += 1
                    transport.pause_reading()

    def _utf8(self, message: bytes | bytearray) -> bool:
        """Check a non-ASCII text message; fail the connection with 1007 when invalid."""
        try:
            message.decode("utf-8")
        except UnicodeDecodeError as exc:
            reason = f"invalid UTF-8 in a text message ({exc.reason} at byte {exc.start})"
            ws_logger.warning("%s: failing the connection to %s (1007)", reason, self._where)
            self._fail_code, self._fail_reason = 1007, reason
            self._ws.fail(1007, reason)
            return False
        return True

    def _flush(self) -> None:
        transport = self._transport
        for chunk in self._ws.data_to_send():
            if transport is None or transport.is_closing():
                return
            if chunk:
                transport.write(chunk)
            elif transport.can_write_eof():
                transport.write_eof()

    def _arm_close_timer(self) -> None:
        if self._close_handle is None and not self._done.done():
            self._close_handle = self._loop.call_later(self.close_timeout, self.abort)

    def _handshake_done(self, response: Response) -> None:
        self.response = response
        if not self._handshake.done():
            self._handshake.set_result(None)
        if self._ws.handshake_exc is None:
            self._schedule_ping()

    def _schedule_ping(self) -> None:
        if self.ping_interval is not None and not self._done.done():
            self._ping_handle = self._loop.call_later(self.ping_interval, self._ping)

    def _ping(self) -> None:
        self._ping_handle = None
        if self._ws.state is not State.OPEN or self._done.done():
            return
        self._ping_payload = os.urandom(4)
        self._ws.send_ping(self._ping_payload)
        self._flush()
        self._rx = False
        if self.ping_timeout is not None:
            self._pong_handle = self._loop.call_later(self.ping_timeout, self._pong_overdue)

    def _pong(self) -> None:
        self._ping_payload = None
        if self._pong_handle is not None:
            self._pong_handle.cancel()
            self._pong_handle = None
        if self._ping_handle is None:
            self._schedule_ping()

    def _pong_overdue(self) -> None:
        self._pong_handle = None
        if self._done.done():
            return
        if self._paused or self._rx:
            # Reading is paused (the pong may be waiting in the socket) or bytes are
            # still arriving (the pong is queued behind them): the link is alive.
            self._rx = False
            assert self.ping_timeout is not None
            self._pong_handle = self._loop.call_later(self.ping_timeout, self._pong_overdue)
            return
        ws_logger.warning(
            "no pong within %g s: the connection to %s is dead", self.ping_timeout, self._where
        )
        self._fail_code, self._fail_reason = 1006, "keepalive timeout"
        self.abort()

    def _end_info(self) -> tuple[int, str]:
        if self._fail_code is not None:
            return self._fail_code, self._fail_reason
        ws = self._ws
        rcvd, sent = ws.close_rcvd, ws.close_sent
        if sent is not None and sent.code not in (1000, 1001) and not ws.close_rcvd_then_sent:
            return int(sent.code), sent.reason  # we failed it (1002, 1009, ...): our code
        if rcvd is not None:
            return int(rcvd.code), rcvd.reason
        return 1006, ""

    def _finish(self) -> None:
        if self._done.done():
            return
        self._code, self._reason = self._end_info()
        for handle in (self._ping_handle, self._pong_handle, self._close_handle):
            if handle is not None:
                handle.cancel()
        self._ping_handle = self._pong_handle = self._close_handle = None
        self._done.set_result(None)
        if not self._handshake.done():
            self._handshake.set_result(None)
        for fut in (self._waiter, self._drain):
            if fut is not None and not fut.done():
                fut.set_result(None)
        self._drain = None


# -- opening -----------------------------------------------------------------------------


def _env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url``, chosen as websockets does.

    ``no_proxy`` bypasses; ``wss://`` tries ``wss``, ``socks``, ``https`` proxies and
    ``ws://`` tries ``ws``, ``socks``, ``https``, ``http`` (RFC 6455, Proxy Usage).
    """
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    if urllib.request.proxy_bypass(f"{host}:{port}"):
        return None
    proxies = urllib.request.getproxies()
    schemes = ("wss", "socks", "https") if secure else ("ws", "socks", "https", "http")
    for scheme in schemes:
        proxy = proxies.get(scheme)
        if proxy is not None:
            return (
                "socks5h://" + proxy[7:]
                if scheme == "socks" and proxy.startswith("http://")
                else proxy
            )
    return None


async def _proxy_socket(proxy: str, host: str, port: int) -> socket.socket:
    """A socket tunnelled through an HTTP proxy with ``CONNECT`` (basic auth if given)."""
    parts = urlsplit(proxy)
    if parts.scheme != "http" or not parts.hostname:
        raise ConnectionError(
            f"unsupported proxy {parts.scheme}://{parts.hostname or ''}: only HTTP CONNECT "
            "proxies (http://) are supported; set no_proxy for this host to connect directly"
        )
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(parts.hostname, parts.port or 8080, type=socket.SOCK_STREAM)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, address)
        authority = f"[{host}]" if ":" in host else host
        request = f"CONNECT {authority}:{port} HTTP/1.1\r\nHost: {authority}:{port}\r\n"
        if parts.username is not None:
            token = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            request += f"Proxy-Authorization: Basic {base64.b64encode(token.encode()).decode()}\r\n"
        await loop.sock_sendall(sock, (request + "\r\n").encode("latin-1"))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await loop.sock_recv(sock, 1)  # byte by byte: nothing past the head
            if not chunk or len(head) > 16384:
                raise OSError("the proxy closed the connection during CONNECT")
            head += chunk
        status = head.split(b"\r\n", 1)[0].split()
        if len(status) < 2 or status[1] != b"200":
            code = status[1].decode("latin-1") if len(status) > 1 else "?"
            raise ConnectionError(f"the proxy {parts.hostname} refused CONNECT (HTTP {code})")
        return sock
    except BaseException:
        sock.close()
        raise


async def open_connection(
    endpoint: Endpoint,
    *,
    connect_timeout: float | None = 10.0,
    ping_interval: float | None = 5.0,
    ping_timeout: float | None = 5.0,
    max_size: int | None = 128 * 1024 * 1024,
    max_buffer: int = DEFAULT_MAX_BUFFER,
    compression: str | None = None,
    close_timeout: float = 2.0,
    ssl_context: ssl.SSLContext | None = None,
) -> WebSocketTransport:
    """Open the WebSocket of ``endpoint`` (fresh headers, so key providers are called).

    Proxies from the environment (``https_proxy``/``http_proxy``, ``no_proxy``; HTTP
    ``CONNECT`` proxies) are used except for local URLs. ``compression="deflate"``
    offers permessage-deflate. Raises :class:`AuthenticationError` for HTTP 401/403 and
    :class:`ConnectionError` for any other failure (refused, timed out, handshake
    rejected); messages name the URL without its query string and never contain the key.
    """
    url = endpoint.url
    where = safe_url(url)
    if compression not in (None, "deflate"):
        raise ConfigError(f"unknown compression {compression!r} (expected None or 'deflate')")
    try:
        uri = parse_uri(url)
    except InvalidURI:
        raise ConfigError(f"not a WebSocket URL: {where!r}") from None
    headers = await endpoint.headers()
    extensions = [ClientPerMessageDeflateFactory()] if compression == "deflate" else None
    ws = ClientProtocol(uri, extensions=extensions, max_size=max_size, logger=ws_logger)
    request = ws.connect()
    for name, value in headers:
        request.headers[name] = value
    request.headers["User-Agent"] = "realtime-voice"
    loop = asyncio.get_running_loop()
    conn = WebSocketTransport(
        ws,
        where=where,
        max_buffer=max_buffer,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        close_timeout=close_timeout,
    )

    async def handshake() -> None:
        context = (ssl_context or ssl.create_default_context()) if uri.secure else None
        proxy = None if is_local_url(url) else _env_proxy(url)
        if proxy is not None:
            sock = await _proxy_socket(proxy, uri.host, uri.port)
            await loop.create_connection(
                lambda: conn, sock=sock, ssl=context, server_hostname=uri.host if context else None
            )
        else:
            await loop.create_connection(lambda: conn, uri.host, uri.port, ssl=context)
        ws.send_request(request)
        conn._flush()
        await conn._handshake

    try:
        await asyncio.wait_for(handshake(), connect_timeout)
    except asyncio.TimeoutError:
        conn.abort()
        raise ConnectionError(f"cannot connect to {where}: timed out") from None
    except OSError as exc:
        conn.abort()
        raise ConnectionError(f"cannot connect to {where}: {exc.strerror or exc}") from None
    except BaseException:
        conn.abort()
        raise
    error = ws.handshake_exc
    if error is None and conn.response is None:
        error = InvalidHandshake("connection closed during the handshake")
    if error is not None:
        conn.abort()
        if isinstance(error, InvalidStatus):
            status = error.response.status_code
            if status in (401, 403):
                raise AuthenticationError(f"{where} refused the credentials (HTTP {status})")
            raise ConnectionError(f"{where} refused the WebSocket handshake (HTTP {status})")
        raise ConnectionError(f"WebSocket handshake with {where} failed: {type(error).__name__}")
    return conn
