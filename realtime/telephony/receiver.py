"""A webhook receiver usable from any ASGI app: verify, parse, hand to your handler.

::

    receiver = WebhookReceiver(os.environ["OPENAI_WEBHOOK_SECRET"])

    @receiver.on_incoming_call
    async def answer(event: RealtimeCallIncomingEvent) -> None:
        await control.accept(event.data.call_id, SessionConfig(instructions="..."))

    app = Starlette(routes=[Route("/webhook", receiver, methods=["POST"])])

:class:`WebhookReceiver` is itself an ASGI application (mount it at any path, or call
:meth:`WebhookReceiver.handle` with the body and headers from any framework). Answers:
200 once the handler returned, 400 when verification or parsing failed (the handler is
not called), 413 for a body over ``max_body`` bytes, 405 for anything but POST, 500 when
the handler raised (the service then retries the delivery).
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from ..events.calls import WebhookEvent, parse_webhook_event
from ..exceptions import ProtocolError
from .exceptions import WebhookVerificationError
from .webhooks import WebhookVerifier

__all__ = ["WebhookReceiver"]

logger = logging.getLogger("realtime.telephony")

Handler = Callable[[Any], Awaitable[None] | None]
H = TypeVar("H", bound=Handler)

_Scope = Mapping[str, Any]
_Receive = Callable[[], Awaitable[Mapping[str, Any]]]
_Send = Callable[[Mapping[str, Any]], Awaitable[None]]


class WebhookReceiver:
    """Verifies webhook deliveries and calls the handler registered for their type.

    ``secret`` (or a ready :class:`~.webhooks.WebhookVerifier` as ``verifier``) checks the
    signature. Handlers are registered with :meth:`on` (an event type, or ``"*"``) or
    :meth:`on_incoming_call`; they may be sync or async. ``events`` keeps the verified
    events received (the last ``keep`` of them).
    """

    def __init__(
        self,
        secret: str | bytes | None = None,
        *,
        verifier: WebhookVerifier | None = None,
        max_body: int = 1024 * 1024,
        keep: int = 100,
    ) -> None:
        if verifier is None:
            if secret is None:
                raise ValueError("WebhookReceiver needs a secret or a verifier")
            verifier = WebhookVerifier(secret)
        self.verifier = verifier
        self.max_body = max_body
        self._handlers: dict[str, list[Handler]] = {}
        self.events: list[WebhookEvent] = []
        self._keep = keep
        self.rejected = 0

    def on(self, event_type: str, handler: H) -> H:
        """Call ``handler(event)`` for events of ``event_type`` (``"*"``: every event)."""
        self._handlers.setdefault(event_type, []).append(handler)
        return handler

    def on_incoming_call(self, handler: H) -> H:
        """Decorator: ``handler(event: RealtimeCallIncomingEvent)`` for each incoming call."""
        return self.on("realtime.call.incoming", handler)

    async def handle(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """Verify, parse and dispatch one delivery; returns (HTTP status, JSON answer)."""
        try:
            self.verifier.verify(body, headers)
            event = parse_webhook_event(body)
        except (WebhookVerificationError, ProtocolError) as exc:
            self.rejected += 1
            logger.warning("webhook refused: %s", exc)
            return 400, {"error": str(exc)}
        self.events.append(event)
        del self.events[: -self._keep]
        handlers = self._handlers.get(event.type, []) + self._handlers.get("*", [])
        try:
            for handler in handlers:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
        except Exception as exc:
            logger.exception("webhook handler for %s failed", event.type)
            return 500, {"error": f"handler failed: {type(exc).__name__}"}
        return 200, {"ok": True}

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        """The ASGI application."""
        if scope.get("type") != "http":
            return
        if scope.get("method") != "POST":
            await _answer(send, 405, {"error": "POST only"})
            return
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())
        }
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message.get("type") == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _answer(send, 413, {"error": "body too large"})
                return
            chunks.append(chunk)
            more = bool(message.get("more_body"))
        status, answer = await self.handle(b"".join(chunks), headers)
        await _answer(send, status, answer)


async def _answer(send: _Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
