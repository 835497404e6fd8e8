"""The media-stream bridge: one phone call's stream <-> one realtime session (asyncio shell).

:class:`MediaStreamBridge` serves calls; :meth:`MediaStreamBridge.handle` runs one call on a
:class:`PhoneSocket` (the provider's WebSocket, adapted) and returns its :class:`PhoneCall`
record when the call is over. Per call:

1. wait for ``start``; its call metadata and custom parameters go into the session
   configuration (:meth:`MediaStreamBridge.session_config`, or your ``configure`` hook);
2. open a session whose audio format is the stream's (mu-law passes straight through,
   see :mod:`.media`) with a :class:`~.marks.MarkTracker` as its playback tracker;
3. caller audio -> ``input_audio_buffer.append``; reply audio deltas -> ``media`` + ``mark``;
   ``mark`` echoes -> the tracker; ``dtmf`` -> handlers (and the session as text when
   ``dtmf_text`` is set);
4. on ``speech_started`` the session's barge-in asks the tracker for the heard position,
   truncates and cancels; the tracker has the bridge send ``clear`` and drop the rest of
   the interrupted item;
5. ``stop`` or a closed phone socket ends the session cleanly; a failed session ends the
   call, after the ``apology`` audio when one is configured.

Bounds: the phone send queue holds at most ``max_queued`` frames (reply audio waits for
room; ``clear`` never does); ``start`` must come within ``start_timeout`` seconds; the
bridge keeps the records of the last ``keep_calls`` calls.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from audio.pcm import AudioFormat

from ..events.common import ServerVad
from ..events.config import SessionConfig
from ..exceptions import ConnectionClosed, RealtimeError
from ..session import Session, connect
from ..tools import Tool
from .exceptions import MediaStreamError, UnsupportedMediaFormat
from .marks import MarkTracker
from .media import MediaCodec, phone_audio
from .messages import (
    ClearMessage,
    ConnectedMessage,
    DtmfMessage,
    MarkMessage,
    MediaMessage,
    StartMessage,
    StopMessage,
    encode_message,
    mark_frame,
    media_frame,
    parse_message,
)

__all__ = ["CallInfo", "DtmfHandler", "MediaStreamBridge", "PhoneCall", "PhoneSocket"]

logger = logging.getLogger("realtime.telephony")

_AUDIO_DELTAS = frozenset({"response.output_audio.delta", "response.audio.delta"})
_APOLOGY_MARK = "apology"


class PhoneSocket(Protocol):
    """The provider's side of one stream, as the bridge needs it."""

    async def receive(self) -> str | None:
        """The next text message, or ``None`` once the socket is closed."""
        ...

    async def send(self, text: str) -> None:
        """Send a text message; may raise once the socket is closed."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the socket (idempotent)."""
        ...


@dataclass(frozen=True)
class CallInfo:
    """What ``start`` said about the call."""

    stream_sid: str
    call_sid: str
    account_sid: str
    custom_parameters: Mapping[str, str]
    encoding: str
    sample_rate: int

    @classmethod
    def from_start(cls, start: StartMessage) -> CallInfo:
        """The call information of a ``start`` message."""
        return cls(
            start.stream_sid,
            start.call_sid,
            start.account_sid,
            dict(start.custom_parameters),
            start.media_format.encoding,
            start.media_format.sample_rate,
        )


DtmfHandler = Callable[["PhoneCall", str], Any]
"""Called with the call and each digit (a coroutine function is awaited in a task)."""


@dataclass(eq=False)
class PhoneCall:
    """The record of one call: its info, session, what happened and how it ended.

    ``ended_by``: ``"caller"`` (``stop`` or socket closed), ``"session"`` (the session
    ended or failed), ``"bridge"`` (no ``start``, bad format) or ``""`` while running.
    """

    info: CallInfo | None = None
    session: Session | None = None
    tracker: MarkTracker | None = None
    digits: list[str] = field(default_factory=list)
    ended_by: str = ""
    error: str | None = None
    apologized: bool = False
    media_in: int = 0
    media_out: int = 0
    bad_messages: int = 0
    started_at: float = field(default_factory=time.monotonic)
    ended_at: float | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class _Outbox:
    """The phone send queue, bounded for audio, never for ``clear``.

    A frame with nothing queued ahead of it is sent at once by the caller; the writer task
    sends what queued up meanwhile (``clear``, or audio while the phone socket drains).
    """

    def __init__(self, phone: PhoneSocket, limit: int) -> None:
        self._phone = phone
        self._items: deque[str] = deque()
        self._limit = limit
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._busy = False  # a send in progress (by put or by the writer)
        self.failed = False
        self._drained: list[asyncio.Future[None]] = []

    def put_nowait(self, text: str) -> None:
        self._items.append(text)
        self._wake.set()

    async def put(self, *texts: str) -> None:
        if not self._items and not self._busy and not self.failed:
            await self._send(texts)
            return
        while len(self._items) >= self._limit and not self.failed:
            self._room.clear()
            await self._room.wait()
        self._items.extend(texts)
        self._wake.set()

    async def _send(self, texts: Iterable[str]) -> None:
        self._busy = True
        try:
            for text in texts:
                await self._phone.send(text)
        except Exception as exc:  # the socket is gone: the reader notices and ends the call
            logger.debug("phone send failed: %s", exc)
            self.failed = True
            self._room.set()
            self._items.clear()
        finally:
            self._busy = False
            self._wake.set()

    async def run(self) -> None:
        items = self._items
        while not self.failed:
            if not items or self._busy:
                if not items and not self._busy:
                    for fut in self._drained:
                        if not fut.done():
                            fut.set_result(None)
                    self._drained.clear()
                self._wake.clear()
                await self._wake.wait()
                continue
            text = items.popleft()
            if len(items) < self._limit:
                self._room.set()
            await self._send((text,))
        for fut in self._drained:
            if not fut.done():
                fut.set_result(None)

    async def drained(self) -> None:
        if not self._items and not self._busy:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._drained.append(fut)
        self._wake.set()
        await fut


class MediaStreamBridge:
    """Bridges phone media streams to realtime sessions (see the module docstring).

    ``connect``: keyword arguments for :func:`realtime.connect` (``url``, ``dialect``,
    ``model``, ``api_key`` ...). ``config``: the base session configuration; ``instructions``
    and ``tools`` are added to it. ``configure(info, config)`` may return a changed config
    per call (default: call details appended to the instructions, see
    :meth:`session_config`). ``session_format`` forces a session audio format (default:
    the stream's own G.711 format, so audio passes through). ``on_dtmf`` handlers get
    each digit; with ``dtmf_text`` (a ``str.format`` template with ``{digit}``) the digit
    also goes to the session as a user message; with ``dtmf_interrupts`` a key pressed
    while the reply plays interrupts it (:meth:`Session.interrupt`: clear, truncate at
    the heard position, cancel). ``apology``: PCM16 24 kHz mono played
    to the caller when the session fails. ``record``: a folder where each call's events
    are recorded as ``<call_sid>.jsonl``.
    """

    def __init__(
        self,
        *,
        connect: Mapping[str, Any] | None = None,
        config: SessionConfig | None = None,
        instructions: str | None = None,
        tools: Iterable[Callable[..., Any] | Tool] | None = None,
        configure: Callable[[CallInfo, SessionConfig], SessionConfig] | None = None,
        session_format: AudioFormat | None = None,
        on_dtmf: DtmfHandler | Iterable[DtmfHandler] | None = None,
        dtmf_text: str | None = None,
        dtmf_interrupts: bool = False,
        apology: bytes | None = None,
        record: str | Path | None = None,
        start_timeout: float = 10.0,
        max_queued: int = 4096,
        keep_calls: int = 100,
    ) -> None:
        self.connect_kwargs = dict(connect or {})
        self.config = config
        self.instructions = instructions
        self.tools = list(tools or ())
        self.configure = configure
        self.session_format = session_format
        if on_dtmf is None:
            self.dtmf_handlers: list[DtmfHandler] = []
        elif callable(on_dtmf):
            self.dtmf_handlers = [on_dtmf]
        else:
            self.dtmf_handlers = list(on_dtmf)
        self.dtmf_text = dtmf_text
        self.dtmf_interrupts = dtmf_interrupts
        self.apology = apology
        self.record = Path(record) if record is not None else None
        self.start_timeout = start_timeout
        self.max_queued = max_queued
        self.active: set[PhoneCall] = set()
        self.calls: deque[PhoneCall] = deque(maxlen=keep_calls)

    # -- configuration -----------------------------------------------------------------

    def session_config(self, info: CallInfo, audio_format: AudioFormat) -> SessionConfig:
        """The session configuration of a call.

        The base ``config`` (copied) with the stream's audio format in and out, server
        VAD that interrupts responses unless turn detection was set, ``instructions`` when
        given, and the call details (call id and custom parameters) appended to the
        instructions; then ``configure(info, config)`` when given.
        """
        cfg = self.config.model_copy(deep=True) if self.config is not None else SessionConfig()
        cfg.input_format = audio_format
        cfg.output_format = audio_format
        if "turn_detection" not in cfg.model_fields_set:
            cfg.turn_detection = ServerVad(
                type="server_vad", create_response=True, interrupt_response=True
            )
        if self.instructions is not None:
            cfg.instructions = self.instructions
        details = [f"call id: {info.call_sid}"] if info.call_sid else []
        details += [f"{key}: {value}" for key, value in info.custom_parameters.items()]
        if details:
            base = cfg.instructions or "You are a helpful assistant on a phone call."
            cfg.instructions = (
                base + "\n\nCall details (from the phone system):\n- " + ("\n- ".join(details))
            )
        if self.configure is not None:
            cfg = self.configure(info, cfg)
        return cfg

    # -- one call ----------------------------------------------------------------------

    async def handle(self, phone: PhoneSocket) -> PhoneCall:
        """Run one call on ``phone`` until it ends; returns its record. Never raises
        (except cancellation)."""
        call = PhoneCall()
        self.active.add(call)
        try:
            await self._run(phone, call)
        except Exception as exc:  # a bug must end this call, not the server
            logger.exception("call failed")
            call.ended_by = call.ended_by or "bridge"
            call.error = call.error or f"internal error: {type(exc).__name__}: {exc}"
            await phone.close(1011, "internal error")
        finally:
            call.ended_at = time.monotonic()
            self.active.discard(call)
            self.calls.append(call)
            call.done.set()
        return call

    async def _wait_start(self, phone: PhoneSocket, call: PhoneCall) -> StartMessage | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return None
            try:
                text = await asyncio.wait_for(phone.receive(), left)
            except asyncio.TimeoutError:
                return None
            if text is None:
                call.ended_by = "caller"
                return None
            try:
                msg = parse_message(text)
            except MediaStreamError as exc:
                call.bad_messages += 1
                logger.warning("ignoring a bad media-stream message: %s", exc)
                continue
            if isinstance(msg, StartMessage):
                return msg
            if isinstance(msg, StopMessage):
                call.ended_by = "caller"
                return None

    async def _run(self, phone: PhoneSocket, call: PhoneCall) -> None:
        start = await self._wait_start(phone, call)
        if start is None:
            call.ended_by = call.ended_by or "bridge"
            call.error = "the stream ended or timed out before 'start'"
            await phone.close(1000, "no start")
            return
        info = call.info = CallInfo.from_start(start)
        try:
            codec = MediaCodec(phone_audio(start.media_format), self.session_format)
        except UnsupportedMediaFormat as exc:
            call.ended_by, call.error = "bridge", str(exc)
            await phone.close(1003, "unsupported media format")
            return
        outbox = _Outbox(phone, self.max_queued)
        sid = info.stream_sid
        clear = encode_message(ClearMessage(sid))
        tracker = call.tracker = MarkTracker(on_clear=lambda: outbox.put_nowait(clear))
        writer = asyncio.create_task(outbox.run())
        try:
            await self._converse(phone, call, info, codec, tracker, outbox)
        finally:
            if not writer.done():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(outbox.drained(), 2.0)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            await phone.close(1000, "call ended")

    async def _converse(
        self,
        phone: PhoneSocket,
        call: PhoneCall,
        info: CallInfo,
        codec: MediaCodec,
        tracker: MarkTracker,
        outbox: _Outbox,
    ) -> None:
        try:
            config = self.session_config(info, codec.session_format)
            ctx = connect(
                **self.connect_kwargs,
                config=config,
                tracker=tracker,
                tools=self.tools,
                output_audio_format=codec.session_format,
            )
        except RealtimeError as exc:
            call.ended_by, call.error = "session", f"could not configure the session: {exc}"
            await self._apologize(call, codec, outbox, phone)
            return
        session = call.session = ctx.session
        recorder = self._recorder(info, session)
        try:
            try:
                await session.open()
            except RealtimeError as exc:
                call.ended_by, call.error = "session", f"could not open the session: {exc}"
                await self._apologize(call, codec, outbox, phone)
                return
            forward = asyncio.create_task(self._forward(session, call, codec, tracker, outbox))
            receive = asyncio.create_task(self._receive(phone, session, call, codec, tracker))
            done, _ = await asyncio.wait({forward, receive}, return_when=asyncio.FIRST_COMPLETED)
            if receive in done:
                call.ended_by = "caller"
                forward.cancel()
                await asyncio.gather(forward, return_exceptions=True)
                await session.close()
                return
            call.ended_by = "session"
            error = forward.exception()
            call.error = str(error) if error is not None else "the session ended"
            await self._apologize(call, codec, outbox, phone, receive)
            receive.cancel()
            await asyncio.gather(receive, return_exceptions=True)
        finally:
            if session.is_open:
                await session.close()
            if recorder is not None:
                recorder.close()

    def _recorder(self, info: CallInfo, session: Session) -> Any:
        if self.record is None:
            return None
        from ..recording import Recorder

        self.record.mkdir(parents=True, exist_ok=True)
        name = "".join(c for c in (info.call_sid or info.stream_sid) if c.isalnum() or c in "-_")
        recorder = Recorder(self.record / f"{name or 'call'}.jsonl")
        session.add_send_listener(recorder.client)
        session.on("*", recorder.server)
        return recorder

    async def _forward(
        self,
        session: Session,
        call: PhoneCall,
        codec: MediaCodec,
        tracker: MarkTracker,
        outbox: _Outbox,
    ) -> None:
        """Session events -> phone: reply audio with a mark after each chunk."""
        assert call.info is not None
        sid = call.info.stream_sid
        async for event in session:
            if event.type not in _AUDIO_DELTAS:
                continue
            item_id: str = event.item_id  # type: ignore[attr-defined]
            if not tracker.accepts(item_id):
                continue  # stale audio of an interrupted reply
            try:
                payload = codec.to_phone(event.delta)  # type: ignore[attr-defined]
                frame = media_frame(sid, payload)
            except MediaStreamError as exc:
                logger.warning("dropping reply audio: %s", exc)
                continue
            if not payload:
                continue
            name = tracker.sent(
                item_id,
                event.content_index,  # type: ignore[attr-defined]
                codec.phone_ms(payload),
            )
            call.media_out += 1
            if name is None:
                await outbox.put(frame)
            else:
                await outbox.put(frame, mark_frame(sid, name))
        raise ConnectionClosed(1000, "the session ended")

    async def _receive(
        self,
        phone: PhoneSocket,
        session: Session,
        call: PhoneCall,
        codec: MediaCodec,
        tracker: MarkTracker,
    ) -> None:
        """Phone messages -> session, until ``stop`` or the socket closes."""
        while True:
            text = await phone.receive()
            if text is None:
                return
            try:
                msg = parse_message(text)
            except MediaStreamError as exc:
                call.bad_messages += 1
                logger.warning("ignoring a bad media-stream message: %s", exc)
                continue
            if isinstance(msg, MediaMessage):
                if msg.track not in (None, "inbound", "inbound_track"):
                    continue
                call.media_in += 1
                try:
                    audio = codec.to_session(msg.payload)
                except MediaStreamError as exc:
                    call.bad_messages += 1
                    logger.warning("ignoring bad caller audio: %s", exc)
                    continue
                if audio:
                    await session.send({"type": "input_audio_buffer.append", "audio": audio})
            elif isinstance(msg, MarkMessage):
                tracker.acknowledged(msg.name)
            elif isinstance(msg, DtmfMessage):
                self._dtmf(call, session, msg.digit)
            elif isinstance(msg, StopMessage):
                return
            elif isinstance(msg, (StartMessage, ConnectedMessage)):
                continue

    def _dtmf(self, call: PhoneCall, session: Session, digit: str) -> None:
        call.digits.append(digit)
        tracker = call.tracker
        if self.dtmf_interrupts and tracker is not None and tracker.pending_ms > 0:
            _background(session.interrupt(), "DTMF interruption")
        for handler in self.dtmf_handlers:
            try:
                result = handler(call, digit)
                if inspect.isawaitable(result):
                    _background(result, "DTMF handler")
            except Exception:
                logger.exception("DTMF handler failed")
        if self.dtmf_text is not None:
            text = self.dtmf_text.format(digit=digit)
            _background(session.send_text(text), "DTMF message")

    async def _apologize(
        self,
        call: PhoneCall,
        codec: MediaCodec,
        outbox: _Outbox,
        phone: PhoneSocket,
        receive: asyncio.Task[None] | None = None,
    ) -> None:
        """Play the apology (when configured and the phone is still there), then return."""
        logger.warning("call %s: %s", call.info.call_sid if call.info else "?", call.error)
        if self.apology is None or outbox.failed or call.info is None:
            return
        sid = call.info.stream_sid
        if call.tracker is not None:
            call.tracker.interrupt()  # drop whatever of the reply is still queued
        audio = codec.encode_phone(self.apology, 24000)
        step = max(1, int(codec.phone.bytes_per_ms * 20))
        for i in range(0, len(audio), step):
            chunk = base64.b64encode(audio[i : i + step]).decode("ascii")
            await outbox.put(media_frame(sid, chunk))
        await outbox.put(mark_frame(sid, _APOLOGY_MARK))
        call.apologized = True
        wait = len(audio) / codec.phone.bytes_per_ms / 1000.0 + 2.0
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._until_mark(phone, _APOLOGY_MARK, receive), wait)

    async def _until_mark(
        self, phone: PhoneSocket, name: str, receive: asyncio.Task[None] | None
    ) -> None:
        if receive is not None:
            receive.cancel()
            await asyncio.gather(receive, return_exceptions=True)
        while True:
            text = await phone.receive()
            if text is None:
                return
            try:
                msg = parse_message(text)
            except MediaStreamError:
                continue
            if isinstance(msg, StopMessage):
                return
            if isinstance(msg, MarkMessage) and msg.name == name:
                return


_BACKGROUND: set[asyncio.Future[Any]] = set()


def _background(aw: Awaitable[Any], what: str) -> None:
    task = asyncio.ensure_future(aw)
    _BACKGROUND.add(task)

    def done(t: asyncio.Future[Any]) -> None:
        _BACKGROUND.discard(t)
        if not t.cancelled() and t.exception() is not None:
            logger.warning("%s failed: %s", what, t.exception())

    task.add_done_callback(done)
