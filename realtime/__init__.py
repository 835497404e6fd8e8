"""realtime-voice: a client (and an offline local server) for the OpenAI Realtime protocol.

.. code-block:: python

    import realtime
    from realtime import SessionConfig

    async with realtime.connect(model="gpt-realtime") as session:
        session.on("response.output_audio_transcript.delta", lambda e: print(e.delta, end=""))
        await session.update(SessionConfig(instructions="Be brief."))
        await session.send_text("Hello!")
        await session.wait_for("response.done")

Submodules: :mod:`realtime.events` (typed protocol models), :mod:`realtime.session`,
:mod:`realtime.conversation`, :mod:`realtime.response_state`, :mod:`realtime.tools`,
:mod:`realtime.rest` (REST audio), :mod:`realtime.server` (the local server),
:mod:`realtime.script` (scripted sessions), :mod:`realtime.testing` (a scripted fake server),
:mod:`realtime.translation` (translation sessions: :func:`connect_translation`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .connection import Endpoint, resolve_endpoint
from .conversation import Conversation, Item
from .events import (
    ClientEvent,
    Dialect,
    ServerEvent,
    UnknownServerEvent,
    encode_client_event,
    parse_server_event,
)
from .events.config import SessionConfig
from .exceptions import (
    APIError,
    AuthenticationClosed,
    AuthenticationError,
    ConfigError,
    ConnectionClosed,
    ConnectionError,
    ProtocolError,
    RealtimeError,
    RequestTimeout,
    ResponseError,
    ScriptError,
    ServerError,
    ToolError,
)
from .recording import Recorder
from .response_state import ResponseTracker

if TYPE_CHECKING:
    from .connection import SessionOptions
    from .dispatch import Dispatcher
    from .protocol import ClientProtocol
    from .reconnect import ReconnectPolicy
    from .rest import AsyncAudioClient, AudioClient, EphemeralKey
    from .session import Session, connect
    from .tools import Tool, ToolRegistry, tool
    from .translation import TranslationClient, connect_translation

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "AsyncAudioClient",
    "AudioClient",
    "AuthenticationClosed",
    "AuthenticationError",
    "ClientEvent",
    "ClientProtocol",
    "ConfigError",
    "ConnectionClosed",
    "ConnectionError",
    "Conversation",
    "Dialect",
    "Dispatcher",
    "Endpoint",
    "EphemeralKey",
    "Item",
    "ProtocolError",
    "RealtimeError",
    "ReconnectPolicy",
    "Recorder",
    "RequestTimeout",
    "ResponseError",
    "ResponseTracker",
    "ScriptError",
    "ServerError",
    "ServerEvent",
    "Session",
    "SessionConfig",
    "SessionOptions",
    "Tool",
    "ToolError",
    "ToolRegistry",
    "TranslationClient",
    "UnknownServerEvent",
    "__version__",
    "connect",
    "connect_translation",
    "encode_client_event",
    "parse_server_event",
    "resolve_endpoint",
    "tool",
]


# The I/O layer (asyncio, websockets) loads on first use, so that importing the pure core
# (``realtime.events``, ``realtime.conversation``, …) never pulls in a network stack.
_LAZY = {
    "ClientProtocol": "realtime.protocol",
    "Dispatcher": "realtime.dispatch",
    "SessionOptions": "realtime.connection",
    "Session": "realtime.session",
    "connect": "realtime.session",
    "ReconnectPolicy": "realtime.reconnect",
    "Tool": "realtime.tools",
    "ToolRegistry": "realtime.tools",
    "tool": "realtime.tools",
    "AsyncAudioClient": "realtime.rest",
    "AudioClient": "realtime.rest",
    "EphemeralKey": "realtime.rest",
    "TranslationClient": "realtime.translation",
    "connect_translation": "realtime.translation",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'realtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
