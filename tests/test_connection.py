"""Tests of realtime.connection: endpoint URLs, headers and key handling."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import pytest

from realtime.connection import Endpoint, Secret, is_local_url, resolve_endpoint
from realtime.exceptions import ConfigError

KEY = "sk-test-SECRET-0123456789"


def query(url: str) -> dict[str, list[str]]:
    """The parsed query string of a URL."""
    return parse_qs(urlsplit(url).query)


async def test_openai_ga_default() -> None:
    """GA: wss://api.openai.com/v1/realtime?model=..., bearer key, no beta header."""
    ep = resolve_endpoint("gpt-realtime", api_key=KEY, env={})
    assert ep.url == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    assert ep.provider == "openai"
    assert await ep.headers() == [("Authorization", f"Bearer {KEY}")]


async def test_openai_beta_adds_header() -> None:
    """Beta dialect adds OpenAI-Beta: realtime=v1."""
    ep = resolve_endpoint("gpt-4o-realtime-preview", api_key=KEY, dialect="beta", env={})
    headers = dict(await ep.headers())
    assert headers["OpenAI-Beta"] == "realtime=v1"
    assert query(ep.url)["model"] == ["gpt-4o-realtime-preview"]


async def test_key_from_environment() -> None:
    """OPENAI_API_KEY is used when no key is passed."""
    ep = resolve_endpoint(env={"OPENAI_API_KEY": KEY})
    assert ("Authorization", f"Bearer {KEY}") in await ep.headers()


async def test_key_from_sync_and_async_callables_called_per_connection() -> None:
    """A key provider (sync or async) is called for every set of headers."""
    calls: list[int] = []

    def sync_key() -> str:
        calls.append(1)
        return f"ek_{len(calls)}"

    async def async_key() -> str:
        return "ek_async"

    ep = resolve_endpoint(api_key=sync_key, env={})
    assert dict(await ep.headers())["Authorization"] == "Bearer ek_1"
    assert dict(await ep.headers())["Authorization"] == "Bearer ek_2"
    ep2 = resolve_endpoint(api_key=async_key, env={})
    assert dict(await ep2.headers())["Authorization"] == "Bearer ek_async"


async def test_provider_returning_nothing_is_config_error() -> None:
    """A provider returning an empty value raises ConfigError."""
    ep = resolve_endpoint(api_key=lambda: "", env={})
    with pytest.raises(ConfigError):
        await ep.headers()


def test_base_url_from_argument_and_env() -> None:
    """base_url / OPENAI_BASE_URL: https -> wss and /realtime appended."""
    ep = resolve_endpoint("m", base_url="https://proxy.example.com/v1", api_key=KEY, env={})
    assert ep.url == "wss://proxy.example.com/v1/realtime?model=m"
    ep = resolve_endpoint(
        "m", env={"OPENAI_BASE_URL": "http://gw.example.com/v1/", "OPENAI_API_KEY": KEY}
    )
    assert ep.url == "ws://gw.example.com/v1/realtime?model=m"


def test_realtime_url_override_env() -> None:
    """OPENAI_REALTIME_URL overrides the realtime URL; an existing model is kept."""
    env = {"OPENAI_REALTIME_URL": "wss://rt.example.com/realtime?model=x", "OPENAI_API_KEY": KEY}
    ep = resolve_endpoint("gpt-realtime", env=env)
    assert ep.url == "wss://rt.example.com/realtime?model=x"
    assert ep.provider == "custom"


def test_custom_url_forms() -> None:
    """url= accepts ws/wss/http/https, base or full realtime paths."""
    ep = resolve_endpoint("m", url="ws://127.0.0.1:9000/v1", env={})
    assert ep.url == "ws://127.0.0.1:9000/v1/realtime?model=m"
    assert ep.key is None
    ep = resolve_endpoint("m", url="http://localhost:9000/v1/realtime", env={})
    assert ep.url == "ws://localhost:9000/v1/realtime?model=m"
    ep = resolve_endpoint(None, url="https://example.com/realtime", api_key=KEY, env={})
    assert ep.url == "wss://example.com/realtime"
    with pytest.raises(ConfigError, match="not a WebSocket"):
        resolve_endpoint(url="ftp://example.com/x", env={})


async def test_azure_ga_form_with_api_key_header() -> None:
    """Azure GA: /openai/v1/realtime?model=<deployment> and an api-key header."""
    ep = resolve_endpoint(
        "gpt-realtime",
        azure_endpoint="https://res.openai.azure.com/",
        azure_deployment="my-deploy",
        api_key=KEY,
        env={},
    )
    assert ep.url == "wss://res.openai.azure.com/openai/v1/realtime?model=my-deploy"
    assert ep.provider == "azure"
    assert await ep.headers() == [("api-key", KEY)]


async def test_azure_preview_form_and_bearer_token() -> None:
    """Azure preview: api-version + deployment; an AD token goes in Authorization."""
    env = {
        "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com",
        "OPENAI_API_VERSION": "2024-10-01-preview",
    }
    ep = resolve_endpoint("dep", azure_ad_token=lambda: "aad-token", dialect="beta", env=env)
    parts = urlsplit(ep.url)
    assert parts.path == "/openai/realtime"
    assert query(ep.url) == {"api-version": ["2024-10-01-preview"], "deployment": ["dep"]}
    headers = dict(await ep.headers())
    assert headers["Authorization"] == "Bearer aad-token"
    assert headers["OpenAI-Beta"] == "realtime=v1"


async def test_azure_key_from_env() -> None:
    """AZURE_OPENAI_API_KEY is used for Azure."""
    env = {"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com", "AZURE_OPENAI_API_KEY": KEY}
    ep = resolve_endpoint("dep", env=env)
    assert await ep.headers() == [("api-key", KEY)]


def test_missing_key_for_remote_url_is_clear_error() -> None:
    """No key and a non-local URL: ConfigError naming the env var; local needs none."""
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        resolve_endpoint(env={})
    with pytest.raises(ConfigError, match="AZURE_OPENAI_API_KEY"):
        resolve_endpoint("d", azure_endpoint="https://r.openai.azure.com", env={})
    assert resolve_endpoint(url="ws://localhost:1/v1", env={}).key is None
    assert resolve_endpoint(url="ws://[::1]:1/v1", env={}).key is None


def test_is_local_url() -> None:
    """Loopback hosts are local; others are not."""
    assert is_local_url("ws://127.0.0.5:1")
    assert is_local_url("ws://app.localhost/v1")
    assert not is_local_url("wss://api.openai.com/v1")
    assert not is_local_url("ws://10.0.0.1/v1")


def test_bad_dialect_and_missing_deployment() -> None:
    """Invalid dialect and Azure without a deployment raise ConfigError."""
    with pytest.raises(ConfigError, match="dialect"):
        resolve_endpoint(api_key=KEY, dialect="v2", env={})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="deployment"):
        resolve_endpoint(None, azure_endpoint="https://r.openai.azure.com", api_key=KEY, env={})


def test_key_never_in_repr_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    """Secrets and endpoints are redacted in repr/str; errors do not echo URLs' queries."""
    caplog.set_level(logging.DEBUG)
    ep = resolve_endpoint(api_key=KEY, extra_headers={"X-Extra": KEY}, env={})
    assert KEY not in repr(ep) and KEY not in str(ep)
    assert KEY not in repr(Secret(KEY)) and KEY not in str(Secret(KEY))
    logging.getLogger("test").info("endpoint %r", ep)
    with pytest.raises(ConfigError) as info:
        resolve_endpoint(url=f"ftp://example.com/x?key={KEY}", env={})
    assert KEY not in str(info.value)
    with pytest.raises(ConfigError) as info2:
        resolve_endpoint(url=f"wss://example.com/realtime?key={KEY}", env={})
    assert KEY not in str(info2.value)
    assert KEY not in caplog.text


def test_endpoint_is_frozen_value() -> None:
    """Endpoints compare by value."""
    a = resolve_endpoint(api_key=KEY, env={})
    b = resolve_endpoint(api_key=KEY, env={})
    assert a == b
    assert isinstance(a, Endpoint)
