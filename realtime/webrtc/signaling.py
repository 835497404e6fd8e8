"""The SDP exchange of a WebRTC call, as plain data (no sockets): where to POST the offer,
in which shape, and what the answer means.

- GA: ``POST {base}/realtime/calls`` — ``multipart/form-data`` with ``sdp`` (the offer) and
  ``session`` (JSON: ``type`` and ``model``), or, authenticated with an ephemeral key (whose
  session configuration applies), the bare offer as ``application/sdp``; ``201`` with the
  answer, the ``Location`` header names the call (``/v1/realtime/calls/{call_id}``).
- Beta: ``POST {base}/realtime?model=…`` with the offer as ``application/sdp``.

``base`` is derived from the session's WebSocket URL (``wss://host/v1/realtime?model=m`` ->
``https://host/v1``), so every way of choosing a server (``url=``, ``base_url=``, the
environment) works for both transports.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .exceptions import SdpError, WebRTCError

__all__ = ["OfferRequest", "answer_from", "call_id_from", "offer_request"]

_HTTP = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


@dataclass(frozen=True)
class OfferRequest:
    """One HTTP request carrying an SDP offer."""

    url: str
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = field(default=())


def _split(ws_url: str) -> tuple[str, str, str, list[tuple[str, str]]]:
    parts = urlsplit(ws_url)
    scheme = _HTTP.get(parts.scheme.lower())
    if scheme is None:
        raise WebRTCError(f"cannot derive an HTTP URL from a {parts.scheme!r} URL")
    path = parts.path.rstrip("/")
    if path.endswith("/realtime"):
        path = path[: -len("/realtime")]
    return scheme, parts.netloc, path, parse_qsl(parts.query)


def offer_request(
    ws_url: str,
    dialect: Literal["beta", "ga"],
    sdp: str,
    *,
    ephemeral: bool = False,
    boundary: str = "realtime-voice-webrtc-offer",
) -> OfferRequest:
    """The request that sends ``sdp`` for a session whose WebSocket URL is ``ws_url``
    (``ephemeral``: the key is an ephemeral client secret)."""
    scheme, netloc, base, query = _split(ws_url)
    if dialect == "beta":
        url = urlunsplit((scheme, netloc, base + "/realtime", urlencode(query), ""))
        return OfferRequest(url, "application/sdp", sdp.encode("utf-8"))
    params = dict(query)
    session = {"type": "realtime", "model": params.pop("model", "gpt-realtime")}
    url = urlunsplit((scheme, netloc, base + "/realtime/calls", urlencode(params), ""))
    if ephemeral:
        return OfferRequest(url, "application/sdp", sdp.encode("utf-8"))
    parts = [
        ("sdp", "application/sdp", sdp),
        ("session", "application/json", json.dumps(session)),
    ]
    body = (
        b"".join(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
                f"Content-Type: {ctype}\r\n\r\n{value}\r\n"
            ).encode()
            for name, ctype, value in parts
        )
        + f"--{boundary}--\r\n".encode()
    )
    return OfferRequest(url, f"multipart/form-data; boundary={boundary}", body)


def call_id_from(location: str | None) -> str | None:
    """The call id in a ``Location`` header (``/v1/realtime/calls/rtc_…`` -> ``rtc_…``)."""
    if not location:
        return None
    tail = urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1]
    return tail or None


def answer_from(status: int, content_type: str, text: str) -> str:
    """The SDP answer of a successful exchange; :class:`SdpError` for anything else."""
    if status not in (200, 201):
        detail = text.strip()[:300]
        with contextlib.suppress(ValueError, KeyError, TypeError):
            detail = str(json.loads(text)["error"]["message"])[:300]
        raise SdpError(f"the server refused the SDP offer (HTTP {status}): {detail}")
    if not text.lstrip().startswith("v=0"):
        raise SdpError(f"the server's answer is not SDP (content type {content_type!r})")
    return text
