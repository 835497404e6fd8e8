"""Semantic counterparts between the beta and GA dialects.

An application subscribes to an event once; these helpers give the name the same
event has in the other dialect.  The table pairs types whose meaning is the same but
whose wire name changed in GA (openapi-2026-08 renamed the output streams and added
``conversation.item.added`` for what beta calls ``conversation.item.created``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ..exceptions import ConfigError
from .registry import Dialect

__all__ = [
    "COUNTERPARTS",
    "PART_COUNTERPARTS",
    "counterpart",
    "counterpart_part_type",
    "counterpart_pattern",
    "equivalent_patterns",
    "equivalent_types",
]

COUNTERPARTS: Mapping[str, str] = MappingProxyType(
    {
        "response.audio.delta": "response.output_audio.delta",
        "response.audio.done": "response.output_audio.done",
        "response.text.delta": "response.output_text.delta",
        "response.text.done": "response.output_text.done",
        "response.audio_transcript.delta": "response.output_audio_transcript.delta",
        "response.audio_transcript.done": "response.output_audio_transcript.done",
        "conversation.item.created": "conversation.item.added",
    }
)
"""Beta wire type -> GA wire type, for the events whose name differs."""

_TO_BETA: Mapping[str, str] = MappingProxyType({ga: beta for beta, ga in COUNTERPARTS.items()})

PART_COUNTERPARTS: Mapping[str, str] = MappingProxyType(
    {"text": "output_text", "audio": "output_audio"}
)
"""Beta content part type -> GA content part type, for assistant output parts."""

_PART_TO_BETA: Mapping[str, str] = MappingProxyType(
    {ga: beta for beta, ga in PART_COUNTERPARTS.items()}
)


def _family_prefixes() -> dict[str, str]:
    """Beta prefix -> GA prefix of the renamed families (``response.text.`` -> …)."""
    prefixes: dict[str, str] = {}
    for beta, ga in COUNTERPARTS.items():
        beta_family, _, beta_leaf = beta.rpartition(".")
        ga_family, _, ga_leaf = ga.rpartition(".")
        if beta_leaf == ga_leaf:
            prefixes[beta_family + "."] = ga_family + "."
    return prefixes


_BETA_TO_GA_PREFIX = _family_prefixes()
_GA_TO_BETA_PREFIX = {ga: beta for beta, ga in _BETA_TO_GA_PREFIX.items()}


def _check(dialect: str) -> None:
    if dialect not in ("beta", "ga"):
        raise ConfigError(f"unknown dialect {dialect!r} (expected 'beta' or 'ga')")


def counterpart(event_type: str, dialect: Dialect) -> str:
    """Return the name ``event_type`` has in ``dialect``.

    ``counterpart("response.audio.delta", "ga")`` is ``"response.output_audio.delta"``;
    a type without a counterpart (or already of ``dialect``) is returned unchanged.
    Raises :class:`~realtime.exceptions.ConfigError` for an unknown dialect.
    """
    _check(dialect)
    if dialect == "ga":
        return COUNTERPARTS.get(event_type, event_type)
    return _TO_BETA.get(event_type, event_type)


def counterpart_part_type(part_type: str, dialect: Dialect) -> str:
    """Return the assistant content part type ``part_type`` as ``dialect`` names it.

    ``counterpart_part_type("output_audio", "beta")`` is ``"audio"``; other types
    (``input_text``, ``input_audio``, …) are returned unchanged.
    """
    _check(dialect)
    if dialect == "ga":
        return PART_COUNTERPARTS.get(part_type, part_type)
    return _PART_TO_BETA.get(part_type, part_type)


def equivalent_types(event_type: str) -> frozenset[str]:
    """Return ``event_type`` and its counterpart (just ``{event_type}`` when it has none)."""
    other = COUNTERPARTS.get(event_type) or _TO_BETA.get(event_type)
    return frozenset((event_type, other)) if other else frozenset((event_type,))


def counterpart_pattern(pattern: str, dialect: Dialect) -> str:
    """Return the subscription ``pattern`` (exact type, glob or ``"*"``) as ``dialect`` names it.

    ``counterpart_pattern("response.output_audio_transcript.*", "beta")`` is
    ``"response.audio_transcript.*"``; patterns that name no renamed family, such as
    ``"response.*"``, are returned unchanged.
    """
    _check(dialect)
    exact = counterpart(pattern, dialect)
    if exact != pattern:
        return exact
    table = _BETA_TO_GA_PREFIX if dialect == "ga" else _GA_TO_BETA_PREFIX
    for prefix, replacement in table.items():
        if pattern.startswith(prefix):
            return replacement + pattern[len(prefix) :]
    return pattern


def equivalent_patterns(pattern: str) -> frozenset[str]:
    """Return ``pattern`` together with its spelling in each dialect."""
    return frozenset(
        (pattern, counterpart_pattern(pattern, "beta"), counterpart_pattern(pattern, "ga"))
    )
