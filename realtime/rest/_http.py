"""Shared HTTP behaviour of the REST audio client.

Where requests go (:class:`Endpoint`: OpenAI-style base URL or an Azure deployment),
how they authenticate, how failures become :class:`~realtime.exceptions.APIError`, and
how they are retried (:class:`RetryPolicy`: exponential backoff honouring
``Retry-After`` on 408, 409, 429, 5xx and connection errors, with bounded attempts and
bounded total wait). :class:`HTTPCore` is the only place that touches ``httpx``.

The API key is kept out of every log record, repr and error message.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from realtime.credentials import (
    ENV_AZURE_ENDPOINT,
    ENV_BASE_URL,
    ApiKey,
    Credential,
    azure_origin,
    choose_credential,
    require_key,
)
from realtime.exceptions import APIError, ConfigError
from realtime.rest.multipart import MultipartBody

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "AzureConfig",
    "Endpoint",
    "HTTPCore",
    "RetryPolicy",
    "api_error",
    "parse_retry_after",
    "redact",
]

log = logging.getLogger("realtime.rest")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=10.0)
RETRY_STATUSES = frozenset({408, 409, 429})
_USER_AGENT = "realtime-voice/0.1 (rest)"


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` (and of its long prefixes) masked."""
    if not secret or len(secret) < 4:
        return text
    text = text.replace(secret, "***")
    # servers sometimes echo a truncated key ("sk-abc...xyz"): mask the visible head too
    head = secret[:12]
    return text.replace(head, "***") if len(head) >= 8 else text


@dataclass(frozen=True)
class AzureConfig:
    """An Azure OpenAI deployment.

    Audio requests go to ``{endpoint}/openai/deployments/{deployment}/audio/...
    ?api-version={api_version}``, realtime key requests to ``{endpoint}/openai/v1/realtime/...``;
    the key is sent in an ``api-key`` header, or an Azure AD token (``ad_token``, a string or a
    function returning one) as ``Authorization: Bearer``. ``endpoint`` and ``api_key`` default
    to ``AZURE_OPENAI_ENDPOINT`` and ``AZURE_OPENAI_API_KEY``; the endpoint may carry an
    ``/openai...`` suffix (it is reduced to its origin).
    """

    deployment: str
    endpoint: str | None = None
    api_version: str = "2025-03-01-preview"
    api_key: ApiKey | None = field(default=None, repr=False)
    ad_token: ApiKey | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Endpoint:
    """Resolved target of requests: base URL, credential, and how to build a path's URL.

    The credential rules are those of :mod:`realtime.credentials`, shared with the realtime
    connection: a URL on this machine needs no key, any other does.
    """

    base_url: str
    credential: Credential = field(default_factory=Credential, repr=False)
    azure: AzureConfig | None = None

    @property
    def api_key(self) -> str | None:
        """The key when it is a plain string (``None`` for none, or for a key provider)."""
        return self.credential.secret.static if self.credential.secret is not None else None

    @classmethod
    def resolve(
        cls, api_key: ApiKey | None, base_url: str | None, azure: AzureConfig | None
    ) -> Endpoint:
        """Combine arguments and environment; raise ConfigError when a key is required but absent.

        ``api_key`` may be a string or a sync/async function returning one (called before
        every request).
        """
        if azure is not None:
            endpoint = azure.endpoint or os.environ.get(ENV_AZURE_ENDPOINT)
            if not endpoint:
                raise ConfigError(
                    "Azure needs an endpoint: AzureConfig(endpoint=...) or AZURE_OPENAI_ENDPOINT"
                )
            origin = azure_origin(endpoint)
            credential = choose_credential(
                api_key if api_key is not None else azure.api_key,
                azure=True,
                azure_ad_token=azure.ad_token,
            )
            require_key(credential, origin, azure=True)
            return cls(origin, credential, azure)
        url = (base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"base URL must start with http:// or https://, got {url!r}")
        credential = choose_credential(api_key)
        require_key(credential, url)
        return cls(url, credential, None)

    def url(self, path: str) -> tuple[str, dict[str, str]]:
        """The URL and query parameters of an API path such as ``/audio/speech``."""
        if self.azure is None:
            return self.base_url + path, {}
        if path.startswith("/realtime/"):
            return f"{self.base_url}/openai/v1{path}", {}
        prefix = f"{self.base_url}/openai/deployments/{self.azure.deployment}"
        return prefix + path, {"api-version": self.azure.api_version}

    def auth_headers(self, api_key: str | None = None) -> dict[str, str]:
        """The authentication header for a plain-string key (see :meth:`headers` for providers)."""
        if api_key:
            return {"Authorization": f"Bearer {api_key}"}
        static = self.api_key
        if not static:
            return {}
        if self.credential.header == "api-key":
            return {"api-key": static}
        return {"Authorization": f"Bearer {static}"}

    async def headers(self, api_key: str | None = None) -> tuple[dict[str, str], str | None]:
        """The authentication header of one request and the secret to redact from errors.

        ``api_key`` (e.g. an ephemeral key) overrides the endpoint's credential; a key
        provider is called here.
        """
        if api_key:
            return {"Authorization": f"Bearer {api_key}"}, api_key
        pairs = await self.credential.headers()
        if not pairs:
            return {}, None
        name, value = pairs[0]
        return {name: value}, value.removeprefix("Bearer ")


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait according to ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date).

    Returns ``None`` when absent or unreadable; never negative.
    """
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """How failed requests are retried.

    At most ``max_retries`` retries; the n-th waits ``initial_delay * 2**n`` (jittered,
    capped at ``max_delay``) unless the server sent ``Retry-After``; the sum of waits never
    exceeds ``max_total_wait`` (a longer ``Retry-After`` ends the retries).
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_total_wait: float = 60.0

    def delay(self, retry: int, retry_after: float | None, waited: float) -> float | None:
        """Seconds to sleep before retry number ``retry`` (0-based), or ``None`` to give up."""
        if retry >= self.max_retries:
            return None
        if retry_after is not None:
            wait = retry_after
        else:
            wait = min(self.max_delay, self.initial_delay * 2**retry)
            wait *= 1.0 - 0.25 * random.random()
        if waited + wait > self.max_total_wait:
            return None
        return wait


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def api_error(
    status: int, headers: Mapping[str, str], body: bytes, secret: str | None = None
) -> APIError:
    """Build the APIError of a failed response from its status, headers and body.

    Reads OpenAI's ``{"error": {"message", "type", "code", "param"}}`` and falls back
    to ``detail``/``message`` fields or a short excerpt of the body.
    """
    message = ""
    etype = code = param = None
    text = body.decode("utf-8", errors="replace")
    try:
        payload = json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        payload = None
    if isinstance(payload, dict):
        err = payload.get("error", payload)
        if isinstance(err, dict):
            message = _str_or_none(err.get("message") or err.get("detail")) or ""
            etype = _str_or_none(err.get("type"))
            code = _str_or_none(err.get("code"))
            param = _str_or_none(err.get("param"))
        elif err is not None:
            message = str(err)
    if not message:
        excerpt = text.strip()[:200]
        message = excerpt or _reason(status)
    return APIError(
        redact(message, secret),
        status=status,
        type=etype,
        code=code,
        param=param,
        request_id=headers.get("x-request-id"),
    )


def _reason(status: int) -> str:
    try:
        from http import HTTPStatus

        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


async def _error_body(response: httpx.Response, limit: int = 64 * 1024) -> bytes:
    """At most ``limit`` bytes of an error response's body; closes the response."""
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            parts.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
    except httpx.HTTPError:
        pass
    finally:
        await response.aclose()
    return b"".join(parts)[:limit]


_RETRYABLE_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class HTTPCore:
    """Sends requests with authentication, timeouts, retries and error mapping.

    Owned by a client; call :meth:`aclose` when done. ``transport`` lets tests plug in an
    ``httpx`` transport.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.retry = retry or RetryPolicy()
        self._client = httpx.AsyncClient(
            timeout=timeout, transport=transport, headers={"User-Agent": _USER_AGENT}
        )

    def __repr__(self) -> str:
        return f"HTTPCore(base_url={self.endpoint.base_url!r})"

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        form: MultipartBody | None = None,
        headers: Mapping[str, str] | None = None,
        api_key: str | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send a request, retrying as the policy allows; return a successful response.

        With ``stream=True`` the body is not read: the caller iterates it and must close
        the response. Raises :class:`~realtime.exceptions.APIError` for an error status
        (after retries), a connection failure or a timeout.
        """
        url, params = self.endpoint.url(path)
        auth, secret = await self.endpoint.headers(api_key)
        hdrs = {**auth, **(headers or {})}
        content: bytes | None = None
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":")).encode()
            hdrs["Content-Type"] = "application/json"
        if form is not None:
            hdrs["Content-Type"] = form.content_type
            if form.content_length is not None:
                hdrs["Content-Length"] = str(form.content_length)
        can_replay = form is None or form.upload.replayable
        waited = 0.0
        retry = 0
        while True:
            request = self._client.build_request(
                method,
                url,
                params=params,
                headers=hdrs,
                content=form.stream() if form is not None else content,
            )
            started = time.monotonic()
            try:
                response = await self._client.send(request, stream=True)
            except _RETRYABLE_TRANSPORT as exc:
                error = APIError(redact(f"{type(exc).__name__} on {method} {path}: {exc}", secret))
                wait = self.retry.delay(retry, None, waited) if can_replay else None
                if wait is None:
                    raise error from None
                log.warning(
                    "%s %s failed (%s); retry %d in %.2f s",
                    method,
                    url,
                    type(exc).__name__,
                    retry + 1,
                    wait,
                )
            except httpx.HTTPError as exc:
                raise APIError(redact(f"{method} {path}: {exc}", secret)) from None
            else:
                rid = response.headers.get("x-request-id")
                log.debug(
                    "%s %s -> %d in %.3f s (request id %s)",
                    method,
                    url,
                    response.status_code,
                    time.monotonic() - started,
                    rid,
                )
                if response.is_success:
                    return response
                body = await _error_body(response)
                error = api_error(response.status_code, response.headers, body, secret)
                status = response.status_code
                wait = None
                if can_replay and (status in RETRY_STATUSES or status >= 500):
                    wait = self.retry.delay(retry, parse_retry_after(response.headers), waited)
                if wait is None:
                    raise error
                log.warning("%s %s -> %d; retry %d in %.2f s", method, url, status, retry + 1, wait)
            await asyncio.sleep(wait)
            waited += wait
            retry += 1
