"""Spec conformance of realtime.events (issue 2, section 3, first two bullets).

Everything here is derived from the two spec files: the event types of a dialect are
the members of its ``RealtimeClientEvent`` / ``RealtimeServerEvent`` unions (``$ref``s
followed, nested unions flattened), and the examples are the ``x-oaiMeta.example``
strings of those member schemas.

Some examples are not strict JSON: they carry ``//`` comments, trailing commas, or
several documents in one string (GA ``response.create``).  They are read with a small
tolerant reader (comments and trailing commas removed, documents split) and each
document is checked.  One GA example (``input_audio_buffer.dtmf_event_received``) has a
stray space inside its ``type`` string: the test uses the schema's type when the
example's differs from it only by surrounding whitespace.  One beta example
(``conversation.item.retrieved``) is a copy of the ``conversation.item.created``
example, type included: an example whose type is another event of the same dialect is
checked against the class of the type it carries.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from realtime.events import (
    ClientEvent,
    ServerEvent,
    UnknownServerEvent,
    client_event_types,
    encode_client_event,
    encode_server_event,
    parse_client_event,
    parse_server_event,
    server_event_types,
    wire_type,
)
from realtime.events.registry import (
    BETA_CLIENT_EXTENSIONS,
    BETA_SERVER_EXTENSIONS,
    BETA_WEBRTC_SERVER_EXTENSIONS,
)
from realtime.exceptions import ProtocolError

DIALECTS = ("beta", "ga")
UNIONS = {"client": "RealtimeClientEvent", "server": "RealtimeServerEvent"}


# ----------------------------------------------------------------------- spec reading


def _schemas(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec's component schemas."""
    schemas: dict[str, Any] = spec["components"]["schemas"]
    return schemas


def _wire_type(schema: dict[str, Any]) -> str:
    """The ``type`` a spec event schema declares (``enum`` of one value, or ``const``)."""
    prop = schema["properties"]["type"]
    return str(prop["enum"][0] if "enum" in prop else prop["const"])


def union_members(spec: dict[str, Any], union: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Wire type -> (schema name, schema) of the members of ``union``, nested unions flattened."""
    schemas = _schemas(spec)
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    node = schemas[union]
    for member in node.get("anyOf") or node.get("oneOf") or []:
        name = member["$ref"].rsplit("/", 1)[-1]
        schema = schemas[name]
        if "anyOf" in schema or "oneOf" in schema:
            out.update(union_members(spec, name))
        else:
            out[_wire_type(schema)] = (name, schema)
    return out


def _strip_comments(text: str) -> str:
    """Remove ``//`` comments outside JSON strings."""
    out: list[str] = []
    in_string = False
    i = 0
    while i < len(text):
        char = text[i]
        if in_string:
            out.append(char)
            if char == "\\":
                out.append(text[i + 1])
                i += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
            out.append(char)
        elif text.startswith("//", i):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(char)
        i += 1
    return "".join(out)


def example_documents(text: str) -> list[Any]:
    """The JSON documents of an example string (comments, trailing commas tolerated)."""
    cleaned = re.sub(r",(\s*[}\]])", r"\1", _strip_comments(text))
    decoder = json.JSONDecoder()
    docs: list[Any] = []
    pos = 0
    while True:
        while pos < len(cleaned) and cleaned[pos].isspace():
            pos += 1
        if pos == len(cleaned):
            return docs
        doc, pos = decoder.raw_decode(cleaned, pos)
        docs.append(doc)


def _examples(spec: dict[str, Any], side: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(schema name, schema wire type, example document) of every member of a union."""
    out = []
    for wire, (name, schema) in union_members(spec, UNIONS[side]).items():
        text = schema.get("x-oaiMeta", {}).get("example")
        if text:
            out.extend((name, wire, doc) for doc in example_documents(text))
    return out


def _spec(dialect: str, spec_beta: dict[str, Any], spec_ga: dict[str, Any]) -> dict[str, Any]:
    """The spec of ``dialect``."""
    return spec_beta if dialect == "beta" else spec_ga


# ----------------------------------------------------------------------- event types


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_spec_server_type_has_a_model(
    dialect: str, spec_beta: dict[str, Any], spec_ga: dict[str, Any]
) -> None:
    """The dialect's server models are the types of its RealtimeServerEvent union, plus
    only the documented beta extensions."""
    spec_types = set(union_members(_spec(dialect, spec_beta, spec_ga), UNIONS["server"]))
    assert spec_types
    beta_extra = (*BETA_SERVER_EXTENSIONS, *BETA_WEBRTC_SERVER_EXTENSIONS)
    extensions = {wire_type(cls) for cls in beta_extra} if dialect == "beta" else set()
    assert set(server_event_types(dialect)) == spec_types | extensions


def test_beta_webrtc_extensions_are_the_ga_output_audio_buffer_events() -> None:
    """Beta WebRTC's output audio buffer events are the GA classes (the same shape)."""
    for cls in BETA_WEBRTC_SERVER_EXTENSIONS:
        assert wire_type(cls).startswith("output_audio_buffer.")
        assert (
            server_event_types("beta")[wire_type(cls)] is server_event_types("ga")[wire_type(cls)]
        )


def test_beta_client_extensions_are_documented_beta_events(spec_ga: dict[str, Any]) -> None:
    """Each beta client extension is a RealtimeBeta client event of the GA file."""
    documented = {
        _wire_type(schema)
        for name, schema in _schemas(spec_ga).items()
        if name.startswith("RealtimeBetaClientEvent") and "properties" in schema
    }
    assert BETA_CLIENT_EXTENSIONS
    for cls in BETA_CLIENT_EXTENSIONS:
        assert wire_type(cls) in documented
        assert client_event_types("beta")[wire_type(cls)] is cls


def test_beta_extensions_are_documented_beta_events(spec_ga: dict[str, Any]) -> None:
    """Each beta extension is a RealtimeBeta server event of the GA file, whose example
    parses in beta into the extension's class and re-encodes unchanged."""
    beta_events = {
        _wire_type(schema): schema
        for name, schema in _schemas(spec_ga).items()
        if name.startswith("RealtimeBetaServerEvent") and "properties" in schema
    }
    assert BETA_SERVER_EXTENSIONS
    for cls in BETA_SERVER_EXTENSIONS:
        schema = beta_events[wire_type(cls)]
        for doc in example_documents(schema["x-oaiMeta"]["example"]):
            event = parse_server_event(json.dumps(doc), "beta")
            assert type(event) is cls
            assert json.loads(encode_server_event(event)) == doc


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_spec_client_type_has_a_model(
    dialect: str, spec_beta: dict[str, Any], spec_ga: dict[str, Any]
) -> None:
    """The dialect's client models are exactly the types of its RealtimeClientEvent union
    (plus the documented beta client extensions)."""
    spec_types = set(union_members(_spec(dialect, spec_beta, spec_ga), UNIONS["client"]))
    assert spec_types
    extensions = {wire_type(cls) for cls in BETA_CLIENT_EXTENSIONS} if dialect == "beta" else set()
    assert set(client_event_types(dialect)) == spec_types | extensions


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("side", ["client", "server"])
def test_model_fields_follow_the_spec(
    dialect: str, side: str, spec_beta: dict[str, Any], spec_ga: dict[str, Any]
) -> None:
    """Every spec property is a model field, required exactly where the spec requires it.

    Two documented exceptions: ``type`` has a default for building events in Python (on
    the wire it is the discriminator, so a frame without it is rejected), and
    ``event_id`` is optional because encoding generates it.
    """
    table = client_event_types(dialect) if side == "client" else server_event_types(dialect)
    problems = []
    for wire, (name, schema) in union_members(
        _spec(dialect, spec_beta, spec_ga), UNIONS[side]
    ).items():
        cls = table[wire]
        required = set(schema.get("required", []))
        for prop in schema["properties"]:
            field = cls.model_fields.get(prop)
            if field is None:
                problems.append(f"{name}.{prop}: no field on {cls.__name__}")
            elif prop not in ("type", "event_id") and field.is_required() != (prop in required):
                problems.append(f"{name}.{prop}: required={field.is_required()} in the model")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_frame_without_type_is_rejected(dialect: str) -> None:
    """``type`` is required on the wire: a frame without it is a ProtocolError."""
    with pytest.raises(ProtocolError):
        parse_server_event(b'{"event_id":"e1","item_id":"x"}', dialect)
    with pytest.raises(ProtocolError):
        parse_client_event(b'{"event_id":"e1","item_id":"x"}', dialect)


def test_ga_file_events_outside_the_ga_unions_are_beta(spec_ga: dict[str, Any]) -> None:
    """Realtime event schemas the GA file defines outside its unions belong to beta only.

    (``transcription_session.update``/``updated``: GA writes a transcription session as
    ``session.update`` with ``session.type = "transcription"``.)
    """
    in_union = {
        name for side in UNIONS.values() for name, _ in union_members(spec_ga, side).values()
    }
    outside = {
        _wire_type(schema)
        for name, schema in _schemas(spec_ga).items()
        if name.startswith(("RealtimeClientEvent", "RealtimeServerEvent"))
        and "properties" in schema
        and name not in in_union
    }
    assert outside
    known_ga = set(client_event_types("ga")) | set(server_event_types("ga"))
    known_beta = set(client_event_types("beta")) | set(server_event_types("beta"))
    assert not outside & known_ga
    assert outside <= known_beta


# ----------------------------------------------------------------------- examples


def _check_example(
    dialect: str, side: str, name: str, wire: str, doc: dict[str, Any]
) -> str | None:
    """Parse and re-encode one example; a description of the problem, or None."""
    table: dict[str, type] = dict(
        client_event_types(dialect) if side == "client" else server_event_types(dialect)
    )
    carried = doc.get("type")
    if carried != wire and str(carried).strip() == wire:  # stray whitespace in the example
        doc = {**doc, "type": wire}
        carried = wire
    if carried != wire and carried not in table:
        return f"{name}: example type {carried!r} is neither {wire!r} nor a {dialect} type"
    expected_cls = table[str(carried)]
    frame = json.dumps(doc).encode()
    event: ClientEvent | ServerEvent
    if side == "client":
        event = parse_client_event(frame, dialect)
        encoded = encode_client_event(event)
    else:
        event = parse_server_event(frame, dialect)
        encoded = encode_server_event(event)
    if type(event) is not expected_cls:
        return f"{name}: parsed as {type(event).__name__}, not {expected_cls.__name__}"
    expected = dict(doc)
    if "event_id" not in expected:  # encoding generates the missing id
        expected["event_id"] = event.event_id
    if json.loads(encoded) != expected:
        return f"{name}: re-encoded {encoded[:300]} differs from {json.dumps(doc)[:300]}"
    return None


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("side", ["client", "server"])
def test_spec_examples_parse_and_reencode(
    dialect: str, side: str, spec_beta: dict[str, Any], spec_ga: dict[str, Any]
) -> None:
    """Every x-oaiMeta example of the dialect's events parses into the right class and
    re-encodes to an equal JSON object."""
    spec = _spec(dialect, spec_beta, spec_ga)
    examples = _examples(spec, side)
    with_example = {name for name, _, _ in examples}
    members = {name for name, _ in union_members(spec, UNIONS[side]).values()}
    # Every event schema of both specs carries an example.
    assert with_example == members, sorted(members - with_example)
    problems = [
        problem
        for name, wire, doc in examples
        if (problem := _check_example(dialect, side, name, wire, doc)) is not None
    ]
    assert not problems, "\n".join(problems)


def test_example_reader_handles_comments_and_several_documents() -> None:
    """The tolerant example reader drops // comments and trailing commas, splits documents."""
    text = '// first\n{"a": "x//y", "b": [1, 2,],}\n// second\n{"c": {"d": 1,},}\n'
    assert example_documents(text) == [{"a": "x//y", "b": [1, 2]}, {"c": {"d": 1}}]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_examples_of_the_other_dialect_are_not_mistyped(
    dialect: str, spec_beta: dict[str, Any], spec_ga: dict[str, Any]
) -> None:
    """A server example whose type only the other dialect knows parses as UnknownServerEvent."""
    other = "ga" if dialect == "beta" else "beta"
    mine = set(server_event_types(dialect))
    checked = 0
    for _, wire, doc in _examples(_spec(other, spec_beta, spec_ga), "server"):
        if wire in mine:
            continue
        event = parse_server_event(json.dumps({**doc, "type": wire}), dialect)
        assert type(event) is UnknownServerEvent
        assert event.type == wire
        checked += 1
    assert checked
