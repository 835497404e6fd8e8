"""Helpers for the CLI, script and example tests: local servers on a background thread.

A :class:`ThreadedServer` runs a :class:`~realtime.server.LocalServer` (with the shared engines
of :mod:`server_kit`) in its own event loop on a daemon thread, so that code calling
``asyncio.run`` (``realtime.cli.main``) and subprocesses (``--url``) can use it without
loading the models again.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from server_kit import shared_engines

from realtime.server import LocalServer

__all__ = ["REPO", "SAMPLES", "SCRIPTS", "ThreadedServer", "cli_env", "run_cli_process"]

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "share" / "samples"
SCRIPTS = REPO / "share" / "scripts"


class ThreadedServer:
    """A LocalServer serving from a background thread; ``url`` / ``http_url`` once started."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: LocalServer | None = None

    def start(self) -> ThreadedServer:
        """Start the loop and the server; returns self."""
        self._thread.start()

        async def start() -> LocalServer:
            server = LocalServer(port=0, engines=shared_engines(), **self._options)
            await server.start()
            return server

        self._server = asyncio.run_coroutine_threadsafe(start(), self._loop).result(60)
        return self

    @property
    def url(self) -> str:
        """The WebSocket base URL."""
        assert self._server is not None
        return self._server.url

    @property
    def http_url(self) -> str:
        """The REST base URL."""
        assert self._server is not None
        return self._server.http_url

    def stop(self) -> None:
        """Stop the server and the loop."""
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.stop(), self._loop).result(30)
            self._server = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess: no key or URL from the caller, offline models."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OPENAI_API_KEY", "OPENAI_REALTIME_URL", "AZURE_OPENAI_ENDPOINT")
    }
    env["HF_HUB_OFFLINE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


def run_cli_process(args: list[str], **kwargs: Any) -> subprocess.Popen[str]:
    """Start the ``realtime`` console script (``python -m realtime`` when it is not on PATH)."""
    exe = Path(sys.executable).with_name("realtime")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "realtime"]
    kwargs.setdefault("env", cli_env())
    return subprocess.Popen(
        cmd + args,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )
