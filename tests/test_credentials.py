"""One credential layer for the realtime connection and the REST client (realtime.credentials)."""

# ruff: noqa: F811  (pytest fixtures imported from rest_server are redefined as arguments)
from __future__ import annotations

import pytest
from rest_server import (  # noqa: F401 (fixtures)
    API_KEY,
    RestTestServer,
    rest_server,
    rest_server_module,
)

from realtime.connection import resolve_endpoint
from realtime.credentials import (
    Credential,
    Secret,
    azure_origin,
    choose_credential,
    rest_base_from_realtime,
)
from realtime.exceptions import ConfigError
from realtime.rest import AsyncAudioClient, AzureConfig, Transcription
from realtime.rest._http import Endpoint

NO_ENV: dict[str, str] = {}


async def test_callable_key_on_rest_is_called(rest_server: RestTestServer) -> None:
    """A sync or async key provider given to the REST client is called, not sent as its repr."""
    calls: list[str] = []

    def sync_key() -> str:
        calls.append("sync")
        return API_KEY

    async def async_key() -> str:
        calls.append("async")
        return API_KEY

    for key in (sync_key, async_key):
        async with AsyncAudioClient(key, rest_server.base_url) as client:
            result = await client.transcribe(b"RIFFxxxxWAVE")
        assert isinstance(result, Transcription)
        sent = rest_server.state.requests[-1].headers["authorization"]
        assert sent == f"Bearer {API_KEY}"
    assert calls == ["sync", "async"]
    assert "function" not in repr(Endpoint.resolve(sync_key, rest_server.base_url, None))


async def test_azure_ad_token_on_rest(rest_server: RestTestServer) -> None:
    """An Azure AD token goes as Authorization: Bearer (no api-key header), a provider too."""
    rest_server.state.keys.add("aad-token-1")
    az = AzureConfig(
        deployment="dep1",
        endpoint=rest_server.origin + "/openai/v1",  # a suffix is reduced to the origin
        api_version="2024-06-01",
        ad_token=lambda: "aad-token-1",
    )
    async with AsyncAudioClient(azure=az) as client:
        await client.transcribe(b"RIFFxxxxWAVE")
    req = rest_server.state.requests[-1]
    assert req.path == "/openai/deployments/dep1/audio/transcriptions"
    assert req.headers["authorization"] == "Bearer aad-token-1"
    assert "api-key" not in req.headers


@pytest.mark.parametrize(
    ("url", "needs_key"),
    [
        ("http://127.0.0.1:8765/v1", False),
        ("http://localhost:8765/v1", False),
        ("http://[::1]:8765/v1", False),
        ("https://api.openai.com/v1", True),
        ("http://myserver.internal:8765/v1", True),
        ("https://example.test/v1", True),
    ],
)
def test_same_key_rule_for_realtime_and_rest(
    url: str, needs_key: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which URLs need a key is decided once: the WebSocket and REST sides agree."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    outcomes = []
    for resolve in (
        lambda: resolve_endpoint(url=url, env=NO_ENV),
        lambda: Endpoint.resolve(None, url, None),
    ):
        try:
            resolve()
            outcomes.append(False)
        except ConfigError as exc:
            assert "OPENAI_API_KEY" in str(exc)
            outcomes.append(True)
    assert outcomes == [needs_key, needs_key]


async def test_same_headers_for_realtime_and_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same key gives the same header on both sides (OpenAI, Azure key, Azure AD token)."""
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    ws = resolve_endpoint(url="wss://example.test/v1", api_key="sk-1", env=NO_ENV)
    rest = Endpoint.resolve("sk-1", "https://example.test/v1", None)
    assert ("Authorization", "Bearer sk-1") in await ws.headers()
    assert (await rest.headers())[0] == {"Authorization": "Bearer sk-1"}

    az_ws = resolve_endpoint(
        "rt", azure_endpoint="https://x.openai.azure.com/openai/v1", api_key="az-1", env=NO_ENV
    )
    az_rest = Endpoint.resolve(
        "az-1", None, AzureConfig(deployment="tts", endpoint="https://x.openai.azure.com/openai")
    )
    assert ("api-key", "az-1") in await az_ws.headers()
    assert (await az_rest.headers())[0] == {"api-key": "az-1"}
    assert az_ws.url.startswith("wss://x.openai.azure.com/openai/v1/realtime")
    assert az_rest.base_url == "https://x.openai.azure.com"

    tok_ws = resolve_endpoint(
        "rt", azure_endpoint="https://x.openai.azure.com", azure_ad_token="tok", env=NO_ENV
    )
    tok_rest = Endpoint.resolve(
        None,
        None,
        AzureConfig(deployment="tts", endpoint="https://x.openai.azure.com", ad_token="tok"),
    )
    assert ("Authorization", "Bearer tok") in await tok_ws.headers()
    assert (await tok_rest.headers())[0] == {"Authorization": "Bearer tok"}


async def test_credential_choice_and_redaction() -> None:
    """Argument beats environment; Azure reads its own variable; nothing shows the key."""
    env = {"OPENAI_API_KEY": "sk-env", "AZURE_OPENAI_API_KEY": "az-env"}
    assert await choose_credential("sk-arg", env=env).headers() == [
        ("Authorization", "Bearer sk-arg")
    ]
    assert await choose_credential(None, env=env).headers() == [("Authorization", "Bearer sk-env")]
    assert await choose_credential(None, azure=True, env=env).headers() == [("api-key", "az-env")]
    assert choose_credential(None, env=NO_ENV) == Credential(None, "Authorization")
    assert "sk-arg" not in repr(choose_credential("sk-arg", env=env))
    assert Secret(lambda: "k").static is None and Secret("k").static == "k"
    with pytest.raises(ConfigError, match="non-empty string"):
        await Secret(lambda: "").get()


def test_url_forms() -> None:
    """Azure endpoints lose their /openai suffixes; realtime URLs map to their REST base."""
    for form in ("https://r.openai.azure.com", "https://r.openai.azure.com/openai/v1/realtime"):
        assert azure_origin(form) == "https://r.openai.azure.com"
    assert rest_base_from_realtime("wss://h.test/v1/realtime") == "https://h.test/v1"
    assert rest_base_from_realtime("ws://127.0.0.1:8765/v1") == "http://127.0.0.1:8765/v1"
