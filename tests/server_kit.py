"""Helpers for local-server tests: a raw WebSocket client that validates every event strictly."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect

from realtime.events import UnknownServerEvent, parse_server_event
from realtime.server.engine_set import EngineSet

_ENGINES: EngineSet | None = None


def shared_engines() -> EngineSet:
    """One EngineSet for the whole test session (models load once)."""
    global _ENGINES
    if _ENGINES is None:
        _ENGINES = EngineSet()
    return _ENGINES


class StrictClient:
    """Sends client events as dicts; receives server events, each validated with our models.

    Any frame that does not parse as a known event of the dialect fails the test
    (the strict mode of issue 6, item 9).
    """

    def __init__(self, ws: ClientConnection, dialect: str) -> None:
        self.ws = ws
        self.dialect = dialect
        self.events: list[dict[str, Any]] = []
        self._n = 0

    @classmethod
    async def open(
        cls,
        base_url: str,
        dialect: str = "ga",
        *,
        query: str = "model=gpt-realtime",
        headers: dict[str, str] | None = None,
    ) -> StrictClient:
        hdrs = dict(headers or {})
        if dialect == "beta":
            hdrs["OpenAI-Beta"] = "realtime=v1"
        ws = await connect(f"{base_url}/realtime?{query}", additional_headers=hdrs, max_size=None)
        return cls(ws, dialect)

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(event))

    async def recv(self, timeout: float = 20.0) -> dict[str, Any]:
        frame = await asyncio.wait_for(self.ws.recv(), timeout)
        model = parse_server_event(frame, self.dialect)  # type: ignore[arg-type]
        assert not isinstance(model, UnknownServerEvent), f"unknown event: {str(frame)[:300]}"
        data: dict[str, Any] = json.loads(frame)
        self.events.append(data)
        return data

    async def until(
        self, kind: str | Callable[[dict[str, Any]], bool], timeout: float = 30.0
    ) -> dict[str, Any]:
        """Receive until an event of this type (or matching the predicate) arrives."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                seen = [e["type"] for e in self.events[-15:]]
                raise AssertionError(f"no {kind!r} within {timeout}s; last: {seen}")
            ev = await self.recv(left)
            if (ev["type"] == kind) if isinstance(kind, str) else kind(ev):
                return ev

    async def collect_until(self, kind: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        start = len(self.events)
        await self.until(kind, timeout)
        return self.events[start:]

    async def close(self) -> None:
        await self.ws.close()


def pcm_of(events: list[dict[str, Any]], kind: str) -> bytes:
    """Concatenated decoded audio of the delta events of this type."""
    return b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == kind)


def b64(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode("ascii")


def silence(ms: int, rate: int = 24000) -> bytes:
    return np.zeros(rate * ms // 1000, np.int16).tobytes()
