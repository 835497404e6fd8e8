"""Tests for realtime.dispatch: patterns, once/off, caching and dialect-neutral subscriptions."""

from __future__ import annotations

from typing import Any

import pytest

from realtime.dispatch import Dispatcher, is_glob


def h1(event: Any) -> None:
    """A handler."""


def h2(event: Any) -> None:
    """Another handler."""


async def ah(event: Any) -> None:
    """An async handler."""


def test_exact_glob_and_star() -> None:
    """Exact types, globs and "*" match as expected, in subscription order."""
    d = Dispatcher()
    d.on("*", h1)
    d.on("response.audio_transcript.*", h2)
    d.on("response.audio_transcript.delta", ah)
    assert d.handlers_for("response.audio_transcript.delta") == [h1, h2, ah]
    assert d.handlers_for("response.audio_transcript.done") == [h1, h2]
    assert d.handlers_for("session.created") == [h1]
    assert d.handlers_for("some.future.type") == [h1]  # unknown types reach "*"


def test_glob_conversation_items() -> None:
    """conversation.item.* matches nested types too; ? and [] globs work."""
    d = Dispatcher()
    d.on("conversation.item.*", h1)
    d.on("response.text.del?a", h2)
    assert d.handlers_for("conversation.item.input_audio_transcription.delta") == [h1]
    assert d.handlers_for("conversation.item.deleted") == [h1]
    assert d.handlers_for("conversation.created") == []
    assert d.handlers_for("response.text.delta") == [h2]
    assert is_glob("a.*") and is_glob("a.[bc]") and not is_glob("a.b")


def test_decorator_forms() -> None:
    """on/once work as decorators and return the function unchanged."""
    d = Dispatcher()

    @d.on("response.done")
    def done(event: Any) -> None:
        """Done handler."""

    @d.once("error")
    async def err(event: Any) -> None:
        """Error handler."""

    assert d.handlers_for("response.done") == [done]
    assert d.handlers_for("error") == [err]
    assert d.handlers_for("error") == []


def test_once_removed_after_match_only() -> None:
    """A once handler fires for its first matching event only; others are unaffected."""
    d = Dispatcher()
    d.once("response.*", h1)
    d.on("response.*", h2)
    assert d.handlers_for("session.updated") == []
    assert len(d) == 2
    assert d.handlers_for("response.created") == [h1, h2]
    assert d.handlers_for("response.created") == [h2]
    assert d.handlers_for("response.done") == [h2]
    assert len(d) == 1


def test_off_by_pattern_and_handler() -> None:
    """off removes by exact pattern (and handler), returns the count, invalidates the cache."""
    d = Dispatcher()
    d.on("response.done", h1)
    d.on("response.done", h2)
    d.on("response.*", h1)
    assert d.handlers_for("response.done") == [h1, h2, h1]
    assert d.off("response.done", h1) == 1
    assert d.handlers_for("response.done") == [h2, h1]
    assert d.off("response.done") == 1
    assert d.handlers_for("response.done") == [h1]
    assert d.off("nothing") == 0
    d.clear()
    assert d.handlers_for("response.done") == []


def test_cache_invalidated_on_subscribe() -> None:
    """A subscription added after a lookup is seen by the next lookup."""
    d = Dispatcher()
    assert d.handlers_for("response.done") == []
    d.on("response.done", h1)
    assert d.handlers_for("response.done") == [h1]
    assert d.has_handlers("response.done")
    assert not d.has_handlers("error")


def test_subscribing_from_inside_a_resolution_loop() -> None:
    """Changing subscriptions while iterating a returned list is safe (it is a copy)."""
    d = Dispatcher()
    d.on("x", h1)
    for _ in d.handlers_for("x"):
        d.on("x", h2)
        d.off("x", h1)
    assert d.handlers_for("x") == [h2]


@pytest.mark.parametrize(
    ("pattern", "beta_type", "ga_type"),
    [
        ("response.audio.delta", "response.audio.delta", "response.output_audio.delta"),
        ("response.output_audio.delta", "response.audio.delta", "response.output_audio.delta"),
        (
            "response.audio_transcript.*",
            "response.audio_transcript.done",
            "response.output_audio_transcript.done",
        ),
        ("response.output_text.*", "response.text.delta", "response.output_text.delta"),
        ("conversation.item.added", "conversation.item.created", "conversation.item.added"),
    ],
)
def test_any_dialect(pattern: str, beta_type: str, ga_type: str) -> None:
    """any_dialect=True reaches both dialects' names; a plain subscription only its own."""
    d = Dispatcher()
    d.on(pattern, h1, any_dialect=True)
    d.on(pattern, h2)
    assert h1 in d.handlers_for(beta_type)
    assert h1 in d.handlers_for(ga_type)
    plain = [t for t in (beta_type, ga_type) if h2 in d.handlers_for(t)]
    assert len(plain) == 1


def test_any_dialect_glob_covers_renamed_family() -> None:
    """A dialect-neutral glob over a renamed family covers types without a table entry."""
    d = Dispatcher()
    d.on("response.audio_transcript.*", h1, any_dialect=True)
    d.on("response.output_text.*", h2, any_dialect=True)
    assert d.handlers_for("response.output_audio_transcript.segment") == [h1]
    assert d.handlers_for("response.text.annotation") == [h2]


def test_any_dialect_does_not_overmatch() -> None:
    """A dialect-neutral exact subscription does not catch unrelated types."""
    d = Dispatcher()
    d.on("response.audio.delta", h1, any_dialect=True)
    assert d.handlers_for("response.audio.done") == []
    assert d.handlers_for("response.output_audio_transcript.delta") == []


def test_bad_arguments() -> None:
    """Empty patterns and non-callable handlers are rejected."""
    d = Dispatcher()
    with pytest.raises(ValueError):
        d.on("", h1)
    with pytest.raises(TypeError):
        d.on("x", 3)  # type: ignore[call-overload]


def test_subscriptions_snapshot() -> None:
    """subscriptions lists pattern, handler and flags in order."""
    d = Dispatcher()
    d.on("a", h1)
    d.once("b", h2, any_dialect=True)
    subs = d.subscriptions
    assert [(s.pattern, s.handler, s.once, s.any_dialect) for s in subs] == [
        ("a", h1, False, False),
        ("b", h2, True, True),
    ]
