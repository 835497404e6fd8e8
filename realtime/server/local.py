"""``LocalServer``: run the local realtime server inside the current event loop.

.. code-block:: python

    async with LocalServer(port=0) as server:          # port 0 picks a free port
        async with realtime.connect(url=server.url) as session:
            ...

``server.url`` is the ``ws://host:port/v1`` base the client appends ``/realtime`` to;
``server.http_url`` is the REST base (``http://host:port/v1``) for the audio endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from types import TracebackType

import uvicorn

from .app import ServerState, create_app
from .auth import KeyStore
from .engine_set import EngineSet
from .responders import Responder, load_responder
from .session import Limits
from .translators import Translator, load_translator

__all__ = ["LocalServer"]

log = logging.getLogger("realtime.server")


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
    better one is missing); ``pace_audio`` sends audio deltas in real time instead of as fast
    as they are synthesized; ``warm`` loads the engines before accepting connections;
    ``translator`` serves translation sessions: a :class:`~.translators.Translator` or a spec
    (``"auto"``, the default: Apertium when installed; ``"apertium"``,
    ``"openai-compatible:URL"``, ``"none"``).
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
        translator: Translator | str | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.port = port
        base = limits or Limits()
        if pace_audio or session_seconds is not None:
            base = Limits(
                max_append_bytes=base.max_append_bytes,
                max_buffer_ms=base.max_buffer_ms,
                session_seconds=session_seconds
                if session_seconds is not None
                else base.session_seconds,
                pace_audio=pace_audio or base.pace_audio,
            )
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
        self._warm = warm
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"LocalServer(url={self.url!r})"

    @property
    def url(self) -> str:
        """The WebSocket base URL (``ws://host:port/v1``)."""
        return f"ws://{self._url_host}:{self.port}/v1"

    @property
    def http_url(self) -> str:
        """The REST base URL (``http://host:port/v1``)."""
        return f"http://{self._url_host}:{self.port}/v1"

    @property
    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def engines(self) -> EngineSet:
        """The engines shared by the server's sessions."""
        return self.state.engines

    async def start(self) -> None:
        """Start serving; returns once the port is bound."""
        if self._warm:
            await self.state.engines.warm_up()
        config = uvicorn.Config(
            create_app(self.state),
            host=self.host,
            port=self._requested_port,
            log_level="warning",
            lifespan="off",
            ws_max_size=64 * 1024 * 1024,
            ws_ping_interval=20.0,
            ws_ping_timeout=20.0,
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises the startup error (e.g. port in use)
                raise OSError(f"the local server could not start on {self.host}:{self.port}")
            await asyncio.sleep(0.01)
        sockets = [s for srv in self._server.servers for s in (srv.sockets or ())]
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("local realtime server on %s", self.url)

    async def stop(self) -> None:
        """Stop serving and close every session."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        for session in list(self.state.sessions):
            await session.close()
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5.0)
            except asyncio.TimeoutError:
                self._server.force_exit = True
                self._task.cancel()
        self._server = None
        self._task = None

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
