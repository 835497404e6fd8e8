"""Exceptions raised by :mod:`realtime`.

Every error the client raises derives from :class:`RealtimeError`; errors of the
libraries underneath (``websockets``, ``httpx``, ``pydantic``) are converted at the
boundary into one of these.

.. code-block:: text

    RealtimeError
    ├── ProtocolError            malformed JSON, or a known event with invalid fields
    ├── ConfigError              a configuration one dialect cannot express, or an invalid option
    ├── ConnectionError          the WebSocket could not be opened (refused, handshake, timeout)
    │   └── AuthenticationError  the server refused the credentials (HTTP 401/403, close 4001)
    ├── ConnectionClosed         the connection closed while something was pending (code, reason)
    │   └── AuthenticationClosed closed with 4001: also an AuthenticationError
    ├── ServerError              the server answered a request with an ``error`` event
    ├── RequestTimeout           no acknowledgement arrived in time
    ├── ResponseError            a response could not be created or cancelled as asked
    ├── ToolError                a tool could not be registered or run
    ├── APIError                 a REST call failed (status, type, code, message, request id)
    └── ScriptError              a scripted session file is invalid (file, line, problem)

Messages never contain an API key or a whole frame.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIError",
    "AuthenticationClosed",
    "AuthenticationError",
    "ConfigError",
    "ConnectionClosed",
    "ConnectionError",
    "ProtocolError",
    "RealtimeError",
    "RequestTimeout",
    "ResponseError",
    "ScriptError",
    "ServerError",
    "ToolError",
]


class RealtimeError(Exception):
    """Base class of every error raised by :mod:`realtime`."""


class ProtocolError(RealtimeError):
    """A frame could not be understood.

    ``event_type`` is the frame's ``type`` when it could be read, ``excerpt`` a short
    prefix of the frame (never the whole frame: frames can be megabytes).
    """

    def __init__(self, message: str, *, event_type: str | None = None, excerpt: str = "") -> None:
        self.event_type = event_type
        self.excerpt = excerpt
        parts = [message]
        if event_type is not None:
            parts.append(f"(event type {event_type!r})")
        if excerpt:
            parts.append(f"near {excerpt!r}")
        super().__init__(" ".join(parts))


class ConfigError(RealtimeError, ValueError):
    """A configuration is invalid, or cannot be expressed in the chosen dialect."""


class ConnectionError(RealtimeError):
    """The connection could not be established."""


class AuthenticationError(ConnectionError):
    """The server refused the credentials."""


class ConnectionClosed(RealtimeError):
    """The connection closed; every pending await fails with this.

    ``code`` and ``reason`` are the WebSocket close code and reason (1006 and ``""``
    for an abrupt drop).
    """

    def __init__(self, code: int | None, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        msg = f"connection closed (code {code})"
        if reason:
            msg += f": {reason}"
        super().__init__(msg)


class ServerError(RealtimeError):
    """The server answered with an ``error`` event.

    Carries the error's ``type``, ``code``, ``message``, ``param`` and the ``event_id``
    of the client event it refers to, plus the typed ``event`` itself.
    """

    def __init__(
        self,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        event_id: str | None = None,
        event: Any = None,
    ) -> None:
        self.type = type
        self.code = code
        self.param = param
        self.event_id = event_id
        self.event = event
        label = ", ".join(x for x in (type, code) if x)
        super().__init__(f"{message} [{label}]" if label else message)


class RequestTimeout(RealtimeError, TimeoutError):
    """An acknowledgement (``session.updated``, ``committed``, …) did not arrive in time."""


class ResponseError(RealtimeError):
    """A response could not be created or cancelled as asked."""


class ToolError(RealtimeError):
    """A tool could not be registered, or its call could not be carried out."""


class APIError(RealtimeError):
    """A REST call failed.

    ``status`` is the HTTP status (``None`` for a connection error), ``type``, ``code``
    and ``message`` come from the error body, ``request_id`` from ``x-request-id``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.message = message
        head = f"HTTP {status}: " if status is not None else ""
        tail = f" (request id {request_id})" if request_id else ""
        super().__init__(f"{head}{message}{tail}")


class ScriptError(RealtimeError):
    """A scripted session file is invalid; names the file and, when known, the line."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = path or "<script>"
        if line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {message}")


class AuthenticationClosed(AuthenticationError, ConnectionClosed):
    """The server closed the connection with code 4001: the credentials were refused.

    Both an :class:`AuthenticationError` and a :class:`ConnectionClosed` (``code`` 4001),
    so either ``except`` clause catches it.
    """

    def __init__(self, code: int | None = 4001, reason: str = "") -> None:
        ConnectionClosed.__init__(self, code, reason)
