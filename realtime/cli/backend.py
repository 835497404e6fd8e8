"""Which server a command talks to, chosen the same way everywhere.

0. ``--local``: the embedded local server, whatever the environment says.
1. ``--url`` (or ``OPENAI_REALTIME_URL``): that server; its REST base is derived from it.
2. Azure OpenAI when ``--azure-endpoint`` or ``AZURE_OPENAI_ENDPOINT`` is set.
3. OpenAI when ``--api-key`` or ``OPENAI_API_KEY`` is set.
4. Otherwise the embedded local server, started in-process on a free port.

One line on stderr says which (the key itself is never printed). The key is ``--api-key``,
else ``OPENAI_API_KEY`` (``AZURE_OPENAI_API_KEY`` for Azure); the rules for which URLs need
one are those of :mod:`realtime.credentials`. A refusal by the server becomes a one-line
error that says whether a key was sent and, for a URL without ``/v1``, what the path should be.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..credentials import (
    ENV_API_KEY,
    ENV_AZURE_API_KEY,
    ENV_AZURE_ENDPOINT,
    ENV_REALTIME_URL,
    is_local_url,
    rest_base_from_realtime,
    safe_url,
)
from ..exceptions import APIError, AuthenticationError
from .common import CommandError

if TYPE_CHECKING:
    from ..rest import AsyncAudioClient
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
    azure_endpoint: str | None = None
    azure_deployment: str | None = None
    api_version: str | None = None

    def rest_client(self, model: str) -> AsyncAudioClient:
        """A REST audio client for this backend (on Azure: ``model``'s deployment)."""
        from ..rest import AsyncAudioClient, AzureConfig

        if self.kind == "azure":
            assert self.azure_endpoint is not None
            options: dict[str, Any] = {}
            if self.api_version:
                options["api_version"] = self.api_version
            azure = AzureConfig(
                deployment=self.azure_deployment or model,
                endpoint=self.azure_endpoint,
                api_key=self.api_key,
                **options,
            )
            return AsyncAudioClient(azure=azure)
        return AsyncAudioClient(api_key=self.api_key, base_url=self.http_url)


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """The backend options every command shares."""
    g = parser.add_argument_group("backend")
    g.add_argument(
        "--url", help="realtime server URL, e.g. ws://127.0.0.1:8765/v1 (default: see README)"
    )
    g.add_argument(
        "--local",
        action="store_true",
        help="use the embedded local server even when a key or URL is set in the environment",
    )
    g.add_argument(
        "--api-key",
        default=None,
        help="API key (default: OPENAI_API_KEY, or AZURE_OPENAI_API_KEY for Azure)",
    )
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
        help="local server only: echo (default: repeats what it heard) | script:FILE | "
        "openai-compatible:URL (real answers from a chat-completions server)",
    )


async def _check_host(url: str) -> None:
    """A one-line error when the URL's host name does not resolve."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host or is_local_url(url):
        return
    try:
        await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443)
    except OSError as exc:
        raise CommandError(
            f"cannot resolve host {host!r} of {safe_url(url)}: {exc.strerror or exc}"
        ) from None


def _no_key(url: str, azure: bool) -> CommandError:
    env = ENV_AZURE_API_KEY if azure else ENV_API_KEY
    return CommandError(
        f"no API key for {safe_url(url)}: set {env} or pass --api-key "
        "(or --local for the offline local server)"
    )


def _refusal(exc: Exception, backend: Backend, url: str) -> CommandError:
    """What a 401/403 most likely means, given what was sent."""
    if isinstance(exc, APIError):
        status = exc.status
    else:
        found = re.search(r"HTTP (\d{3})", str(exc))
        status = int(found.group(1)) if found else None
    code = f" (HTTP {status})" if status else ""
    where = safe_url(url)
    path = urlsplit(url).path
    if backend.kind == "url" and "/v1" not in path:
        return CommandError(
            f"{where} refused the connection{code}: no such endpoint? The URL usually ends "
            "in /v1, e.g. --url ws://127.0.0.1:8765/v1"
        )
    env = ENV_AZURE_API_KEY if backend.kind == "azure" else ENV_API_KEY
    if not backend.api_key:
        return CommandError(f"{where} requires an API key{code}: set {env} or pass --api-key")
    return CommandError(f"{where} refused the API key{code}: check --api-key or {env}")


def _is_missing_path(exc: BaseException, backend: Backend, url: str) -> bool:
    """A 404 from a --url whose path lacks /v1 (the usual mistake)."""
    if backend.kind != "url" or "/v1" in urlsplit(url).path:
        return False
    status = exc.status if isinstance(exc, APIError) else None
    return status == 404 or "(HTTP 404)" in str(exc)


def _is_refusal(exc: BaseException) -> bool:
    if isinstance(exc, AuthenticationError):
        return True
    return isinstance(exc, APIError) and exc.status in (401, 403)


@asynccontextmanager
async def open_backend(args: argparse.Namespace) -> AsyncIterator[Backend]:
    """Resolve the backend from the options and environment; start a local server if needed.

    Raises :class:`CommandError` for contradictory options, an unresolvable host, a missing
    key, or (from the body) a refusal by the server.
    """
    dialect = getattr(args, "dialect", None) or "ga"
    local = bool(getattr(args, "local", False))
    url = getattr(args, "url", None) or (None if local else os.environ.get(ENV_REALTIME_URL))
    azure = getattr(args, "azure_endpoint", None) or (
        None if local else os.environ.get(ENV_AZURE_ENDPOINT)
    )
    given_key = getattr(args, "api_key", None)
    responder = getattr(args, "responder", None)
    if local and (getattr(args, "url", None) or getattr(args, "azure_endpoint", None)):
        raise CommandError("--local contradicts --url/--azure-endpoint: give one or the other")
    common: dict[str, Any] = {"dialect": dialect}
    if getattr(args, "model", None):
        common["model"] = args.model
    backend: Backend | None = None
    if not local and url:
        key = given_key or os.environ.get(ENV_API_KEY) or None
        backend = Backend(
            "url",
            f"backend: {url} ({dialect} dialect)",
            {**common, "url": url},
            http_url=rest_base_from_realtime(url),
            api_key=key,
            dialect=dialect,
        )
        target = url
    elif not local and azure:
        kwargs = {**common, "azure_endpoint": azure}
        if getattr(args, "azure_deployment", None):
            kwargs["azure_deployment"] = args.azure_deployment
        if getattr(args, "api_version", None):
            kwargs["api_version"] = args.api_version
        backend = Backend(
            "azure",
            f"backend: Azure OpenAI at {azure} ({dialect} dialect)",
            kwargs,
            http_url=None,
            api_key=given_key or os.environ.get(ENV_AZURE_API_KEY) or None,
            dialect=dialect,
            azure_endpoint=azure,
            azure_deployment=getattr(args, "azure_deployment", None),
            api_version=getattr(args, "api_version", None),
        )
        target = azure
    elif not local and (given_key or os.environ.get(ENV_API_KEY)):
        source = "--api-key" if given_key else "OPENAI_API_KEY is set"
        backend = Backend(
            "openai",
            f"backend: OpenAI ({dialect} dialect; {source}; --local for the local server)",
            common,
            http_url=os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1"),
            api_key=given_key or os.environ.get(ENV_API_KEY),
            dialect=dialect,
        )
        target = backend.http_url or ""
    if backend is not None:
        if responder is not None:
            raise CommandError(
                f"--responder works only with the local server, not with {backend.kind} "
                "backends (add --local, or drop --responder)"
            )
        if backend.api_key is None and not is_local_url(target):
            await _check_host(target)  # a misspelt host is said before a missing key
            raise _no_key(target, backend.kind == "azure")
        try:
            yield backend
        except Exception as exc:
            if _is_refusal(exc):
                where = backend.http_url if isinstance(exc, APIError) else None
                raise _refusal(exc, backend, where or _where(exc, target)) from None
            if _is_missing_path(exc, backend, target):
                raise CommandError(
                    f"{exc}: no such endpoint? The URL usually ends in /v1, e.g. "
                    "--url ws://127.0.0.1:8765/v1"
                ) from None
            raise
        return
    from ..server import LocalServer

    why = "--local" if local else "no OPENAI_API_KEY set"
    async with LocalServer(
        port=0,
        responder=responder or getattr(args, "script_responder", None),
        engines=local_engines(),
        translator=getattr(args, "translator", None),
    ) as server:
        yield Backend(
            "local",
            f"backend: local server at {server.url} ({why})",
            {**common, "url": server.url},
            http_url=server.http_url,
            api_key=None,
            dialect=dialect,
        )


def _where(exc: Exception, fallback: str) -> str:
    """The URL a connection error names (its first word), else ``fallback``."""
    first = str(exc).split(" ", 1)[0]
    return first if "://" in first else fallback
