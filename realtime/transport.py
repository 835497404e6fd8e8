"""The WebSocket under a session: opening it, and handing each data message to a callback.

:func:`open_connection` opens the endpoint's WebSocket with fresh headers (so key providers
are called on every connection) and converts failures into :mod:`realtime.exceptions`
(HTTP 401/403 -> :class:`AuthenticationError`, anything else -> :class:`ConnectionError`);
messages name the URL without its query and never contain the key. :class:`FrameConnection`
is a websockets client connection that delivers complete data frames straight from the byte
stream with no per-message queue (control frames and fragmented messages take websockets'
own path).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.protocol import Event as WSEvent
from websockets.protocol import State

from .connection import CredentialFilter, Endpoint, is_local_url, safe_url
from .exceptions import AuthenticationError, ConnectionError

__all__ = ["FrameConnection", "close_info", "open_connection", "ws_logger"]

ws_logger = logging.getLogger("realtime.websockets")
"""The logger handed to websockets (its handshake debug lines have credentials redacted)."""
ws_logger.addFilter(CredentialFilter())


class FrameConnection(ClientConnection):
    """A websockets client connection handing each data message to a callback.

    websockets normally queues messages for ``recv()``; a realtime session consumes
    every message immediately, so it takes them straight from the protocol layer
    (inside ``data_received``), without a queue, a task switch or a UTF-8 decode per
    message (the JSON parser validates the bytes). Control frames, the handshake and
    closing are left to websockets. Messages arriving before :meth:`attach` are kept.
    """

    _sink: Callable[[bytes], None] | None = None
    _early: list[bytes] | None = None
    _parts: list[bytes] | None = None
    _fast = False
    _buffer: bytearray | None = None

    def attach(self, sink: Callable[[bytes], None]) -> None:
        """Deliver messages to ``sink`` from now on (and those received so far)."""
        early, self._early = self._early or [], None
        self._sink = sink
        for data in early:
            sink(data)
        reader = getattr(self.protocol, "reader", None)
        if isinstance(getattr(reader, "buffer", None), bytearray) and not reader.buffer:  # type: ignore[union-attr]
            # websockets' parser sits between frames: complete data frames can be cut
            # here and everything else handed to it, one whole frame at a time.
            self._fast = True
            self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        """Split complete unfragmented data frames off the stream; the rest goes to websockets.

        Server frames are unmasked; anything unusual (a control frame, a fragment, an
        extension bit, a frame over ``max_size``, a frame after the closing handshake
        began) is passed whole to websockets, which handles it as usual.
        """
        buf = self._buffer
        if not self._fast or buf is None:
            super().data_received(data)
            return
        # Work on the incoming bytes directly when nothing is pending (the usual case):
        # each message is then copied once, and only an incomplete tail is kept.
        if buf:
            buf += data
            src: bytes | bytearray = buf
        else:
            src = data
        view = memoryview(src)  # slices of a view are copied once, not twice
        sink = self._sink
        limit: int | None = getattr(self.protocol, "max_message_size", None)
        size = len(src)
        pos = 0
        handed = False
        while size - pos >= 2:
            b0 = src[pos]
            length = src[pos + 1]
            if length & 0x80:  # a masked server frame: websockets fails the connection
                handed = True
                break
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(src[pos + 2 : pos + 4], "big")
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(src[pos + 2 : pos + 10], "big")
                head = 10
            if limit is not None and length > limit:  # websockets closes with 1009
                handed = True
                break
            end = pos + head + length
            if end > size:
                break
            if b0 == 0x81 or b0 == 0x82:  # final text/binary frame, no extension bits
                message = bytes(view[pos + head : end])
                pos = end
                if sink is not None:
                    sink(message)
            else:  # control frame or fragment: websockets handles this one whole frame
                frame = bytes(view[pos:end])
                pos = end
                super().data_received(frame)
            if self.protocol.state is not State.OPEN:
                handed = True
                break
        rest = bytes(view[pos:]) if pos < size else b""
        view.release()
        buf.clear()
        if handed:
            self._fast = False
            if rest:
                super().data_received(rest)
        elif rest:
            buf += rest

    def process_event(self, event: WSEvent) -> None:
        if self.response is None:  # the handshake response comes first
            super().process_event(event)
            return
        assert isinstance(event, Frame)
        opcode = event.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            data = event.data
            if not event.fin:
                self._parts = [bytes(data)]
                return
        elif opcode is Opcode.CONT:
            if self._parts is None:
                return
            self._parts.append(bytes(event.data))
            if not event.fin:
                return
            data, self._parts = b"".join(self._parts), None
        else:
            super().process_event(event)
            return
        sink = self._sink
        if sink is None:
            if self._early is None:
                self._early = []
            self._early.append(bytes(data))
        else:
            sink(data)  # type: ignore[arg-type]  # websockets gives bytes for a message


def close_info(ws: ClientConnection) -> tuple[int, str]:
    """The close code and reason: received, else the one we sent (failing), else 1006."""
    frame = ws.protocol.close_rcvd or ws.protocol.close_sent
    if frame is None:
        return 1006, ""
    return int(frame.code), frame.reason


async def open_connection(
    endpoint: Endpoint,
    *,
    connect_timeout: float | None = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    max_size: int | None = 128 * 1024 * 1024,
    compression: str | None = None,
) -> FrameConnection:
    """Open the WebSocket of ``endpoint`` (fresh headers, so key providers are called).

    Proxies from the environment are used except for local URLs. Raises
    :class:`AuthenticationError` for HTTP 401/403 and :class:`ConnectionError` for any
    other failure (refused, timed out, handshake rejected); messages name the URL
    without its query string and never contain the key.
    """
    url = endpoint.url
    headers = await endpoint.headers()
    where = safe_url(url)
    try:
        return await ws_connect(
            url,
            additional_headers=headers,
            open_timeout=connect_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_size=max_size,
            compression=compression,
            proxy=None if is_local_url(url) else True,
            user_agent_header="realtime-voice",
            logger=ws_logger,
            create_connection=FrameConnection,
        )  # type: ignore[return-value]
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status in (401, 403):
            raise AuthenticationError(f"{where} refused the credentials (HTTP {status})") from None
        raise ConnectionError(f"{where} refused the WebSocket handshake (HTTP {status})") from None
    except InvalidHandshake as exc:
        raise ConnectionError(
            f"WebSocket handshake with {where} failed: {type(exc).__name__}"
        ) from None
    except (OSError, asyncio.TimeoutError) as exc:
        what = "timed out" if isinstance(exc, asyncio.TimeoutError) else str(exc.strerror or exc)
        raise ConnectionError(f"cannot connect to {where}: {what}") from None
