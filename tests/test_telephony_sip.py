"""SIP call control: Standard Webhooks verification, the webhook receiver, the call-control
client, and the whole flow offline against the local server (webhook -> accept -> attach ->
hang up; reject; refer)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from realtime.events.calls import (
    CallReferRequest,
    CallRejectRequest,
    RealtimeCallIncomingEvent,
    accept_body,
    parse_webhook_event,
)
from realtime.events.common import ServerVad
from realtime.events.config import SessionConfig
from realtime.exceptions import ConfigError, ConnectionError, ProtocolError
from realtime.server import LocalServer
from realtime.server.calls import simulate_incoming_call
from realtime.server.responders import ScriptResponder
from realtime.telephony import (
    CallControl,
    CallControlError,
    InvalidSignature,
    ReplayedWebhook,
    StaleTimestamp,
    WebhookReceiver,
    WebhookVerifier,
    new_webhook_secret,
    sign_webhook,
    webhook_headers,
)
from realtime.telephony.app import PhoneServer
from tests.server_kit import shared_engines
from tests.spec_kit import load_spec

SAMPLES = Path(__file__).resolve().parents[1] / "share" / "samples"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- Standard Webhooks -----------------------------------------------------------------------


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    """The scheme's published example: same secret, id, timestamp and body, same signature."""
    sig = sign_webhook(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_verify_accepts_genuine_deliveries_once() -> None:
    clock = Clock(1_700_000_000)
    verifier = WebhookVerifier(SECRET, clock=clock)
    body = b'{"type":"realtime.call.incoming"}'
    headers = webhook_headers(SECRET, body, timestamp=int(clock.now))
    verifier.verify(body, headers)
    with pytest.raises(ReplayedWebhook):  # the same delivery again
        verifier.verify(body, headers)
    # capitalised header names (a plain dict) work too
    other = webhook_headers(SECRET, body, timestamp=int(clock.now))
    verifier.verify(body, {k.title(): v for k, v in other.items()})


@pytest.mark.parametrize(
    "tamper",
    [
        lambda b, h: (b + b" ", h),
        lambda b, h: (b, {**h, "webhook-id": "msg_other"}),
        lambda b, h: (b, {**h, "webhook-signature": "v1,AAAA"}),
        lambda b, h: (b, {**h, "webhook-signature": "v2," + h["webhook-signature"][3:]}),
        lambda b, h: (b, {**h, "webhook-signature": ""}),
        lambda b, h: (b, {k: v for k, v in h.items() if k != "webhook-id"}),
        lambda b, h: (b, {**h, "webhook-timestamp": "soon"}),
    ],
)
def test_verify_rejects_bad_signatures(tamper: Any) -> None:
    clock = Clock(1_700_000_000)
    body = b'{"a":1}'
    headers = webhook_headers(SECRET, body, timestamp=int(clock.now))
    body, headers = tamper(body, headers)
    with pytest.raises(InvalidSignature):
        WebhookVerifier(SECRET, clock=clock).verify(body, headers)


@pytest.mark.parametrize("offset", [-301, 301, -86400])
def test_verify_rejects_stale_timestamps(offset: int) -> None:
    clock = Clock(1_700_000_000)
    body = b"{}"
    headers = webhook_headers(SECRET, body, timestamp=int(clock.now) + offset)
    with pytest.raises(StaleTimestamp):
        WebhookVerifier(SECRET, clock=clock).verify(body, headers)
    near = max(-299, min(299, offset))
    headers = webhook_headers(SECRET, body, timestamp=int(clock.now) + near)
    WebhookVerifier(SECRET, clock=clock).verify(body, headers)  # within tolerance


def test_key_rotation_and_bounded_replay_memory() -> None:
    """Several signatures/secrets may be in play; remembered ids are bounded."""
    clock = Clock(1_700_000_000)
    new = new_webhook_secret()
    body = b"{}"
    h = webhook_headers(new, body, timestamp=int(clock.now))
    both = {**h, "webhook-signature": "v1,bm9wZQ== " + h["webhook-signature"]}
    WebhookVerifier([SECRET, new], clock=clock).verify(body, both)
    small = WebhookVerifier(SECRET, clock=clock, max_remembered=2)
    first = webhook_headers(SECRET, body, timestamp=int(clock.now))
    small.verify(body, first)
    for _ in range(2):
        small.verify(body, webhook_headers(SECRET, body, timestamp=int(clock.now)))
    small.verify(body, first)  # forgotten (bounded memory); the timestamp check still applies
    clock.now += 1000
    with pytest.raises(StaleTimestamp):
        small.verify(body, first)
    with pytest.raises(ValueError):
        WebhookVerifier("whsec_not base64!")


# -- models and spec -------------------------------------------------------------------------


def test_incoming_call_event_matches_the_spec() -> None:
    """The spec's schema and example; the example has a trailing comma (invalid JSON)."""
    spec = load_spec("ga")
    schema = spec["components"]["schemas"]["WebhookRealtimeCallIncoming"]
    assert set(schema["required"]) == {"created_at", "id", "data", "type"}
    assert set(schema["properties"]["data"]["required"]) == {"call_id", "sip_headers"}
    example = schema["x-oaiMeta"]["example"]
    with pytest.raises(ValueError):
        json.loads(example)  # the documented sample is not valid JSON: a trailing comma
    with pytest.raises(ProtocolError):
        parse_webhook_event(example)
    fixed = re.sub(r",(\s*[\]}])", r"\1", example)
    event = parse_webhook_event(fixed)
    assert isinstance(event, RealtimeCallIncomingEvent)
    assert event.data.call_id == "rtc_479a275623b54bdb9b6fbae2f7cbd408"
    assert event.data.header("cseq") == "851287 INVITE"
    assert event.data.header("Via") is None
    with pytest.raises(ProtocolError, match="data"):
        parse_webhook_event('{"id":"e","type":"realtime.call.incoming","created_at":1,"data":{}}')
    other = parse_webhook_event('{"id":"e","type":"response.completed","created_at":1,"data":{}}')
    assert other.type == "response.completed"


def test_call_request_bodies_match_the_spec() -> None:
    schemas = load_spec("ga")["components"]["schemas"]
    refer, rejected = schemas["RealtimeCallReferRequest"], schemas["RealtimeCallRejectRequest"]
    assert refer["required"] == ["target_uri"] and refer["additionalProperties"] is False
    assert set(CallReferRequest.model_fields) == set(refer["properties"])
    assert set(CallRejectRequest.model_fields) == set(rejected["properties"])
    assert CallReferRequest(target_uri=refer["properties"]["target_uri"]["example"])
    assert CallRejectRequest(status_code=rejected["properties"]["status_code"]["example"])
    paths = load_spec("ga")["paths"]
    accept = paths["/realtime/calls/{call_id}/accept"]["post"]["requestBody"]
    assert accept["content"]["application/json"]["schema"]["$ref"].endswith(
        "RealtimeSessionCreateRequestGA"
    )
    body = accept_body(SessionConfig(instructions="Hi", voice="marin"), "gpt-realtime")
    assert body == {
        "type": "realtime",
        "instructions": "Hi",
        "audio": {"output": {"voice": "marin"}},
        "model": "gpt-realtime",
    }
    with pytest.raises(ConfigError):
        accept_body(SessionConfig(kind="transcription"), None)


# -- the receiver as an ASGI app -------------------------------------------------------------


async def test_receiver_answers_as_an_asgi_app() -> None:
    receiver = WebhookReceiver(SECRET)
    seen: list[str] = []

    @receiver.on_incoming_call
    async def ring(event: RealtimeCallIncomingEvent) -> None:
        seen.append(event.data.call_id)

    def boom(event: Any) -> None:
        raise RuntimeError("nope")

    receiver.on("response.failed", boom)
    body = json.dumps(
        {
            "id": "evt_1",
            "type": "realtime.call.incoming",
            "created_at": 1,
            "data": {"call_id": "rtc_1", "sip_headers": []},
        }
    ).encode()
    app = Starlette(routes=[Route("/hook", receiver, methods=["POST", "GET"])])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://app"
    ) as client:
        r = await client.post("/hook", content=body, headers=webhook_headers(SECRET, body))
        assert r.status_code == 200 and seen == ["rtc_1"]
        r = await client.post(
            "/hook", content=body, headers=webhook_headers("whsec_" + "QUFB" * 8, body)
        )
        assert r.status_code == 400 and seen == ["rtc_1"] and receiver.rejected == 1
        r = await client.post(
            "/hook", content=b"not json", headers=webhook_headers(SECRET, b"not json")
        )
        assert r.status_code == 400
        failed = json.dumps({"id": "e2", "type": "response.failed", "created_at": 1}).encode()
        r = await client.post("/hook", content=failed, headers=webhook_headers(SECRET, failed))
        assert r.status_code == 500
        assert (await client.get("/hook")).status_code == 405
        big = b"x" * (receiver.max_body + 1)
        assert (await client.post("/hook", content=big)).status_code == 413


# -- the whole flow against the local server -------------------------------------------------

SCRIPT = """
rules:
  - when: "weather|paris"
    say: "It is sunny in Paris today."
default: "Sorry?"
"""


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer(
        port=0, engines=shared_engines(), responder=ScriptResponder.from_yaml(SCRIPT)
    ) as srv:
        yield srv


async def webhook_app(server: LocalServer, receiver: WebhookReceiver) -> PhoneServer:
    app = Starlette(routes=[Route("/webhook", receiver, methods=["POST"])])
    ps = PhoneServer(app)
    await ps.start()
    return ps


async def test_incoming_call_accepted_answered_and_hung_up(server: LocalServer) -> None:
    """Webhook -> accept with a config -> attach (?call_id=) -> the caller is answered -> hangup."""
    control = CallControl(base_url=server.http_url)
    receiver = WebhookReceiver(server.state.calls.secret)
    done: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()

    async def converse(call_id: str) -> None:
        transcripts: list[str] = []
        async with control.attach(call_id) as session:
            async for event in session:
                if event.type == "response.output_audio_transcript.done":
                    transcripts.append(event.transcript)  # type: ignore[attr-defined]
                    break
        await control.hangup(call_id)
        done.set_result(transcripts)

    @receiver.on_incoming_call
    async def answer(event: RealtimeCallIncomingEvent) -> None:
        config = SessionConfig(
            instructions="You are the front desk.",
            turn_detection=ServerVad(type="server_vad", create_response=True),
        )
        await control.accept(event.data.call_id, config)
        asyncio.get_running_loop().create_task(converse(event.data.call_id))

    ps = await webhook_app(server, receiver)
    try:
        call = await simulate_incoming_call(
            server.state, ps.url + "/webhook", SAMPLES / "question.wav"
        )
        assert call.webhook_status == 200
        assert receiver.events[0].data.call_id == call.call_id  # type: ignore[attr-defined]
        assert await asyncio.wait_for(done, 60) == ["It is sunny in Paris today."]
        await asyncio.wait_for(call.ended.wait(), 10)
        assert call.status == "ended"
        assert call.config is not None and call.config["instructions"] == "You are the front desk."
        assert call.transcripts == ["It is sunny in Paris today."]
        assert call.heard_ms > 500  # the reply reached the caller's ear
        with pytest.raises(CallControlError) as info:
            await control.hangup(call.call_id)  # already over
        assert info.value.status == 400
    finally:
        await ps.stop()
        await control.aclose()


async def test_incoming_call_rejected(server: LocalServer) -> None:
    control = CallControl(base_url=server.http_url)
    receiver = WebhookReceiver(server.state.calls.secret)

    @receiver.on_incoming_call
    async def busy(event: RealtimeCallIncomingEvent) -> None:
        await control.reject(event.data.call_id, 486)

    ps = await webhook_app(server, receiver)
    try:
        call = await simulate_incoming_call(
            server.state, ps.url + "/webhook", SAMPLES / "greeting.wav"
        )
        assert call.webhook_status == 200
        assert (call.status, call.reject_status) == ("rejected", 486)
        with pytest.raises(ConnectionError):  # nothing to attach to
            async with control.attach(call.call_id):
                pass
        with pytest.raises(CallControlError) as info:
            await control.accept(call.call_id)
        assert info.value.status == 400
    finally:
        await ps.stop()
        await control.aclose()


async def test_call_referred_and_bad_webhook_refused(server: LocalServer) -> None:
    control = CallControl(base_url=server.http_url)
    receiver = WebhookReceiver(server.state.calls.secret)
    calls: list[str] = []

    @receiver.on_incoming_call
    async def transfer(event: RealtimeCallIncomingEvent) -> None:
        calls.append(event.data.call_id)
        await control.accept(event.data.call_id, {"type": "realtime", "instructions": "x"})
        await control.refer(event.data.call_id, "tel:+14155550123")

    ps = await webhook_app(server, receiver)
    try:
        call = await simulate_incoming_call(
            server.state, ps.url + "/webhook", SAMPLES / "greeting.wav"
        )
        assert (call.status, call.refer_target) == ("referred", "tel:+14155550123")
        # a receiver with the wrong secret refuses the delivery and never acts on it
        server.state.calls.secret = new_webhook_secret()
        forged = await simulate_incoming_call(
            server.state, ps.url + "/webhook", SAMPLES / "greeting.wav"
        )
        assert forged.webhook_status == 400 and forged.status == "ringing"
        assert calls == [call.call_id]
    finally:
        await ps.stop()
        await control.aclose()


async def test_call_control_errors(server: LocalServer) -> None:
    """Unknown calls, bad bodies and bad states get clear errors, client- and server-side."""
    async with CallControl(base_url=server.http_url) as control:
        with pytest.raises(CallControlError) as info:
            await control.accept("rtc_unknown", {"type": "realtime"})
        assert info.value.status == 404
        with pytest.raises(ConfigError):
            await control.refer("rtc_x", "http://not-sip")
        with pytest.raises(ConfigError):
            await control.reject("rtc_x", 42)
    call = server.state.calls.new_call(b"")
    base = f"{server.http_url}/realtime/calls/{call.call_id}"
    async with httpx.AsyncClient() as client:
        for action, body in [
            ("accept", {"instructions": "no type"}),
            ("accept", {"type": "transcription"}),
            ("accept", {"type": "realtime", "audio": {"output": {"format": {"type": "mp3"}}}}),
            ("reject", {"status_code": 42}),
            ("reject", {"status_code": 486, "reason": "busy"}),
            ("refer", {"target_uri": "http://x"}),
            ("refer", {"target_uri": "tel:+1"}),  # valid body, but the call is still ringing
            ("hangup", None),  # not answered yet
        ]:
            r = await client.post(f"{base}/{action}", json=body)
            assert r.status_code == 400, (action, body, r.text)
            assert r.json()["error"]["type"] == "invalid_request_error"
        r = await client.post(f"{base}/accept", content=b"{oops")
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
        assert call.status == "ringing"
        assert (await client.post(f"{base}/accept", json={"type": "realtime"})).status_code == 200
        assert call.status == "accepted"


async def test_call_control_requires_the_key() -> None:
    async with LocalServer(port=0, engines=shared_engines(), api_key="sk-local") as srv:
        call = srv.state.calls.new_call(b"")
        async with CallControl(api_key="sk-wrong", base_url=srv.http_url) as bad:
            with pytest.raises(CallControlError) as info:
                await bad.hangup(call.call_id)
            assert info.value.status == 401
        async with CallControl(api_key="sk-local", base_url=srv.http_url) as good:
            await good.reject(call.call_id)
        assert (call.status, call.reject_status) == ("rejected", 603)


async def test_registry_bounds_and_missed_calls() -> None:
    """Unanswered calls are missed after the ring time; finished calls make room."""
    from realtime.server.app import ServerState
    from realtime.server.calls import CallRegistry

    registry = CallRegistry(max_calls=2, ring_seconds=0.05)
    first = registry.new_call(b"")
    second = registry.new_call(b"")
    with pytest.raises(RuntimeError, match="too many calls"):
        registry.new_call(b"")
    await asyncio.wait_for(first.ended.wait(), 2)
    assert first.status == second.status == "missed"
    third = registry.new_call(b"")  # the missed ones are forgotten first
    assert first.call_id not in registry.calls and registry.get(third.call_id) is third
    assert registry.attach(third.call_id) is None  # ringing: nothing to attach to yet
    state = ServerState(calls=CallRegistry())
    call = await simulate_incoming_call(state, "http://127.0.0.1:9/webhook", b"\0\0" * 2400)
    assert call.webhook_status is None and call.status == "ringing"
