"""Waiting for server events: ``wait_for`` waiters and race-free expectations.

A :class:`Waiters` set holds one future per pending ``wait_for``; the session offers
every delivered event to :meth:`Waiters.offer`. An :class:`Expectation` registers its
waiter *before* the action that causes the event, so a fast server's answer cannot
slip between sending and waiting::

    async with session.expect("response.done") as reply:
        await session.send_text("Hi")
    print(reply.event)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType

from .events import ServerEvent
from .exceptions import RequestTimeout
from .matching import EventMatch, compile_match

__all__ = ["EventMatch", "Expectation", "Waiters"]

logger = logging.getLogger("realtime.session")


class _Waiter:
    __slots__ = ("future", "match", "test")

    def __init__(
        self,
        match: EventMatch,
        test: Callable[[ServerEvent], bool],
        future: asyncio.Future[ServerEvent],
    ) -> None:
        self.match = match
        self.test = test
        self.future = future


class Waiters:
    """The pending waiters of a session.

    ``guard`` wraps every wait (the session passes
    :meth:`~realtime.dispatch.HandlerRunner.awaiting_server`).
    """

    def __init__(self, guard: Callable[[], AbstractContextManager[None]] | None = None) -> None:
        self.pending: list[_Waiter] = []
        """The waiters not yet satisfied, in order (test ``if waiters.pending`` on a hot path)."""
        self._guard = guard if guard is not None else nullcontext

    def __bool__(self) -> bool:
        return bool(self.pending)

    def __len__(self) -> int:
        return len(self.pending)

    def add(self, match: EventMatch, *, any_dialect: bool = False) -> _Waiter:
        """Start waiting for the next event matching ``match`` (raises TypeError if invalid)."""
        test = compile_match(match, any_dialect=any_dialect)
        waiter = _Waiter(match, test, asyncio.get_running_loop().create_future())
        self.pending.append(waiter)
        return waiter

    def drop(self, waiter: _Waiter) -> None:
        """Stop waiting (the future is cancelled when still pending)."""
        if waiter in self.pending:
            self.pending.remove(waiter)
        if not waiter.future.done():
            waiter.future.cancel()

    async def wait(self, waiter: _Waiter, timeout: float | None) -> ServerEvent:
        """Await ``waiter``; :class:`RequestTimeout` after ``timeout`` seconds."""
        try:
            with self._guard():  # a handler awaiting this must not hold up receiving
                return await asyncio.wait_for(waiter.future, timeout)
        except asyncio.TimeoutError:
            raise RequestTimeout(
                f"no event matching {waiter.match!r} within {timeout:g} s"
            ) from None
        finally:
            self.drop(waiter)

    def offer(self, event: ServerEvent) -> None:
        """Resolve every waiter ``event`` matches."""
        for waiter in list(self.pending):
            if waiter.future.done():
                self.pending.remove(waiter)
                continue
            try:
                hit = waiter.test(event)
            except Exception:
                logger.exception("wait_for predicate raised")
                hit = False
            if hit:
                waiter.future.set_result(event)
                self.pending.remove(waiter)

    def fail(self, error: BaseException) -> None:
        """Fail every waiter with ``error`` (the session ended)."""
        for waiter in self.pending:
            if not waiter.future.done():
                waiter.future.set_exception(error)
        self.pending.clear()


class Expectation:
    """An event awaited from before an action (``async with session.expect(...) as got``).

    Leaving the block waits for the event (unless the block raised); it is then
    :attr:`event`. :meth:`wait` also returns it; ``timeout`` counts from that wait.
    """

    def __init__(self, waiters: Waiters, waiter: _Waiter, timeout: float | None) -> None:
        self.pending = waiters
        self._waiter = waiter
        self._timeout = timeout
        self.event: ServerEvent | None = None

    async def wait(self) -> ServerEvent:
        """Wait for the event."""
        if self.event is None:
            self.event = await self.pending.wait(self._waiter, self._timeout)
        return self.event

    def cancel(self) -> None:
        """Stop waiting."""
        self.pending.drop(self._waiter)

    async def __aenter__(self) -> Expectation:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.cancel()
            return
        await self.wait()
