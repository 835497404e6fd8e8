"""The console's server side without a browser: page and assets, ephemeral secrets, the
upstream relay (a second local server holding a key), TLS, and the ``serve`` options."""

from __future__ import annotations

import re
import ssl
from importlib import resources
from pathlib import Path

import httpx
import pytest

from realtime.cli import main as cli_main
from realtime.server import LocalServer
from realtime.server.console import OPENAI_BASE_URL, Upstream
from tests.browser_kit import make_cert
from tests.server_kit import StrictClient, shared_engines
from tests.webrtc_kit import RawPeer

ASSETS = ("index.html", "console.js", "console.css")


def test_assets_ship_in_the_package() -> None:
    """The page is package data (the wheel ships realtime/ whole): no build step, no CDN."""
    folder = resources.files("realtime.server") / "console"
    for name in ASSETS:
        text = (folder / name).read_text("utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", text), name  # nothing external
        assert "https://" not in text and "http://" not in text, name
    js = (folder / "console.js").read_text("utf-8")
    assert "oai-events" in js and "/console/session" in js


async def test_page_assets_and_minting() -> None:
    async with LocalServer(port=0, engines=shared_engines(), api_key="sk-real") as srv:
        base = srv.http_url.removesuffix("/v1")
        async with httpx.AsyncClient() as http:
            page = await http.get(base + "/")
            assert page.status_code == 200 and "text/html" in page.headers["content-type"]
            assert "sk-real" not in page.text
            for name in ("console.js", "console.css"):
                assert (await http.get(f"{base}/console/{name}")).status_code == 200
            assert (await http.get(base + "/console/../app.py")).status_code == 404
            assert (await http.get(base + "/console/session.py")).status_code == 404
            minted = await http.post(
                base + "/console/session", json={"session": {"instructions": "Hi."}}
            )
            body = minted.json()
            assert body["client_secret"].startswith("ek_") and body["mode"] == "local"
            assert body["calls_url"] == "/v1/realtime/calls"
            assert "sk-real" not in minted.text
            bad = await http.post(base + "/console/session", content=b"{nope")
            assert bad.status_code == 400
        # the secret opens a WebRTC call carrying the session it was minted with
        peer = RawPeer("ga")
        try:
            r = await peer.connect(srv.http_url, key=body["client_secret"], multipart=False)
            assert r.status_code == 201
            created = await peer.until("session.created")
            assert created["session"]["instructions"] == "Hi."
        finally:
            await peer.close()


async def test_upstream_mints_and_relays_with_the_servers_key() -> None:
    key = "sk-upstream-777"
    async with (
        LocalServer(port=0, engines=shared_engines(), api_key=key) as up,
        LocalServer(port=0, engines=shared_engines(), upstream=Upstream(up.http_url, key)) as front,
    ):
        base = front.http_url.removesuffix("/v1")
        async with httpx.AsyncClient() as http:
            minted = await http.post(base + "/console/session", json={})
        body = minted.json()
        assert body["mode"] == "upstream" and body["calls_url"] == "/console/calls"
        assert key not in minted.text
        peer = RawPeer("ga")
        try:
            r = await peer.connect(
                base, path="/console/calls", key=body["client_secret"], multipart=False
            )
            assert r.status_code == 201, r.text
            assert r.headers["location"].startswith("/v1/realtime/calls/")
            await peer.until("session.created")
            assert len(up.state.sessions) == 1 and not front.state.sessions
        finally:
            await peer.close()
        # the real key is refused from the page side, and a bad secret is the upstream's 401
        async with httpx.AsyncClient() as http:
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/sdp"}
            r = await http.post(base + "/console/calls", content="v=0\r\n", headers=headers)
            assert r.status_code == 401
            headers["Authorization"] = "Bearer ek_wrong"
            r = await http.post(base + "/console/calls", content="v=0\r\n", headers=headers)
            assert r.status_code == 401


async def test_unreachable_upstream_is_a_502() -> None:
    upstream = Upstream("http://127.0.0.1:9", "sk-x", timeout=2.0)
    async with LocalServer(port=0, engines=shared_engines(), upstream=upstream) as front:
        base = front.http_url.removesuffix("/v1")
        async with httpx.AsyncClient() as http:
            r = await http.post(base + "/console/session", json={})
        assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_unreachable"


def test_minting_on_a_keyed_server_needs_loopback_or_the_key() -> None:
    from realtime.server.app import ServerState
    from realtime.server.auth import KeyStore
    from realtime.server.console import may_mint

    open_state = ServerState(keys=KeyStore(None))
    assert may_mint("192.0.2.7", None, open_state)
    keyed = ServerState(keys=KeyStore("sk-k"))
    assert may_mint("127.0.0.1", None, keyed) and may_mint("::1", None, keyed)
    assert not may_mint("192.0.2.7", None, keyed)
    assert not may_mint("192.0.2.7", "sk-wrong", keyed)
    assert may_mint("192.0.2.7", "sk-k", keyed)
    secret = keyed.keys.mint(60).value
    assert not may_mint("192.0.2.7", secret, keyed)  # an ephemeral key mints no more


def test_upstream_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    up = Upstream.from_option("openai")
    assert up.base_url == OPENAI_BASE_URL and up.api_key == "sk-env"
    assert "sk-env" not in repr(up)
    assert Upstream.from_option("http://h:1/v1/").base_url == "http://h:1/v1"
    with pytest.raises(ValueError):
        Upstream.from_option("ftp://x")
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        Upstream.from_option("openai")


def test_serve_option_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert cli_main(["serve", "--port", "0", "--upstream", "openai"]) == 2
    assert "OPENAI_API_KEY" in capsys.readouterr().err
    assert cli_main(["serve", "--port", "0", "--tls-cert", "x.pem"]) == 2
    assert "--tls-key" in capsys.readouterr().err


async def test_tls_serves_https_and_wss(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    async with LocalServer(
        port=0, engines=shared_engines(), ssl_certfile=str(cert), ssl_keyfile=str(key)
    ) as srv:
        assert srv.url.startswith("wss://") and srv.http_url.startswith("https://")
        ctx = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(verify=ctx) as http:
            page = await http.get(srv.http_url.removesuffix("/v1") + "/")
            assert page.status_code == 200
        from websockets.asyncio.client import connect

        ws = await connect(f"{srv.url}/realtime?model=gpt-realtime", ssl=ctx)
        client = StrictClient(ws, "ga")
        try:
            await client.until("session.created")
        finally:
            await client.close()
