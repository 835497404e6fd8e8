"""The asyncio session: a thin shell driving :class:`realtime.protocol.ClientProtocol`.

:func:`connect` returns an async context manager yielding a :class:`Session`::

    async with realtime.connect(model="gpt-realtime") as session:
        session.on("response.output_audio_transcript.delta", show)
        await session.update(SessionConfig(instructions="Be brief."))
        reply = await session.send_text("Hello!", wait=True)   # the finished response.done

The protocol object decides everything (conversation, responses, tools,
acknowledgements, barge-in, reconnect restore); the session moves frames, keeps one
future per pending acknowledgement, runs the expiry timer, tools and the handler lanes
(:class:`~realtime.dispatch.HandlerRunner`). Its reader task parses frames, feeds the
protocol and delivers events, and stops reading while handlers or an ``async for`` lag
(back-pressure); the :class:`~realtime.outbox.Outbox` writer sends client events in order.

**The transport seam**: frames travel through a :class:`~realtime.transport.FrameTransport`
opened by ``transport_factory`` (a :class:`~realtime.connection.SessionOptions` field;
default :func:`open_websocket`): a WebRTC data channel plugs in there.

When the connection ends, pending awaits fail with ``ConnectionClosed``
(``AuthenticationClosed`` for close code 4001, both in :mod:`realtime.exceptions`)
unless a :class:`~realtime.reconnect.ReconnectPolicy` reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from .commands import SessionCommands
from .connection import ApiKey, Endpoint, SessionOptions, TransportFactory, resolve_endpoint
from .conversation import Conversation
from .dispatch import Dispatcher, EventQueue, HandlerRunner
from .events import (
    ClientEvent,
    InvalidServerEvent,
    ServerEvent,
    parse_server_event,
)
from .exceptions import (
    AuthenticationError,
    ConfigError,
    ConnectionClosed,
    ConnectionError,
    ProtocolError,
    RequestTimeout,
)
from .interruption import Interruption
from .outbox import Outbox, encode
from .protocol import ClientProtocol, Request, close_error
from .reconnect import (
    ConnectionFailedEvent,
    ConnectionLostEvent,
    ConnectionRestoredEvent,
    SessionExpiringEvent,
)
from .response_state import ResponseTracker
from .tools import ToolCall, ToolRegistry
from .transport import FrameTransport, open_connection
from .waiting import EventMatch, Expectation, Waiters

if TYPE_CHECKING:
    from audio.playback import HeardPosition, PlaybackTracker

    from .events.config import SessionConfig

__all__ = [
    "EventMatch",
    "Expectation",
    "Session",
    "SessionContext",
    "SessionOptions",
    "TransportFactory",
    "connect",
    "open_websocket",
]

logger = logging.getLogger("realtime.session")

Dialect = Literal["beta", "ga"]

_NORMAL_CLOSE = frozenset({1000, 1001})


async def open_websocket(endpoint: Endpoint, options: SessionOptions) -> FrameTransport:
    """The default :data:`~realtime.connection.TransportFactory`: a WebSocket."""
    return await open_connection(
        endpoint,
        connect_timeout=options.connect_timeout,
        ping_interval=options.ping_interval,
        ping_timeout=options.ping_timeout,
        max_size=options.max_size,
        max_buffer=options.max_buffer,
        compression=options.compression,
    )


class Session(SessionCommands):
    """A live realtime session; obtain one from :func:`connect`.

    ``Session(endpoint, options, **changes)``: ``options`` is a
    :class:`~realtime.connection.SessionOptions` (defaults when omitted) and ``changes``
    override single options. :attr:`protocol` holds the state; the properties below
    read it.
    """

    def __init__(
        self, endpoint: Endpoint, options: SessionOptions | None = None, /, **changes: Any
    ) -> None:
        opts = options if options is not None else SessionOptions()
        if changes:
            opts = opts.replace(**changes)
        self.options = opts
        self.endpoint = endpoint
        self.dialect: Dialect = endpoint.dialect
        self.protocol = ClientProtocol(
            dialect=endpoint.dialect,
            config=opts.config,
            tools=opts.tools,
            auto_respond_to_tools=opts.auto_respond_to_tools,
            audio_retention_ms=opts.audio_retention_ms,
            output_audio_format=opts.output_audio_format,
            has_tracker=opts.tracker is not None,
        )
        self.reconnect_policy = opts.reconnect
        self.playback = opts.tracker
        self.dispatcher = opts.dispatcher if opts.dispatcher is not None else Dispatcher()
        self.ack_timeout = opts.ack_timeout
        self.protocol_errors = 0
        self._transport: FrameTransport | None = None
        self._outbox = Outbox(opts.send_queue_size)
        self._connected = self._outbox.connected
        self._closing = False
        self._close_error: ConnectionClosed | ProtocolError | None = None
        self._finished = asyncio.Event()
        self._futures: dict[int, asyncio.Future[ServerEvent]] = {}
        self._runner = HandlerRunner(self.dispatcher)
        self._waiters = Waiters(self._runner.awaiting_server)
        self._events: EventQueue[ServerEvent] = EventQueue(
            max(opts.iterator_backlog, 1), overflow="drop_oldest"
        )
        self._iterators = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._receive_listeners: list[Callable[[ServerEvent], None]] = []
        self._expiry: asyncio.TimerHandle | None = None

    # -- state (held by the protocol) --------------------------------------------------

    @property
    def config(self) -> SessionConfig | None:
        """The last configuration the server accepted (or the initial one)."""
        return self.protocol.config

    @config.setter
    def config(self, value: SessionConfig | None) -> None:
        self.protocol.config = value

    @property
    def server_session(self) -> Any:
        """The session object of the last ``session.created``/``updated``."""
        return self.protocol.server_session

    @property
    def conversation(self) -> Conversation:
        """The :class:`~realtime.conversation.Conversation` built from events."""
        return self.protocol.conversation

    @property
    def responses(self) -> ResponseTracker:
        """The :class:`~realtime.response_state.ResponseTracker` of this connection."""
        return self.protocol.responses

    @property
    def tools(self) -> ToolRegistry:
        """The :class:`~realtime.tools.ToolRegistry` (``@session.tool`` adds to it)."""
        return self.protocol.tools

    @property
    def last_interruption(self) -> Interruption | None:
        """The last barge-in decision (server-detected speech or :meth:`interrupt`)."""
        return self.protocol.last_interruption

    @property
    def usage(self) -> Any:
        """Token usage totals of the session."""
        return self.protocol.responses.usage

    @property
    def is_open(self) -> bool:
        """True while connected (False during a reconnect and after closing)."""
        return self._connected.is_set() and not self._finished.is_set()

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed" if self._finished.is_set() else "idle"
        return f"<Session {self.dialect} {self.endpoint.provider} {state}>"

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self) -> Session:
        """Connect, start the tasks and send the initial configuration (waits for it).

        Raises :class:`AuthenticationError`, :class:`ConnectionError`, or
        :class:`ServerError` when the initial configuration is refused.
        """
        self._transport = self._outbox.transport = await self._open_transport()
        self._connected.set()
        self._spawn(self._outbox.run())
        self._spawn(self._run_reader())
        if self.config is not None or len(self.tools):
            try:
                await self.update(self.config)
            except BaseException:
                await self.close()
                raise
        return self

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection and stop the session; pending awaits fail with ConnectionClosed.

        Handlers get up to 1 s for events already received. Cancelling ``close()`` (a
        caller's timeout on a stalled link) still ends the session: the connection is
        aborted, waiters get ConnectionClosed, tasks are cancelled, :attr:`is_open` is
        False. Calling it twice is harmless.
        """
        self._closing = True
        transport = self._transport
        closed = ConnectionClosed(code, reason or "session closed")
        try:
            if transport is not None and not self._finished.is_set():
                with contextlib.suppress(ConnectionClosed):  # the link was already gone
                    await transport.close(code, reason)
        except BaseException:
            # Cancelled (a caller's timeout on a stalled link): end everything now, then
            # let the cancellation propagate.
            if transport is not None:
                transport.abort()
            self._finish(closed, clean=True)
            self._runner.abort()
            self._cancel_tasks()
            raise
        self._finish(closed, clean=True)
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

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _open_transport(self) -> FrameTransport:
        factory = self.options.transport_factory or open_websocket
        return await factory(self.endpoint, self.options)

    def _cancel_tasks(self, keep: asyncio.Task[Any] | None = None) -> None:
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current and task is not keep:
                task.cancel()

    async def _stop_tasks(self) -> None:
        """Let handlers finish what was received (up to 1 s), then cancel every task."""
        current = asyncio.current_task()
        try:
            await self._runner.aclose(1.0)
        finally:  # also when this wait is cancelled
            self._cancel_tasks()
        others = [t for t in self._tasks if t is not current]
        if others:
            await asyncio.wait(others)

    def _finish(self, error: ConnectionClosed | ProtocolError, *, clean: bool) -> None:
        """Mark the session ended and fail everything pending with ``error`` (sync)."""
        if self._finished.is_set():
            return
        self._close_error = error
        self._connected.clear()
        self._finished.set()
        if self._expiry is not None:
            self._expiry.cancel()
        self.protocol.connection_lost(error)
        self.protocol.events_to_deliver()  # the session is over: nobody waits for these
        self._settle()  # (connection_lost left nothing to send)
        for future in self._futures.values():
            if not future.done():
                future.set_exception(error)
        self._futures.clear()
        self._waiters.fail(error)
        self._events.close(None if clean else error)
        self._outbox.fail(error)

    # -- receiving -----------------------------------------------------------------------

    async def _run_reader(self) -> None:
        while True:
            transport = self._transport
            assert transport is not None
            runner, events = self._runner, self._events
            try:
                while True:
                    for frame in await transport.receive():
                        self._receive(frame)
                    # Back-pressure: no more reading while handlers or the iterator lag.
                    if runner.congested:
                        await runner.wait_uncongested()
                    if events.full:
                        await events.wait_space()
            except ConnectionClosed as exc:
                code, reason = exc.code, exc.reason
            if self._closing or not await self._connection_lost(code, reason):
                return

    def _receive(self, frame: str | bytes | bytearray) -> None:
        """Handle one message (the hot path: keep it lean). Never raises."""
        try:
            event = parse_server_event(frame, self.dialect, strict=self.options.strict)
        except ProtocolError as exc:
            self.protocol_errors += 1
            if self.options.strict:
                self._protocol_failure(exc)
            else:
                logger.warning("ignoring a frame that could not be parsed: %s", exc)
            return
        except Exception:
            self.protocol_errors += 1
            logger.exception("ignoring a frame that could not be parsed")
            return
        if type(event) is InvalidServerEvent:
            # Fields failed validation: only "*" handlers, waiters and the iterator see it.
            self.protocol_errors += 1
            logger.warning(
                "invalid %s delivered as InvalidServerEvent: %s", event.type, event.error
            )
            self._deliver(event)
            return
        protocol = self.protocol
        try:
            wants = self.playback is not None and protocol.wants_heard_position(event)
            heard = self._stop_playback() if wants else None
            if protocol.receive(event, time.monotonic(), heard=heard):
                self._settle()
            etype = event.type
            if etype == "error" and not protocol.error_explained:
                logger.warning("server error: %s", getattr(event, "error", event))
            elif etype == "session.created":
                self._schedule_expiry(protocol.expires_at)
        except Exception:
            logger.exception("internal error while processing %s", event.type)
        self._deliver(event)

    def _settle(self) -> None:
        """Carry out the protocol's outputs: sends, acknowledgements, tool calls."""
        protocol = self.protocol
        for client_event in protocol.events_to_send():
            self._outbox.put_nowait(self._encode(client_event))
        for done in protocol.completions():
            future = self._futures.pop(done.request.id, None)
            if future is None or future.done():
                continue
            if done.error is not None:
                future.set_exception(done.error)
            elif done.event is not None:
                future.set_result(done.event)
        for call in protocol.tool_calls():
            self._spawn(self._run_tool(call))

    def _stop_playback(self, tracker: PlaybackTracker | None = None) -> HeardPosition | None:
        tracker = tracker if tracker is not None else self.playback
        if tracker is None:
            return None
        try:
            return tracker.interrupt()
        except Exception:
            logger.exception("playback tracker interrupt() raised")
            return None

    def _protocol_failure(self, error: ProtocolError) -> None:
        """Strict mode: an invalid frame ends the session (close 1002) with ``error``."""
        transport = self._transport
        if transport is not None:
            self._spawn(transport.close(1002, "invalid event"))
        self._closing = True
        self._finish(error, clean=False)
        self._spawn(self._stop_tasks())

    def _deliver(self, event: ServerEvent) -> None:
        if self._receive_listeners:
            for listener in self._receive_listeners:
                try:
                    listener(event)
                except Exception:
                    logger.exception("receive listener failed")
        if self._waiters.pending:
            self._waiters.offer(event)
        self._runner.deliver(event)
        self._events.put(event)

    def _schedule_expiry(self, expires_at: float | None) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if expires_at is not None:
            delay = max(expires_at - time.time() - self.options.expiry_warning, 0.0)
            loop = asyncio.get_running_loop()
            self._expiry = loop.call_later(delay, self._warn_expiry, expires_at)

    def _warn_expiry(self, expires_at: float) -> None:
        self._expiry = None
        left = max(expires_at - time.time(), 0.0)
        self._deliver(SessionExpiringEvent(expires_at=expires_at, seconds_left=left))

    # -- reconnecting --------------------------------------------------------------------

    async def _connection_lost(self, code: int | None, reason: str) -> bool:
        """Handle an unexpected close; True when a new connection is up."""
        self._connected.clear()
        policy = self.reconnect_policy
        will = policy is not None and policy.is_recoverable(code)
        logger.warning("connection lost (code %s)%s", code, ", reconnecting" if will else "")
        self._deliver(ConnectionLostEvent(code=code, reason=reason, will_reconnect=will))
        if not will or policy is None:
            if policy is not None:
                self._deliver(ConnectionFailedEvent(code=code, reason=reason, attempts=0))
            self._give_up(code, reason)
            return False
        # A reply playing stops where the listener is; the restore keeps only that of it.
        heard = self._stop_playback() if self.protocol.audio_log.current else None
        self.protocol.connection_lost(close_error(code, reason), time.monotonic(), heard=heard)
        self._settle()  # fails the pending requests
        for event in self.protocol.events_to_deliver():
            self._deliver(event)  # the lost responses' response.done
        lost_at, attempts = time.monotonic(), 0
        for delay in policy.delays():
            attempts += 1
            await asyncio.sleep(delay)
            if self._closing:
                return False
            try:
                transport = await self._open_transport()
            except (ConnectionError, ConfigError) as exc:
                logger.warning("reconnect attempt %d failed: %s", attempts, exc)
                if isinstance(exc, AuthenticationError):
                    break
                continue
            self._transport = self._outbox.transport = transport
            restore = self.protocol.connection_made(reinject_history=policy.reinject_history)
            # The restore goes out first, through the writer (send listeners see it).
            self._outbox.put_first(self._encode(event) for event in restore)
            self._connected.set()
            lost_responses, lost_items = self.protocol.take_losses()
            restored = sum(1 for e in restore if e.type == "conversation.item.create")
            self._deliver(
                ConnectionRestoredEvent(
                    attempts=attempts,
                    downtime=time.monotonic() - lost_at,
                    lost_responses=lost_responses,
                    incomplete_items=lost_items,
                    restored_items=restored,
                )
            )
            logger.info("reconnected after %d attempt(s)", attempts)
            return True
        self._deliver(ConnectionFailedEvent(code=code, reason=reason, attempts=attempts))
        self._give_up(code, reason)
        return False

    def _give_up(self, code: int | None, reason: str) -> None:
        self._finish(close_error(code, reason), clean=code in _NORMAL_CLOSE)
        self._spawn(self._stop_tasks())

    # -- sending -------------------------------------------------------------------------

    def _encode(self, event: ClientEvent | Mapping[str, Any]) -> str:
        return encode(event)[0]

    def _check_open(self) -> None:
        if self._close_error is not None:
            raise self._close_error

    async def _append(self, frame: str) -> None:
        """Queue an encoded frame (waits while the send queue is full)."""
        self._check_open()
        await self._outbox.put(frame)

    async def send(self, event: ClientEvent | Mapping[str, Any]) -> str:
        """Queue any client event (a model or a dict with ``type``); returns its ``event_id``.

        Waits while the send queue is full. Raises :class:`ConnectionClosed` when the
        session has ended, :class:`ConfigError`/``TypeError`` for an event it cannot encode.
        """
        frame, event_id = encode(event)
        await self._outbox.put(frame)
        return event_id

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every client event queued so far has been handed to the transport.

        Raises :class:`RequestTimeout` after ``timeout`` seconds and
        :class:`ConnectionClosed` when the session ends first.
        """
        await self._outbox.flush(timeout)

    async def _request(
        self,
        request: Request,
        *,
        timeout: float | None = None,
        then: Callable[[], Awaitable[None]] | None = None,
    ) -> ServerEvent:
        """Send the request's events, run ``then``, await the acknowledgement."""
        self._check_open()
        future: asyncio.Future[ServerEvent] = asyncio.get_running_loop().create_future()
        self._futures[request.id] = future
        limit = self.ack_timeout if timeout is None else timeout
        try:
            for event in request.events:
                await self._outbox.put(self._encode(event))
            if then is not None:
                await then()
            with self._runner.awaiting_server():  # from a handler: keep receiving
                return await asyncio.wait_for(future, limit)
        except asyncio.TimeoutError:
            raise RequestTimeout(
                f"no {' or '.join(sorted(request.types))} for {request.kind} within {limit:g} s"
            ) from None
        finally:
            self._futures.pop(request.id, None)
            self.protocol.forget(request)
            if not future.done():
                future.cancel()

    # -- dispatch ------------------------------------------------------------------------

    async def wait_for(
        self, match: EventMatch, timeout: float | None = None, *, any_dialect: bool = False
    ) -> ServerEvent:
        """Wait for the next event matching ``match`` (type pattern, event class or predicate).

        Only events arriving after the call count: to await the answer to something you
        send, use :meth:`expect` or ``send_text(..., wait=True)``. Raises
        :class:`RequestTimeout` after ``timeout`` seconds and :class:`ConnectionClosed`
        when the session ends first.
        """
        self._check_open()
        waiter = self._waiters.add(match, any_dialect=any_dialect)
        return await self._waiters.wait(waiter, timeout)

    def expect(
        self, match: EventMatch, timeout: float | None = None, *, any_dialect: bool = False
    ) -> Expectation:
        """Start waiting now for an event that what you do next causes (race-free)::

            async with session.expect("response.done") as reply:
                await session.send_text("Hi")
            print(reply.event)

        ``timeout`` counts from leaving the block (or calling ``wait()``).
        """
        self._check_open()
        waiter = self._waiters.add(match, any_dialect=any_dialect)
        return Expectation(self._waiters, waiter, timeout)

    def __aiter__(self) -> AsyncIterator[ServerEvent]:
        """Iterate over received events (the same objects handlers get).

        Before and between iterations the newest ``iterator_backlog`` events are kept.
        While a loop iterates, at most ``iterator_backlog`` wait for it: a slow loop
        makes the session stop reading (back-pressure, nothing dropped). Iteration ends
        when the session is closed normally and raises :class:`ConnectionClosed` after an
        abnormal end (the :class:`ProtocolError` in strict mode).
        """
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ServerEvent]:
        events = self._events
        self._iterators += 1
        events.set_overflow("block")
        try:
            while True:
                try:
                    event = await events.get()
                except StopAsyncIteration:
                    return
                yield event
        finally:
            self._iterators -= 1
            if not self._iterators:
                events.set_overflow("drop_oldest")

    async def _run_tool(self, call: ToolCall) -> None:
        result = await self.tools.execute(call)
        if not result.ok:
            logger.warning("tool call %s failed: %s", call.name, result.error)
        for event in self.protocol.tool_result(result):
            self._outbox.put_nowait(self._encode(event))


class SessionContext:
    """What :func:`connect` returns: ``async with`` it (or ``await`` it) to get a Session.

    ``.session`` is the (not yet connected) Session, for subscribing handlers and
    registering tools before connecting.
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
    options: SessionOptions | None = None,
    transport: Literal["websocket", "webrtc"] | TransportFactory = "websocket",
    **changes: Any,
) -> SessionContext:
    """Open a realtime session: ``async with connect(...) as session`` (or ``await connect(...)``).

    Where to connect and the key are resolved by
    :func:`realtime.connection.resolve_endpoint` (``url``, Azure options, environment).
    Every other keyword is a :class:`SessionOptions` field (``config``, ``tools``,
    ``tracker``, ``reconnect``, ``transport_factory``, ...), applied over ``options``.
    Raises :class:`ConfigError` at once for invalid or unknown options (a missing key
    for a remote server included).

    ``transport="webrtc"`` (or a :class:`realtime.webrtc.WebRTC` with a mic and a speaker)
    runs the same session over a WebRTC call instead of a WebSocket (see
    :mod:`realtime.webrtc`); any other factory is used as ``transport_factory``.
    """
    if transport == "webrtc":
        from .webrtc import WebRTC

        changes.setdefault("transport_factory", WebRTC())
    elif callable(transport):
        changes.setdefault("transport_factory", transport)
    elif transport != "websocket":
        raise ConfigError(f"transport must be 'websocket' or 'webrtc', not {transport!r}")
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
    return SessionContext(Session(endpoint, options, **changes))
