"""The realtime protocol as typed models, for both dialects.

``beta`` is the protocol of openapi-2025-04 (flat sessions, ``response.audio.*``),
``ga`` the protocol of openapi-2026-08 (nested ``audio.input``/``audio.output``
sessions, ``response.output_audio.*``).  This package is pure: it does no I/O.

Typical use::

    event = parse_server_event(frame, dialect="ga")
    frame = encode_client_event(InputAudioBufferAppendEvent.from_pcm(pcm))

Every model of the family modules is re-exported here.
"""

from __future__ import annotations

from .base import (
    ClientEvent,
    ContentRefEvent,
    Event,
    ItemRefEvent,
    Model,
    OutputRefEvent,
    ResponseRefEvent,
    ServerEvent,
    UnknownServerEvent,
    new_event_id,
)
from .codec import (
    encode_client_event,
    encode_server_event,
    parse_client_event,
    parse_server_event,
)
from .common import *  # noqa: F403
from .common import __all__ as _common_all
from .conversation import *  # noqa: F403
from .conversation import __all__ as _conversation_all
from .errors import ErrorEvent
from .input_audio_buffer import *  # noqa: F403
from .input_audio_buffer import __all__ as _input_all
from .items import *  # noqa: F403
from .items import __all__ as _items_all
from .mcp import *  # noqa: F403
from .mcp import __all__ as _mcp_all
from .output_audio_buffer import *  # noqa: F403
from .output_audio_buffer import __all__ as _output_all
from .rate_limits import RateLimit, RateLimitsUpdatedEvent
from .registry import Dialect, client_event_types, server_event_types
from .responses import *  # noqa: F403
from .responses import __all__ as _responses_all
from .session import *  # noqa: F403
from .session import __all__ as _session_all
from .transcription import *  # noqa: F403
from .transcription import __all__ as _transcription_all

__all__ = [
    "ClientEvent",
    "ContentRefEvent",
    "Dialect",
    "ErrorEvent",
    "Event",
    "ItemRefEvent",
    "Model",
    "OutputRefEvent",
    "RateLimit",
    "RateLimitsUpdatedEvent",
    "ResponseRefEvent",
    "ServerEvent",
    "UnknownServerEvent",
    "client_event_types",
    "encode_client_event",
    "encode_server_event",
    "new_event_id",
    "parse_client_event",
    "parse_server_event",
    "server_event_types",
    *_common_all,
    *_conversation_all,
    *_input_all,
    *_items_all,
    *_mcp_all,
    *_output_all,
    *_responses_all,
    *_session_all,
    *_transcription_all,
]
