"""Tests for realtime.response_state: transitions, queueing, cancel, expected errors, usage."""

from __future__ import annotations

import json
from typing import Any

import pytest

from realtime.events import (
    BetaResponseCreateEvent,
    ResponseCreateEvent,
    ServerEvent,
    encode_client_event,
    parse_server_event,
)
from realtime.exceptions import ProtocolError, ResponseError
from realtime.response_state import TERMINAL_STATUSES, TRANSITIONS, ResponseTracker, UsageTotals

DIALECTS = ["beta", "ga"]


def ev(dialect: str, **fields: Any) -> ServerEvent:
    """Parse a server event of ``dialect`` from keyword fields."""
    fields.setdefault("event_id", "evt_s")
    return parse_server_event(json.dumps(fields), dialect)  # type: ignore[arg-type]


def created(dialect: str, rid: str) -> ServerEvent:
    """response.created for ``rid``."""
    return ev(
        dialect,
        type="response.created",
        response={"id": rid, "status": "in_progress", "output": []},
    )


def done(
    dialect: str, rid: str, status: str = "completed", usage: dict[str, Any] | None = None
) -> ServerEvent:
    """response.done for ``rid`` with ``status`` (and usage)."""
    response: dict[str, Any] = {"id": rid, "status": status, "output": []}
    if usage is not None:
        response["usage"] = usage
    return ev(dialect, type="response.done", response=response)


def delta(dialect: str, rid: str) -> ServerEvent:
    """An output text delta of ``rid``."""
    t = "response.text.delta" if dialect == "beta" else "response.output_text.delta"
    return ev(
        dialect, type=t, response_id=rid, item_id="i", output_index=0, content_index=0, delta="x"
    )


def error(dialect: str, code: str, event_id: str | None) -> ServerEvent:
    """An error event referring to a client event."""
    return ev(
        dialect,
        type="error",
        error={"type": "invalid_request_error", "code": code, "message": "m", "event_id": event_id},
    )


def test_transition_table_shape() -> None:
    """The table goes created -> in_progress -> each terminal status, and never out of one."""
    assert TRANSITIONS[(None, "created")] == "created"
    assert TRANSITIONS[("created", "output")] == "in_progress"
    for final in TERMINAL_STATUSES:
        assert TRANSITIONS[("created", final)] == final
        assert TRANSITIONS[("in_progress", final)] == final
        assert not any(state == final for state, _ in TRANSITIONS)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("final", sorted(TERMINAL_STATUSES))
def test_lifecycle(dialect: str, final: str) -> None:
    """created -> in_progress -> final, with active tracking."""
    t = ResponseTracker()
    t.apply(created(dialect, "r1"))
    assert t.get("r1").status == "created"  # type: ignore[union-attr]
    assert t.active_response is not None and t.active_response.id == "r1" and t.busy
    t.apply(delta(dialect, "r1"))
    assert t.get("r1").status == "in_progress"  # type: ignore[union-attr]
    t.apply(done(dialect, "r1", final))
    state = t.get("r1")
    assert state is not None and state.status == final and not state.active
    assert t.active_response is None and not t.busy
    assert t.protocol_errors == []


@pytest.mark.parametrize("dialect", DIALECTS)
def test_illegal_transitions_recorded(dialect: str) -> None:
    """Output after done, a second done, and a done for an unknown response are recorded."""
    t = ResponseTracker()
    t.apply(created(dialect, "r1"))
    t.apply(done(dialect, "r1"))
    t.apply(delta(dialect, "r1"))
    t.apply(done(dialect, "r1"))
    t.apply(done(dialect, "r9", "cancelled"))
    assert len(t.protocol_errors) == 3
    assert all(isinstance(e, ProtocolError) for e in t.protocol_errors)
    assert "completed --output-->" in str(t.protocol_errors[0])
    assert t.get("r9").status == "cancelled"  # type: ignore[union-attr]
    assert not t.busy


def test_illegal_transition_raised_when_strict() -> None:
    """strict=True raises the ProtocolError."""
    t = ResponseTracker(strict=True)
    t.apply(created("ga", "r1"))
    with pytest.raises(ProtocolError, match="illegal response transition"):
        t.apply(created("ga", "r1"))


def test_non_final_done_status_recorded() -> None:
    """A response.done whose status is not final is recorded and still ends the response."""
    t = ResponseTracker()
    t.apply(created("ga", "r1"))
    t.apply(done("ga", "r1", "in_progress"))
    assert t.get("r1").status == "incomplete"  # type: ignore[union-attr]
    assert len(t.protocol_errors) == 1 and not t.busy


@pytest.mark.parametrize("dialect", DIALECTS)
def test_queued_create_released_when_active_finishes(dialect: str) -> None:
    """A response.create while one is active is queued and released by response.done."""
    t = ResponseTracker(dialect=dialect)  # type: ignore[arg-type]
    first = t.request_create()
    assert len(first) == 1 and first[0].event_id
    assert isinstance(
        first[0], BetaResponseCreateEvent if dialect == "beta" else ResponseCreateEvent
    )
    # Pending (not announced yet): a second request waits.
    assert t.request_create() == []
    assert t.request_create(t.new_create(instructions="third")) == []
    assert t.queued == 2
    t.apply(created(dialect, "r1"))
    assert t.apply(delta(dialect, "r1")) == []
    released = t.apply(done(dialect, "r1"))
    assert [e.type for e in released] == ["response.create"] and t.queued == 1
    assert t.apply(created(dialect, "r2")) == []
    released = t.apply(done(dialect, "r2"))
    assert json.loads(encode_client_event(released[0]))["response"]["instructions"] == "third"
    t.apply(created(dialect, "r3"))
    assert t.apply(done(dialect, "r3")) == []


def test_server_vad_response_makes_request_wait() -> None:
    """A response the server started (no request) also makes requests wait."""
    t = ResponseTracker()
    t.apply(created("ga", "auto"))
    assert t.request_create() == [] and t.queued == 1
    assert len(t.apply(done("ga", "auto"))) == 1


def test_queue_false_raises() -> None:
    """With queue=False a create while one is active raises ResponseError."""
    t = ResponseTracker(queue=False)
    t.apply(created("ga", "r1"))
    with pytest.raises(ResponseError, match="still active"):
        t.request_create()


def test_out_of_band_create_not_queued() -> None:
    """A response.create with conversation "none" goes out even while one is active."""
    t = ResponseTracker()
    t.apply(created("ga", "r1"))
    oob = t.new_create(conversation="none", instructions="classify")
    assert [e.type for e in t.request_create(oob)] == ["response.create"]


def test_request_create_rejects_other_events() -> None:
    """request_create only takes response.create events."""
    from realtime.events import ResponseCancelEvent

    with pytest.raises(ResponseError):
        ResponseTracker().request_create(ResponseCancelEvent())


def test_clear_queue() -> None:
    """clear_queue returns and drops the waiting requests."""
    t = ResponseTracker()
    t.request_create()
    t.request_create()
    assert len(t.clear_queue()) == 1 and t.queued == 0


@pytest.mark.parametrize("dialect", DIALECTS)
def test_cancel_only_when_active(dialect: str) -> None:
    """request_cancel returns [response.cancel] only while a response is active."""
    t = ResponseTracker()
    assert t.request_cancel() == []
    t.apply(created(dialect, "r1"))
    (cancel,) = t.request_cancel()
    assert json.loads(encode_client_event(cancel)) == {
        "type": "response.cancel",
        "response_id": "r1",
        "event_id": cancel.event_id,
    }
    assert t.request_cancel("other") == []
    assert len(t.request_cancel("r1")) == 1
    t.apply(done(dialect, "r1", "cancelled"))
    assert t.request_cancel() == []


def test_cancel_while_create_pending() -> None:
    """A cancel after a create that is not announced yet goes out without response_id."""
    t = ResponseTracker()
    t.request_create()
    (cancel,) = t.request_cancel()
    assert cancel.response_id is None  # type: ignore[attr-defined]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_cancel_not_active_error_is_expected(dialect: str) -> None:
    """response_cancel_not_active naming our cancel's event_id is expected, others are not."""
    t = ResponseTracker()
    t.apply(created(dialect, "r1"))
    (cancel,) = t.request_cancel()
    t.apply(done(dialect, "r1"))  # the response finished before the cancel arrived
    err = error(dialect, "response_cancel_not_active", cancel.event_id)
    assert t.apply(err) == []
    assert t.is_expected_error(err)
    assert not t.is_expected_error(error(dialect, "response_cancel_not_active", "evt_someone_else"))
    assert not t.is_expected_error(error(dialect, "invalid_value", cancel.event_id))
    assert not t.is_expected_error(error(dialect, "response_cancel_not_active", None))


def test_active_response_error_requeues_create() -> None:
    """A create refused because the server started a response is re-queued and expected."""
    t = ResponseTracker()
    (mine,) = t.request_create()
    t.apply(created("ga", "auto"))  # server VAD response; the tracker takes it as ours
    err = error("ga", "conversation_already_has_active_response", mine.event_id)
    assert t.is_expected_error(err)
    assert t.apply(err) == []
    assert t.is_expected_error(err)  # still recognised after apply() saw it
    assert t.queued == 1
    (again,) = t.apply(done("ga", "auto"))
    assert again.event_id == mine.event_id


def test_failed_create_releases_next() -> None:
    """An error for the pending create frees the slot for the next queued one."""
    t = ResponseTracker()
    (first,) = t.request_create()
    t.request_create(t.new_create(instructions="second"))
    released = t.apply(error("ga", "invalid_value", first.event_id))
    assert len(released) == 1 and released[0].event_id != first.event_id
    assert not t.is_expected_error(error("ga", "invalid_value", first.event_id))


def test_active_error_not_expected_without_queue() -> None:
    """With queue=False, conversation_already_has_active_response is a real error."""
    t = ResponseTracker(queue=False)
    (mine,) = t.request_create()
    assert not t.is_expected_error(
        error("ga", "conversation_already_has_active_response", mine.event_id)
    )


@pytest.mark.parametrize("dialect", DIALECTS)
def test_usage_totals(dialect: str) -> None:
    """Usage of every response.done is summed per session, with details."""
    t = ResponseTracker()
    usage = {
        "total_tokens": 30,
        "input_tokens": 20,
        "output_tokens": 10,
        "input_token_details": {"cached_tokens": 5, "text_tokens": 8, "audio_tokens": 12},
        "output_token_details": {"text_tokens": 3, "audio_tokens": 7},
    }
    for rid in ("r1", "r2"):
        t.apply(created(dialect, rid))
        t.apply(done(dialect, rid, usage=usage))
    t.apply(created(dialect, "r3"))
    t.apply(done(dialect, "r3"))  # no usage reported
    u = t.usage
    assert (u.responses, u.total_tokens, u.input_tokens, u.output_tokens) == (2, 60, 40, 20)
    assert (u.input_cached_tokens, u.input_text_tokens, u.input_audio_tokens) == (10, 16, 24)
    assert (u.output_text_tokens, u.output_audio_tokens) == (6, 14)
    assert t.get("r1").usage.total_tokens == 30  # type: ignore[union-attr]


def test_usage_totals_from_dicts() -> None:
    """UsageTotals.add accepts plain dicts with missing counts."""
    u = UsageTotals()
    u.add({"input_tokens": 3})
    u.add(None)
    assert u.input_tokens == 3 and u.output_tokens == 0 and u.responses == 1


def test_response_done_records_output_items() -> None:
    """response.done stores the ids of the response's output items and status details."""
    t = ResponseTracker()
    t.apply(created("ga", "r1"))
    t.apply(
        ev(
            "ga",
            type="response.done",
            response={
                "id": "r1",
                "status": "incomplete",
                "status_details": {"type": "incomplete", "reason": "max_output_tokens"},
                "output": [{"id": "a1", "type": "message", "role": "assistant", "content": []}],
            },
        )
    )
    state = t.get("r1")
    assert state is not None and state.output_item_ids == ["a1"]
    assert state.status_details.reason == "max_output_tokens"


def test_transcription_usage_is_counted() -> None:
    """GA input transcriptions add their usage: a transcription-only session has tokens."""
    tracker = ResponseTracker()
    base = {
        "type": "conversation.item.input_audio_transcription.completed",
        "event_id": "e",
        "item_id": "item_1",
        "content_index": 0,
        "transcript": "hello",
    }
    tokens = {"type": "tokens", "input_tokens": 12, "output_tokens": 3, "total_tokens": 15}
    duration = {"type": "duration", "seconds": 2.5}
    for usage in (tokens, duration):
        tracker.apply(parse_server_event(json.dumps({**base, "usage": usage}), "ga"))
    u = tracker.usage
    assert (u.transcriptions, u.total_tokens, u.input_tokens, u.output_tokens) == (2, 15, 12, 3)
    assert u.transcription_input_tokens == 12 and u.transcription_output_tokens == 3
    assert u.transcription_seconds == 2.5 and u.responses == 0
