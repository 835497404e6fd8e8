"""Parsing and encoding of realtime events, both dialects (issue 2, section 3).

Written against the public contract of ``realtime.events`` (parse_server_event,
parse_client_event, encode_client_event, encode_server_event, server_event_types,
UnknownServerEvent, InputAudioBufferAppendEvent) and the two spec files, not against
the models' internals.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

import realtime.events as ev
from realtime.events.registry import BETA_WEBRTC_SERVER_EXTENSIONS
from realtime.events.registry import wire_type as wire_type_of
from realtime.exceptions import ProtocolError, RealtimeError
from tests.spec_kit import load_spec

DIALECTS = ("beta", "ga")

# Wire name of the audio delta per dialect (spec: RealtimeServerEventResponseAudioDelta).
AUDIO_DELTA = {"beta": "response.audio.delta", "ga": "response.output_audio.delta"}

MAX_MESSAGE = 1000  # a ProtocolError message is at most this long, whatever the frame size


# ---------------------------------------------------------------- spec helpers


def _type_of(schema: dict[str, Any]) -> str:
    """The wire ``type`` a spec event schema declares."""
    prop = schema["properties"]["type"]
    return str(prop["enum"][0] if "enum" in prop else prop["const"])


def _union(spec: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    """Wire type -> schema for the members of the union schema ``name``."""
    schemas = spec["components"]["schemas"]
    members = schemas[name].get("anyOf") or schemas[name]["oneOf"]
    out = {}
    for member in members:
        schema = schemas[member["$ref"].rsplit("/", 1)[-1]]
        out[_type_of(schema)] = schema
    return out


def _all_event_types(spec: dict[str, Any]) -> set[str]:
    """Every server event type a realtime event schema of the spec declares, in a union or not."""
    out = set()
    for name, schema in spec["components"]["schemas"].items():
        props = schema.get("properties", {})
        if name.startswith("Realtime") and "ServerEvent" in name and "type" in props:
            out.add(_type_of(schema))
    return out


def load_example(text: str) -> dict[str, Any]:
    """A spec example as a dict (drops // comments and trailing commas, which JSON forbids)."""
    text = re.sub(r"(^|\s)//.*$", r"\1", text, flags=re.M)
    text = re.sub(r",(\s*[}\]])", r"\1", text)
    value, _ = json.JSONDecoder().raw_decode(text.strip())  # some hold several: take the first
    return dict(value)


def _example(schema: dict[str, Any]) -> dict[str, Any]:
    return load_example(schema["x-oaiMeta"]["example"])


def _only_in(dialect: str) -> list[tuple[str, dict[str, Any]]]:
    """(type, example) of server events in ``dialect``'s union that the other spec never defines."""
    other = "ga" if dialect == "beta" else "beta"
    mine = _union(load_spec(dialect), "RealtimeServerEvent")
    theirs = _all_event_types(load_spec(other))
    # The example's own `type` is not trusted (the dtmf example carries a stray space).
    return sorted((t, {**_example(s), "type": t}) for t, s in mine.items() if t not in theirs)


def frame(obj: Any) -> bytes:
    """Compact JSON bytes of ``obj``, as a server would send it."""
    return json.dumps(obj, separators=(",", ":")).encode()


def audio_delta(dialect: str, delta: str, /, **overrides: Any) -> dict[str, Any]:
    """A well-formed audio delta event of ``dialect`` (shape from the spec example)."""
    event: dict[str, Any] = {
        "event_id": "event_4950",
        "type": AUDIO_DELTA[dialect],
        "response_id": "resp_001",
        "item_id": "msg_008",
        "output_index": 0,
        "content_index": 0,
        "delta": delta,
    }
    event.update(overrides)
    return event


# ---------------------------------------------------------------- unknown types


@pytest.mark.parametrize("dialect", DIALECTS)
def test_unknown_type_gives_unknown_event(dialect: str) -> None:
    """A type no spec defines comes back as UnknownServerEvent with .type and .raw."""
    raw = {"type": "brand_new.thing", "event_id": "event_1", "payload": {"a": [1, 2]}}
    event = ev.parse_server_event(frame(raw), dialect=dialect)
    assert type(event) is ev.UnknownServerEvent
    assert isinstance(event, ev.ServerEvent)
    assert event.type == "brand_new.thing"
    assert event.raw == raw


@pytest.mark.parametrize("dialect", DIALECTS)
def test_other_dialects_types_are_unknown(dialect: str) -> None:
    """Every server type only the other dialect's spec defines is unknown here, never mis-typed
    (except the output audio buffer events, which beta WebRTC sessions send too)."""
    other = "ga" if dialect == "beta" else "beta"
    cases = _only_in(other)
    assert cases, f"the {other} spec defines no types of its own: the spec helper is wrong"
    webrtc = {wire_type_of(cls) for cls in BETA_WEBRTC_SERVER_EXTENSIONS}
    for wire_type_, example in cases:
        if dialect == "beta" and wire_type_ in webrtc:
            assert type(ev.parse_server_event(frame(example), dialect=dialect)).__name__ in {
                cls.__name__ for cls in BETA_WEBRTC_SERVER_EXTENSIONS
            }
            continue
        event = ev.parse_server_event(frame(example), dialect=dialect)
        assert type(event) is ev.UnknownServerEvent, (wire_type_, type(event).__name__)
        assert event.type == wire_type_
        assert event.raw == example


def test_audio_delta_names_are_dialect_specific() -> None:
    """response.audio.delta is typed in beta only; response.output_audio.delta in GA only."""
    pcm = b"\x01\x02" * 8
    b64 = base64.b64encode(pcm).decode()
    beta = ev.parse_server_event(frame(audio_delta("beta", b64)), dialect="beta")
    ga = ev.parse_server_event(frame(audio_delta("ga", b64)), dialect="ga")
    assert type(beta) is ev.server_event_types("beta")["response.audio.delta"]
    assert type(ga) is ev.server_event_types("ga")["response.output_audio.delta"]
    assert type(ga).__name__ == "ResponseOutputAudioDeltaEvent"
    crossed_beta = ev.parse_server_event(frame(audio_delta("ga", b64)), dialect="beta")
    crossed_ga = ev.parse_server_event(frame(audio_delta("beta", b64)), dialect="ga")
    assert type(crossed_beta) is ev.UnknownServerEvent
    assert type(crossed_ga) is ev.UnknownServerEvent


def test_default_dialect_is_ga() -> None:
    """parse_server_event without a dialect reads GA type names."""
    event = ev.parse_server_event(frame(audio_delta("ga", "AAAA")))
    assert type(event) is ev.server_event_types("ga")["response.output_audio.delta"]
    assert type(ev.parse_server_event(frame(audio_delta("beta", "AAAA")))) is ev.UnknownServerEvent


@pytest.mark.parametrize("dialect", DIALECTS)
def test_frame_without_string_type_is_never_a_typed_model(dialect: str) -> None:
    """A frame whose type is missing or not a string is a ProtocolError or unknown, never typed."""
    for raw in ({"event_id": "e"}, {"type": 7}, {"type": None}, {"type": ["error"]}):
        try:
            event = ev.parse_server_event(frame(raw), dialect=dialect)
        except ProtocolError as exc:
            assert len(str(exc)) < MAX_MESSAGE
        else:
            assert type(event) is ev.UnknownServerEvent, raw


@pytest.mark.parametrize("dialect", DIALECTS)
def test_unknown_client_event_is_protocol_error(dialect: str) -> None:
    """parse_client_event rejects a type the dialect does not define, naming it."""
    with pytest.raises(ProtocolError) as info:
        ev.parse_client_event(frame({"type": "no_such.event"}), dialect=dialect)
    assert "no_such.event" in str(info.value)


def test_output_audio_buffer_clear_is_typed_in_both_dialects() -> None:
    """output_audio_buffer.clear is GA, and beta WebRTC sessions accept it too."""
    raw = frame({"type": "output_audio_buffer.clear", "event_id": "e1"})
    for dialect in ("ga", "beta"):
        event = ev.parse_client_event(raw, dialect=dialect)
        assert isinstance(event, ev.OutputAudioBufferClearEvent)


def test_ga_only_client_shape_is_rejected_by_beta() -> None:
    """A GA-only client event (transcription_session.update is beta-only, the reverse)."""
    raw = frame({"type": "transcription_session.update", "event_id": "e1", "session": {}})
    assert ev.parse_client_event(raw, dialect="beta").type == "transcription_session.update"
    with pytest.raises(ProtocolError):
        ev.parse_client_event(raw, dialect="ga")


# ---------------------------------------------------------------- extra fields


@pytest.mark.parametrize("dialect", DIALECTS)
def test_extra_fields_kept_and_reencoded(dialect: str) -> None:
    """Fields the spec does not define survive parse and encode_server_event."""
    raw = audio_delta(dialect, "AAAA", x_future={"nested": [1, "two"]}, x_flag=True)
    event = ev.parse_server_event(frame(raw), dialect=dialect)
    assert type(event) is not ev.UnknownServerEvent
    assert json.loads(ev.encode_server_event(event)) == raw


@pytest.mark.parametrize("dialect", DIALECTS)
def test_nested_extra_fields_kept(dialect: str) -> None:
    """An unknown field inside a nested object (the error body) is kept too."""
    raw = {
        "event_id": "event_890",
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "code": "invalid_event",
            "message": "The 'type' field is missing.",
            "param": None,
            "event_id": "event_567",
            "x_hint": "new server field",
        },
    }
    event = ev.parse_server_event(frame(raw), dialect=dialect)
    assert type(event) is ev.server_event_types(dialect)["error"]
    assert json.loads(ev.encode_server_event(event)) == raw


@pytest.mark.parametrize("dialect", DIALECTS)
def test_client_extra_fields_kept(dialect: str) -> None:
    """parse_client_event keeps unknown fields and encode_client_event writes them back."""
    raw = {
        "type": "conversation.item.truncate",
        "event_id": "event_678",
        "item_id": "item_002",
        "content_index": 0,
        "audio_end_ms": 1500,
        "x_future": [1, 2],
    }
    event = ev.parse_client_event(frame(raw), dialect=dialect)
    assert json.loads(ev.encode_client_event(event)) == raw


# ---------------------------------------------------------------- malformed frames


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b"not json",
        b'{"type": "error",',
        b"[1, 2]",
        b'"error"',
        b"42",
        b"null",
        b'{"type":"error","error":{"message":"\xff\xfe"}}',
    ],
    ids=["empty", "brace", "text", "truncated", "array", "string", "number", "null", "bad-utf8"],
)
def test_malformed_frames_are_protocol_errors(dialect: str, data: bytes) -> None:
    """Malformed JSON, invalid UTF-8 and non-object JSON raise ProtocolError."""
    with pytest.raises(ProtocolError) as info:
        ev.parse_server_event(data, dialect=dialect)
    assert len(str(info.value)) < MAX_MESSAGE


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "override",
    [{"output_index": "zero"}, {"content_index": [0]}, {"delta": 17}, {"response_id": {"id": 1}}],
    ids=["str-for-int", "list-for-int", "int-for-str", "object-for-str"],
)
def test_wrong_field_type_names_event_type(dialect: str, override: dict[str, Any]) -> None:
    """A known event with a field of the wrong type raises ProtocolError naming the type."""
    wire_type = AUDIO_DELTA[dialect]
    with pytest.raises(ProtocolError) as info:
        ev.parse_server_event(frame(audio_delta(dialect, "AAAA", **override)), dialect=dialect)
    assert info.value.event_type == wire_type
    assert wire_type in str(info.value)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_wrong_nested_type_is_protocol_error(dialect: str) -> None:
    """error.error must be an object (spec): a string there is a ProtocolError naming 'error'."""
    with pytest.raises(ProtocolError) as info:
        ev.parse_server_event(
            frame({"type": "error", "event_id": "e", "error": "oops"}), dialect=dialect
        )
    assert info.value.event_type == "error"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("missing", ["delta", "item_id", "response_id", "output_index"])
def test_missing_required_field_names_event_type(dialect: str, missing: str) -> None:
    """A known event without a field the spec requires raises ProtocolError naming the type."""
    raw = audio_delta(dialect, "AAAA")
    del raw[missing]
    with pytest.raises(ProtocolError) as info:
        ev.parse_server_event(frame(raw), dialect=dialect)
    assert info.value.event_type == AUDIO_DELTA[dialect]
    assert AUDIO_DELTA[dialect] in str(info.value)


def test_missing_required_client_field() -> None:
    """parse_client_event: input_audio_buffer.append without audio is a ProtocolError."""
    for dialect in DIALECTS:
        with pytest.raises(ProtocolError) as info:
            ev.parse_client_event(frame({"type": "input_audio_buffer.append"}), dialect=dialect)
        assert info.value.event_type == "input_audio_buffer.append"


# ---------------------------------------------------------------- 20 MB frames


@pytest.fixture(scope="module")
def big_b64() -> str:
    """About 20 MB of base64 audio (15 MB of PCM16)."""
    return base64.b64encode(bytes(range(256)) * 58_600).decode()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_valid_20mb_audio_delta_parses(dialect: str, big_b64: str) -> None:
    """A valid 20 MB audio delta parses, keeps base64 and decodes on demand."""
    data = frame(audio_delta(dialect, big_b64))
    assert len(data) > 20_000_000
    event = ev.parse_server_event(data, dialect=dialect)
    assert type(event) is ev.server_event_types(dialect)[AUDIO_DELTA[dialect]]
    assert isinstance(event.delta, str)
    assert event.delta == big_b64
    assert event.audio_bytes() == base64.b64decode(big_b64)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "override",
    [{"output_index": "zero"}, {"delta": ["x" * 20_000_000]}, {"content_index": "x" * 20_000_000}],
    ids=["bad-small-field", "huge-bad-field", "huge-string-for-int"],
)
def test_20mb_frame_with_bad_field_gives_short_error(
    dialect: str, big_b64: str, override: dict[str, Any]
) -> None:
    """A 20 MB frame with an invalid field gives a ProtocolError of bounded length."""
    data = frame(audio_delta(dialect, big_b64, **override))
    assert len(data) > 20_000_000
    with pytest.raises(ProtocolError) as info:
        ev.parse_server_event(data, dialect=dialect)
    assert len(str(info.value)) < MAX_MESSAGE
    assert len(info.value.excerpt) < MAX_MESSAGE
    assert info.value.event_type == AUDIO_DELTA[dialect]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_20mb_malformed_json_gives_short_error(dialect: str, big_b64: str) -> None:
    """A truncated 20 MB frame (invalid JSON) gives a short ProtocolError."""
    data = frame(audio_delta(dialect, big_b64))[:-2]
    with pytest.raises(ProtocolError) as info:
        ev.parse_server_event(data, dialect=dialect)
    assert len(str(info.value)) < MAX_MESSAGE
    assert len(info.value.excerpt) < MAX_MESSAGE


# ---------------------------------------------------------------- str and bytes


@pytest.mark.parametrize("dialect", DIALECTS)
def test_bytes_and_str_give_the_same_event(dialect: str) -> None:
    """parse_server_event accepts bytes and str alike, with the same result."""
    raw = audio_delta(dialect, base64.b64encode(b"\x00\x10" * 50).decode(), x_note="é ✓")
    as_bytes = ev.parse_server_event(frame(raw), dialect=dialect)
    as_str = ev.parse_server_event(frame(raw).decode(), dialect=dialect)
    assert as_bytes == as_str
    assert type(as_bytes) is type(as_str)


def test_client_bytes_and_str() -> None:
    """parse_client_event accepts bytes and str alike."""
    raw = {"type": "input_audio_buffer.commit", "event_id": "event_789"}
    assert ev.parse_client_event(frame(raw)) == ev.parse_client_event(frame(raw).decode())


# ---------------------------------------------------------------- encoding


def _client_cls(dialect: str, wire_type: str) -> type[ev.ClientEvent]:
    return ev.client_event_types(dialect)[wire_type]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_encode_writes_type_without_it_being_passed(dialect: str) -> None:
    """encode_client_event always writes `type`, also when the caller never set it."""
    for wire_type in ("input_audio_buffer.commit", "input_audio_buffer.clear", "response.cancel"):
        encoded = json.loads(ev.encode_client_event(_client_cls(dialect, wire_type)()))
        assert encoded["type"] == wire_type


@pytest.mark.parametrize("dialect", DIALECTS)
def test_encode_is_compact(dialect: str) -> None:
    """The encoding has no whitespace between tokens."""
    cls = _client_cls(dialect, "conversation.item.truncate")
    encoded = ev.encode_client_event(cls(item_id="item_002", content_index=0, audio_end_ms=1500))
    assert " " not in encoded and "\n" not in encoded
    assert encoded == json.dumps(json.loads(encoded), separators=(",", ":"))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_encode_omits_unset_optionals(dialect: str) -> None:
    """Only type, event_id and the fields set are written."""
    cls = _client_cls(dialect, "conversation.item.truncate")
    encoded = json.loads(
        ev.encode_client_event(cls(item_id="item_002", content_index=0, audio_end_ms=1500))
    )
    assert set(encoded) == {"type", "event_id", "item_id", "content_index", "audio_end_ms"}
    cancel = json.loads(ev.encode_client_event(_client_cls(dialect, "response.cancel")()))
    assert set(cancel) == {"type", "event_id"}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_event_id_generated_when_absent(dialect: str) -> None:
    """A missing event_id is generated: a non-empty string, different per event."""
    cls = _client_cls(dialect, "input_audio_buffer.commit")
    first = json.loads(ev.encode_client_event(cls()))["event_id"]
    second = json.loads(ev.encode_client_event(cls()))["event_id"]
    assert isinstance(first, str) and first
    assert isinstance(second, str) and second
    assert first != second


@pytest.mark.parametrize("dialect", DIALECTS)
def test_event_id_kept_when_given(dialect: str) -> None:
    """An event_id given by the caller is written unchanged."""
    cls = _client_cls(dialect, "response.cancel")
    encoded = json.loads(ev.encode_client_event(cls(event_id="evt_mine", response_id="resp_1")))
    assert encoded == {"type": "response.cancel", "event_id": "evt_mine", "response_id": "resp_1"}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_encoded_client_event_parses_back(dialect: str) -> None:
    """encode_client_event output is accepted by parse_client_event of the same dialect."""
    cls = _client_cls(dialect, "conversation.item.truncate")
    original = cls(event_id="e9", item_id="item_002", content_index=1, audio_end_ms=20)
    again = ev.parse_client_event(ev.encode_client_event(original), dialect=dialect)
    assert type(again) is cls
    assert again == original


# ---------------------------------------------------------------- audio


@pytest.mark.parametrize("dialect", DIALECTS)
def test_audio_delta_stays_base64(dialect: str) -> None:
    """An audio delta keeps its base64 str; audio_bytes() decodes it."""
    pcm = bytes(range(256)) * 10
    b64 = base64.b64encode(pcm).decode()
    event = ev.parse_server_event(frame(audio_delta(dialect, b64)), dialect=dialect)
    assert event.delta == b64
    assert event.audio_bytes() == pcm


@pytest.mark.parametrize("dialect", DIALECTS)
def test_invalid_base64_decoding_is_a_typed_error(dialect: str) -> None:
    """audio_bytes() on a delta that is not base64 raises a RealtimeError, not binascii.Error."""
    event = ev.parse_server_event(
        frame(audio_delta(dialect, "Base64EncodedAudioDelta")), dialect=dialect
    )
    with pytest.raises(RealtimeError):
        event.audio_bytes()


def test_from_pcm_encodes_base64() -> None:
    """InputAudioBufferAppendEvent.from_pcm stores base64 and encodes to a valid append."""
    pcm = (b"\x00\x80\xff\x7f" * 240)[:960]
    event = ev.InputAudioBufferAppendEvent.from_pcm(pcm)
    assert isinstance(event, ev.ClientEvent)
    assert event.audio == base64.b64encode(pcm).decode("ascii")
    encoded = json.loads(ev.encode_client_event(event))
    assert encoded["type"] == "input_audio_buffer.append"
    assert base64.b64decode(encoded["audio"]) == pcm
    assert set(encoded) == {"type", "event_id", "audio"}
    for dialect in DIALECTS:
        again = ev.parse_client_event(ev.encode_client_event(event), dialect=dialect)
        assert again.audio == event.audio


def test_from_pcm_empty_and_exact() -> None:
    """from_pcm of empty audio gives an empty string; of a 20 ms chunk, 1,280 base64 chars."""
    assert ev.InputAudioBufferAppendEvent.from_pcm(b"").audio == ""
    assert len(ev.InputAudioBufferAppendEvent.from_pcm(bytes(960)).audio) == 1280


@pytest.mark.parametrize("dialect", DIALECTS)
def test_server_event_roundtrip_through_encode(dialect: str) -> None:
    """encode_server_event of a parsed event gives back the same JSON object."""
    raw = audio_delta(dialect, base64.b64encode(b"\x01\x00" * 24).decode())
    event = ev.parse_server_event(frame(raw), dialect=dialect)
    encoded = ev.encode_server_event(event)
    assert " " not in encoded
    assert json.loads(encoded) == raw


# ---------------------------------------------------------------- spec-derived invalid frames

_WRONG_VALUE = {"string": 12345, "integer": "not-a-number", "number": "NaN?", "boolean": "yes",
                "object": "not-an-object", "array": 7}  # fmt: skip


def _invalid_frames(dialect: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(type, what, frame): a spec example with one required field removed or mistyped.

    ``type`` and ``event_id`` are left alone (the contract makes ``event_id`` optional).
    Only fields whose spec schema has a plain ``type`` get a wrong-typed value.
    """
    spec = load_spec(dialect)
    cases = []
    for wire_type, schema in sorted(_union(spec, "RealtimeServerEvent").items()):
        example = {**_example(schema), "type": wire_type}
        for name in schema.get("required", []):
            if name in ("type", "event_id") or name not in example:
                continue
            cases.append(
                (wire_type, f"missing {name}", {k: v for k, v in example.items() if k != name})
            )
            prop = schema["properties"][name]
            while "$ref" in prop:
                prop = spec["components"]["schemas"][prop["$ref"].rsplit("/", 1)[-1]]
            if isinstance(prop.get("type"), str) and prop["type"] in _WRONG_VALUE:
                cases.append((wire_type, f"{name} not {prop['type']}",
                              {**example, name: _WRONG_VALUE[prop["type"]]}))  # fmt: skip
    return cases


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_required_field_is_enforced(dialect: str) -> None:
    """A spec event lacking a required field, or with it mistyped, is a ProtocolError naming it."""
    cases = _invalid_frames(dialect)
    assert len(cases) > 50
    accepted = []
    for wire_type, what, raw in cases:
        try:
            event = ev.parse_server_event(frame(raw), dialect=dialect)
        except ProtocolError as exc:
            assert exc.event_type == wire_type, (wire_type, what, str(exc))
            assert wire_type in str(exc)
        else:
            accepted.append(f"{wire_type}: {what} -> {type(event).__name__}")
    assert not accepted, "accepted invalid frames:\n" + "\n".join(accepted)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_client_required_fields_are_enforced(dialect: str) -> None:
    """parse_client_event: a spec client event lacking a required field is a ProtocolError."""
    checked = 0
    for wire_type, schema in sorted(_union(load_spec(dialect), "RealtimeClientEvent").items()):
        example = {**_example(schema), "type": wire_type}
        assert type(ev.parse_client_event(frame(example), dialect=dialect)).__name__.endswith(
            "Event"
        )
        for name in schema.get("required", []):
            if name in ("type", "event_id") or name not in example:
                continue
            raw = {k: v for k, v in example.items() if k != name}
            with pytest.raises(ProtocolError) as info:
                ev.parse_client_event(frame(raw), dialect=dialect)
            assert info.value.event_type == wire_type, (wire_type, name)
            checked += 1
    assert checked >= 5


# -- invalid known events (issue 12): delivered as InvalidServerEvent unless strict --------


@pytest.mark.parametrize("dialect", ["beta", "ga"])
def test_known_type_with_bad_fields_becomes_invalid_event(dialect: str) -> None:
    """strict=False: a known type with a missing/mistyped field keeps its raw frame and error."""
    frame = b'{"type":"response.done","event_id":"evt_9","response":"not an object"}'
    event = ev.parse_server_event(frame, dialect, strict=False)  # type: ignore[arg-type]
    assert isinstance(event, ev.InvalidServerEvent)
    assert (event.type, event.event_id) == ("response.done", "evt_9")
    assert event.raw == json.loads(frame)
    assert "response" in event.error
    assert json.loads(ev.encode_server_event(event)) == event.raw  # re-encodes to the frame
    with pytest.raises(ProtocolError) as info:  # strict (the default) raises
        ev.parse_server_event(frame, dialect)  # type: ignore[arg-type]
    assert info.value.event_type == "response.done"


def test_lenient_parse_still_rejects_what_is_not_an_event() -> None:
    """strict=False changes nothing for malformed JSON, non-objects or a missing type;
    unknown types stay UnknownServerEvent."""
    for bad in (b"{nope", b"[1, 2]", b'{"event_id": "e"}'):
        with pytest.raises(ProtocolError):
            ev.parse_server_event(bad, strict=False)
    unknown = ev.parse_server_event(b'{"type":"future.thing","x":1}', strict=False)
    assert isinstance(unknown, ev.UnknownServerEvent)
    good = ev.parse_server_event(bytearray(b'{"type":"input_audio_buffer.cleared"}'), strict=False)
    assert good.type == "input_audio_buffer.cleared"
