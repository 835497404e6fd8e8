"""Errors of the WebRTC transport (aiortc's errors are converted to these at the boundary)."""

from __future__ import annotations

from ..exceptions import ConfigError, ConnectionError

__all__ = ["IceError", "SdpError", "WebRTCError", "WebRTCUnavailable"]


class WebRTCError(ConnectionError):
    """A WebRTC call could not be set up or failed."""


class SdpError(WebRTCError):
    """The SDP exchange failed: the server refused the offer, or its answer is unusable."""


class IceError(WebRTCError):
    """The peer connection did not connect (ICE/DTLS) within the connect timeout, or failed."""


class WebRTCUnavailable(ConfigError):
    """``aiortc`` is not installed (``pip install 'realtime-voice[webrtc]'``)."""
