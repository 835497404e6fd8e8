"""The client side of the realtime protocol, without I/O (in the manner of h11/websockets).

A :class:`ClientProtocol` holds everything a session knows about the conversation with
the server and decides what to send; it never touches a socket, a clock or a task. Its
owner (the asyncio :class:`realtime.session.Session`, a test, or any other shell) does
the I/O:

* **server events in**: :meth:`ClientProtocol.receive` takes each parsed server event
  (and the caller's clock value, for barge-in timing); it feeds the
  :class:`~realtime.conversation.Conversation`, the
  :class:`~realtime.response_state.ResponseTracker`, the
  :class:`~realtime.tools.ToolCallCoordinator`, the barge-in policy and the
  acknowledgement table, and returns ``True`` when it produced output;
* **intents in**: :meth:`~ClientProtocol.update`, :meth:`~ClientProtocol.commit`,
  :meth:`~ClientProtocol.clear_audio`, :meth:`~ClientProtocol.create_item`,
  :meth:`~ClientProtocol.send_text`, :meth:`~ClientProtocol.truncate`,
  :meth:`~ClientProtocol.delete_item`, :meth:`~ClientProtocol.retrieve_item` return a
  :class:`Request` carrying the client events to send and the acknowledgement it waits
  for (:meth:`~ClientProtocol.forget` drops it); :meth:`~ClientProtocol.create_response`,
  :meth:`~ClientProtocol.cancel_response`, :meth:`~ClientProtocol.interrupt` and
  :meth:`~ClientProtocol.tool_result` return the client events to send;
* **outputs**: :meth:`events_to_send` (client events, in order), :meth:`completions`
  (acknowledged or refused requests), :meth:`tool_calls` (function calls to run),
  :meth:`events_to_deliver` (synthetic events handlers and waiters must see, such as
  the ``response.done`` of a response lost with the connection);
* **connection life**: :meth:`connection_lost` fails every pending request and ends
  the responses the drop lost; :meth:`connection_made` (after a reconnect) starts the
  response bookkeeping afresh and returns the restore plan: the configuration and,
  when asked, the history, re-created once, with the original item ids and only what
  was heard of a truncated reply.

Acknowledgements are matched by the ids the protocol gives: an ``error`` by the
``event_id`` of the client event it names; ``conversation.item.*`` replies by item id;
``input_audio_buffer.committed`` by excluding the items the server's VAD announced
(``speech_started``/``speech_stopped`` name them), so an automatic commit never
satisfies the request of a manual one; the other replies in the order sent.

This module imports no asyncio, websockets, httpx, sounddevice, numpy, threading or
socket (``tests/test_protocol_purity.py`` checks it).
"""

from __future__ import annotations

import base64
import itertools
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .conversation import Conversation
from .events import (
    BetaConversationItemCreatedEvent,
    BetaConversationItemRetrievedEvent,
    BetaInputAudioBufferCommittedEvent,
    BetaResponse,
    BetaResponseDoneEvent,
    BetaSession,
    BetaSessionCreatedEvent,
    BetaSessionUpdatedEvent,
    BetaTranscriptionSession,
    ClientEvent,
    ConversationItemAddedEvent,
    ConversationItemCreatedEvent,
    ConversationItemDeletedEvent,
    ConversationItemDeleteEvent,
    ConversationItemRetrievedEvent,
    ConversationItemRetrieveEvent,
    ConversationItemTruncatedEvent,
    ConversationItemTruncateEvent,
    ErrorEvent,
    InputAudioBufferClearEvent,
    InputAudioBufferCommitEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    RealtimeSession,
    Response,
    ResponseDoneEvent,
    ResponseRefEvent,
    SemanticVad,
    ServerEvent,
    ServerVad,
    SessionCreatedEvent,
    SessionUpdatedEvent,
    StatusDetails,
    TranscriptionSession,
    TranscriptionSessionCreatedEvent,
    TranscriptionSessionUpdatedEvent,
    new_event_id,
)
from .events.config import SessionConfig
from .exceptions import (
    AuthenticationClosed,
    ConfigError,
    ConnectionClosed,
    ServerError,
)
from .interruption import Interruption, OutputAudioLog, plan_interruption
from .reconnect import HistoryRestore
from .response_state import ResponseTracker
from .tools import Tool, ToolCall, ToolCallCoordinator, ToolRegistry, ToolResult

if TYPE_CHECKING:
    from audio.playback import HeardPosition

__all__ = [
    "LOST_REASON",
    "ClientProtocol",
    "Completion",
    "Dialect",
    "Request",
    "close_error",
]

Dialect = Literal["beta", "ga"]

LOST_REASON = "connection_lost"
"""``status_details.reason`` of the ``response.done`` ending a response lost to a drop."""

_STREAM_DELTAS = frozenset(
    {
        "response.audio.delta",
        "response.output_audio.delta",
        "response.audio_transcript.delta",
        "response.output_audio_transcript.delta",
        "response.text.delta",
        "response.output_text.delta",
        "response.function_call_arguments.delta",
    }
)
_AUDIO_DELTAS = frozenset({"response.audio.delta", "response.output_audio.delta"})
_TOOL_TYPES = frozenset(
    {
        "response.function_call_arguments.done",
        "response.output_item.added",
        "response.output_item.done",
        "response.done",
    }
)
_ITEM_ACKS = ("conversation.item.created", "conversation.item.added")
_VAD_LIMIT = 64
_ITEM_EVENTS = (
    ConversationItemAddedEvent,
    ConversationItemCreatedEvent,
    BetaConversationItemCreatedEvent,
    ConversationItemRetrievedEvent,
    BetaConversationItemRetrievedEvent,
)
_COMMITTED = (InputAudioBufferCommittedEvent, BetaInputAudioBufferCommittedEvent)
_SESSION_EVENTS = (
    SessionCreatedEvent,
    SessionUpdatedEvent,
    BetaSessionCreatedEvent,
    BetaSessionUpdatedEvent,
    TranscriptionSessionCreatedEvent,
    TranscriptionSessionUpdatedEvent,
)
_SESSIONS = (RealtimeSession, TranscriptionSession, BetaSession, BetaTranscriptionSession)
_request_ids = itertools.count(1)


def close_error(code: int | None, reason: str = "") -> ConnectionClosed:
    """The error pending awaits fail with for a close: 4001 is an authentication failure."""
    if code == 4001:
        return AuthenticationClosed(code, reason or "the server refused the credentials")
    return ConnectionClosed(code, reason)


@dataclass(eq=False)
class Request:
    """An intent waiting for its acknowledgement.

    ``events`` are the client events to send (in order); ``types`` the server event
    types that acknowledge it; ``id`` keys it in :meth:`ClientProtocol.completions`.
    """

    kind: str
    event_id: str
    types: frozenset[str]
    events: list[ClientEvent]
    item_id: str | None = None
    id: int = field(default_factory=lambda: next(_request_ids))

    def matches(self, event: ServerEvent, vad_items: Mapping[str, None]) -> bool:
        """True when ``event`` (of one of :attr:`types`) acknowledges this request."""
        if isinstance(event, _ITEM_EVENTS):
            return event.item.id == self.item_id
        if isinstance(event, (ConversationItemTruncatedEvent, ConversationItemDeletedEvent)):
            return event.item_id == self.item_id
        if isinstance(event, _COMMITTED):
            return event.item_id not in vad_items
        return True  # session.updated, cleared: answered in the order sent


@dataclass(frozen=True)
class Completion:
    """A request's outcome: the acknowledging ``event``, or the ``error`` it failed with."""

    request: Request
    event: ServerEvent | None = None
    error: Exception | None = None


class ClientProtocol:
    """The sans-I/O client state machine (see the module docstring).

    Attributes:
        dialect: ``"ga"`` or ``"beta"``.
        config: the configuration sent last (or the initial one).
        server_session: the session object of the last ``session.created``/``updated``.
        conversation: the :class:`~realtime.conversation.Conversation`.
        responses: the :class:`~realtime.response_state.ResponseTracker` (replaced by a
            fresh one on each new connection; usage totals carry over).
        tools: the :class:`~realtime.tools.ToolRegistry`.
        last_interruption: the last barge-in decision, if any.
        expires_at: the server session's ``expires_at`` (Unix seconds), when known.
        has_tracker: a playback tracker answers barge-ins (the shell passes its
            ``interrupt()`` answer to :meth:`receive` as ``heard``); without one the
            clock values stand for what was heard.
    """

    def __init__(
        self,
        *,
        dialect: Dialect = "ga",
        config: SessionConfig | None = None,
        tools: ToolRegistry | Iterable[Callable[..., Any] | Tool] | None = None,
        auto_respond_to_tools: bool = True,
        audio_retention_ms: int = 0,
        output_audio_format: str | None = None,
        has_tracker: bool = False,
    ) -> None:
        if dialect not in ("beta", "ga"):
            raise ConfigError(f"dialect must be 'ga' or 'beta', not {dialect!r}")
        self.dialect: Dialect = dialect
        self.config = config
        self.server_session: Any = None
        self.expires_at: float | None = None
        if output_audio_format is None:
            configured = config.output_format if config is not None else None
            output_audio_format = configured if isinstance(configured, str) else "pcm16"
        try:
            self.conversation = Conversation(
                audio_retention_ms, audio_format=output_audio_format, report_deltas=False
            )
            self.audio_log = OutputAudioLog(output_audio_format)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.responses = ResponseTracker(dialect=dialect)
        if isinstance(tools, ToolRegistry):
            self.tools = tools
        else:
            self.tools = ToolRegistry()
            for func in tools or ():
                self.tools.register(func)
        self.coordinator = ToolCallCoordinator(
            tracker=self.responses, auto_respond=auto_respond_to_tools, dialect=dialect
        )
        self.last_interruption: Interruption | None = None
        self.error_explained = False
        """Whether the last ``error`` answered a request or a harmless race (no warning)."""
        self._streaming: str | None = None
        self._requests: dict[str, Request] = {}
        self._by_type: dict[str, list[Request]] = {}
        self._vad_items: OrderedDict[str, None] = OrderedDict()
        self._send: list[ClientEvent] = []
        self._done: list[Completion] = []
        self._deliver: list[ServerEvent] = []
        self._lost_responses: list[str] = []
        self._lost_items: list[str] = []
        self._restore = HistoryRestore()
        self._requeue: list[ClientEvent] = []
        self._special: dict[str, Callable[[ServerEvent], None]] = {
            "input_audio_buffer.speech_started": self._on_speech_started,
            "input_audio_buffer.speech_stopped": self._on_speech_stopped,
            "error": self._on_error,
            "session.created": self._on_session,
            "session.updated": self._on_session,
            "transcription_session.created": self._on_session,
            "transcription_session.updated": self._on_session,
        }
        for etype in _AUDIO_DELTAS:
            self._special[etype] = self._on_audio_delta
        for etype in _TOOL_TYPES:
            self._special[etype] = self._on_tool_event
        self._now = 0.0
        self._heard: HeardPosition | None = None
        self.has_tracker = has_tracker

    # -- outputs ---------------------------------------------------------------------

    def events_to_send(self) -> list[ClientEvent]:
        """The client events produced since the last call, in the order to send them."""
        out, self._send = self._send, []
        return out

    def completions(self) -> list[Completion]:
        """Requests acknowledged (or refused, or failed by a close) since the last call."""
        out, self._done = self._done, []
        return out

    def tool_calls(self) -> list[ToolCall]:
        """Function calls that became ready to run since the last call."""
        return self.coordinator.take_calls()

    def events_to_deliver(self) -> list[ServerEvent]:
        """Synthetic events for handlers and waiters (e.g. a lost response's ``response.done``)."""
        out, self._deliver = self._deliver, []
        return out

    @property
    def pending_requests(self) -> int:
        """How many requests wait for an acknowledgement."""
        return len(self._requests)

    # -- server events ---------------------------------------------------------------

    def wants_heard_position(self, event: ServerEvent) -> bool:
        """True when ``event`` starts a barge-in that needs the playback tracker's position.

        The shell then calls its tracker's ``interrupt()`` and passes the answer to
        :meth:`receive` as ``heard``.
        """
        return event.type == "input_audio_buffer.speech_started" and (
            self.audio_log.current is not None or self.responses.active_response is not None
        )

    def receive(
        self, event: ServerEvent, now: float = 0.0, *, heard: HeardPosition | None = None
    ) -> bool:
        """Feed one parsed server event; ``now`` is the caller's monotonic clock in seconds.

        ``heard``: for a ``speech_started`` that :meth:`wants_heard_position`, the
        playback tracker's answer to ``interrupt()`` (``None`` without a tracker: the
        time since the first audio delta then stands for what was heard).

        Returns ``True`` when outputs (events to send, completions, tool calls) are
        waiting. Raises :class:`~realtime.exceptions.ProtocolError` only from a strict
        response tracker.
        """
        etype = event.type
        if etype in _ITEM_ACKS and self._restore:
            self._adopt_restored(event)
        self.conversation.apply(event)
        if etype in _STREAM_DELTAS:
            # A delta of the response already in progress, with no other event in
            # between, cannot change the tracker: skip the call.
            rid = event.response_id if isinstance(event, ResponseRefEvent) else None
            if rid is None or rid != self._streaming:
                self._send.extend(self.responses.apply(event))
                state = self.responses.get(rid) if rid is not None else None
                self._streaming = rid if state and state.status == "in_progress" else None
        else:
            self._streaming = None
            self._send.extend(self.responses.apply(event))
        special = self._special.get(etype)
        if special is not None:
            self._now = now
            self._heard = heard
            special(event)
        if self._by_type:
            waiting = self._by_type.get(etype)
            if waiting:
                for request in waiting:
                    if request.matches(event, self._vad_items):
                        self._complete(request, event=event)
                        break
        return bool(self._send or self._done or self.coordinator.has_ready)

    # -- intents -----------------------------------------------------------------------

    def session_update(self, config: SessionConfig | None = None) -> ClientEvent:
        """The event configuring the session with ``config`` (default: :attr:`config`).

        ``session.update`` with the registered tools added, or, for a beta transcription
        session, ``transcription_session.update``. Raises :class:`ConfigError` when the
        configuration cannot be expressed in the dialect.
        """
        config = config if config is not None else self.config
        if config is not None and config.kind == "transcription" and self.dialect == "beta":
            return config.to_event("beta")
        wire: dict[str, Any] = config.to_wire(self.dialect) if config is not None else {}
        if self.dialect == "ga":
            wire.setdefault("type", "realtime")
        if len(self.tools) and wire.get("type", "realtime") == "realtime":
            tools = list(wire.get("tools") or [])
            names = {t.get("name") for t in tools if isinstance(t, Mapping)}
            tools.extend(d for d in self.tools.definitions() if d["name"] not in names)
            wire["tools"] = tools
            wire.setdefault("tool_choice", "auto")
        return _Raw(type="session.update", session=wire)

    def update(self, config: SessionConfig | None = None) -> Request:
        """Request a session (re)configuration; acknowledged by ``session.updated``
        (``transcription_session.updated`` for a beta transcription session)."""
        event = self.session_update(config)
        ack = (
            "transcription_session.updated"
            if event.type == "transcription_session.update"
            else "session.updated"
        )
        return self._request(event, (ack,))

    def update_transcription_session(self, session: Mapping[str, Any]) -> Request:
        """Configure a transcription-only session from its wire object (either dialect)."""
        if self.dialect == "beta":
            event = _Raw(type="transcription_session.update", session=dict(session))
            return self._request(event, ("transcription_session.updated",))
        body = {"type": "transcription", **dict(session)}
        return self._request(_Raw(type="session.update", session=body), ("session.updated",))

    def commit(self) -> Request:
        """Request ``input_audio_buffer.commit``; only a manual commit acknowledges it."""
        return self._request(InputAudioBufferCommitEvent(), ("input_audio_buffer.committed",))

    def clear_audio(self) -> Request:
        """Request ``input_audio_buffer.clear``."""
        return self._request(InputAudioBufferClearEvent(), ("input_audio_buffer.cleared",))

    def create_item(
        self, item: Mapping[str, Any], *, previous_item_id: str | None = None
    ) -> Request:
        """Request ``conversation.item.create``; an ``id`` is generated when absent."""
        data = dict(item)
        data.setdefault("id", _new_item_id())
        event = _item_create(data, previous_item_id)
        return self._request(event, _ITEM_ACKS, item_id=str(data["id"]))

    def send_text(
        self, text: str, *, role: str = "user", respond: bool = True, **response: Any
    ) -> Request:
        """A text message item (and, with ``respond``, a ``response.create`` right behind it).

        The response request goes through the tracker (queued while another response
        is active, in which case it is not among the request's events).
        """
        part = "input_text" if role != "assistant" else self._assistant_text
        item = {"type": "message", "role": role, "content": [{"type": part, "text": text}]}
        request = self.create_item(item)
        if respond:
            request.events.extend(self.create_response(**response))
        return request

    def truncate(self, item_id: str, content_index: int, audio_end_ms: int) -> Request:
        """Request ``conversation.item.truncate``."""
        event = ConversationItemTruncateEvent(
            item_id=item_id, content_index=content_index, audio_end_ms=int(audio_end_ms)
        )
        return self._request(event, ("conversation.item.truncated",), item_id=item_id)

    def delete_item(self, item_id: str) -> Request:
        """Request ``conversation.item.delete``."""
        event = ConversationItemDeleteEvent(item_id=item_id)
        return self._request(event, ("conversation.item.deleted",), item_id=item_id)

    def retrieve_item(self, item_id: str) -> Request:
        """Request ``conversation.item.retrieve``."""
        event = ConversationItemRetrieveEvent(item_id=item_id)
        return self._request(event, ("conversation.item.retrieved",), item_id=item_id)

    def forget(self, request: Request) -> None:
        """Stop waiting for ``request`` (its awaiter timed out or was cancelled)."""
        self._requests.pop(request.event_id, None)
        for etype in request.types:
            waiting = self._by_type.get(etype)
            if waiting and request in waiting:
                waiting.remove(request)
                if not waiting:
                    del self._by_type[etype]

    def create_response(self, **response: Any) -> list[ClientEvent]:
        """``response.create`` to send now, or ``[]`` when queued behind the active one."""
        return self.responses.request_create(self.responses.new_create(**response))

    def cancel_response(self, response_id: str | None = None) -> list[ClientEvent]:
        """``response.cancel`` for the active response, or ``[]`` when none is."""
        return self.responses.request_cancel(response_id)

    def tool_result(self, result: ToolResult) -> list[ClientEvent]:
        """The output item of a finished call (and the follow-up response when due)."""
        return self.coordinator.complete(result)

    def interrupt(
        self, heard: HeardPosition | None = None, *, now: float | None = None
    ) -> Interruption:
        """Local barge-in: truncate at what was heard and cancel the active response.

        ``heard`` is the playback tracker's answer to ``interrupt()`` (it already
        stopped the speaker with its fade); without a tracker pass ``now`` (same clock
        as :meth:`receive`): the time since the first audio delta stands for what was
        heard. Always cancels an active response (the server did not hear the user
        yet). Returns the decision; its ``events`` are the client events to send.
        """
        return self._interrupt(heard, now, server_cancels=False)

    def append_audio_frame(self, pcm16: bytes) -> str:
        """The encoded ``input_audio_buffer.append`` frame for PCM16 bytes (the hot path)."""
        return (
            '{"type":"input_audio_buffer.append","event_id":"'
            + new_event_id()
            + '","audio":"'
            + base64.b64encode(pcm16).decode("ascii")
            + '"}'
        )

    # -- connection life ----------------------------------------------------------------

    def connection_lost(
        self, error: Exception, now: float | None = None, *, heard: HeardPosition | None = None
    ) -> None:
        """The connection dropped: fail pending requests, end the responses it lost.

        Every pending request completes with ``error`` (:func:`close_error` of the close
        code, typically); every response that
        was active (or requested and not yet announced) ends with a synthetic
        ``response.done`` of status ``incomplete`` and reason :data:`LOST_REASON`
        (see :meth:`events_to_deliver`); its items are marked ``incomplete``.

        A reply whose audio was playing is cut locally at what was heard, as a barge-in
        would (so a restore re-creates only that): ``heard`` is the playback tracker's
        answer to ``interrupt()`` (``None`` from a tracker: everything received was
        heard); without a tracker, ``now`` (the clock of :meth:`receive`) makes the time
        since the first audio delta stand for what was heard.
        """
        for request in list(self._requests.values()):
            self._complete(request, error=error)
        self._cut_at_heard(heard, now)
        self._restore.clear()
        # Requests queued behind the lost response wait for the next connection.
        self._requeue.extend(self.responses.clear_queue())
        lost: list[str | None] = [state.id for state in self.responses.active_responses]
        if self.responses.busy and not lost:
            lost.append(None)  # requested, never announced
        for rid in lost:
            done = self._lost_done(rid)
            self.receive(done)
            self._deliver.append(done)
            if rid is not None:
                self._lost_responses.append(rid)
                for item in self.conversation.mark_incomplete(rid):
                    self._lost_items.append(item.id)
        self._send.clear()  # nothing produced for the dead connection is sent

    def connection_made(self, *, reinject_history: bool = False) -> list[ClientEvent]:
        """A new connection is up (after a loss): the client events restoring the session.

        Response bookkeeping starts afresh (usage totals carry over; requests queued
        behind the lost response are re-queued). Returned, in order: the configuration
        (when there is one or tools), then, with ``reinject_history``, one
        ``conversation.item.create`` per item worth keeping, with its original id and
        chained by ``previous_item_id``, holding only what was heard of a truncated
        reply; then the re-queued response requests.
        """
        old = self.responses
        self.responses = ResponseTracker(dialect=self.dialect)
        self.responses.usage = old.usage
        self.coordinator.tracker = self.responses
        self.audio_log.reset()
        self._streaming = None
        self._vad_items.clear()
        out: list[ClientEvent] = []
        if self.config is not None or len(self.tools):
            out.append(self.session_update(self.config))
        if reinject_history:
            for wire, previous in self._restore.plan(self.conversation, self.dialect):
                out.append(_item_create(wire, previous))
        self._requeue.extend(old.clear_queue())
        for event in self._requeue:
            out.extend(self.responses.request_create(event))
        self._requeue.clear()
        return out

    def take_losses(self) -> tuple[list[str], list[str]]:
        """The ids of the responses and items lost since the last call (for reporting)."""
        lost = (self._lost_responses, self._lost_items)
        self._lost_responses, self._lost_items = [], []
        return lost

    # -- internals -----------------------------------------------------------------------

    @property
    def _assistant_text(self) -> str:
        return "text" if self.dialect == "beta" else "output_text"

    def _request(
        self, event: ClientEvent, types: Iterable[str], *, item_id: str | None = None
    ) -> Request:
        if event.event_id is None:
            event.event_id = new_event_id()
        request = Request(event.type, event.event_id, frozenset(types), [event], item_id)
        self._requests[request.event_id] = request
        for etype in request.types:
            self._by_type.setdefault(etype, []).append(request)
        return request

    def _complete(
        self,
        request: Request,
        *,
        event: ServerEvent | None = None,
        error: Exception | None = None,
    ) -> None:
        self.forget(request)
        self._done.append(Completion(request, event, error))

    def _on_error(self, event: ServerEvent) -> None:
        self.error_explained = False
        if not isinstance(event, ErrorEvent):
            return
        error = event.error
        request = self._requests.get(error.event_id) if error.event_id else None
        if request is None:
            self.error_explained = self.responses.is_expected_error(event)
            return
        self.error_explained = True
        exc = ServerError(
            error.message or "server error",
            type=error.type,
            code=error.code,
            param=error.param,
            event_id=error.event_id,
            event=event,
        )
        self._complete(request, error=exc)

    def _on_session(self, event: ServerEvent) -> None:
        if not isinstance(event, _SESSION_EVENTS):
            return
        session = event.session
        self.server_session = session
        if event.type.endswith(".created"):
            expires = session.expires_at if isinstance(session, _SESSIONS) else None
            self.expires_at = float(expires) if expires else None

    def _on_speech_started(self, event: ServerEvent) -> None:
        self._remember_vad(event)
        self._send.extend(self._barge_in())

    def _on_speech_stopped(self, event: ServerEvent) -> None:
        self._remember_vad(event)

    def _remember_vad(self, event: ServerEvent) -> None:
        if isinstance(
            event, (InputAudioBufferSpeechStartedEvent, InputAudioBufferSpeechStoppedEvent)
        ):
            self._vad_items[event.item_id] = None
            if len(self._vad_items) > _VAD_LIMIT:
                self._vad_items.popitem(last=False)

    def _on_audio_delta(self, event: ServerEvent) -> None:
        self.audio_log.apply(event, self._now)

    def _on_tool_event(self, event: ServerEvent) -> None:
        self._send.extend(self.coordinator.apply(event))

    def server_cancels(self) -> bool:
        """Whether the server cancels a response itself on speech (``interrupt_response``)."""
        session = self.server_session
        if session is None:
            # speech_started implies a server VAD, which interrupts by default.
            return True
        turn: Any = None
        if isinstance(session, (RealtimeSession, TranscriptionSession)):
            audio = session.audio
            turn = audio.input.turn_detection if audio and audio.input else None
        elif isinstance(session, (BetaSession, BetaTranscriptionSession)):
            turn = session.turn_detection
        if turn is None:
            return False  # a known session without turn detection never cancels by itself
        if isinstance(turn, (ServerVad, SemanticVad)):
            return True if turn.interrupt_response is None else turn.interrupt_response
        return True

    def _barge_in(self) -> list[ClientEvent]:
        """The server heard the user speak: truncate what was unheard, maybe cancel."""
        heard, self._heard = self._heard, None
        if self.has_tracker:
            if heard is None:  # the tracker says nothing was playing: nothing to truncate
                decision = self._interrupt(None, None, server_cancels=self.server_cancels())
                return decision.events
            return self._interrupt(heard, None, server_cancels=self.server_cancels()).events
        return self._interrupt(None, self._now, server_cancels=self.server_cancels()).events

    def _interrupt(
        self, heard: HeardPosition | None, now: float | None, *, server_cancels: bool
    ) -> Interruption:
        playing = self.audio_log.current
        active = self.responses.active_response
        if playing is None and active is None and heard is None:
            return Interruption()
        decision = plan_interruption(
            playing,
            heard=heard,
            now=now if heard is None else None,
            server_cancels=server_cancels,
            response_active=active is not None,
            response_id=active.id if active is not None else None,
        )
        if decision.item_id is not None:
            self.audio_log.interrupted(decision.item_id)
        out = [e for e in decision.events if e.type != "response.cancel"]
        if decision.cancel:
            out.extend(self.responses.request_cancel())
        decision = Interruption(
            events=out,
            item_id=decision.item_id,
            content_index=decision.content_index,
            audio_end_ms=decision.audio_end_ms,
            heard_ms=decision.heard_ms,
            received_ms=decision.received_ms,
            cancel=decision.cancel,
        )
        self.last_interruption = decision
        return decision

    def _cut_at_heard(self, heard: HeardPosition | None, now: float | None) -> None:
        playing = self.audio_log.current
        if playing is None or (self.has_tracker and heard is None):
            return
        if heard is None and playing.response_id not in {
            state.id for state in self.responses.active_responses
        }:
            return  # no tracker: only a reply the drop cut short is estimated by the clock
        item = self.conversation.get(playing.item_id)
        parts = item.content if item is not None else []
        if playing.content_index < len(parts) and parts[playing.content_index].truncated:
            return  # already cut where it was heard
        decision = plan_interruption(
            playing,
            heard=heard,
            now=None if self.has_tracker else now,
            server_cancels=True,
            response_active=True,  # the reply did not end: unheard audio counts as cut
        )
        if decision.item_id is None:
            return
        self.audio_log.interrupted(decision.item_id)
        if decision.audio_end_ms is not None:
            # Applied locally only: the connection is gone, the restore carries the cut.
            self.conversation.apply(
                ConversationItemTruncatedEvent(
                    item_id=decision.item_id,
                    content_index=decision.content_index,
                    audio_end_ms=decision.audio_end_ms,
                )
            )

    def _lost_done(self, response_id: str | None) -> ServerEvent:
        details = StatusDetails(type="incomplete", reason=LOST_REASON)
        if self.dialect == "beta":
            beta = BetaResponse(id=response_id, status="incomplete", status_details=details)
            return BetaResponseDoneEvent(response=beta)
        ga = Response(id=response_id, status="incomplete", status_details=details)
        return ResponseDoneEvent(response=ga)

    def _adopt_restored(self, event: ServerEvent) -> None:
        if isinstance(event, _ITEM_EVENTS) and event.item.id:
            item_id = event.item.id
            requested = any(r.item_id == item_id for r in self._by_type.get(event.type, ()))
            self._restore.echoed(item_id, self.conversation, requested=requested)


class _Raw(ClientEvent):
    """A client event given as plain fields (validated by the server, not here)."""


def _item_create(item: dict[str, Any], previous_item_id: str | None) -> ClientEvent:
    if previous_item_id is None:
        return _Raw(type="conversation.item.create", item=item)
    return _Raw(type="conversation.item.create", previous_item_id=previous_item_id, item=item)


def _new_item_id() -> str:
    return "item_" + secrets.token_hex(10)
