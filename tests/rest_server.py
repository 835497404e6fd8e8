"""A small REST audio server for the tests of :mod:`realtime.rest` (Starlette + uvicorn).

It speaks the OpenAI REST audio shapes on 127.0.0.1 (port 0), parses every multipart
upload as a stream (the file is hashed, never stored) and records what it received, so
tests can check the fields the client sent. Tests steer it through :class:`ServerState`:
``push(path, response)`` makes the next request to ``path`` answer with a canned response
(429 with ``Retry-After``, an error body, a stream cut off mid-event), and speech pacing
is set by ``speech_*`` attributes.

Routes: ``/v1/...`` (OpenAI style, ``Authorization: Bearer``) and the Azure style
``/openai/deployments/{deployment}/audio/...?api-version=`` and ``/openai/v1/realtime/...``
(``api-key`` header). :func:`serve` runs it in a background thread; the local server
(``realtime.server``) is meant to replace it for the shape tests later.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import secrets
import struct
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import uvicorn
from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = [
    "API_KEY",
    "TRANSCRIPT",
    "ReceivedFile",
    "ReceivedRequest",
    "RestTestServer",
    "ServerState",
    "chop",
    "rest_server",
    "rest_server_module",
    "sine_pcm",
    "error_body",
    "build_app",
    "serve",
]

API_KEY = "sk-test-REDACTME-0123456789abcdef"
TRANSCRIPT = "Héllo wörld — 日本語 🎤 done."
SPEECH_RATE = 24000


@dataclass
class ReceivedFile:
    """The file part of an upload as the server saw it."""

    filename: str
    content_type: str
    size: int
    sha256: str


@dataclass
class ReceivedRequest:
    """One request: its route, headers, query, form fields (or JSON body) and file."""

    path: str
    headers: dict[str, str]
    query: dict[str, str]
    fields: dict[str, list[str]] = field(default_factory=dict)
    file: ReceivedFile | None = None
    json: Any = None


@dataclass
class ServerState:
    """What the test server knows, records and is told to do next."""

    keys: set[str] = field(default_factory=lambda: {API_KEY})
    issued: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[ReceivedRequest] = field(default_factory=list)
    scripted: dict[str, list[Response]] = field(default_factory=dict)
    speech_seconds: float = 1.0
    speech_chunks: int = 10
    speech_delay: float = 0.0
    speech_wav_rate: int = SPEECH_RATE
    sse_piece_sizes: tuple[int, ...] = (3, 7, 1, 13, 2, 5, 1, 1)
    sse_piece_delay: float = 0.002
    sse_line_end: str = "\n"
    sent_times: list[float] = field(default_factory=list)
    reply_delay: float = 0.0

    def push(self, path: str, response: Response) -> None:
        """Answer the next request to ``path`` (e.g. "/audio/speech") with ``response``."""
        self.scripted.setdefault(path, []).append(response)

    def reset(self) -> None:
        """Forget requests, scripted replies and settings (keeps issued keys valid)."""
        fresh = ServerState()
        for name in ("requests", "scripted", "sent_times"):
            setattr(self, name, getattr(fresh, name))
        for name in (
            "speech_seconds",
            "speech_chunks",
            "speech_delay",
            "speech_wav_rate",
            "sse_piece_sizes",
            "sse_piece_delay",
            "sse_line_end",
            "reply_delay",
        ):
            setattr(self, name, getattr(fresh, name))


def chop(data: bytes, sizes: tuple[int, ...]) -> list[bytes]:
    """Split ``data`` into pieces of the given sizes, cycling through them."""
    out, i, k = [], 0, 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        out.append(data[i : i + n])
        i += n
        k += 1
    return out


def error_body(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """An OpenAI-style error body."""
    return {"error": {"message": message, "type": type_, "code": code, "param": param}}


async def _parse_multipart(request: Request, received: ReceivedRequest) -> None:
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise ValueError(f"expected multipart/form-data, got {request.headers.get('content-type')}")
    part: dict[str, Any] = {}
    header_field = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        part.clear()
        part.update(headers={}, data=bytearray(), hash=hashlib.sha256(), size=0)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        part["headers"][header_field.decode().lower()] = header_value.decode()
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        _, disp = parse_options_header(part["headers"].get("content-disposition", ""))
        part["name"] = disp.get(b"name", b"").decode()
        part["filename"] = disp[b"filename"].decode() if b"filename" in disp else None

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part["filename"] is None:
            part["data"].extend(data[start:end])
        else:
            part["hash"].update(data[start:end])
            part["size"] += end - start

    def on_part_end() -> None:
        if part["filename"] is None:
            received.fields.setdefault(part["name"], []).append(part["data"].decode())
        else:
            received.file = ReceivedFile(
                part["filename"],
                part["headers"].get("content-type", ""),
                part["size"],
                part["hash"].hexdigest(),
            )

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
        },
    )
    async for chunk in request.stream():
        parser.write(chunk)
    parser.finalize()


def _authorized(request: Request, state: ServerState) -> str | None:
    auth = request.headers.get("authorization", "")
    if request.url.path.startswith("/openai/") and not auth:
        key = request.headers.get("api-key", "")  # Azure: api-key, or a Bearer AD token
    else:
        key = auth[7:] if auth.startswith("Bearer ") else ""
    return key if key in state.keys else None


def _unauthorized(request: Request) -> Response:
    auth = request.headers.get("authorization") or request.headers.get("api-key") or ""
    # echoes what it got, like a careless server: the client must redact it
    return JSONResponse(
        error_body(
            f"Incorrect API key provided: {auth}", "invalid_request_error", "invalid_api_key"
        ),
        status_code=401,
        headers={"x-request-id": "req_unauthorized"},
    )


def _bad(message: str, param: str | None = None) -> Response:
    return JSONResponse(
        error_body(message, "invalid_request_error", "invalid_value", param),
        status_code=400,
        headers={"x-request-id": "req_bad_request"},
    )


def _sse(
    events: list[dict[str, Any]],
    state: ServerState,
    done: bool = False,
    sizes: tuple[int, ...] | None = None,
) -> Response:
    nl = state.sse_line_end
    text = f": test server{nl}{nl}"
    for ev in events:
        text += f"event: {ev['type']}{nl}data: {json.dumps(ev, ensure_ascii=False)}{nl}{nl}"
    if done:
        text += f"data: [DONE]{nl}{nl}"
    pieces = chop(text.encode(), sizes or state.sse_piece_sizes)
    delay = state.sse_piece_delay

    async def gen() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece
            await asyncio.sleep(delay)

    return StreamingResponse(
        gen(), media_type="text/event-stream", headers={"x-request-id": "req_sse"}
    )


def _transcript_reply(kind: str, received: ReceivedRequest, state: ServerState) -> Response:
    f = received.fields
    fmt = f.get("response_format", ["json"])[0]
    file = received.file
    assert file is not None
    extra = {"x_bytes": file.size, "x_sha256": file.sha256, "x_filename": file.filename}
    text = TRANSCRIPT if kind == "transcriptions" else "Hello world, done."
    if f.get("stream", ["false"])[0] == "true":
        logprobs = [{"token": "H", "logprob": -0.1, "bytes": [72]}] if f.get("include[]") else None
        events: list[dict[str, Any]] = []
        words = text.split(" ")
        for i, w in enumerate(words):
            delta = w if i == 0 else " " + w
            ev: dict[str, Any] = {"type": "transcript.text.delta", "delta": delta}
            if logprobs:
                ev["logprobs"] = logprobs
            events.append(ev)
        if "diarize" in f["model"][0]:
            events.append(
                {
                    "type": "transcript.text.segment",
                    "id": "seg_0",
                    "start": 0.0,
                    "end": 1.5,
                    "text": text,
                    "speaker": "A",
                }
            )
        done = {
            "type": "transcript.text.done",
            "text": text,
            "usage": {
                "type": "tokens",
                "input_tokens": 10,
                "output_tokens": 7,
                "total_tokens": 17,
                "input_token_details": {"audio_tokens": 10},
            },
        }
        if logprobs:
            done["logprobs"] = logprobs
        events.append(done)
        return _sse(events, state)
    if fmt == "text":
        return PlainTextResponse(text + "\n")
    if fmt == "srt":
        return PlainTextResponse(f"1\n00:00:00,000 --> 00:00:01,500\n{text}\n\n")
    if fmt == "vtt":
        return PlainTextResponse(f"WEBVTT\n\n00:00:00.000 --> 00:00:01.500\n{text}\n\n")
    segment = {
        "id": 0,
        "seek": 0,
        "start": 0.0,
        "end": 1.5,
        "text": text,
        "tokens": [1, 2],
        "temperature": 0.0,
        "avg_logprob": -0.2,
        "compression_ratio": 1.1,
        "no_speech_prob": 0.01,
    }
    if fmt == "verbose_json":
        body: dict[str, Any] = {
            "language": "english",
            "duration": 1.5,
            "text": text,
            "segments": [segment],
            **extra,
        }
        if "word" in f.get("timestamp_granularities[]", []):
            body["words"] = [
                {"word": w, "start": 0.1 * i, "end": 0.1 * i + 0.1}
                for i, w in enumerate(text.split())
            ]
        if kind == "transcriptions":
            body["usage"] = {"type": "duration", "seconds": 2}
        return JSONResponse(body)
    if fmt == "diarized_json":
        return JSONResponse(
            {
                "task": "transcribe",
                "duration": 1.5,
                "text": text,
                "segments": [
                    {
                        "type": "transcript.text.segment",
                        "id": "seg_0",
                        "start": 0.0,
                        "end": 1.5,
                        "text": text,
                        "speaker": "A",
                    }
                ],
                "usage": {"type": "duration", "seconds": 1.5},
                **extra,
            }
        )
    body = {"text": text, **extra}
    if kind == "transcriptions":
        body["usage"] = {
            "type": "tokens",
            "input_tokens": 10,
            "output_tokens": 7,
            "total_tokens": 17,
        }
        if f.get("include[]") == ["logprobs"]:
            body["logprobs"] = [{"token": "H", "logprob": -0.1, "bytes": [72]}]
    return JSONResponse(body)


def sine_pcm(seconds: float, rate: int = SPEECH_RATE, freq: float = 440.0) -> bytes:
    """A sine wave as PCM16 mono (the test server's 'speech')."""
    t = np.arange(int(seconds * rate)) / rate
    return (8000 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def _speech_reply(body: dict[str, Any], state: ServerState) -> Response:
    fmt = body.get("response_format", "mp3")
    rate = state.speech_wav_rate if fmt == "wav" else SPEECH_RATE
    pcm = sine_pcm(state.speech_seconds, rate)
    if fmt == "wav":
        header = (
            b"RIFF"
            + struct.pack("<I", 0xFFFFFFFF)
            + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
            + b"data"
            + struct.pack("<I", 0xFFFFFFFF)
        )
        payload = header + pcm
    else:
        payload = pcm
    n = max(1, state.speech_chunks)
    size = -(-len(payload) // n)
    pieces = [payload[i : i + size] for i in range(0, len(payload), size)]
    delay = state.speech_delay
    sent = state.sent_times
    if body.get("stream_format") == "sse":
        events = [
            {"type": "speech.audio.delta", "audio": base64.b64encode(p).decode()} for p in pieces
        ]
        events.append(
            {
                "type": "speech.audio.done",
                "usage": {"input_tokens": 5, "output_tokens": 50, "total_tokens": 55},
            }
        )
        # big events: odd-sized pieces that still split lines, but not thousands of them
        return _sse(events, state, sizes=(4093, 1, 2047, 3))

    async def gen() -> AsyncIterator[bytes]:
        for i, piece in enumerate(pieces):
            if i:
                await asyncio.sleep(delay)
            sent.append(time.monotonic())
            yield piece

    return StreamingResponse(
        gen(), media_type="application/octet-stream", headers={"x-request-id": "req_speech"}
    )


def build_app(state: ServerState) -> Starlette:
    """The Starlette app over ``state``."""

    async def handle(request: Request) -> Response:
        path = request.url.path
        kind = path.rsplit("/", 1)[-1]
        suffix = "/realtime/" + kind if "/realtime/" in path else "/audio/" + kind
        received = ReceivedRequest(path, dict(request.headers), dict(request.query_params))
        state.requests.append(received)
        if path.startswith("/openai/deployments/") and "api-version" not in request.query_params:
            return _bad("missing api-version", "api-version")
        if kind in ("transcriptions", "translations"):
            try:
                await _parse_multipart(request, received)
            except ValueError as exc:
                return _bad(str(exc))
        else:
            try:
                received.json = json.loads(await request.body())
            except json.JSONDecodeError:
                return _bad("invalid JSON body")
        if state.reply_delay:
            await asyncio.sleep(state.reply_delay)
        if _authorized(request, state) is None:
            return _unauthorized(request)
        queue = state.scripted.get(suffix)
        if queue:
            return queue.pop(0)
        if kind in ("transcriptions", "translations"):
            f = received.fields
            if received.file is None:
                return _bad("missing file", "file")
            if not f.get("model", [""])[0]:
                return _bad("missing model", "model")
            return _transcript_reply(kind, received, state)
        if kind == "speech":
            body = received.json
            for name in ("model", "input", "voice"):
                if not isinstance(body, dict) or name not in body:
                    return _bad(f"missing {name}", name)
            return _speech_reply(body, state)
        key = "ek_" + secrets.token_hex(8)
        session = received.json.get("session", received.json)
        expires = int(time.time()) + int(received.json.get("expires_after", {}).get("seconds", 600))
        state.keys.add(key)
        state.issued[key] = session
        if kind == "client_secrets":
            return JSONResponse(
                {
                    "value": key,
                    "expires_at": expires,
                    "session": {"id": "sess_1", "object": "realtime.session", **session},
                }
            )
        return JSONResponse(
            {
                "id": "sess_1",
                "object": "realtime.session",
                **session,
                "client_secret": {"value": key, "expires_at": expires},
            }
        )

    routes = []
    for kind in ("transcriptions", "translations", "speech"):
        routes.append(Route(f"/v1/audio/{kind}", handle, methods=["POST"]))
        routes.append(Route(f"/openai/deployments/{{dep}}/audio/{kind}", handle, methods=["POST"]))
    for kind in ("sessions", "transcription_sessions", "client_secrets"):
        routes.append(Route(f"/v1/realtime/{kind}", handle, methods=["POST"]))
        routes.append(Route(f"/openai/v1/realtime/{kind}", handle, methods=["POST"]))
    return Starlette(routes=routes)


@dataclass
class RestTestServer:
    """A running test server: ``base_url`` ends in ``/v1``; ``origin`` is scheme+host+port."""

    origin: str
    state: ServerState

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL (``http://127.0.0.1:PORT/v1``)."""
        return self.origin + "/v1"


@contextlib.contextmanager
def serve() -> Iterator[RestTestServer]:
    """Run the test server on 127.0.0.1, port 0, in a background thread."""
    state = ServerState()
    config = uvicorn.Config(
        build_app(state),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="rest-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the REST test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RestTestServer(f"http://127.0.0.1:{port}", state)
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def rest_server_module() -> Iterator[RestTestServer]:
    """One test server per test module (import this fixture together with ``rest_server``)."""
    with serve() as running:
        yield running


@pytest.fixture
def rest_server(rest_server_module: RestTestServer) -> RestTestServer:
    """The module's test server with its state reset for this test."""
    rest_server_module.state.reset()
    return rest_server_module
