"""Subscriptions to server events, and how their handlers are run.

A :class:`Dispatcher` holds subscriptions: a *pattern* (see :mod:`realtime.matching`:
an exact wire type, a glob, or ``"*"``) and a *handler*. Resolution is cached per event
type. ``on(pattern, handler, any_dialect=True)`` also matches the other dialect's
counterpart types. An :class:`~realtime.events.InvalidServerEvent` goes to ``"*"``
subscriptions only.

A :class:`HandlerRunner` runs the handlers of a dispatcher: every subscription has its
own lane, a FIFO of events and one task calling the handler, so

* each subscription receives its events in order, one at a time;
* a slow handler delays only its own lane (an ``await asyncio.sleep(1)`` in one handler
  does not delay another);
* lanes are bounded: once a lane holds ``queue_size`` events (default 1024) the runner
  is :attr:`~HandlerRunner.congested`, and the session stops taking frames from the
  transport until it drains (:meth:`~HandlerRunner.wait_uncongested`); the transport then
  stops reading from the socket. Nothing is dropped; memory stays bounded.

Sync handlers run inline in their lane's task, on the event loop: one that blocks the
loop for more than ``slow_handler`` seconds (5 ms) on three calls and at least 1% of its
calls, or for more than 20 times that (100 ms) once, is named in a warning (once per
handler; a rare slow call may just be the process being descheduled). Subscribe with
``thread=True`` to run a sync handler in a worker thread instead (still in order for
that subscription).

A handler awaiting a server reply (``wait_for``, a request) would hold up receiving
once ``queue_size`` more events arrive for its own subscription, and the reply could
never arrive: the session wraps such awaits in :meth:`HandlerRunner.awaiting_server`,
which lets that one lane grow past the limit until the await ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from itertools import count
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from .events.base import InvalidServerEvent
from .matching import is_glob, match_type

if TYPE_CHECKING:
    from .events import ServerEvent

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "Dispatcher",
    "EventQueue",
    "Handler",
    "HandlerRunner",
    "Subscription",
    "is_glob",
]

logger = logging.getLogger("realtime.dispatch")

Handler = Callable[["ServerEvent"], "Awaitable[None] | None"]
"""A handler receives one typed server event; it may be sync or async."""

H = TypeVar("H", bound=Callable[..., Any])
T = TypeVar("T")

DEFAULT_QUEUE_SIZE = 1024
"""Events a subscription's lane holds before receiving pauses."""

_STRIKES = 3  # slow calls of a sync handler before it is named in a warning ...
_STRIKE_SHARE = 0.01  # ... when they are at least this share of its calls
_VERY_SLOW = 20  # ... or one call this many times over the limit


def _name(handler: Callable[..., Any]) -> str:
    return str(getattr(handler, "__qualname__", None) or repr(handler))


@dataclass(eq=False)
class Subscription:
    """One registered (pattern, handler) pair; ``once`` ones are dropped after a match."""

    pattern: str
    handler: Handler
    once: bool = False
    any_dialect: bool = False
    thread: bool = False
    seq: int = field(default=0)
    active: bool = True

    def matches(self, event_type: str) -> bool:
        """True when this subscription wants events of ``event_type``."""
        return match_type(self.pattern, event_type, any_dialect=self.any_dialect)


class Dispatcher:
    """A registry of subscriptions resolving event types to handlers.

    Handlers are returned in subscription order. Subscribing and unsubscribing are
    allowed at any time, before or after connecting, and from inside a handler.
    """

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._cache: dict[str, tuple[Subscription, ...]] = {}
        self._star: tuple[Subscription, ...] | None = None
        self._seq = count()
        self._has_once = False
        self._removal_listeners: list[Callable[[Subscription], None]] = []

    # -- subscribing -------------------------------------------------------------

    @overload
    def on(
        self,
        pattern: str,
        handler: None = None,
        *,
        any_dialect: bool = False,
        thread: bool = False,
    ) -> Callable[[H], H]: ...

    @overload
    def on(
        self, pattern: str, handler: H, *, any_dialect: bool = False, thread: bool = False
    ) -> H: ...

    def on(
        self,
        pattern: str,
        handler: H | None = None,
        *,
        any_dialect: bool = False,
        thread: bool = False,
    ) -> H | Callable[[H], H]:
        """Subscribe ``handler`` to events matching ``pattern``.

        Call it directly (returns the handler) or use it as a decorator
        (``@dispatcher.on("response.done")``). With ``any_dialect=True`` the
        subscription also matches the other dialect's counterpart types; with
        ``thread=True`` a sync handler runs in a worker thread. Raises
        :class:`TypeError` when the handler is not callable and :class:`ValueError`
        for an empty pattern or an async handler with ``thread=True``.
        """
        return self._subscribe(pattern, handler, once=False, any_dialect=any_dialect, thread=thread)

    @overload
    def once(
        self,
        pattern: str,
        handler: None = None,
        *,
        any_dialect: bool = False,
        thread: bool = False,
    ) -> Callable[[H], H]: ...

    @overload
    def once(
        self, pattern: str, handler: H, *, any_dialect: bool = False, thread: bool = False
    ) -> H: ...

    def once(
        self,
        pattern: str,
        handler: H | None = None,
        *,
        any_dialect: bool = False,
        thread: bool = False,
    ) -> H | Callable[[H], H]:
        """Like :meth:`on`, but the subscription is removed after its first match."""
        return self._subscribe(pattern, handler, once=True, any_dialect=any_dialect, thread=thread)

    def off(self, pattern: str, handler: Callable[..., Any] | None = None) -> int:
        """Remove subscriptions registered with exactly ``pattern``.

        With ``handler`` only that handler's subscriptions go; without, every
        subscription of the pattern. Events already queued for them are not delivered.
        Returns how many were removed (0 is not an error).
        """
        gone = [
            s
            for s in self._subs
            if s.pattern == pattern and (handler is None or s.handler == handler)
        ]
        if gone:
            self._remove(gone)
        return len(gone)

    def clear(self) -> None:
        """Remove every subscription."""
        self._remove(list(self._subs))

    def add_removal_listener(self, listener: Callable[[Subscription], None]) -> None:
        """Call ``listener(subscription)`` whenever :meth:`off`/:meth:`clear` removes one."""
        self._removal_listeners.append(listener)

    def remove_removal_listener(self, listener: Callable[[Subscription], None]) -> None:
        """Stop calling a listener added with :meth:`add_removal_listener` (if it was)."""
        if listener in self._removal_listeners:
            self._removal_listeners.remove(listener)

    # -- resolving ---------------------------------------------------------------

    def subscriptions_for(self, event: ServerEvent) -> tuple[Subscription, ...]:
        """The subscriptions ``event`` goes to, in order; consumes matching ``once`` ones.

        An :class:`~realtime.events.InvalidServerEvent` goes to ``"*"`` only.
        """
        if type(event) is InvalidServerEvent:
            subs = self._star
            if subs is None:
                subs = self._star = tuple(s for s in self._subs if s.pattern == "*")
        else:
            etype = event.type
            subs = self._cache.get(etype)
            if subs is None:
                subs = self._cache[etype] = tuple(s for s in self._subs if s.matches(etype))
        if self._has_once and subs:
            self._consume_once(subs)
        return subs

    def handlers_for(self, event_type: str) -> list[Handler]:
        """The handlers for an event of ``event_type``, in subscription order.

        Call it once per received event: ``once`` subscriptions that match are removed
        by this call (they are returned this one time).
        """
        subs = self._cache.get(event_type)
        if subs is None:
            subs = self._cache[event_type] = tuple(s for s in self._subs if s.matches(event_type))
        if self._has_once and subs:
            self._consume_once(subs)
        return [s.handler for s in subs]

    def has_handlers(self, event_type: str) -> bool:
        """True when at least one subscription matches ``event_type`` (consumes nothing)."""
        subs = self._cache.get(event_type)
        if subs is None:
            subs = self._cache[event_type] = tuple(s for s in self._subs if s.matches(event_type))
        return bool(subs)

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        """The current subscriptions, in order (a snapshot)."""
        return tuple(self._subs)

    def __len__(self) -> int:
        return len(self._subs)

    # -- internals ---------------------------------------------------------------

    def _consume_once(self, subs: tuple[Subscription, ...]) -> None:
        fired = [s for s in subs if s.once and s.active]
        if fired:
            for s in fired:
                s.active = False
            gone = set(map(id, fired))
            self._subs = [s for s in self._subs if id(s) not in gone]
            self._changed()

    def _remove(self, gone: list[Subscription]) -> None:
        ids = set(map(id, gone))
        self._subs = [s for s in self._subs if id(s) not in ids]
        for s in gone:
            s.active = False
        self._changed()
        for s in gone:
            for listener in list(self._removal_listeners):
                listener(s)

    def _subscribe(
        self, pattern: str, handler: H | None, *, once: bool, any_dialect: bool, thread: bool
    ) -> H | Callable[[H], H]:
        if not isinstance(pattern, str) or not pattern:
            raise ValueError("an event pattern must be a non-empty string")

        def add(func: H) -> H:
            if not callable(func):
                raise TypeError(f"handler for {pattern!r} is not callable: {func!r}")
            if thread and inspect.iscoroutinefunction(func):
                raise ValueError(f"thread=True is for sync handlers; {_name(func)} is async")
            self._subs.append(
                Subscription(
                    pattern,
                    func,
                    once=once,
                    any_dialect=any_dialect,
                    thread=thread,
                    seq=next(self._seq),
                )
            )
            self._changed()
            return func

        if handler is None:
            return add
        return add(handler)

    def _changed(self) -> None:
        self._cache.clear()
        self._star = None
        self._has_once = any(s.once for s in self._subs)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Lane:
    __slots__ = ("busy", "calls", "exempt", "items", "strikes", "sub", "task", "waiter")

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.busy = False
        self.exempt = 0
        self.calls = 0  # sync calls made (counted when one is slow)
        self.strikes = 0  # sync calls over the slow_handler limit
        self.items: deque[ServerEvent] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None


class HandlerRunner:
    """Runs a dispatcher's handlers: one ordered, bounded lane and task per subscription.

    Call :meth:`deliver` for every event (it never blocks); check :attr:`congested`
    and await :meth:`wait_uncongested` before taking more input; :meth:`aclose` at the
    end. Needs a running event loop from the first :meth:`deliver` on.
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        slow_handler: float = 0.005,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.dispatcher = dispatcher
        self.queue_size = queue_size
        self.slow_handler = slow_handler
        self._lanes: dict[Subscription, _Lane] = {}
        self._task_lanes: dict[asyncio.Task[Any], _Lane] = {}
        self._full: set[_Lane] = set()
        self._space: asyncio.Future[None] | None = None
        self._closed = False
        self._warned: set[int] = set()
        dispatcher.add_removal_listener(self._removed)

    def __repr__(self) -> str:
        return f"<HandlerRunner lanes={len(self._lanes)} pending={self.pending}>"

    @property
    def congested(self) -> bool:
        """True while some subscription has ``queue_size`` or more events waiting."""
        return bool(self._full)

    @property
    def pending(self) -> int:
        """Events waiting in all lanes (not counting the ones being handled)."""
        return sum(len(lane.items) for lane in self._lanes.values())

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` was called (later events are ignored)."""
        return self._closed

    def deliver(self, event: ServerEvent) -> None:
        """Queue ``event`` for every subscription it matches (never blocks or raises)."""
        if self._closed:
            return
        dispatcher = self.dispatcher
        # The common case inline (a cached type, no once-subscription, a valid event):
        # one dict lookup, no call.
        subs = None
        if not dispatcher._has_once and type(event) is not InvalidServerEvent:
            subs = dispatcher._cache.get(event.type)
        if subs is None:
            subs = dispatcher.subscriptions_for(event)
        if not subs:
            return
        lanes = self._lanes
        limit = self.queue_size
        for sub in subs:
            lane = lanes.get(sub)
            if lane is None:
                lane = self._start(sub)
            items = lane.items
            items.append(event)
            waiter = lane.waiter
            if waiter is not None:
                lane.waiter = None
                if not waiter.done():
                    waiter.set_result(None)
            if len(items) >= limit and not lane.exempt:
                self._full.add(lane)

    @contextlib.contextmanager
    def awaiting_server(self) -> Iterator[None]:
        """Wrap an await for a server reply made from inside a handler.

        Meanwhile the handler's own lane does not hold up receiving (the reply could
        not arrive otherwise): it may grow past ``queue_size`` until the await ends.
        Outside a handler it does nothing.
        """
        task = asyncio.current_task()
        lane = self._task_lanes.get(task) if task is not None else None
        if lane is None:
            yield
            return
        lane.exempt += 1
        self._drained(lane)
        try:
            yield
        finally:
            lane.exempt -= 1
            if not lane.exempt and len(lane.items) >= self.queue_size and not self._closed:
                self._full.add(lane)

    async def wait_uncongested(self) -> None:
        """Return once no lane holds ``queue_size`` events (at once when none does)."""
        while self._full and not self._closed:
            space = self._space
            if space is None or space.done():
                space = self._space = asyncio.get_running_loop().create_future()
            await space

    async def join(self) -> None:
        """Wait until every event delivered so far has been handled."""
        while True:
            busy = [
                lane.task
                for lane in self._lanes.values()
                if lane.task is not None
                and not lane.task.done()
                and (lane.items or lane.busy)
                and lane.task is not asyncio.current_task()
            ]
            if not busy:
                return
            await asyncio.sleep(0.001)

    async def aclose(self, timeout: float = 1.0) -> None:
        """Stop: lanes get ``timeout`` seconds to handle what they hold, then are cancelled.

        Events delivered afterwards are ignored. Cancelling this call still cancels
        every lane task. A handler may call it (its own lane is then not waited for).
        """
        self._closed = True
        self.dispatcher.remove_removal_listener(self._removed)
        current = asyncio.current_task()
        tasks = [
            lane.task
            for lane in self._lanes.values()
            if lane.task is not None and lane.task is not current and not lane.task.done()
        ]
        for lane in self._lanes.values():
            self._wake(lane)
        self._release()
        try:
            if tasks and timeout > 0:
                await asyncio.wait(tasks, timeout=timeout)
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def abort(self) -> None:
        """Stop at once (sync): later events are ignored, every lane task is cancelled.

        For a cancelled ``close()``; the calling task's own lane is not cancelled.
        """
        self._closed = True
        self.dispatcher.remove_removal_listener(self._removed)
        current = asyncio.current_task() if _loop_running() else None
        for lane in list(self._lanes.values()):
            lane.items.clear()
            task = lane.task
            if task is not None and task is not current and not task.done():
                task.cancel()
        self._full.clear()
        self._release()

    # -- internals -----------------------------------------------------------------------

    def _start(self, sub: Subscription) -> _Lane:
        lane = self._lanes[sub] = _Lane(sub)
        lane.busy = True  # created for an event about to be queued
        task = lane.task = asyncio.get_running_loop().create_task(
            self._run(lane), name=f"realtime handler {_name(sub.handler)} ({sub.pattern})"
        )
        self._task_lanes[task] = lane
        return lane

    def _wake(self, lane: _Lane) -> None:
        waiter = lane.waiter
        if waiter is not None:
            lane.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _release(self) -> None:
        space = self._space
        if space is not None and not space.done():
            space.set_result(None)
        self._space = None

    def _removed(self, sub: Subscription) -> None:
        lane = self._lanes.get(sub)
        if lane is not None:
            lane.items.clear()
            self._drained(lane)
            self._wake(lane)

    def _drained(self, lane: _Lane) -> None:
        full = self._full
        if lane in full:
            full.discard(lane)
            if not full:
                self._release()

    async def _run(self, lane: _Lane) -> None:
        items = lane.items
        sub = lane.sub
        handler = sub.handler
        thread = sub.thread
        loop = asyncio.get_running_loop()
        limit = self.queue_size
        full = self._full
        slow = self.slow_handler
        perf = time.perf_counter
        calls = 0
        try:
            while True:
                if not items:
                    if not sub.active or self._closed:
                        return
                    lane.busy = False  # idle: everything delivered so far was handled
                    waiter = lane.waiter = loop.create_future()
                    await waiter
                    lane.busy = True
                    continue
                event = items.popleft()
                if full and lane in full and len(items) < limit:
                    self._drained(lane)
                try:
                    if thread:
                        await asyncio.to_thread(handler, event)
                        continue
                    calls += 1
                    start = perf()
                    result = handler(event)
                    if result is not None and inspect.isawaitable(result):
                        await result
                    else:
                        spent = perf() - start
                        if spent > slow:
                            lane.calls = calls
                            self._slow(lane, spent, event.type)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("handler %s for %s raised", _name(handler), event.type)
        finally:
            lane.busy = False
            if self._lanes.get(sub) is lane:
                del self._lanes[sub]
            if lane.task is not None:
                self._task_lanes.pop(lane.task, None)
            self._drained(lane)

    def _slow(self, lane: _Lane, seconds: float, event_type: str) -> None:
        # A slow call may be the process being descheduled (a loaded machine) rather
        # than the handler: name it once its slow calls are 3 and at least 1% of its
        # calls, or at once when one call is very slow.
        handler = lane.sub.handler
        key = id(handler)
        if key in self._warned:
            return
        lane.strikes += 1
        repeated = lane.strikes >= _STRIKES and lane.strikes >= _STRIKE_SHARE * lane.calls
        if not repeated and seconds < _VERY_SLOW * self.slow_handler:
            return
        self._warned.add(key)
        logger.warning(
            "sync handler %s blocked the event loop for %.0f ms (on %s); make it async, keep "
            "it short, or subscribe it with thread=True",
            _name(handler),
            seconds * 1000,
            event_type,
        )


class EventQueue(Generic[T]):
    """A FIFO with one async consumer and a stated bound (the session's event iterator).

    ``put`` never blocks. With ``overflow="block"`` the queue is :attr:`full` at
    ``limit`` items and the producer should await :meth:`wait_space` before producing
    more (back-pressure); with ``overflow="drop_oldest"`` only the newest ``limit``
    items are kept (for before anyone consumes). :meth:`close` ends it.
    """

    __slots__ = ("_closed", "_error", "_items", "_space", "_waiter", "limit", "overflow")

    def __init__(self, limit: int, *, overflow: Literal["block", "drop_oldest"] = "block") -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.overflow = overflow
        self._items: deque[T] = deque(maxlen=limit if overflow == "drop_oldest" else None)
        self._waiter: asyncio.Future[None] | None = None
        self._space: asyncio.Future[None] | None = None
        self._closed = False
        self._error: BaseException | None = None

    def set_overflow(self, overflow: Literal["block", "drop_oldest"]) -> None:
        """Switch between dropping the oldest items and back-pressure."""
        if overflow != self.overflow:
            self.overflow = overflow
            self._items = deque(
                self._items, maxlen=self.limit if overflow == "drop_oldest" else None
            )
            self._free()

    @property
    def full(self) -> bool:
        """True when the producer should wait (``overflow="block"`` and ``limit`` items)."""
        return self.overflow == "block" and len(self._items) >= self.limit and not self._closed

    def put(self, item: T) -> None:
        """Append ``item`` (ignored once closed); never blocks."""
        if self._closed:
            return
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self, error: BaseException | None = None) -> None:
        """End the queue: items left are still returned, then ``error`` or the end."""
        self._closed = True
        self._error = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._free()

    async def wait_space(self) -> None:
        """Return once the queue is not :attr:`full` (at once when it is not)."""
        while self.full:
            space = self._space
            if space is None or space.done():
                space = self._space = asyncio.get_running_loop().create_future()
            await space

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
        item = self._items.popleft()
        if self._space is not None and len(self._items) < self.limit:
            self._free()
        return item

    def __len__(self) -> int:
        return len(self._items)

    def _free(self) -> None:
        space = self._space
        if space is not None and not space.done():
            space.set_result(None)
        self._space = None
