"""Tests for realtime.conversation: ordering, deltas, transcriptions, truncation, deletion."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.conversation import (
    Conversation,
    ConversationInterrupted,
    ItemAdded,
    ItemDeleted,
    ItemDone,
    ItemTruncated,
    ItemUpdated,
    b64_decoded_len,
)
from realtime.events import ServerEvent, encode_client_event, parse_server_event

NAMES = {
    "beta": {
        "added": "conversation.item.created",
        "text": "response.text",
        "audio": "response.audio",
        "transcript": "response.audio_transcript",
        "assistant_text": "text",
        "assistant_audio": "audio",
    },
    "ga": {
        "added": "conversation.item.added",
        "text": "response.output_text",
        "audio": "response.output_audio",
        "transcript": "response.output_audio_transcript",
        "assistant_text": "output_text",
        "assistant_audio": "output_audio",
    },
}
DIALECTS = ["beta", "ga"]


def ev(dialect: str, **fields: Any) -> ServerEvent:
    """Parse a server event of ``dialect`` from keyword fields."""
    fields.setdefault("event_id", "evt_s")
    if dialect == "ga" and fields["type"].endswith("input_audio_transcription.completed"):
        fields.setdefault("usage", {"type": "duration", "seconds": 1.0})
    return parse_server_event(json.dumps(fields), dialect)  # type: ignore[arg-type]


def user_item(item_id: str, text: str | None = None) -> dict[str, Any]:
    """A completed user message item (text, or audio awaiting its transcript)."""
    part = (
        {"type": "input_text", "text": text}
        if text
        else {"type": "input_audio", "transcript": None}
    )
    return {
        "id": item_id,
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [part],
    }


def added(dialect: str, item: dict[str, Any], prev: str | None) -> ServerEvent:
    """The dialect's item-added event."""
    return ev(dialect, type=NAMES[dialect]["added"], previous_item_id=prev, item=item)


def pcm_b64(ms: int) -> str:
    """Base64 of ``ms`` milliseconds of PCM16 24 kHz silence."""
    return base64.b64encode(bytes(48 * ms)).decode()


def assistant_turn(
    dialect: str, rid: str, item_id: str, prev: str | None, words: list[str], audio_ms: int = 0
) -> list[ServerEvent]:
    """Server events of an assistant audio reply streaming ``words`` as transcript."""
    n = NAMES[dialect]
    item = {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    ref = {"response_id": rid, "item_id": item_id, "output_index": 0, "content_index": 0}
    out = [
        ev(
            dialect,
            type="response.created",
            response={"id": rid, "status": "in_progress", "output": []},
        ),
        ev(dialect, type="response.output_item.added", response_id=rid, output_index=0, item=item),
        added(dialect, item, prev),
        ev(
            dialect,
            type="response.content_part.added",
            part={"type": n["assistant_audio"], "transcript": ""},
            **ref,
        ),
    ]
    for w in words:
        out.append(ev(dialect, type=n["transcript"] + ".delta", delta=w, **ref))
    if audio_ms:
        out.append(ev(dialect, type=n["audio"] + ".delta", delta=pcm_b64(audio_ms), **ref))
    return out


def finish_turn(dialect: str, rid: str, item_id: str, transcript: str) -> list[ServerEvent]:
    """Server events ending an assistant audio reply."""
    n = NAMES[dialect]
    ref = {"response_id": rid, "item_id": item_id, "output_index": 0, "content_index": 0}
    final = {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": n["assistant_audio"], "transcript": transcript}],
    }
    return [
        ev(dialect, type=n["transcript"] + ".done", transcript=transcript, **ref),
        ev(dialect, type="response.output_item.done", response_id=rid, output_index=0, item=final),
        ev(
            dialect,
            type="response.done",
            response={"id": rid, "status": "completed", "output": [final]},
        ),
    ]


def feed(conv: Conversation, events: list[ServerEvent]) -> list[Any]:
    """Apply events and collect the changes."""
    changes: list[Any] = []
    for e in events:
        changes += conv.apply(e)
    return changes


@pytest.mark.parametrize("dialect", DIALECTS)
def test_full_turn(dialect: str) -> None:
    """A user item then a streamed assistant reply: items, deltas and changes."""
    conv = Conversation()
    changes = feed(conv, [added(dialect, user_item("u1", "hello"), None)])
    assert [type(c) for c in changes] == [ItemAdded, ItemDone]
    changes = feed(conv, assistant_turn(dialect, "r1", "a1", "u1", ["Hi", " there"], audio_ms=100))
    kinds = [(type(c).__name__, getattr(c, "kind", None)) for c in changes]
    assert kinds == [
        ("ItemAdded", None),
        ("ItemUpdated", "transcript"),
        ("ItemUpdated", "transcript"),
        ("ItemUpdated", "audio"),
    ]
    a1 = conv["a1"]
    assert a1.role == "assistant" and a1.response_id == "r1"
    assert a1.transcript == "Hi there" and a1.content[0].audio_ms == pytest.approx(100)
    assert a1.content[0].audio == b""  # retention off by default
    assert conv.generating is a1
    changes = feed(conv, finish_turn(dialect, "r1", "a1", "Hi there!"))
    assert [type(c) for c in changes] == [ItemDone]
    assert a1.status == "completed" and a1.transcript == "Hi there!" and a1.done
    assert conv.generating is None
    assert [i.id for i in conv.items] == ["u1", "a1"]
    assert conv["u1"].text == "hello"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_deltas_unreported_keep_the_same_state(dialect: str) -> None:
    """report_deltas=False (the protocol core's choice): the same items and content, the
    same non-delta changes, but no ItemUpdated per streamed delta."""
    turn = [added(dialect, user_item("u1", "hello"), None)]
    turn += assistant_turn(dialect, "r1", "a1", "u1", ["Hi", " there"], audio_ms=100)
    turn += finish_turn(dialect, "r1", "a1", "Hi there!")
    full, quiet = Conversation(), Conversation(report_deltas=False)
    full_changes, quiet_changes = feed(full, turn), feed(quiet, turn)

    def shape(changes: list[Any]) -> list[tuple[str, str]]:
        return [(type(c).__name__, c.item.id) for c in changes]

    assert shape([c for c in full_changes if not isinstance(c, ItemUpdated)]) == shape(
        quiet_changes
    )
    assert [type(c) for c in quiet_changes] == [ItemAdded, ItemDone, ItemAdded, ItemDone]
    for conv in (full, quiet):
        a1 = conv["a1"]
        assert a1.transcript == "Hi there!" and a1.content[0].audio_ms == pytest.approx(100)
        assert [i.id for i in conv.items] == ["u1", "a1"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_text_deltas(dialect: str) -> None:
    """Text deltas of both dialects accumulate into the part's text."""
    n = NAMES[dialect]
    conv = Conversation()
    ref = {"response_id": "r1", "item_id": "a1", "output_index": 0, "content_index": 0}
    item = {
        "id": "a1",
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    events = [
        ev(dialect, type="response.output_item.added", response_id="r1", output_index=0, item=item)
    ]
    events += [ev(dialect, type=n["text"] + ".delta", delta=d, **ref) for d in ["a", "b", "c"]]
    changes = feed(conv, events)
    assert [c.delta for c in changes if isinstance(c, ItemUpdated)] == ["a", "b", "c"]
    assert conv["a1"].content[0].text == "abc" and conv["a1"].text == "abc"
    conv.apply(ev(dialect, type=n["text"] + ".done", text="abcd", **ref))
    assert conv["a1"].text == "abcd"


def test_many_deltas_join_lazily() -> None:
    """Thousands of deltas accumulate correctly; reading in between keeps them consistent."""
    conv = Conversation()
    ref = {"response_id": "r1", "item_id": "a1", "output_index": 0, "content_index": 0}
    conv.apply(
        ev(
            "ga",
            type="response.output_item.added",
            response_id="r1",
            output_index=0,
            item={"id": "a1", "type": "message", "role": "assistant", "content": []},
        )
    )
    delta = ev("ga", type="response.output_audio_transcript.delta", delta="x", **ref)
    for i in range(5000):
        conv.apply(delta)
        if i == 2500:
            assert conv["a1"].transcript == "x" * 2501
    assert conv["a1"].transcript == "x" * 5000
    assert len(conv["a1"].content[0]._transcript) == 1


@pytest.mark.parametrize("dialect", DIALECTS)
def test_out_of_order_items_placed_by_previous_item_id(dialect: str) -> None:
    """Items arriving out of order end up ordered by previous_item_id."""
    conv = Conversation()
    changes = feed(
        conv,
        [
            added(dialect, user_item("c", "3"), "b"),
            added(dialect, user_item("d", "4"), "c"),
            added(dialect, user_item("a", "1"), None),
        ],
    )
    assert [i.id for i in conv.items] == ["c", "d", "a"]  # "b" unknown: provisional order
    changes = feed(conv, [added(dialect, user_item("b", "2"), "a")])
    assert [i.id for i in conv.items] == ["a", "b", "c", "d"]
    moved = [c for c in changes if isinstance(c, ItemUpdated) and c.kind == "moved"]
    assert [c.item.id for c in moved] == ["c", "d"]
    assert [i.previous_item_id for i in conv.items] == [None, "a", "b", "c"]


def test_insert_in_the_middle() -> None:
    """An item whose predecessor is in the middle is inserted right after it."""
    conv = Conversation()
    feed(conv, [added("ga", user_item("a", "1"), None), added("ga", user_item("c", "3"), "a")])
    feed(conv, [added("ga", user_item("b", "2"), "a")])
    assert [i.id for i in conv.items] == ["a", "b", "c"]


def test_output_item_placed_when_created_event_arrives() -> None:
    """A response item appended at output_item.added moves once its previous_item_id is known."""
    conv = Conversation()
    feed(
        conv, [added("beta", user_item("u1", "x"), None), added("beta", user_item("u2", "y"), "u1")]
    )
    item = {
        "id": "a1",
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    feed(
        conv,
        [ev("beta", type="response.output_item.added", response_id="r", output_index=0, item=item)],
    )
    feed(conv, [added("beta", user_item("u3", "z"), "u2")])
    assert [i.id for i in conv.items] == ["u1", "u2", "u3", "a1"]
    changes = feed(conv, [added("beta", item, "u1")])
    assert [i.id for i in conv.items] == ["u1", "a1", "u2", "u3"]
    assert not any(isinstance(c, ItemAdded) for c in changes)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_late_input_transcription_after_response(dialect: str) -> None:
    """Input transcription deltas/completed land in the user item even after the reply finished."""
    conv = Conversation()
    events = [added(dialect, user_item("u1"), None)]
    events += assistant_turn(dialect, "r1", "a1", "u1", ["Sure."])
    events += finish_turn(dialect, "r1", "a1", "Sure.")
    feed(conv, events)
    p = "conversation.item.input_audio_transcription."
    ref = {"item_id": "u1", "content_index": 0}
    changes = feed(
        conv,
        [
            ev(dialect, type=p + "delta", delta="what's ", **ref),
            ev(dialect, type=p + "delta", delta="up", **ref),
        ],
    )
    assert [c.kind for c in changes] == ["input_transcript", "input_transcript"]
    assert conv["u1"].transcript == "what's up"
    assert conv["u1"].content[0].transcription_status == "in_progress"
    changes = feed(conv, [ev(dialect, type=p + "completed", transcript="What's up?", **ref)])
    assert [(c.kind, c.delta) for c in changes] == [("input_transcript_completed", "What's up?")]
    part = conv["u1"].content[0]
    assert part.transcript == "What's up?" and part.transcription_status == "completed"
    assert conv["a1"].transcript == "Sure."
    assert [i.id for i in conv.items] == ["u1", "a1"]


def test_input_transcription_second_content_part_and_failure() -> None:
    """content_index selects the part; a failure records the error."""
    conv = Conversation()
    p = "conversation.item.input_audio_transcription."
    feed(conv, [added("ga", user_item("u1"), None)])
    changes = feed(
        conv,
        [
            ev(
                "ga",
                type=p + "failed",
                item_id="u1",
                content_index=1,
                error={
                    "type": "transcription_error",
                    "code": "audio_unintelligible",
                    "message": "bad audio",
                },
            ),
        ],
    )
    assert [(c.kind, c.delta, c.content_index) for c in changes] == [
        ("input_transcript_failed", "bad audio", 1)
    ]
    assert conv["u1"].content[1].transcription_status == "failed"
    assert conv["u1"].content[1].transcription_error.code == "audio_unintelligible"


def test_transcription_for_unknown_item_creates_placeholder() -> None:
    """A transcription for an item not seen yet creates it; the later added event fills it in."""
    conv = Conversation()
    changes = feed(
        conv,
        [
            ev(
                "ga",
                type="conversation.item.input_audio_transcription.completed",
                item_id="u9",
                content_index=0,
                transcript="hi",
            )
        ],
    )
    assert isinstance(changes[0], ItemAdded) and conv["u9"].role == "user"
    changes = feed(conv, [added("ga", user_item("u9"), None)])
    assert not any(isinstance(c, ItemAdded) for c in changes)
    assert conv["u9"].transcript == "hi"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_function_call_arguments_accumulate(dialect: str) -> None:
    """Function-call argument deltas are exposed on the item for UIs."""
    conv = Conversation()
    item = {
        "id": "fc1",
        "type": "function_call",
        "status": "in_progress",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": "",
    }
    feed(
        conv,
        [
            ev(
                dialect,
                type="response.output_item.added",
                response_id="r1",
                output_index=0,
                item=item,
            )
        ],
    )
    ref = {"response_id": "r1", "item_id": "fc1", "output_index": 0, "call_id": "call_1"}
    changes = feed(
        conv,
        [
            ev(dialect, type="response.function_call_arguments.delta", delta=d, **ref)
            for d in ['{"ci', 'ty": ', '"Oslo"}']
        ],
    )
    assert [c.kind for c in changes] == ["arguments"] * 3
    fc = conv["fc1"]
    assert (
        fc.arguments == '{"city": "Oslo"}' and fc.name == "get_weather" and fc.call_id == "call_1"
    )
    feed(
        conv,
        [
            ev(
                dialect,
                type="response.function_call_arguments.done",
                arguments='{"city": "Oslo"}',
                name="get_weather",
                **ref,
            )
        ],
    )
    assert fc.arguments == '{"city": "Oslo"}'


@pytest.mark.parametrize("dialect", DIALECTS)
def test_truncation(dialect: str) -> None:
    """conversation.item.truncated cuts retained audio and marks the transcript truncated."""
    conv = Conversation(audio_retention_ms=5000)
    feed(conv, assistant_turn(dialect, "r1", "a1", None, ["Long answer"], audio_ms=3000))
    part = conv["a1"].content[0]
    assert len(part.audio) == 48 * 3000 and part.audio_ms == pytest.approx(3000)
    changes = feed(
        conv,
        [
            ev(
                dialect,
                type="conversation.item.truncated",
                item_id="a1",
                content_index=0,
                audio_end_ms=1200,
            )
        ],
    )
    assert changes == [ItemTruncated(conv["a1"], 0, 1200)]
    assert len(part.audio) == 48 * 1200 and part.audio_ms == pytest.approx(1200)
    assert part.truncated and part.transcript_truncated and part.audio_end_ms == 1200
    # A later transcript.done does not overwrite the truncated transcript flag.
    assert part.transcript == "Long answer"


def test_truncation_of_unknown_item_is_ignored() -> None:
    """Truncating an unknown item produces no change."""
    assert (
        Conversation().apply(
            ev(
                "ga",
                type="conversation.item.truncated",
                item_id="x",
                content_index=0,
                audio_end_ms=1,
            )
        )
        == []
    )


def test_audio_retention_bounded() -> None:
    """Only the first audio_retention_ms of audio is kept; audio_ms counts everything."""
    conv = Conversation(audio_retention_ms=250)
    feed(conv, assistant_turn("ga", "r1", "a1", None, [], audio_ms=0))
    ref = {"response_id": "r1", "item_id": "a1", "output_index": 0, "content_index": 0}
    chunk = ev("ga", type="response.output_audio.delta", delta=pcm_b64(100), **ref)
    for _ in range(10):
        conv.apply(chunk)
    part = conv["a1"].content[0]
    assert len(part.audio) == 48 * 250
    assert part.audio_ms == pytest.approx(1000)


def test_g711_audio_ms() -> None:
    """With G.711, 8 bytes are one millisecond."""
    conv = Conversation(audio_format="g711_ulaw")
    feed(conv, assistant_turn("ga", "r1", "a1", None, [], audio_ms=0))
    conv.apply(
        ev(
            "ga",
            type="response.output_audio.delta",
            response_id="r1",
            item_id="a1",
            output_index=0,
            content_index=0,
            delta=base64.b64encode(bytes(800)).decode(),
        )
    )
    assert conv["a1"].audio_ms == pytest.approx(100)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_deletion(dialect: str) -> None:
    """conversation.item.deleted removes the item and keeps the rest linked."""
    conv = Conversation()
    feed(
        conv, [added(dialect, user_item(x, x), p) for x, p in [("a", None), ("b", "a"), ("c", "b")]]
    )
    changes = conv.apply(ev(dialect, type="conversation.item.deleted", item_id="b"))
    assert isinstance(changes[0], ItemDeleted) and changes[0].item_id == "b"
    assert [i.id for i in conv.items] == ["a", "c"] and "b" not in conv and len(conv) == 2
    conv.apply(ev(dialect, type="conversation.item.deleted", item_id="a"))
    conv.apply(ev(dialect, type="conversation.item.deleted", item_id="c"))
    assert conv.items == []
    assert conv.apply(ev(dialect, type="conversation.item.deleted", item_id="zz")) == [
        ItemDeleted("zz")
    ]
    feed(conv, [added(dialect, user_item("d", "d"), None)])
    assert [i.id for i in conv.items] == ["d"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_interrupted_while_generating(dialect: str) -> None:
    """speech_started while the assistant item is in progress reports ConversationInterrupted."""
    conv = Conversation()
    feed(conv, assistant_turn(dialect, "r1", "a1", None, ["Once upon"], audio_ms=500))
    changes = conv.apply(
        ev(dialect, type="input_audio_buffer.speech_started", audio_start_ms=1234, item_id="u2")
    )
    assert changes == [ConversationInterrupted(conv["a1"], 1234, "u2")]
    feed(conv, finish_turn(dialect, "r1", "a1", "Once upon"))
    assert (
        conv.apply(
            ev(dialect, type="input_audio_buffer.speech_started", audio_start_ms=9, item_id="u3")
        )
        == []
    )


def test_ga_item_done_and_retrieved() -> None:
    """GA conversation.item.done finalises an item once; retrieved refreshes fields."""
    conv = Conversation()
    item = user_item("u1")
    item["status"] = "in_progress"
    assert [type(c) for c in conv.apply(added("ga", item, None))] == [ItemAdded]
    item["status"] = "completed"
    item["content"][0]["transcript"] = "hey"
    done = ev("ga", type="conversation.item.done", previous_item_id=None, item=item)
    assert [type(c) for c in conv.apply(done)] == [ItemDone]
    assert conv.apply(done) == []
    assert conv["u1"].transcript == "hey"
    item["content"][0]["transcript"] = "hey you"
    conv.apply(ev("ga", type="conversation.item.retrieved", item=item))
    assert conv["u1"].transcript == "hey you"


def test_unrelated_events_and_clear() -> None:
    """Events outside the conversation change nothing; clear() forgets everything."""
    conv = Conversation()
    assert conv.apply(ev("ga", type="input_audio_buffer.cleared")) == []
    assert conv.apply(ev("ga", type="something.new", x=1)) == []
    feed(conv, [added("ga", user_item("a", "1"), None)])
    conv.clear()
    assert len(conv) == 0 and conv.items == [] and conv.get("a") is None


def test_bad_options() -> None:
    """Negative retention and unknown formats are rejected."""
    with pytest.raises(ValueError):
        Conversation(-1)
    with pytest.raises(ValueError):
        Conversation(audio_format="mp3")


def test_b64_decoded_len() -> None:
    """The decoded length is computed from the base64 text alone."""
    for n in range(10):
        assert b64_decoded_len(base64.b64encode(bytes(n)).decode()) == n


def test_previous_item_cycle_does_not_hang() -> None:
    """Contradictory predecessors (a cycle) do not loop forever."""
    conv = Conversation()
    feed(conv, [added("ga", user_item("a", "1"), "b"), added("ga", user_item("b", "2"), "a")])
    assert sorted(i.id for i in conv.items) == ["a", "b"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_replay_events(dialect: str) -> None:
    """replay_events re-creates the history as text items in order, per dialect."""
    conv = Conversation()
    events = [added(dialect, user_item("u1"), None)]
    events += assistant_turn(dialect, "r1", "a1", "u1", ["Hello"])
    events += finish_turn(dialect, "r1", "a1", "Hello!")
    events.append(
        ev(
            dialect,
            type="conversation.item.input_audio_transcription.completed",
            item_id="u1",
            content_index=0,
            transcript="Hi.",
        )
    )
    fc = {
        "id": "f1",
        "type": "function_call",
        "status": "completed",
        "call_id": "c1",
        "name": "lookup",
        "arguments": '{"q": 1}',
    }
    out = {
        "id": "o1",
        "type": "function_call_output",
        "status": "completed",
        "call_id": "c1",
        "output": "42",
    }
    events += [
        added(dialect, fc, "a1"),
        added(dialect, out, "f1"),
        added(dialect, user_item("u2"), "o1"),
    ]
    feed(conv, events)
    objs = [json.loads(encode_client_event(e)) for e in conv.replay_events(dialect)]  # type: ignore[arg-type]
    items = [o["item"] for o in objs]
    assistant_part = "text" if dialect == "beta" else "output_text"
    assert items == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi."}]},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": assistant_part, "text": "Hello!"}],
        },
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": '{"q": 1}'},
        {"type": "function_call_output", "call_id": "c1", "output": "42"},
    ]
    assert all(o["type"] == "conversation.item.create" for o in objs)


def test_untyped_events_are_ignored() -> None:
    """The other dialect's event names parse as UnknownServerEvent and change nothing."""
    conv = Conversation()
    feed(conv, assistant_turn("beta", "r1", "a1", None, ["x"]))
    stray = ev(
        "beta",
        type="response.output_audio_transcript.delta",
        response_id="r1",
        item_id="a1",
        output_index=0,
        content_index=0,
        delta="y",
    )
    assert type(stray).__name__ == "UnknownServerEvent"
    assert conv.apply(stray) == []
    assert conv["a1"].transcript == "x"


@settings(max_examples=150, deadline=None)
@given(order=st.permutations(list(range(8))), dialect=st.sampled_from(DIALECTS))
def test_any_arrival_order_gives_chain_order(order: list[int], dialect: str) -> None:
    """Whatever order a chain of items arrives in, the conversation ends in chain order."""
    ids = [f"i{n}" for n in range(8)]
    conv = Conversation()
    for n in order:
        conv.apply(added(dialect, user_item(ids[n], str(n)), ids[n - 1] if n else None))
    assert [i.id for i in conv.items] == ids
    # Walking backwards through the links agrees with walking forwards.
    back = []
    node = conv._tail
    while node is not None:
        back.append(node.id)
        node = node._prev
    assert back == ids[::-1]
