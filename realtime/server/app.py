"""The local server's ASGI application (Starlette): where its routes are assembled.

Routes (all under ``/v1``):

- ``WS /v1/realtime?model=…`` (see :mod:`.ws`).
- ``POST /v1/audio/transcriptions``, ``POST /v1/audio/translations``, ``POST /v1/audio/speech``
  (see :mod:`.rest`).
- ``POST /v1/realtime/client_secrets`` (GA) and ``POST /v1/realtime/sessions`` /
  ``POST /v1/realtime/transcription_sessions`` (beta): mint ephemeral keys (see :mod:`.mint`).
- ``WS /v1/realtime/translations`` and ``POST /v1/realtime/translations/client_secrets``:
  translation sessions (see :mod:`.translation`).

A transport adding routes (WebRTC, telephony, …) writes a function returning its routes,
taking only :class:`~.state.ServerState` from ``request.app.state.server``, and adds it to
:data:`ROUTE_GROUPS` (or passes ``extra_routes`` to :func:`create_app`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route, WebSocketRoute

from .calls import call_routes
from .console import console_routes
from .mint import beta_sessions, client_secrets
from .rest import rest_routes
from .state import ServerState
from .translation import translation_routes
from .webrtc import webrtc_routes
from .ws import realtime_endpoint

__all__ = ["ROUTE_GROUPS", "ServerState", "create_app", "realtime_routes", "routes"]


def realtime_routes() -> list[BaseRoute]:
    """The realtime WebSocket and the ephemeral-key routes."""
    return [
        WebSocketRoute("/v1/realtime", realtime_endpoint),
        Route("/v1/realtime/client_secrets", client_secrets, methods=["POST"]),
        Route("/v1/realtime/sessions", beta_sessions, methods=["POST"]),
        Route("/v1/realtime/transcription_sessions", beta_sessions, methods=["POST"]),
    ]


# Every group of routes the server serves, in order; each is a function returning routes.
ROUTE_GROUPS: list[Callable[[], Sequence[BaseRoute]]] = [
    realtime_routes,
    rest_routes,
    webrtc_routes,
    console_routes,
    call_routes,
    translation_routes,
]


def routes(extra: Sequence[BaseRoute] = ()) -> list[BaseRoute]:
    """The route table: every group of :data:`ROUTE_GROUPS`, then ``extra``."""
    table: list[BaseRoute] = []
    for group in ROUTE_GROUPS:
        table.extend(group())
    table.extend(extra)
    return table


def create_app(
    state: ServerState | None = None, *, extra_routes: Sequence[BaseRoute] = ()
) -> Starlette:
    """The ASGI app serving one :class:`ServerState`."""
    app = Starlette(routes=routes(extra_routes))
    app.state.server = state or ServerState()
    return app
