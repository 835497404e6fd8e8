"""The local server's REST routes under hostile input (issue 11, items 1, 4 and 6).

Uploads are streamed to disk with a size cap, WAV headers are validated before any decoding,
decoding runs off the event loop, malformed bodies get a 4xx with an OpenAI-shaped error.
"""

from __future__ import annotations

import asyncio
import struct
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from audio.wav import write_wav
from realtime.server import Limits, LocalServer
from realtime.server import rest as rest_mod
from realtime.server import upload as upload_mod
from tests.server_kit import shared_engines

MIB = 1024 * 1024


@pytest.fixture
async def server():
    async with LocalServer(port=0, engines=shared_engines()) as srv:
        yield srv


def assert_openai_error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text[:300])
    body = r.json()
    err = body["error"]
    assert set(err) >= {"message", "type", "code", "param"}
    assert isinstance(err["message"], str) and err["message"]
    if code is not None:
        assert err["code"] == code, err
    return err


def wav_header(
    *,
    rate: int = 16000,
    channels: int = 1,
    bits: int = 16,
    data_bytes: int = 3200,
    block: int | None = None,
    byte_rate: int | None = None,
) -> bytes:
    block = block if block is not None else channels * bits // 8
    byte_rate = byte_rate if byte_rate is not None else rate * block
    fmt = struct.pack("<HHIIHH", 1, channels, rate, byte_rate, block, bits)
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(fmt) + 8 + data_bytes)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def wav_blob(samples: np.ndarray, rate: int) -> bytes:
    """A WAV file's bytes (written by audio.wav)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.wav"
        write_wav(path, samples, rate)
        return path.read_bytes()


async def upload(srv: LocalServer, blob: bytes, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as http:
        return await http.post(
            f"{srv.http_url}/audio/transcriptions",
            files={"file": ("a.wav", blob, "audio/wav")},
            data={"model": "whisper-1"},
            headers=headers,
        )


async def test_upload_over_the_cap_is_413():
    """An upload past max_upload_bytes is refused with 413 and an OpenAI-shaped body."""
    limits = Limits(max_upload_bytes=1 * MIB)
    async with LocalServer(port=0, engines=shared_engines(), limits=limits) as srv:
        blob = wav_header(data_bytes=2 * MIB) + b"\0" * (2 * MIB)
        r = await upload(srv, blob)
        assert_openai_error(r, 413)

        # a body sent without Content-Length (chunked) is counted as it streams
        async def chunks() -> AsyncIterator[bytes]:
            boundary = b"--xyz\r\n"
            yield boundary + b'Content-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            yield b"Content-Type: audio/wav\r\n\r\n" + blob[:44]
            for i in range(44, len(blob), 256 * 1024):
                yield blob[i : i + 256 * 1024]
            yield b"\r\n--xyz--\r\n"

        async with httpx.AsyncClient(timeout=60) as http:
            r = await http.post(
                f"{srv.http_url}/audio/transcriptions",
                content=chunks(),
                headers={"content-type": "multipart/form-data; boundary=xyz"},
            )
        assert_openai_error(r, 413)


async def test_default_upload_cap_is_25_mib(server):
    """The default cap is the service's 25 MB: 26 MiB is refused with 413."""
    assert Limits().max_upload_bytes == 25 * MIB
    blob = wav_header(data_bytes=26 * MIB) + bytes(26 * MIB)
    r = await upload(server, blob)
    assert_openai_error(r, 413)


async def test_non_wav_is_refused_from_its_first_bytes(server):
    """A non-WAV body is refused as soon as its first bytes arrive, not after the whole body."""
    host, port = server.host, server.port
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        b"--b\r\n"
        b'Content-Disposition: form-data; name="file"; filename="x.mp3"\r\n'
        b"Content-Type: audio/mpeg\r\n\r\n"
    )
    declared = len(head) + 20 * MIB
    writer.write(
        b"POST /v1/audio/transcriptions HTTP/1.1\r\n"
        + f"Host: {host}\r\n".encode()
        + b"Content-Type: multipart/form-data; boundary=b\r\n"
        + f"Content-Length: {declared}\r\n\r\n".encode()
        + head
        + b"ID3\x04"
        + bytes(64 * 1024)
    )
    await writer.drain()
    # the rest of the 20 MiB is never sent: the answer must come from the first bytes
    status = await asyncio.wait_for(reader.readline(), 10)
    assert status.startswith(b"HTTP/1.1 400"), status
    writer.close()


BAD_HEADERS = {
    "rate_1hz": wav_header(rate=1, data_bytes=4000),
    "rate_200khz": wav_header(rate=200_000, data_bytes=4000),
    "channels_9": wav_header(channels=9, data_bytes=18 * 100),
    "channels_0": wav_header(channels=0, block=2, data_bytes=4000),
    "block_align": wav_header(block=3, data_bytes=3000),
    "byte_rate": wav_header(byte_rate=12345, data_bytes=4000),
    "data_longer_than_file": wav_header(data_bytes=10 * MIB),
}


@pytest.mark.parametrize("name", sorted(BAD_HEADERS))
async def test_inconsistent_wav_headers_are_400(server, name):
    """Rates outside 8-192 kHz, 0 or more than 8 channels, inconsistent sizes: HTTP 400."""
    blob = BAD_HEADERS[name] + bytes(4000)
    r = await upload(server, blob)
    err = assert_openai_error(r, 400)
    assert err["param"] == "file"


async def test_duration_cap():
    """A WAV longer than max_upload_seconds is refused (from its header) with 400."""
    limits = Limits(max_upload_seconds=2.0)
    async with LocalServer(port=0, engines=shared_engines(), limits=limits) as srv:
        r = await upload(srv, wav_blob(np.zeros(8000 * 3, np.int16), 8000))
        err = assert_openai_error(r, 400, "audio_too_long")
        assert err["param"] == "file"


async def test_decoding_runs_off_the_event_loop(server, monkeypatch):
    """The WAV is decoded (and resampled) in a worker thread, never on the event loop."""
    seen: list[int] = []
    real = upload_mod.decode_wav

    def spy(*args: Any, **kwargs: Any) -> bytes:
        seen.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(rest_mod, "decode_wav", spy)
    r = await upload(server, wav_blob(np.zeros(16000, np.int16), 16000))
    assert r.status_code == 200, r.text
    assert seen and threading.get_ident() not in seen


async def test_valid_uploads_of_every_shape_still_work(server):
    """8 kHz mono, 48 kHz stereo, float32: decoded to the same 24 kHz PCM16 the engine hears."""
    for rate, channels, dtype in (
        (8000, 1, np.int16),
        (48000, 2, np.int16),
        (44100, 1, np.float32),
    ):
        frames = rate // 2
        samples = np.zeros((frames, channels), dtype)
        r = await upload(server, wav_blob(samples, rate))
        assert r.status_code == 200, (rate, channels, r.text)
        assert abs(r.json()["usage"]["seconds"] - 0.5) < 0.01


MALFORMED_MINT = [
    b"not json",
    b"[1, 2]",
    b'{"expires_after": "soon"}',
    b'{"expires_after": {"seconds": "ten"}}',
    b'{"expires_after": {"anchor": "created_at", "seconds": 5}}',
    b'{"session": "realtime"}',
    b'{"session": {"type": "realtime", "audio": {"output": {"voice": 123}}}}',
    b'{"session": {"type": "realtime", "output_modalities": ["banana"]}}',
    b'{"session": {"type": "nope"}}',
    b'{"expires_after": {"anchor": "created_at", "seconds": 1e400}}',
    b"{" + b'"a":[' * 3000 + b"]" * 3000 + b"}",
]


@pytest.mark.parametrize("body", MALFORMED_MINT, ids=range(len(MALFORMED_MINT)))
async def test_client_secrets_malformed_bodies_are_4xx(server, body):
    """Every malformed mint request gets a 400 with an OpenAI-shaped body (never a 500)."""
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(
            f"{server.http_url}/realtime/client_secrets",
            content=body,
            headers={"content-type": "application/json"},
        )
    assert_openai_error(r, 400)


async def test_beta_session_mint_validates_the_session(server):
    """The beta mint endpoints validate the session too."""
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(f"{server.http_url}/realtime/sessions", json={"voice": 123})
        assert_openai_error(r, 400)
        r = await http.post(f"{server.http_url}/realtime/sessions", json={"voice": "alloy"})
        assert r.status_code == 200, r.text


async def test_ephemeral_keys_refused_by_rest_audio_routes():
    """Ephemeral keys open realtime sessions only; the REST audio routes refuse them (401)."""
    async with (
        LocalServer(port=0, engines=shared_engines(), api_key="sk-main") as srv,
        httpx.AsyncClient(timeout=60) as http,
    ):
        minted = await http.post(
            f"{srv.http_url}/realtime/client_secrets",
            headers={"Authorization": "Bearer sk-main"},
            json={},
        )
        key = minted.json()["value"]
        eph = {"Authorization": f"Bearer {key}"}
        blob = wav_blob(np.zeros(8000, np.int16), 16000)
        r = await upload(srv, blob, **eph)
        assert_openai_error(r, 401)
        r = await http.post(
            f"{srv.http_url}/audio/speech", headers=eph, json={"input": "hi", "voice": "alloy"}
        )
        assert_openai_error(r, 401)
        r = await upload(srv, blob, Authorization="Bearer sk-main")
        assert r.status_code == 200, r.text


async def test_oversized_json_bodies_are_413():
    """JSON bodies (speech, mint) beyond max_body_bytes get 413."""
    limits = Limits(max_body_bytes=4096)
    async with (
        LocalServer(port=0, engines=shared_engines(), limits=limits) as srv,
        httpx.AsyncClient(timeout=30) as http,
    ):
        r = await http.post(f"{srv.http_url}/audio/speech", json={"input": "x" * 10000})
        assert_openai_error(r, 413)
        r = await http.post(
            f"{srv.http_url}/realtime/client_secrets",
            json={"session": {"instructions": "x" * 10000}},
        )
        assert_openai_error(r, 413)


def _riff(tag: int, channels: int, rate: int, bits: int, data: bytes) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )


def _encodings(x: np.ndarray) -> dict[str, tuple[int, int, int, int, bytes]]:
    """(tag, channels, rate, bits, data) of one float signal in every encoding read."""
    i16 = np.round(x * 32767).astype("<i2")
    i24 = np.round(x * 8388607).astype("<i4")
    b24 = np.stack([i24 & 255, (i24 >> 8) & 255, (i24 >> 16) & 255], axis=1).astype(np.uint8)
    stereo = np.stack([i16, i16], axis=1)
    return {
        "pcm8": (1, 1, 16000, 8, (np.round(x * 127) + 128).astype(np.uint8).tobytes()),
        "pcm16_stereo": (1, 2, 16000, 16, stereo.tobytes()),
        "pcm24": (1, 1, 16000, 24, b24.tobytes()),
        "pcm32": (1, 1, 16000, 32, np.round(x * 2147483000).astype("<i4").tobytes()),
        "float32": (3, 1, 16000, 32, x.astype("<f4").tobytes()),
        "float64": (3, 1, 16000, 64, x.astype("<f8").tobytes()),
    }


@pytest.mark.parametrize("name", sorted(_encodings(np.zeros(4))))
def test_decode_wav_matches_the_reference_reader(tmp_path, name):
    """The streaming decoder gives what audio.wav.read_wav gives (aligned, same length)."""
    from audio.wav import read_wav

    t = np.arange(16000 * 3) / 16000
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    tag, channels, rate, bits, data = _encodings(x)[name]
    path = tmp_path / "a.wav"
    path.write_bytes(_riff(tag, channels, rate, bits, data))
    header = upload_mod.parse_wav_header(path.read_bytes()[:4096], complete=True)
    assert header is not None
    ours = np.frombuffer(bytes(upload_mod.decode_wav(str(path), header, len(data))), "<i2")
    ref = np.frombuffer(read_wav(path, rate=24000), "<i2")
    assert len(ours) == len(ref) == 72000
    diff = np.abs(ours[200:-200].astype(np.int32) - ref[200:-200].astype(np.int32))
    assert diff.max() < 0.01 * 32768, diff.max()


async def test_long_upload_is_transcribed_window_by_window(server):
    """A 100 s upload is transcribed in ~30 s windows (no whole-file pass holding the GIL);
    the segments keep their times in the file."""
    from audio.wav import read_wav

    question = np.frombuffer(
        read_wav(Path(__file__).resolve().parents[1] / "share/samples/question.wav", rate=16000),
        np.int16,
    )
    audio = np.zeros(16000 * 100, np.int16)
    audio[16000 * 40 : 16000 * 40 + len(question)] = question
    audio[16000 * 80 : 16000 * 80 + len(question)] = question
    async with httpx.AsyncClient(timeout=300) as http:
        r = await http.post(
            f"{server.http_url}/audio/transcriptions",
            files={"file": ("long.wav", wav_blob(audio, 16000), "audio/wav")},
            data={"model": "whisper-1", "response_format": "verbose_json"},
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["text"].lower().count("weather") == 2, body["text"]
    starts = [s["start"] for s in body["segments"] if "weather" in s["text"].lower()]
    assert len(starts) == 2
    # times are in the file, not in a window (Whisper may start a segment in the silence
    # before the words, so the bounds reach back a few seconds)
    assert 34 <= starts[0] <= 41 and 70 <= starts[1] <= 81, starts
