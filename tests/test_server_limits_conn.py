"""The local server's connections under hostile clients (issue 11, items 5 and 6).

Raw connections time out, a connection limit refuses cleanly, running out of file
descriptors is logged at a bounded rate, and no log line carries a credential. The file
descriptor test runs the server in a subprocess with a lowered RLIMIT_NOFILE, on loopback,
bounded in connections and time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from realtime.server import Limits, LocalServer
from realtime.server.exceptions import StartupError
from tests.server_kit import shared_engines

ROOT = Path(__file__).resolve().parents[1]


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bytes:
    """Read until EOF (the server closed); fails if it stays open ``within`` seconds."""

    async def drain() -> bytes:
        data = b""
        while chunk := await reader.read(4096):
            data += chunk
        return data

    return await asyncio.wait_for(drain(), within)


async def test_silent_connection_times_out():
    """A TCP connection that never sends is closed after the handshake timeout."""
    limits = Limits(handshake_timeout=0.5)
    async with LocalServer(port=0, engines=shared_engines(), limits=limits) as srv:
        reader, writer = await asyncio.open_connection(srv.host, srv.port)
        await closed_by_server(reader, 5)
        writer.close()
        # headers trickled byte by byte never complete within the timeout either
        reader, writer = await asyncio.open_connection(srv.host, srv.port)
        for b in b"GET /v1/realtime HTTP/1.1\r\nHost: x\r\n":
            if reader.at_eof():
                break
            writer.write(bytes([b]))
            await asyncio.sleep(0.05)
        await closed_by_server(reader, 5)
        writer.close()


async def test_idle_keep_alive_connection_times_out():
    """After a response, an idle keep-alive connection is closed after idle_timeout."""
    limits = Limits(idle_timeout=0.5, handshake_timeout=30)
    async with LocalServer(port=0, engines=shared_engines(), limits=limits) as srv:
        reader, writer = await asyncio.open_connection(srv.host, srv.port)
        writer.write(
            b"POST /v1/realtime/client_secrets HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        )
        data = await closed_by_server(reader, 5)
        assert data.startswith(b"HTTP/1.1 200"), data[:100]
        writer.close()


async def test_connection_limit_refuses_with_503():
    """Past max_connections a connection gets HTTP 503 and is closed; sessions past
    max_sessions get 503 to the WebSocket handshake."""
    limits = Limits(max_connections=3, handshake_timeout=30, max_sessions=1)
    async with LocalServer(port=0, engines=shared_engines(), limits=limits) as srv:
        idle = [await asyncio.open_connection(srv.host, srv.port) for _ in range(3)]
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection(srv.host, srv.port)
        writer.write(b"GET /v1/realtime HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await closed_by_server(reader, 5)
        assert data.startswith(b"HTTP/1.1 503"), data[:100]
        writer.close()
        for _, w in idle:
            w.close()
        await asyncio.sleep(0.2)
        async with connect(f"{srv.url}/realtime?model=x") as first:
            await first.recv()
            with pytest.raises(InvalidStatus) as info:
                async with connect(f"{srv.url}/realtime?model=x"):
                    pass
            assert info.value.response.status_code == 503
        await asyncio.sleep(0.2)
        async with connect(f"{srv.url}/realtime?model=x") as again:  # a slot is free again
            await again.recv()


SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "websockets.server", "asyncio")


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.saved: list[tuple[logging.Logger, int]] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self) -> list[str]:
        return [self.format(r) for r in self.records]

    def attach(self) -> None:
        """Collect every record of the server's loggers at DEBUG (call once it started)."""
        for name in SERVER_LOGGERS:
            logger = logging.getLogger(name)
            self.saved.append((logger, logger.level))
            logger.setLevel(logging.DEBUG)
            logger.addHandler(self)


@pytest.fixture
def server_log():
    """Every record of the server's loggers, at DEBUG, as uvicorn would print them."""
    handler = ListHandler()
    yield handler
    for logger, level in handler.saved:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_refused_websockets_log_no_handshake_noise(server_log):
    """A refused WebSocket (bad key) is refused properly: no 'without completing handshake'."""
    async with LocalServer(port=0, engines=shared_engines(), api_key="sk-k") as srv:
        server_log.attach()
        for _ in range(3):
            with pytest.raises(InvalidStatus) as info:
                async with connect(f"{srv.url}/realtime?model=x"):
                    pass
            assert info.value.response.status_code == 401
    text = "\n".join(server_log.lines())
    assert "without completing handshake" not in text
    assert "Traceback" not in text


async def test_credentials_never_logged_even_at_debug(server_log):
    """Bearer keys, api-key headers and the key subprotocol never reach a log line."""
    key = "sk-supersecret-0123456789"
    async with LocalServer(port=0, engines=shared_engines(), api_key=key) as srv:
        server_log.attach()
        async with connect(
            f"{srv.url}/realtime?model=x", additional_headers={"Authorization": f"Bearer {key}"}
        ) as ws:
            await ws.recv()
        async with connect(
            f"{srv.url}/realtime?model=x",
            subprotocols=["realtime", f"openai-insecure-api-key.{key}"],  # type: ignore[list-item]
        ) as ws:
            await ws.recv()
        with pytest.raises(InvalidStatus):
            async with connect(
                f"{srv.url}/realtime?model=x",
                additional_headers={"Authorization": f"Bearer {key}x"},
            ):
                pass
        async with httpx.AsyncClient() as http:
            r = await http.post(
                f"{srv.http_url}/realtime/client_secrets", headers={"api-key": key}, json={}
            )
            eph = r.json()["value"]
            async with connect(
                f"{srv.url}/realtime?model=x",
                additional_headers={"Authorization": f"Bearer {eph}"},
            ) as ws:
                await ws.recv()
    assert any(r.levelno == logging.DEBUG for r in server_log.records), "no DEBUG line"
    lines = server_log.lines()
    assert any("authorization" in line.lower() for line in lines)  # headers were logged
    leaked = [line for line in lines if key in line or eph in line]
    assert not leaked, leaked[:3]


async def test_port_in_use_is_a_startup_error():
    """A port already bound gives StartupError (not OSError or a bare exception)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    try:
        srv = LocalServer(port=sock.getsockname()[1], engines=shared_engines())
        with pytest.raises(StartupError) as info:
            await srv.start()
        assert not isinstance(info.value, OSError)
        assert str(sock.getsockname()[1]) in str(info.value)
    finally:
        sock.close()


_FD_SERVER = textwrap.dedent(
    """
    import asyncio, logging, resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    from realtime.server import Limits, LocalServer

    async def main():
        limits = Limits(handshake_timeout=30, max_connections=10_000, log_interval=60)
        async with LocalServer(port=0, limits=limits) as srv:
            print(srv.port, flush=True)
            await asyncio.sleep(8)

    asyncio.run(main())
    """
)


def test_out_of_file_descriptors_is_logged_at_a_bounded_rate(tmp_path):
    """With the fd limit reached, accept failures are logged a few times, not per attempt."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _FD_SERVER],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    socks: list[socket.socket] = []
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline and len(socks) < 150:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            socks.append(s)
            time.sleep(0.01)
        time.sleep(2)
    finally:
        for s in socks:
            s.close()
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    text = err.decode(errors="replace")
    assert text.count("Traceback") <= 2, text[:2000]
    assert len(text) < 20_000, len(text)
    assert "file descriptors" in text or "out of system resource" in text, text[:2000]


async def test_oversized_headers_and_stalled_bodies():
    """Headers past max_header_bytes get 431; a body that stalls body_timeout gets 408."""
    limits = Limits(max_header_bytes=4096, body_timeout=0.5)
    async with LocalServer(port=0, engines=shared_engines(), limits=limits) as srv:
        reader, writer = await asyncio.open_connection(srv.host, srv.port)
        writer.write(b"GET /v1/realtime HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8192 + b"\r\n\r\n")
        data = await closed_by_server(reader, 5)
        assert data.startswith(b"HTTP/1.1 431"), data[:100]
        writer.close()
        for path, ctype, start in (
            (b"/v1/audio/speech", b"application/json", b"{"),
            (b"/v1/audio/transcriptions", b"multipart/form-data; boundary=b", b"--b\r\n"),
        ):
            reader, writer = await asyncio.open_connection(srv.host, srv.port)
            writer.write(
                b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: " + ctype
                + b"\r\nContent-Length: 1000\r\n\r\n" + start
            )  # fmt: skip
            status = await asyncio.wait_for(reader.readline(), 5)
            assert status.startswith(b"HTTP/1.1 408"), (path, status)
            writer.close()
