"""realtime-voice: a client (and an offline local server) for the OpenAI Realtime protocol."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
