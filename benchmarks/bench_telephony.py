"""Phone bridge benchmark: CPU per call-second, concurrent calls, added latency, stale audio.

Run: ``python benchmarks/bench_telephony.py`` (``--calls N --capacity M --seconds S
--loop auto|asyncio|uvloop``; ``--quick``).

Three processes, so that only the bridge is measured:

* a **light backend** (child process): a WebSocket realtime server that acknowledges the
  session, swallows caller audio and speaks replies at real-time pace (GA events, mu-law
  deltas of 100 ms, a 2 s reply then 1 s of silence, over and over); with ``--barge-in``
  it starts a barge-in (``speech_started``) in the middle of every other reply and keeps
  sending 300 ms of that reply's audio afterwards, as in-flight audio would;
* the **phones** (child process): N callers on the media-stream protocol, each sending a
  20 ms mu-law frame every 20 ms and playing what it receives at real-time pace,
  acknowledging marks when played and dropping its buffer on ``clear``;
* the **bridge** (this process): :class:`realtime.telephony.MediaStreamBridge` behind
  :class:`realtime.telephony.PhoneServer` (uvicorn), one realtime session per call.

Every audio payload carries its send time (monotonic clock, shared by the processes) in
its first bytes, and mu-law passes through the bridge untouched, so the receiving side
measures the one-way latency. The peer measured in the same run is the direct path: the
same phones talking straight to the backend (no bridge), whose latency is the loopback
and scheduling floor. The bridge's *added* latency is the bridged path's percentile minus
the direct path's median (conservative: the whole tail of the bridged path is counted).

Two runs through the bridge. The **latency run** (``--calls``, default 50) reports the
latency percentiles per direction (target: p99 added < 5 ms) and the stale audio callers
heard after a ``clear`` (the audio of the interrupted reply arriving after it; target:
none). The **capacity run** (``--capacity``, default 200: the target) carries that many
calls at once and reports whether the bridge kept real time, its CPU per call-second
(``time.process_time``) and the share of one core it used (target: 200 calls within one
core). CPU per call falls as calls are added (more frames per loop wake-up), so the
capacity is measured at the target, not extrapolated from the smaller run. The phones and
the backend run on the same machine: their CPU is printed, and under the capacity run the
latencies include their competition for the cores. ``--loop`` picks the bridge's event
loop (``auto``: uvloop when installed, as uvicorn does). The machine's load average is
printed: on a shared machine, latency percentiles are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import os
import struct
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

__all__ = ["main"]

FRAME_MS = 20
DELTA_MS = 100
REPLY_MS = 2000
PAUSE_MS = 1000
_STAMP = struct.Struct("<dI")  # send time, sequence


def _payload(ms: int, seq: int) -> str:
    raw = bytearray(b"\xff" * (8 * ms))
    _STAMP.pack_into(raw, 0, time.monotonic(), seq)
    return base64.b64encode(raw).decode("ascii")


def _stamp(payload: str) -> tuple[float, int]:
    """Send time and sequence number carried by a payload."""
    raw = base64.b64decode(payload[:16])
    sent, seq = _STAMP.unpack_from(raw, 0)
    return float(sent), int(seq)


_WARM_FRAMES = 50  # the first second of each call is not measured (connection set-up)


# -- the light backend ---------------------------------------------------------------------


def _backend_main(port_q: Any, result_q: Any, barge_in: bool) -> None:
    from websockets.asyncio.server import serve

    inbound: list[float] = []

    async def call(ws: Any) -> None:
        from realtime.testing import session_created

        send = ws.send
        created = session_created("ga")
        await send(json.dumps(created))
        stop = asyncio.Event()

        async def speak() -> None:
            n = 0
            loop = asyncio.get_running_loop()
            while not stop.is_set():
                n += 1
                rid, iid = f"resp_{n}", f"item_{n}_{id(ws)}"
                await send(
                    json.dumps(
                        {
                            "type": "response.created",
                            "response": {
                                "id": rid,
                                "object": "realtime.response",
                                "status": "in_progress",
                            },
                        }
                    )
                )
                item = {
                    "id": iid,
                    "object": "realtime.item",
                    "type": "message",
                    "role": "assistant",
                    "status": "in_progress",
                    "content": [],
                }
                await send(
                    json.dumps(
                        {
                            "type": "response.output_item.added",
                            "response_id": rid,
                            "output_index": 0,
                            "item": item,
                        }
                    )
                )
                cut = REPLY_MS // 2 if barge_in and n % 2 == 0 else None
                t = loop.time()
                sent = 0
                while sent < REPLY_MS and not stop.is_set():
                    if cut is not None and sent == cut:
                        await send(
                            json.dumps(
                                {
                                    "type": "input_audio_buffer.speech_started",
                                    "item_id": f"user_{n}",
                                    "audio_start_ms": 0,
                                }
                            )
                        )
                    if cut is not None and sent >= cut + 300:
                        break
                    delta = {
                        "type": "response.output_audio.delta",
                        "response_id": rid,
                        "item_id": iid,
                        "output_index": 0,
                        "content_index": 0,
                        "delta": _payload(DELTA_MS, n),
                    }
                    await send(json.dumps(delta))
                    sent += DELTA_MS
                    t += DELTA_MS / 1000
                    await asyncio.sleep(max(0.0, t - loop.time()))
                status = "cancelled" if cut is not None else "completed"
                await send(
                    json.dumps(
                        {
                            "type": "response.done",
                            "response": {
                                "id": rid,
                                "object": "realtime.response",
                                "status": status,
                                "output": [],
                            },
                        }
                    )
                )
                await asyncio.sleep(PAUSE_MS / 1000)

        speaker: asyncio.Task[None] | None = None
        try:
            async for frame in ws:
                data = json.loads(frame)
                kind = data.get("type")
                if kind == "input_audio_buffer.append":
                    sent, seq = _stamp(data["audio"])
                    if seq > _WARM_FRAMES:
                        inbound.append(time.monotonic() - sent)
                elif kind == "session.update":
                    session = {**created["session"], **data["session"]}
                    await send(
                        json.dumps({"type": "session.updated", "session": session, "event_id": "e"})
                    )
                    if speaker is None:
                        speaker = asyncio.create_task(speak())
                elif kind == "conversation.item.truncate":
                    await send(
                        json.dumps(
                            {
                                "type": "conversation.item.truncated",
                                "item_id": data["item_id"],
                                "content_index": 0,
                                "audio_end_ms": data["audio_end_ms"],
                            }
                        )
                    )
        except Exception:
            pass
        finally:
            stop.set()
            if speaker is not None:
                speaker.cancel()

    async def run() -> None:
        async with serve(call, "127.0.0.1", 0, max_size=None, compression=None) as server:
            port_q.put(server.sockets[0].getsockname()[1])
            while True:
                cmd = await asyncio.to_thread(result_q.get)
                if cmd == "report":
                    port_q.put(list(inbound))
                    inbound.clear()
                elif cmd == "quit":
                    return

    asyncio.run(run())


# -- the phones ------------------------------------------------------------------------------


async def _phone(url: str, seconds: float, out: dict[str, Any], direct: bool) -> None:
    from websockets.asyncio.client import connect

    loop = asyncio.get_running_loop()
    latencies: list[float] = out["outbound"]
    async with connect(url, max_size=None, compression=None) as ws:
        if direct:  # straight to the backend: play the bridge's part minimally
            await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        else:
            sid = "MZ" + os.urandom(8).hex()
            await ws.send(
                json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            )
            start = {
                "streamSid": sid,
                "callSid": "CA" + sid[2:],
                "tracks": ["inbound"],
                "customParameters": {},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            }
            await ws.send(json.dumps({"event": "start", "streamSid": sid, "start": start}))
        play_end = loop.time()
        segment: list[float] = []  # ms of media since the last mark
        pending: list[tuple[str, float]] = []
        cleared_items: set[str] = set()
        last_item: list[str | None] = [None]

        async def talk() -> None:
            t = loop.time()
            n = 0
            while True:
                n += 1
                if direct:
                    await ws.send(
                        json.dumps(
                            {"type": "input_audio_buffer.append", "audio": _payload(FRAME_MS, n)}
                        )
                    )
                else:
                    await ws.send(
                        '{"event":"media","streamSid":"'
                        + sid
                        + '","media":{"track":"inbound","payload":"'
                        + _payload(FRAME_MS, n)
                        + '"}}'
                    )
                t += FRAME_MS / 1000
                await asyncio.sleep(max(0.0, t - loop.time()))

        def ack(name: str) -> None:
            if pending and pending[0][0] == name:
                pending.pop(0)
            task = asyncio.ensure_future(
                ws.send(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": name}}))
            )
            acks.add(task)
            task.add_done_callback(_settled)

        acks: set[asyncio.Future[None]] = set()

        def _settled(task: asyncio.Future[None]) -> None:
            acks.discard(task)
            if not task.cancelled():
                task.exception()  # a mark sent after the call closed: nothing to do

        talker = asyncio.create_task(talk())
        deadline = loop.time() + seconds
        try:
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    text = await asyncio.wait_for(ws.recv(), left)
                except asyncio.TimeoutError:
                    break
                data = json.loads(text)
                if direct:
                    if data.get("type") == "response.output_audio.delta":
                        sent, reply = _stamp(data["delta"])
                        if reply > 1:
                            latencies.append(time.monotonic() - sent)
                    continue
                event = data.get("event")
                if event == "media":
                    payload = data["media"]["payload"]
                    sent, reply = _stamp(payload)
                    if reply > 1:
                        latencies.append(time.monotonic() - sent)
                    ms = len(payload) * 3 / 4 / 8
                    play_end = max(play_end, loop.time()) + ms / 1000
                    segment.append(ms)
                elif event == "mark":
                    name = data["mark"]["name"]
                    item = name.rsplit(".", 1)[0]
                    if item in cleared_items:
                        out["stale_ms"] += sum(segment)  # arrived after its clear
                    last_item[0] = item
                    segment.clear()
                    pending.append((name, play_end))
                    loop.call_at(play_end, ack, name)
                elif event == "clear":
                    out["clears"] += 1
                    if last_item[0] is not None:
                        cleared_items.add(last_item[0])
                    play_end = loop.time()
                    for name, _ in list(pending):
                        ack(name)
        finally:
            talker.cancel()
            if not direct:
                await ws.send(json.dumps({"event": "stop", "streamSid": sid, "stop": {}}))


def _phones_main(url: str, calls: int, seconds: float, direct: bool, q: Any) -> None:

    async def run() -> None:
        cpu0, t0 = time.process_time(), time.monotonic()
        outs: list[dict[str, Any]] = [
            {"outbound": [], "stale_ms": 0.0, "clears": 0} for _ in range(calls)
        ]
        tasks = []
        for out in outs:
            tasks.append(asyncio.create_task(_phone(url, seconds, out, direct)))
            await asyncio.sleep(0.005)  # calls arrive over a moment, not all at once
        await asyncio.gather(*tasks, return_exceptions=True)
        q.put(
            {
                "cpu": (time.process_time() - cpu0) / (time.monotonic() - t0),
                "outbound": [x for o in outs for x in o["outbound"]],
                "stale_ms": sum(o["stale_ms"] for o in outs),
                "clears": sum(o["clears"] for o in outs),
            }
        )

    asyncio.run(run())


# -- the run ---------------------------------------------------------------------------------


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


async def _bridge_run(
    backend_url: str, calls: int, seconds: float, barge_in: bool
) -> dict[str, Any]:
    from realtime.telephony import MediaStreamBridge, PhoneServer, create_phone_app

    bridge = MediaStreamBridge(connect={"url": backend_url, "model": None})
    async with PhoneServer(create_phone_app(bridge)) as server:
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        phones = ctx.Process(
            target=_phones_main, args=(server.stream_url, calls, seconds, False, q)
        )
        phones.start()
        await asyncio.sleep(min(3.0, seconds / 3))  # ramp up: every call connected
        cpu0, t0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds - min(3.0, seconds / 3) - 0.5)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
        active = len(bridge.active)
        result: dict[str, Any] = await asyncio.to_thread(q.get)
        await asyncio.to_thread(phones.join)
    result.update(cpu=cpu, wall=wall, active=active, phones_cpu=result["cpu"])
    return result


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISSED"


def _loop_runner(name: str) -> tuple[str, Any]:
    """The event loop the bridge runs on: ``auto`` is uvloop when installed (as uvicorn)."""
    if name in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise SystemExit("uvloop is not installed (pip install uvloop)") from None
        else:
            return "uvloop", uvloop.run
    return "asyncio", asyncio.run


def _direct(
    ctx: Any, port: int, calls: int, seconds: float, cmd_q: Any, port_q: Any
) -> tuple[dict[str, Any], list[float]]:
    """The peer: the same phones straight to the backend (loopback + scheduling floor)."""
    q = ctx.Queue()
    direct = ctx.Process(
        target=_phones_main,
        args=(f"ws://127.0.0.1:{port}/v1/realtime", calls, seconds / 2, True, q),
    )
    direct.start()
    peer: dict[str, Any] = q.get()
    direct.join()
    cmd_q.put("report")
    return peer, port_q.get()


def _bridged(
    ctx: Any,
    runner: Any,
    backend_url: str,
    calls: int,
    seconds: float,
    cmd_q: Any,
    port_q: Any,
    profile: bool = False,
) -> tuple[dict[str, Any], list[float]]:
    """One run of ``calls`` phones through the bridge; the bridge's figures and the
    latencies the backend measured."""
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
    run: dict[str, Any] = runner(_bridge_run(backend_url, calls, seconds, True))
    if profile:
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    cmd_q.put("report")
    return run, port_q.get()


def _kept_real_time(
    run: dict[str, Any], bridge_in: list[float], calls: int, seconds: float
) -> tuple[bool, float]:
    """Did the bridge keep up? Caller frames delivered (after each call's first second)
    and reply audio on time. CPU per call-second only means something when it did."""
    expected = calls * (seconds - 1.0) * (1000 / FRAME_MS)
    delivered = len(bridge_in) / expected if expected > 0 else 0.0
    return delivered >= 0.95 and _pct(run["outbound"], 50) < 50.0, delivered


def _print_latency(
    peer: dict[str, Any],
    peer_in: list[float],
    run: dict[str, Any],
    bridge_in: list[float],
    *,
    judged: bool,
) -> None:
    for name, peer_l, bridge_l in (
        ("backend -> phone", peer["outbound"], run["outbound"]),
        ("phone -> backend", peer_in, bridge_in),
    ):
        # conservative: the whole tail of the bridged path counts against the bridge
        p50 = _pct(bridge_l, 50) - _pct(peer_l, 50)
        p99 = _pct(bridge_l, 99) - _pct(peer_l, 50)
        verdict = f" (target p99 < 5: {_verdict(p99 < 5)})" if judged else ""
        print(
            f"  latency {name}: direct p50 {_pct(peer_l, 50):.2f} p99 {_pct(peer_l, 99):.2f} ms; "
            f"through the bridge p50 {_pct(bridge_l, 50):.2f} p99 {_pct(bridge_l, 99):.2f} ms; "
            f"added p50 {p50:.2f} p99 {p99:.2f} ms{verdict} [{len(bridge_l)} samples]"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--calls", type=int, default=50, help="concurrent calls of the latency run (default 50)"
    )
    parser.add_argument(
        "--capacity",
        type=int,
        default=200,
        help="concurrent calls of the capacity run (default 200, the target; 0 skips it)",
    )
    parser.add_argument("--seconds", type=float, default=12.0, help="length of each run")
    parser.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="the bridge's event loop (auto: uvloop when installed, as uvicorn does)",
    )
    parser.add_argument("--quick", action="store_true", help="10 calls for 6 s, no capacity run")
    parser.add_argument("--profile", action="store_true", help="print the bridge's top functions")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls, args.seconds, args.capacity = 10, 6.0, 0
    loop_name, runner = _loop_runner(args.loop)
    ctx = mp.get_context("spawn")
    port_q, cmd_q = ctx.Queue(), ctx.Queue()
    backend = ctx.Process(target=_backend_main, args=(port_q, cmd_q, True), daemon=True)
    backend.start()
    port = port_q.get(timeout=30)
    backend_url = f"ws://127.0.0.1:{port}/v1"
    print(
        f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores); "
        f"bridge event loop: {loop_name}"
    )
    try:
        peer, peer_in = _direct(ctx, port, args.calls, args.seconds, cmd_q, port_q)
        run, bridge_in = _bridged(
            ctx, runner, backend_url, args.calls, args.seconds, cmd_q, port_q, args.profile
        )
        big: tuple[dict[str, Any], list[float], dict[str, Any], list[float]] | None = None
        if args.capacity:
            big_peer, big_peer_in = _direct(ctx, port, args.capacity, args.seconds, cmd_q, port_q)
            cap, cap_in = _bridged(
                ctx, runner, backend_url, args.capacity, args.seconds, cmd_q, port_q
            )
            big = (cap, cap_in, big_peer, big_peer_in)
    finally:
        cmd_q.put("quit")
        backend.join(5)

    per_call_s = run["cpu"] / (run["wall"] * args.calls)
    real_time, delivered = _kept_real_time(run, bridge_in, args.calls, args.seconds)
    print(
        f"latency run: {args.calls} concurrent calls ({run['active']} active while measured), "
        f"{run['wall']:.1f} s measured, barge-in in every other reply"
    )
    print(
        f"  kept real time: {'yes' if real_time else 'NO'} ({delivered:.0%} of caller frames "
        f"delivered); bridge CPU {per_call_s * 1000:.2f} ms per call-second "
        f"({run['cpu'] / run['wall']:.0%} of one core); the phones' process used "
        f"{run['phones_cpu']:.0%} of a core"
    )
    _print_latency(peer, peer_in, run, bridge_in, judged=True)
    print(
        f"  barge-ins (clears seen by callers): {run['clears']}; stale audio heard after "
        f"clear: {run['stale_ms']:.0f} ms (target 0: {_verdict(run['stale_ms'] == 0)})"
    )
    if big is not None:
        cap, cap_in, big_peer, big_peer_in = big
        cap_per_call_s = cap["cpu"] / (cap["wall"] * args.capacity)
        core = cap["cpu"] / cap["wall"]
        kept, cap_delivered = _kept_real_time(cap, cap_in, args.capacity, args.seconds)
        print(
            f"capacity run: {args.capacity} concurrent calls ({cap['active']} active while "
            f"measured), {cap['wall']:.1f} s measured"
        )
        print(
            f"  kept real time: {'yes' if kept else 'NO'} ({cap_delivered:.0%} of caller frames "
            f"delivered); bridge CPU {cap_per_call_s * 1000:.2f} ms per call-second = "
            f"{core:.0%} of one core -> {args.capacity / core:.0f} real-time calls per core at "
            f"this load (target >= 200: {_verdict(kept and core <= 1.0)}); the phones' "
            f"process used {cap['phones_cpu']:.0%} of a core"
        )
        _print_latency(big_peer, big_peer_in, cap, cap_in, judged=False)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
