"""``LocalServer``: run the local realtime server inside the current event loop.

.. code-block:: python

    async with LocalServer(port=0) as server:          # port 0 picks a free port
        async with realtime.connect(url=server.url) as session:
            ...

``server.url`` is the ``ws://host:port/v1`` base the client appends ``/realtime`` to;
``server.http_url`` is the REST base (``http://host:port/v1``) for the audio endpoints.
Every bound the server keeps is a field of :class:`~.limits.Limits` (``limits=``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, cast

import uvicorn
from starlette.routing import BaseRoute
from uvicorn.config import HTTP_PROTOCOLS, WS_PROTOCOLS
from uvicorn.importer import import_from_string

from .app import create_app
from .auth import KeyStore
from .console import Upstream, set_upstream
from .engine_set import EngineSet
from .exceptions import StartupError
from .guard import ConnectionGuard, guarded_protocols
from .limits import Limits
from .logs import GUARDED_LOGGERS, RedactingFilter, accept_error_handler
from .memory import mmap_large_blocks
from .responders import Responder, load_responder
from .state import ServerState
from .translators import Translator, load_translator

__all__ = ["LocalServer"]

log = logging.getLogger("realtime.server")

# frames up to this share over max_frame_bytes are answered with an error event; larger
# ones are refused by the WebSocket layer (close 1009) before they are buffered
FRAME_SLACK = 1.25


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the host application owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class LocalServer:
    """The local realtime server as an async context manager (see the module docstring).

    ``responder`` is a :class:`~.responders.Responder` or a spec string (``"echo"``,
    ``"script:FILE"``, ``"openai-compatible:URL"``); ``api_key`` makes requests need that key;
    ``stt`` / ``tts`` choose engines (``"auto"`` falls back to the lighter engine when the
    better one is missing); ``limits`` sets every bound (:class:`~.limits.Limits`);
    ``pace_audio`` sends audio deltas in real time instead of as fast as they are
    synthesized; ``warm`` loads the engines before accepting connections; ``log_level``
    sets the level of the server's loggers (by default the host application's logging
    configuration is left alone); ``extra_routes`` adds routes to the app; ``upstream``
    makes the browser console at ``/`` talk to that service (this server holds its key);
    ``ssl_certfile``/``ssl_keyfile`` serve HTTPS/WSS; ``translator`` serves translation
    sessions: a :class:`~.translators.Translator` or a spec (``"auto"``, the default:
    Apertium when installed; ``"apertium"``, ``"openai-compatible:URL"``, ``"none"``);
    ``release_memory`` (on by default) makes glibc return large freed blocks to the OS at
    once (:func:`~.memory.mmap_large_blocks`, a process-wide setting).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        responder: Responder | str | None = None,
        api_key: str | None = None,
        stt: str = "auto",
        tts: str = "auto",
        stt_model: str | None = None,
        limits: Limits | None = None,
        pace_audio: bool = False,
        session_seconds: float | None = None,
        warm: bool = False,
        engines: EngineSet | None = None,
        log_level: str | None = None,
        extra_routes: Sequence[BaseRoute] = (),
        upstream: Upstream | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        translator: Translator | str | None = None,
        release_memory: bool = True,
    ) -> None:
        self.host = host
        self.upstream = upstream
        self._ssl = (ssl_certfile, ssl_keyfile) if ssl_certfile else None
        self._requested_port = port
        self.port = port
        base = limits or Limits()
        if pace_audio:
            base = dataclasses.replace(base, pace_audio=True)
        if session_seconds is not None:
            base = dataclasses.replace(base, session_seconds=session_seconds)
        resp = responder if responder is not None and not isinstance(responder, str) else None
        self.state = ServerState(
            engines=engines or EngineSet(stt=stt, tts=tts, stt_model=stt_model),
            responder=resp or load_responder(responder if isinstance(responder, str) else None),
            keys=KeyStore(api_key),
            limits=base,
            translator=translator
            if translator is not None and not isinstance(translator, str)
            else load_translator(translator),
        )
        self.guard = ConnectionGuard(base, self.state.refusals)
        self._warm = warm
        self._log_level = log_level
        self._extra_routes = list(extra_routes)
        self._release_memory = release_memory
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._undo: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"LocalServer(url={self.url!r})"

    @property
    def limits(self) -> Limits:
        """The server's limits."""
        return self.state.limits

    @property
    def url(self) -> str:
        """The WebSocket base URL (``ws://host:port/v1``)."""
        return f"{'wss' if self._ssl else 'ws'}://{self._url_host}:{self.port}/v1"

    @property
    def http_url(self) -> str:
        """The REST base URL (``http://host:port/v1``)."""
        return f"{'https' if self._ssl else 'http'}://{self._url_host}:{self.port}/v1"

    @property
    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def engines(self) -> EngineSet:
        """The engines shared by the server's sessions."""
        return self.state.engines

    def _config(self) -> uvicorn.Config:
        limits = self.state.limits
        http_class, ws_class = guarded_protocols(
            import_from_string(HTTP_PROTOCOLS["h11"]),
            import_from_string(WS_PROTOCOLS["auto"]),
            self.guard,
        )
        app = create_app(self.state, extra_routes=self._extra_routes)
        set_upstream(app, self.upstream)
        return uvicorn.Config(
            app,
            host=self.host,
            port=self._requested_port,
            log_config=None,  # the host application's logging stays as it is
            log_level=self._log_level,
            lifespan="off",
            http=http_class,
            ws=cast(Any, ws_class),
            ws_max_size=int(limits.max_frame_bytes * FRAME_SLACK),
            ws_ping_interval=20.0,
            ws_ping_timeout=20.0,
            timeout_keep_alive=cast(int, limits.idle_timeout),
            h11_max_incomplete_event_size=limits.max_header_bytes,
            ssl_certfile=self._ssl[0] if self._ssl else None,
            ssl_keyfile=self._ssl[1] if self._ssl else None,
        )

    def _install_log_guards(self) -> None:
        keys = self.state.keys
        names = list(GUARDED_LOGGERS)
        self._undo.append(RedactingFilter(keys.secrets).install(names))
        self._undo.append(self.state.refusal_noise.install())
        loop = asyncio.get_running_loop()
        previous = loop.get_exception_handler()
        loop.set_exception_handler(accept_error_handler(self.state.refusals, previous))
        self._undo.append(lambda: loop.set_exception_handler(previous))

    async def start(self) -> None:
        """Start serving; returns once the port is bound.

        Raises :class:`~.exceptions.StartupError` when the server cannot start (the address
        is in use, not available, or an option is refused).
        """
        if self._warm:
            await self.state.engines.warm_up()
        try:
            sock = socket.create_server(
                (self.host, self._requested_port),
                family=socket.AF_INET6 if ":" in self.host else socket.AF_INET,
                backlog=2048,
            )
        except OSError as exc:
            raise StartupError(
                f"the local server could not start on {self.host}:{self._requested_port}: "
                f"{exc.strerror or exc}",
                host=self.host,
                port=self._requested_port,
            ) from exc
        if self._release_memory:
            mmap_large_blocks()
        self._install_log_guards()
        server = _EmbeddedServer(self._config())
        self._server = server
        task = asyncio.create_task(server.serve(sockets=[sock]))
        self._task = task
        while not server.started:
            if task.done():
                self._server = None
                self._task = None
                self._uninstall()
                sock.close()
                cause = None if task.cancelled() else task.exception()
                raise StartupError(
                    f"the local server could not start on {self.host}:{self.port}: {cause}",
                    host=self.host,
                    port=self._requested_port,
                ) from cause
            await asyncio.sleep(0.01)
        self.port = int(sock.getsockname()[1])
        log.info("local realtime server on %s", self.url)

    def _uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    async def stop(self) -> None:
        """Stop serving and close every session."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        for session in list(self.state.sessions):
            await session.close()
        done, _ = await asyncio.wait([self._task], timeout=5.0)
        if not done:
            self._server.force_exit = True
            self._task.cancel()
            await asyncio.wait([self._task])
        self._server = None
        self._task = None
        self._uninstall()

    async def serve_forever(self) -> None:
        """Start and serve until cancelled."""
        await self.start()
        try:
            assert self._task is not None
            await self._task
        finally:
            await self.stop()

    async def __aenter__(self) -> LocalServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
