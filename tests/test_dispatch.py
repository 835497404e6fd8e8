"""Tests for realtime.dispatch: patterns, once/off, caching, dialect-neutral subscriptions,
and the HandlerRunner (one ordered, bounded lane per subscription)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from realtime.connection import resolve_endpoint
from realtime.dispatch import Dispatcher, EventQueue, HandlerRunner, is_glob
from realtime.events import InvalidServerEvent, ServerEvent, UnknownServerEvent, parse_server_event
from realtime.exceptions import ConnectionClosed
from realtime.matching import compile_match, match_type
from realtime.transport import open_connection


def h1(event: Any) -> None:
    """A handler."""


def h2(event: Any) -> None:
    """Another handler."""


async def ah(event: Any) -> None:
    """An async handler."""


def test_exact_glob_and_star() -> None:
    """Exact types, globs and "*" match as expected, in subscription order."""
    d = Dispatcher()
    d.on("*", h1)
    d.on("response.audio_transcript.*", h2)
    d.on("response.audio_transcript.delta", ah)
    assert d.handlers_for("response.audio_transcript.delta") == [h1, h2, ah]
    assert d.handlers_for("response.audio_transcript.done") == [h1, h2]
    assert d.handlers_for("session.created") == [h1]
    assert d.handlers_for("some.future.type") == [h1]  # unknown types reach "*"


def test_glob_conversation_items() -> None:
    """conversation.item.* matches nested types too; ? and [] globs work."""
    d = Dispatcher()
    d.on("conversation.item.*", h1)
    d.on("response.text.del?a", h2)
    assert d.handlers_for("conversation.item.input_audio_transcription.delta") == [h1]
    assert d.handlers_for("conversation.item.deleted") == [h1]
    assert d.handlers_for("conversation.created") == []
    assert d.handlers_for("response.text.delta") == [h2]
    assert is_glob("a.*") and is_glob("a.[bc]") and not is_glob("a.b")


def test_decorator_forms() -> None:
    """on/once work as decorators and return the function unchanged."""
    d = Dispatcher()

    @d.on("response.done")
    def done(event: Any) -> None:
        """Done handler."""

    @d.once("error")
    async def err(event: Any) -> None:
        """Error handler."""

    assert d.handlers_for("response.done") == [done]
    assert d.handlers_for("error") == [err]
    assert d.handlers_for("error") == []


def test_once_removed_after_match_only() -> None:
    """A once handler fires for its first matching event only; others are unaffected."""
    d = Dispatcher()
    d.once("response.*", h1)
    d.on("response.*", h2)
    assert d.handlers_for("session.updated") == []
    assert len(d) == 2
    assert d.handlers_for("response.created") == [h1, h2]
    assert d.handlers_for("response.created") == [h2]
    assert d.handlers_for("response.done") == [h2]
    assert len(d) == 1


def test_off_by_pattern_and_handler() -> None:
    """off removes by exact pattern (and handler), returns the count, invalidates the cache."""
    d = Dispatcher()
    d.on("response.done", h1)
    d.on("response.done", h2)
    d.on("response.*", h1)
    assert d.handlers_for("response.done") == [h1, h2, h1]
    assert d.off("response.done", h1) == 1
    assert d.handlers_for("response.done") == [h2, h1]
    assert d.off("response.done") == 1
    assert d.handlers_for("response.done") == [h1]
    assert d.off("nothing") == 0
    d.clear()
    assert d.handlers_for("response.done") == []


def test_cache_invalidated_on_subscribe() -> None:
    """A subscription added after a lookup is seen by the next lookup."""
    d = Dispatcher()
    assert d.handlers_for("response.done") == []
    d.on("response.done", h1)
    assert d.handlers_for("response.done") == [h1]
    assert d.has_handlers("response.done")
    assert not d.has_handlers("error")


def test_subscribing_from_inside_a_resolution_loop() -> None:
    """Changing subscriptions while iterating a returned list is safe (it is a copy)."""
    d = Dispatcher()
    d.on("x", h1)
    for _ in d.handlers_for("x"):
        d.on("x", h2)
        d.off("x", h1)
    assert d.handlers_for("x") == [h2]


@pytest.mark.parametrize(
    ("pattern", "beta_type", "ga_type"),
    [
        ("response.audio.delta", "response.audio.delta", "response.output_audio.delta"),
        ("response.output_audio.delta", "response.audio.delta", "response.output_audio.delta"),
        (
            "response.audio_transcript.*",
            "response.audio_transcript.done",
            "response.output_audio_transcript.done",
        ),
        ("response.output_text.*", "response.text.delta", "response.output_text.delta"),
        ("conversation.item.added", "conversation.item.created", "conversation.item.added"),
    ],
)
def test_any_dialect(pattern: str, beta_type: str, ga_type: str) -> None:
    """any_dialect=True reaches both dialects' names; a plain subscription only its own."""
    d = Dispatcher()
    d.on(pattern, h1, any_dialect=True)
    d.on(pattern, h2)
    assert h1 in d.handlers_for(beta_type)
    assert h1 in d.handlers_for(ga_type)
    plain = [t for t in (beta_type, ga_type) if h2 in d.handlers_for(t)]
    assert len(plain) == 1


def test_any_dialect_glob_covers_renamed_family() -> None:
    """A dialect-neutral glob over a renamed family covers types without a table entry."""
    d = Dispatcher()
    d.on("response.audio_transcript.*", h1, any_dialect=True)
    d.on("response.output_text.*", h2, any_dialect=True)
    assert d.handlers_for("response.output_audio_transcript.segment") == [h1]
    assert d.handlers_for("response.text.annotation") == [h2]


def test_any_dialect_does_not_overmatch() -> None:
    """A dialect-neutral exact subscription does not catch unrelated types."""
    d = Dispatcher()
    d.on("response.audio.delta", h1, any_dialect=True)
    assert d.handlers_for("response.audio.done") == []
    assert d.handlers_for("response.output_audio_transcript.delta") == []


def test_bad_arguments() -> None:
    """Empty patterns and non-callable handlers are rejected."""
    d = Dispatcher()
    with pytest.raises(ValueError):
        d.on("", h1)
    with pytest.raises(TypeError):
        d.on("x", 3)  # type: ignore[call-overload]


def test_subscriptions_snapshot() -> None:
    """subscriptions lists pattern, handler and flags in order."""
    d = Dispatcher()
    d.on("a", h1)
    d.once("b", h2, any_dialect=True)
    subs = d.subscriptions
    assert [(s.pattern, s.handler, s.once, s.any_dialect) for s in subs] == [
        ("a", h1, False, False),
        ("b", h2, True, True),
    ]


# -- HandlerRunner: lanes, ordering, back-pressure ---------------------------------------


def _ev(etype: str, n: int = 0) -> ServerEvent:
    return UnknownServerEvent.model_construct(type=etype, event_id=f"e{n}", raw={"n": n})


def _n(event: ServerEvent) -> int:
    assert isinstance(event, UnknownServerEvent)
    return int(event.raw["n"])


async def _until(check: Callable[[], bool], timeout: float = 3.0) -> None:
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.001)

    await asyncio.wait_for(poll(), timeout)


async def test_slow_async_handler_delays_only_itself() -> None:
    """One handler stuck in an await (a 1 s sleep, here an unset Event) delays no other."""
    d = Dispatcher()
    runner = HandlerRunner(d)
    release = asyncio.Event()
    slow_got: list[int] = []
    fast_got: list[int] = []

    async def slow(event: ServerEvent) -> None:
        await release.wait()
        slow_got.append(_n(event))

    async def fast(event: ServerEvent) -> None:
        await asyncio.sleep(0)
        fast_got.append(_n(event))

    d.on("x", slow)
    d.on("*", fast)
    for i in range(10):
        runner.deliver(_ev("x", i))
    await _until(lambda: len(fast_got) == 10)
    assert fast_got == list(range(10)) and slow_got == []
    release.set()
    await _until(lambda: len(slow_got) == 10)
    assert slow_got == list(range(10))
    await runner.aclose()


async def test_each_subscription_in_order_one_at_a_time() -> None:
    """A subscription's events are handled in order, never two at once."""
    d = Dispatcher()
    runner = HandlerRunner(d)
    got: list[int] = []
    running = 0
    overlap = False

    async def handler(event: ServerEvent) -> None:
        nonlocal running, overlap
        running += 1
        overlap = overlap or running > 1
        for _ in range(_n(event) % 3):
            await asyncio.sleep(0)
        got.append(_n(event))
        running -= 1

    d.on("x.*", handler)
    for i in range(100):
        runner.deliver(_ev("x.y", i))
    await runner.join()
    assert got == list(range(100)) and not overlap
    await runner.aclose()


async def test_full_lane_congests_then_drains_without_loss() -> None:
    """A lane at queue_size makes the runner congested; nothing is dropped; drains after."""
    d = Dispatcher()
    runner = HandlerRunner(d, queue_size=10)
    release = asyncio.Event()
    got: list[int] = []

    async def handler(event: ServerEvent) -> None:
        await release.wait()
        got.append(_n(event))

    d.on("*", handler)
    assert not runner.congested
    for i in range(25):
        runner.deliver(_ev("x", i))
    await asyncio.sleep(0)
    assert runner.congested and runner.pending >= 24
    waiting = asyncio.ensure_future(runner.wait_uncongested())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    release.set()
    await asyncio.wait_for(waiting, 2)
    await runner.join()
    assert got == list(range(25)) and not runner.congested
    await runner.aclose()


async def test_sync_handler_blocking_the_loop_is_named(caplog: pytest.LogCaptureFixture) -> None:
    """A sync handler running longer than slow_handler is named in a warning, once."""
    d = Dispatcher()
    runner = HandlerRunner(d, slow_handler=0.005)

    def sluggish_handler(event: ServerEvent) -> None:
        time.sleep(0.02)

    d.on("x", sluggish_handler)
    with caplog.at_level(logging.WARNING, logger="realtime.dispatch"):
        for i in range(3):
            runner.deliver(_ev("x", i))
        await runner.join()
    warnings = [r for r in caplog.records if "sluggish_handler" in r.getMessage()]
    assert len(warnings) == 1 and "thread=True" in warnings[0].getMessage()
    await runner.aclose()


async def test_thread_handlers_run_in_a_worker_in_order() -> None:
    """thread=True runs a sync handler off the loop thread, still in order."""
    d = Dispatcher()
    runner = HandlerRunner(d)
    got: list[tuple[int, int]] = []

    def blocking(event: ServerEvent) -> None:
        time.sleep(0.001)
        got.append((_n(event), threading.get_ident()))

    d.on("x", blocking, thread=True)
    for i in range(20):
        runner.deliver(_ev("x", i))
    await runner.join()
    assert [n for n, _ in got] == list(range(20))
    assert all(ident != threading.get_ident() for _, ident in got)
    with pytest.raises(ValueError, match="sync handlers"):
        d.on("x", ah, thread=True)
    await runner.aclose()


async def test_handler_errors_are_logged_and_the_lane_continues(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception in a handler is logged with its name; later events still arrive."""
    d = Dispatcher()
    runner = HandlerRunner(d)
    got: list[int] = []

    def flaky(event: ServerEvent) -> None:
        if _n(event) == 1:
            raise RuntimeError("boom")
        got.append(_n(event))

    d.on("x", flaky)
    with caplog.at_level(logging.ERROR, logger="realtime.dispatch"):
        for i in range(3):
            runner.deliver(_ev("x", i))
        await runner.join()
    assert got == [0, 2]
    assert any("flaky" in r.getMessage() for r in caplog.records)
    await runner.aclose()


async def test_off_once_and_lane_tasks_end() -> None:
    """off() drops what was queued and ends the lane; once delivers one event."""
    d = Dispatcher()
    runner = HandlerRunner(d, queue_size=5)
    release = asyncio.Event()
    got: list[int] = []
    once_got: list[int] = []

    async def handler(event: ServerEvent) -> None:
        await release.wait()
        got.append(_n(event))

    d.on("x", handler)
    d.once("x", lambda e: once_got.append(_n(e)))
    for i in range(8):
        runner.deliver(_ev("x", i))
    await asyncio.sleep(0.01)
    assert runner.congested
    assert d.off("x", handler) == 1
    assert not runner.congested  # the removed lane no longer holds receiving up
    release.set()
    await asyncio.sleep(0.01)
    assert got in ([], [0])  # at most the event in hand when it was removed
    assert once_got == [0]
    assert runner.pending == 0 and not runner._lanes
    await runner.aclose()


async def test_invalid_events_reach_star_only() -> None:
    """An InvalidServerEvent goes to "*" subscriptions, never to ones naming its type."""
    d = Dispatcher()
    runner = HandlerRunner(d)
    star: list[ServerEvent] = []
    typed: list[ServerEvent] = []
    d.on("*", star.append)
    d.on("response.done", typed.append)
    d.on("response.*", typed.append)
    bad = parse_server_event(b'{"type":"response.done","response":7}', strict=False)
    assert isinstance(bad, InvalidServerEvent)
    runner.deliver(bad)
    await runner.join()
    assert star == [bad] and typed == []
    await runner.aclose()


async def test_aclose_cancels_stuck_handlers_and_ignores_later_events() -> None:
    """aclose waits up to its timeout, then cancels; a cancelled aclose still cancels."""
    d = Dispatcher()
    runner = HandlerRunner(d)
    cancelled = asyncio.Event()

    async def stuck(event: ServerEvent) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    d.on("x", stuck)
    runner.deliver(_ev("x"))
    await asyncio.sleep(0)
    closing = asyncio.ensure_future(runner.aclose(timeout=30))
    await asyncio.sleep(0.01)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    await asyncio.wait_for(cancelled.wait(), 1)
    runner.deliver(_ev("x"))
    assert runner.closed and runner.pending == 0


async def test_event_queue_blocks_or_drops_oldest() -> None:
    """EventQueue: full at its limit with back-pressure, or keeps the newest items."""
    q: EventQueue[int] = EventQueue(3, overflow="drop_oldest")
    for i in range(5):
        q.put(i)
    assert len(q) == 3 and not q.full
    q.set_overflow("block")
    q.put(5)
    assert q.full
    space = asyncio.ensure_future(q.wait_space())
    await asyncio.sleep(0)
    assert not space.done()
    assert await q.get() == 2
    assert await q.get() == 3
    await asyncio.wait_for(space, 1)
    q.close(ValueError("ended"))
    assert [await q.get(), await q.get()] == [4, 5]
    with pytest.raises(ValueError, match="ended"):
        await q.get()


async def test_slow_consumer_keeps_memory_flat_over_a_fast_server() -> None:
    """Transport + runner as a session drives them: a stuck handler under a fast server.

    Reading pauses (the server is pushed back), the buffered counts stay under the
    stated bounds, and once the handler resumes every event arrives, in order.
    """
    n, limit, max_buffer = 20_000, 64, 32 * 1024
    done_sending = asyncio.Event()

    async def server(conn: ServerConnection) -> None:
        for i in range(n):
            await conn.send(f'{{"type":"x.y","event_id":"e","n":{i},"pad":"{"p" * 2000}"}}')
        done_sending.set()
        await conn.close()

    async with serve(server, "127.0.0.1", 0) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        t = await open_connection(
            resolve_endpoint(url=f"ws://127.0.0.1:{port}/"), max_buffer=max_buffer
        )
        d = Dispatcher()
        runner = HandlerRunner(d, queue_size=limit)
        release = asyncio.Event()
        got: list[int] = []
        peak = 0

        async def handler(event: ServerEvent) -> None:
            await release.wait()
            got.append(_n(event))

        d.on("*", handler)

        async def reader() -> None:
            nonlocal peak
            while True:
                try:
                    frames = await t.receive()
                except ConnectionClosed:
                    return
                for frame in frames:
                    runner.deliver(parse_server_event(frame))
                peak = max(peak, runner.pending)
                if runner.congested:
                    await runner.wait_uncongested()

        task = asyncio.ensure_future(reader())
        await _until(lambda: t.reading_paused and runner.congested)
        await asyncio.sleep(0.2)  # the server would send everything if nothing pushed back
        assert not done_sending.is_set()
        assert t.reading_paused and runner.congested
        # bounded: one lane of queue_size plus one batch; the transport under max_buffer + a read
        per_frame = 2040
        assert runner.pending <= limit + (max_buffer + 256 * 1024) // per_frame
        assert t.buffered <= max_buffer + 256 * 1024
        release.set()
        await asyncio.wait_for(task, 30)
        await runner.join()
        assert got == list(range(n))
        assert peak <= limit + (max_buffer + 256 * 1024) // per_frame
        await runner.aclose()


# -- realtime.matching: the one matcher of on, wait_for and a script's expect -------------


def test_compile_match_patterns_classes_predicates() -> None:
    """compile_match: exact, glob, any_dialect, class and predicate; bad input rejected."""
    delta = parse_server_event(
        b'{"type":"response.output_audio.delta","response_id":"r","item_id":"i",'
        b'"output_index":0,"content_index":0,"delta":""}'
    )
    assert compile_match("response.output_audio.delta")(delta)
    assert compile_match("response.*")(delta)
    assert not compile_match("response.audio.delta")(delta)
    assert compile_match("response.audio.delta", any_dialect=True)(delta)
    assert compile_match("response.audio.*", any_dialect=True)(delta)
    assert compile_match(type(delta))(delta) and not compile_match(UnknownServerEvent)(delta)
    assert compile_match(lambda e: e.type.endswith("delta"))(delta)
    with pytest.raises(TypeError):
        compile_match(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        compile_match("")


def test_invalid_events_match_only_star_and_classes() -> None:
    """wait_for("response.done") is never satisfied by a response.done that did not validate."""
    bad = parse_server_event(b'{"type":"response.done","response":7}', strict=False)
    assert not compile_match("response.done")(bad)
    assert not compile_match("response.*")(bad)
    assert compile_match("*")(bad) and compile_match(InvalidServerEvent)(bad)
    assert match_type("response.done", bad.type)  # the type itself still matches by name


def test_script_expect_uses_the_shared_matcher() -> None:
    """realtime.script's expect matches through realtime.matching (no matcher of its own)."""
    import realtime.script.runner as runner_mod

    assert vars(runner_mod)["match_type"] is match_type
    assert "fnmatch" not in vars(runner_mod)


async def test_abort_cancels_every_lane_at_once() -> None:
    """abort() (sync, for a cancelled close) cancels lane tasks and releases waiters."""
    d = Dispatcher()
    runner = HandlerRunner(d, queue_size=2)
    started = asyncio.Event()

    async def stuck(event: ServerEvent) -> None:
        started.set()
        await asyncio.sleep(60)

    d.on("x", stuck)
    for i in range(5):
        runner.deliver(_ev("x", i))
    await started.wait()
    assert runner.congested
    waiting = asyncio.ensure_future(runner.wait_uncongested())
    await asyncio.sleep(0)
    runner.abort()
    await asyncio.wait_for(waiting, 1)
    await asyncio.sleep(0.01)
    assert runner.closed and not runner.congested and runner.pending == 0
    assert not runner._lanes  # every lane task ended


async def test_one_slow_call_is_not_blamed_on_the_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Rare calls over the limit (a descheduled process) are not named; 100 ms once is."""
    d = Dispatcher()
    runner = HandlerRunner(d, slow_handler=0.005)
    first = True

    def once_slow(event: ServerEvent) -> None:
        nonlocal first
        if first:
            first = False
            time.sleep(0.02)

    def rarely_slow(event: ServerEvent) -> None:
        if _n(event) % 200 == 199:  # 3 slow calls in 600: 0.5% of its calls
            time.sleep(0.02)

    def very_slow(event: ServerEvent) -> None:
        time.sleep(0.12)

    d.on("x", once_slow)
    d.on("y", very_slow)
    d.on("z", rarely_slow)
    with caplog.at_level(logging.WARNING, logger="realtime.dispatch"):
        for i in range(5):
            runner.deliver(_ev("x", i))
        runner.deliver(_ev("y"))
        for i in range(600):
            runner.deliver(_ev("z", i))
        await runner.join()
    named = " ".join(r.getMessage() for r in caplog.records)
    assert "once_slow" not in named and "rarely_slow" not in named and "very_slow" in named
    await runner.aclose()


async def test_handler_awaiting_the_server_does_not_hold_up_receiving() -> None:
    """A handler waiting for a server reply inside awaiting_server(): its full lane does
    not congest the runner (the reply could never be read otherwise); after, it does."""
    d = Dispatcher()
    runner = HandlerRunner(d, queue_size=4)
    reply = asyncio.Event()
    inside = asyncio.Event()
    got: list[int] = []

    async def handler(event: ServerEvent) -> None:
        if _n(event) == 0:
            with runner.awaiting_server():
                inside.set()
                await reply.wait()
        got.append(_n(event))

    d.on("x", handler)
    runner.deliver(_ev("x", 0))
    await inside.wait()
    for i in range(1, 10):
        runner.deliver(_ev("x", i))
    assert not runner.congested and runner.pending == 9
    with runner.awaiting_server():  # outside a handler: nothing happens
        assert not runner.congested
    reply.set()
    await runner.join()
    assert got == list(range(10))
    await runner.aclose()


async def test_lane_over_limit_congests_again_when_the_await_ends() -> None:
    """Leaving awaiting_server() with a lane still over the limit congests the runner."""
    d = Dispatcher()
    runner = HandlerRunner(d, queue_size=2)
    reply = asyncio.Event()
    left = asyncio.Event()
    hold = asyncio.Event()

    async def handler(event: ServerEvent) -> None:
        if _n(event) == 0:
            with runner.awaiting_server():
                await reply.wait()
            left.set()
            await hold.wait()

    d.on("x", handler)
    for i in range(5):
        runner.deliver(_ev("x", i))
    await asyncio.sleep(0.01)
    assert not runner.congested
    reply.set()
    await left.wait()
    assert runner.congested
    hold.set()
    await runner.join()
    assert not runner.congested
    await runner.aclose()
