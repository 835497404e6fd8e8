"""The ``error`` server event."""

from __future__ import annotations

from typing import Literal

from .base import ServerEvent
from .common import ErrorDetails

__all__ = ["ErrorEvent"]


class ErrorEvent(ServerEvent):
    """The server reports an error; ``error.event_id`` names the client event at fault."""

    type: Literal["error"] = "error"
    error: ErrorDetails
