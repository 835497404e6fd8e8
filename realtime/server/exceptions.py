"""Exceptions raised by :mod:`realtime.server`.

Every error of the local server derives from :class:`LocalServerError` (itself a
:class:`realtime.exceptions.RealtimeError`); errors of the libraries underneath (uvicorn,
the speech engines, the operating system) are converted at the boundary into one of these.
Nothing raises the base class itself.

.. code-block:: text

    RealtimeError
    └── LocalServerError            base of the local server's errors (never raised itself)
        ├── StartupError            the server could not start (address in use, bad option)
        ├── EngineError             a speech engine (VAD, speech-to-text, text-to-speech) failed
        ├── StoreError              an operation on the conversation is invalid (code, param)
        └── ClientInputError        a client's input was refused (code, param, HTTP status)
            ├── InvalidValue        a value outside the spec's ranges or enums (400)
            ├── InvalidUpload       an uploaded file is not a WAV the server reads (400)
            └── LimitExceeded       a configured limit was reached (413 / 400 / 503)

``ClientInputError`` carries what the client is told: the ``error`` event on the realtime
WebSocket, an OpenAI-shaped error body on REST. Messages never contain a credential.
"""

from __future__ import annotations

from ..exceptions import RealtimeError

__all__ = [
    "ClientInputError",
    "EngineError",
    "InvalidUpload",
    "InvalidValue",
    "LimitExceeded",
    "LocalServerError",
    "StartupError",
    "StoreError",
]


class LocalServerError(RealtimeError):
    """Base class of the local server's errors (only its subclasses are raised)."""


class StartupError(LocalServerError):
    """The server could not start: ``host`` / ``port`` say where it tried to bind."""

    def __init__(self, message: str, *, host: str | None = None, port: int | None = None) -> None:
        self.host = host
        self.port = port
        super().__init__(message)


class EngineError(LocalServerError):
    """A speech engine failed while running (``engine`` names it: ``faster-whisper`` …)."""

    def __init__(self, message: str, *, engine: str | None = None) -> None:
        self.engine = engine
        super().__init__(message)


class StoreError(LocalServerError):
    """An operation on the conversation is invalid; ``code`` and ``param`` go into the error."""

    def __init__(self, message: str, *, code: str, param: str | None = None) -> None:
        self.code = code
        self.param = param
        super().__init__(message)


class ClientInputError(LocalServerError):
    """Input the server refuses; ``code``, ``param`` and ``status`` are what the client sees."""

    status = 400
    default_code = "invalid_request_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        status: int | None = None,
    ) -> None:
        self.code = code or self.default_code
        self.param = param
        if status is not None:
            self.status = status
        self.message = message
        super().__init__(message)


class InvalidValue(ClientInputError):
    """A value outside the ranges or enumerations of the spec (``param`` names it)."""

    default_code = "invalid_value"


class InvalidUpload(ClientInputError):
    """An uploaded file the server cannot read (not a WAV, inconsistent header)."""

    default_code = "invalid_file"


class LimitExceeded(ClientInputError):
    """A configured limit was reached (upload size, duration, buffered audio, frame size …)."""

    default_code = "limit_exceeded"
