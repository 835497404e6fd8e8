"""The phone bridge as an ASGI application (Starlette), and a way to serve it.

Routes (the paths the providers' own examples use):

- ``POST /incoming-call``: the provider's voice webhook. Answers with TwiML that connects
  the call's audio to ``/media-stream`` on this server, passing the caller's number, the
  called number and the call id as stream parameters (they reach the session config).
- ``WS /media-stream``: one media stream per call, run by :class:`~.bridge.MediaStreamBridge`.

:func:`create_phone_app` returns the app (mount it in any ASGI server or app);
:class:`PhoneServer` runs it with uvicorn inside the current event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from types import TracebackType
from xml.sax.saxutils import escape, quoteattr

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .bridge import MediaStreamBridge

__all__ = ["PhoneServer", "StarletteSocket", "create_phone_app", "twiml_connect"]

logger = logging.getLogger("realtime.telephony")

FORWARDED_FIELDS = ("From", "To", "CallSid", "CallerName", "Direction")
"""Voice-webhook form fields passed on to the stream as custom parameters."""

_MAX_PARAM = 500


class StarletteSocket:
    """A Starlette WebSocket as a :class:`~.bridge.PhoneSocket`."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self._closed = False

    async def receive(self) -> str | None:
        """The next text message, ``None`` once disconnected."""
        while not self._closed:
            try:
                msg = await self.ws.receive()
            except (RuntimeError, WebSocketDisconnect):  # receiving after the disconnect message
                self._closed = True
                break
            if msg["type"] == "websocket.disconnect":
                self._closed = True
                break
            if msg.get("text") is not None:
                text: str = msg["text"]
                return text
            if msg.get("bytes") is not None:
                data: bytes = msg["bytes"]
                return data.decode("utf-8", "replace")
        return None

    async def send(self, text: str) -> None:
        """Send a text message."""
        await self.ws.send_text(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close unless already closed."""
        if self.ws.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                await self.ws.close(code, reason)
        self._closed = True


def twiml_connect(stream_url: str, parameters: dict[str, str] | None = None) -> str:
    """TwiML that connects the call to a bidirectional media stream at ``stream_url``."""
    params = "".join(
        f"<Parameter name={quoteattr(k)} value={quoteattr(v[:_MAX_PARAM])}/>"
        for k, v in (parameters or {}).items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Connect><Stream url={quoteattr(stream_url)}>{params}</Stream>"
        "</Connect></Response>"
    )


def _stream_url(request: Request, public_url: str | None, path: str) -> str:
    if public_url:
        base = public_url.rstrip("/")
        for http, ws in (("https://", "wss://"), ("http://", "ws://")):
            if base.startswith(http):
                base = ws + base[len(http) :]
        return base + path
    proto = request.headers.get("x-forwarded-proto", request.url.scheme).split(",")[0].strip()
    scheme = "wss" if proto in ("https", "wss") else "ws"
    host = request.headers.get("x-forwarded-host") or request.headers.get("host") or "localhost"
    return f"{scheme}://{escape(host.split(',')[0].strip())}{path}"


def create_phone_app(
    bridge: MediaStreamBridge,
    *,
    public_url: str | None = None,
    stream_path: str = "/media-stream",
    webhook_path: str = "/incoming-call",
    forwarded_fields: Sequence[str] = FORWARDED_FIELDS,
) -> Starlette:
    """The ASGI app serving ``bridge`` (see the module docstring).

    ``public_url`` is the server's address as the provider reaches it (``https://...``);
    by default the stream URL is built from the webhook request's host (honouring
    ``X-Forwarded-Proto``/``-Host``).
    """

    async def incoming_call(request: Request) -> Response:
        params: dict[str, str] = {}
        try:
            form = await request.form()
        except Exception:  # not a form (or no multipart support): no parameters to pass
            form = None
        if form is not None:
            for name in forwarded_fields:
                value = form.get(name)
                if isinstance(value, str) and value:
                    params[name] = value
        body = twiml_connect(_stream_url(request, public_url, stream_path), params)
        return Response(body, media_type="application/xml")

    async def media_stream(ws: WebSocket) -> None:
        await ws.accept()
        await bridge.handle(StarletteSocket(ws))

    app = Starlette(
        routes=[
            Route(webhook_path, incoming_call, methods=["POST"]),
            WebSocketRoute(stream_path, media_stream),
        ]
    )
    app.state.bridge = bridge
    return app


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the host application owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class PhoneServer:
    """Serve a phone app in the current event loop: ``async with PhoneServer(app) as srv``.

    ``port=0`` picks a free port; :attr:`url` is then ``http://host:port`` and
    :attr:`stream_url` the media-stream WebSocket URL.
    """

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """``http://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def stream_url(self) -> str:
        """The ``ws://`` URL of ``/media-stream``."""
        return "ws" + self.url[len("http") :] + "/media-stream"

    async def start(self) -> None:
        """Start serving; returns once the port is bound (OSError when it cannot be)."""
        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="warning", lifespan="off"
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise OSError(f"the phone server could not start on {self.host}:{self.port}")
            await asyncio.sleep(0.01)
        sockets = [s for srv in self._server.servers for s in (srv.sockets or ())]
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop serving (calls in progress get up to 5 s to end)."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 5.0)
        except asyncio.TimeoutError:
            self._server.force_exit = True
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._server = None
        self._task = None

    async def __aenter__(self) -> PhoneServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
