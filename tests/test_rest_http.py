"""Shared HTTP behaviour of realtime.rest: config, Azure, retries, errors, key hygiene."""

# ruff: noqa: F811  (pytest fixtures imported from rest_server are redefined as arguments)
from __future__ import annotations

import email.utils
import logging
import socket
import time
from collections.abc import AsyncIterator

import pytest
from rest_server import (  # noqa: F401 (fixtures)
    API_KEY,
    RestTestServer,
    error_body,
    rest_server,
    rest_server_module,
)
from starlette.responses import JSONResponse, PlainTextResponse

from realtime.exceptions import APIError, ConfigError
from realtime.rest import AsyncAudioClient, AudioClient, AzureConfig, RetryPolicy, Transcription
from realtime.rest._http import Endpoint, api_error, parse_retry_after, redact

FAST = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.05)


@pytest.fixture
async def client(rest_server: RestTestServer) -> AsyncIterator[AsyncAudioClient]:
    """A client of the test server with quick retries."""
    async with AsyncAudioClient(API_KEY, rest_server.base_url, retry=FAST) as c:
        yield c


# --- configuration ----------------------------------------------------------------------


def test_env_supplies_key_and_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """OPENAI_API_KEY and OPENAI_BASE_URL are used when no arguments are given."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    ep = Endpoint.resolve(None, None, None)
    assert ep.base_url == "http://127.0.0.1:9/v1"
    assert ep.auth_headers() == {"Authorization": "Bearer sk-env"}
    assert ep.url("/audio/speech") == ("http://127.0.0.1:9/v1/audio/speech", {})


def test_arguments_override_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Explicit api_key and base_url win over the environment."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env.invalid/v1")
    ep = Endpoint.resolve("sk-arg", "http://127.0.0.1:1/v1", None)
    assert (ep.base_url, ep.api_key) == ("http://127.0.0.1:1/v1", "sk-arg")


def test_default_url_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a key the OpenAI URL is refused up front; a local base URL is allowed."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        AsyncAudioClient()
    assert Endpoint.resolve(None, "http://127.0.0.1:1/v1", None).auth_headers() == {}
    with pytest.raises(ConfigError, match="http"):
        Endpoint.resolve("k", "ftp://x", None)


def test_azure_profile_urls_and_header(monkeypatch: pytest.MonkeyPatch) -> None:
    """Azure builds deployment URLs with api-version and authenticates with api-key."""
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com/")
    az = AzureConfig(deployment="whisper", api_version="2025-03-01-preview")
    with pytest.raises(ConfigError, match="AZURE_OPENAI_API_KEY"):
        Endpoint.resolve(None, None, az)
    ep = Endpoint.resolve("az-key", None, az)
    assert ep.url("/audio/transcriptions") == (
        "https://res.openai.azure.com/openai/deployments/whisper/audio/transcriptions",
        {"api-version": "2025-03-01-preview"},
    )
    assert ep.url("/realtime/client_secrets")[0] == (
        "https://res.openai.azure.com/openai/v1/realtime/client_secrets"
    )
    assert ep.auth_headers() == {"api-key": "az-key"}
    assert "az-key" not in repr(az) and "az-key" not in repr(ep)


async def test_azure_requests_reach_the_deployment(rest_server: RestTestServer) -> None:
    """A transcription through an Azure profile hits the deployment route with api-key."""
    az = AzureConfig(deployment="dep1", endpoint=rest_server.origin, api_version="2024-06-01")
    async with AsyncAudioClient(API_KEY, azure=az) as c:
        result = await c.transcribe(b"RIFFxxxxWAVE")
    assert isinstance(result, Transcription)
    req = rest_server.state.requests[-1]
    assert req.path == "/openai/deployments/dep1/audio/transcriptions"
    assert req.query == {"api-version": "2024-06-01"}
    assert req.headers["api-key"] == API_KEY and "authorization" not in req.headers


# --- retries ----------------------------------------------------------------------------


def test_parse_retry_after_forms() -> None:
    """Retry-After in seconds, as an HTTP date, and retry-after-ms are understood."""
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    got = parse_retry_after({"retry-after": date}, now=now)
    assert got is not None and 28.5 <= got <= 30.5
    assert parse_retry_after({"retry-after": email.utils.formatdate(now - 60, usegmt=True)}) == 0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_retry_policy_bounds() -> None:
    """Backoff grows and is capped; attempts and the total wait are bounded."""
    p = RetryPolicy(max_retries=3, initial_delay=1.0, max_delay=3.0, max_total_wait=5.0)
    d0, d1, d2 = (p.delay(i, None, 0.0) for i in range(3))
    assert d0 is not None and d1 is not None and d2 is not None
    assert 0.75 <= d0 <= 1.0 and 1.5 <= d1 <= 2.0 and 2.25 <= d2 <= 3.0
    assert p.delay(3, None, 0.0) is None
    assert p.delay(0, 2.0, 0.0) == 2.0
    assert p.delay(1, 4.0, 2.0) is None  # would exceed the total wait budget


async def test_429_with_retry_after_then_success(
    rest_server: RestTestServer,
) -> None:
    """A 429 carrying Retry-After is retried after that delay and the upload is re-sent whole."""
    rest_server.state.push(
        "/audio/transcriptions",
        JSONResponse(
            error_body("Rate limit reached", "requests", "rate_limit_exceeded"),
            status_code=429,
            headers={"Retry-After": "1"},
        ),
    )
    policy = RetryPolicy(max_retries=2, initial_delay=20.0, max_delay=20.0)
    audio = bytes(range(256)) * 1000
    async with AsyncAudioClient(API_KEY, rest_server.base_url, retry=policy) as c:
        start = time.monotonic()
        result = await c.transcribe(audio, filename="a.wav")
        elapsed = time.monotonic() - start
    assert isinstance(result, Transcription)
    assert 0.9 <= elapsed < 10.0  # waited Retry-After (1 s), not the >= 15 s backoff
    first, second = rest_server.state.requests
    assert first.file is not None and second.file is not None
    assert first.file.sha256 == second.file.sha256 and second.file.size == len(audio)


@pytest.mark.parametrize("status", [408, 409, 500, 502, 503])
async def test_retryable_statuses(
    client: AsyncAudioClient, rest_server: RestTestServer, status: int
) -> None:
    """408, 409 and 5xx are retried; the retry succeeds."""
    rest_server.state.push("/realtime/client_secrets", PlainTextResponse("busy", status))
    key = await client.create_client_secret()
    assert key.value.startswith("ek_")
    assert len(rest_server.state.requests) == 2


async def test_retries_are_bounded(client: AsyncAudioClient, rest_server: RestTestServer) -> None:
    """After max_retries the last error is raised with its status and request id."""
    for _ in range(3):
        rest_server.state.push(
            "/realtime/client_secrets",
            JSONResponse(
                error_body("overloaded", "server_error"), 503, headers={"x-request-id": "req_503"}
            ),
        )
    with pytest.raises(APIError) as info:
        await client.create_client_secret()
    assert info.value.status == 503 and info.value.request_id == "req_503"
    assert len(rest_server.state.requests) == 3


async def test_long_retry_after_ends_retries(
    client: AsyncAudioClient, rest_server: RestTestServer
) -> None:
    """A Retry-After beyond the total wait budget is not slept: the 429 is raised at once."""
    rest_server.state.push(
        "/realtime/client_secrets",
        JSONResponse(error_body("slow down", "requests"), 429, headers={"Retry-After": "3600"}),
    )
    start = time.monotonic()
    with pytest.raises(APIError) as info:
        await client.create_client_secret()
    assert info.value.status == 429 and time.monotonic() - start < 2


async def test_400_is_not_retried_and_maps_fields(
    client: AsyncAudioClient, rest_server: RestTestServer
) -> None:
    """A 400 error body becomes an APIError with status, type, code, param, message, request id."""
    rest_server.state.push(
        "/audio/transcriptions",
        JSONResponse(
            error_body("Invalid file format.", "invalid_request_error", "invalid_value", "file"),
            400,
            headers={"x-request-id": "req_abc123"},
        ),
    )
    with pytest.raises(APIError) as info:
        await client.transcribe(b"not audio")
    err = info.value
    assert (err.status, err.type, err.code, err.param) == (
        400,
        "invalid_request_error",
        "invalid_value",
        "file",
    )
    assert err.message == "Invalid file format." and err.request_id == "req_abc123"
    assert "req_abc123" in str(err) and "HTTP 400" in str(err)
    assert len(rest_server.state.requests) == 1


def test_api_error_fallbacks() -> None:
    """Bodies that are not OpenAI error objects still give a useful message."""
    e = api_error(404, {}, b'{"detail": "Not Found"}')
    assert (e.status, e.message) == (404, "Not Found")
    e = api_error(502, {"x-request-id": "r"}, b"<html>bad gateway</html>")
    assert e.message == "<html>bad gateway</html>" and e.request_id == "r"
    e = api_error(503, {}, b"")
    assert e.message == "Service Unavailable"
    e = api_error(400, {}, b'{"error": {"message": "m", "code": 42}}')
    assert e.code == "42"


async def test_connection_refused_is_retried_then_raised() -> None:
    """A refused connection is retried, then raised as an APIError without status."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before use: nothing listens there
    async with AsyncAudioClient(API_KEY, f"http://127.0.0.1:{port}/v1", retry=FAST) as c:
        start = time.monotonic()
        with pytest.raises(APIError) as info:
            await c.create_client_secret()
    assert info.value.status is None and "ConnectError" in str(info.value)
    assert time.monotonic() - start < 5


async def test_read_timeout_is_retried_then_raised(rest_server: RestTestServer) -> None:
    """A server slower than the timeout is retried, then an APIError names the timeout."""
    rest_server.state.reply_delay = 1.0
    async with AsyncAudioClient(API_KEY, rest_server.base_url, timeout=0.2, retry=FAST) as c:
        with pytest.raises(APIError, match="ReadTimeout") as info:
            await c.create_client_secret()
    assert info.value.status is None
    assert len(rest_server.state.requests) == 3


# --- the key stays secret ---------------------------------------------------------------


async def test_key_never_in_logs_reprs_or_errors(
    rest_server: RestTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The API key appears in no log record, repr or error, even when the server echoes it."""
    caplog.set_level(logging.DEBUG)
    secret = "sk-wrong-key-0123456789abcdefghij"
    async with AsyncAudioClient(secret, rest_server.base_url, retry=FAST) as c:
        assert secret not in repr(c)
        with pytest.raises(APIError) as info:
            await c.transcribe(b"RIFFxxxxWAVE")
    assert rest_server.state.requests[-1].headers["authorization"] == f"Bearer {secret}"
    err = info.value
    assert err.status == 401 and err.code == "invalid_api_key"
    assert secret not in str(err) and secret not in err.message and secret[:12] not in str(err)
    assert "***" in err.message
    text = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
    assert caplog.records and secret not in text and secret[:12] not in text


def test_redact_masks_full_and_partial_key() -> None:
    """redact() masks the key and its visible head."""
    key = "sk-proj-abcdefghijklmnop"
    assert redact(f"bad key {key}!", key) == "bad key ***!"
    assert key[:12] not in redact(f"bad key {key[:12]}...mnop", key)
    assert redact("no secret here", None) == "no secret here"


# --- the sync facade --------------------------------------------------------------------


def test_sync_facade(rest_server: RestTestServer) -> None:
    """AudioClient runs the same calls blocking: transcribe, stream, speak, keys."""
    with AudioClient(API_KEY, rest_server.base_url, retry=FAST) as c:
        result = c.transcribe(b"RIFFxxxxWAVE", response_format="text")
        assert isinstance(result, str) and "wörld" in result
        events = list(c.transcribe_stream(b"RIFFxxxxWAVE"))
        assert events[-1].type == "transcript.text.done"
        audio = b"".join(c.speak("hi"))
        assert len(audio) == 48000
        key = c.create_client_secret({"model": "gpt-realtime"})
        assert key.value in rest_server.state.keys
        with pytest.raises(APIError):
            c.transcribe(b"x", model="")
    with pytest.raises(RuntimeError, match="closed"):
        c.create_client_secret()
