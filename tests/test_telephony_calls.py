"""Whole phone calls: simulator -> media-stream bridge -> local server, and back.

Every call runs in real time (the simulator speaks and plays at the pace of a phone line),
so each test takes a few seconds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from realtime.server import LocalServer
from realtime.server.responders import ScriptResponder
from realtime.telephony.app import PhoneServer, create_phone_app
from realtime.telephony.bridge import MediaStreamBridge, PhoneCall
from realtime.telephony.simulator import PhoneSimulator
from realtime.testing import FakeServer, close, delay, emit, expect, reply, session_created
from tests.server_kit import shared_engines

SAMPLES = Path(__file__).resolve().parents[1] / "share" / "samples"
DIALECTS = pytest.mark.parametrize("dialect", ["ga", "beta"])
SENTENCE = "This is a long answer that keeps talking for quite a while about the weather."
SCRIPT = """
rules:
  - when: "weather|paris"
    say: "It is sunny in Paris today."
  - when: "time|tokyo"
    call: {name: get_time, arguments: {city: Tokyo}}
    then: "It is {output[time]} in {args[city]}."
  - when: "pressed"
    say: "You pressed a key."
  - when: "hello|hear"
    say: "Yes, I can hear you."
default: "Sorry?"
"""
LONG_SCRIPT = SCRIPT.replace("It is sunny in Paris today.", " ".join([SENTENCE] * 6))


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer(
        port=0, engines=shared_engines(), responder=ScriptResponder.from_yaml(SCRIPT)
    ) as srv:
        yield srv


@pytest.fixture
async def long_server() -> AsyncIterator[LocalServer]:
    async with LocalServer(
        port=0, engines=shared_engines(), responder=ScriptResponder.from_yaml(LONG_SCRIPT)
    ) as srv:
        yield srv


@asynccontextmanager
async def dial(bridge: MediaStreamBridge, **options: Any) -> AsyncIterator[PhoneSimulator]:
    """A phone server for ``bridge`` and a simulated caller on it."""
    async with (
        PhoneServer(create_phone_app(bridge)) as ps,
        PhoneSimulator(ps.stream_url, **options) as phone,
    ):
        yield phone


async def only_call(bridge: MediaStreamBridge, timeout: float = 5.0) -> PhoneCall:
    """The call in progress (waits for it to start)."""
    for _ in range(int(timeout / 0.02)):
        if bridge.active:
            call = next(iter(bridge.active))
            if call.session is not None and call.session.is_open:
                return call
        await asyncio.sleep(0.02)
    raise AssertionError("no call started")


async def ended(bridge: MediaStreamBridge, timeout: float = 10.0) -> PhoneCall:
    """The record of the last call, once it is over."""
    for _ in range(int(timeout / 0.02)):
        if bridge.calls and not bridge.active:
            return bridge.calls[-1]
        await asyncio.sleep(0.02)
    raise AssertionError("the call did not end")


def assistant_items(call: PhoneCall) -> list[Any]:
    assert call.session is not None
    return [i for i in call.session.conversation.items if i.role == "assistant"]


@DIALECTS
async def test_question_answered(server: LocalServer, dialect: str) -> None:
    """The caller asks, hears the whole answer; call metadata reached the session."""
    bridge = MediaStreamBridge(connect={"url": server.url, "dialect": dialect})
    params = {"From": "+15550100", "account": "gold"}
    async with dial(bridge, custom_parameters=params) as phone:
        call = await only_call(bridge)
        await phone.say(SAMPLES / "question.wav")
        await phone.wait_heard(500)
        await phone.wait_quiet(0.6)
        replies = assistant_items(call)
        assert [r.transcript for r in replies] == ["It is sunny in Paris today."]
        # everything received was played, at the pace of the line
        assert phone.heard_items == [replies[0].id]
        assert abs(phone.heard_of(replies[0].id) - replies[0].audio_ms) < 1.0
        assert phone.clears == [] and phone.stale_ms == 0
        # the session ran in the stream's own format (mu-law passes through)
        server_session = call.session.server_session if call.session else None
        if dialect == "ga":
            assert server_session.audio.output.format.type == "audio/pcmu"
            instructions = server_session.instructions
        else:
            assert server_session.output_audio_format == "g711_ulaw"
            instructions = server_session.instructions
        assert "+15550100" in instructions and "account: gold" in instructions
        assert phone.call_sid in instructions
    record = await ended(bridge)
    assert record.ended_by == "caller" and record.error is None
    assert record.tracker is not None
    assert record.tracker.marks_acknowledged == record.tracker.marks_sent > 0
    assert record.session is not None and not record.session.is_open


async def test_tool_call(server: LocalServer) -> None:
    """A spoken question leads to a tool call; its result is spoken to the caller."""
    calls: list[str] = []

    def get_time(city: str) -> dict[str, str]:
        """The local time in a city."""
        calls.append(city)
        return {"time": "nine in the evening"}

    bridge = MediaStreamBridge(connect={"url": server.url}, tools=[get_time])
    async with dial(bridge) as phone:
        call = await only_call(bridge)
        await phone.say(SAMPLES / "tool_call.wav")
        await phone.wait_heard(500)
        await phone.wait_quiet(0.6)
        assert calls == ["Tokyo"]
        replies = [r for r in assistant_items(call) if r.type == "message"]
        assert replies[-1].transcript == "It is nine in the evening in Tokyo."
        assert abs(phone.heard_of(replies[-1].id) - replies[-1].audio_ms) < 1.0


@DIALECTS
async def test_barge_in_leaves_no_stale_audio(long_server: LocalServer, dialect: str) -> None:
    """The caller talks over a long reply: clear, truncate where heard, nothing stale after."""
    bridge = MediaStreamBridge(connect={"url": long_server.url, "dialect": dialect})
    async with dial(bridge) as phone:
        call = await only_call(bridge)
        await phone.say(SAMPLES / "question.wav")
        await phone.wait_heard(1500)
        first = phone.heard_items[0]
        await phone.say(SAMPLES / "greeting.wav")
        await phone.wait_until(lambda: len(phone.heard_items) == 2)
        await phone.wait_quiet(0.6)
        assert call.session is not None
        decision = call.session.last_interruption
        assert decision is not None and decision.item_id == first
        assert len(phone.clears) == 1 and first in phone.clears[0].items
        assert phone.clears[0].dropped_ms > 1000  # most of the long reply never played
        assert phone.stale_ms == 0
        # truncated where the caller was: what they heard up to the clear
        heard_at_clear = sum(
            c.ms for c in phone.heard if c.item_id == first and c.t <= phone.clears[0].t
        )
        assert decision.audio_end_ms is not None
        assert heard_at_clear - 100 <= decision.audio_end_ms <= heard_at_clear + 20
        item = call.session.conversation[first]
        assert item.audio_ms == pytest.approx(decision.audio_end_ms, abs=1)
        # the answer to the interruption was heard in full
        replies = assistant_items(call)
        assert replies[-1].transcript == "Yes, I can hear you."
        assert abs(phone.heard_of(replies[-1].id) - replies[-1].audio_ms) < 1.0


async def test_hang_up_mid_reply_ends_the_session(long_server: LocalServer) -> None:
    """Hanging up while the reply plays closes the session cleanly, on both ends."""
    bridge = MediaStreamBridge(connect={"url": long_server.url})
    async with PhoneServer(create_phone_app(bridge)) as ps:
        phone = PhoneSimulator(ps.stream_url)
        await phone.dial()
        call = await only_call(bridge)
        await phone.say(SAMPLES / "question.wav")
        await phone.wait_heard(500)
        await phone.hang_up()
        record = await ended(bridge)
        assert record is call and record.ended_by == "caller" and record.error is None
        assert call.session is not None and not call.session.is_open
        for _ in range(100):
            if not long_server.state.sessions:
                break
            await asyncio.sleep(0.02)
        assert not long_server.state.sessions


async def test_dtmf_reaches_handlers_and_session(server: LocalServer) -> None:
    """Key presses go to the handler and, as text, to the session, which answers."""
    pressed: list[tuple[str, str]] = []
    bridge = MediaStreamBridge(
        connect={"url": server.url},
        on_dtmf=lambda call, digit: pressed.append((call.info.call_sid, digit)),
        dtmf_text="The caller pressed {digit} on the keypad.",
    )
    async with dial(bridge) as phone:
        call = await only_call(bridge)
        await phone.press("5#")
        await phone.wait_heard(300)
        await phone.wait_quiet(0.6)
        assert pressed == [(phone.call_sid, "5"), (phone.call_sid, "#")]
        assert call.digits == ["5", "#"]
        assert call.session is not None
        users = [i for i in call.session.conversation.items if i.role == "user"]
        assert [u.text for u in users] == [
            "The caller pressed 5 on the keypad.",
            "The caller pressed # on the keypad.",
        ]
        assert "You pressed a key." in [r.transcript for r in assistant_items(call)]


def tone(ms: int) -> bytes:
    t = np.arange(24 * ms) / 24000.0
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


async def test_session_failure_apologizes_and_hangs_up() -> None:
    """A session that dies mid-call ends the call after the spoken apology."""
    script = [
        emit(session_created("ga")),
        expect("session.update"),
        reply(lambda ev: {"type": "session.updated", "session": ev["session"]}),
        delay(0.5),
        close(1011, "internal error"),
    ]
    async with FakeServer(script) as fake:
        bridge = MediaStreamBridge(connect={"url": fake.url}, apology=tone(400))
        async with PhoneServer(create_phone_app(bridge)) as ps:
            phone = PhoneSimulator(ps.stream_url)
            await phone.dial()
            await asyncio.wait_for(phone.closed.wait(), 10)
            record = await ended(bridge)
            assert record.ended_by == "session" and record.apologized
            assert "1011" in (record.error or "")
            assert phone.heard_ms == pytest.approx(400, abs=1)
            assert phone.marks_acknowledged[-1] == "apology"
            await phone.hang_up()


async def test_unreachable_backend_apologizes() -> None:
    """When no session can be opened the caller still hears the apology."""
    bridge = MediaStreamBridge(
        connect={"url": "ws://127.0.0.1:9/v1", "connect_timeout": 2.0}, apology=tone(200)
    )
    async with PhoneServer(create_phone_app(bridge)) as ps:
        phone = PhoneSimulator(ps.stream_url)
        await phone.dial()
        await asyncio.wait_for(phone.closed.wait(), 10)
        record = await ended(bridge)
        assert record.ended_by == "session" and record.apologized
        assert "could not open" in (record.error or "")
        assert phone.heard_ms == pytest.approx(200, abs=1)
        await phone.hang_up()


async def test_incoming_call_webhook_answers_with_twiml() -> None:
    """POST /incoming-call connects the call to /media-stream with its details as parameters."""
    import httpx

    bridge = MediaStreamBridge(connect={"url": "ws://127.0.0.1:9/v1"})
    app = create_phone_app(bridge)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://phone.example") as c:
        r = await c.post(
            "/incoming-call",
            data={"From": "+15550100", "To": "+15550199", "CallSid": "CA1", "Body": "x"},
            headers={"x-forwarded-proto": "https"},
        )
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    import xml.etree.ElementTree as ET

    root = ET.fromstring(r.text)
    stream = root.find("./Connect/Stream")
    assert stream is not None and stream.get("url") == "wss://phone.example/media-stream"
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params == {"From": "+15550100", "To": "+15550199", "CallSid": "CA1"}
    assert json.dumps(params)  # plain strings


async def test_key_press_interrupts_the_reply(long_server: LocalServer) -> None:
    """With dtmf_interrupts, a key pressed during a reply stops it via Session.interrupt()."""
    bridge = MediaStreamBridge(connect={"url": long_server.url}, dtmf_interrupts=True)
    async with dial(bridge) as phone:
        call = await only_call(bridge)
        await phone.say(SAMPLES / "question.wav")
        await phone.wait_heard(1000)
        first = phone.heard_items[0]
        await phone.press("0")
        await phone.wait_until(lambda: bool(phone.clears))
        await asyncio.sleep(0.5)
        assert call.session is not None and call.digits == ["0"]
        decision = call.session.last_interruption
        assert decision is not None and decision.item_id == first
        assert decision.audio_end_ms is not None and decision.audio_end_ms >= 900
        assert phone.stale_ms == 0 and first in phone.clears[0].items
        assert call.session.conversation[first].audio_ms == pytest.approx(
            decision.audio_end_ms, abs=1
        )


@pytest.mark.parametrize(
    ("encoding", "rate", "session_format"),
    [("audio/x-alaw", 8000, "g711_alaw"), ("audio/l16", 16000, "pcm16")],
)
async def test_other_stream_formats(
    server: LocalServer, encoding: str, rate: int, session_format: str
) -> None:
    """A-law passes through as well; linear PCM at 16 kHz is converted both ways."""
    from realtime.telephony.messages import MediaFormat

    bridge = MediaStreamBridge(connect={"url": server.url})
    async with dial(bridge, media_format=MediaFormat(encoding, rate)) as phone:
        call = await only_call(bridge)
        await phone.say(SAMPLES / "question.wav")
        await phone.wait_heard(500)
        await phone.wait_quiet(0.6)
        assert call.session is not None and call.session.config is not None
        assert call.session.config.output_format == session_format
        replies = assistant_items(call)
        assert [r.transcript for r in replies] == ["It is sunny in Paris today."]
        heard = phone.heard_of(replies[0].id)
        assert abs(heard - replies[0].audio_ms) < 5.0  # the resampler's tail at most
        assert len(phone.heard_pcm16()) == pytest.approx(heard * rate / 1000 * 2, abs=4)


async def test_barge_in_while_the_reply_is_still_streaming() -> None:
    """Reply audio paced in real time (the response is still active at the barge-in)."""
    async with LocalServer(
        port=0,
        engines=shared_engines(),
        responder=ScriptResponder.from_yaml(LONG_SCRIPT),
        pace_audio=True,
    ) as paced:
        bridge = MediaStreamBridge(connect={"url": paced.url})
        async with dial(bridge) as phone:
            call = await only_call(bridge)
            await phone.say(SAMPLES / "question.wav")
            await phone.wait_heard(1500)
            first = phone.heard_items[0]
            await phone.say(SAMPLES / "greeting.wav")
            await phone.wait_until(lambda: len(phone.heard_items) == 2)
            await phone.wait_quiet(0.6)
            assert call.session is not None
            decision = call.session.last_interruption
            assert decision is not None and decision.item_id == first
            assert decision.audio_end_ms is not None
            assert decision.received_ms > decision.audio_end_ms  # unheard audio was dropped
            assert phone.stale_ms == 0
            item = call.session.conversation[first]
            assert item.audio_ms == pytest.approx(decision.audio_end_ms, abs=1)
            assert assistant_items(call)[-1].transcript == "Yes, I can hear you."
