"""One realtime session of the local server: client events in, server events out.

:class:`ServerSession` is driven by the connection handler: ``await handle(frame)`` for each
text frame the client sends; everything it has to say goes through the ``emit`` callback it
was given (already rendered for the connection's dialect). It never closes the connection on
a bad event: malformed JSON, unknown types and invalid fields are answered with an ``error``
naming the client's ``event_id``, and the session goes on.

Heavy work (speech recognition, synthesis) runs in worker threads; VAD runs inline (about
10 ms of CPU per second of audio).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from audio import pcm as pcm_mod

from ..events import parse_client_event
from ..events.config import SessionConfig
from ..exceptions import ConfigError, ProtocolError
from .config import ServerConfig
from .engine_set import EngineSet
from .exceptions import ClientInputError, StoreError
from .generation import ResponseRun
from .limits import AudioBudget, Limits
from .responders import Responder
from .store import BYTES_PER_MS, ConversationStore
from .stt import IncrementalTranscriber
from .validation import check_response, check_session, load_frame
from .wire import (
    GA_ONLY_EVENTS,
    ServerDialect,
    beta_name,
    error_event,
    new_id,
    now_s,
    render_item,
    render_part,
)

__all__ = ["Limits", "ServerSession"]

log = logging.getLogger("realtime.server")

Emit = Callable[[dict[str, Any]], Awaitable[None]]

VAD_BATCH_BYTES = 64 * BYTES_PER_MS
LIVE_PASS_INTERVAL_S = 1.0
LIVE_MAX_MS = 60_000  # longer turns are transcribed once, at commit
B64_CHUNK = 4 * 256 * 1024  # base64 characters decoded at a time (a multiple of 4)


class ServerSession:
    """The protocol state of one connection (see the module docstring)."""

    def __init__(
        self,
        *,
        dialect: ServerDialect,
        emit: Emit,
        engines: EngineSet,
        responder: Responder,
        model: str = "gpt-realtime",
        transcription_only: bool = False,
        limits: Limits | None = None,
        budget: AudioBudget | None = None,
    ) -> None:
        self.dialect: ServerDialect = dialect
        self._emit_raw = emit
        self.engines = engines
        self.responder = responder
        self.limits = limits or Limits()
        self.budget = budget or AudioBudget(self.limits.max_server_audio_ms)
        self._held = 0  # input audio bytes reserved in the budget (buffer + committed)
        self.config = (
            ServerConfig.for_transcription() if transcription_only else ServerConfig(model=model)
        )
        self.session_id = new_id("sess")
        self.conversation_id = new_id("conv")
        self.created_at = time.monotonic()
        self.expires_at = now_s() + int(self.limits.session_seconds)
        self.store = ConversationStore()
        self.buffer = bytearray()  # committed-to-be input audio, PCM16 24 kHz
        self.buffer_start_ms = 0.0  # stream position of buffer[0]
        self.stream_ms = 0.0  # total input audio received, in ms
        self.response: ResponseRun | None = None
        self._vad: Any = None
        self._speech_item_id: str | None = None
        self._live: IncrementalTranscriber | None = None
        self._decoder: pcm_mod.StreamDecoder | None = None
        self._pass_requested = False
        self._speech_end_ms: float | None = None  # speech end within the committed audio
        self._vad_pending = bytearray()
        self._cancelled = threading.Event()  # set on close: queued engine work is skipped
        self._transcripts: dict[str, asyncio.Future[str]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.expired = False
        self.assistant_audio_sent = False

    # -- output -------------------------------------------------------------------------
    async def emit(self, event: dict[str, Any]) -> None:
        """Send a server event (GA-named) rendered for this session's dialect."""
        if self._closed:
            return
        event.setdefault("event_id", new_id("event"))
        if self.dialect == "beta":
            kind = event["type"]
            if kind in GA_ONLY_EVENTS:
                return
            event["type"] = beta_name(kind)
            if "item" in event and isinstance(event["item"], dict):
                event["item"] = render_item(event["item"], "beta")
            if "part" in event and isinstance(event["part"], dict):
                event["part"] = render_part(event["part"], "beta")
        await self._emit_raw(event)

    async def error(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        event_id: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        """Answer a client event with an ``error``."""
        await self.emit(error_event(message, type=type, code=code, param=param, event_id=event_id))

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run a background task owned by the session (cancelled on close)."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("session task failed", exc_info=task.exception())

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Send ``session.created``; start loading the engines in the background."""
        kind = "session.created"
        if self.dialect == "beta" and self.config.type == "transcription":
            kind = "transcription_session.created"
        await self.emit({"type": kind, "session": self.session_object()})
        self.spawn(asyncio.to_thread(self.engines.stt_engine))

    async def close(self) -> None:
        """Stop everything the session runs."""
        self._closed = True
        self._cancelled.set()
        self._drop_live()
        if self.response is not None:
            self.response.cancel("client_closed")
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            # the tasks' own failures were logged by _task_done; our cancellation propagates
            await asyncio.wait(list(self._tasks))
        self.buffer = bytearray()
        self._release(self._held)

    async def expire(self) -> None:
        """The time limit is reached: say so (the connection handler then closes with 1001)."""
        self.expired = True
        if self.response is not None:
            self.response.cancel("client_closed")
        await self.error(
            "Your session hit the maximum duration of "
            f"{int(self.limits.session_seconds // 60)} minutes.",
            type="invalid_request_error",
            code="session_expired",
        )

    async def apply_initial(self, session: Mapping[str, Any]) -> None:
        """Apply the configuration an ephemeral key was minted with (before ``start``)."""
        update = SessionConfig.from_wire(session, self.dialect)
        self.config.apply(update)
        if self.config.type == "transcription" and self.config.transcription is None:
            self.config.transcription = {"model": "gpt-4o-transcribe"}

    def session_object(self) -> dict[str, Any]:
        """The session as this dialect writes it."""
        return self.config.session_object(
            self.dialect, session_id=self.session_id, expires_at=self.expires_at
        )

    # -- input --------------------------------------------------------------------------
    async def handle(self, frame: str | bytes) -> None:
        """Handle one client frame; never raises for bad input (answers with an error).

        A failure of the server itself is logged and answered with a ``server_error``; the
        session goes on.
        """
        if len(frame) > self.limits.max_frame_bytes:
            await self.error(
                f"The event is larger than the maximum of {self.limits.max_frame_bytes} bytes.",
                code="frame_too_large",
            )
            return
        try:
            data = load_frame(frame, self.limits.max_json_depth)
        except ClientInputError as exc:
            await self.error(exc.message, code=exc.code, param=exc.param)
            return
        except ValueError:  # JSONDecodeError, UnicodeDecodeError
            await self.error(
                "The event could not be parsed: invalid JSON.", code="invalid_json", param=None
            )
            return
        try:
            await self._dispatch(data)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the local server failed handling a client event")
            event_id = data.get("event_id") if isinstance(data, dict) else None
            await self.error(
                "The server had an error while processing your event.",
                type="server_error",
                code="server_error",
                event_id=event_id if isinstance(event_id, str) else None,
            )

    async def _dispatch(self, data: Any) -> None:
        if not isinstance(data, dict):
            await self.error("An event must be a JSON object.", code="invalid_json")
            return
        event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
        kind = data.get("type")
        if not isinstance(kind, str):
            await self.error(
                "The 'type' field is missing.",
                code="invalid_event",
                param="type",
                event_id=event_id,
            )
            return
        handler = self._handlers().get(kind)
        if handler is None:
            await self.error(
                f"Invalid value: '{kind}'. Supported values are: "
                + ", ".join(sorted(self._handlers())),
                code="invalid_value",
                param="type",
                event_id=event_id,
            )
            return
        if kind != "input_audio_buffer.append":  # appends are checked without a copy
            try:
                parse_client_event(json.dumps(data), self.dialect)
            except ProtocolError as exc:
                await self.error(
                    str(exc), code="invalid_value", param=_param_of(exc), event_id=event_id
                )
                return
        try:
            await handler(data, event_id)
        except ClientInputError as exc:
            await self.error(exc.message, code=exc.code, param=exc.param, event_id=event_id)
        except ConfigError as exc:
            await self.error(str(exc), code="invalid_value", param="session", event_id=event_id)
        except StoreError as exc:
            await self.error(str(exc), code=exc.code, param=exc.param, event_id=event_id)

    def _handlers(self) -> dict[str, Callable[[dict[str, Any], str | None], Awaitable[None]]]:
        table: dict[str, Callable[[dict[str, Any], str | None], Awaitable[None]]] = {
            "session.update": self.on_session_update,
            "input_audio_buffer.append": self.on_append,
            "input_audio_buffer.commit": self.on_commit,
            "input_audio_buffer.clear": self.on_clear,
            "conversation.item.create": self.on_item_create,
            "conversation.item.delete": self.on_item_delete,
            "conversation.item.retrieve": self.on_item_retrieve,
            "conversation.item.truncate": self.on_item_truncate,
            "response.create": self.on_response_create,
            "response.cancel": self.on_response_cancel,
        }
        if self.dialect == "ga":
            table["output_audio_buffer.clear"] = self.on_output_clear
        else:
            table["transcription_session.update"] = self.on_transcription_session_update
        return table

    # -- session ------------------------------------------------------------------------
    async def on_session_update(self, data: dict[str, Any], event_id: str | None) -> None:
        """``session.update``: validate, merge, echo ``session.updated``."""
        session = data.get("session")
        check_session(session, self.dialect)
        assert isinstance(session, Mapping)
        update = SessionConfig.from_wire(session, self.dialect)
        new = self.config.copy()
        new.apply(update)
        if new.voice != self.config.voice and self.assistant_audio_sent:
            await self.error(
                "Cannot update a conversation's voice if assistant audio is present.",
                code="cannot_update_voice",
                param="session.voice",
                event_id=event_id,
            )
            return
        if self.config.type != new.type and len(self.store):
            raise ConfigError("the session type cannot change once the conversation has items")
        self.config = new
        self._vad = None  # rebuilt with the new turn detection settings
        self._vad_pending.clear()
        await self.emit({"type": "session.updated", "session": self.session_object()})

    async def on_transcription_session_update(
        self, data: dict[str, Any], event_id: str | None
    ) -> None:
        """Beta ``transcription_session.update``: the session becomes transcription-only."""
        session = dict(data.get("session") or {})
        check_session(session, "beta")
        update = SessionConfig.from_wire(session, "beta", kind="transcription")
        new = self.config.copy()
        new.apply(update)
        if new.transcription is None:
            new.transcription = {"model": "gpt-4o-transcribe"}
        self.config = new
        self._vad = None
        self._vad_pending.clear()
        obj = self.session_object()
        await self.emit({"type": "transcription_session.updated", "session": obj})

    # -- input audio --------------------------------------------------------------------
    async def on_append(self, data: dict[str, Any], event_id: str | None) -> None:
        """``input_audio_buffer.append``: decode, buffer, run VAD and live transcription.

        PCM16 is decoded from base64 straight into the buffer, slice by slice: an append
        costs the audio it carries, plus its base64 text while it is decoded.
        """
        audio = data.pop("audio", "")
        if not isinstance(audio, str):
            raise ConfigError("audio must be a base64 string")
        size = _decoded_size(audio)
        if size is not None and size > self.limits.max_append_bytes:
            mib = self.limits.max_append_bytes / (1024 * 1024)
            await self.error(
                f"Audio content exceeds the maximum of {mib:g} MiB per append.",
                code="audio_too_large",
                param="audio",
                event_id=event_id,
            )
            return
        invalid = "Invalid 'audio'. Expected base64-encoded audio."
        if size is None:
            await self.error(invalid, code="invalid_value", param="audio", event_id=event_id)
            return
        pcm16 = self.config.input_format == "pcm16"
        raw = b""
        if not pcm16:
            try:
                raw = self._decode_input(_b64decode(audio))
            except (binascii.Error, ValueError) as exc:
                await self.error(
                    f"Invalid audio: {exc}", code="invalid_value", param="audio", event_id=event_id
                )
                return
            size = len(raw)
        if not await self._admit(size, event_id):
            return
        start = len(self.buffer)
        if pcm16:
            try:
                _b64decode_into(audio, self.buffer)
            except (binascii.Error, ValueError):
                del self.buffer[start:]
                self._release(size)
                await self.error(invalid, code="invalid_value", param="audio", event_id=event_id)
                return
        else:
            self.buffer += raw
        del audio, raw
        added = len(self.buffer) - start
        start_ms = self.stream_ms
        self.stream_ms += added / BYTES_PER_MS
        if len(self.buffer) > LIVE_MAX_MS * BYTES_PER_MS:
            # a turn this long is transcribed at commit (window by window): live passes
            # over audio that never settles (noise) would grow with the turn
            self._drop_live()
        elif self.config.turn_detection is None:
            if self._live is None:
                self._live = self._new_live()
                if self._live is not None:
                    self._live.append(bytes(self.buffer))
            else:
                self._live.append(bytes(self.buffer[start:]))
        if self.config.turn_detection is not None:
            pcm = bytes(self.buffer[start:])
            if self._live is not None and self._speech_item_id is not None:
                self._live.append(pcm)
            await self._run_vad(pcm, start_ms)

    async def _admit(self, size: int, event_id: str | None) -> bool:
        """Whether ``size`` more bytes fit the session's buffer and the server's budget."""
        if (len(self.buffer) + size) / BYTES_PER_MS > self.limits.max_buffer_ms:
            await self.error(
                "The input audio buffer is full; commit or clear it.",
                code="input_audio_buffer_full",
                param="audio",
                event_id=event_id,
            )
            return False
        if not self._reserve(size):
            minutes = self.limits.max_server_audio_ms / 60000
            await self.error(
                f"The server holds its maximum of {minutes:g} minutes of input audio across "
                "sessions; commit less, delete items or try later.",
                code="server_audio_limit_reached",
                param="audio",
                event_id=event_id,
            )
            return False
        return True

    def _new_live(self) -> IncrementalTranscriber | None:
        """A live transcriber for the turn being spoken (when the engine is loaded)."""
        engine = self.engines.loaded_stt()
        if engine is None:
            return None
        opts = self.config.transcription or {}
        # Passes every second settle words while the user speaks, and one more starts when
        # a pause begins (see _run_vad). Measured here with a free CPU, end of speech ->
        # transcript: 0.73-0.90 s with 1 s passes, 0.92-1.17 s with pause-only passes (4 s).
        return IncrementalTranscriber(
            engine,
            language=opts.get("language") or None,
            prompt=opts.get("prompt") or None,
            interval_s=LIVE_PASS_INTERVAL_S,
        )

    def _reserve(self, n: int) -> bool:
        if not self.budget.reserve(n):
            return False
        self._held += n
        return True

    def _release(self, n: int) -> None:
        n = min(n, self._held)
        self._held -= n
        self.budget.release(n)

    def _drop_live(self) -> None:
        if self._live is not None:
            self._live.close()
            self._live = None

    def _decode_input(self, raw: bytes) -> bytes:
        """Input audio in the session format -> PCM16 24 kHz, statefully (no chunk clicks)."""
        fmt = self.config.input_format
        if fmt == "pcm16":
            return raw
        if self._decoder is None or self._decoder.format != fmt:
            self._decoder = pcm_mod.StreamDecoder(fmt)  # type: ignore[arg-type]
        return self._decoder.decode(raw)

    def _flush_decoder(self) -> None:
        """Move the decoder's tail into the buffer (before a commit)."""
        if self._decoder is not None:
            tail = self._decoder.flush()
            self._reserve(len(tail))  # a few samples: kept even when over the budget
            self.buffer += tail
            self._decoder = None

    async def _vad_stream(self) -> Any:
        if self._vad is None:
            td = self.config.turn_detection or {}
            self._vad = await self.engines.vad(
                threshold=float(td.get("threshold") or 0.5),
                prefix_padding_ms=int(td.get("prefix_padding_ms") or 300),
                silence_duration_ms=int(td.get("silence_duration_ms") or 500),
                start_ms=self.stream_ms,
            )
        return self._vad

    async def _run_vad(self, pcm: bytes, start_ms: float) -> None:
        # VAD runs on batches of at least 64 ms (two Silero windows) in a worker thread:
        # it is most of the server's CPU per session, and must not hold the event loop
        self._vad_pending += pcm
        if len(self._vad_pending) < VAD_BATCH_BYTES:
            return
        batch = bytes(self._vad_pending)
        self._vad_pending.clear()
        vad = await self._vad_stream()
        for ev in await asyncio.to_thread(vad.process, batch):
            if ev.kind == "started":
                await self._on_speech_started(int(ev.ms))
            else:
                await self._on_speech_stopped(int(ev.ms), int(ev.speech_ms))
        live = self._live
        if live is not None and self._speech_item_id is not None:
            # a pause is beginning: transcribe what was said now, so that when the pause
            # ends the turn little or nothing is left to do at commit
            if vad.silence_ms > 0:
                if not self._pass_requested:
                    self._pass_requested = live.request_pass()
            else:
                self._pass_requested = False

    async def _on_speech_started(self, audio_start_ms: int) -> None:
        self._speech_item_id = new_id("item")
        # keep the prefix padding, drop older audio (it was silence)
        keep_from = max(0.0, audio_start_ms - self.buffer_start_ms)
        cut = int(keep_from) * BYTES_PER_MS
        if cut > 0:
            dropped = min(cut, len(self.buffer))
            del self.buffer[:dropped]
            self._release(dropped)
            self.buffer_start_ms += keep_from
        self._drop_live()
        self._live = self._new_live()
        if self._live is not None:
            self._live.append(bytes(self.buffer))
        await self.emit(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": audio_start_ms,
                "item_id": self._speech_item_id,
            }
        )
        td = self.config.turn_detection or {}
        run = self.response
        if (
            run is not None
            and td.get("interrupt_response", True)
            and self.config.type != "transcription"
        ):
            run.cancel("turn_detected")

    async def _on_speech_stopped(self, audio_end_ms: int, speech_end_ms: int) -> None:
        item_id = self._speech_item_id or new_id("item")
        self._speech_end_ms = max(0.0, speech_end_ms - self.buffer_start_ms)
        await self.emit(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": audio_end_ms,
                "item_id": item_id,
            }
        )
        await self._commit(None, item_id=item_id)
        self._speech_item_id = None
        td = self.config.turn_detection or {}
        if self.config.type != "transcription" and td.get("create_response", True):
            await self._start_response({}, None)

    async def on_commit(self, data: dict[str, Any], event_id: str | None) -> None:
        """``input_audio_buffer.commit``: at least 100 ms, else the service's error."""
        ms = len(self.buffer) / BYTES_PER_MS
        if ms < 100:
            await self.error(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"100ms of audio, but buffer only has {ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
                param=None,
                event_id=event_id,
            )
            return
        await self._commit(event_id)

    async def _commit(self, event_id: str | None, *, item_id: str | None = None) -> None:
        self._flush_decoder()
        audio = self.buffer  # moved into the conversation, not copied
        self.buffer = bytearray()
        self.buffer_start_ms = self.stream_ms
        live, self._live = self._live, None
        speech_end, self._speech_end_ms = self._speech_end_ms, None
        self._pass_requested = False
        item_id = item_id or new_id("item")
        previous = self.store.last_id
        await self.emit(
            {
                "type": "input_audio_buffer.committed",
                "previous_item_id": previous,
                "item_id": item_id,
            }
        )
        part: dict[str, Any] = {"type": "input_audio", "transcript": None}
        data = {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [part],
        }
        stored = self.store.insert(data)
        stored.audio[0] = audio
        await self.emit(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": data}
        )
        await self.emit(
            {"type": "conversation.item.done", "previous_item_id": previous, "item": data}
        )
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[str] = loop.create_future()
        self._transcripts[item_id] = fut
        self.spawn(self._transcribe(item_id, audio, fut, live, speech_end))

    async def _transcribe(
        self,
        item_id: str,
        audio: bytes | bytearray,
        fut: asyncio.Future[str],
        live: IncrementalTranscriber | None = None,
        speech_end_ms: float | None = None,
    ) -> None:
        """Transcribe a committed user turn; emit transcription events when configured.

        With a live transcriber (fed while the user spoke) only the tail is left to do.
        """
        wanted = self.config.transcription is not None
        try:
            deltas: list[str] | None = None
            if live is not None:
                finished = await asyncio.to_thread(live.finish, speech_end_ms)
                text, deltas = finished.text.strip(), list(finished.deltas)
            else:
                text = await self.engines.transcribe(
                    audio, self.config.transcription, cancelled=self._cancelled
                )
        except Exception as exc:
            log.warning("transcription failed: %s", exc)
            if not fut.done():
                fut.set_result("")
            if wanted:
                await self.emit(
                    {
                        "type": "conversation.item.input_audio_transcription.failed",
                        "item_id": item_id,
                        "content_index": 0,
                        "error": {
                            "type": "transcription_error",
                            "code": "audio_unintelligible",
                            "message": str(exc)[:200],
                            "param": None,
                        },
                    }
                )
            return
        if item_id in self.store:
            content = self.store.get(item_id).data["content"]
            if content:
                content[0]["transcript"] = text
        if not fut.done():
            fut.set_result(text)
        if wanted:
            for piece in deltas if deltas and "".join(deltas).strip() == text else _chunks(text):
                await self.emit(
                    {
                        "type": "conversation.item.input_audio_transcription.delta",
                        "item_id": item_id,
                        "content_index": 0,
                        "delta": piece,
                    }
                )
            seconds = len(audio) / BYTES_PER_MS / 1000
            await self.emit(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item_id,
                    "content_index": 0,
                    "transcript": text,
                    "usage": {"type": "duration", "seconds": round(seconds, 3)},
                }
            )

    async def transcript_of(self, item_id: str, timeout: float = 30.0) -> str | None:
        """Wait for the transcript of a committed user turn (None when none is pending)."""
        fut = self._transcripts.get(item_id)
        if fut is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            return None

    async def on_clear(self, data: dict[str, Any], event_id: str | None) -> None:
        """``input_audio_buffer.clear``."""
        self._release(len(self.buffer))
        self.buffer = bytearray()
        self.buffer_start_ms = self.stream_ms
        self._vad = None
        self._vad_pending.clear()
        self._decoder = None
        self._drop_live()
        await self.emit({"type": "input_audio_buffer.cleared"})

    # -- conversation -------------------------------------------------------------------
    async def on_item_create(self, data: dict[str, Any], event_id: str | None) -> None:
        """``conversation.item.create``: insert (after ``previous_item_id``) and announce."""
        item = dict(data.get("item") or {})
        item.setdefault("id", new_id("item"))
        item.pop("object", None)
        kind = item.get("type")
        if kind == "message":
            item.setdefault("status", "completed")
            item["content"] = [_ga_part(p) for p in item.get("content") or []]
        elif (
            kind == "function_call_output"
            and self.store.find_call(str(item.get("call_id"))) is None
        ):
            log.info("function_call_output for an unknown call_id %s", item.get("call_id"))
        previous = data.get("previous_item_id")
        stored = self.store.insert(item, previous_item_id=previous)
        for idx, part in enumerate(item.get("content") or []):
            if part.get("type") == "input_audio" and isinstance(part.get("audio"), str):
                try:
                    raw = base64.b64decode(part["audio"], validate=True)
                except (binascii.Error, ValueError):
                    self.store.delete(stored.id)
                    raise ConfigError("content audio must be base64") from None
                pcm = pcm_mod.decode(raw, self.config.input_format)  # type: ignore[arg-type]
                if item.get("role") != "user" or not self._reserve(len(pcm)):
                    self.store.delete(stored.id)
                    raise ClientInputError(
                        "Audio content parts are for user messages, within the server's "
                        "limit of buffered input audio.",
                        code="server_audio_limit_reached"
                        if item.get("role") == "user"
                        else "invalid_value",
                        param="item.content",
                    )
                stored.audio[idx] = bytearray(pcm)
                part.pop("audio", None)
                loop = asyncio.get_running_loop()
                fut: asyncio.Future[str] = loop.create_future()
                self._transcripts[stored.id] = fut
                self.spawn(self._transcribe(stored.id, pcm, fut))
        prev_id = self.store.previous_id(stored.id)
        await self.emit(
            {"type": "conversation.item.added", "previous_item_id": prev_id, "item": item}
        )
        await self.emit(
            {"type": "conversation.item.done", "previous_item_id": prev_id, "item": item}
        )

    async def on_item_delete(self, data: dict[str, Any], event_id: str | None) -> None:
        """``conversation.item.delete``."""
        item_id = str(data.get("item_id"))
        stored = self.store.get(item_id)
        user_audio = sum(len(a) for a in stored.audio.values())
        self.store.delete(item_id)
        if stored.data.get("role") == "user":
            self._release(user_audio)
        await self.emit({"type": "conversation.item.deleted", "item_id": item_id})

    async def on_item_retrieve(self, data: dict[str, Any], event_id: str | None) -> None:
        """``conversation.item.retrieve``: the item with its (possibly truncated) audio."""
        stored = self.store.get(str(data.get("item_id")))
        item = json.loads(json.dumps(stored.data))
        for idx, audio in stored.audio.items():
            if idx < len(item.get("content") or []):
                encoded = pcm_mod.encode(bytes(audio), self.config.output_format)  # type: ignore[arg-type]
                item["content"][idx]["audio"] = base64.b64encode(encoded).decode("ascii")
        await self.emit({"type": "conversation.item.retrieved", "item": item})

    async def on_item_truncate(self, data: dict[str, Any], event_id: str | None) -> None:
        """``conversation.item.truncate``: cut the audio and the transcript heard."""
        item_id = str(data.get("item_id"))
        content_index = int(data.get("content_index", 0))
        audio_end_ms = int(data.get("audio_end_ms", 0))
        run = self.response
        if run is not None and run.item_id == item_id:
            run.stop_audio()
        self.store.truncate(item_id, content_index, audio_end_ms)
        await self.emit(
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": content_index,
                "audio_end_ms": audio_end_ms,
            }
        )

    # -- responses ----------------------------------------------------------------------
    async def on_response_create(self, data: dict[str, Any], event_id: str | None) -> None:
        """``response.create``: one active response at a time."""
        if self.config.type == "transcription":
            await self.error(
                "Transcription sessions do not create responses.",
                code="invalid_request",
                event_id=event_id,
            )
            return
        response = data.get("response")
        check_response(response, self.dialect)
        await self._start_response(dict(response or {}), event_id)

    async def _start_response(self, overrides: dict[str, Any], event_id: str | None) -> None:
        if self.response is not None and not self.response.finished:
            await self.error(
                "Conversation already has an active response in progress: "
                f"{self.response.response_id}. Wait until the response is finished before "
                "creating a new one.",
                code="conversation_already_has_active_response",
                event_id=event_id,
            )
            return
        run = ResponseRun(self, overrides)
        self.response = run
        self.spawn(run.run())

    async def on_response_cancel(self, data: dict[str, Any], event_id: str | None) -> None:
        """``response.cancel``: only an active response (else ``response_cancel_not_active``)."""
        run = self.response
        wanted = data.get("response_id")
        if run is None or run.finished or (wanted and wanted != run.response_id):
            await self.error(
                "Cancellation failed: no active response found.",
                code="response_cancel_not_active",
                event_id=event_id,
            )
            return
        run.cancel("client_cancelled")

    async def on_output_clear(self, data: dict[str, Any], event_id: str | None) -> None:
        """GA ``output_audio_buffer.clear``: stop streaming the current response's audio."""
        run = self.response
        if run is not None and not run.finished:
            run.stop_audio()
        await self.emit(
            {
                "type": "output_audio_buffer.cleared",
                "response_id": run.response_id if run is not None else None,
            }
        )


def _ga_part(part: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(part)
    kind = out.get("type")
    out["type"] = {"text": "output_text", "audio": "output_audio"}.get(str(kind), kind)
    return out


def _chunks(text: str, words: int = 4) -> list[str]:
    parts = text.split(" ")
    return (
        [
            " ".join(parts[i : i + words]) + (" " if i + words < len(parts) else "")
            for i in range(0, len(parts), words)
        ]
        if text
        else []
    )


def _decoded_size(text: str) -> int | None:
    """The byte length base64 ``text`` decodes to (None when its length is not valid)."""
    if len(text) % 4:
        return None
    pad = 2 if text.endswith("==") else 1 if text.endswith("=") else 0
    return len(text) // 4 * 3 - pad


def _b64decode(text: str) -> bytes:
    """Strict base64 decoding (``binascii.Error`` for anything else)."""
    return base64.b64decode(text, validate=True) if text else b""


def _b64decode_into(text: str, out: bytearray) -> None:
    """Strict base64 decoding appended to ``out`` in slices (no full-size intermediate)."""
    last = len(text) - B64_CHUNK
    for i in range(0, len(text), B64_CHUNK):
        piece = text[i : i + B64_CHUNK]
        if i < last and "=" in piece:
            raise binascii.Error("padding inside the base64 text")
        out += base64.b64decode(piece, validate=True)


def _param_of(exc: ProtocolError) -> str | None:
    text = str(exc)
    marker = "field "
    if marker in text:
        return text.split(marker, 1)[1].split()[0].strip("'\"`:,")
    return None
