"""The one way event types are matched: by ``on``, ``wait_for`` and a script's ``expect``.

A *pattern* is an exact wire type (``"response.output_audio.delta"``), an
``fnmatch``-style glob (``"response.output_audio_transcript.*"``, ``"conversation.item.*"``,
``?`` and ``[...]`` too) or ``"*"`` for every event, unknown and invalid ones included.
Matching is case-sensitive.

Dialect-neutral matching (``any_dialect=True``) also accepts the other dialect's
spelling of the type or of the pattern (``response.audio.delta`` and
``response.output_audio.delta`` match each other, ``response.audio_transcript.*`` covers
``response.output_audio_transcript.delta``), using :mod:`realtime.events.dialect`.

An :class:`~realtime.events.InvalidServerEvent` (a known type whose fields did not
validate) matches only ``"*"`` (and predicates): a handler subscribed to an exact type
always gets the typed event it expects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, TypeAlias

from .events.base import InvalidServerEvent
from .events.dialect import equivalent_patterns, equivalent_types

if TYPE_CHECKING:
    from .events import ServerEvent

__all__ = ["EventMatch", "compile_match", "is_glob", "match_type"]

EventMatch: TypeAlias = "str | type | Callable[[ServerEvent], bool]"
"""What ``wait_for`` accepts: a type pattern, an event class, or a predicate."""

_GLOB_CHARS = frozenset("*?[")


def is_glob(pattern: str) -> bool:
    """True when ``pattern`` contains a glob character (``*``, ``?`` or ``[``)."""
    return not _GLOB_CHARS.isdisjoint(pattern)


def match_type(pattern: str, event_type: str, *, any_dialect: bool = False) -> bool:
    """True when ``event_type`` matches ``pattern`` (exact, glob or ``"*"``)."""
    if pattern == "*":
        return True
    if any_dialect:
        types: Iterable[str] = equivalent_types(event_type)
        patterns: Iterable[str] = equivalent_patterns(pattern)
    else:
        types, patterns = (event_type,), (pattern,)
    for p in patterns:
        if is_glob(p):
            if any(fnmatchcase(t, p) for t in types):
                return True
        elif p in types:
            return True
    return False


def compile_match(match: EventMatch, *, any_dialect: bool = False) -> Callable[[ServerEvent], bool]:
    """A test for events: a type pattern, an event class (``isinstance``) or a predicate.

    Raises :class:`TypeError` for anything else and :class:`ValueError` for an empty
    pattern.
    """
    if isinstance(match, str):
        if not match:
            raise ValueError("an event pattern must be a non-empty string")
        pattern = match
        if pattern == "*":
            return lambda event: True

        def test(event: ServerEvent) -> bool:
            if type(event) is InvalidServerEvent:
                return False
            return match_type(pattern, event.type, any_dialect=any_dialect)

        return test
    if isinstance(match, type):
        cls = match
        return lambda event: isinstance(event, cls)
    if callable(match):
        return match
    raise TypeError(f"cannot match events with {match!r}")
