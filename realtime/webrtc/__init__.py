"""WebRTC: the same realtime session over a peer connection (Opus audio, events on a data
channel). ``realtime.connect(..., transport="webrtc")``; see :mod:`.transport`.

Needs the ``webrtc`` extra (``aiortc``).
"""

from __future__ import annotations

from .exceptions import IceError, SdpError, WebRTCError, WebRTCUnavailable
from .signaling import OfferRequest, answer_from, call_id_from, offer_request
from .transport import AudioSink, WebRTC, WebRTCTransport, open_webrtc

__all__ = [
    "AudioSink",
    "IceError",
    "OfferRequest",
    "SdpError",
    "WebRTC",
    "WebRTCError",
    "WebRTCTransport",
    "WebRTCUnavailable",
    "answer_from",
    "call_id_from",
    "offer_request",
    "open_webrtc",
]
