"""Credentials and endpoint rules shared by the realtime connection and the REST client.

One set of rules, used by :mod:`realtime.connection` (WebSocket) and :mod:`realtime.rest`
(HTTP), so both agree on which key is used, how it is sent and which URLs need one:

* The key is ``api_key=`` (a string, or a sync or async callable returning one, called before
  every connection or request), else ``OPENAI_API_KEY`` (``AZURE_OPENAI_API_KEY`` for Azure).
* OpenAI and compatible servers get ``Authorization: Bearer <key>``; Azure gets
  ``api-key: <key>``, or ``Authorization: Bearer <token>`` when an Azure AD token
  (``azure_ad_token=``, a string or a callable) is given.
* A URL on this machine (``localhost``, ``127.0.0.0/8``, ``::1``) needs no key; any other URL
  does (:func:`require_key` raises :class:`~realtime.exceptions.ConfigError`).
* An Azure endpoint is reduced to its origin (``https://NAME.openai.azure.com``) whatever
  suffix it was given with (``/openai``, ``/openai/v1``, ``/openai/v1/realtime``).

Keys are held in :class:`Secret`, whose ``repr`` and ``str`` are redacted. Pure apart from
reading environment variables and calling key providers; imports no networking library.
"""

from __future__ import annotations

import inspect
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias
from urllib.parse import urlsplit, urlunsplit

from .exceptions import ConfigError

__all__ = [
    "ENV_API_KEY",
    "ENV_AZURE_API_KEY",
    "ENV_AZURE_API_VERSION",
    "ENV_AZURE_ENDPOINT",
    "ENV_BASE_URL",
    "ENV_REALTIME_URL",
    "ApiKey",
    "Credential",
    "CredentialFilter",
    "Secret",
    "azure_origin",
    "choose_credential",
    "is_local_url",
    "key_env_name",
    "require_key",
    "rest_base_from_realtime",
    "safe_url",
]

ENV_API_KEY = "OPENAI_API_KEY"
ENV_BASE_URL = "OPENAI_BASE_URL"
ENV_REALTIME_URL = "OPENAI_REALTIME_URL"
ENV_AZURE_ENDPOINT = "AZURE_OPENAI_ENDPOINT"
ENV_AZURE_API_KEY = "AZURE_OPENAI_API_KEY"
ENV_AZURE_API_VERSION = "OPENAI_API_VERSION"

ApiKey: TypeAlias = "str | Callable[[], str] | Callable[[], Awaitable[str]]"
"""A key, or a sync/async function returning one (called before every connection/request)."""


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

    @property
    def static(self) -> str | None:
        """The key when it is a plain string (not a provider), else ``None``."""
        return self._value if isinstance(self._value, str) else None

    def __repr__(self) -> str:
        return "Secret('***')" if not callable(self._value) else "Secret(<provider>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(type(self))


@dataclass(frozen=True)
class Credential:
    """A key (or none) and the header it travels in. ``repr`` never shows the key."""

    secret: Secret | None = None
    header: Literal["Authorization", "api-key"] = "Authorization"

    async def headers(self) -> list[tuple[str, str]]:
        """The authentication header for one request or connection (calls the provider)."""
        if self.secret is None:
            return []
        value = await self.secret.get()
        if self.header == "api-key":
            return [("api-key", value)]
        return [("Authorization", f"Bearer {value}")]


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


def safe_url(url: str) -> str:
    """The URL without its query string or user info (which could hold a secret), for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def key_env_name(azure: bool) -> str:
    """The environment variable the key is read from."""
    return ENV_AZURE_API_KEY if azure else ENV_API_KEY


def choose_credential(
    api_key: ApiKey | None = None,
    *,
    azure: bool = False,
    azure_ad_token: ApiKey | None = None,
    env: Mapping[str, str] | None = None,
) -> Credential:
    """The credential to use: the argument, else the environment; the header per provider."""
    import os

    environ: Mapping[str, str] = os.environ if env is None else env
    if azure and azure_ad_token is not None:
        return Credential(Secret(azure_ad_token), "Authorization")
    key: ApiKey | None = api_key
    if key is None or (isinstance(key, str) and not key):
        key = environ.get(key_env_name(azure)) or None
    if key is None:
        return Credential(None, "api-key" if azure else "Authorization")
    return Credential(Secret(key), "api-key" if azure else "Authorization")


def require_key(credential: Credential, url: str, *, azure: bool = False) -> None:
    """Raise :class:`ConfigError` when ``url`` is not on this machine and there is no key."""
    if credential.secret is None and not is_local_url(url):
        raise ConfigError(
            f"no API key for {safe_url(url)}: pass api_key= (a key or a function returning "
            f"one) or set {key_env_name(azure)}"
        )


def azure_origin(endpoint: str) -> str:
    """An Azure endpoint reduced to scheme and host (``/openai...`` suffixes dropped)."""
    return endpoint.strip().rstrip("/").split("/openai")[0].rstrip("/")


def rest_base_from_realtime(url: str) -> str:
    """The REST base (``http(s)://host/v1``) of a realtime URL (``ws(s)://host/v1[/realtime]``)."""
    parts = urlsplit(url.strip())
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower(), parts.scheme.lower())
    path = parts.path.rstrip("/")
    if path.endswith("/realtime"):
        path = path[: -len("/realtime")]
    return urlunsplit((scheme, parts.netloc, path.rstrip("/") or "/v1", "", ""))
