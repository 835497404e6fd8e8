"""SIP call control (GA): accept, reject, refer, hang up, and attach a session to a call.

::

    async with CallControl() as calls:                   # OPENAI_API_KEY, OPENAI_BASE_URL
        await calls.accept(call_id, SessionConfig(instructions="You are Alex."))
        async with calls.attach(call_id) as session:     # WebSocket with ?call_id=
            async for event in session: ...
        await calls.hangup(call_id)

The requests go to ``POST {base}/realtime/calls/{call_id}/accept|reject|refer|hangup``
through the REST layer (authentication, retries of 408/409/429/5xx, key redaction); a
failure raises :class:`~.exceptions.CallControlError` carrying the HTTP status.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from pydantic import ValidationError

from ..events.calls import CallReferRequest, CallRejectRequest, accept_body
from ..events.config import SessionConfig
from ..exceptions import APIError, ConfigError
from ..rest._http import DEFAULT_BASE_URL, Endpoint, HTTPCore, RetryPolicy
from ..session import SessionContext, connect
from .exceptions import CallControlError

__all__ = ["CallControl"]


def _path(call_id: str, action: str) -> str:
    if not call_id or len(call_id) > 256:
        raise ConfigError("a call id is a non-empty string of at most 256 characters")
    return f"/realtime/calls/{quote(call_id, safe='')}/{action}"


class CallControl:
    """Client of the call-control endpoints (see the module docstring).

    ``api_key``/``base_url`` default to ``OPENAI_API_KEY``/``OPENAI_BASE_URL`` (else the
    OpenAI API); a local server's ``http_url`` works without a key. ``transport`` lets
    tests plug in an ``httpx`` transport.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        endpoint = Endpoint.resolve(api_key, base_url, None)
        self._core = HTTPCore(
            endpoint,
            timeout=timeout,
            retry=RetryPolicy(max_retries=max_retries),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"CallControl(base_url={self._core.endpoint.base_url!r})"

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._core.aclose()

    async def __aenter__(self) -> CallControl:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _post(self, call_id: str, action: str, body: Any) -> None:
        try:
            response = await self._core.send("POST", _path(call_id, action), json_body=body)
        except APIError as exc:
            raise CallControlError(f"{action} {call_id!r}: {exc}", status=exc.status) from None
        await response.aclose()

    async def accept(
        self,
        call_id: str,
        config: SessionConfig | Mapping[str, Any] | None = None,
        *,
        model: str | None = "gpt-realtime",
    ) -> None:
        """Accept a ringing call with this session configuration (GA session fields)."""
        await self._post(call_id, "accept", accept_body(config, model))

    async def reject(self, call_id: str, status_code: int | None = None) -> None:
        """Decline a ringing call with a SIP status (default: the service sends 603 Decline)."""
        try:
            body = CallRejectRequest(status_code=status_code)
        except ValidationError:
            raise ConfigError(f"a SIP status code is 100..699, not {status_code!r}") from None
        await self._post(call_id, "reject", body.model_dump(exclude_none=True))

    async def refer(self, call_id: str, target_uri: str) -> None:
        """Transfer an active call (SIP REFER) to ``tel:...`` or ``sip:...``."""
        try:
            body = CallReferRequest(target_uri=target_uri)
        except ValidationError:
            raise ConfigError(
                f"a refer target is a tel:, sip: or sips: URI, not {target_uri[:80]!r}"
            ) from None
        await self._post(call_id, "refer", body.model_dump())

    async def hangup(self, call_id: str) -> None:
        """End an active call."""
        await self._post(call_id, "hangup", None)

    def attach(self, call_id: str, **options: Any) -> SessionContext:
        """The realtime session of an accepted call (``async with``): WebSocket with ``?call_id=``.

        ``options`` are :func:`realtime.connect` options (``tools``, ``config``, ...).
        """
        endpoint = self._core.endpoint
        url = None
        if endpoint.base_url != DEFAULT_BASE_URL:
            parts = urlsplit(endpoint.base_url)
            scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
            url = urlunsplit((scheme, parts.netloc, parts.path, "", ""))
        return connect(
            None,
            url=url,
            api_key=endpoint.api_key,
            dialect="ga",
            query={"call_id": call_id},
            **options,
        )
