"""The beta <-> GA counterpart table of realtime.events.dialect (issue 2, section 2).

The pairs the issue names are checked by wire type; every pair of the table must name a
type of the beta spec on one side and of the GA spec on the other (derived from the spec
unions, not from a hand-written list).
"""

from __future__ import annotations

from typing import Any

import pytest

from realtime.events import dialect as dialect_mod
from realtime.events import equivalent_types
from tests.spec_kit import load_spec

# (beta wire type, GA wire type): the semantic counterparts issue 2 requires.
REQUIRED_PAIRS = [
    ("response.audio.delta", "response.output_audio.delta"),
    ("response.audio.done", "response.output_audio.done"),
    ("response.text.delta", "response.output_text.delta"),
    ("response.text.done", "response.output_text.done"),
    ("response.audio_transcript.delta", "response.output_audio_transcript.delta"),
    ("response.audio_transcript.done", "response.output_audio_transcript.done"),
    ("conversation.item.created", "conversation.item.added"),
]


def _spec_types(dialect: str) -> set[str]:
    """Client and server event types of the dialect's spec unions."""
    schemas = load_spec(dialect)["components"]["schemas"]
    out = set()
    for union in ("RealtimeServerEvent", "RealtimeClientEvent"):
        for member in schemas[union].get("anyOf") or schemas[union]["oneOf"]:
            prop = schemas[member["$ref"].rsplit("/", 1)[-1]]["properties"]["type"]
            out.add(str(prop["enum"][0] if "enum" in prop else prop["const"]))
    return out


def _table_pairs() -> list[tuple[str, str]]:
    """The (beta, GA) pairs of the COUNTERPARTS table."""
    table: Any = dialect_mod.COUNTERPARTS
    return sorted(table.items())


def test_table_contains_required_pairs() -> None:
    """COUNTERPARTS maps each beta type the issue names to its GA counterpart."""
    pairs = set(_table_pairs())
    for pair in REQUIRED_PAIRS:
        assert pair in pairs, pair


def test_every_mapped_type_exists_in_its_spec() -> None:
    """Each table entry names a beta-spec type and a GA-spec type."""
    beta, ga = _spec_types("beta"), _spec_types("ga")
    pairs = _table_pairs()
    assert pairs
    for beta_type, ga_type in pairs:
        assert beta_type in beta, f"{beta_type!r} is not a beta event type"
        assert ga_type in ga, f"{ga_type!r} is not a GA event type"
        assert beta_type != ga_type


def test_table_is_one_to_one() -> None:
    """No GA type is the counterpart of two beta types."""
    ga_side = [ga for _, ga in _table_pairs()]
    assert len(ga_side) == len(set(ga_side))


@pytest.mark.parametrize(("beta_type", "ga_type"), REQUIRED_PAIRS)
def test_counterpart_translates_into_the_dialect(beta_type: str, ga_type: str) -> None:
    """counterpart(type, dialect) gives the type's name in that dialect."""
    assert dialect_mod.counterpart(beta_type, "ga") == ga_type
    assert dialect_mod.counterpart(ga_type, "beta") == beta_type
    assert dialect_mod.counterpart(beta_type, "beta") == beta_type
    assert dialect_mod.counterpart(ga_type, "ga") == ga_type


@pytest.mark.parametrize("event_type", ["error", "session.update", "response.done", "x.unknown"])
def test_counterpart_of_unmapped_type_is_itself(event_type: str) -> None:
    """A type without a counterpart maps to itself in both dialects."""
    assert dialect_mod.counterpart(event_type, "beta") == event_type
    assert dialect_mod.counterpart(event_type, "ga") == event_type
    assert equivalent_types(event_type) == frozenset({event_type})


@pytest.mark.parametrize(("beta_type", "ga_type"), REQUIRED_PAIRS)
def test_equivalent_types_is_symmetric(beta_type: str, ga_type: str) -> None:
    """equivalent_types gives the same pair from either side."""
    assert equivalent_types(beta_type) == frozenset({beta_type, ga_type})
    assert equivalent_types(ga_type) == frozenset({beta_type, ga_type})


def test_equivalent_types_for_whole_table() -> None:
    """Every table pair is an equivalence class of exactly two types."""
    for beta_type, ga_type in _table_pairs():
        assert equivalent_types(beta_type) == equivalent_types(ga_type) == {beta_type, ga_type}


def test_server_renders_beta_names_from_the_same_table() -> None:
    """The local server's beta names come from this table (no copy of it in server/wire)."""
    from realtime.server import wire

    for beta_type, ga_type in dialect_mod.COUNTERPARTS.items():
        assert wire.beta_name(ga_type) == beta_type
    assert wire.beta_name("response.done") == "response.done"
    copies = [
        name
        for name, value in vars(wire).items()
        if isinstance(value, dict) and "response.output_audio.delta" in value
    ]
    assert copies == []


@pytest.mark.parametrize(
    ("beta_part", "ga_part"), [("text", "output_text"), ("audio", "output_audio")]
)
def test_part_types_and_server_rendering(beta_part: str, ga_part: str) -> None:
    """Assistant content part types translate both ways; the server renders with them."""
    from realtime.server import wire

    assert dialect_mod.counterpart_part_type(beta_part, "ga") == ga_part
    assert dialect_mod.counterpart_part_type(ga_part, "beta") == beta_part
    assert dialect_mod.counterpart_part_type("input_audio", "beta") == "input_audio"
    assert wire.render_part({"type": ga_part}, "beta") == {"type": beta_part}
    assert wire.render_part({"type": beta_part}, "ga") == {"type": ga_part}
