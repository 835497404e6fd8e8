"""Tests for realtime.transport: the WebSocket on websockets' sans-I/O API, over loopback.

Servers are websockets' own asyncio server (raw frames written to its socket where a
test needs a malformed one) and, for the dead-link test, a sans-I/O server that
completes the handshake and then never answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

from realtime.connection import resolve_endpoint
from realtime.exceptions import AuthenticationError, ConfigError, ConnectionClosed, ConnectionError
from realtime.transport import (
    FrameTransport,
    Message,
    WebSocketTransport,
    open_connection,
)

KEY = "sk-test-very-secret-key-1234567890"

ServerHandler = Callable[[ServerConnection], Awaitable[None]]


async def _serve(handler: ServerHandler, **kwargs: Any) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, **kwargs) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/v1/realtime?model=m"


def _raw(conn: ServerConnection, opcode: Opcode, payload: bytes, *, fin: bool = True) -> None:
    """Write one unmasked frame straight to the server's socket."""
    conn.transport.write(Frame(opcode, payload, fin=fin).serialize(mask=False))


async def _open(url: str, **kwargs: Any) -> WebSocketTransport:
    return await open_connection(resolve_endpoint(url=url, api_key=KEY), **kwargs)


class Silent(asyncio.Protocol):
    """A server that completes the handshake, then never reads or answers again."""

    def __init__(self) -> None:
        self.ws = ServerProtocol()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        if self.ws.state.name != "CONNECTING":
            return  # never answers a ping
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Request):
                self.ws.send_response(self.ws.accept(event))
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)


async def _drain_all(t: WebSocketTransport) -> tuple[list[Message], ConnectionClosed]:
    got: list[Message] = []
    while True:
        try:
            got.extend(await asyncio.wait_for(t.receive(), 5))
        except ConnectionClosed as exc:
            return got, exc


async def test_messages_in_order_and_send() -> None:
    """Messages arrive in order (batched), sends reach the server, close is clean."""
    seen: list[str] = []

    async def handler(conn: ServerConnection) -> None:
        for i in range(50):
            await conn.send(f'{{"type":"x","n":{i}}}')
        await conn.send("ünïcode ✓")
        seen.append(str(await conn.recv()))
        await conn.close(1000, "bye")

    async for url in _serve(handler):
        t = await _open(url)
        assert isinstance(t, FrameTransport)
        assert KEY not in repr(t) and "model=m" not in repr(t) and "open" in repr(t)
        await t.send('{"type":"hello"}')
        got, end = await _drain_all(t)
        assert got[:50] == [f'{{"type":"x","n":{i}}}'.encode() for i in range(50)]
        assert got[50] == "ünïcode ✓".encode()
        assert (end.code, t.close_code, t.close_reason) == (1000, 1000, "bye")
        assert t.closed
        assert seen == ['{"type":"hello"}']
        with pytest.raises(ConnectionClosed):
            await t.send("late")


async def test_unencodable_text_is_a_config_error_and_the_link_stays_up() -> None:
    """A lone surrogate cannot go out as UTF-8: ConfigError, and the connection is unharmed."""
    seen: list[str] = []

    async def handler(conn: ServerConnection) -> None:
        seen.append(str(await conn.recv()))
        await conn.close()

    async for url in _serve(handler):
        t = await _open(url)
        with pytest.raises(ConfigError, match="Unicode"):
            await t.send('{"text":"\ud800"}')
        await t.send('{"text":"fine"}')
        _, end = await _drain_all(t)
        assert seen == ['{"text":"fine"}'] and end.code == 1000


@pytest.mark.parametrize("fragmented", [False, True])
async def test_invalid_utf8_fails_with_1007(fragmented: bool) -> None:
    """A text message with invalid UTF-8 fails the connection with close code 1007."""
    server_saw: list[int | None] = []

    async def handler(conn: ServerConnection) -> None:
        await conn.send('{"type":"before"}')
        if fragmented:  # the bad sequence split across two fragments
            _raw(conn, Opcode.TEXT, b'{"type":"a","t":"\xe2\x82', fin=False)
            _raw(conn, Opcode.CONT, b'\x28"}')
        else:
            _raw(conn, Opcode.TEXT, b'{"type":"a","t":"\xff"}')
        _raw(conn, Opcode.TEXT, b'{"type":"after"}')
        await conn.wait_closed()
        server_saw.append(conn.protocol.close_code)

    async for url in _serve(handler):
        t = await _open(url)
        got, end = await _drain_all(t)
        assert got == [b'{"type":"before"}']  # neither the bad message nor what follows
        assert end.code == 1007 and t.close_code == 1007
        assert "UTF-8" in end.reason
        await asyncio.sleep(0.05)
        assert server_saw == [1007]


async def test_valid_utf8_split_across_fragments() -> None:
    """A multi-byte character split between fragments is valid and delivered whole."""

    async def handler(conn: ServerConnection) -> None:
        _raw(conn, Opcode.TEXT, b'{"t":"\xe2\x82', fin=False)
        _raw(conn, Opcode.CONT, b'\xac"}')
        await conn.close()

    async for url in _serve(handler):
        t = await _open(url)
        got, end = await _drain_all(t)
        assert got == ['{"t":"€"}'.encode()]
        assert end.code == 1000


async def test_back_pressure_pauses_reading_and_drops_nothing() -> None:
    """A consumer that stops receiving: reading pauses at max_buffer; nothing is lost."""
    n, size, limit = 3000, 10_000, 64 * 1024
    sent = asyncio.Event()

    async def handler(conn: ServerConnection) -> None:
        for i in range(n):
            await conn.send(f"{i:08d}" + "x" * (size - 8))
        sent.set()
        await conn.close()

    async for url in _serve(handler):
        t = await _open(url, max_buffer=limit)
        await asyncio.sleep(0.3)  # the consumer is asleep; the server keeps sending
        assert t.reading_paused
        assert not sent.is_set()  # TCP pushed back on the server
        # bounded: the limit plus at most one socket read (256 KiB)
        assert limit <= t.buffered <= limit + 256 * 1024 + size
        got, end = await _drain_all(t)
        assert [int(m[:8]) for m in got] == list(range(n))
        assert end.code == 1000
        assert t.pauses > 1  # paused again and again, resumed each time


async def test_dead_link_noticed_by_keepalive() -> None:
    """A server that completes the handshake and then goes silent is declared dead."""
    loop = asyncio.get_running_loop()

    server = await loop.create_server(Silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        t = await _open(f"ws://127.0.0.1:{port}/", ping_interval=0.1, ping_timeout=0.2)
        start = loop.time()
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(t.receive(), 3)
        assert info.value.code == 1006 and "keepalive" in info.value.reason
        assert loop.time() - start < 1.5
    finally:
        server.close()


async def test_keepalive_defaults_notice_within_10_s() -> None:
    """Defaults suited to voice: ping interval + timeout is at most 10 s."""
    async for url in _serve(lambda c: c.wait_closed()):
        t = await _open(url)
        assert t.ping_interval is not None and t.ping_timeout is not None
        assert t.ping_interval + t.ping_timeout <= 10
        await t.close()


async def test_pings_answered_keep_a_live_link_open() -> None:
    """A live server answering pings keeps the connection open across many intervals."""

    async def handler(conn: ServerConnection) -> None:
        await conn.wait_closed()

    async for url in _serve(handler, ping_interval=None):
        t = await _open(url, ping_interval=0.05, ping_timeout=0.1)
        await asyncio.sleep(0.6)
        assert not t.closed
        await t.close()
        assert t.close_code == 1000


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationError), (403, AuthenticationError), (500, ConnectionError)],
)
async def test_handshake_errors(
    status: int, error: type[Exception], caplog: pytest.LogCaptureFixture
) -> None:
    """HTTP 401/403 -> AuthenticationError, others -> ConnectionError; the key never shows."""

    def refuse(conn: ServerConnection, request: Request) -> Response:
        return conn.respond(status, "no\n")

    caplog.set_level(logging.DEBUG)
    async for url in _serve(lambda c: c.wait_closed(), process_request=refuse):
        with pytest.raises(error) as info:
            await _open(url)
        assert str(status) in str(info.value)
        assert KEY not in str(info.value) and "model=m" not in str(info.value)
        ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("realtime"))
        assert "Authorization: [redacted]" in ours  # the handshake was logged, redacted
        assert KEY not in ours


async def test_connection_refused_and_timeout() -> None:
    """Refused connections and handshake timeouts are ConnectionError naming the URL only."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)  # never answers
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ConnectionError, match="timed out"):
            await _open(f"ws://127.0.0.1:{port}/x?key={KEY}", connect_timeout=0.2)
    finally:
        server.close()
        await server.wait_closed()
    with pytest.raises(ConnectionError) as info:
        await _open(f"ws://127.0.0.1:{port}/x?key={KEY}")
    assert KEY not in str(info.value)


async def test_close_code_4001_reported() -> None:
    """A server closing with 4001 (credentials refused): the code reaches the session."""

    async def handler(conn: ServerConnection) -> None:
        await conn.close(4001, "invalid key")

    async for url in _serve(handler):
        t = await _open(url)
        _, end = await _drain_all(t)
        assert (end.code, end.reason) == (4001, "invalid key")
        assert (t.close_code, t.close_reason) == (4001, "invalid key")


async def test_cancelled_close_still_closes() -> None:
    """close() cancelled by the caller (a stalled server) leaves the transport closed."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        t = await _open(f"ws://127.0.0.1:{port}/", close_timeout=30)
        task = asyncio.ensure_future(t.close())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert t.closed and t.close_code == 1006
        with pytest.raises(ConnectionClosed):
            await t.receive()
    finally:
        server.close()


async def test_close_timeout_bounds_the_closing_handshake() -> None:
    """A server that never answers the close frame: close() returns after close_timeout."""
    loop = asyncio.get_running_loop()

    server = await loop.create_server(Silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        t = await _open(f"ws://127.0.0.1:{port}/", close_timeout=0.2)
        start = loop.time()
        await t.close()
        assert t.closed and t.close_code == 1006 and loop.time() - start < 1.5
    finally:
        server.close()


async def test_message_over_max_size_fails_with_1009() -> None:
    """A message larger than max_size fails the connection with 1009 (websockets' check)."""

    async def handler(conn: ServerConnection) -> None:
        await conn.send("small")
        await conn.send("x" * 5000)
        await conn.wait_closed()

    async for url in _serve(handler):
        t = await _open(url, max_size=1000)
        got, end = await _drain_all(t)
        assert got == [b"small"] and end.code == 1009


async def _proxy(target_port: int, seen: list[bytes], status: int = 200) -> asyncio.Server:
    """A minimal HTTP CONNECT proxy tunnelling every request to ``target_port``."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        if status != 200:
            writer.write(f"HTTP/1.1 {status} Nope\r\nContent-Length: 0\r\n\r\n".encode())
            await writer.drain()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def test_http_connect_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-local URL goes through the environment's HTTP proxy (CONNECT, basic auth)."""

    async def handler(conn: ServerConnection) -> None:
        await conn.send('{"type":"through"}')
        await conn.close()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        seen: list[bytes] = []
        proxy = await _proxy(port, seen)
        pport = proxy.sockets[0].getsockname()[1]
        for scheme in ("no", "all", "ws", "wss", "socks", "https", "http"):
            monkeypatch.delenv(f"{scheme}_proxy", raising=False)
            monkeypatch.delenv(f"{scheme.upper()}_PROXY", raising=False)
        monkeypatch.setenv("http_proxy", f"http://user:pa%3Ass@127.0.0.1:{pport}")
        try:
            t = await _open("ws://realtime.example.test/v1/realtime?model=m")
            got, end = await _drain_all(t)
            assert got == [b'{"type":"through"}'] and end.code == 1000
            assert seen[0].startswith(b"CONNECT realtime.example.test:80 HTTP/1.1\r\n")
            assert b"Proxy-Authorization: Basic dXNlcjpwYTpzcw==" in seen[0]  # user:pa:ss
            # a proxy refusing CONNECT: ConnectionError naming the proxy, not its password
            refusing = await _proxy(port, seen, status=407)
            rport = refusing.sockets[0].getsockname()[1]
            monkeypatch.setenv("http_proxy", f"http://user:secretpw@127.0.0.1:{rport}")
            with pytest.raises(ConnectionError, match="407") as info:
                await _open("ws://realtime.example.test/v1/realtime")
            assert "secretpw" not in str(info.value)
            refusing.close()
            # a SOCKS proxy is named as unsupported; no_proxy bypasses every proxy
            monkeypatch.setenv("socks_proxy", "socks5://user:secretpw@127.0.0.1:1")
            with pytest.raises(ConnectionError, match="unsupported proxy socks5") as info:
                await _open("ws://realtime.example.test/v1/realtime")
            assert "secretpw" not in str(info.value)
            monkeypatch.setenv("no_proxy", "realtime.example.test")
            with pytest.raises(ConnectionError, match="cannot connect") as info:
                await _open("ws://realtime.example.test/v1/realtime", connect_timeout=2)
        finally:
            proxy.close()


async def test_wss_with_tls_verification() -> None:
    """wss:// verifies the server certificate (trusted CA passes, the default store refuses)."""
    import ssl

    import trustme

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def handler(conn: ServerConnection) -> None:
        await conn.send('{"type":"secure"}')
        await conn.close()

    async with serve(handler, "localhost", 0, ssl=server_ctx) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        url = f"wss://localhost:{port}/v1/realtime?model=m"
        t = await _open(url, ssl_context=client_ctx)
        got, end = await _drain_all(t)
        assert got == [b'{"type":"secure"}'] and end.code == 1000
        with pytest.raises(ConnectionError) as info:
            await _open(url)  # an unknown CA
        assert "localhost" in str(info.value) and KEY not in str(info.value)


async def test_session_fails_on_invalid_utf8_with_1007() -> None:
    """Defect #6 through a Session: the frame is not taken for malformed JSON and ignored;
    the connection is failed with 1007 and pending awaits get ConnectionClosed(1007)."""
    import realtime
    from realtime.testing import FakeServer

    async with FakeServer() as server, realtime.connect(url=server.url) as session:
        conn = server.connection
        waiter = asyncio.ensure_future(session.wait_for("never.sent"))
        await asyncio.sleep(0.01)
        assert conn.ws is not None
        _raw(
            conn.ws, Opcode.TEXT, b'{"type":"rate_limits.updated","rate_limits":[],"x":"\xc3\x28"}'
        )
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(waiter, 5)
        assert info.value.code == 1007
        await asyncio.wait_for(conn.closed.wait(), 5)
        assert conn.ws.protocol.close_code == 1007
        assert not session.is_open


async def test_permessage_deflate_when_asked() -> None:
    """compression="deflate" negotiates permessage-deflate; messages round-trip."""
    seen: list[str] = []

    async def handler(conn: ServerConnection) -> None:
        seen.append(
            conn.request.headers.get("Sec-WebSocket-Extensions", "") if conn.request else ""
        )
        await conn.send('{"type":"' + "z" * 5000 + '"}')
        seen.append(str(await conn.recv()))
        await conn.close()

    async for url in _serve(handler, compression="deflate"):
        t = await _open(url, compression="deflate")
        assert t.response is not None
        assert "permessage-deflate" in t.response.headers.get("Sec-WebSocket-Extensions", "")
        await t.send("hi" * 1000)
        got, end = await _drain_all(t)
        assert got == [('{"type":"' + "z" * 5000 + '"}').encode()] and end.code == 1000
        assert "permessage-deflate" in seen[0] and seen[1] == "hi" * 1000
        with pytest.raises(ConfigError):
            await _open(url, compression="brotli")


async def test_close_while_reading_is_paused_completes_the_handshake() -> None:
    """Closing with reading paused (a stalled consumer) still reads the server's close."""

    async def handler(conn: ServerConnection) -> None:
        try:
            for i in range(2000):
                await conn.send(f"{i:06d}" + "x" * 2000)
        except Exception:
            pass
        await conn.wait_closed()

    async for url in _serve(handler):
        t = await _open(url, max_buffer=16 * 1024, close_timeout=10)
        await _until_paused(t)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await t.close(1000, "done")
        assert t.close_code == 1000 and loop.time() - start < 5  # not the close timeout


async def _until_paused(t: WebSocketTransport) -> None:
    for _ in range(500):
        if t.reading_paused:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("reading never paused")


async def test_stalled_consumer_is_not_mistaken_for_a_dead_link() -> None:
    """Reading paused for longer than the ping timeout: the pong cannot be read, and the
    connection is not declared dead for it."""
    n = 500

    async def handler(conn: ServerConnection) -> None:
        for i in range(n):
            await conn.send(f"{i:06d}" + "y" * 4000)
        await conn.close()

    async for url in _serve(handler):
        t = await _open(url, max_buffer=16 * 1024, ping_interval=0.05, ping_timeout=0.1)
        await _until_paused(t)
        await asyncio.sleep(0.6)  # several ping timeouts while paused
        assert not t.closed
        got, end = await _drain_all(t)
        assert [int(m[:6]) for m in got] == list(range(n)) and end.code == 1000
