"""Handlers and the event iterator through a real Session (issue 10, defects #4 and #5).

#4: a slow async handler delayed every other handler (handlers ran one after another).
#5: inbound mailboxes were unbounded: a slow handler or ``async for`` under a fast
server grew memory without limit, with no back-pressure to the server.

Measured by counts (events handled, events buffered, whether reading is paused, whether
the server could finish sending), never by timing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

import realtime
from realtime.events import ServerEvent
from realtime.testing import FakeServer

N_SMALL = 20


def _rate(i: int, pad: int = 0) -> dict[str, Any]:
    return {"type": "rate_limits.updated", "event_id": f"e{i}", "rate_limits": [], "pad": "p" * pad}


def _num(event: ServerEvent) -> int:
    return int(str(event.event_id)[1:])


async def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.002)

    await asyncio.wait_for(poll(), timeout)


async def test_slow_async_handler_does_not_delay_another() -> None:
    """#4: one handler stuck awaiting (as in a 1 s sleep) does not hold up another."""
    gate = asyncio.Event()
    slow_got: list[int] = []
    fast_got: list[int] = []
    async with FakeServer() as server, realtime.connect(url=server.url) as session:

        async def slow(event: ServerEvent) -> None:
            await gate.wait()
            slow_got.append(_num(event))

        async def fast(event: ServerEvent) -> None:
            fast_got.append(_num(event))

        session.on("rate_limits.updated", slow)
        session.on("rate_limits.updated", fast)
        await server.send(*[_rate(i) for i in range(N_SMALL)])
        await _until(lambda: len(fast_got) == N_SMALL)
        assert slow_got == []  # still stuck, and it held nobody up
        gate.set()
        await _until(lambda: len(slow_got) == N_SMALL)
        assert slow_got == fast_got == list(range(N_SMALL))


async def test_blocking_sync_handler_is_named(caplog: pytest.LogCaptureFixture) -> None:
    """#4: a sync handler blocking the loop is named in a warning; thread=True avoids it."""
    got: list[int] = []
    async with FakeServer() as server, realtime.connect(url=server.url) as session:

        def blocking_handler(event: ServerEvent) -> None:
            time.sleep(0.02)

        def threaded_handler(event: ServerEvent) -> None:
            time.sleep(0.02)
            got.append(_num(event))

        session.on("rate_limits.updated", blocking_handler)
        session.on("rate_limits.updated", threaded_handler, thread=True)
        with caplog.at_level(logging.WARNING, logger="realtime.dispatch"):
            await server.send(*[_rate(i) for i in range(3)])
            await _until(lambda: len(got) == 3)
    named = [r.getMessage() for r in caplog.records if r.name == "realtime.dispatch"]
    assert any("blocking_handler" in m for m in named)
    assert not any("threaded_handler" in m for m in named)
    assert got == [0, 1, 2]


async def _flood(server: FakeServer, n: int, pad: int) -> None:
    await server.send(*[_rate(i, pad) for i in range(n)])


@pytest.mark.parametrize("consumer", ["handler", "iterator"])
async def test_slow_consumer_pushes_back_on_a_fast_server(consumer: str) -> None:
    """#5: a stalled handler or ``async for`` stops reading; memory stays bounded; no loss.

    The server tries to send 30 MB; with the consumer stalled it cannot finish (TCP
    pushes back), the client holds at most its stated bounds, and once the consumer
    resumes every event arrives, in order.
    """
    n, pad, backlog, max_buffer = 20_000, 1500, 64, 256 * 1024
    gate = asyncio.Event()
    got: list[int] = []
    async with (
        FakeServer() as server,
        realtime.connect(
            url=server.url, iterator_backlog=backlog, max_buffer=max_buffer
        ) as session,
    ):
        consumer_task: asyncio.Task[None] | None = None
        if consumer == "handler":

            async def handler(event: ServerEvent) -> None:
                await gate.wait()
                got.append(_num(event))

            session.on("rate_limits.updated", handler)
        else:

            async def iterate() -> None:
                async for event in session:
                    if event.type == "rate_limits.updated":
                        await gate.wait()
                        got.append(_num(event))
                        if len(got) == n:
                            return

            consumer_task = asyncio.ensure_future(iterate())
            await asyncio.sleep(0.05)  # the loop is iterating
        sender = asyncio.ensure_future(_flood(server, n, pad))
        transport: Any = session._transport
        await _until(lambda: bool(transport.reading_paused), timeout=10)
        await asyncio.sleep(0.3)
        assert transport.reading_paused
        assert not sender.done()  # the server is pushed back: it cannot send it all
        frame = len(str(_rate(0, pad)))
        batch = (max_buffer + 256 * 1024) // frame + 1
        if consumer == "handler":
            assert session._runner.pending <= 1024 + batch
        else:
            assert len(session._events) <= backlog + batch
        gate.set()
        await asyncio.wait_for(sender, 60)
        if consumer_task is not None:
            await asyncio.wait_for(consumer_task, 60)
        await _until(lambda: len(got) == n, timeout=60)
        assert got == list(range(n))


async def test_handler_awaiting_a_reply_under_a_burst_does_not_deadlock() -> None:
    """A handler awaiting wait_for() while more than a lane's worth of events arrive for it
    still gets its reply: receiving is not held up behind its own full lane."""
    n = 3000  # more than the 1024 events a lane holds
    results: list[str] = []
    got: list[int] = []
    async with FakeServer() as server, realtime.connect(url=server.url) as session:

        async def handler(event: ServerEvent) -> None:
            if _num(event) == 0:
                reply = await session.wait_for("test.reply", timeout=20)
                results.append(reply.type)
            got.append(_num(event))

        session.on("rate_limits.updated", handler)
        await server.send(*[_rate(i) for i in range(n)])
        await server.send({"type": "test.reply", "event_id": "r"})
        await _until(lambda: len(got) == n, timeout=30)
        assert results == ["test.reply"]
        assert got == list(range(n))
