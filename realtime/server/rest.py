"""The local server's REST audio endpoints: transcription, translation, speech.

- ``POST /v1/audio/transcriptions`` (multipart): ``file`` (a WAV file, any PCM/float format,
  rate and channel count), ``model``, ``language``, ``prompt``, ``response_format`` (``json``,
  ``text``, ``srt``, ``vtt``, ``verbose_json``), ``timestamp_granularities[]``, ``stream``
  (``true`` -> server-sent events ``transcript.text.delta`` / ``transcript.text.done``).
- ``POST /v1/audio/translations``: the same (the offline model is English-only, so the
  translation of English speech is its transcript).
- ``POST /v1/audio/speech`` (JSON): ``input``, ``voice``, ``speed``, ``response_format``
  (``pcm``: raw PCM16 24 kHz; ``wav``: a streamed WAV), ``stream_format`` (``audio`` or
  ``sse``). The body streams sentence by sentence as it is synthesized. Compressed formats
  (mp3, opus, aac, flac) get a clear 400: no encoder ships with the local server.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import AsyncIterator, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ..subtitles import srt, vtt
from .exceptions import ClientInputError
from .state import (
    ServerState,
    client_error_response,
    error_response,
    read_json_body,
    request_credential,
    unauthorized,
)
from .tts import split_sentences
from .upload import Upload, decode_wav, receive_upload

__all__ = ["rest_routes"]

TRANSCRIPT_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
SPEECH_FORMATS = ("pcm", "wav")
COMPRESSED_FORMATS = ("mp3", "opus", "aac", "flac")
MAX_SPEECH_INPUT = 4096


def _error(
    status: int, message: str, code: str | None = None, param: str | None = None
) -> Response:
    return error_response(status, message, code, param)


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.server
    return state


def _authorized(request: Request) -> bool:
    """The server's key (or an open server); ephemeral keys are for realtime sessions only."""
    ok, eph = request_credential(request, _state(request))
    return ok and eph is None


async def transcriptions(request: Request) -> Response:
    """``POST /v1/audio/transcriptions`` and ``/v1/audio/translations``."""
    if not _authorized(request):
        return unauthorized()
    state = _state(request)
    try:
        upload = await receive_upload(
            request.stream(),
            request.headers.get("content-type", ""),
            request.headers.get("content-length"),
            state.limits,
        )
    except ClientInputError as exc:
        return client_error_response(exc)
    try:
        return await _transcribe_upload(request, state, upload)
    finally:
        await asyncio.to_thread(upload.discard)


async def _transcribe_upload(request: Request, state: ServerState, upload: Upload) -> Response:
    translate = request.url.path.endswith("translations")
    fmt = upload.get("response_format") or "json"
    if fmt not in TRANSCRIPT_FORMATS:
        return _error(
            400,
            f"Unsupported response_format {fmt!r}; the local server supports "
            + ", ".join(TRANSCRIPT_FORMATS),
            "unsupported_value",
            "response_format",
        )
    stream = (upload.get("stream") or "false").lower() == "true"
    language = upload.get("language") or None
    prompt = upload.get("prompt") or None
    assert upload.path is not None and upload.header is not None
    async with state.decode_slots:
        pcm = await asyncio.to_thread(decode_wav, upload.path, upload.header, upload.data_size)
    await asyncio.to_thread(upload.discard)
    result = await state.engines.transcribe_detailed(pcm, language=language, prompt=prompt)
    duration = len(pcm) / 48000
    del pcm
    text = result.text.strip()
    usage = {"type": "duration", "seconds": round(duration, 3)}
    if stream and not translate:
        return StreamingResponse(_transcript_sse(text, usage), media_type="text/event-stream")
    segments = [(float(s.start), float(s.end), str(s.text).strip()) for s in result.segments]
    if not segments and text:
        segments = [(0.0, duration, text)]
    if fmt == "text":
        return PlainTextResponse(text + "\n")
    if fmt == "srt":
        return PlainTextResponse(srt(segments), media_type="application/x-subrip")
    if fmt == "vtt":
        return PlainTextResponse(vtt(segments), media_type="text/vtt")
    if fmt == "verbose_json":
        body: dict[str, Any] = {
            "task": "translate" if translate else "transcribe",
            "language": "english",
            "duration": round(duration, 3),
            "text": text,
            "segments": [
                {
                    "id": n,
                    "seek": 0,
                    "start": a,
                    "end": b,
                    "text": t,
                    "tokens": [],
                    "temperature": 0.0,
                    "avg_logprob": 0.0,
                    "compression_ratio": 1.0,
                    "no_speech_prob": 0.0,
                }
                for n, (a, b, t) in enumerate(segments)
            ],
            "usage": usage,
        }
        if "word" in upload.fields.get("timestamp_granularities[]", []):
            body["words"] = _words(segments)
        return JSONResponse(body)
    if translate:
        return JSONResponse({"text": text})
    return JSONResponse({"text": text, "usage": usage})


async def _transcript_sse(text: str, usage: dict[str, Any]) -> AsyncIterator[bytes]:
    words = text.split(" ")
    for i in range(0, len(words), 3):
        delta = " ".join(words[i : i + 3]) + (" " if i + 3 < len(words) else "")
        event = {"type": "transcript.text.delta", "delta": delta, "logprobs": []}
        yield f"data: {json.dumps(event)}\n\n".encode()
    done = {
        "type": "transcript.text.done",
        "text": text,
        "logprobs": [],
        "usage": {
            "type": "tokens",
            "input_tokens": int(usage["seconds"] * 10),
            "output_tokens": max(1, len(words)),
            "total_tokens": int(usage["seconds"] * 10) + max(1, len(words)),
            "input_token_details": {"text_tokens": 0, "audio_tokens": int(usage["seconds"] * 10)},
        },
    }
    yield f"data: {json.dumps(done)}\n\n".encode()


def _words(segments: Sequence[tuple[float, float, str]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for a, b, t in segments:
        words = t.split()
        step = (b - a) / max(1, len(words))
        out.extend(
            {"word": w, "start": round(a + i * step, 3), "end": round(a + (i + 1) * step, 3)}
            for i, w in enumerate(words)
        )
    return out


async def speech(request: Request) -> Response:
    """``POST /v1/audio/speech``: streamed synthesis, sentence by sentence."""
    if not _authorized(request):
        return unauthorized()
    try:
        body = await read_json_body(request, _state(request).limits)
    except ClientInputError as exc:
        return client_error_response(exc)
    text = body.get("input")
    if not isinstance(text, str) or not text.strip():
        return _error(
            400, "Missing required parameter: 'input'.", "missing_required_parameter", "input"
        )
    if len(text) > MAX_SPEECH_INPUT:
        return _error(
            400,
            f"'input' is longer than {MAX_SPEECH_INPUT} characters.",
            "string_above_max_length",
            "input",
        )
    fmt = str(body.get("response_format") or "mp3")
    if fmt in COMPRESSED_FORMATS:
        return _error(
            400,
            f"response_format {fmt!r} needs an audio encoder the local server "
            "does not ship; use 'pcm' or 'wav'.",
            "unsupported_value",
            "response_format",
        )
    if fmt not in SPEECH_FORMATS:
        return _error(400, f"Invalid response_format {fmt!r}.", "invalid_value", "response_format")
    try:
        speed = float(body.get("speed") or 1.0)
    except (TypeError, ValueError):
        return _error(400, "'speed' must be a number.", "invalid_value", "speed")
    if not 0.25 <= speed <= 4.0:
        return _error(400, "'speed' must be between 0.25 and 4.0.", "invalid_value", "speed")
    voice = str(body.get("voice") or "alloy")
    sse = body.get("stream_format") == "sse"
    engines = _state(request).engines
    sentences = split_sentences(text) or [text]

    async def audio_stream() -> AsyncIterator[bytes]:
        if fmt == "wav" and not sse:
            yield _streaming_wav_header(24000)
        total = 0
        for sentence in sentences:
            pcm = await engines.synthesize(sentence, voice=voice, speed=speed)
            total += len(pcm)
            if sse:
                event = {
                    "type": "speech.audio.delta",
                    "audio": base64.b64encode(pcm).decode("ascii"),
                }
                yield f"data: {json.dumps(event)}\n\n".encode()
            else:
                yield pcm
        if sse:
            words = len(text.split())
            done = {
                "type": "speech.audio.done",
                "usage": {
                    "input_tokens": words,
                    "output_tokens": total // 960,
                    "total_tokens": words + total // 960,
                },
            }
            yield f"data: {json.dumps(done)}\n\n".encode()

    media = "text/event-stream" if sse else ("audio/wav" if fmt == "wav" else "audio/pcm")
    return StreamingResponse(audio_stream(), media_type=media)


def _streaming_wav_header(rate: int) -> bytes:
    """A PCM16 mono WAV header for a body of unknown length (sizes set to the maximum)."""
    size = 0xFFFFFFFF
    return (
        b"RIFF"
        + struct.pack("<I", size)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", size - 36)
    )


def rest_routes() -> list[BaseRoute]:
    """The REST routes of the local server."""
    return [
        Route("/v1/audio/transcriptions", transcriptions, methods=["POST"]),
        Route("/v1/audio/translations", transcriptions, methods=["POST"]),
        Route("/v1/audio/speech", speech, methods=["POST"]),
    ]
