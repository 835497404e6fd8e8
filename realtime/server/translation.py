"""The local server's translation sessions: ``WS /v1/realtime/translations``.

One :class:`TranslationServerSession` per connection. Input audio (24 kHz PCM16, any chunk
size) is cut into 200 ms frames; each frame advances the session clock (``elapsed_ms``) and
goes through the server's voice activity detector. A phrase (speech start to end of speech,
cut at ``max_phrase_ms``) is recognized by the server's speech-to-text engine (English, the
offline engine's language) while it is spoken (incremental passes, whose settled words are
sent as source transcript deltas; one pass at the end when the engine was not loaded yet),
translated by the server's translator
(:mod:`realtime.server.translators`) and spoken: English with the server's TTS engine, other
languages with espeak-ng. Phrases are translated one at a time, in order; at most
``max_queued_phrases`` wait (then reading the socket waits too).

Events sent: ``session.created``, ``session.updated``, ``session.input_transcript.delta`` (when
``audio.input.transcription`` is set), ``session.output_transcript.delta``,
``session.output_audio.delta`` (200 ms chunks), ``session.closed`` and ``error``. Bad input
(invalid JSON, an unknown event, an odd byte count, an unsupported audio format or language,
a change to ``model`` or ``type``) is answered with an ``error`` and the session goes on.
``session.close`` translates what is pending, sends ``session.closed`` and closes. Sessions
end after ``Limits.session_seconds`` (``error`` ``session_expired``, close 1001), like
conversations.

Without a translator the connection is accepted, answered with one ``error`` naming the
``--translator`` option, and closed.

``POST /v1/realtime/translations/client_secrets`` mints ephemeral keys for translation sessions.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..events import (
    TranslationInputAudioBufferAppendEvent,
    TranslationSessionCloseEvent,
    TranslationSessionUpdateEvent,
    parse_client_event,
    unsupported_format,
)
from ..events.translation import TRANSLATION_SAMPLE_RATE
from ..exceptions import ConfigError, ProtocolError
from .auth import EphemeralKey, credential_from
from .engine_set import EngineSet, VadStream
from .stt import IncrementalTranscriber
from .translators import TRANSLATOR_HELP, Translator
from .tts import SentenceBuffer, TtsEngine, load_tts
from .wire import error_event, new_id, now_s
from .ws import deny, finish_connection, refuse_when_full

if TYPE_CHECKING:
    from .state import ServerState

__all__ = ["TranslationServerSession", "merge_audio", "session_object", "translation_routes"]

log = logging.getLogger("realtime.server")

Emit = Callable[[dict[str, Any]], Awaitable[None]]

FRAME_MS = 200
BYTES_PER_MS = TRANSLATION_SAMPLE_RATE * 2 // 1000
FRAME_BYTES = FRAME_MS * BYTES_PER_MS
DEFAULT_MODEL = "gpt-realtime-translate"
DEFAULT_LANGUAGE = "es"
SESSION_KEYS = frozenset({"audio"})


class TranslationServerSession:
    """The protocol state of one translation connection (see the module docstring)."""

    def __init__(
        self,
        *,
        emit: Emit,
        engines: EngineSet,
        translator: Translator,
        model: str = DEFAULT_MODEL,
        initial: Mapping[str, Any] | None = None,
        source_language: str = "en",
        max_append_bytes: int = 15 * 1024 * 1024,
        max_phrase_ms: int = 15_000,
        max_queued_phrases: int = 4,
        silence_duration_ms: int = 400,
    ) -> None:
        self._emit = emit
        self.engines = engines
        self.translator = translator
        self.source = source_language
        self.max_append_bytes = max_append_bytes
        self.max_phrase_ms = max_phrase_ms
        self.silence_duration_ms = silence_duration_ms
        self.session = session_object(initial, model)
        self.elapsed_ms = 0
        self._pending = bytearray()
        self._history = bytearray()
        self._history_start_ms = 0
        self._speech_start: int | None = None
        self._vad: VadStream | None = None
        self._phrases: asyncio.Queue[_Phrase | None] = asyncio.Queue(max_queued_phrases)
        self._worker: asyncio.Task[None] | None = None
        self._busy = False  # the worker is emitting a phrase's source text
        self._live: IncrementalTranscriber | None = None  # the phrase being spoken
        self._pause_pass = False
        self._loading: asyncio.Future[Any] | None = None
        self._said_input = False
        self._said_output = False
        self._closed = False

    # -- output -------------------------------------------------------------------------
    async def emit(self, event: dict[str, Any]) -> None:
        if self._closed:
            return
        event.setdefault("event_id", new_id("event"))
        await self._emit(event)

    async def error(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        event_id: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        await self.emit(error_event(message, type=type, code=code, param=param, event_id=event_id))

    @property
    def language(self) -> str:
        """The target language."""
        return str(self.session["audio"]["output"].get("language") or DEFAULT_LANGUAGE)

    # -- life cycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Send ``session.created`` and start the phrase worker."""
        self._worker = asyncio.create_task(self._work())
        await self.emit({"type": "session.created", "session": self.session})
        # load the speech-to-text engine now, so that live transcription can start at once
        self._loading = asyncio.ensure_future(asyncio.to_thread(self.engines.stt_engine))

    async def close(self) -> None:
        """Stop at once (the client is gone): pending phrases are dropped."""
        self._closed = True
        if self._live is not None:
            self._live.close()
            self._live = None
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    async def handle(self, frame: str) -> bool:
        """Handle one client frame; True once the session has closed (``session.close``)."""
        try:
            event = parse_client_event(frame, "translation")
        except ProtocolError as exc:
            await self.error(str(exc), code="invalid_event")
            return False
        if isinstance(event, TranslationInputAudioBufferAppendEvent):
            await self._append(event)
        elif isinstance(event, TranslationSessionUpdateEvent):
            await self._update(event)
        elif isinstance(event, TranslationSessionCloseEvent):
            await self._finish()
            return True
        return False

    # -- client events ------------------------------------------------------------------
    async def _append(self, event: TranslationInputAudioBufferAppendEvent) -> None:
        try:
            pcm = event.audio_bytes()
        except ProtocolError as exc:
            await self.error(str(exc), code="invalid_value", param="audio", event_id=event.event_id)
            return
        if len(pcm) % 2:
            await self.error(
                "audio must be 24 kHz PCM16 mono: got an odd byte count",
                code="invalid_value",
                param="audio",
                event_id=event.event_id,
            )
            return
        if len(pcm) > self.max_append_bytes:
            await self.error(
                f"one append carries at most {self.max_append_bytes} bytes",
                code="invalid_value",
                param="audio",
                event_id=event.event_id,
            )
            return
        self._pending += pcm
        while len(self._pending) >= FRAME_BYTES:
            chunk = bytes(self._pending[:FRAME_BYTES])
            del self._pending[:FRAME_BYTES]
            await self._frame(chunk)

    async def _update(self, event: TranslationSessionUpdateEvent) -> None:
        data = event.session.model_dump(mode="json", exclude_unset=True)
        eid = event.event_id
        extra = sorted(set(data) - SESSION_KEYS)
        if extra:
            await self.error(
                f"session.update cannot change {', '.join(extra)} of a translation session "
                "(only audio.output.language, audio.input.transcription and "
                "audio.input.noise_reduction)",
                code="unknown_parameter",
                param=f"session.{extra[0]}",
                event_id=eid,
            )
            return
        problem = unsupported_format(data)
        if problem is not None:
            await self.error(
                problem, code="invalid_value", param="session.audio.input.format", event_id=eid
            )
            return
        out = (data.get("audio") or {}).get("output") or {}
        language = out.get("language")
        if language is not None:
            reason = self.translator.check(self.source, str(language))
            if reason is not None:
                await self.error(
                    reason,
                    code="unsupported_language",
                    param="session.audio.output.language",
                    event_id=eid,
                )
                return
        merge_audio(self.session, data.get("audio"))
        await self.emit({"type": "session.updated", "session": self.session})

    async def _finish(self) -> None:
        """``session.close``: flush the input, translate what is pending, ``session.closed``."""
        if self._pending:
            tail = bytes(self._pending) + bytes(FRAME_BYTES - len(self._pending))
            self._pending.clear()
            await self._frame(tail)
        if self._speech_start is not None:
            await self._cut(self.elapsed_ms)
        await self._phrases.put(None)
        if self._worker is not None:
            await self._worker
        await self.emit({"type": "session.closed"})
        self._closed = True

    # -- audio --------------------------------------------------------------------------
    async def _frame(self, pcm: bytes) -> None:
        self.elapsed_ms += FRAME_MS
        self._history += pcm
        if self._vad is None:
            self._vad = await self.engines.vad(
                threshold=0.5,
                prefix_padding_ms=300,
                silence_duration_ms=self.silence_duration_ms,
            )
        fresh = False
        for ev in self._vad.process(pcm):
            if ev.kind == "started":
                self._speech_start = max(ev.ms, self._history_start_ms)
                self._start_live()  # fed from the history, this frame included
                fresh = True
            elif self._speech_start is not None:
                await self._cut(min(ev.ms, self.elapsed_ms), ev.speech_ms)
        live = self._live
        if live is not None:
            if not fresh:
                live.append(pcm)
            if self._vad.silence_ms > 0 and not self._pause_pass:
                self._pause_pass = live.request_pass()  # a pause: by its end the pass is done
            elif self._vad.silence_ms == 0:
                self._pause_pass = False
            if not self._busy and self._phrases.empty():  # keeps the source text in order
                await self._say_input(live.take_deltas())
        if self._speech_start is None:
            keep = 1000 * BYTES_PER_MS  # enough for the prefix padding of the next phrase
            if len(self._history) > keep:
                drop = len(self._history) - keep
                del self._history[:drop]
                self._history_start_ms += drop // BYTES_PER_MS
        elif self.elapsed_ms - self._speech_start >= self.max_phrase_ms:
            await self._cut(self.elapsed_ms)
            self._speech_start = self.elapsed_ms  # speech goes on: a new phrase starts here
            self._start_live()

    def _start_live(self) -> None:
        """A live transcriber for the phrase that starts (fed the audio so far of it)."""
        if self._live is not None:
            self._live.close()
        engine = self.engines.loaded_stt()
        self._live = None
        self._pause_pass = False
        if engine is None or self._speech_start is None:
            return  # not loaded yet: the phrase is transcribed in one pass when it ends
        self._live = IncrementalTranscriber(engine, language=self.source, interval_s=1.0)
        a = max(0, (self._speech_start - self._history_start_ms) * BYTES_PER_MS)
        self._live.append(bytes(self._history[a:]))

    async def _cut(self, end_ms: int, speech_end_ms: int | None = None) -> None:
        start_ms = self._speech_start if self._speech_start is not None else end_ms
        self._speech_start = None
        live, self._live = self._live, None
        a = (start_ms - self._history_start_ms) * BYTES_PER_MS
        b = (end_ms - self._history_start_ms) * BYTES_PER_MS
        phrase = bytes(self._history[max(0, a) : max(0, b)])
        del self._history[: max(0, b)]
        self._history_start_ms = end_ms
        if phrase:
            end = None if speech_end_ms is None else max(0, speech_end_ms - start_ms)
            await self._phrases.put(_Phrase(phrase, start_ms - start_ms % FRAME_MS, live, end))
        elif live is not None:
            live.close()

    # -- phrases ------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            item = await self._phrases.get()
            if item is None:
                return
            self._busy = True
            try:
                await self._translate(item)
            except ConfigError as exc:
                await self.error(str(exc), type="server_error", code="translation_failed")
            except Exception as exc:  # an engine failed: report it, keep the session
                log.exception("translation of a phrase failed")
                await self.error(
                    f"translation failed: {type(exc).__name__}: {exc}",
                    type="server_error",
                    code="translation_failed",
                )
            finally:
                self._busy = False

    async def _say_input(self, deltas: list[str], elapsed_ms: int | None = None) -> None:
        """Emit source transcript deltas (when transcription is configured)."""
        if not self.session["audio"]["input"].get("transcription"):
            return
        for delta in deltas:
            if not delta.strip():
                continue
            if not self._said_input:
                delta = delta.lstrip()
            elif not delta[0].isspace():
                delta = " " + delta
            self._said_input = True
            ms = self.elapsed_ms if elapsed_ms is None else elapsed_ms
            await self.emit(
                {"type": "session.input_transcript.delta", "delta": delta, "elapsed_ms": ms}
            )

    async def _translate(self, phrase: _Phrase) -> None:
        if phrase.live is not None:  # most of it was transcribed while it was spoken
            finished = await asyncio.to_thread(phrase.live.finish, phrase.speech_end_ms)
            text = finished.text.strip()
            await self._say_input(finished.deltas)
        else:
            text = await self.engines.transcribe(phrase.pcm, {"language": self.source})
            await self._say_input([text], phrase.start_ms)
        if not text:
            return
        target = self.language
        sentences = SentenceBuffer()
        first = True
        async for piece in self.translator.translate(text, source=self.source, target=target):
            if first and self._said_output:
                piece = " " + piece.lstrip()
            first = False
            self._said_output = True
            await self.emit(
                {
                    "type": "session.output_transcript.delta",
                    "delta": piece,
                    "elapsed_ms": self.elapsed_ms,
                }
            )
            for sentence in sentences.feed(piece):
                await self._speak(sentence, target)
        for sentence in sentences.flush():
            await self._speak(sentence, target)

    async def _speak(self, text: str, language: str) -> None:
        if not text.strip():
            return
        base = language.lower().replace("_", "-").split("-")[0]
        if base == "en":
            pcm = await self.engines.synthesize(text, voice="alloy")
        else:
            engine = await asyncio.to_thread(_espeak)
            pcm = await asyncio.to_thread(engine.synthesize, text, voice=base)
        for i in range(0, len(pcm), FRAME_BYTES):
            await self.emit(
                {
                    "type": "session.output_audio.delta",
                    "delta": _b64(pcm[i : i + FRAME_BYTES]),
                    "sample_rate": TRANSLATION_SAMPLE_RATE,
                    "channels": 1,
                    "format": "pcm16",
                    "elapsed_ms": self.elapsed_ms,
                }
            )


@dataclass
class _Phrase:
    """A phrase to translate: its audio, where it starts, its live transcriber if any."""

    pcm: bytes
    start_ms: int
    live: IncrementalTranscriber | None
    speech_end_ms: int | None  # within ``pcm``, when the VAD ended it


def merge_audio(session: dict[str, Any], audio: Any) -> None:
    """Apply an ``audio`` update (transcription, noise reduction, language) to ``session``."""
    if not isinstance(audio, Mapping):
        return
    mine = session["audio"]
    entry = audio.get("input")
    if isinstance(entry, Mapping):
        for key in ("transcription", "noise_reduction"):
            if key in entry:
                mine["input"][key] = entry[key]
    out = audio.get("output")
    if isinstance(out, Mapping) and out.get("language"):
        mine["output"]["language"] = str(out["language"])


def session_object(initial: Mapping[str, Any] | None, model: str = DEFAULT_MODEL) -> dict[str, Any]:
    """A ``RealtimeTranslationSession``: the defaults with ``initial`` (a create request)."""
    session: dict[str, Any] = {
        "id": new_id("sess"),
        "type": "translation",
        "expires_at": now_s() + 3600,
        "model": model,
        "audio": {
            "input": {"transcription": None, "noise_reduction": None},
            "output": {"language": DEFAULT_LANGUAGE},
        },
    }
    if initial:
        if isinstance(initial.get("model"), str):
            session["model"] = initial["model"]
        merge_audio(session, initial.get("audio"))
    return session


def _espeak() -> TtsEngine:
    return load_tts("espeak")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- routes ------------------------------------------------------------------------------


async def translation_socket(ws: WebSocket) -> None:
    """``WS /v1/realtime/translations``: one :class:`TranslationServerSession` per connection."""
    state: ServerState = ws.app.state.server
    protos = list(ws.scope.get("subprotocols") or [])
    ok, eph = state.keys.check(credential_from(ws.headers, protos))
    if not ok or (eph is not None and eph.dialect != "translation"):
        state.refusals.warning("auth", "refused a translation connection: bad credentials")
        await deny(ws, 401, "Incorrect API key provided.", "invalid_api_key", 4001)
        return
    if await refuse_when_full(ws, state):
        return
    state.translation_sessions += 1  # counted before the accept's await: the limit holds
    try:
        await _serve_translation(ws, state, eph, protos)
    finally:
        state.translation_sessions -= 1


async def _serve_translation(
    ws: WebSocket, state: ServerState, eph: EphemeralKey | None, protos: list[str]
) -> None:
    await ws.accept(subprotocol="realtime" if "realtime" in protos else None)
    translator = state.translator
    if translator is None:
        message = f"this server cannot translate: no translator is available; {TRANSLATOR_HELP}"
        event = error_event(message, type="server_error", code="translator_unavailable")
        with contextlib.suppress(Exception):
            await ws.send_text(json.dumps(event))
            await ws.close(1011, "no translator")
        return

    queue: asyncio.Queue[str | None] = asyncio.Queue(state.send_queue_size)

    async def emit(event: dict[str, Any]) -> None:
        await queue.put(json.dumps(event, separators=(",", ":")))

    async def writer() -> None:
        while (text := await queue.get()) is not None:
            try:
                await ws.send_text(text)
            except (WebSocketDisconnect, OSError):  # the client is gone (uvicorn: OSError)
                return

    model = ws.query_params.get("model") or DEFAULT_MODEL
    session = TranslationServerSession(
        emit=emit,
        engines=state.engines,
        translator=translator,
        model=model,
        initial=eph.session if eph is not None else None,
        max_append_bytes=state.limits.max_append_bytes,
    )
    writer_task = asyncio.create_task(writer())

    async def expire() -> None:  # the same time limit as conversations (Limits.session_seconds)
        await asyncio.sleep(state.limits.session_seconds)
        message = f"the session reached its time limit ({state.limits.session_seconds:g} s)"
        await emit(error_event(message, code="session_expired"))
        await finish_connection(ws, queue, writer_task, 1001, "session_expired")

    expiry = asyncio.create_task(expire())
    try:
        await session.start()
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                break
            frame = msg.get("text")
            if frame is None and msg.get("bytes") is not None:
                frame = msg["bytes"].decode("utf-8", "replace")
            if frame is not None and await session.handle(frame):
                break
    except WebSocketDisconnect:
        log.debug("the translation client left")
    finally:
        expiry.cancel()
        await session.close()
        await finish_connection(ws, queue, writer_task, 1000, "")


async def translation_client_secrets(request: Request) -> Response:
    """``POST /v1/realtime/translations/client_secrets``: an ephemeral translation key."""
    state: ServerState = request.app.state.server
    ok, eph = state.keys.check(credential_from(request.headers))
    if not ok or eph is not None:  # ephemeral keys cannot mint more keys
        return JSONResponse(_error_body("Incorrect API key provided.", "invalid_api_key"), 401)
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return JSONResponse(_error_body("The body must be a JSON object.", "invalid_json"), 400)
    session = body.get("session")
    if not isinstance(session, dict) or not isinstance(session.get("model"), str):
        return JSONResponse(_error_body("session.model is required.", "missing_required"), 400)
    problem = unsupported_format(session)
    if problem is not None:
        return JSONResponse(_error_body(problem, "invalid_value"), 400)
    expires = body.get("expires_after") or {}
    seconds = expires.get("seconds", 600) if isinstance(expires, dict) else None
    if not isinstance(seconds, int) or not 10 <= seconds <= 7200:
        return JSONResponse(
            _error_body("expires_after.seconds must be an integer from 10 to 7200.", "invalid"),
            400,
        )
    audio = session.get("audio") or {}
    language = ((audio.get("output") or {}) if isinstance(audio, dict) else {}).get("language")
    translator = state.translator
    if translator is not None and isinstance(language, str):
        reason = translator.check("en", language)
        if reason is not None:
            return JSONResponse(_error_body(reason, "unsupported_language"), 400)
    key = state.keys.mint(seconds, session=session, dialect="translation")
    described = session_object(session)
    described["expires_at"] = key.expires_at
    return JSONResponse({"value": key.value, "expires_at": key.expires_at, "session": described})


def _error_body(message: str, code: str) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "code": code, "param": None}
    }


def translation_routes() -> list[BaseRoute]:
    """The translation routes, for :func:`realtime.server.app.create_app`."""
    return [
        WebSocketRoute("/v1/realtime/translations", translation_socket),
        Route(
            "/v1/realtime/translations/client_secrets",
            translation_client_secrets,
            methods=["POST"],
        ),
    ]
