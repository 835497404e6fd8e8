"""The local realtime server: an offline backend that speaks the OpenAI Realtime protocol.

``LocalServer`` runs it inside your event loop (``port=0`` picks a free port); ``realtime serve``
runs it from the command line. See :mod:`realtime.server.app` for the routes.
"""

from __future__ import annotations

from .limits import Limits
from .local import LocalServer
from .responders import (
    EchoResponder,
    OpenAICompatibleResponder,
    Responder,
    ScriptResponder,
    load_responder,
)

__all__ = [
    "EchoResponder",
    "Limits",
    "LocalServer",
    "OpenAICompatibleResponder",
    "Responder",
    "ScriptResponder",
    "load_responder",
]
