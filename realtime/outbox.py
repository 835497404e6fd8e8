"""The session's outgoing side: a bounded queue of encoded client frames and its writer.

:class:`Outbox` keeps frames in order, lets :meth:`Outbox.put` wait while more than
``limit`` are queued (back-pressure for the application; a frame with nothing queued
ahead of it is sent at once), and :meth:`Outbox.run` sends the queued ones one by one
through whatever transport :attr:`Outbox.transport` names (a new one after a reconnect:
frames queued meanwhile go out there). After each sent frame the send listeners are
called (:class:`~realtime.recording.Recorder` records them). Internal frames
(acknowledgement replies, tool outputs, the reconnect restore) skip the limit: they must
never wait behind the application.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic_core import PydanticSerializationError

from .events import ClientEvent, encode_client_event, new_event_id
from .exceptions import ConfigError, ConnectionClosed, ProtocolError, RequestTimeout
from .transport import FrameTransport

__all__ = ["Outbox", "encode"]

logger = logging.getLogger("realtime.session")


def encode(event: ClientEvent | Mapping[str, Any]) -> tuple[str, str]:
    """A client event (model, or dict with a string ``type``) as a frame, with its event_id.

    A missing ``event_id`` is generated. Raises :class:`ConfigError` for a dict without
    a type or text that is not valid Unicode (a lone surrogate, as a bad decode leaves),
    ``TypeError`` for anything else.
    """
    if isinstance(event, ClientEvent):
        try:
            frame = encode_client_event(event)  # assigns a missing event_id
        except PydanticSerializationError as exc:
            raise ConfigError(
                f"cannot encode {event.type} (not valid Unicode or JSON): {exc}"
            ) from None
        event_id = str(event.event_id)
    elif isinstance(event, Mapping):
        data = dict(event)
        if not isinstance(data.get("type"), str):
            raise ConfigError("a client event needs a string 'type'")
        event_id = str(data.setdefault("event_id", new_event_id()))
        frame = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    else:
        raise TypeError(f"cannot send {type(event).__name__}: pass a ClientEvent or a dict")
    if not frame.isascii():  # audio frames are ASCII: this costs them nothing
        try:
            frame.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ConfigError(
                f"cannot send text that is not valid Unicode ({exc.reason} at {exc.start})"
            ) from None
    return frame, event_id


class _Outgoing:
    __slots__ = ("frame", "sent")

    def __init__(self, frame: str | None, sent: asyncio.Future[None] | None) -> None:
        self.frame = frame
        self.sent = sent


class Outbox:
    """Frames waiting to be sent (at most ``limit`` from :meth:`put`), and the writer loop."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.transport: FrameTransport | None = None
        self.connected = asyncio.Event()
        self.listeners: list[Callable[[str], None]] = []
        self._out: deque[_Outgoing] = deque()
        self._wakeup = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._error: ConnectionClosed | ProtocolError | None = None

    def __len__(self) -> int:
        return len(self._out)

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def put_nowait(self, frame: str) -> None:
        """Queue an internal frame (never waits; dropped once the outbox failed)."""
        if self._error is None:
            self._out.append(_Outgoing(frame, None))
            self._wakeup.set()

    def put_first(self, frames: Iterable[str]) -> None:
        """Queue ``frames`` (in order) ahead of everything queued (a reconnect restore)."""
        self._out.extendleft(_Outgoing(f, None) for f in reversed(list(frames)))
        self._wakeup.set()

    async def put(self, frame: str) -> None:
        """Queue an application frame; waits while ``limit`` frames are queued.

        Raises the close error once the session has ended.
        """
        self._check()
        transport = self.transport
        if not self._out and transport is not None and self.connected.is_set():
            # Nothing queued ahead: send now, without a hop through the writer task. The
            # frame is handed to the transport before any await, so order is kept.
            try:
                await transport.send(frame)
            except ConnectionClosed:
                # The reader notices the loss; the frame goes out on the next connection.
                if self.transport is transport:
                    self.connected.clear()
            else:
                self._notify(frame)
                return
        while len(self._out) >= self.limit:
            self._space.clear()
            await self._space.wait()
            self._check()
        self._out.append(_Outgoing(frame, None))
        self._wakeup.set()

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every frame queued so far was handed to the transport."""
        self._check()
        if not self._out:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._out.append(_Outgoing(None, fut))
        self._wakeup.set()
        try:
            await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise RequestTimeout(f"the send queue did not drain within {timeout} s") from None

    def fail(self, error: ConnectionClosed | ProtocolError) -> None:
        """The session ended: drop the queue, fail flushes and waiting puts with ``error``."""
        self._error = error
        for item in self._out:
            if item.sent is not None and not item.sent.done():
                item.sent.set_exception(error)
                item.sent.exception()
        self._out.clear()
        self._space.set()
        self._wakeup.set()

    def _notify(self, frame: str) -> None:
        for listener in self.listeners:
            try:
                listener(frame)
            except Exception:
                logger.exception("send listener failed")

    async def run(self) -> None:
        """The writer task: send queued frames in order while connected."""
        out = self._out
        while self._error is None:
            if not out:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if not self.connected.is_set():
                await self.connected.wait()
                continue
            transport = self.transport
            item = out[0]
            if item.frame is not None and transport is not None:
                try:
                    await transport.send(item.frame)
                except ConnectionClosed:
                    # The reader notices the loss; the frame goes out on the next connection.
                    if self.transport is transport:
                        self.connected.clear()
                    continue
                except ConfigError as exc:  # encode() refuses these first: never kill the writer
                    logger.error("dropped a frame the transport refused: %s", exc)
                else:
                    self._notify(item.frame)
            if out and out[0] is item:
                out.popleft()
            if item.sent is not None and not item.sent.done():
                item.sent.set_result(None)
            if len(out) < self.limit:
                self._space.set()
