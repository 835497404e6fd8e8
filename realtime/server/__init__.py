"""The local realtime server: an offline backend that speaks the OpenAI Realtime protocol."""

from __future__ import annotations

__all__: list[str] = []
