"""Every bound the local server keeps, in one place (:class:`Limits`), and the shared audio budget.

Each limit is checked before its cost is paid, and answered the way the service would: an
``error`` event on the realtime WebSocket (the session goes on), a 4xx with an OpenAI-shaped
body on REST, HTTP 503 (or close 1013) for a connection over the limits.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = ["AudioBudget", "Limits"]

MIB = 1024 * 1024
BYTES_PER_MS = 48  # PCM16 mono 24 kHz


@dataclass(frozen=True)
class Limits:
    """The local server's limits (all configurable; ``realtime serve`` exposes the main ones).

    Realtime sessions:

    - ``max_append_bytes``: decoded audio per ``input_audio_buffer.append`` (15 MiB, as the
      service).
    - ``max_buffer_ms``: uncommitted input audio per session (15 minutes).
    - ``max_server_audio_ms``: input audio held by all sessions together, buffered or
      committed to their conversations (2 hours, about 330 MiB of PCM16).
    - ``max_frame_bytes``: one WebSocket frame (21 MiB: a maximal append in base64, plus room).
    - ``max_json_depth``: nesting of a client event (32 levels).
    - ``session_seconds``: session lifetime (60 minutes; then ``session_expired``, close 1001).
    - ``max_sessions``: realtime sessions at once (HTTP 503 to the handshake beyond).

    REST:

    - ``max_upload_bytes``: an audio upload (25 MiB; HTTP 413 beyond, like the service).
    - ``max_upload_seconds``: duration of an uploaded file (25 minutes).
    - ``max_body_bytes``: a JSON request body (1 MiB).
    - ``max_concurrent_decodes``: uploads decoded at once (others wait their turn).

    Connections:

    - ``max_connections``: open TCP connections (the next gets HTTP 503 and is closed).
    - ``handshake_timeout``: seconds for a new connection to send its request headers.
    - ``idle_timeout``: seconds an HTTP keep-alive connection may sit idle.
    - ``body_timeout``: seconds a request body may stall between two chunks.
    - ``max_header_bytes``: the request line and headers.
    - ``log_interval``: at most one log line per this many seconds for a repeated failure
      (out of file descriptors, refused connections).

    ``pace_audio`` sends reply audio in real time instead of as fast as it is synthesized.
    """

    max_append_bytes: int = 15 * MIB
    max_buffer_ms: int = 15 * 60 * 1000
    max_server_audio_ms: int = 2 * 60 * 60 * 1000
    max_frame_bytes: int = 21 * MIB
    max_json_depth: int = 32
    session_seconds: float = 60 * 60.0
    max_sessions: int = 200
    max_upload_bytes: int = 25 * MIB
    max_upload_seconds: float = 25 * 60.0
    max_body_bytes: int = 1 * MIB
    max_concurrent_decodes: int = 2
    max_connections: int = 1000
    handshake_timeout: float = 10.0
    idle_timeout: float = 5.0
    body_timeout: float = 30.0
    max_header_bytes: int = 16 * 1024
    log_interval: float = 10.0
    pace_audio: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "pace_audio":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"Limits.{f.name} must be a positive number, got {value!r}")

    def with_(self, **changes: Any) -> Limits:
        """A copy with some limits changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


class AudioBudget:
    """Input audio held by every session of a server, against ``max_server_audio_ms``.

    Sessions :meth:`reserve` bytes before keeping audio and :meth:`release` them when they
    let it go (clear, item deletion, close). Used from the event loop only.
    """

    def __init__(self, limit_ms: int) -> None:
        self.limit_bytes = int(limit_ms) * BYTES_PER_MS
        self.held = 0

    def __repr__(self) -> str:
        return f"AudioBudget(held={self.held}, limit={self.limit_bytes})"

    def reserve(self, n: int) -> bool:
        """Take ``n`` bytes if they fit under the limit; False (nothing taken) otherwise."""
        if n < 0:
            raise ValueError("cannot reserve a negative size")
        if self.held + n > self.limit_bytes:
            return False
        self.held += n
        return True

    def release(self, n: int) -> None:
        """Give back ``n`` bytes."""
        self.held = max(0, self.held - n)
