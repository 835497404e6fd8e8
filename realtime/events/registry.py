"""Which event classes make up each dialect.

The lists follow the ``RealtimeClientEvent`` and ``RealtimeServerEvent`` unions of
each spec (beta: openapi-2025-04, GA: openapi-2026-08).  The GA file also defines
``transcription_session.update``/``updated`` outside its unions; GA expresses a
transcription session as ``session.update`` with ``session.type = "transcription"``,
so those two belong to the beta dialect only.

One type is added to the beta union: ``transcription_session.created``, the first
event of a beta transcription connection, which the 2025-04 file omits and the
2026-08 file documents (``RealtimeBetaServerEventTranscriptionSessionCreated``).

WebRTC adds the output audio buffer to the beta dialect too: real beta WebRTC traffic
carries ``output_audio_buffer.started`` / ``.stopped`` / ``.cleared`` and accepts
``output_audio_buffer.clear`` (which the 2026-08 file documents as
``RealtimeBetaClientEventOutputAudioBufferClear``). They are typed in beta as
:data:`BETA_WEBRTC_SERVER_EXTENSIONS` and :data:`BETA_CLIENT_EXTENSIONS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, get_args

from ..exceptions import ConfigError
from .base import ClientEvent, ServerEvent
from .conversation import (
    BetaConversationItemCreatedEvent,
    BetaConversationItemCreateEvent,
    BetaConversationItemRetrievedEvent,
    ConversationCreatedEvent,
    ConversationItemAddedEvent,
    ConversationItemCreatedEvent,
    ConversationItemCreateEvent,
    ConversationItemDeletedEvent,
    ConversationItemDeleteEvent,
    ConversationItemDoneEvent,
    ConversationItemRetrievedEvent,
    ConversationItemRetrieveEvent,
    ConversationItemTruncatedEvent,
    ConversationItemTruncateEvent,
)
from .errors import ErrorEvent
from .input_audio_buffer import (
    BetaInputAudioBufferCommittedEvent,
    InputAudioBufferAppendEvent,
    InputAudioBufferClearedEvent,
    InputAudioBufferClearEvent,
    InputAudioBufferCommitEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferDtmfEventReceivedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    InputAudioBufferTimeoutTriggeredEvent,
)
from .mcp import (
    McpListToolsCompletedEvent,
    McpListToolsFailedEvent,
    McpListToolsInProgressEvent,
    ResponseMcpCallArgumentsDeltaEvent,
    ResponseMcpCallArgumentsDoneEvent,
    ResponseMcpCallCompletedEvent,
    ResponseMcpCallFailedEvent,
    ResponseMcpCallInProgressEvent,
)
from .output_audio_buffer import (
    OutputAudioBufferClearedEvent,
    OutputAudioBufferClearEvent,
    OutputAudioBufferStartedEvent,
    OutputAudioBufferStoppedEvent,
)
from .rate_limits import RateLimitsUpdatedEvent
from .responses import (
    BetaResponseCreatedEvent,
    BetaResponseCreateEvent,
    BetaResponseDoneEvent,
    BetaResponseFunctionCallArgumentsDoneEvent,
    BetaResponseOutputItemAddedEvent,
    BetaResponseOutputItemDoneEvent,
    ResponseAudioDeltaEvent,
    ResponseAudioDoneEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseAudioTranscriptDoneEvent,
    ResponseCancelEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseCreateEvent,
    ResponseDoneEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseOutputAudioDeltaEvent,
    ResponseOutputAudioDoneEvent,
    ResponseOutputAudioTranscriptDeltaEvent,
    ResponseOutputAudioTranscriptDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputTextDeltaEvent,
    ResponseOutputTextDoneEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
)
from .session import (
    BetaSessionCreatedEvent,
    BetaSessionUpdatedEvent,
    BetaSessionUpdateEvent,
    SessionCreatedEvent,
    SessionUpdatedEvent,
    SessionUpdateEvent,
    TranscriptionSessionCreatedEvent,
    TranscriptionSessionUpdatedEvent,
    TranscriptionSessionUpdateEvent,
)
from .transcription import (
    BetaConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    ConversationItemInputAudioTranscriptionFailedEvent,
    ConversationItemInputAudioTranscriptionSegmentEvent,
)
from .translation import TRANSLATION_CLIENT_EVENTS, TRANSLATION_SERVER_EVENTS

__all__ = [
    "DIALECTS",
    "Dialect",
    "EventSet",
    "client_event_types",
    "server_event_types",
    "wire_type",
]

Dialect = Literal["beta", "ga"]
"""The protocol dialect: ``"beta"`` (openapi-2025-04) or ``"ga"`` (openapi-2026-08)."""

DIALECTS: tuple[Dialect, ...] = ("beta", "ga")

EventSet = Literal["beta", "ga", "translation"]
"""A dialect, or ``"translation"``: the events of translation sessions
(:mod:`realtime.events.translation`), which reuse three GA wire types with other shapes."""

BETA_CLIENT_EVENTS: tuple[type[ClientEvent], ...] = (
    BetaConversationItemCreateEvent,
    ConversationItemDeleteEvent,
    ConversationItemRetrieveEvent,
    ConversationItemTruncateEvent,
    InputAudioBufferAppendEvent,
    InputAudioBufferClearEvent,
    InputAudioBufferCommitEvent,
    ResponseCancelEvent,
    BetaResponseCreateEvent,
    BetaSessionUpdateEvent,
    TranscriptionSessionUpdateEvent,
    OutputAudioBufferClearEvent,
)

# Beta client events beyond the 2025-04 union (see the module docstring).
BETA_CLIENT_EXTENSIONS: tuple[type[ClientEvent], ...] = (OutputAudioBufferClearEvent,)

GA_CLIENT_EVENTS: tuple[type[ClientEvent], ...] = (
    ConversationItemCreateEvent,
    ConversationItemDeleteEvent,
    ConversationItemRetrieveEvent,
    ConversationItemTruncateEvent,
    InputAudioBufferAppendEvent,
    InputAudioBufferClearEvent,
    InputAudioBufferCommitEvent,
    OutputAudioBufferClearEvent,
    ResponseCancelEvent,
    ResponseCreateEvent,
    SessionUpdateEvent,
)

# Server events with the same shape in both dialects.
_SHARED_SERVER_EVENTS: tuple[type[ServerEvent], ...] = (
    ConversationCreatedEvent,
    ConversationItemDeletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    ConversationItemInputAudioTranscriptionFailedEvent,
    ConversationItemTruncatedEvent,
    ErrorEvent,
    InputAudioBufferClearedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    RateLimitsUpdatedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
)

# Beta server events beyond the 2025-04 union (see the module docstring).
BETA_SERVER_EXTENSIONS: tuple[type[ServerEvent], ...] = (TranscriptionSessionCreatedEvent,)

# What beta WebRTC sessions send beyond both files' beta events (see the module docstring).
BETA_WEBRTC_SERVER_EXTENSIONS: tuple[type[ServerEvent], ...] = (
    OutputAudioBufferStartedEvent,
    OutputAudioBufferStoppedEvent,
    OutputAudioBufferClearedEvent,
)

BETA_SERVER_EVENTS: tuple[type[ServerEvent], ...] = (
    *_SHARED_SERVER_EVENTS,
    BetaConversationItemCreatedEvent,
    BetaConversationItemInputAudioTranscriptionCompletedEvent,
    BetaConversationItemRetrievedEvent,
    BetaInputAudioBufferCommittedEvent,
    ResponseAudioDeltaEvent,
    ResponseAudioDoneEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseAudioTranscriptDoneEvent,
    BetaResponseCreatedEvent,
    BetaResponseDoneEvent,
    BetaResponseFunctionCallArgumentsDoneEvent,
    BetaResponseOutputItemAddedEvent,
    BetaResponseOutputItemDoneEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    BetaSessionCreatedEvent,
    BetaSessionUpdatedEvent,
    TranscriptionSessionUpdatedEvent,
    *BETA_SERVER_EXTENSIONS,
    *BETA_WEBRTC_SERVER_EXTENSIONS,
)

GA_SERVER_EVENTS: tuple[type[ServerEvent], ...] = (
    *_SHARED_SERVER_EVENTS,
    ConversationItemCreatedEvent,
    ConversationItemAddedEvent,
    ConversationItemDoneEvent,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionSegmentEvent,
    ConversationItemRetrievedEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferDtmfEventReceivedEvent,
    InputAudioBufferTimeoutTriggeredEvent,
    McpListToolsCompletedEvent,
    McpListToolsFailedEvent,
    McpListToolsInProgressEvent,
    OutputAudioBufferClearedEvent,
    OutputAudioBufferStartedEvent,
    OutputAudioBufferStoppedEvent,
    ResponseCreatedEvent,
    ResponseDoneEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseMcpCallArgumentsDeltaEvent,
    ResponseMcpCallArgumentsDoneEvent,
    ResponseMcpCallCompletedEvent,
    ResponseMcpCallFailedEvent,
    ResponseMcpCallInProgressEvent,
    ResponseOutputAudioDeltaEvent,
    ResponseOutputAudioDoneEvent,
    ResponseOutputAudioTranscriptDeltaEvent,
    ResponseOutputAudioTranscriptDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputTextDeltaEvent,
    ResponseOutputTextDoneEvent,
    SessionCreatedEvent,
    SessionUpdatedEvent,
)


def wire_type(cls: type[ClientEvent] | type[ServerEvent]) -> str:
    """Return the wire ``type`` string of an event class (its ``type`` Literal)."""
    (value,) = get_args(cls.model_fields["type"].annotation)
    return str(value)


def _table(classes: tuple[type[ServerEvent], ...]) -> Mapping[str, type[ServerEvent]]:
    return MappingProxyType({wire_type(cls): cls for cls in classes})


def _client_table(classes: tuple[type[ClientEvent], ...]) -> Mapping[str, type[ClientEvent]]:
    return MappingProxyType({wire_type(cls): cls for cls in classes})


_SERVER_TABLES = {
    "beta": _table(BETA_SERVER_EVENTS),
    "ga": _table(GA_SERVER_EVENTS),
    "translation": _table(TRANSLATION_SERVER_EVENTS),
}
_CLIENT_TABLES = {
    "beta": _client_table(BETA_CLIENT_EVENTS),
    "ga": _client_table(GA_CLIENT_EVENTS),
    "translation": _client_table(TRANSLATION_CLIENT_EVENTS),
}


def _check(dialect: str) -> None:
    if dialect not in _SERVER_TABLES:
        raise ConfigError(f"unknown dialect {dialect!r} (expected 'beta', 'ga' or 'translation')")


def server_event_types(dialect: EventSet = "ga") -> Mapping[str, type[ServerEvent]]:
    """Return the read-only map wire type -> server event class of ``dialect``.

    Raises :class:`~realtime.exceptions.ConfigError` for a dialect other than ``"beta"``,
    ``"ga"`` or ``"translation"``.
    """
    _check(dialect)
    return _SERVER_TABLES[dialect]


def client_event_types(dialect: EventSet = "ga") -> Mapping[str, type[ClientEvent]]:
    """Return the read-only map wire type -> client event class of ``dialect``.

    Raises :class:`~realtime.exceptions.ConfigError` for a dialect other than ``"beta"``,
    ``"ga"`` or ``"translation"``.
    """
    _check(dialect)
    return _CLIENT_TABLES[dialect]
