"""Base classes shared by every protocol model.

:class:`Model` is the base of the building blocks (sessions, items, responses, …),
:class:`Event` the base of the events.  Every model keeps the fields a server adds
later (``extra="allow"``) so a newer server never breaks an older client.  Leaf fields
use strict scalar types: a string where an integer is required is an error, not a
silent coercion.

The reference bases (:class:`ResponseRefEvent`, :class:`OutputRefEvent`,
:class:`ContentRefEvent`, :class:`ItemRefEvent`) carry the ``response_id``,
``item_id``, ``output_index`` and ``content_index`` fields repeated by many events.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    Strict,
    model_serializer,
)

__all__ = [
    "Bool",
    "ClientEvent",
    "ContentRefEvent",
    "Event",
    "Float",
    "Int",
    "InvalidServerEvent",
    "ItemRefEvent",
    "Model",
    "OutputRefEvent",
    "ResponseRefEvent",
    "ServerEvent",
    "UnknownServerEvent",
    "new_event_id",
]

Int = Annotated[int, Strict()]
"""An integer; JSON strings and floats are rejected."""
Float = Annotated[float, Strict()]
"""A number; JSON integers are accepted, strings rejected."""
Bool = Annotated[bool, Strict()]
"""A boolean; ``0``/``1`` and ``"true"`` are rejected."""

_PREFIX = "evt_" + secrets.token_hex(5)
_COUNTER = itertools.count(1)


def new_event_id() -> str:
    """Return a fresh client-side event id (a per-process random prefix and a counter)."""
    return f"{_PREFIX}{next(_COUNTER):06x}"


class Model(BaseModel):
    """Base of every protocol building block: extra fields are kept, not rejected.

    Serialising always writes ``type`` (for the models that have one) even when it
    came from the default and so counts as unset: encoding omits unset fields, and a
    nested ``{"type": "server_vad"}`` must not lose its tag.
    """

    model_config = ConfigDict(extra="allow")

    @model_serializer(mode="wrap")
    def _with_type(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and "type" not in data and "type" in type(self).model_fields:
            data["type"] = self.__dict__["type"]
        return data


class Event(Model):
    """Base of every event; ``type`` is the wire type string."""

    type: str


class ServerEvent(Event):
    """Base of every event a server sends."""

    event_id: str | None = None


class ClientEvent(Event):
    """Base of every event a client sends."""

    event_id: str | None = None


class UnknownServerEvent(ServerEvent):
    """A server event whose type the dialect does not know.

    ``type`` is its wire type and ``raw`` the whole decoded JSON object, so nothing is
    lost; it re-encodes to ``raw``.
    """

    raw: dict[str, Any] = Field(default_factory=dict, exclude=True)


class InvalidServerEvent(ServerEvent):
    """A server event of a type the dialect knows whose fields did not validate.

    Instead of being dropped it is delivered (to ``"*"`` handlers and the event
    iterator): ``type`` is its wire type, ``raw`` the whole decoded JSON object and
    ``error`` the validation error, readable (``"invalid field delta: ..."``). It
    re-encodes to ``raw``. Parsing with ``strict=True`` raises
    :class:`~realtime.exceptions.ProtocolError` instead.
    """

    raw: dict[str, Any] = Field(default_factory=dict, exclude=True)
    error: str = Field(default="", exclude=True)


class ItemRefEvent(ServerEvent):
    """A server event about one conversation item (``item_id``)."""

    item_id: str


class ResponseRefEvent(ServerEvent):
    """A server event about one response (``response_id``)."""

    response_id: str


class OutputRefEvent(ResponseRefEvent):
    """A server event about one output item of a response."""

    item_id: str
    output_index: Int


class ContentRefEvent(OutputRefEvent):
    """A server event about one content part of a response output item."""

    content_index: Int
