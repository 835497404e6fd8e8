"""The bridge against an in-memory phone socket and a scripted fake backend (fast, no engines)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from realtime.events.config import SessionConfig
from realtime.telephony.bridge import CallInfo, MediaStreamBridge, PhoneCall
from realtime.telephony.messages import (
    MediaFormat,
    MediaMessage,
    StartMessage,
    StopMessage,
    encode_message,
)
from realtime.testing import FakeServer, ServerEvents, expect, reply, session_created


class MemoryPhone:
    """A PhoneSocket fed from a queue; records what the bridge sends and how it closed."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None

    async def receive(self) -> str | None:
        return await self.inbox.get()

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed is None:
            self.closed = (code, reason)

    def put(self, *texts: str | None) -> None:
        for text in texts:
            self.inbox.put_nowait(text)


def start(fmt: MediaFormat | None = None, **params: str) -> str:
    return encode_message(
        StartMessage(
            "MZ1", "CA1", "AC1", custom_parameters=params, media_format=fmt or MediaFormat()
        )
    )


ULAW = base64.b64encode(b"\xff" * 160).decode()


async def test_no_start_ends_the_call() -> None:
    bridge = MediaStreamBridge(connect={"url": "ws://127.0.0.1:9/v1"}, start_timeout=0.2)
    phone = MemoryPhone()
    call = await bridge.handle(phone)
    assert (call.ended_by, phone.closed) == ("bridge", (1000, "no start"))
    assert call.error is not None and "before 'start'" in call.error
    phone = MemoryPhone()
    phone.put('{"event":"connected"}', "garbage", encode_message(StopMessage("MZ1")))
    call = await bridge.handle(phone)
    assert call.ended_by == "caller" and call.bad_messages == 1
    assert list(bridge.calls)[-1] is call and not bridge.active


async def test_unsupported_format_is_refused() -> None:
    bridge = MediaStreamBridge(connect={"url": "ws://127.0.0.1:9/v1"})
    phone = MemoryPhone()
    phone.put(start(MediaFormat("audio/opus", 48000)))
    call = await bridge.handle(phone)
    assert call.ended_by == "bridge" and phone.closed == (1003, "unsupported media format")
    assert call.error is not None and "audio/opus" in call.error


def test_session_config_carries_call_details() -> None:
    info = CallInfo("MZ1", "CA1", "AC1", {"From": "+15550100"}, "audio/x-mulaw", 8000)
    bridge = MediaStreamBridge(
        config=SessionConfig(voice="marin"), instructions="You are the front desk."
    )
    cfg = bridge.session_config(info, "g711_ulaw")
    assert (cfg.input_format, cfg.output_format, cfg.voice) == ("g711_ulaw", "g711_ulaw", "marin")
    assert cfg.instructions is not None
    assert cfg.instructions.startswith("You are the front desk.")
    assert "call id: CA1" in cfg.instructions and "From: +15550100" in cfg.instructions
    assert cfg.turn_detection is not None and cfg.turn_detection.interrupt_response is True
    wire = cfg.to_wire("ga")
    assert wire["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert cfg.to_wire("beta")["output_audio_format"] == "g711_ulaw"

    def configure(info: CallInfo, config: SessionConfig) -> SessionConfig:
        config.instructions = f"Caller {info.custom_parameters['From']}."
        config.turn_detection = None
        return config

    cfg = MediaStreamBridge(configure=configure).session_config(info, "g711_ulaw")
    assert cfg.instructions == "Caller +15550100." and cfg.turn_detection is None


async def test_audio_both_ways_bad_messages_skipped_and_hang_up() -> None:
    """Caller audio passes through untouched; reply audio goes out with marks; bad input is
    skipped without ending the call; ``stop`` closes the session."""
    ev = ServerEvents("ga")
    reply_audio = base64.b64encode(b"\x7f" * 800).decode()
    script = [
        expect("session.update"),
        reply(
            lambda e: {
                "type": "session.updated",
                "session": {**session_created("ga")["session"], **e["session"]},
            }
        ),
        expect("input_audio_buffer.append"),
        reply(
            lambda _e: [
                ev.response_created("resp_1"),
                ev.output_item_added("resp_1", ev.message_item("item_1")),
                {**ev.audio_delta("resp_1", "item_1", b""), "delta": reply_audio},
            ]
        ),
    ]
    async with FakeServer(script) as fake:
        bridge = MediaStreamBridge(connect={"url": fake.url})
        phone = MemoryPhone()
        phone.put(start(), '{"event":"media","media":{"payload":"@@"}}', "[]")
        phone.put(encode_message(MediaMessage("MZ1", ULAW, track="inbound")))
        task = asyncio.create_task(bridge.handle(phone))
        for _ in range(200):
            if any(m["event"] == "mark" for m in phone.sent):
                break
            await asyncio.sleep(0.02)
        media = [m for m in phone.sent if m["event"] == "media"]
        marks = [m for m in phone.sent if m["event"] == "mark"]
        assert [m["media"]["payload"] for m in media] == [reply_audio]  # untouched
        assert [m["mark"]["name"] for m in marks] == ["item_1.1"]
        phone.put('{"event":"mark","streamSid":"MZ1","mark":{"name":"item_1.1"}}')
        phone.put(encode_message(StopMessage("MZ1")))
        call: PhoneCall = await asyncio.wait_for(task, 10)
        appends = [e for e in fake.received if e["type"] == "input_audio_buffer.append"]
        assert [a["audio"] for a in appends] == [ULAW]  # untouched
        assert call.ended_by == "caller" and call.bad_messages == 2
        assert call.tracker is not None and call.tracker.marks_acknowledged == 1
        assert call.session is not None and not call.session.is_open
        assert phone.closed == (1000, "call ended")


@pytest.mark.parametrize("digits", ["1", "*#"])
async def test_dtmf_handlers_errors_do_not_end_the_call(digits: str) -> None:
    seen: list[str] = []

    def bad(call: PhoneCall, digit: str) -> None:
        raise RuntimeError("handler bug")

    async def good(call: PhoneCall, digit: str) -> None:
        seen.append(digit)

    script = [
        expect("session.update"),
        reply(
            lambda e: {
                "type": "session.updated",
                "session": {**session_created("ga")["session"], **e["session"]},
            }
        ),
    ]
    async with FakeServer(script) as fake:
        bridge = MediaStreamBridge(connect={"url": fake.url}, on_dtmf=[bad, good])
        phone = MemoryPhone()
        phone.put(start())
        for d in digits:
            phone.put(json.dumps({"event": "dtmf", "streamSid": "MZ1", "dtmf": {"digit": d}}))
        phone.put(encode_message(StopMessage("MZ1")))
        call = await asyncio.wait_for(bridge.handle(phone), 10)
        await asyncio.sleep(0.05)
        assert call.digits == list(digits) and seen == list(digits)
        assert call.ended_by == "caller"


async def test_a_failing_configure_hook_ends_only_that_call() -> None:
    def configure(info: CallInfo, config: SessionConfig) -> SessionConfig:
        raise KeyError("tier")

    bridge = MediaStreamBridge(connect={"url": "ws://127.0.0.1:9/v1"}, configure=configure)
    phone = MemoryPhone()
    phone.put(start())
    call = await asyncio.wait_for(bridge.handle(phone), 10)
    assert call.ended_by == "bridge" and call.error is not None and "KeyError" in call.error
    assert phone.closed is not None and not bridge.active
