"""Private helpers of the model modules: tagged-union fallback and base64 decoding."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ..exceptions import ProtocolError

__all__ = ["decode_b64", "tag_of"]


def tag_of(known: frozenset[str]) -> Any:
    """Return a pydantic discriminator function mapping a ``type`` outside ``known`` to ``"*"``."""

    def discriminate(value: Any) -> str:
        kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
        return kind if isinstance(kind, str) and kind in known else "*"

    return discriminate


def decode_b64(data: str, event_type: str | None = None) -> bytes:
    """Decode base64 audio; raises :class:`~realtime.exceptions.ProtocolError` if invalid."""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(
            f"audio is not valid base64 ({exc})", event_type=event_type, excerpt=data[:40]
        ) from None
