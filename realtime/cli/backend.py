"""Which server a command talks to, chosen the same way everywhere.

1. ``--url`` (or ``OPENAI_REALTIME_URL``): that server; its REST base is derived from it.
2. Azure OpenAI when ``--azure-endpoint`` or ``AZURE_OPENAI_ENDPOINT`` is set.
3. OpenAI when ``OPENAI_API_KEY`` is set.
4. Otherwise the embedded local server, started in-process on a free port.

One line on stderr says which (the key itself is never printed).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ..connection import ENV_API_KEY, ENV_AZURE_ENDPOINT, ENV_REALTIME_URL

if TYPE_CHECKING:
    from ..server.engine_set import EngineSet

__all__ = ["Backend", "add_backend_arguments", "local_engines", "open_backend"]

_LOCAL_ENGINES: EngineSet | None = None


def local_engines(engines: EngineSet | None = None) -> EngineSet:
    """The engines the embedded local server uses, shared by every command run in this process.

    Created on first use (models load lazily); pass an
    :class:`~realtime.server.engine_set.EngineSet` to use that one instead (e.g. in tests, so
    several commands run in one process load the models once). Returns the set in use.
    """
    global _LOCAL_ENGINES
    if engines is not None:
        _LOCAL_ENGINES = engines
    elif _LOCAL_ENGINES is None:
        from ..server.engine_set import EngineSet

        _LOCAL_ENGINES = EngineSet()
    return _LOCAL_ENGINES


@dataclass
class Backend:
    """Where to connect: keyword arguments for :func:`realtime.connect` and the REST base."""

    kind: str  # "url" | "azure" | "openai" | "local"
    description: str
    connect_kwargs: dict[str, Any] = field(default_factory=dict)
    http_url: str | None = None
    api_key: str | None = None
    dialect: str = "ga"


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """The backend options every command shares."""
    g = parser.add_argument_group("backend")
    g.add_argument("--url", help="realtime server URL (ws:// or wss://; default: see README)")
    g.add_argument("--model", default=None, help="model (default gpt-realtime)")
    g.add_argument(
        "--dialect", choices=["ga", "beta"], default=None, help="protocol dialect (default ga)"
    )
    g.add_argument("--azure-endpoint", default=None, help="Azure OpenAI endpoint")
    g.add_argument("--azure-deployment", default=None, help="Azure OpenAI deployment")
    g.add_argument("--api-version", default=None, help="Azure preview API version")
    g.add_argument(
        "--responder",
        default=None,
        help="local server only: echo | script:FILE | openai-compatible:URL",
    )


def _http_from_ws(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    path = parts.path
    if path.endswith("/realtime"):
        path = path[: -len("/realtime")]
    return urlunsplit((scheme, parts.netloc, path.rstrip("/") or "/v1", "", ""))


@asynccontextmanager
async def open_backend(args: argparse.Namespace) -> AsyncIterator[Backend]:
    """Resolve the backend from the options and environment; start a local server if needed."""
    dialect = getattr(args, "dialect", None) or "ga"
    url = getattr(args, "url", None) or os.environ.get(ENV_REALTIME_URL)
    azure = getattr(args, "azure_endpoint", None) or os.environ.get(ENV_AZURE_ENDPOINT)
    key = os.environ.get(ENV_API_KEY)
    common: dict[str, Any] = {"dialect": dialect}
    if getattr(args, "model", None):
        common["model"] = args.model
    if url:
        yield Backend(
            "url",
            f"backend: {url} ({dialect} dialect)",
            {**common, "url": url},
            http_url=_http_from_ws(url),
            api_key=key,
            dialect=dialect,
        )
        return
    if azure:
        kwargs = {**common, "azure_endpoint": azure}
        if getattr(args, "azure_deployment", None):
            kwargs["azure_deployment"] = args.azure_deployment
        if getattr(args, "api_version", None):
            kwargs["api_version"] = args.api_version
        yield Backend(
            "azure",
            f"backend: Azure OpenAI at {azure} ({dialect} dialect)",
            kwargs,
            http_url=None,
            api_key=os.environ.get("AZURE_OPENAI_API_KEY"),
            dialect=dialect,
        )
        return
    if key:
        yield Backend(
            "openai",
            f"backend: OpenAI ({dialect} dialect; OPENAI_API_KEY is set)",
            common,
            http_url=os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1"),
            api_key=key,
            dialect=dialect,
        )
        return
    from ..server import LocalServer

    async with LocalServer(
        port=0,
        responder=getattr(args, "responder", None),
        engines=local_engines(),
        translator=getattr(args, "translator", None),
    ) as server:
        yield Backend(
            "local",
            f"backend: local server at {server.url} (no OPENAI_API_KEY set)",
            {**common, "url": server.url},
            http_url=server.http_url,
            api_key=None,
            dialect=dialect,
        )
