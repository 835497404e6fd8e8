"""Property tests: whatever arrives, parse_server_event gives a model or a ProtocolError.

Random JSON, random type strings from both spec files with random bodies, and spec
examples with one field replaced or removed are fed to ``parse_server_event``; the only
allowed outcomes are a ``ServerEvent`` (a typed model of the frame's type, or
``UnknownServerEvent`` for a type the dialect does not know) or ``ProtocolError``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import realtime.events as ev
from realtime.exceptions import ProtocolError
from tests.spec_kit import load_spec

DIALECTS = ("beta", "ga")
MAX_MESSAGE = 1000

FAST = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=6,
)


def _type_of(schema: dict[str, Any]) -> str:
    prop = schema["properties"]["type"]
    return str(prop["enum"][0] if "enum" in prop else prop["const"])


def _spec_events(dialect: str) -> dict[str, dict[str, Any]]:
    """Wire type -> schema of every realtime server event schema in the dialect's spec file."""
    out = {}
    for name, schema in load_spec(dialect)["components"]["schemas"].items():
        props = schema.get("properties", {})
        if name.startswith("Realtime") and "ServerEvent" in name and "type" in props:
            out.setdefault(_type_of(schema), schema)
    return out


def _example(schema: dict[str, Any]) -> dict[str, Any] | None:
    text = schema.get("x-oaiMeta", {}).get("example")
    if not text:
        return None
    try:
        text = re.sub(r"(^|\s)//.*$", r"\1", text, flags=re.M)
        value, _ = json.JSONDecoder().raw_decode(re.sub(r",(\s*[}\]])", r"\1", text).strip())
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@pytest.fixture(scope="module")
def spec_events() -> dict[str, dict[str, Any]]:
    """Server event schemas of both spec files, keyed by wire type (GA wins on a clash)."""
    merged = dict(_spec_events("beta"))
    merged.update(_spec_events("ga"))
    return merged


@pytest.fixture(scope="module")
def spec_examples(spec_events: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every parseable server event example of both spec files."""
    examples = []
    for dialect in DIALECTS:
        for schema in _spec_events(dialect).values():
            example = _example(schema)
            if example is not None:
                examples.append(example)
    return examples


def check_outcome(data: bytes | str, dialect: str) -> ev.ServerEvent | None:
    """Parse and assert the contract: a matching model, UnknownServerEvent, or ProtocolError."""
    try:
        event = ev.parse_server_event(data, dialect=dialect)  # type: ignore[arg-type]
    except ProtocolError as exc:
        assert len(str(exc)) < MAX_MESSAGE
        return None
    assert isinstance(event, ev.ServerEvent), type(event)
    known = ev.server_event_types(dialect)  # type: ignore[arg-type]
    wire_type = event.type
    if isinstance(event, ev.UnknownServerEvent):
        assert wire_type not in known, f"{wire_type!r} is known to {dialect} but came back unknown"
        assert isinstance(event.raw, dict)
    else:
        assert type(event) is known[wire_type], (wire_type, type(event).__name__)
    return event


@FAST
@given(value=json_values, dialect=st.sampled_from(DIALECTS))
def test_random_json(value: Any, dialect: str) -> None:
    """Any JSON value gives a model, UnknownServerEvent or ProtocolError."""
    check_outcome(json.dumps(value), dialect)


@FAST
@given(data=st.binary(max_size=64), dialect=st.sampled_from(DIALECTS))
def test_random_bytes(data: bytes, dialect: str) -> None:
    """Arbitrary bytes give a model, UnknownServerEvent or ProtocolError."""
    check_outcome(data, dialect)


@FAST
@given(data=st.data(), dialect=st.sampled_from(DIALECTS))
def test_spec_types_with_random_bodies(
    spec_events: dict[str, dict[str, Any]], data: st.DataObject, dialect: str
) -> None:
    """A type from either spec with a random body (spec field names, random values)."""
    wire_type = data.draw(st.sampled_from(sorted(spec_events)), label="type")
    field_names = sorted(spec_events[wire_type].get("properties", {}))
    keys = st.sampled_from(field_names) | st.text(max_size=8)
    body = data.draw(st.dictionaries(keys, json_values, max_size=6), label="body")
    body["type"] = wire_type
    event = check_outcome(json.dumps(body).encode(), dialect)
    if event is not None:
        assert event.type == wire_type


@FAST
@given(data=st.data(), dialect=st.sampled_from(DIALECTS))
def test_mutated_spec_examples(
    spec_examples: list[dict[str, Any]], data: st.DataObject, dialect: str
) -> None:
    """A spec example with one (maybe nested) field replaced or removed; results re-encode."""
    example = dict(data.draw(st.sampled_from(spec_examples), label="example"))
    target = example
    key = data.draw(st.sampled_from(sorted(k for k in example if k != "type")), label="field")
    inner = example[key]
    if isinstance(inner, dict) and inner and data.draw(st.booleans(), label="nested"):
        target = example[key] = dict(inner)
        key = data.draw(st.sampled_from(sorted(target)), label="nested field")
    if data.draw(st.booleans(), label="remove"):
        del target[key]
    else:
        target[key] = data.draw(json_values, label="value")
    event = check_outcome(json.dumps(example), dialect)
    if event is not None and not isinstance(event, ev.UnknownServerEvent):
        again = ev.parse_server_event(ev.encode_server_event(event), dialect=dialect)  # type: ignore[arg-type]
        assert again == event


@pytest.fixture(scope="module")
def client_field_names() -> dict[str, list[str]]:
    """Wire type -> property names of every realtime client event schema of both spec files."""
    out: dict[str, set[str]] = {}
    for dialect in DIALECTS:
        for name, schema in load_spec(dialect)["components"]["schemas"].items():
            props = schema.get("properties", {})
            if name.startswith("Realtime") and "ClientEvent" in name and "type" in props:
                out.setdefault(_type_of(schema), set()).update(props)
    return {k: sorted(v) for k, v in out.items()}


@FAST
@given(data=st.data(), dialect=st.sampled_from(DIALECTS))
def test_client_events_with_random_bodies(
    client_field_names: dict[str, list[str]], data: st.DataObject, dialect: str
) -> None:
    """parse_client_event (the local server's input) gives a ClientEvent or a ProtocolError."""
    wire_type = data.draw(st.sampled_from(sorted(client_field_names)), label="type")
    keys = st.sampled_from(client_field_names[wire_type]) | st.text(max_size=8)
    body = data.draw(st.dictionaries(keys, json_values, max_size=6), label="body")
    body["type"] = wire_type
    try:
        event = ev.parse_client_event(json.dumps(body), dialect=dialect)  # type: ignore[arg-type]
    except ProtocolError as exc:
        assert len(str(exc)) < MAX_MESSAGE
        return
    assert isinstance(event, ev.ClientEvent)
    assert type(event) is ev.client_event_types(dialect)[wire_type]  # type: ignore[arg-type]
    again = ev.parse_client_event(ev.encode_client_event(event), dialect=dialect)  # type: ignore[arg-type]
    assert type(again) is type(event)
    assert again.model_dump(exclude={"event_id"}) == event.model_dump(exclude={"event_id"})
