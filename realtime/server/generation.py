"""One response of the local server: responder output -> the protocol's event sequence.

For a spoken reply (GA names; :mod:`.wire` renders beta):
``response.created`` -> ``response.output_item.added`` -> ``conversation.item.added`` ->
``response.content_part.added`` -> per sentence: ``response.output_audio_transcript.delta`` and
``response.output_audio.delta`` … -> ``response.output_audio.done`` ->
``response.output_audio_transcript.done`` -> ``response.content_part.done`` ->
``conversation.item.done`` -> ``response.output_item.done`` -> ``response.done`` (with usage).

A function call is an item of its own with ``response.function_call_arguments.delta`` /
``.done``. Audio is synthesized sentence by sentence as the responder's text arrives and
sent as fast as it is synthesized (or paced in real time when the server is so configured).
A cancel (``response.cancel`` or new speech) stops generation mid-stream; the partial item
is closed ``incomplete`` and ``response.done`` says ``cancelled``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Mapping
from typing import Any, Protocol

from audio import pcm as pcm_mod

from .config import FORMAT_OBJECTS, ServerConfig
from .engine_set import EngineSet
from .limits import Limits
from .responders import Responder, ResponderContext, TextDelta, ToolCall
from .store import BYTES_PER_MS, ConversationStore
from .wire import ServerDialect, new_id, render_response, usage_object

__all__ = ["ResponseHost", "ResponseRun"]


class ResponseHost(Protocol):
    """What a response needs from its session (the session implements it; this module does
    not import the session)."""

    dialect: ServerDialect
    config: ServerConfig
    engines: EngineSet
    responder: Responder
    store: ConversationStore
    limits: Limits
    conversation_id: str
    assistant_audio_sent: bool

    async def emit(self, event: dict[str, Any]) -> None:
        """Send a server event (GA-named)."""

    async def transcript_of(self, item_id: str, timeout: float = 30.0) -> str | None:
        """The transcript of a committed user turn (None when none is pending)."""


AUDIO_CHUNK_MS = 200


class ResponseRun:
    """A response in progress (created by the session; ``run()`` is its task)."""

    def __init__(self, session: ResponseHost, overrides: Mapping[str, Any]) -> None:
        self.session = session
        cfg = session.config
        self.response_id = new_id("resp")
        self.finished = False
        self.item_id: str | None = None
        self._task: asyncio.Task[Any] | None = None
        self._cancel_reason: str | None = None
        self._audio_stopped = False
        self.output: list[dict[str, Any]] = []
        modalities = overrides.get("output_modalities") or overrides.get("modalities")
        if modalities is None:
            modalities = cfg.output_modalities
        self.audio = "audio" in modalities
        self.modalities = ["audio"] if self.audio else ["text"]
        audio_out = (overrides.get("audio") or {}).get("output") or {}
        self.voice = str(audio_out.get("voice") or overrides.get("voice") or cfg.voice)
        fmt = audio_out.get("format") or overrides.get("output_audio_format")
        self.output_format = _format_name(fmt) if fmt is not None else cfg.output_format
        self.instructions = overrides.get("instructions") or cfg.instructions
        self.tools = overrides.get("tools") if "tools" in overrides else cfg.tools
        self.tool_choice = overrides.get("tool_choice", cfg.tool_choice)
        self.in_conversation = overrides.get("conversation", "auto") != "none"
        self.input = overrides.get("input")
        self.metadata = overrides.get("metadata")
        self.speed = cfg.speed
        self._tokens = {"input_text": 0, "input_audio": 0, "output_text": 0, "output_audio": 0}

    # -- control ------------------------------------------------------------------------
    def cancel(self, reason: str) -> None:
        """Stop generation (``client_cancelled``, ``turn_detected``, ``client_closed``)."""
        if self.finished or self._cancel_reason is not None:
            return
        self._cancel_reason = reason
        if self._task is not None:
            self._task.cancel()

    def stop_audio(self) -> None:
        """Send no more audio for this response (truncate / output buffer clear)."""
        self._audio_stopped = True

    # -- the task -----------------------------------------------------------------------
    async def run(self) -> None:
        """Generate the whole response; always ends with ``response.done``."""
        self._task = asyncio.current_task()
        s = self.session
        await s.emit({"type": "response.created", "response": self._response("in_progress")})
        status = "completed"
        details: dict[str, Any] | None = None
        try:
            if self._cancel_reason is not None:
                raise asyncio.CancelledError
            await self._generate()
        except asyncio.CancelledError:
            status = "cancelled"
            details = {"type": "cancelled", "reason": self._cancel_reason or "client_cancelled"}
            await self._close_open_item("incomplete")
        except Exception as exc:
            status = "failed"
            details = {
                "type": "failed",
                "error": {"type": "server_error", "code": None, "message": str(exc)[:300]},
            }
            await self._close_open_item("incomplete")
        self.finished = True
        usage = usage_object(**self._tokens)
        await s.emit(
            {
                "type": "response.done",
                "response": self._response(status, usage=usage, details=details),
            }
        )

    def _response(
        self,
        status: str,
        *,
        usage: Mapping[str, Any] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        s = self.session
        return render_response(
            response_id=self.response_id,
            status=status,
            dialect=s.dialect,
            output=self.output if status != "in_progress" else [],
            modalities=self.modalities,
            voice=self.voice,
            output_format=FORMAT_OBJECTS[self.output_format],
            conversation_id=s.conversation_id if self.in_conversation else None,
            usage=usage,
            status_details=details,
            metadata=self.metadata,
        )

    async def _context(self) -> ResponderContext:
        s = self.session
        items: list[dict[str, Any]] = []
        if self.in_conversation:
            # the responder needs the user's words: wait for pending transcriptions
            for stored in list(s.store):
                content = stored.data.get("content") or []
                if any(
                    p.get("type") == "input_audio" and p.get("transcript") is None for p in content
                ):
                    await s.transcript_of(stored.id)
            items = [dict(i) for i in s.store.items()]
        if self.input:
            for entry in self.input:
                if entry.get("type") == "item_reference" and entry.get("id") in s.store:
                    items.append(dict(s.store.get(str(entry["id"])).data))
                elif entry.get("type") != "item_reference":
                    items.append(dict(entry))
        for item in items:
            for part in item.get("content") or []:
                words = len(str(part.get("text") or part.get("transcript") or "").split())
                self._tokens["input_text"] += int(words * 1.3)
        for stored in s.store:
            for audio in stored.audio.values():
                self._tokens["input_audio"] += int(len(audio) / BYTES_PER_MS / 100)
        return ResponderContext(
            items=items,
            instructions=self.instructions,
            tools=list(self.tools or []),
            tool_choice=self.tool_choice,
        )

    async def _generate(self) -> None:
        ctx = await self._context()
        message: _MessageWriter | None = None
        async for out in self.session.responder.respond(ctx):
            if isinstance(out, TextDelta):
                if message is None:
                    message = _MessageWriter(self, len(self.output))
                    self._open = message
                    await message.open()
                await message.text(out.text)
            elif isinstance(out, ToolCall):
                if message is not None:
                    await message.close("completed")
                    message = None
                await self._function_call(out)
        if message is not None:
            await message.close("completed")
        self._open = None

    _open: _MessageWriter | None = None

    async def _close_open_item(self, status: str) -> None:
        if self._open is not None and not self._open.closed:
            await self._open.close(status)

    async def _function_call(self, call: ToolCall) -> None:
        s = self.session
        item_id = new_id("item")
        call_id = new_id("call")
        output_index = len(self.output)
        item: dict[str, Any] = {
            "id": item_id,
            "type": "function_call",
            "status": "in_progress",
            "name": call.name,
            "call_id": call_id,
            "arguments": "",
        }
        ref = {"response_id": self.response_id, "output_index": output_index}
        await s.emit({"type": "response.output_item.added", **ref, "item": dict(item)})
        previous = s.store.last_id
        if self.in_conversation:
            s.store.insert(item)
            await s.emit(
                {
                    "type": "conversation.item.added",
                    "previous_item_id": previous,
                    "item": dict(item),
                }
            )
        args = call.arguments
        step = max(1, len(args) // 3)
        for i in range(0, len(args), step):
            await s.emit(
                {
                    "type": "response.function_call_arguments.delta",
                    **ref,
                    "item_id": item_id,
                    "call_id": call_id,
                    "delta": args[i : i + step],
                }
            )
        await s.emit(
            {
                "type": "response.function_call_arguments.done",
                **ref,
                "item_id": item_id,
                "call_id": call_id,
                "name": call.name,
                "arguments": args,
            }
        )
        item["status"] = "completed"
        item["arguments"] = args
        self._tokens["output_text"] += max(1, len(args) // 4)
        if self.in_conversation:
            await s.emit(
                {"type": "conversation.item.done", "previous_item_id": previous, "item": dict(item)}
            )
        await s.emit({"type": "response.output_item.done", **ref, "item": dict(item)})
        self.output.append(item)


class _MessageWriter:
    """Writes one assistant message item: text or audio + transcript, sentence by sentence."""

    def __init__(self, run: ResponseRun, output_index: int) -> None:
        self.run = run
        self.session = run.session
        self.output_index = output_index
        self.item_id = new_id("item")
        run.item_id = self.item_id
        self.audio = run.audio
        self.part_type = "output_audio" if self.audio else "output_text"
        self.item: dict[str, Any] = {
            "id": self.item_id,
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        self._text: list[str] = []
        self._pending = ""
        self._sentences = run.session.engines.sentence_buffer()
        self.closed = False
        self._encoder: pcm_mod.StreamEncoder | None = None
        self._audio_bytes = 0
        self._t0 = 0.0
        self._previous: str | None = None

    def _ref(self) -> dict[str, Any]:
        return {
            "response_id": self.run.response_id,
            "item_id": self.item_id,
            "output_index": self.output_index,
            "content_index": 0,
        }

    async def open(self) -> None:
        s = self.session
        self._previous = s.store.last_id
        await s.emit(
            {
                "type": "response.output_item.added",
                "response_id": self.run.response_id,
                "output_index": self.output_index,
                "item": dict(self.item, content=[]),
            }
        )
        part: dict[str, Any] = (
            {"type": "output_audio", "transcript": ""}
            if self.audio
            else {"type": "output_text", "text": ""}
        )
        self.item["content"] = [part]
        if self.run.in_conversation:
            stored = s.store.insert(self.item)
            if self.audio:
                stored.audio[0] = bytearray()
            await s.emit(
                {
                    "type": "conversation.item.added",
                    "previous_item_id": self._previous,
                    "item": dict(self.item, content=[]),
                }
            )
        await s.emit({"type": "response.content_part.added", **self._ref(), "part": dict(part)})
        self._t0 = time.monotonic()

    async def text(self, delta: str) -> None:
        self._text.append(delta)
        if not self.audio:
            self.run._tokens["output_text"] += max(1, len(delta.split()))
            await self.session.emit(
                {"type": "response.output_text.delta", **self._ref(), "delta": delta}
            )
            return
        for sentence in self._sentences.feed(delta):
            await self._speak(sentence)

    async def _speak(self, sentence: str) -> None:
        s = self.session
        if not sentence.strip():
            return
        stored = s.store.get(self.item_id) if self.item_id in s.store else None
        if stored is not None:
            stored.marks.setdefault(0, []).append((len(stored.audio.get(0, b"")), sentence))
        self.run._tokens["output_text"] += max(1, len(sentence.split()))
        part = self.item["content"][0]
        sentence = sentence.strip()
        delta = sentence if not part.get("transcript") else " " + sentence
        part["transcript"] = (part.get("transcript") or "") + delta
        await s.emit(
            {"type": "response.output_audio_transcript.delta", **self._ref(), "delta": delta}
        )
        pcm = await s.engines.synthesize(sentence, voice=self.run.voice, speed=self.run.speed)
        if self.run._audio_stopped:
            return
        fmt = self.run.output_format
        step = AUDIO_CHUNK_MS * BYTES_PER_MS
        for i in range(0, len(pcm), step):
            if self.run._audio_stopped:
                return
            chunk = pcm[i : i + step]
            data = self._encode(chunk, fmt)
            if stored is not None:
                stored.audio[0] += chunk
            self._audio_bytes += len(chunk)
            self.run._tokens["output_audio"] += max(1, len(chunk) // (BYTES_PER_MS * 50))
            s.assistant_audio_sent = True
            await s.emit(
                {
                    "type": "response.output_audio.delta",
                    **self._ref(),
                    "delta": base64.b64encode(data).decode("ascii"),
                }
            )
            if s.limits.pace_audio:
                ahead = self._audio_bytes / BYTES_PER_MS / 1000 - (time.monotonic() - self._t0)
                if ahead > 0.3:
                    await asyncio.sleep(ahead - 0.3)
            else:
                await asyncio.sleep(0)

    def _encode(self, chunk: bytes, fmt: str) -> bytes:
        """PCM16 24 kHz -> the output format, statefully across chunks (no boundary clicks)."""
        if fmt == "pcm16":
            return chunk
        if self._encoder is None:
            self._encoder = pcm_mod.StreamEncoder(fmt)  # type: ignore[arg-type]
        return self._encoder.encode(chunk)

    async def close(self, status: str) -> None:
        if self.closed:
            return
        self.closed = True
        s = self.session
        if self.audio and status == "completed":
            for sentence in self._sentences.flush():
                await self._speak(sentence)
        if self._encoder is not None and not self.run._audio_stopped:
            tail = self._encoder.flush()
            if tail:
                delta = base64.b64encode(tail).decode("ascii")
                await s.emit({"type": "response.output_audio.delta", **self._ref(), "delta": delta})
        text = "".join(self._text)
        part = self.item["content"][0]
        if self.audio:
            transcript = str(part.get("transcript") or "")
            await s.emit({"type": "response.output_audio.done", **self._ref()})
            await s.emit(
                {
                    "type": "response.output_audio_transcript.done",
                    **self._ref(),
                    "transcript": transcript,
                }
            )
        else:
            part["text"] = text
            await s.emit({"type": "response.output_text.done", **self._ref(), "text": text})
        await s.emit({"type": "response.content_part.done", **self._ref(), "part": dict(part)})
        self.item["status"] = status
        if self.run.in_conversation:
            await s.emit(
                {
                    "type": "conversation.item.done",
                    "previous_item_id": self._previous,
                    "item": json.loads(json.dumps(self.item)),
                }
            )
        await s.emit(
            {
                "type": "response.output_item.done",
                "response_id": self.run.response_id,
                "output_index": self.output_index,
                "item": json.loads(json.dumps(self.item)),
            }
        )
        self.run.output.append(json.loads(json.dumps(self.item)))


def _format_name(fmt: Any) -> str:
    if isinstance(fmt, str):
        return {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}.get(
            fmt, fmt
        )
    if isinstance(fmt, Mapping):
        return _format_name(str(fmt.get("type", "audio/pcm")))
    return "pcm16"
