"""The browser voice console: one page served at ``/``, talking WebRTC to a realtime server.

The page (``console/index.html``, ``console.js``, ``console.css``, shipped in the package; no
build step, no CDN) never sees a real API key. It asks this server for an ephemeral client
secret (``POST /console/session``), then sends its SDP offer with that secret:

- **local** (default): the secret is minted by this server's key store and the offer goes to
  this server's ``POST /v1/realtime/calls``;
- **upstream** (``realtime serve --upstream openai`` or ``--upstream URL``): this server holds
  the upstream's API key, mints the secret with the upstream's
  ``POST /v1/realtime/client_secrets`` and relays the page's offer to the upstream's
  ``POST /v1/realtime/calls`` (``POST /console/calls``); audio and events then flow between
  the browser and the upstream directly.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from .auth import credential_from

if TYPE_CHECKING:
    from .state import ServerState

__all__ = ["OPENAI_BASE_URL", "Upstream", "console_routes", "may_mint", "set_upstream"]

log = logging.getLogger("realtime.server.console")

OPENAI_BASE_URL = "https://api.openai.com/v1"
MAX_SESSION_BODY = 64 * 1024
MAX_SDP_BYTES = 64 * 1024
_ASSETS = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
_UPSTREAM_ATTR = "console_upstream"


@dataclass(frozen=True)
class Upstream:
    """A realtime service the console reaches through this server (which holds its key)."""

    base_url: str
    api_key: str
    timeout: float = 20.0

    def __repr__(self) -> str:  # never print the key
        return f"Upstream(base_url={self.base_url!r})"

    @classmethod
    def from_option(cls, option: str, api_key: str | None = None) -> Upstream:
        """``openai`` or a base URL (``https://host/v1``); the key defaults to OPENAI_API_KEY."""
        base = OPENAI_BASE_URL if option == "openai" else option.rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise ValueError(f"--upstream must be 'openai' or an http(s) URL, not {option!r}")
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise ValueError("--upstream needs the upstream's API key in OPENAI_API_KEY")
        return cls(base, key)


def set_upstream(app: Any, upstream: Upstream | None) -> None:
    """Make the console on this app use ``upstream`` (``None``: this server itself)."""
    setattr(app.state, _UPSTREAM_ATTR, upstream)


def _upstream(request: Request) -> Upstream | None:
    value = getattr(request.app.state, _UPSTREAM_ATTR, None)
    return value if isinstance(value, Upstream) else None


def _asset(name: str) -> str:
    return (resources.files(__package__) / "console" / name).read_text("utf-8")


def _error(message: str, code: str, status: int) -> Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    return JSONResponse(body, status_code=status)


async def index(request: Request) -> Response:
    """The console page."""
    return HTMLResponse(_asset("index.html"), headers={"Cache-Control": "no-store"})


async def asset(request: Request) -> Response:
    """The page's script and style sheet (nothing else is served from the package)."""
    name = request.path_params["name"]
    media = _ASSETS.get(name)
    if media is None:
        return _error("Not found.", "not_found", 404)
    return Response(_asset(name), media_type=media, headers={"Cache-Control": "no-store"})


def may_mint(client_host: str | None, credential: str | None, state: ServerState) -> bool:
    """Who may get a console secret: anyone when the server has no API key (it binds
    127.0.0.1 by default); with ``--api-key``, a loopback client or a request carrying the
    key, so that the console does not open a keyed server to its whole network."""
    if state.keys.open:
        return True
    if client_host in ("127.0.0.1", "::1", "localhost"):
        return True
    ok, eph = state.keys.check(credential)
    return ok and eph is None


async def mint(request: Request) -> Response:
    """``POST /console/session``: an ephemeral client secret for the page (never a real key)."""
    state: ServerState = request.app.state.server
    host = request.client.host if request.client is not None else None
    if not may_mint(host, credential_from(request.headers), state):
        return _error(
            "This server needs its API key: open the console from the server's machine.",
            "invalid_api_key",
            401,
        )
    raw = await request.body()
    if len(raw) > MAX_SESSION_BODY:
        return _error("The body is too large.", "invalid_body", 413)
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        return _error("The body is not valid JSON.", "invalid_json", 400)
    session = body.get("session") if isinstance(body, dict) else None
    if not isinstance(session, dict):
        session = {"type": "realtime"}
    session.setdefault("type", "realtime")
    upstream = _upstream(request)
    if upstream is None:
        key = state.keys.mint(600, session=session, dialect="ga")
        return JSONResponse(
            {
                "client_secret": key.value,
                "expires_at": key.expires_at,
                "calls_url": "/v1/realtime/calls",
                "mode": "local",
            }
        )
    try:
        async with httpx.AsyncClient(timeout=upstream.timeout) as http:
            r = await http.post(
                upstream.base_url + "/realtime/client_secrets",
                headers={"Authorization": f"Bearer {upstream.api_key}"},
                json={
                    "session": session,
                    "expires_after": {"anchor": "created_at", "seconds": 600},
                },
            )
    except httpx.HTTPError as exc:
        return _error(f"The upstream could not be reached: {exc}", "upstream_unreachable", 502)
    if r.status_code != 200:
        return Response(r.content, status_code=r.status_code, media_type="application/json")
    data = r.json()
    value = data.get("value") or (data.get("client_secret") or {}).get("value")
    if not isinstance(value, str):
        return _error("The upstream returned no client secret.", "upstream_error", 502)
    return JSONResponse(
        {
            "client_secret": value,
            "expires_at": data.get("expires_at"),
            "calls_url": "/console/calls",
            "mode": "upstream",
        }
    )


async def relay_call(request: Request) -> Response:
    """``POST /console/calls`` (upstream mode): relay the page's offer to the upstream."""
    upstream = _upstream(request)
    if upstream is None:
        return RedirectResponse("/v1/realtime/calls", status_code=307)
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        return _error("An ephemeral client secret is required.", "invalid_api_key", 401)
    if auth[7:].strip() == upstream.api_key:
        return _error("Send the ephemeral secret, not a real key.", "invalid_api_key", 401)
    sdp = await request.body()
    if len(sdp) > MAX_SDP_BYTES:
        return _error("The SDP offer is too large.", "invalid_sdp", 413)
    try:
        async with httpx.AsyncClient(timeout=upstream.timeout) as http:
            r = await http.post(
                upstream.base_url + "/realtime/calls",
                headers={"Authorization": auth, "Content-Type": "application/sdp"},
                content=sdp,
            )
    except httpx.HTTPError as exc:
        return _error(f"The upstream could not be reached: {exc}", "upstream_unreachable", 502)
    headers = {"Location": r.headers["location"]} if "location" in r.headers else {}
    media = r.headers.get("content-type", "application/sdp")
    return Response(r.content, status_code=r.status_code, media_type=media, headers=headers)


def console_routes() -> list[BaseRoute]:
    """The console's routes to add to the server's app."""
    return [
        Route("/", index, methods=["GET"]),
        Route("/console/{name}", asset, methods=["GET"]),
        Route("/console/session", mint, methods=["POST"]),
        Route("/console/calls", relay_call, methods=["POST"]),
    ]
