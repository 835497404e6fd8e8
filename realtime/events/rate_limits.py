"""The ``rate_limits.updated`` server event."""

from __future__ import annotations

from typing import Literal

from .base import Float, Int, Model, ServerEvent

__all__ = ["RateLimit", "RateLimitsUpdatedEvent"]


class RateLimit(Model):
    """One rate limit: ``name`` (``requests``/``tokens``), ``limit``, ``remaining``,
    ``reset_seconds``."""

    name: str | None = None
    limit: Int | None = None
    remaining: Int | None = None
    reset_seconds: Float | None = None


class RateLimitsUpdatedEvent(ServerEvent):
    """The current rate limits, sent at the start of each response."""

    type: Literal["rate_limits.updated"] = "rate_limits.updated"
    rate_limits: list[RateLimit]
