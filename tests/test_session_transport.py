"""The transport seam: a Session driven by an in-memory FrameTransport (no socket).

This is how a WebRTC data channel (or any other carrier of the same events) plugs in:
``connect(..., transport_factory=...)``. It also checks the single options definition.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import realtime.session as rs
from realtime.connection import Endpoint, SessionOptions, resolve_endpoint
from realtime.events.config import SessionConfig
from realtime.exceptions import ConfigError, ConnectionClosed
from realtime.reconnect import ReconnectPolicy
from realtime.testing import session_created
from realtime.transport import FrameTransport, Message


class MemoryTransport:
    """A FrameTransport whose other end is the test: ``push`` frames in, read ``sent``."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self._inbox: list[Message] = []
        self._ready = asyncio.Event()
        self._code: int | None = None
        self._reason = ""

    def push(self, *events: dict[str, Any]) -> None:
        self._inbox.extend(json.dumps(e) for e in events)
        self._ready.set()

    def drop(self, code: int = 1006, reason: str = "") -> None:
        if self._code is None:
            self._code, self._reason = code, reason
        self._ready.set()

    async def receive(self) -> list[Message]:
        while not self._inbox:
            if self._code is not None:
                raise ConnectionClosed(self._code, self._reason)
            self._ready.clear()
            await self._ready.wait()
        batch, self._inbox = self._inbox, []
        return batch

    async def send(self, text: str) -> None:
        if self._code is not None:
            raise ConnectionClosed(self._code, self._reason)
        event = json.loads(text)
        self.sent.append(event)
        if event["type"] == "session.update":  # answer like a server
            self.push({"type": "session.updated", "session": session_created()["session"]})

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.drop(code, reason)

    def abort(self) -> None:
        self.drop(1006)

    @property
    def closed(self) -> bool:
        return self._code is not None

    @property
    def close_code(self) -> int | None:
        return self._code

    @property
    def close_reason(self) -> str:
        return self._reason

    async def wait_closed(self) -> None:
        while self._code is None:
            await asyncio.sleep(0.001)


def endpoint() -> Endpoint:
    return resolve_endpoint(url="ws://127.0.0.1:9/v1")


async def test_session_runs_on_a_memory_transport() -> None:
    """connect(transport_factory=...) drives the whole session through the seam."""
    transports: list[MemoryTransport] = []

    async def factory(ep: Endpoint, options: SessionOptions) -> FrameTransport:
        assert options.config is not None and ep.dialect == "ga"
        transport = MemoryTransport()
        transport.push(session_created())
        transports.append(transport)
        return transport

    config = SessionConfig(instructions="memory")
    async with rs.connect(url="ws://127.0.0.1:9/v1", config=config, transport_factory=factory) as s:
        assert isinstance(transports[0], FrameTransport)
        assert transports[0].sent[0]["type"] == "session.update"
        assert transports[0].sent[0]["session"]["instructions"] == "memory"
        transports[0].push({"type": "custom.hello"})
        await s.wait_for("custom.hello", timeout=5)
    assert transports[0].closed and transports[0].close_code == 1000


async def test_reconnect_through_the_seam_opens_a_new_transport() -> None:
    """A dropped memory transport is replaced by a new one from the same factory."""
    transports: list[MemoryTransport] = []

    async def factory(ep: Endpoint, options: SessionOptions) -> FrameTransport:
        transport = MemoryTransport()
        transports.append(transport)
        return transport

    policy = ReconnectPolicy(max_attempts=2, base_delay=0.01, jitter=0.0)
    session = rs.Session(endpoint(), transport_factory=factory, reconnect=policy)
    async with session:
        async with session.expect("connection.restored", timeout=5):
            transports[0].drop(1006)
        await session.send({"type": "custom.after"})
        await session.flush(timeout=5)
    assert len(transports) == 2 and transports[1].sent[-1]["type"] == "custom.after"


def test_options_are_defined_once() -> None:
    """connect() and Session() take the SessionOptions fields; unknown names are refused."""
    with pytest.raises(ConfigError, match="unknown session option"):
        rs.connect(url="ws://127.0.0.1:9/v1", ping_intreval=3)
    with pytest.raises(ConfigError, match="send_queue_size"):
        SessionOptions(send_queue_size=0)
    base = SessionOptions(ack_timeout=3.0)
    session = rs.Session(endpoint(), base, expiry_warning=5.0)
    assert session.options.ack_timeout == 3.0 and session.options.expiry_warning == 5.0
    assert base.expiry_warning == 60.0  # the given options are not modified
