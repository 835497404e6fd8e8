"""Resolve which handlers a server event goes to.

A :class:`Dispatcher` holds subscriptions: a *pattern* and a *handler*. Patterns are an
exact wire type (``"response.output_audio.delta"``), an ``fnmatch``-style glob
(``"response.output_audio_transcript.*"``, ``"conversation.item.*"``) or ``"*"`` for
every event, unknown types included.

The dispatcher never runs a handler: the session asks :meth:`Dispatcher.handlers_for`
for the handlers of each event type it receives and runs them itself (awaiting the
ones that return an awaitable). Resolution is cached per event type, so the per-event
cost is one dict lookup; the cache is dropped whenever subscriptions change.

Dialect-neutral subscriptions: ``on(pattern, handler, any_dialect=True)`` also
matches the counterpart types of the other dialect (``response.audio.delta`` and
``response.output_audio.delta`` reach the same handler), using
:func:`realtime.events.dialect.equivalent_types`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from itertools import count
from typing import TYPE_CHECKING, Any, TypeVar, overload

from realtime.events.dialect import equivalent_patterns, equivalent_types

if TYPE_CHECKING:
    from realtime.events import ServerEvent

__all__ = ["Dispatcher", "Handler", "Subscription", "is_glob"]

Handler = Callable[["ServerEvent"], "Awaitable[None] | None"]
"""A handler receives one typed server event; it may be sync or async."""

H = TypeVar("H", bound=Callable[..., Any])

_GLOB_CHARS = frozenset("*?[")


def is_glob(pattern: str) -> bool:
    """True when ``pattern`` contains a glob character (``*``, ``?`` or ``[``)."""
    return not _GLOB_CHARS.isdisjoint(pattern)


@dataclass(eq=False)
class Subscription:
    """One registered (pattern, handler) pair; ``once`` ones are dropped after a match."""

    pattern: str
    handler: Handler
    once: bool = False
    any_dialect: bool = False
    seq: int = field(default=0)

    def matches(self, event_type: str) -> bool:
        """True when this subscription wants events of ``event_type``.

        A dialect-neutral subscription compares the type and its counterpart with the
        pattern and the pattern's spelling in each dialect: a glob over a renamed
        family (``response.audio_transcript.*``) also covers its GA spelling.
        """
        pattern = self.pattern
        if pattern == "*":
            return True
        if self.any_dialect:
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


class Dispatcher:
    """A registry of subscriptions resolving event types to handlers.

    Handlers are returned in subscription order. Subscribing and unsubscribing are
    allowed at any time, before or after connecting, and from inside a handler.
    """

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._cache: dict[str, tuple[Subscription, ...]] = {}
        self._seq = count()
        self._has_once = False

    # -- subscribing -------------------------------------------------------------

    @overload
    def on(
        self, pattern: str, handler: None = None, *, any_dialect: bool = False
    ) -> Callable[[H], H]: ...

    @overload
    def on(self, pattern: str, handler: H, *, any_dialect: bool = False) -> H: ...

    def on(
        self, pattern: str, handler: H | None = None, *, any_dialect: bool = False
    ) -> H | Callable[[H], H]:
        """Subscribe ``handler`` to events matching ``pattern``.

        Call it directly (returns the handler) or use it as a decorator
        (``@dispatcher.on("response.done")``). With ``any_dialect=True`` the
        subscription also matches the other dialect's counterpart types.
        Raises :class:`TypeError` when the handler is not callable and
        :class:`ValueError` for an empty pattern.
        """
        return self._subscribe(pattern, handler, once=False, any_dialect=any_dialect)

    @overload
    def once(
        self, pattern: str, handler: None = None, *, any_dialect: bool = False
    ) -> Callable[[H], H]: ...

    @overload
    def once(self, pattern: str, handler: H, *, any_dialect: bool = False) -> H: ...

    def once(
        self, pattern: str, handler: H | None = None, *, any_dialect: bool = False
    ) -> H | Callable[[H], H]:
        """Like :meth:`on`, but the subscription is removed after its first match."""
        return self._subscribe(pattern, handler, once=True, any_dialect=any_dialect)

    def off(self, pattern: str, handler: Callable[..., Any] | None = None) -> int:
        """Remove subscriptions registered with exactly ``pattern``.

        With ``handler`` only that handler's subscriptions go; without, every
        subscription of the pattern. Returns how many were removed (0 is not an error).
        """
        before = len(self._subs)
        self._subs = [
            s
            for s in self._subs
            if not (s.pattern == pattern and (handler is None or s.handler == handler))
        ]
        removed = before - len(self._subs)
        if removed:
            self._changed()
        return removed

    def clear(self) -> None:
        """Remove every subscription."""
        self._subs.clear()
        self._changed()

    # -- resolving ---------------------------------------------------------------

    def handlers_for(self, event_type: str) -> list[Handler]:
        """The handlers for an event of ``event_type``, in subscription order.

        Call it once per received event: ``once`` subscriptions that match are removed
        by this call (they are returned this one time).
        """
        subs = self._cache.get(event_type)
        if subs is None:
            subs = tuple(s for s in self._subs if s.matches(event_type))
            self._cache[event_type] = subs
        if self._has_once and subs:
            fired = [s for s in subs if s.once]
            if fired:
                gone = set(map(id, fired))
                self._subs = [s for s in self._subs if id(s) not in gone]
                self._changed()
        return [s.handler for s in subs]

    def has_handlers(self, event_type: str) -> bool:
        """True when at least one subscription matches ``event_type`` (consumes nothing)."""
        subs = self._cache.get(event_type)
        if subs is None:
            subs = tuple(s for s in self._subs if s.matches(event_type))
            self._cache[event_type] = subs
        return bool(subs)

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        """The current subscriptions, in order (a snapshot)."""
        return tuple(self._subs)

    def __len__(self) -> int:
        return len(self._subs)

    # -- internals ---------------------------------------------------------------

    def _subscribe(
        self, pattern: str, handler: H | None, *, once: bool, any_dialect: bool
    ) -> H | Callable[[H], H]:
        if not isinstance(pattern, str) or not pattern:
            raise ValueError("an event pattern must be a non-empty string")

        def add(func: H) -> H:
            if not callable(func):
                raise TypeError(f"handler for {pattern!r} is not callable: {func!r}")
            self._subs.append(
                Subscription(pattern, func, once=once, any_dialect=any_dialect, seq=next(self._seq))
            )
            self._changed()
            return func

        if handler is None:
            return add
        return add(handler)

    def _changed(self) -> None:
        self._cache.clear()
        self._has_once = any(s.once for s in self._subs)
