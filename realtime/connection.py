"""Where to connect and how to authenticate: realtime endpoints for OpenAI, Azure and others.

Pure apart from reading environment variables and calling a key provider (it imports no
networking library). Call :func:`resolve_endpoint` once per session to pick the URL;
call :meth:`Endpoint.headers` before every (re)connection to get the handshake headers (a
key *provider* is called each time, so short-lived ephemeral client secrets are refreshed
on reconnect). The WebSocket itself is opened by :mod:`realtime.session`.

Precedence for the URL (first match wins):

1. ``url=``: any compatible server, ``ws://``/``wss://`` (``http(s)://`` is converted). A
   base URL such as ``ws://127.0.0.1:8080/v1`` gets ``/realtime`` appended; a URL whose
   path already ends in ``/realtime`` is used as is.
2. Azure OpenAI, when ``azure_endpoint=`` or ``AZURE_OPENAI_ENDPOINT`` is set:
   ``/openai/v1/realtime?model=<deployment>`` (GA), or the preview form
   ``/openai/realtime?api-version=<v>&deployment=<deployment>`` when ``api_version=`` (or
   ``OPENAI_API_VERSION``) is given.
3. ``OPENAI_REALTIME_URL``: a full realtime URL override (same rules as ``url=``).
4. ``base_url=`` or ``OPENAI_BASE_URL`` (``https://api.openai.com/v1`` style, converted to
   ``wss://`` with ``/realtime`` appended).
5. ``wss://api.openai.com/v1/realtime``.

``?model=<model>`` is added unless the URL already names a model (or for the Azure
preview form, which names the deployment instead).

The key comes from ``api_key=`` (a string, or a sync or async callable returning one),
else ``OPENAI_API_KEY`` (``AZURE_OPENAI_API_KEY`` for Azure). OpenAI and compatible
servers get ``Authorization: Bearer <key>``; Azure gets ``api-key: <key>``, or
``Authorization: Bearer <token>`` with ``azure_ad_token=``. The beta dialect adds
``OpenAI-Beta: realtime=v1``. A non-local URL without any key raises :class:`ConfigError`;
a local one (``localhost``, ``127.0.0.0/8``, ``::1``) needs none.

Keys are held in :class:`Secret`, whose ``repr`` and ``str`` are redacted; no message,
log line or ``repr`` produced here contains a key.
"""

from __future__ import annotations

import dataclasses
import inspect
import ipaddress
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .exceptions import ConfigError

if TYPE_CHECKING:
    from audio.playback import PlaybackTracker

    from .dispatch import Dispatcher
    from .events.config import SessionConfig
    from .reconnect import ReconnectPolicy
    from .tools import Tool, ToolRegistry
    from .transport import FrameTransport

__all__ = [
    "DEFAULT_URL",
    "ENV_API_KEY",
    "ENV_AZURE_API_KEY",
    "ENV_AZURE_ENDPOINT",
    "ENV_AZURE_API_VERSION",
    "ENV_BASE_URL",
    "ENV_REALTIME_URL",
    "ApiKey",
    "CredentialFilter",
    "Endpoint",
    "Provider",
    "Secret",
    "SessionOptions",
    "TransportFactory",
    "is_local_url",
    "resolve_endpoint",
    "safe_url",
]

DEFAULT_URL = "wss://api.openai.com/v1/realtime"
ENV_API_KEY = "OPENAI_API_KEY"
ENV_BASE_URL = "OPENAI_BASE_URL"
ENV_REALTIME_URL = "OPENAI_REALTIME_URL"
ENV_AZURE_ENDPOINT = "AZURE_OPENAI_ENDPOINT"
ENV_AZURE_API_KEY = "AZURE_OPENAI_API_KEY"
ENV_AZURE_API_VERSION = "OPENAI_API_VERSION"

ApiKey: TypeAlias = "str | Callable[[], str] | Callable[[], Awaitable[str]]"
"""A key, or a sync/async function returning one (called before every connection)."""

Provider = Literal["openai", "azure", "custom"]


class Secret:
    """A credential (a string, or a function returning one) with a redacted ``repr``.

    Call :meth:`get` to obtain the value; nothing else reveals it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: ApiKey) -> None:
        self._value = value

    async def get(self) -> str:
        """Return the key, calling the provider (sync or async) when there is one.

        Raises :class:`ConfigError` when a provider returns something other than a
        non-empty string (the message never contains what it returned).
        """
        value = self._value
        if callable(value):
            result = value()
            if inspect.isawaitable(result):
                result = await result
            value = result
        if not isinstance(value, str) or not value:
            raise ConfigError("the API key provider did not return a non-empty string")
        return value

    def __repr__(self) -> str:
        return "Secret('***')" if not callable(self._value) else "Secret(<provider>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(type(self))


class CredentialFilter(logging.Filter):
    """A logging filter redacting credential headers in websockets' handshake debug lines.

    websockets logs each header as ``("> %s: %s", name, value)`` at DEBUG level; for
    ``Authorization``, ``api-key`` and cookies the value is replaced by ``[redacted]``.
    """

    SECRET_HEADERS = frozenset({"authorization", "api-key", "cookie", "set-cookie"})

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; always lets it through."""
        args = record.args
        if (
            isinstance(args, tuple)
            and len(args) == 2
            and isinstance(args[0], str)
            and args[0].lower() in self.SECRET_HEADERS
        ):
            record.args = (args[0], "[redacted]")
        return True


def is_local_url(url: str) -> bool:
    """True for URLs on this machine (``localhost``, ``*.localhost``, 127.0.0.0/8, ``::1``)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Endpoint:
    """A resolved realtime endpoint: URL, dialect and how to authenticate.

    Build it with :func:`resolve_endpoint`. ``repr`` never shows the key.
    """

    url: str
    dialect: Literal["beta", "ga"] = "ga"
    provider: Provider = "openai"
    key: Secret | None = None
    auth_header: Literal["Authorization", "api-key"] = "Authorization"
    extra_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    async def headers(self) -> list[tuple[str, str]]:
        """The handshake headers for one connection (calls the key provider, if any)."""
        out: list[tuple[str, str]] = []
        if self.key is not None:
            value = await self.key.get()
            if self.auth_header == "api-key":
                out.append(("api-key", value))
            else:
                out.append(("Authorization", f"Bearer {value}"))
        if self.dialect == "beta":
            out.append(("OpenAI-Beta", "realtime=v1"))
        out.extend(self.extra_headers)
        return out


def _to_ws(url: str) -> str:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    mapping = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
    if scheme not in mapping or not parts.netloc:
        raise ConfigError(f"not a WebSocket or HTTP URL: {safe_url(url)!r}")
    return urlunsplit((mapping[scheme], parts.netloc, parts.path, parts.query, ""))


def safe_url(url: str) -> str:
    """The URL without its query string or user info (which could hold a secret), for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _realtime_url(url: str, query: Mapping[str, str]) -> str:
    parts = urlsplit(_to_ws(url))
    path = parts.path.rstrip("/")
    if not path.endswith("/realtime"):
        path += "/realtime"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    present = {k for k, _ in pairs}
    pairs.extend((k, v) for k, v in query.items() if k not in present)
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(pairs), ""))


def resolve_endpoint(
    model: str | None = "gpt-realtime",
    *,
    url: str | None = None,
    base_url: str | None = None,
    api_key: ApiKey | None = None,
    dialect: Literal["beta", "ga"] = "ga",
    azure_endpoint: str | None = None,
    azure_deployment: str | None = None,
    api_version: str | None = None,
    azure_ad_token: ApiKey | None = None,
    extra_headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Endpoint:
    """Decide URL, headers and credentials for a session (see the module docstring).

    ``env`` defaults to ``os.environ``. ``query`` adds query parameters. Raises
    :class:`ConfigError` for an invalid URL or dialect, a missing Azure deployment, or a
    missing key for a non-local server.
    """
    if dialect not in ("beta", "ga"):
        raise ConfigError(f"dialect must be 'ga' or 'beta', not {dialect!r}")
    environ: Mapping[str, str] = os.environ if env is None else env
    params: dict[str, str] = dict(query or {})
    headers = tuple((str(k), str(v)) for k, v in (extra_headers or {}).items())
    provider: Provider
    auth: Literal["Authorization", "api-key"] = "Authorization"
    key: ApiKey | None = api_key

    azure = azure_endpoint or (None if url else environ.get(ENV_AZURE_ENDPOINT))
    if url:
        provider = "custom"
        if model:
            params.setdefault("model", model)
        final = _realtime_url(url, params)
        if key is None:
            key = environ.get(ENV_API_KEY) or None
    elif azure:
        provider = "azure"
        deployment = azure_deployment or model
        if not deployment:
            raise ConfigError("Azure OpenAI needs a deployment name (azure_deployment= or model=)")
        version = api_version or environ.get(ENV_AZURE_API_VERSION)
        root = _to_ws(azure).rstrip("/")
        root = root.split("/openai")[0]
        if version:
            params = {"api-version": version, "deployment": deployment, **params}
            final = _realtime_url(root + "/openai", params)
        else:
            params.setdefault("model", deployment)
            final = _realtime_url(root + "/openai/v1", params)
        if azure_ad_token is not None:
            key = azure_ad_token
        else:
            auth = "api-key"
            if key is None:
                key = environ.get(ENV_AZURE_API_KEY) or None
    else:
        override = environ.get(ENV_REALTIME_URL)
        base = base_url or environ.get(ENV_BASE_URL)
        if model:
            params.setdefault("model", model)
        if override and not base_url:
            provider = "custom"
            final = _realtime_url(override, params)
        elif base:
            provider = "openai" if "api.openai.com" in base else "custom"
            final = _realtime_url(base, params)
        else:
            provider = "openai"
            final = _realtime_url(DEFAULT_URL, params)
        if key is None:
            key = environ.get(ENV_API_KEY) or None

    if key is None and not is_local_url(final):
        names = ENV_AZURE_API_KEY if provider == "azure" else ENV_API_KEY
        raise ConfigError(
            f"no API key for {safe_url(final)}: pass api_key= (a key or a function returning "
            f"one) or set {names}"
        )
    return Endpoint(
        url=final,
        dialect=dialect,
        provider=provider,
        key=Secret(key) if key is not None else None,
        auth_header=auth,
        extra_headers=headers,
    )


TransportFactory: TypeAlias = "Callable[[Endpoint, SessionOptions], Awaitable[FrameTransport]]"
"""Opens one connection of a session: ``await factory(endpoint, options)``."""


@dataclass
class SessionOptions:
    """Every option of a session, in one place: ``connect(**options)`` and
    ``Session(endpoint, options, **changes)`` fill it; nothing else repeats the list.

    Args:
        config: sent (and acknowledged) right after connecting.
        reconnect: a :class:`~realtime.reconnect.ReconnectPolicy` (off by default).
        tracker: a playback tracker (a speaker): barge-in truncates at what was heard,
            and :meth:`~realtime.session.Session.interrupt` stops it.
        tools: functions, :class:`~realtime.tools.Tool` objects or a registry.
        auto_respond_to_tools: ask for a response once a call's output is sent.
        dispatcher: share handler subscriptions made beforehand.
        connect_timeout: seconds for opening a connection.
        ping_interval, ping_timeout: keepalive seconds (a dead link is noticed within
            about their sum); ``None`` disables.
        max_size: largest inbound message in bytes.
        max_buffer: inbound bytes buffered before the transport stops reading.
        send_queue_size: client events queued before ``send`` waits.
        ack_timeout: default seconds to wait for an acknowledgement.
        iterator_backlog: events kept for ``async for`` before iteration starts.
        expiry_warning: seconds before ``expires_at`` to emit ``session.expiring``.
        audio_retention_ms: output audio kept per content part in the conversation.
        output_audio_format: wire format of output audio (default: from ``config``).
        compression: ``"deflate"`` or ``None``.
        strict: a known event with invalid fields raises instead of being delivered
            (marked invalid) to ``"*"`` handlers and the iterator.
        transport_factory: opens the frame transport; the default opens a WebSocket
            (:func:`realtime.transport.open_connection`). The seam for other carriers
            of the same events, such as a WebRTC data channel.
    """

    config: SessionConfig | None = None
    reconnect: ReconnectPolicy | None = None
    tracker: PlaybackTracker | None = None
    tools: ToolRegistry | Iterable[Callable[..., Any] | Tool] | None = None
    auto_respond_to_tools: bool = True
    dispatcher: Dispatcher | None = None
    connect_timeout: float = 10.0
    ping_interval: float | None = 5.0
    ping_timeout: float | None = 5.0
    max_size: int | None = 128 * 1024 * 1024
    max_buffer: int = 4 * 1024 * 1024
    send_queue_size: int = 256
    ack_timeout: float = 10.0
    iterator_backlog: int = 256
    expiry_warning: float = 60.0
    audio_retention_ms: int = 0
    output_audio_format: str | None = None
    compression: str | None = None
    strict: bool = False
    transport_factory: TransportFactory | None = None

    def __post_init__(self) -> None:
        if self.send_queue_size < 1:
            raise ConfigError("send_queue_size must be at least 1")

    def replace(self, **changes: Any) -> SessionOptions:
        """A copy with ``changes``; an unknown option raises :class:`ConfigError`."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown session option(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)
