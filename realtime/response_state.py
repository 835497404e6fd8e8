"""The lifecycle of responses, their usage, and which response requests may go out (pure).

A :class:`ResponseTracker` per session is fed every server event (:meth:`apply`) and
the application's intents (:meth:`request_create`, :meth:`request_cancel`); each call
returns the client events to send now. It keeps:

* per ``response_id`` a state driven by the explicit :data:`TRANSITIONS` table::

      (none) --response.created--> created --first output--> in_progress
      created | in_progress --response.done--> completed | cancelled | failed | incomplete

  any other move is illegal: it is recorded as a :class:`ProtocolError` in
  :attr:`ResponseTracker.protocol_errors` (or raised with ``strict=True``);
* the session's usage totals (:class:`UsageTotals`);
* a queue of ``response.create`` requests: while a response is active (or one was
  requested and not yet announced), a new request waits and goes out when the active
  one is done, instead of earning ``conversation_already_has_active_response``
  (with ``queue=False`` such a request raises :class:`ResponseError`);
* the ``event_id`` of the client events it sent, so that harmless errors
  (``response_cancel_not_active`` for a cancel that crossed the ``response.done``) are
  recognised by :meth:`is_expected_error` and need not be raised.

Out-of-band responses (``response.conversation == "none"``) are never queued.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from realtime.events import (
    BetaResponseCreatedEvent,
    BetaResponseCreateEvent,
    BetaResponseDoneEvent,
    ClientEvent,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ErrorEvent,
    ResponseCancelEvent,
    ResponseCreatedEvent,
    ResponseCreateEvent,
    ResponseDoneEvent,
    ResponseRefEvent,
    ServerEvent,
    TranscriptionUsage,
    Usage,
    new_event_id,
)
from realtime.exceptions import ProtocolError, ResponseError

__all__ = [
    "HARMLESS_ERRORS",
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "ResponseState",
    "ResponseStatus",
    "ResponseTracker",
    "UsageTotals",
]

ResponseStatus = Literal["created", "in_progress", "completed", "cancelled", "failed", "incomplete"]

TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "cancelled", "failed", "incomplete"})

# Triggers: "created" (response.created), "output" (an event carrying the response_id),
# and the final status named by response.done.
TRANSITIONS: Mapping[tuple[str | None, str], str] = {
    (None, "created"): "created",
    ("created", "output"): "in_progress",
    ("in_progress", "output"): "in_progress",
    **{(s, final): final for s in ("created", "in_progress") for final in TERMINAL_STATUSES},
}
"""(current state, trigger) -> next state. Anything absent is an illegal transition."""

HARMLESS_ERRORS: Mapping[str, frozenset[str]] = {
    "response.cancel": frozenset({"response_cancel_not_active"}),
    "response.create": frozenset({"conversation_already_has_active_response"}),
}
"""Error codes that are expected answers to a client event type sent by the tracker."""

_EXPECTED_LIMIT = 1024
_HISTORY_LIMIT = 256
_SENT_LIMIT = 16


_DONE = (ResponseDoneEvent, BetaResponseDoneEvent)
_CREATED = (ResponseCreatedEvent, BetaResponseCreatedEvent)
_CREATES = (ResponseCreateEvent, BetaResponseCreateEvent)


@dataclass
class UsageTotals:
    """Token counts summed over the session.

    Each ``response.done`` adds its usage; each input transcription that reports usage
    (GA ``conversation.item.input_audio_transcription.completed``) adds its tokens to the
    totals too and counts in the ``transcription_*`` fields (a transcription billed by
    duration adds ``transcription_seconds``), so a transcription-only session does not
    report 0 tokens.
    """

    responses: int = 0
    total_tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    input_image_tokens: int = 0
    input_cached_tokens: int = 0
    output_text_tokens: int = 0
    output_audio_tokens: int = 0
    transcriptions: int = 0
    transcription_input_tokens: int = 0
    transcription_output_tokens: int = 0
    transcription_seconds: float = 0.0

    def add_transcription(self, usage: TranscriptionUsage | None) -> None:
        """Add one input transcription's usage (``tokens`` or ``duration``)."""
        if usage is None:
            return
        self.transcriptions += 1
        if usage.seconds is not None:
            self.transcription_seconds += usage.seconds
        inputs, outputs = usage.input_tokens or 0, usage.output_tokens or 0
        self.transcription_input_tokens += inputs
        self.transcription_output_tokens += outputs
        self.input_tokens += inputs
        self.output_tokens += outputs
        self.total_tokens += usage.total_tokens or inputs + outputs

    def add(self, usage: Usage | Mapping[str, Any] | None) -> None:
        """Add one response's ``usage`` (the typed model, or its wire dict; missing counts
        are 0). A dict is validated into :class:`~realtime.events.Usage` first."""
        if usage is None:
            return
        if not isinstance(usage, Usage):
            usage = Usage.model_validate(usage)
        self.responses += 1
        self.total_tokens += usage.total_tokens or 0
        self.input_tokens += usage.input_tokens or 0
        self.output_tokens += usage.output_tokens or 0
        into = usage.input_token_details
        if into is not None:
            self.input_text_tokens += into.text_tokens or 0
            self.input_audio_tokens += into.audio_tokens or 0
            self.input_image_tokens += into.image_tokens or 0
            self.input_cached_tokens += into.cached_tokens or 0
        out = usage.output_token_details
        if out is not None:
            self.output_text_tokens += out.text_tokens or 0
            self.output_audio_tokens += out.audio_tokens or 0


@dataclass
class ResponseState:
    """What is known of one response."""

    id: str
    status: str = "created"
    status_details: Any = None
    usage: Any = None
    output_item_ids: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """True until the response is done."""
        return self.status not in TERMINAL_STATUSES


class ResponseTracker:
    """Per-session response bookkeeping (see the module docstring).

    ``queue``: queue ``response.create`` while a response is active (default) rather
    than raise :class:`ResponseError`. ``strict``: raise illegal transitions as
    :class:`ProtocolError` instead of only recording them. ``dialect`` selects the
    model class of the ``response.create`` events the tracker builds itself.
    """

    def __init__(
        self, *, queue: bool = True, strict: bool = False, dialect: Literal["beta", "ga"] = "ga"
    ) -> None:
        self.queue_enabled = queue
        self.strict = strict
        self.dialect = dialect
        self.usage = UsageTotals()
        self.protocol_errors: list[ProtocolError] = []
        self._responses: OrderedDict[str, ResponseState] = OrderedDict()
        self._active: dict[str, ResponseState] = {}
        self._pending: ClientEvent | None = None  # sent response.create not yet announced
        self._queue: deque[ClientEvent] = deque()
        self._expected: OrderedDict[str, str] = OrderedDict()  # event_id -> client event type
        self._sent_creates: OrderedDict[str, ClientEvent] = OrderedDict()  # event_id -> create

    # -- reading -----------------------------------------------------------------

    def get(self, response_id: str) -> ResponseState | None:
        """The state of a response (the last 256 are kept), or ``None``."""
        return self._responses.get(response_id)

    @property
    def active_response(self) -> ResponseState | None:
        """The most recently created response that is not done, if any."""
        if not self._active:
            return None
        return next(reversed(self._active.values()))

    @property
    def active_responses(self) -> list[ResponseState]:
        """Every response not done yet, oldest first."""
        return list(self._active.values())

    @property
    def busy(self) -> bool:
        """True while a response is active or a requested one is not announced yet."""
        return bool(self._active) or self._pending is not None

    @property
    def queued(self) -> int:
        """How many ``response.create`` requests wait for the active response."""
        return len(self._queue)

    # -- intents -----------------------------------------------------------------

    def new_create(self, **response: Any) -> ClientEvent:
        """A ``response.create`` of the tracker's dialect with the given overrides."""
        cls = BetaResponseCreateEvent if self.dialect == "beta" else ResponseCreateEvent
        return cls(response=response) if response else cls()

    def request_create(self, event: ClientEvent | None = None) -> list[ClientEvent]:
        """Ask for a response; returns ``[event]`` to send now, or ``[]`` when queued.

        ``event`` defaults to a plain ``response.create``; an ``event_id`` is assigned
        when it has none. Raises :class:`ResponseError` when a response is active and
        the tracker was built with ``queue=False``.
        """
        if event is None:
            event = self.new_create()
        if event.type != "response.create":
            raise ResponseError(f"request_create needs a response.create, got {event.type!r}")
        if event.event_id is None:
            event = event.model_copy(update={"event_id": new_event_id()})
        params = event.response if isinstance(event, _CREATES) else None
        if params is not None and params.conversation == "none":
            return [event]  # out of band: runs beside the conversation's response
        if self.busy:
            if not self.queue_enabled:
                active = self.active_response
                what = f"response {active.id!r}" if active else "a requested response"
                raise ResponseError(f"{what} is still active; cancel it or wait for it to finish")
            self._queue.append(event)
            return []
        return self._send_create(event)

    def request_cancel(self, response_id: str | None = None) -> list[ClientEvent]:
        """Cancel the active response (or ``response_id``); returns ``[]`` when none is.

        A cancel while a requested response is not yet announced goes out without a
        ``response_id`` (the server cancels whatever it started). Queued requests stay.
        """
        if response_id is not None:
            state = self._active.get(response_id)
            if state is None:
                return []
            target: str | None = response_id
        else:
            active = self.active_response
            if active is None and self._pending is None:
                return []
            target = active.id if active is not None else None
        event = ResponseCancelEvent(response_id=target, event_id=new_event_id())
        self._expect(event)
        return [event]

    def clear_queue(self) -> list[ClientEvent]:
        """Drop the queued ``response.create`` requests and return them."""
        dropped = list(self._queue)
        self._queue.clear()
        return dropped

    def is_expected_error(self, event: ServerEvent) -> bool:
        """True for an ``error`` that answers a tracker-sent event with a harmless code.

        Matches ``error.event_id`` against the events this tracker sent and the code
        against :data:`HARMLESS_ERRORS` (a ``response.create`` refused because a
        response is active only counts when requests are queued: it is re-queued).
        """
        if not isinstance(event, ErrorEvent) or not event.error.event_id:
            return False
        sent_type = self._expected.get(event.error.event_id)
        if sent_type is None:
            return False
        if sent_type == "response.create" and not self.queue_enabled:
            return False
        return event.error.code in HARMLESS_ERRORS.get(sent_type, frozenset())

    # -- events ------------------------------------------------------------------

    def apply(self, event: ServerEvent) -> list[ClientEvent]:
        """Feed a server event; returns the client events to send now.

        That is the next queued ``response.create`` once the active response is done
        (or a request failed), otherwise ``[]``. Raises :class:`ProtocolError` for an
        illegal transition only when ``strict``.
        """
        etype = event.type
        if isinstance(event, _CREATED):
            rid = event.response.id
            self._pending = None
            if rid:
                self._transition(rid, "created", etype)
            return []
        if isinstance(event, _DONE):
            response = event.response
            rid = response.id
            status = response.status or "completed"
            if status not in TERMINAL_STATUSES:
                message = f"response.done with non-final status {status!r}"
                self._record(ProtocolError(message, event_type=etype))
                status = "incomplete"
            if rid:
                state = self._transition(rid, status, etype)
                state.status_details = response.status_details
                state.usage = response.usage
                state.output_item_ids = [x.id for x in response.output or () if x.id]
            self.usage.add(response.usage)
            return self._release()
        if isinstance(event, ConversationItemInputAudioTranscriptionCompletedEvent):
            self.usage.add_transcription(event.usage)
            return []
        if isinstance(event, ErrorEvent):
            return self._on_error(event)
        if isinstance(event, ResponseRefEvent):
            rid = event.response_id
            if rid:
                known = self._responses.get(rid)
                if known is None or known.status != "in_progress":
                    self._transition(rid, "output", etype)
        return []

    # -- internals ---------------------------------------------------------------

    def _send_create(self, event: ClientEvent) -> list[ClientEvent]:
        self._pending = event
        self._expect(event)
        if event.event_id is not None:
            self._sent_creates[event.event_id] = event
            if len(self._sent_creates) > _SENT_LIMIT:
                self._sent_creates.popitem(last=False)
        return [event]

    def _expect(self, event: ClientEvent) -> None:
        if event.event_id is None:
            return
        self._expected[event.event_id] = event.type
        if len(self._expected) > _EXPECTED_LIMIT:
            self._expected.popitem(last=False)

    def _release(self) -> list[ClientEvent]:
        if self.busy or not self._queue:
            return []
        return self._send_create(self._queue.popleft())

    def _on_error(self, event: ErrorEvent) -> list[ClientEvent]:
        error = event.error
        event_id = error.event_id
        sent = self._sent_creates.pop(event_id, None) if event_id else None
        if sent is None:
            return []
        if self._pending is sent:
            self._pending = None
        if error.code == "conversation_already_has_active_response" and self.queue_enabled:
            # The server had started a response of its own (server VAD), possibly the
            # response.created taken for ours: ours waits for that one to finish.
            self._queue.appendleft(sent)
        return self._release()

    def _record(self, error: ProtocolError) -> None:
        self.protocol_errors.append(error)
        if len(self.protocol_errors) > _HISTORY_LIMIT:
            del self.protocol_errors[0]
        if self.strict:
            raise error

    def _transition(self, response_id: str, trigger: str, event_type: str) -> ResponseState:
        state = self._responses.get(response_id)
        current = state.status if state is not None else None
        nxt = TRANSITIONS.get((current, trigger))
        if nxt is None:
            error = ProtocolError(
                f"illegal response transition {current or 'none'} --{trigger}--> "
                f"for response {response_id!r}",
                event_type=event_type,
            )
            self._record(error)
            # The server is the source of truth: adopt a final status it reports anyway.
            nxt = trigger if trigger in TERMINAL_STATUSES else (current or "in_progress")
        if state is None:
            state = ResponseState(response_id, nxt)
            self._responses[response_id] = state
            if len(self._responses) > _HISTORY_LIMIT:
                self._responses.popitem(last=False)
        else:
            state.status = nxt
        if nxt in TERMINAL_STATUSES:
            self._active.pop(response_id, None)
        else:
            self._active[response_id] = state
        return state
