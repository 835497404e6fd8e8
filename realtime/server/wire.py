"""How the local server writes events in each dialect.

The server thinks in GA terms (event names, item content types, the nested session); this
module renders what goes on the wire for the connection's dialect: beta event names
(``response.audio.delta`` for ``response.output_audio.delta`` …), beta content part types
(``text`` / ``audio`` for ``output_text`` / ``output_audio``), the flat beta response object,
and drops GA-only events a beta client would not know (``conversation.item.done``).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Mapping
from typing import Any, Literal

from ..events.dialect import counterpart, counterpart_part_type

__all__ = [
    "GA_ONLY_EVENTS",
    "ServerDialect",
    "beta_name",
    "error_event",
    "new_id",
    "render_item",
    "render_response",
    "usage_object",
]

ServerDialect = Literal["beta", "ga"]

GA_ONLY_EVENTS = frozenset(
    {
        "conversation.item.done",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "output_audio_buffer.cleared",
        "conversation.item.input_audio_transcription.segment",
    }
)

_counter = itertools.count(1)
_prefix = os.urandom(4).hex()


def new_id(kind: str) -> str:
    """A fresh identifier such as ``item_1a2b3c4d0000000001`` (unique per process)."""
    return f"{kind}_{_prefix}{next(_counter):010d}"


def beta_name(ga_type: str) -> str:
    """The beta name of a GA event type (the same name where they agree).

    The names come from the client's table, :data:`realtime.events.dialect.COUNTERPARTS`.
    """
    return counterpart(ga_type, "beta")


def render_part(part: Mapping[str, Any], dialect: ServerDialect) -> dict[str, Any]:
    """A content part as the dialect writes it."""
    out = dict(part)
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = counterpart_part_type(kind, dialect)
    return out


def render_item(item: Mapping[str, Any], dialect: ServerDialect) -> dict[str, Any]:
    """A conversation item (kept GA-shaped internally) as the dialect writes it."""
    out = {k: v for k, v in item.items() if not k.startswith("_")}
    out.setdefault("object", "realtime.item")
    if "content" in out:
        out["content"] = [render_part(p, dialect) for p in out["content"]]
    return out


def usage_object(
    *, input_text: int, input_audio: int, output_text: int, output_audio: int
) -> dict[str, Any]:
    """A ``usage`` object with token details (estimated counts for the local engines)."""
    inp = input_text + input_audio
    out = output_text + output_audio
    return {
        "total_tokens": inp + out,
        "input_tokens": inp,
        "output_tokens": out,
        "input_token_details": {
            "text_tokens": input_text,
            "audio_tokens": input_audio,
            "cached_tokens": 0,
            "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0},
        },
        "output_token_details": {"text_tokens": output_text, "audio_tokens": output_audio},
    }


def render_response(
    *,
    response_id: str,
    status: str,
    dialect: ServerDialect,
    output: list[dict[str, Any]],
    modalities: list[str],
    voice: str,
    output_format: Mapping[str, Any],
    conversation_id: str | None,
    usage: Mapping[str, Any] | None = None,
    status_details: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    max_output_tokens: int | str = "inf",
) -> dict[str, Any]:
    """The response object of ``response.created`` / ``response.done`` for the dialect.

    ``output_format`` is the GA format object (``{"type": "audio/pcm", "rate": 24000}``).
    """
    resp: dict[str, Any] = {
        "id": response_id,
        "object": "realtime.response",
        "status": status,
        "status_details": dict(status_details) if status_details is not None else None,
        "output": [render_item(i, dialect) for i in output],
        "usage": dict(usage) if usage is not None else None,
        "metadata": dict(metadata) if metadata is not None else None,
    }
    if dialect == "ga":
        resp["conversation_id"] = conversation_id
        resp["output_modalities"] = list(modalities)
        resp["max_output_tokens"] = max_output_tokens
        resp["audio"] = {"output": {"format": dict(output_format), "voice": voice}}
    else:
        resp["modalities"] = ["text", "audio"] if "audio" in modalities else ["text"]
        resp["voice"] = voice
        resp["output_audio_format"] = _beta_format_name(output_format)
        resp["max_output_tokens"] = max_output_tokens
        resp["temperature"] = 0.8
        if conversation_id is not None:
            resp["conversation_id"] = conversation_id
    return resp


def _beta_format_name(fmt: Mapping[str, Any]) -> str:
    kind = fmt.get("type")
    return {"audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}.get(str(kind), "pcm16")


def error_event(
    message: str,
    *,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """An ``error`` server event (event_id names the client event it answers)."""
    return {
        "type": "error",
        "event_id": new_id("event"),
        "error": {
            "type": type,
            "code": code,
            "message": message,
            "param": param,
            "event_id": event_id,
        },
    }


def now_s() -> int:
    """Unix time in whole seconds (for ``expires_at`` / ``created_at``)."""
    return int(time.time())
