"""What every route of the local server shares (:class:`ServerState`), and the OpenAI-shaped
error responses and bounded JSON bodies of its HTTP routes.

Route modules (:mod:`.ws`, :mod:`.mint`, :mod:`.rest`, and routes other transports add) depend
on this module only, never on :mod:`.app`, which assembles them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .auth import EphemeralKey, KeyStore, credential_from
from .call_registry import CallRegistry
from .engine_set import EngineSet
from .exceptions import ClientInputError, LimitExceeded
from .limits import AudioBudget, Limits
from .logs import RateLimitedLog, RefusalNoiseFilter
from .responders import EchoResponder, Responder
from .session import ServerSession
from .translators import Translator
from .validation import load_frame

__all__ = [
    "ServerState",
    "error_body",
    "error_response",
    "read_json_body",
    "request_credential",
]

log = logging.getLogger("realtime.server")


@dataclass
class ServerState:
    """What every connection shares: engines, responder, credentials, limits, counters."""

    engines: EngineSet = field(default_factory=EngineSet)
    responder: Responder = field(default_factory=EchoResponder)
    keys: KeyStore = field(default_factory=KeyStore)
    limits: Limits = field(default_factory=Limits)
    sessions: set[ServerSession] = field(default_factory=set)
    calls: CallRegistry = field(default_factory=CallRegistry)
    send_queue_size: int = 1024
    translator: Translator | None = None
    translation_sessions: int = 0
    """Translation sessions open (they count toward ``Limits.max_sessions`` too)."""
    refusal_noise: RefusalNoiseFilter = field(default_factory=RefusalNoiseFilter)
    budget: AudioBudget = field(init=False)
    refusals: RateLimitedLog = field(init=False)
    _decodes: asyncio.Semaphore | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.budget = AudioBudget(self.limits.max_server_audio_ms)  # shared by the sessions
        self.refusals = RateLimitedLog(log, self.limits.log_interval)

    @property
    def open_sessions(self) -> int:
        """Realtime and translation sessions open (what ``Limits.max_sessions`` bounds)."""
        return len(self.sessions) + self.translation_sessions

    @property
    def decode_slots(self) -> asyncio.Semaphore:
        """Uploads decoded at once (``Limits.max_concurrent_decodes``)."""
        if self._decodes is None:
            self._decodes = asyncio.Semaphore(self.limits.max_concurrent_decodes)
        return self._decodes


def error_body(
    message: str,
    code: str | None,
    param: str | None = None,
    type_: str = "invalid_request_error",
) -> dict[str, Any]:
    """The service's error body: ``{"error": {message, type, code, param}}``."""
    return {"error": {"message": message, "type": type_, "code": code, "param": param}}


def error_response(
    status: int,
    message: str,
    code: str | None = None,
    param: str | None = None,
    type_: str = "invalid_request_error",
) -> Response:
    """An HTTP error with the service's error body."""
    return JSONResponse(error_body(message, code, param, type_), status_code=status)


def client_error_response(exc: ClientInputError) -> Response:
    """The HTTP answer to a refused input."""
    return error_response(exc.status, exc.message, exc.code, exc.param)


def unauthorized() -> Response:
    """HTTP 401 as the service words it."""
    return error_response(401, "Incorrect API key provided.", "invalid_api_key")


def request_credential(request: Request, state: ServerState) -> tuple[bool, EphemeralKey | None]:
    """Whether the request's credential is accepted, and the ephemeral key it is (if one)."""
    return state.keys.check(credential_from(request.headers))


async def read_json_body(request: Request, limits: Limits) -> dict[str, Any]:
    """The request's JSON object body (``{}`` when empty), read up to ``max_body_bytes``.

    Raises :class:`LimitExceeded` (413) for a larger body, :class:`ClientInputError` (400)
    for one that is not a JSON object or nests too deep.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise _body_too_large(limits)
    raw = bytearray()
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), limits.body_timeout)
        except StopAsyncIteration:
            break
        except asyncio.TimeoutError:
            raise ClientInputError(
                "The request body stalled.", code="request_timeout", status=408
            ) from None
        raw += chunk
        if len(raw) > limits.max_body_bytes:
            raise _body_too_large(limits)
    if not raw.strip():
        return {}
    try:
        data = load_frame(bytes(raw), limits.max_json_depth)
    except ValueError:
        raise ClientInputError(
            "We could not parse the JSON body of your request.", code="invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise ClientInputError("The body must be a JSON object.", code="invalid_json")
    return data


def _body_too_large(limits: Limits) -> LimitExceeded:
    return LimitExceeded(
        f"The request body is larger than the maximum of {limits.max_body_bytes} bytes.",
        code="request_too_large",
        status=413,
    )


def frame_text(data: Any) -> str:
    """Compact JSON for a server event."""
    return json.dumps(data, separators=(",", ":"))
