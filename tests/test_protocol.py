"""ClientProtocol without sockets or clocks: acknowledgements, responses, barge-in,
tools, lost responses and the reconnect restore plan, in both dialects."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from audio.playback import HeardPosition
from realtime.events import ClientEvent, ServerEvent, encode_client_event, parse_server_event
from realtime.events.common import InputAudioTranscription
from realtime.events.config import SessionConfig
from realtime.exceptions import (
    AuthenticationClosed,
    AuthenticationError,
    ConnectionClosed,
    ServerError,
)
from realtime.protocol import LOST_REASON, ClientProtocol, close_error
from realtime.reconnect import heard_text
from realtime.testing import ServerEvents, session_created
from realtime.tools import ToolResult

DIALECTS = pytest.mark.parametrize("dialect", ["ga", "beta"])


def wire(event: ClientEvent) -> dict[str, Any]:
    """A client event as the server would receive it."""
    data: dict[str, Any] = json.loads(encode_client_event(event))
    return data


def feed(proto: ClientProtocol, *events: dict[str, Any], now: float = 0.0, **kw: Any) -> None:
    """Parse and feed server events given as dicts."""
    for event in events:
        proto.receive(parse_server_event(json.dumps(event), proto.dialect), now, **kw)


def parsed(proto: ClientProtocol, event: dict[str, Any]) -> ServerEvent:
    return parse_server_event(json.dumps(event), proto.dialect)


def error(event_id: str | None, code: str = "invalid_value") -> dict[str, Any]:
    body = {"type": "invalid_request_error", "code": code, "message": "no", "event_id": event_id}
    return {"type": "error", "error": body}


def pcm_ms(ms: int) -> bytes:
    return b"\0\0" * 24 * ms


def start_reply(
    ev: ServerEvents, rid: str = "resp_1", item: str = "item_b"
) -> list[dict[str, Any]]:
    return [ev.response_created(rid), ev.output_item_added(rid, ev.message_item(item))]


# --- acknowledgements -----------------------------------------------------------------------


@DIALECTS
def test_update_carries_tools_and_is_acknowledged(dialect: str) -> None:
    """update(): one session.update with the registered tools; session.updated completes it."""

    def ping() -> str:
        """Ping."""
        return "pong"

    proto = ClientProtocol(dialect=dialect, tools=[ping])
    request = proto.update(SessionConfig(instructions="Be brief."))
    [event] = [wire(e) for e in request.events]
    assert event["type"] == "session.update" and event["event_id"] == request.event_id
    assert event["session"]["instructions"] == "Be brief."
    assert [t["name"] for t in event["session"]["tools"]] == ["ping"]
    assert proto.pending_requests == 1
    feed(proto, {"type": "session.updated", "session": session_created(dialect)["session"]})
    [done] = proto.completions()
    assert done.request is request and done.event is not None and done.error is None
    assert proto.pending_requests == 0 and proto.server_session is not None


def test_beta_transcription_update_is_a_transcription_session_update() -> None:
    """A beta transcription config: transcription_session.update, acked by ...updated."""
    proto = ClientProtocol(dialect="beta")
    config = SessionConfig(kind="transcription", transcription=InputAudioTranscription(model="m"))
    request = proto.update(config)
    assert wire(request.events[0])["type"] == "transcription_session.update"
    assert request.types == {"transcription_session.updated"}
    feed(proto, {"type": "session.updated", "session": session_created("beta")["session"]})
    assert proto.completions() == []
    body = {"id": "sess_t", "object": "realtime.transcription_session"}
    feed(proto, {"type": "transcription_session.updated", "session": body})
    assert proto.completions()[0].request is request


@DIALECTS
def test_error_naming_the_request_fails_it(dialect: str) -> None:
    """An error whose event_id names the request fails it with ServerError; others do not."""
    proto = ClientProtocol(dialect=dialect)
    request = proto.commit()
    feed(proto, error("evt_someone_else"))
    assert proto.completions() == [] and not proto.error_explained
    feed(proto, error(request.event_id, "input_audio_buffer_commit_empty"))
    [done] = proto.completions()
    assert (
        isinstance(done.error, ServerError) and done.error.code == "input_audio_buffer_commit_empty"
    )
    assert proto.error_explained


@DIALECTS
def test_vad_commit_never_answers_a_manual_commit(dialect: str) -> None:
    """committed for an item the VAD announced is not the manual commit's answer."""
    proto = ClientProtocol(dialect=dialect)
    request = proto.commit()
    feed(
        proto,
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "item_v"},
        {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 800, "item_id": "item_v"},
        {"type": "input_audio_buffer.committed", "previous_item_id": None, "item_id": "item_v"},
    )
    assert proto.completions() == []
    feed(
        proto,
        {"type": "input_audio_buffer.committed", "previous_item_id": "item_v", "item_id": "m"},
    )
    [done] = proto.completions()
    assert done.request is request and done.event is not None
    assert done.event.item_id == "m"  # type: ignore[attr-defined]


@DIALECTS
def test_item_requests_match_their_item_id(dialect: str) -> None:
    """create/truncate/delete/retrieve are answered only by events about their item."""
    ev = ServerEvents(dialect)
    proto = ClientProtocol(dialect=dialect)
    create = proto.create_item({"type": "message", "role": "user", "content": []})
    item_id = wire(create.events[0])["item"]["id"]
    assert create.item_id == item_id
    truncate = proto.truncate("item_t", 0, 1500)
    delete = proto.delete_item("item_d")
    retrieve = proto.retrieve_item("item_r")
    other = {"id": "item_other", "type": "message", "role": "user", "content": []}
    feed(proto, ev.item_added(other))
    feed(proto, {"type": "conversation.item.deleted", "item_id": "item_x"})
    assert proto.completions() == []
    feed(proto, ev.item_added({"id": item_id, "type": "message", "role": "user", "content": []}))
    feed(proto, {"type": "conversation.item.deleted", "item_id": "item_d"})
    feed(
        proto,
        {
            "type": "conversation.item.truncated",
            "item_id": "item_t",
            "content_index": 0,
            "audio_end_ms": 1500,
        },
    )
    feed(proto, {"type": "conversation.item.retrieved", "item": {**other, "id": "item_r"}})
    done = {c.request.id for c in proto.completions()}
    assert done == {create.id, truncate.id, delete.id, retrieve.id}
    assert wire(truncate.events[0])["audio_end_ms"] == 1500


def test_forgotten_requests_are_not_completed() -> None:
    """A request whose awaiter gave up (forget) is never completed."""
    proto = ClientProtocol()
    request = proto.clear_audio()
    proto.forget(request)
    feed(proto, {"type": "input_audio_buffer.cleared"})
    assert proto.completions() == [] and proto.pending_requests == 0


# --- responses --------------------------------------------------------------------------------


@DIALECTS
def test_send_text_then_queued_response_goes_out_after_done(dialect: str) -> None:
    """send_text: item then response.create; a second one while busy waits for response.done."""
    ev = ServerEvents(dialect)
    proto = ClientProtocol(dialect=dialect)
    first = proto.send_text("Hi")
    assert [wire(e)["type"] for e in first.events] == [
        "conversation.item.create",
        "response.create",
    ]
    assert wire(first.events[0])["item"]["content"] == [{"type": "input_text", "text": "Hi"}]
    second = proto.send_text("Again")
    assert [wire(e)["type"] for e in second.events] == ["conversation.item.create"]
    feed(proto, ev.response_created("resp_1"))
    assert proto.events_to_send() == []
    feed(proto, ev.response_done("resp_1"))
    assert [wire(e)["type"] for e in proto.events_to_send()] == ["response.create"]
    assert proto.cancel_response() != []  # the released request is pending: cancellable


# --- barge-in -----------------------------------------------------------------------------------


@DIALECTS
def test_server_speech_without_tracker_truncates_at_elapsed_time(dialect: str) -> None:
    """speech_started 1.2 s after the first delta (caller's clock): truncate at 1200 ms; the
    server cancels by itself (server VAD, interrupt_response default)."""
    ev = ServerEvents(dialect)
    proto = ClientProtocol(dialect=dialect)
    feed(proto, *start_reply(ev), now=10.0)
    feed(proto, ev.audio_delta("resp_1", "item_b", pcm_ms(3000)), now=10.0)
    feed(proto, ev.speech_started("item_u"), now=11.2)
    [truncate] = [wire(e) for e in proto.events_to_send()]
    assert truncate["type"] == "conversation.item.truncate"
    assert truncate["item_id"] == "item_b" and truncate["audio_end_ms"] == 1200
    assert proto.last_interruption is not None and not proto.last_interruption.cancel


@DIALECTS
def test_server_speech_with_tracker_and_no_server_cancel(dialect: str) -> None:
    """With a tracker the heard position is used; interrupt_response off: we cancel."""
    ev = ServerEvents(dialect)
    proto = ClientProtocol(dialect=dialect, has_tracker=True)
    vad = {"type": "server_vad", "interrupt_response": False}
    hello = (
        session_created("ga", audio={"input": {"turn_detection": vad}})
        if dialect == "ga"
        else session_created("beta", turn_detection=vad)
    )
    feed(proto, hello, *start_reply(ev))
    feed(proto, ev.audio_delta("resp_1", "item_b", pcm_ms(2000)))
    speech = parsed(proto, ev.speech_started("item_u"))
    assert proto.wants_heard_position(speech)
    proto.receive(speech, heard=HeardPosition("item_b", 0, 700.0))
    sent = [wire(e) for e in proto.events_to_send()]
    assert [e["type"] for e in sent] == ["conversation.item.truncate", "response.cancel"]
    assert sent[0]["audio_end_ms"] == 700 and sent[1]["response_id"] == "resp_1"


def test_tracker_heard_nothing_means_no_truncate() -> None:
    """A tracker answering None (nothing playing): no truncate."""
    ev = ServerEvents("ga")
    proto = ClientProtocol(has_tracker=True)
    feed(proto, *start_reply(ev), ev.audio_delta("resp_1", "item_b", pcm_ms(500)))
    feed(proto, ev.response_done("resp_1"))
    feed(proto, ev.speech_started("item_u"), heard=None)
    assert proto.events_to_send() == []


@DIALECTS
def test_interrupt_intent_truncates_and_cancels(dialect: str) -> None:
    """interrupt(): truncate at the heard position and cancel the active response."""
    ev = ServerEvents(dialect)
    proto = ClientProtocol(dialect=dialect)
    feed(proto, *start_reply(ev), ev.audio_delta("resp_1", "item_b", pcm_ms(1000)))
    decision = proto.interrupt(HeardPosition("item_b", 0, 400.0))
    sent = [wire(e) for e in decision.events]
    assert [e["type"] for e in sent] == ["conversation.item.truncate", "response.cancel"]
    assert sent[0]["audio_end_ms"] == 400 and sent[1]["response_id"] == "resp_1"
    # Later deltas of the interrupted item are not counted as playing.
    feed(proto, ev.audio_delta("resp_1", "item_b", pcm_ms(100)))
    assert proto.audio_log.current is None
    assert ClientProtocol(dialect=dialect).interrupt().events == []  # nothing to interrupt


# --- tools ----------------------------------------------------------------------------------------


@DIALECTS
def test_tool_call_output_and_one_follow_up(dialect: str) -> None:
    """A function call is handed out once; its output and one follow-up response.create."""
    ev = ServerEvents(dialect)
    proto = ClientProtocol(dialect=dialect)
    item = ev.function_call_item("item_f", "call_1", "ping", "{}")
    feed(proto, ev.response_created("resp_1"), ev.output_item_done("resp_1", item))
    [call] = proto.tool_calls()
    assert call.name == "ping" and proto.tool_calls() == []
    out = proto.tool_result(ToolResult("call_1", "ping", '"pong"'))
    assert [wire(e)["item"]["type"] for e in out] == ["function_call_output"]
    feed(proto, ev.response_done("resp_1", output=[item]))
    assert [wire(e)["type"] for e in proto.events_to_send()] == ["response.create"]


# --- connection loss and restore ------------------------------------------------------------------


@DIALECTS
def test_connection_lost_fails_requests_and_ends_lost_responses(dialect: str) -> None:
    """A drop: requests fail with the close error, the active response ends incomplete."""
    ev = ServerEvents(dialect)
    proto = ClientProtocol(dialect=dialect)
    feed(proto, *start_reply(ev), ev.transcript_delta("resp_1", "item_b", "Half"))
    request = proto.commit()
    proto.connection_lost(close_error(1006))
    [done] = proto.completions()
    assert done.request is request and isinstance(done.error, ConnectionClosed)
    [lost] = proto.events_to_deliver()
    assert lost.type == "response.done"
    response = lost.response  # type: ignore[attr-defined]
    assert response.id == "resp_1" and response.status == "incomplete"
    assert response.status_details.reason == LOST_REASON
    assert proto.conversation["item_b"].status == "incomplete"
    assert not proto.responses.busy
    assert proto.take_losses() == (["resp_1"], ["item_b"])


WORDS = "one two three four five six seven eight nine ten"


def _lost_reply(ev: ServerEvents, proto: ClientProtocol) -> None:
    """A reply streaming 1000 ms of audio (first delta at t=10 s) and its transcript."""
    feed(proto, *start_reply(ev), now=10.0)
    feed(proto, ev.audio_delta("resp_1", "item_b", b"\0\0" * 24000), now=10.0)
    feed(proto, ev.transcript_delta("resp_1", "item_b", WORDS), now=10.0)


def _restored_text(proto: ClientProtocol) -> list[str]:
    creates = proto.connection_made(reinject_history=True)
    out = []
    for event in creates:
        if event.type == "conversation.item.create":
            wire = encode_client_event(event)
            out.append(json.loads(wire)["item"]["content"][0]["text"])
    return out


@DIALECTS
def test_a_reply_lost_to_a_drop_keeps_only_what_was_heard(dialect: str) -> None:
    """Without a playback tracker, the time since the first delta stands for what was heard:
    a drop 0.5 s into a 1 s reply cuts it at 500 ms, and the restore re-creates about half
    of its words, marked incomplete (not the whole text the user never heard)."""
    ev = ServerEvents(dialect)
    proto = ClientProtocol(dialect=dialect)
    _lost_reply(ev, proto)
    proto.connection_lost(close_error(1006), 10.5)
    part = proto.conversation["item_b"].content[0]
    assert part.truncated and part.audio_end_ms == 500
    assert proto.conversation["item_b"].status == "incomplete"
    assert _restored_text(proto) == ["one two three four five"]


@DIALECTS
def test_a_reply_lost_to_a_drop_is_cut_at_the_trackers_position(dialect: str) -> None:
    """With a tracker, its heard position cuts the lost reply (here 300 of 1000 ms); a
    tracker with nothing playing means everything received was heard (no cut)."""
    ev = ServerEvents(dialect)
    proto = ClientProtocol(dialect=dialect)
    proto.has_tracker = True
    _lost_reply(ev, proto)
    proto.connection_lost(close_error(1006), 10.9, heard=HeardPosition("item_b", 0, 300.0))
    assert proto.conversation["item_b"].content[0].audio_end_ms == 300
    assert _restored_text(proto) == ["one two three"]

    again = ClientProtocol(dialect=dialect)
    again.has_tracker = True
    _lost_reply(ev, again)
    again.connection_lost(close_error(1006), 10.9, heard=None)
    assert not again.conversation["item_b"].content[0].truncated
    assert _restored_text(again) == [WORDS]


def test_a_requested_response_never_announced_also_ends() -> None:
    """response.create sent but no response.created before the drop: a response.done
    (no id) still ends it."""
    proto = ClientProtocol()
    proto.send_text("Hi")
    proto.connection_lost(close_error(1006))
    [lost] = proto.events_to_deliver()
    assert lost.response.id is None and lost.response.status == "incomplete"  # type: ignore[attr-defined]


def test_close_4001_is_an_authentication_error() -> None:
    """close_error(4001) is both an AuthenticationError and a ConnectionClosed."""
    err = close_error(4001, "bad key")
    assert isinstance(err, AuthenticationClosed)
    assert isinstance(err, AuthenticationError) and isinstance(err, ConnectionClosed)
    assert err.code == 4001 and err.reason == "bad key"
    assert type(close_error(1006)) is ConnectionClosed


@DIALECTS
def test_restore_plan_recreates_history_once_with_ids(dialect: str) -> None:
    """The restore plan: config, then each item with its id, chained; audio replies as heard
    text; function calls and outputs kept; echoes do not duplicate items."""
    ev = ServerEvents(dialect)
    proto = ClientProtocol(dialect=dialect, config=SessionConfig(instructions="x"))
    user = {
        "id": "item_u",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "Hi"}],
    }
    call = ev.function_call_item("item_f", "call_1", "ping", "{}")
    output = {"id": "item_o", "type": "function_call_output", "call_id": "call_1", "output": "1"}
    feed(proto, ev.item_added(user), ev.item_added(call, "item_u"), ev.item_added(output, "item_f"))
    feed(proto, *start_reply(ev), ev.audio_delta("resp_1", "item_b", pcm_ms(1000)))
    feed(proto, ev.transcript_delta("resp_1", "item_b", "alpha beta gamma delta"))
    feed(proto, ev.response_done("resp_1", output=[ev.message_item("item_b", status="completed")]))
    truncated = {
        "type": "conversation.item.truncated",
        "item_id": "item_b",
        "content_index": 0,
        "audio_end_ms": 500,
    }
    feed(proto, truncated)
    for _ in range(2):  # two drops: the same plan each time
        proto.connection_lost(close_error(1006))
        plan = [wire(e) for e in proto.connection_made(reinject_history=True)]
        assert plan[0]["type"] == "session.update"
        creates = plan[1:]
        assert [c["item"]["id"] for c in creates] == ["item_u", "item_f", "item_o", "item_b"]
        assert [c.get("previous_item_id") for c in creates] == [None, "item_u", "item_f", "item_o"]
        assert creates[3]["item"]["content"][0]["text"] == "alpha beta"
        for create in creates:  # the server echoes each item under its id
            feed(proto, ev.item_added(create["item"], create.get("previous_item_id")))
        assert [i.id for i in proto.conversation.items] == ["item_u", "item_f", "item_o", "item_b"]


def test_restore_adopts_ids_chosen_by_the_server() -> None:
    """A server that assigns its own ids: the local item is renamed, not duplicated."""
    ev = ServerEvents("ga")
    proto = ClientProtocol()
    user = {
        "id": "item_u",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "Hi"}],
    }
    feed(proto, ev.item_added(user))
    proto.connection_lost(close_error(1006))
    [create] = [wire(e) for e in proto.connection_made(reinject_history=True)]
    feed(proto, ev.item_added({**create["item"], "id": "item_new"}))
    assert [i.id for i in proto.conversation.items] == ["item_new"]


def test_restore_re_queues_waiting_requests_and_keeps_usage() -> None:
    """Requests queued behind the lost response go out on the new connection; usage stays."""
    ev = ServerEvents("ga")
    proto = ClientProtocol()
    usage = {"total_tokens": 7, "input_tokens": 3, "output_tokens": 4}
    feed(proto, ev.response_created("r0"), ev.response_done("r0", usage=usage))
    feed(proto, ev.response_created("r1"))
    assert proto.create_response() == []  # queued behind r1
    proto.connection_lost(close_error(1006))
    plan = [wire(e)["type"] for e in proto.connection_made()]
    assert plan == ["response.create"]
    assert proto.responses.usage.total_tokens == 7


def test_heard_text_cuts_at_a_word_boundary() -> None:
    """heard_text keeps the heard share of a truncated transcript, whole words only."""
    ev = ServerEvents("ga")
    proto = ClientProtocol()
    feed(proto, *start_reply(ev), ev.audio_delta("resp_1", "item_b", pcm_ms(1000)))
    feed(proto, ev.transcript_delta("resp_1", "item_b", "The quick brown fox jumps"))
    item = proto.conversation["item_b"]
    assert heard_text(item) == "The quick brown fox jumps"
    feed(
        proto,
        {
            "type": "conversation.item.truncated",
            "item_id": "item_b",
            "content_index": 0,
            "audio_end_ms": 400,
        },
    )
    assert heard_text(item) == "The quick"  # 40 % of the characters, whole words only


def test_session_created_reports_expiry_and_append_frames() -> None:
    """expires_at comes from session.created; append frames are valid JSON with base64."""
    proto = ClientProtocol()
    feed(proto, session_created("ga", expires_at=2_000_000_000))
    assert proto.expires_at == 2_000_000_000
    frame = json.loads(proto.append_audio_frame(b"\x01\x00"))
    assert frame["type"] == "input_audio_buffer.append"
    assert base64.b64decode(frame["audio"]) == b"\x01\x00"


def test_restore_is_not_confused_by_items_created_meanwhile() -> None:
    """An item the application creates while the restore is under way keeps its own id,
    and restored items echoed out of order are simply ticked off."""
    ev = ServerEvents("ga")
    proto = ClientProtocol()
    for item_id in ("item_1", "item_2"):
        user = {
            "id": item_id,
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": item_id}],
        }
        feed(proto, ev.item_added(user))
    proto.connection_lost(close_error(1006))
    creates = [wire(e) for e in proto.connection_made(reinject_history=True)]
    mine = proto.create_item({"type": "message", "role": "user", "content": []})
    mine_item = wire(mine.events[0])["item"]
    feed(proto, ev.item_added(creates[1]["item"]), ev.item_added(mine_item))
    feed(proto, ev.item_added(creates[0]["item"]))
    assert [i.id for i in proto.conversation.items] == ["item_1", "item_2", mine_item["id"]]
    assert proto.completions()[0].request is mine


@DIALECTS
def test_speech_without_assistant_audio_sends_nothing(dialect: str) -> None:
    """speech_started with no reply playing and none active: no truncate, no cancel."""
    ev = ServerEvents(dialect)
    proto = ClientProtocol(dialect=dialect)
    speech = parsed(proto, ev.speech_started("item_u"))
    assert not proto.wants_heard_position(speech)
    proto.receive(speech, 5.0)
    assert proto.events_to_send() == [] and proto.last_interruption is None


@DIALECTS
def test_parallel_calls_get_one_follow_up_and_cancelled_none(dialect: str) -> None:
    """Two calls of one response: one response.create after both outputs; a cancelled
    response's calls get outputs but no follow-up."""
    ev = ServerEvents(dialect)
    proto = ClientProtocol(dialect=dialect)
    calls = [ev.function_call_item(f"item_{c}", c, "ping", "{}") for c in ("c1", "c2")]
    feed(proto, ev.response_created("resp_1"))
    feed(proto, *(ev.output_item_done("resp_1", c, i) for i, c in enumerate(calls)))
    feed(proto, ev.response_done("resp_1", output=calls))
    assert [c.call_id for c in proto.tool_calls()] == ["c1", "c2"]
    first = [wire(e)["type"] for e in proto.tool_result(ToolResult("c1", "ping", "1"))]
    assert first == ["conversation.item.create"]
    second = [wire(e)["type"] for e in proto.tool_result(ToolResult("c2", "ping", "2"))]
    assert second == ["conversation.item.create", "response.create"]

    call = ev.function_call_item("item_c3", "c3", "ping", "{}")
    feed(proto, ev.response_created("resp_2"), ev.output_item_done("resp_2", call))
    feed(proto, ev.response_done("resp_2", status="cancelled", output=[call]))
    [late] = proto.tool_calls()
    out = [wire(e)["type"] for e in proto.tool_result(ToolResult(late.call_id, "ping", "3"))]
    assert out == ["conversation.item.create"]


def test_harmless_cancel_race_is_explained_and_refused_create_requeued() -> None:
    """A cancel that crossed response.done earns a harmless error (no warning); a create
    refused because the server started its own response waits for that one."""
    ev = ServerEvents("ga")
    proto = ClientProtocol()
    feed(proto, ev.response_created("resp_1"))
    [cancel] = proto.cancel_response()
    feed(proto, ev.response_done("resp_1", status="completed"))
    feed(proto, error(cancel.event_id, "response_cancel_not_active"))
    assert proto.error_explained
    [create] = proto.create_response()
    feed(proto, ev.response_created("resp_vad"))  # the server's own response (VAD)
    feed(proto, error(create.event_id, "conversation_already_has_active_response"))
    assert proto.error_explained and proto.events_to_send() == []
    feed(proto, ev.response_done("resp_vad"))
    assert [wire(e)["event_id"] for e in proto.events_to_send()] == [create.event_id]


def test_refused_update_keeps_the_config() -> None:
    """An update refused by the server fails its request; the protocol's config stays."""
    proto = ClientProtocol(config=SessionConfig(instructions="old"))
    request = proto.update(SessionConfig(instructions="new"))
    feed(proto, error(request.event_id))
    [done] = proto.completions()
    assert isinstance(done.error, ServerError)
    assert proto.config is not None and proto.config.instructions == "old"
