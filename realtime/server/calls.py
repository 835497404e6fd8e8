"""SIP call control on the local server, and incoming calls simulated from a WAV file.

Routes (GA):

- ``POST /v1/realtime/calls/{call_id}/accept`` (body: a GA realtime session),
  ``/reject`` (optional ``status_code``, default 603), ``/refer`` (``target_uri``),
  ``/hangup``: 200 with an empty JSON object; 404 for an unknown call, 400 for a bad
  body or an action the call's state does not allow (accepting twice, referring a
  ringing call, ...), 401 without a valid key.
- ``WS /v1/realtime?call_id=...``: the realtime session of an accepted call (see
  :class:`CallLeg`): it starts with the accepted configuration and the caller's audio
  streams into it in real time, followed by line silence; the assistant's audio is
  recorded as what the caller heard. Closing that socket does not end the call (another
  may attach); ``hangup`` does, closing the socket.

:func:`simulate_incoming_call` creates a ringing call whose caller speaks a WAV file and
POSTs the ``realtime.call.incoming`` webhook, signed with the registry's Standard
Webhooks secret, to the URL given. The registry (:class:`CallRegistry`) is
``ServerState.calls``; it keeps at most ``max_calls`` calls (the oldest finished ones
are forgotten first) and a call left ringing for ``ring_seconds`` is missed.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from audio.wav import read_wav

from ..events.calls import CallReferRequest, CallRejectRequest
from ..events.config import SessionConfig
from ..telephony.webhooks import webhook_headers
from .auth import credential_from
from .call_registry import CallLeg, CallRegistry, LocalCall

if TYPE_CHECKING:
    from .state import ServerState

__all__ = [
    "CallLeg",
    "CallRegistry",
    "LocalCall",
    "call_routes",
    "simulate_incoming_call",
]


def _error(status: int, message: str, code: str, param: str | None = None) -> Response:
    body = {
        "error": {"message": message, "type": "invalid_request_error", "code": code, "param": param}
    }
    return JSONResponse(body, status_code=status)


async def _prepare(request: Request) -> tuple[LocalCall, Any] | Response:
    """Authenticate, find the call, read the JSON body (``None`` when empty)."""
    state: ServerState = request.app.state.server
    ok, eph = state.keys.check(credential_from(request.headers))
    if not ok or eph is not None:
        return _error(401, "Incorrect API key provided.", "invalid_api_key")
    call_id = request.path_params["call_id"]
    call = state.calls.get(call_id)
    if call is None:
        return _error(404, f"No call with id '{call_id[:80]}'.", "call_not_found", "call_id")
    raw = await request.body()
    if not raw:
        return call, None
    try:
        body = json.loads(raw)
    except ValueError:
        return _error(400, "The body is not valid JSON.", "invalid_json")
    if not isinstance(body, dict):
        return _error(400, "The body must be a JSON object.", "invalid_json")
    return call, body


def _state_error(call: LocalCall, action: str) -> Response:
    return _error(400, f"Cannot {action} a call that is {call.status}.", "invalid_call_state")


async def accept(request: Request) -> Response:
    """``POST /v1/realtime/calls/{call_id}/accept``."""
    got = await _prepare(request)
    if isinstance(got, Response):
        return got
    call, body = got
    if body is None:
        return _error(400, "Missing the session configuration.", "missing_required_parameter")
    if body.get("type") != "realtime":
        return _error(
            400, "A call is accepted with a session of type 'realtime'.", "invalid_type", "type"
        )
    try:
        SessionConfig.from_wire(body, "ga")
    except Exception as exc:  # ConfigError and pydantic errors: the body is not a session
        return _error(400, f"Invalid session: {exc}", "invalid_session")
    if call.status != "ringing":
        return _state_error(call, "accept")
    call.config = body
    call.status = "accepted"
    return JSONResponse({})


async def reject(request: Request) -> Response:
    """``POST /v1/realtime/calls/{call_id}/reject``."""
    got = await _prepare(request)
    if isinstance(got, Response):
        return got
    call, body = got
    try:
        parsed = CallRejectRequest.model_validate(body or {})
    except ValidationError:
        return _error(
            400, "status_code must be a SIP status (100..699).", "invalid_value", "status_code"
        )
    if call.status != "ringing":
        return _state_error(call, "reject")
    call.reject_status = parsed.status_code or 603
    call.finish("rejected")
    return JSONResponse({})


async def refer(request: Request) -> Response:
    """``POST /v1/realtime/calls/{call_id}/refer``."""
    got = await _prepare(request)
    if isinstance(got, Response):
        return got
    call, body = got
    try:
        parsed = CallReferRequest.model_validate(body or {})
    except ValidationError:
        return _error(
            400, "target_uri must be a tel:, sip: or sips: URI.", "invalid_value", "target_uri"
        )
    if call.status not in ("accepted", "active"):
        return _state_error(call, "refer")
    call.refer_target = parsed.target_uri
    if call.leg is not None:
        await call.leg.end("referred")
    call.finish("referred")
    return JSONResponse({})


async def hangup(request: Request) -> Response:
    """``POST /v1/realtime/calls/{call_id}/hangup``."""
    got = await _prepare(request)
    if isinstance(got, Response):
        return got
    call, _ = got
    if call.status not in ("accepted", "active"):
        return _state_error(call, "hang up")
    if call.leg is not None:
        await call.leg.end("ended")
    call.finish("ended")
    return JSONResponse({})


def call_routes() -> list[Route]:
    """The call-control routes (``/v1/realtime/calls/{call_id}/...``)."""
    base = "/v1/realtime/calls/{call_id}/"
    return [
        Route(base + "accept", accept, methods=["POST"]),
        Route(base + "reject", reject, methods=["POST"]),
        Route(base + "refer", refer, methods=["POST"]),
        Route(base + "hangup", hangup, methods=["POST"]),
    ]


def incoming_call_event(call: LocalCall) -> dict[str, Any]:
    """The ``realtime.call.incoming`` webhook event of a call."""
    return {
        "id": "evt_" + secrets.token_hex(12),
        "object": "event",
        "type": "realtime.call.incoming",
        "created_at": int(call.created_at),
        "data": {"call_id": call.call_id, "sip_headers": call.sip_headers},
    }


async def simulate_incoming_call(
    state: ServerState,
    webhook_url: str,
    caller: str | Path | bytes,
    *,
    sip_headers: Sequence[Mapping[str, str]] | None = None,
    timeout: float = 10.0,
) -> LocalCall:
    """Ring: a call whose caller says ``caller`` (a WAV file, or PCM16 24 kHz mono).

    POSTs the signed ``realtime.call.incoming`` webhook to ``webhook_url`` and returns the
    call once the webhook was answered (its status in ``webhook_status``; ``None`` when the
    URL could not be reached). The application then accepts, rejects, ...
    """
    import httpx

    pcm = caller if isinstance(caller, bytes) else read_wav(caller)
    headers = sip_headers or [
        {"name": "From", "value": '"Caller" <sip:+15550100@sip.example.com>'},
        {"name": "To", "value": "<sip:+15550199@sip.api.openai.com>"},
        {"name": "Call-ID", "value": secrets.token_hex(8) + "@sip.example.com"},
    ]
    call = state.calls.new_call(pcm, headers)
    body = json.dumps(incoming_call_event(call)).encode()
    signed = webhook_headers(state.calls.secret, body)
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.post(
                webhook_url, content=body, headers={**signed, "content-type": "application/json"}
            )
        call.webhook_status = response.status_code
    except httpx.HTTPError:
        call.webhook_status = None
    return call
