"""The asyncio session: one WebSocket, typed events in, client events out.

:func:`connect` returns an async context manager yielding a :class:`Session`::

    async with realtime.connect(model="gpt-realtime") as session:
        session.on("response.output_audio_transcript.delta", show)
        await session.update(SessionConfig(instructions="Be brief."))
        await session.send_text("Hello!")
        async for event in session:
            ...

Inside, three tasks move data; everything stateful is delegated to the pure modules:

* the **receive task** reads frames, parses them (:func:`realtime.events.parse_server_event`),
  feeds the :class:`~realtime.conversation.Conversation`, the
  :class:`~realtime.response_state.ResponseTracker`, the tool coordinator and the barge-in
  logic, resolves acknowledgements and :meth:`Session.wait_for` futures, and queues the
  event for handlers and for ``async for``. It never runs user code, so a slow handler
  cannot stall receiving or audio.
* the **handler task** runs handlers in arrival order (sync ones called, async ones
  awaited); an exception in a handler is logged and the session carries on.
* the **writer task** sends client events in order from a bounded queue (``send``
  waits when it is full).

When the connection ends, every pending await (acknowledgements, ``wait_for``, sends
waiting for room) fails with :class:`~realtime.exceptions.ConnectionClosed` carrying the
close code and reason, unless a :class:`~realtime.reconnect.ReconnectPolicy` reconnects.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fnmatch
import inspect
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

import numpy as np
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed as WSConnectionClosed

from .connection import (
    ApiKey,
    Endpoint,
    resolve_endpoint,
)
from .conversation import Conversation
from .dispatch import Dispatcher
from .events import ClientEvent, ServerEvent, encode_client_event, parse_server_event
from .events.dialect import equivalent_types
from .exceptions import (
    AuthenticationError,
    ConfigError,
    ConnectionClosed,
    ConnectionError,
    ProtocolError,
    RequestTimeout,
    ServerError,
)
from .interruption import Interruption, OutputAudioLog, plan_interruption
from .reconnect import (
    ConnectionFailedEvent,
    ConnectionLostEvent,
    ConnectionRestoredEvent,
    ReconnectPolicy,
    SessionExpiringEvent,
    history_items,
)
from .response_state import ResponseTracker
from .tools import Tool, ToolCall, ToolCallCoordinator, ToolRegistry
from .transport import FrameConnection, close_info, open_connection

if TYPE_CHECKING:
    from audio.playback import PlaybackTracker

    from .events.config import SessionConfig

__all__ = ["EventMatch", "Session", "SessionContext", "connect"]

logger = logging.getLogger("realtime.session")


Dialect = Literal["beta", "ga"]
T = TypeVar("T")
H = TypeVar("H", bound=Callable[..., Any])

EventMatch = str | type[ServerEvent] | Callable[[ServerEvent], bool]
"""What :meth:`Session.wait_for` accepts: a type pattern (exact, glob or ``"*"``), an event
class, or a predicate."""

_DEFAULT_MAX_SIZE = 128 * 1024 * 1024
_AUDIO_DELTAS = frozenset({"response.audio.delta", "response.output_audio.delta"})
_STREAM_DELTAS = frozenset(
    {
        "response.audio.delta",
        "response.output_audio.delta",
        "response.audio_transcript.delta",
        "response.output_audio_transcript.delta",
        "response.text.delta",
        "response.output_text.delta",
        "response.function_call_arguments.delta",
    }
)
_NOTHING: list[Any] = []  # shared empty result; never mutated (specials copy before adding)
_TOOL_TYPES = frozenset(
    {
        "response.function_call_arguments.done",
        "response.output_item.added",
        "response.output_item.done",
        "response.done",
    }
)
_NORMAL_CLOSE = frozenset({1000, 1001})


class _Mailbox(Generic[T]):
    """An unbounded FIFO with one async consumer; ``close`` ends it (optionally with an error).

    ``limit`` > 0 keeps only the newest ``limit`` items (used before anyone iterates).
    """

    __slots__ = ("_closed", "_error", "_items", "_waiter")

    def __init__(self, limit: int = 0) -> None:
        self._items: deque[T] = deque(maxlen=limit or None)
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._error: BaseException | None = None

    def unbound(self) -> None:
        if self._items.maxlen is not None:
            self._items = deque(self._items)

    def put(self, item: T) -> None:
        if self._closed:
            return
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self, error: BaseException | None = None) -> None:
        self._closed = True
        self._error = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> T:
        """Next item; raises ``StopAsyncIteration`` (or the close error) when closed and empty."""
        while not self._items:
            if self._closed:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    async def wait(self) -> bool:
        """Wait until an item is available; False once closed and empty."""
        while not self._items:
            if self._closed:
                return False
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return True

    def __len__(self) -> int:
        return len(self._items)


class _Ack:
    """A pending request: resolved by a server event of ``types`` (and ``match``) or its error."""

    __slots__ = ("event_id", "future", "match", "types")

    def __init__(
        self,
        event_id: str,
        types: frozenset[str],
        match: Callable[[ServerEvent], bool] | None,
        future: asyncio.Future[ServerEvent],
    ) -> None:
        self.event_id = event_id
        self.types = types
        self.match = match
        self.future = future


class _Waiter:
    __slots__ = ("future", "test")

    def __init__(self, test: Callable[[ServerEvent], bool], future: asyncio.Future[ServerEvent]):
        self.test = test
        self.future = future


class _Outgoing:
    __slots__ = ("frame", "sent")

    def __init__(self, frame: str | None, sent: asyncio.Future[None] | None) -> None:
        self.frame = frame
        self.sent = sent


def _new_event_id() -> str:
    return "evt_" + secrets.token_hex(8)


def _new_item_id() -> str:
    return "item_" + secrets.token_hex(10)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _compile_match(match: EventMatch, any_dialect: bool) -> Callable[[ServerEvent], bool]:
    if isinstance(match, str):
        pattern = match
        if pattern == "*":
            return lambda ev: True
        glob = any(c in pattern for c in "*?[")

        def test(ev: ServerEvent) -> bool:
            types = equivalent_types(ev.type) if any_dialect else (ev.type,)
            if glob:
                return any(fnmatch.fnmatchcase(t, pattern) for t in types)
            return pattern in types

        return test
    if isinstance(match, type):
        cls = match
        return lambda ev: isinstance(ev, cls)
    if callable(match):
        return match
    raise TypeError(f"cannot match events with {match!r}")


class Session:
    """A live realtime session; obtain one from :func:`connect`.

    Attributes:
        conversation: the :class:`~realtime.conversation.Conversation` built from events.
        responses: the :class:`~realtime.response_state.ResponseTracker`.
        config: the last :class:`SessionConfig` the server accepted (or the initial one).
        server_session: the session object of the last ``session.created``/``updated``.
        dialect: ``"ga"`` or ``"beta"``.
        tools: the :class:`~realtime.tools.ToolRegistry` (``@session.tool`` adds to it).
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        config: SessionConfig | None = None,
        reconnect: ReconnectPolicy | None = None,
        tracker: PlaybackTracker | None = None,
        tools: ToolRegistry | Iterable[Callable[..., Any] | Tool] | None = None,
        auto_respond_to_tools: bool = True,
        dispatcher: Dispatcher | None = None,
        connect_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        max_size: int | None = _DEFAULT_MAX_SIZE,
        send_queue_size: int = 256,
        ack_timeout: float = 10.0,
        iterator_backlog: int = 256,
        expiry_warning: float = 60.0,
        audio_retention_ms: int = 0,
        output_audio_format: str | None = None,
        compression: str | None = None,
    ) -> None:
        if send_queue_size < 1:
            raise ConfigError("send_queue_size must be at least 1")
        self.endpoint = endpoint
        self.dialect: Dialect = endpoint.dialect
        self.config = config
        self.server_session: Any = None
        self.reconnect_policy = reconnect
        self.playback = tracker
        if output_audio_format is None:
            configured = getattr(config, "output_format", None)
            output_audio_format = configured if isinstance(configured, str) else "pcm16"
        try:
            self.conversation = Conversation(audio_retention_ms, audio_format=output_audio_format)
            self._audio_log = OutputAudioLog(output_audio_format)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.responses = ResponseTracker(dialect=self.dialect)
        if isinstance(tools, ToolRegistry):
            self.tools = tools
        else:
            self.tools = ToolRegistry()
            for func in tools or ():
                self.tools.register(func)
        self._coordinator = ToolCallCoordinator(
            tracker=self.responses, auto_respond=auto_respond_to_tools
        )
        self._special = self._specials()
        self._streaming: str | None = None
        self.last_interruption: Interruption | None = None
        self.dispatcher = dispatcher if dispatcher is not None else Dispatcher()
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_size = max_size
        self.ack_timeout = ack_timeout
        self.expiry_warning = expiry_warning
        self.compression = compression

        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self._close_error: ConnectionClosed | None = None
        self._finished = asyncio.Event()
        self._out: deque[_Outgoing] = deque()
        self._out_limit = send_queue_size
        self._out_wakeup = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._acks: dict[str, _Ack] = {}
        self._acks_by_type: dict[str, list[_Ack]] = {}
        self._waiters: list[_Waiter] = []
        self._handler_box: _Mailbox[ServerEvent | None] = _Mailbox()
        self._iter_box: _Mailbox[ServerEvent] = _Mailbox(limit=max(iterator_backlog, 1))
        self._iterating = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._handler_task: asyncio.Task[None] | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._stopper: asyncio.Task[None] | None = None
        self._connections = 0
        self.protocol_errors = 0
        self._send_listeners: list[Callable[[str], None]] = []

    # -- lifecycle -----------------------------------------------------------------------

    def __repr__(self) -> str:
        state = (
            "open" if self._connected.is_set() else "closed" if self._finished.is_set() else "idle"
        )
        return f"<Session {self.dialect} {self.endpoint.provider} {state}>"

    @property
    def is_open(self) -> bool:
        """True while connected (False during a reconnect and after closing)."""
        return self._connected.is_set() and not self._finished.is_set()

    @property
    def usage(self) -> Any:
        """Token usage totals of the session (from the response tracker)."""
        return self.responses.usage

    async def open(self) -> Session:
        """Connect, start the tasks and send the initial configuration (waits for it).

        Called by ``async with connect(...)``. Raises :class:`AuthenticationError`,
        :class:`ConnectionError`, or :class:`ServerError` when the initial configuration
        is refused.
        """
        self._ws = await self._open_ws()
        self._connections = 1
        self._connected.set()
        self._handler_task = self._spawn(self._run_handlers())
        self._writer = self._spawn(self._run_writer())
        self._reader = self._spawn(self._run_reader())
        if self.config is not None or len(self.tools):
            try:
                await self.update(self.config)
            except BaseException:
                await self.close()
                raise
        return self

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection and stop the session; pending awaits fail with ConnectionClosed.

        Handlers get a short grace period to process events already received. Calling
        it twice is harmless.
        """
        if self._finished.is_set():
            stopper = self._stopper
            if stopper is not None and stopper is not asyncio.current_task():
                with contextlib.suppress(BaseException):
                    await stopper
            return
        self._closing = True
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code, reason), 5)
        self._finish(ConnectionClosed(code, reason or "session closed"), clean=True)
        await self._stop_tasks()

    async def __aenter__(self) -> Session:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def wait_closed(self) -> None:
        """Return when the session has ended (closed by you, or the connection gave up)."""
        await self._finished.wait()

    def _spawn(self, coro: Awaitable[T]) -> asyncio.Task[T]:
        task: asyncio.Task[T] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _open_ws(self) -> FrameConnection:
        return await open_connection(
            self.endpoint,
            connect_timeout=self.connect_timeout,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            max_size=self.max_size,
            compression=self.compression,
        )

    async def _stop_tasks(self) -> None:
        handler = self._handler_task
        current = asyncio.current_task()
        if handler is not None and not handler.done():
            self._handler_box.put(None)
            if handler is not current:  # close() called from a handler cannot wait for itself
                with contextlib.suppress(asyncio.TimeoutError, Exception):
                    await asyncio.wait_for(asyncio.shield(handler), 1.0)
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        for task in list(self._tasks):
            if task is not current:
                with contextlib.suppress(BaseException):
                    await task

    def _finish(self, error: ConnectionClosed, *, clean: bool) -> None:
        """Mark the session ended and fail everything pending with ``error``."""
        if self._finished.is_set():
            return
        self._close_error = error
        self._connected.clear()
        self._finished.set()
        if self._expiry is not None:
            self._expiry.cancel()
        self._fail_pending(error)
        self._waiters_fail(error)
        self._iter_box.close(None if clean else error)
        for item in self._out:
            if item.sent is not None and not item.sent.done():
                item.sent.set_exception(error)
                item.sent.exception()
        self._out.clear()
        self._space.set()
        self._out_wakeup.set()

    def _fail_pending(self, error: BaseException) -> None:
        for ack in list(self._acks.values()):
            if not ack.future.done():
                ack.future.set_exception(error)
        self._acks.clear()
        self._acks_by_type.clear()

    def _waiters_fail(self, error: BaseException) -> None:
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_exception(error)
        self._waiters.clear()

    # -- receiving -----------------------------------------------------------------------

    async def _run_reader(self) -> None:
        while True:
            ws = self._ws
            assert ws is not None
            if isinstance(ws, FrameConnection):
                ws.attach(self._receive)
                await ws.wait_closed()
            else:
                with contextlib.suppress(WSConnectionClosed):
                    async for frame in ws:
                        self._receive(frame)
            code, reason = close_info(ws)
            if self._closing:
                return
            if not await self._connection_lost(code, reason):
                return

    def _receive(self, frame: str | bytes) -> None:
        """Handle one message (the hot path: keep it lean). Never raises."""
        try:
            event = parse_server_event(frame, self.dialect)
        except ProtocolError as exc:
            self.protocol_errors += 1
            logger.warning("ignoring a frame that could not be parsed: %s", exc)
            return
        except Exception:
            self.protocol_errors += 1
            logger.exception("ignoring a frame that could not be parsed")
            return
        etype = event.type
        try:
            self.conversation.apply(event)
            if etype in _STREAM_DELTAS:
                # A delta of the response the tracker already has in progress, with no
                # other event in between, cannot change the tracker: skip the call.
                rid = event.response_id  # type: ignore[attr-defined]
                if rid == self._streaming:
                    out = _NOTHING
                else:
                    out = self.responses.apply(event)
                    state = self.responses.get(rid) if rid else None
                    self._streaming = rid if state and state.status == "in_progress" else None
            else:
                self._streaming = None
                out = self.responses.apply(event)
            special = self._special.get(etype)
            if special is not None:
                out = special(event, out)
            if out:
                for client_event in out:
                    self._send_nowait(client_event)
            if self._acks_by_type:
                acks = self._acks_by_type.get(etype)
                if acks:
                    for ack in acks:
                        if ack.match is None or ack.match(event):
                            self._resolve(ack, event)
                            break
        except Exception:
            logger.exception("internal error while processing %s", etype)
        try:
            self._deliver(event)
        except Exception:
            logger.exception("internal error while delivering %s", etype)

    def _specials(self) -> dict[str, Callable[[Any, list[ClientEvent]], list[ClientEvent]]]:
        """Per event type, the extra processing some types need (looked up once per event)."""
        table: dict[str, Callable[[Any, list[ClientEvent]], list[ClientEvent]]] = {}
        for etype in _TOOL_TYPES:
            table[etype] = self._on_tool_event
        for etype in _AUDIO_DELTAS:
            table[etype] = self._on_audio_delta
        table["input_audio_buffer.speech_started"] = self._on_speech_started
        table["error"] = self._on_error_event
        table["session.created"] = self._on_session_event
        table["session.updated"] = self._on_session_event
        return table

    def _on_tool_event(self, event: Any, out: list[ClientEvent]) -> list[ClientEvent]:
        out = out + self._coordinator.apply(event)
        for call in self._coordinator.take_calls():
            self._spawn(self._run_tool(call))
        return out

    def _on_audio_delta(self, event: Any, out: list[ClientEvent]) -> list[ClientEvent]:
        self._audio_log.apply(event, time.monotonic())
        return out

    def _on_speech_started(self, event: Any, out: list[ClientEvent]) -> list[ClientEvent]:
        return out + self._barge_in()

    def _on_error_event(self, event: Any, out: list[ClientEvent]) -> list[ClientEvent]:
        self._on_error(event)
        return out

    def _on_session_event(self, event: Any, out: list[ClientEvent]) -> list[ClientEvent]:
        self.server_session = _get(event, "session")
        if event.type == "session.created":
            self._schedule_expiry(_get(self.server_session, "expires_at"))
        return out

    def _server_cancels(self) -> bool:
        """Whether the server cancels a response itself on speech (``interrupt_response``)."""
        session = self.server_session
        if self.dialect == "ga":
            turn = _get(_get(_get(session, "audio"), "input"), "turn_detection")
        else:
            turn = _get(session, "turn_detection")
        if turn is None:
            # Unknown session: speech_started implies a server VAD, which interrupts by
            # default. A known session without turn detection never cancels by itself.
            return session is None
        flag = _get(turn, "interrupt_response")
        return True if flag is None else bool(flag)

    def _barge_in(self) -> list[ClientEvent]:
        """The user started speaking: stop playback, truncate what was unheard, maybe cancel."""
        playing = self._audio_log.current
        active = self.responses.active_response
        if playing is None and active is None:
            return []
        heard = None
        if self.playback is not None:
            try:
                heard = self.playback.interrupt()
            except Exception:
                logger.exception("playback tracker interrupt() raised")
        decision = plan_interruption(
            playing,
            heard=heard,
            now=None if self.playback is not None else time.monotonic(),
            server_cancels=self._server_cancels(),
            response_active=active is not None,
            response_id=active.id if active is not None else None,
        )
        self.last_interruption = decision
        if decision.item_id is not None:
            self._audio_log.interrupted(decision.item_id)
        out = [e for e in decision.events if e.type != "response.cancel"]
        if decision.cancel:
            out.extend(self.responses.request_cancel())
        return out

    def _deliver(self, event: ServerEvent) -> None:
        if self._waiters:
            self._check_waiters(event)
        if self.dispatcher.has_handlers(event.type):
            self._handler_box.put(event)
        self._iter_box.put(event)

    def _check_waiters(self, event: ServerEvent) -> None:
        for waiter in list(self._waiters):
            if waiter.future.done():
                self._waiters.remove(waiter)
                continue
            try:
                hit = waiter.test(event)
            except Exception:
                logger.exception("wait_for predicate raised")
                hit = False
            if hit:
                waiter.future.set_result(event)
                self._waiters.remove(waiter)

    def _resolve(self, ack: _Ack, event: ServerEvent) -> None:
        self._drop_ack(ack)
        if not ack.future.done():
            ack.future.set_result(event)

    def _drop_ack(self, ack: _Ack) -> None:
        self._acks.pop(ack.event_id, None)
        for etype in ack.types:
            waiting = self._acks_by_type.get(etype)
            if waiting and ack in waiting:
                waiting.remove(ack)
                if not waiting:
                    del self._acks_by_type[etype]

    def _on_error(self, event: ServerEvent) -> None:
        error = _get(event, "error")
        event_id = _get(error, "event_id")
        ack = self._acks.get(event_id) if event_id else None
        exc = ServerError(
            str(_get(error, "message") or "server error"),
            type=_get(error, "type"),
            code=_get(error, "code"),
            param=_get(error, "param"),
            event_id=event_id,
            event=event,
        )
        if ack is not None:
            self._drop_ack(ack)
            if not ack.future.done():
                ack.future.set_exception(exc)
            return
        if self.responses.is_expected_error(event):
            logger.debug("expected error ignored: %s", exc)
            return
        logger.warning("server error: %s", exc)

    def _schedule_expiry(self, expires_at: Any) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if not isinstance(expires_at, (int, float)) or expires_at <= 0:
            return
        delay = expires_at - time.time() - self.expiry_warning
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_later(max(delay, 0.0), self._warn_expiry, float(expires_at))

    def _warn_expiry(self, expires_at: float) -> None:
        self._expiry = None
        left = max(expires_at - time.time(), 0.0)
        self._deliver(SessionExpiringEvent(expires_at=expires_at, seconds_left=left))

    async def _run_handlers(self) -> None:
        box = self._handler_box
        resolve = self.dispatcher.handlers_for
        while True:
            if not box._items:  # drain without a coroutine call per event
                if not await box.wait():
                    return
                continue
            event = box._items.popleft()
            if event is None:  # the stop marker
                return
            for handler in resolve(event.type):
                try:
                    result = handler(event)
                    if result is not None and inspect.isawaitable(result):
                        await result
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception(
                        "handler %s for %s raised",
                        getattr(handler, "__qualname__", handler),
                        event.type,
                    )

    # -- reconnecting --------------------------------------------------------------------

    async def _connection_lost(self, code: int | None, reason: str) -> bool:
        """Handle an unexpected close; True when a new connection is up."""
        self._connected.clear()
        error = ConnectionClosed(code, reason)
        self._fail_pending(error)
        policy = self.reconnect_policy
        will = policy is not None and policy.is_recoverable(code)
        logger.warning("connection lost (code %s)%s", code, ", reconnecting" if will else "")
        self._deliver(ConnectionLostEvent(code=code, reason=reason, will_reconnect=will))
        if not will or policy is None:
            if policy is not None:
                self._deliver(ConnectionFailedEvent(code=code, reason=reason, attempts=0))
            self._finish(error, clean=code in _NORMAL_CLOSE)
            self._stopper = self._spawn(self._stop_tasks())
            return False
        lost_at = time.monotonic()
        attempts = 0
        for delay in policy.delays():
            attempts += 1
            await asyncio.sleep(delay)
            if self._closing:
                return False
            try:
                ws = await self._open_ws()
            except (ConnectionError, ConfigError) as exc:
                logger.warning("reconnect attempt %d failed: %s", attempts, exc)
                if isinstance(exc, AuthenticationError):
                    break
                continue
            self._ws = ws
            self._connections += 1
            self._fresh_tracker()
            await self._restore(ws, policy)
            self._connected.set()
            self._deliver(
                ConnectionRestoredEvent(attempts=attempts, downtime=time.monotonic() - lost_at)
            )
            logger.info("reconnected after %d attempt(s)", attempts)
            return True
        self._deliver(ConnectionFailedEvent(code=code, reason=reason, attempts=attempts))
        self._finish(error, clean=False)
        self._stopper = self._spawn(self._stop_tasks())
        return False

    def _fresh_tracker(self) -> None:
        """A new connection has no active response: start response bookkeeping afresh.

        Usage totals carry over; requests queued behind the lost response are re-queued.
        """
        old = self.responses
        self.responses = ResponseTracker(dialect=self.dialect)
        self._streaming = None
        self.responses.usage = old.usage
        self._coordinator.tracker = self.responses
        self._audio_log.reset()
        for event in old.clear_queue():
            for out in self.responses.request_create(event):
                self._out.append(_Outgoing(self._encode(out), None))

    async def _restore(self, ws: ClientConnection, policy: ReconnectPolicy) -> None:
        """Re-send the configuration (and history) on a new connection, before queued sends."""
        frames: list[str] = []
        if self.config is not None or len(self.tools):
            frames.append(self._encode(self._session_update_event(self.config)))
        if policy.reinject_history:
            for item in history_items(self.conversation.items, self.dialect):
                frames.append(self._encode({"type": "conversation.item.create", "item": item}))
        with contextlib.suppress(WSConnectionClosed):
            for frame in frames:
                await ws.send(frame)

    # -- sending -------------------------------------------------------------------------

    def _encode(self, event: ClientEvent | Mapping[str, Any]) -> str:
        return self._encode_with_id(event)[0]

    def _encode_with_id(self, event: ClientEvent | Mapping[str, Any]) -> tuple[str, str]:
        if isinstance(event, ClientEvent):
            if event.event_id is None:
                event.event_id = _new_event_id()
            return encode_client_event(event), event.event_id
        if isinstance(event, Mapping):
            data = dict(event)
            if not isinstance(data.get("type"), str):
                raise ConfigError("a client event needs a string 'type'")
            event_id = data.setdefault("event_id", _new_event_id())
            return json.dumps(data, separators=(",", ":"), ensure_ascii=False), str(event_id)
        raise TypeError(f"cannot send {type(event).__name__}: pass a ClientEvent or a dict")

    def _check_open(self) -> None:
        if self._finished.is_set():
            assert self._close_error is not None
            raise self._close_error

    async def _run_writer(self) -> None:
        out = self._out
        while True:
            if not out:
                self._out_wakeup.clear()
                await self._out_wakeup.wait()
                continue
            if not self._connected.is_set():
                await self._connected.wait()
            ws = self._ws
            item = out[0]
            if item.frame is None:  # a flush() marker
                out.popleft()
                if item.sent is not None and not item.sent.done():
                    item.sent.set_result(None)
                continue
            try:
                assert ws is not None
                await ws.send(item.frame)
            except WSConnectionClosed:
                # The reader notices the loss; the frame goes out on the next connection.
                await asyncio.sleep(0)
                if self._ws is ws:
                    self._connected.clear()
                    await self._connected.wait()
                continue
            except Exception:
                logger.exception("could not send a client frame; dropping it")
                if out and out[0] is item:
                    out.popleft()
                if item.sent is not None and not item.sent.done():
                    item.sent.set_result(None)
                continue
            if out and out[0] is item:
                out.popleft()
            for listener in self._send_listeners:
                try:
                    listener(item.frame)
                except Exception:
                    logger.exception("send listener failed")
            if item.sent is not None and not item.sent.done():
                item.sent.set_result(None)
            if len(out) < self._out_limit:
                self._space.set()

    def add_send_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(frame)`` with every client frame once it has been sent.

        For recording (see :class:`realtime.recording.Recorder`); it runs in the writer
        task, so it must be quick. Exceptions it raises are logged and ignored.
        """
        self._send_listeners.append(listener)

    def remove_send_listener(self, listener: Callable[[str], None]) -> None:
        """Stop calling a listener added with :meth:`add_send_listener`."""
        self._send_listeners.remove(listener)

    def _send_nowait(self, event: ClientEvent | Mapping[str, Any]) -> None:
        """Queue a client event from inside the session (no back-pressure, never blocks)."""
        if self._finished.is_set():
            return
        self._out.append(_Outgoing(self._encode(event), None))
        self._out_wakeup.set()

    async def _send_frame(self, frame: str) -> None:
        self._check_open()
        while len(self._out) >= self._out_limit:
            self._space.clear()
            await self._space.wait()
            self._check_open()
        self._out.append(_Outgoing(frame, None))
        self._out_wakeup.set()

    async def send(self, event: ClientEvent | Mapping[str, Any]) -> str:
        """Queue any client event (a model or a dict with ``type``); returns its ``event_id``.

        Waits while the send queue is full. Raises :class:`ConnectionClosed` when the
        session has ended, :class:`ConfigError`/``TypeError`` for an event it cannot encode.
        """
        frame, event_id = self._encode_with_id(event)
        await self._send_frame(frame)
        return event_id

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every client event queued so far has been handed to the socket.

        Raises :class:`RequestTimeout` after ``timeout`` seconds and
        :class:`ConnectionClosed` when the session ends first.
        """
        self._check_open()
        if not self._out:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._out.append(_Outgoing(None, fut))
        self._out_wakeup.set()
        try:
            await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise RequestTimeout(f"the send queue did not drain within {timeout} s") from None

    async def _request(
        self,
        event: dict[str, Any],
        types: Iterable[str],
        *,
        match: Callable[[ServerEvent], bool] | None = None,
        timeout: float | None = None,
        then: Callable[[], Awaitable[None]] | None = None,
    ) -> ServerEvent:
        """Queue ``event``, run ``then`` (more sends queued right behind it), await the ack."""
        self._check_open()
        event_id = event.setdefault("event_id", _new_event_id())
        loop = asyncio.get_running_loop()
        ack = _Ack(event_id, frozenset(types), match, loop.create_future())
        self._acks[event_id] = ack
        for etype in ack.types:
            self._acks_by_type.setdefault(etype, []).append(ack)
        limit = self.ack_timeout if timeout is None else timeout
        try:
            await self._send_frame(self._encode(event))
            if then is not None:
                await then()
            return await asyncio.wait_for(ack.future, limit)
        except asyncio.TimeoutError:
            raise RequestTimeout(
                f"no {' or '.join(sorted(ack.types))} for {event['type']} within {limit:g} s"
            ) from None
        finally:
            self._drop_ack(ack)
            if not ack.future.done():
                ack.future.cancel()

    # -- client events -------------------------------------------------------------------

    def _session_update_event(self, config: SessionConfig | None) -> dict[str, Any]:
        wire: dict[str, Any] = config.to_wire(self.dialect) if config is not None else {}
        if self.dialect == "ga":
            wire.setdefault("type", "realtime")
        if len(self.tools) and wire.get("type", "realtime") == "realtime":
            tools = list(wire.get("tools") or [])
            names = {_get(t, "name") for t in tools}
            tools.extend(d for d in self.tools.definitions() if d["name"] not in names)
            wire["tools"] = tools
            wire.setdefault("tool_choice", "auto")
        return {"type": "session.update", "session": wire}

    async def update(
        self, config: SessionConfig | None = None, *, timeout: float | None = None
    ) -> ServerEvent:
        """Send ``session.update`` (with the registered tools) and wait for ``session.updated``.

        Returns the ``session.updated`` event; on success :attr:`config` becomes ``config``.
        Raises :class:`ServerError` when the server answers with an error naming this
        request, :class:`RequestTimeout`, :class:`ConnectionClosed`, or
        :class:`ConfigError` when the config cannot be expressed in the dialect.
        """
        event = self._session_update_event(config if config is not None else self.config)
        reply = await self._request(event, ("session.updated",), timeout=timeout)
        if config is not None:
            self.config = config
        return reply

    async def update_transcription_session(
        self, session: Mapping[str, Any] | SessionConfig, *, timeout: float | None = None
    ) -> ServerEvent:
        """Configure a transcription-only session and wait for the acknowledgement.

        ``session`` is the wire object: beta sends ``transcription_session.update``
        (acknowledged by ``transcription_session.updated``); GA sends ``session.update``
        with ``type: "transcription"`` (acknowledged by ``session.updated``). A
        :class:`SessionConfig` is encoded for the dialect first.
        """
        if not isinstance(session, Mapping):
            session = session.to_wire(self.dialect)
        if self.dialect == "beta":
            event = {"type": "transcription_session.update", "session": dict(session)}
            return await self._request(event, ("transcription_session.updated",), timeout=timeout)
        body = {"type": "transcription", **dict(session)}
        return await self._request(
            {"type": "session.update", "session": body}, ("session.updated",), timeout=timeout
        )

    async def append_audio(
        self, audio: bytes | bytearray | memoryview | np.ndarray[Any, Any]
    ) -> None:
        """Send ``input_audio_buffer.append`` with PCM16 audio (bytes or an int16 array).

        No acknowledgement exists for appends; this returns once the frame is queued.
        Raises :class:`ConfigError` for an array that is not int16 mono.
        """
        if isinstance(audio, np.ndarray):
            if audio.dtype != np.int16 or audio.ndim != 1:
                raise ConfigError(
                    "append_audio takes a 1-D int16 array, "
                    f"got {audio.dtype} with shape {audio.shape}"
                )
            data = audio.astype("<i2", copy=False).tobytes()
        else:
            data = bytes(audio)
        if not data:
            return
        encoded = base64.b64encode(data).decode("ascii")
        frame = (
            '{"type":"input_audio_buffer.append","event_id":"'
            + _new_event_id()
            + '","audio":"'
            + encoded
            + '"}'
        )
        await self._send_frame(frame)

    async def commit_audio(self, *, timeout: float | None = None) -> ServerEvent:
        """Send ``input_audio_buffer.commit``; waits for ``input_audio_buffer.committed``."""
        return await self._request(
            {"type": "input_audio_buffer.commit"},
            ("input_audio_buffer.committed",),
            timeout=timeout,
        )

    async def clear_audio(self, *, timeout: float | None = None) -> ServerEvent:
        """Send ``input_audio_buffer.clear``; waits for ``input_audio_buffer.cleared``."""
        return await self._request(
            {"type": "input_audio_buffer.clear"}, ("input_audio_buffer.cleared",), timeout=timeout
        )

    async def clear_output_audio(self) -> None:
        """Send ``output_audio_buffer.clear`` (GA; WebRTC/SIP servers stop playing audio)."""
        if self.dialect != "ga":
            raise ConfigError("output_audio_buffer.clear exists only in the GA dialect")
        await self.send({"type": "output_audio_buffer.clear"})

    async def create_item(
        self,
        item: Mapping[str, Any] | Any,
        *,
        previous_item_id: str | None = None,
        timeout: float | None = None,
        then: Callable[[], Awaitable[None]] | None = None,
    ) -> ServerEvent:
        """Send ``conversation.item.create``; waits for the item's ``created``/``added`` event.

        ``item`` is a wire item (dict or model). An ``id`` is generated when absent so
        the acknowledgement can be matched to this item. ``then`` is awaited right after
        the item is queued, before waiting (to queue more events behind it).
        """
        data = item.model_dump(exclude_none=True) if hasattr(item, "model_dump") else dict(item)
        data.setdefault("id", _new_item_id())
        item_id = data["id"]
        event: dict[str, Any] = {"type": "conversation.item.create", "item": data}
        if previous_item_id is not None:
            event["previous_item_id"] = previous_item_id
        return await self._request(
            event,
            ("conversation.item.created", "conversation.item.added"),
            match=lambda ev: _get(_get(ev, "item"), "id") == item_id,
            timeout=timeout,
            then=then,
        )

    async def send_text(
        self, text: str, *, role: str = "user", respond: bool = True, timeout: float | None = None
    ) -> ServerEvent:
        """Add a text message (and, by default, ask for a response); returns the item ack.

        ``response.create`` is queued right behind the item (no round trip in between).
        """
        item = {"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]}
        return await self.create_item(
            item, timeout=timeout, then=self.create_response if respond else None
        )

    async def truncate(
        self, item_id: str, content_index: int, audio_end_ms: int, *, timeout: float | None = None
    ) -> ServerEvent:
        """Send ``conversation.item.truncate``; waits for ``conversation.item.truncated``."""
        event = {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": content_index,
            "audio_end_ms": int(audio_end_ms),
        }
        return await self._request(
            event,
            ("conversation.item.truncated",),
            match=lambda ev: _get(ev, "item_id") == item_id,
            timeout=timeout,
        )

    async def delete_item(self, item_id: str, *, timeout: float | None = None) -> ServerEvent:
        """Send ``conversation.item.delete``; waits for ``conversation.item.deleted``."""
        return await self._request(
            {"type": "conversation.item.delete", "item_id": item_id},
            ("conversation.item.deleted",),
            match=lambda ev: _get(ev, "item_id") == item_id,
            timeout=timeout,
        )

    async def retrieve_item(self, item_id: str, *, timeout: float | None = None) -> ServerEvent:
        """Send ``conversation.item.retrieve``; waits for ``conversation.item.retrieved``."""
        return await self._request(
            {"type": "conversation.item.retrieve", "item_id": item_id},
            ("conversation.item.retrieved",),
            match=lambda ev: _get(_get(ev, "item"), "id") == item_id,
            timeout=timeout,
        )

    async def create_response(self, **response: Any) -> None:
        """Ask for a response (``response.create``; keyword arguments become ``response``).

        While another response is active, the request is queued by the response tracker
        and sent when that one is done (instead of earning an error).
        """
        self._check_open()
        for event in self.responses.request_create(self.responses.new_create(**response)):
            await self.send(event)

    async def cancel_response(self, response_id: str | None = None) -> bool:
        """Cancel the active response; returns False when there was none (nothing sent)."""
        self._check_open()
        events = self.responses.request_cancel(response_id)
        for event in events:
            await self.send(event)
        return bool(events)

    # -- dispatch ------------------------------------------------------------------------

    @overload
    def on(
        self, pattern: str, handler: None = None, *, any_dialect: bool = False
    ) -> Callable[[H], H]: ...

    @overload
    def on(self, pattern: str, handler: H, *, any_dialect: bool = False) -> H: ...

    def on(
        self, pattern: str, handler: H | None = None, *, any_dialect: bool = False
    ) -> H | Callable[[H], H]:
        """Subscribe a handler (sync or async) to events matching ``pattern``; decorator too.

        Patterns: an exact type, a glob (``"conversation.item.*"``) or ``"*"`` (everything,
        unknown types and the synthetic ``connection.*`` events included).
        ``any_dialect=True`` also matches the other dialect's name for the same event.
        """
        return self.dispatcher.on(pattern, handler, any_dialect=any_dialect)

    @overload
    def once(
        self, pattern: str, handler: None = None, *, any_dialect: bool = False
    ) -> Callable[[H], H]: ...

    @overload
    def once(self, pattern: str, handler: H, *, any_dialect: bool = False) -> H: ...

    def once(
        self, pattern: str, handler: H | None = None, *, any_dialect: bool = False
    ) -> H | Callable[[H], H]:
        """Like :meth:`on`, for the first matching event only."""
        return self.dispatcher.once(pattern, handler, any_dialect=any_dialect)

    def off(self, pattern: str, handler: Callable[..., Any] | None = None) -> int:
        """Remove subscriptions of ``pattern`` (only ``handler``'s if given); returns the count."""
        return self.dispatcher.off(pattern, handler)

    async def wait_for(
        self, match: EventMatch, timeout: float | None = None, *, any_dialect: bool = False
    ) -> ServerEvent:
        """Wait for the next event matching ``match`` (type pattern, event class or predicate).

        Raises :class:`RequestTimeout` after ``timeout`` seconds and
        :class:`ConnectionClosed` when the session ends first.
        """
        self._check_open()
        waiter = _Waiter(
            _compile_match(match, any_dialect), asyncio.get_running_loop().create_future()
        )
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter.future, timeout)
        except asyncio.TimeoutError:
            raise RequestTimeout(f"no event matching {match!r} within {timeout:g} s") from None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def __aiter__(self) -> AsyncIterator[ServerEvent]:
        """Iterate over received events (the same objects handlers get).

        Events are buffered from the start (the newest ``iterator_backlog`` of them until
        iteration begins, all of them afterwards). Iteration ends when the session is
        closed normally and raises :class:`ConnectionClosed` after an abnormal end.
        """
        if not self._iterating:
            self._iterating = True
            self._iter_box.unbound()
        return self

    async def __anext__(self) -> ServerEvent:
        return await self._iter_box.get()

    # -- tools ---------------------------------------------------------------------------

    @overload
    def tool(self, func: Callable[..., Any], /) -> Tool: ...

    @overload
    def tool(
        self,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> Callable[[Callable[..., Any]], Tool]: ...

    def tool(
        self,
        func: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> Tool | Callable[[Callable[..., Any]], Tool]:
        """Register a function tool (``@session.tool`` or ``@session.tool(timeout=5)``).

        Tools go out with the next :meth:`update` (and the initial configuration).
        """
        if func is None:
            return self.tools.tool(name=name, description=description, timeout=timeout)
        return self.tools.tool(func)

    def register_tool(
        self,
        func: Callable[..., Any] | Tool,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> Tool:
        """Register a function (or :class:`Tool`); it goes out with the next :meth:`update`."""
        return self.tools.register(func, name=name, description=description, timeout=timeout)

    async def _run_tool(self, call: ToolCall) -> None:
        result = await self.tools.execute(call)
        if not result.ok:
            logger.warning("tool call %s failed: %s", call.name, result.error)
        for event in self._coordinator.complete(result):
            self._send_nowait(event)


class SessionContext:
    """What :func:`connect` returns: ``async with`` it (or ``await`` it) to get a Session.

    ``.session`` is the (not yet connected) Session, for subscribing handlers and
    registering tools before connecting::

        ctx = realtime.connect(url=url)
        ctx.session.on("session.created", on_created)
        async with ctx as session: ...
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    @property
    def session(self) -> Session:
        """The session this context opens (usable before connecting)."""
        return self._session

    async def __aenter__(self) -> Session:
        return await self._session.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._session.close()

    def __await__(self) -> Any:
        return self._session.open().__await__()


def connect(
    model: str | None = "gpt-realtime",
    *,
    url: str | None = None,
    api_key: ApiKey | None = None,
    dialect: Dialect = "ga",
    base_url: str | None = None,
    azure_endpoint: str | None = None,
    azure_deployment: str | None = None,
    api_version: str | None = None,
    azure_ad_token: ApiKey | None = None,
    extra_headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    config: SessionConfig | None = None,
    reconnect: ReconnectPolicy | None = None,
    tracker: PlaybackTracker | None = None,
    tools: ToolRegistry | Iterable[Callable[..., Any] | Tool] | None = None,
    auto_respond_to_tools: bool = True,
    dispatcher: Dispatcher | None = None,
    connect_timeout: float = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    max_size: int | None = _DEFAULT_MAX_SIZE,
    send_queue_size: int = 256,
    ack_timeout: float = 10.0,
    iterator_backlog: int = 256,
    expiry_warning: float = 60.0,
    audio_retention_ms: int = 0,
    output_audio_format: str | None = None,
    compression: str | None = None,
) -> SessionContext:
    """Open a realtime session: ``async with connect(...) as session`` (or ``await connect(...)``).

    Where to connect and the key are resolved by
    :func:`realtime.connection.resolve_endpoint` (``url``, Azure options, environment).
    ``config`` is sent (and acknowledged) right after connecting; ``tools`` and tools
    registered later with ``@session.tool`` go out with it. ``tracker`` (a playback
    tracker such as a speaker) enables barge-in truncation. ``dispatcher`` shares
    handler subscriptions made beforehand (or use ``connect(...).session.on(...)``).
    Raises :class:`ConfigError` at once for invalid options (a missing key for a remote
    server included).
    """
    endpoint = resolve_endpoint(
        model,
        url=url,
        base_url=base_url,
        api_key=api_key,
        dialect=dialect,
        azure_endpoint=azure_endpoint,
        azure_deployment=azure_deployment,
        api_version=api_version,
        azure_ad_token=azure_ad_token,
        extra_headers=extra_headers,
        query=query,
    )
    session = Session(
        endpoint,
        config=config,
        reconnect=reconnect,
        tracker=tracker,
        tools=tools,
        auto_respond_to_tools=auto_respond_to_tools,
        dispatcher=dispatcher,
        connect_timeout=connect_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        max_size=max_size,
        send_queue_size=send_queue_size,
        ack_timeout=ack_timeout,
        iterator_backlog=iterator_backlog,
        expiry_warning=expiry_warning,
        audio_retention_ms=audio_retention_ms,
        output_audio_format=output_audio_format,
        compression=compression,
    )
    return SessionContext(session)
