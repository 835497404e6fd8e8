"""Tests for realtime.interruption, and the purity of the sans-I/O session core modules."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from audio.playback import HeardPosition, PlaybackTracker
from realtime.events import ServerEvent, encode_client_event, parse_server_event
from realtime.interruption import AudioProgress, OutputAudioLog, plan_interruption

AUDIO_DELTA = {"beta": "response.audio.delta", "ga": "response.output_audio.delta"}
DIALECTS = ["beta", "ga"]
REPO = Path(__file__).resolve().parents[1]


def ev(dialect: str, **fields: Any) -> ServerEvent:
    """Parse a server event of ``dialect`` from keyword fields."""
    fields.setdefault("event_id", "evt_s")
    return parse_server_event(json.dumps(fields), dialect)  # type: ignore[arg-type]


def audio_delta(dialect: str, item_id: str, ms: int, content_index: int = 0) -> ServerEvent:
    """An output audio delta carrying ``ms`` ms of PCM16 24 kHz."""
    return ev(
        dialect,
        type=AUDIO_DELTA[dialect],
        response_id="r1",
        item_id=item_id,
        output_index=0,
        content_index=content_index,
        delta=base64.b64encode(bytes(48 * ms)).decode(),
    )


class FakeTracker:
    """A playback tracker that reports a fixed heard position."""

    def __init__(self, position: HeardPosition | None) -> None:
        self.position = position
        self.interrupted = False

    def played_ms(self, item_id: str, content_index: int = 0) -> float:
        """Milliseconds heard of the item."""
        if self.position and self.position.item_id == item_id:
            return self.position.played_ms
        return 0.0

    def interrupt(self) -> HeardPosition | None:
        """Stop playback and report where it stood."""
        self.interrupted = True
        return self.position


def wire(events: list[Any]) -> list[dict[str, Any]]:
    """The JSON objects the client events encode to (without event ids)."""
    out = []
    for e in events:
        obj = json.loads(encode_client_event(e))
        obj.pop("event_id", None)
        out.append(obj)
    return out


def three_second_reply(dialect: str, now: float = 100.0) -> OutputAudioLog:
    """A log that received a 3 s reply in 30 chunks, the first at ``now``."""
    log = OutputAudioLog()
    for i in range(30):
        log.apply(audio_delta(dialect, "a1", 100), now + i * 0.01)
    return log


@pytest.mark.parametrize("dialect", DIALECTS)
def test_interruption_at_1200ms_with_tracker(dialect: str) -> None:
    """1.2 s into a 3 s reply: truncate at ~1200 ms; the server cancels by itself."""
    log = three_second_reply(dialect)
    tracker = FakeTracker(HeardPosition("a1", 0, 1200.4))
    assert isinstance(tracker, PlaybackTracker)
    decision = plan_interruption(
        log.current, heard=tracker.interrupt(), server_cancels=True, response_active=True
    )
    assert wire(decision.events) == [
        {
            "type": "conversation.item.truncate",
            "item_id": "a1",
            "content_index": 0,
            "audio_end_ms": 1200,
        }
    ]
    assert decision.audio_end_ms == 1200 and decision.received_ms == pytest.approx(3000)
    assert not decision.cancel


@pytest.mark.parametrize("dialect", DIALECTS)
def test_interruption_fallback_to_elapsed_time(dialect: str) -> None:
    """Without a tracker, elapsed time since the first delta stands for what was heard."""
    log = three_second_reply(dialect, now=50.0)
    decision = plan_interruption(log.current, now=51.2, server_cancels=True, response_active=False)
    assert decision.audio_end_ms == 1200
    assert wire(decision.events)[0]["audio_end_ms"] == 1200


def test_cancel_only_when_server_will_not_and_response_active() -> None:
    """response.cancel is sent only when the server will not cancel and a response is active."""
    playing = AudioProgress("a1", 0, 3000.0, 0.0, "r1")
    heard = HeardPosition("a1", 0, 1000.0)
    both = plan_interruption(
        playing, heard=heard, server_cancels=False, response_active=True, response_id="r1"
    )
    assert [e["type"] for e in wire(both.events)] == [
        "conversation.item.truncate",
        "response.cancel",
    ]
    assert wire(both.events)[1] == {"type": "response.cancel", "response_id": "r1"}
    assert both.cancel
    server = plan_interruption(playing, heard=heard, server_cancels=True, response_active=True)
    assert [e.type for e in server.events] == ["conversation.item.truncate"]
    idle = plan_interruption(playing, heard=heard, server_cancels=False, response_active=False)
    assert [e.type for e in idle.events] == ["conversation.item.truncate"]
    anon = plan_interruption(None, server_cancels=False, response_active=True)
    assert wire(anon.events) == [{"type": "response.cancel"}]


def test_heard_clamped_to_received() -> None:
    """A heard position past the received audio is clamped (while the response is active)."""
    playing = AudioProgress("a1", 0, 3000.0, 0.0)
    d = plan_interruption(
        playing, heard=HeardPosition("a1", 0, 4500.0), server_cancels=True, response_active=True
    )
    assert d.audio_end_ms == 3000


def test_skip_when_everything_heard() -> None:
    """When all received audio was heard and the response is over, no truncate is sent."""
    playing = AudioProgress("a1", 0, 3000.0, 0.0)
    d = plan_interruption(
        playing, heard=HeardPosition("a1", 0, 3000.0), server_cancels=True, response_active=False
    )
    assert d.events == [] and d.audio_end_ms is None
    elapsed = plan_interruption(playing, now=10.0, server_cancels=True, response_active=False)
    assert elapsed.events == []


def test_skip_when_nothing_heard() -> None:
    """Nothing heard (0 ms or negative) means no truncate."""
    playing = AudioProgress("a1", 0, 3000.0, 5.0)
    for heard in (HeardPosition("a1", 0, 0.0), HeardPosition("a1", 0, -3.0)):
        assert (
            plan_interruption(
                playing, heard=heard, server_cancels=True, response_active=True
            ).events
            == []
        )
    assert (
        plan_interruption(playing, now=5.0, server_cancels=True, response_active=True).events == []
    )


def test_tracker_reports_nothing_playing() -> None:
    """heard=None and no clock: nothing known, no truncate."""
    playing = AudioProgress("a1", 0, 3000.0, 0.0)
    tracker = FakeTracker(None)
    d = plan_interruption(
        playing, heard=tracker.interrupt(), server_cancels=True, response_active=True
    )
    assert d.events == [] and d.item_id is None


def test_heard_item_differs_from_last_received() -> None:
    """The tracker's item wins when it differs from the item that received audio last."""
    playing = AudioProgress("a2", 0, 800.0, 0.0)
    d = plan_interruption(
        playing, heard=HeardPosition("a1", 1, 2500.0), server_cancels=True, response_active=True
    )
    assert wire(d.events) == [
        {
            "type": "conversation.item.truncate",
            "item_id": "a1",
            "content_index": 1,
            "audio_end_ms": 2500,
        }
    ]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_output_audio_log(dialect: str) -> None:
    """The log follows the latest (item, part), counts ms, and ignores interrupted items."""
    log = OutputAudioLog()
    assert log.current is None
    log.apply(ev(dialect, type="input_audio_buffer.cleared"), 0.0)
    assert log.current is None
    log.apply(audio_delta(dialect, "a1", 200), 1.0)
    log.apply(audio_delta(dialect, "a1", 300), 1.5)
    cur = log.current
    assert cur is not None and cur.item_id == "a1" and cur.received_ms == pytest.approx(500)
    assert cur.first_delta_at == 1.0 and cur.response_id == "r1"
    log.apply(audio_delta(dialect, "a1", 100, content_index=1), 2.0)
    assert log.current is not None and log.current.content_index == 1
    assert log.current.received_ms == pytest.approx(100)
    log.interrupted()
    assert log.current is None
    log.apply(audio_delta(dialect, "a1", 100), 3.0)  # in-flight audio of the interrupted item
    assert log.current is None
    log.apply(audio_delta(dialect, "a2", 100), 4.0)
    assert log.current is not None and log.current.item_id == "a2"
    log.reset()
    assert log.current is None


def test_output_audio_log_ignores_untyped_events() -> None:
    """An audio delta under the other dialect's name (untyped) is ignored."""
    log = OutputAudioLog()
    log.apply(audio_delta("ga", "a1", 100), 0.0)
    stray = ev("beta", type="response.output_audio.delta", response_id="r", output_index=0)
    log.apply(stray, 1.0)
    assert log.current is not None and log.current.received_ms == pytest.approx(100)


def test_output_audio_log_g711() -> None:
    """G.711 audio counts 8 bytes per millisecond."""
    log = OutputAudioLog("g711_alaw")
    log.apply(
        ev(
            "ga",
            type="response.output_audio.delta",
            response_id="r",
            item_id="a",
            output_index=0,
            content_index=0,
            delta=base64.b64encode(bytes(1600)).decode(),
        ),
        0.0,
    )
    assert log.current is not None and log.current.received_ms == pytest.approx(200)
    with pytest.raises(ValueError):
        OutputAudioLog("opus")
