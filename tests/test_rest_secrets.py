"""Ephemeral realtime keys against the REST test server: creation and use."""

# ruff: noqa: F811  (pytest fixtures imported from rest_server are redefined as arguments)
from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from rest_server import (  # noqa: F401 (fixtures)
    API_KEY,
    RestTestServer,
    rest_server,
    rest_server_module,
)
from starlette.responses import JSONResponse

from realtime.exceptions import APIError, ConfigError
from realtime.rest import AsyncAudioClient, EphemeralKey, Transcription


@pytest.fixture
async def client(rest_server: RestTestServer) -> AsyncIterator[AsyncAudioClient]:
    """A client of the test server."""
    async with AsyncAudioClient(API_KEY, rest_server.base_url) as c:
        yield c


class FakeConfig:
    """Stands in for realtime.events.SessionConfig: anything with to_wire(dialect)."""

    def __init__(self) -> None:
        self.dialects: list[str] = []

    def to_wire(self, dialect: Any) -> dict[str, Any]:
        """A minimal session of the dialect asked for."""
        self.dialects.append(dialect)
        if dialect == "ga":
            return {
                "type": "realtime",
                "model": "gpt-realtime",
                "audio": {"output": {"voice": "marin"}},
            }
        return {"model": "gpt-4o-realtime-preview", "voice": "alloy"}


async def test_ga_client_secret_and_its_use(
    client: AsyncAudioClient, rest_server: RestTestServer
) -> None:
    """A GA client secret comes back with value and expiry and authenticates further calls."""
    before = time.time()
    key = await client.create_client_secret({"model": "gpt-realtime"}, expires_after_seconds=120)
    assert isinstance(key, EphemeralKey)
    assert key.value.startswith("ek_") and before + 119 <= key.expires_at <= time.time() + 121
    assert 100 < key.expires_in <= 121 and not key.expired
    assert key.value not in repr(key)
    assert key.session["model"] == "gpt-realtime" and key.session["type"] == "realtime"
    req = rest_server.state.requests[-1]
    assert req.path == "/v1/realtime/client_secrets"
    assert req.json == {
        "session": {"model": "gpt-realtime", "type": "realtime"},
        "expires_after": {"anchor": "created_at", "seconds": 120},
    }
    # the key is directly usable as a client's (or a session's) api_key
    async with AsyncAudioClient(key.value, rest_server.base_url) as ephemeral:
        result = await ephemeral.transcribe(b"RIFFxxxxWAVE")
    assert isinstance(result, Transcription)
    assert rest_server.state.requests[-1].headers["authorization"] == f"Bearer {key.value}"


async def test_unknown_key_is_refused(rest_server: RestTestServer) -> None:
    """A key the server never issued gets a 401 APIError."""
    async with AsyncAudioClient("ek_not_issued_0000", rest_server.base_url) as c:
        with pytest.raises(APIError) as info:
            await c.transcribe(b"RIFFxxxxWAVE")
    assert info.value.status == 401


async def test_session_config_objects(
    client: AsyncAudioClient, rest_server: RestTestServer
) -> None:
    """A SessionConfig-like object is written in the endpoint's dialect."""
    cfg = FakeConfig()
    await client.create_client_secret(cfg)
    assert rest_server.state.requests[-1].json["session"]["audio"] == {"output": {"voice": "marin"}}
    await client.create_realtime_session(cfg)
    assert rest_server.state.requests[-1].json == {
        "model": "gpt-4o-realtime-preview",
        "voice": "alloy",
    }
    assert cfg.dialects == ["ga", "beta"]


async def test_beta_sessions(client: AsyncAudioClient, rest_server: RestTestServer) -> None:
    """The beta session endpoints return the client_secret as an EphemeralKey."""
    key = await client.create_realtime_session({"voice": "verse"}, model="gpt-4o-realtime-preview")
    assert key.value in rest_server.state.keys and key.session["voice"] == "verse"
    assert "client_secret" not in key.session
    req = rest_server.state.requests[-1]
    assert req.path == "/v1/realtime/sessions"
    assert req.json == {"voice": "verse", "model": "gpt-4o-realtime-preview"}
    tkey = await client.create_transcription_session(
        {"input_audio_transcription": {"model": "gpt-4o-transcribe"}}
    )
    assert tkey.value in rest_server.state.keys and tkey.value != key.value
    assert rest_server.state.requests[-1].path == "/v1/realtime/transcription_sessions"
    gkey = await client.create_client_secret(
        {"audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}}},
        session_type="transcription",
    )
    assert gkey.session["type"] == "transcription"


async def test_key_request_errors(client: AsyncAudioClient, rest_server: RestTestServer) -> None:
    """Bad arguments raise ConfigError; a response without a key raises APIError."""
    with pytest.raises(ConfigError, match="7200"):
        await client.create_client_secret(expires_after_seconds=5)
    with pytest.raises(ConfigError, match="mapping"):
        await client.create_client_secret(42)  # type: ignore[arg-type]
    rest_server.state.push("/realtime/client_secrets", JSONResponse({"expires_at": 1}))
    with pytest.raises(APIError, match="value"):
        await client.create_client_secret()
    rest_server.state.push("/realtime/sessions", JSONResponse({"id": "sess"}))
    with pytest.raises(APIError, match="client_secret"):
        await client.create_realtime_session()
