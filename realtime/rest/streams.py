"""Reading response bodies: whole, as raw chunks, or as server-sent events.

Every ``httpx`` failure while reading becomes an :class:`~realtime.exceptions.APIError`
that names what was being read; an SSE stream that stops in the middle of an event is
reported as cut off rather than silently ending.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import httpx

from realtime.exceptions import APIError
from realtime.rest.sse import SSEDecoder

__all__ = ["is_event_stream", "iter_body", "iter_sse_data", "read_body"]


def is_event_stream(response: httpx.Response) -> bool:
    """True when the response body is ``text/event-stream``."""
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("text/event-stream")


def _lost(response: httpx.Response, exc: Exception, what: str) -> APIError:
    return APIError(
        f"connection lost while reading the {what} ({type(exc).__name__}: {exc})",
        status=response.status_code,
        request_id=response.headers.get("x-request-id"),
    )


async def read_body(response: httpx.Response, what: str = "response") -> bytes:
    """Read the whole body and close the response."""
    try:
        return await response.aread()
    except httpx.HTTPError as exc:
        raise _lost(response, exc, what) from None
    finally:
        await response.aclose()


async def iter_body(
    response: httpx.Response, what: str = "response"
) -> AsyncGenerator[bytes, None]:
    """Yield body chunks as they arrive (content-encoding undone); closes the response."""
    try:
        async for chunk in response.aiter_bytes():
            if chunk:
                yield chunk
    except httpx.HTTPError as exc:
        raise _lost(response, exc, what) from None
    finally:
        await response.aclose()


async def iter_sse_data(
    response: httpx.Response, what: str = "event stream"
) -> AsyncGenerator[str, None]:
    """Yield the ``data`` of each server-sent event; stop at ``[DONE]`` or end of body.

    Raises APIError when the body ends in the middle of an event or the connection drops.
    Closes the response.
    """
    decoder = SSEDecoder()
    rid = response.headers.get("x-request-id")
    try:
        async for chunk in iter_body(response, what):
            for event in decoder.feed(chunk):
                if event.is_done:
                    return
                yield event.data
        for event in decoder.close():
            if event.is_done:
                return
            yield event.data
        if decoder.truncated:
            raise APIError(
                f"the {what} was cut off in the middle of an event",
                status=response.status_code,
                request_id=rid,
            )
    finally:
        await response.aclose()
