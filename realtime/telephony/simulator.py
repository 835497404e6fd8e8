"""A phone caller for tests: :class:`PhoneSimulator` speaks the media-stream protocol.

It plays the provider's part against a bridge's ``/media-stream`` WebSocket:

- sends ``connected`` and ``start`` (call id, custom parameters, media format), then a
  ``media`` frame every ``frame_ms`` at real-time pace: the caller's speech
  (:meth:`say`, a WAV file or PCM16) or silence, as a phone line always carries audio;
- plays the bridge's ``media`` at real-time pace from a buffer, as a provider does, and
  echoes each ``mark`` only when the audio before it has been played; ``clear`` empties
  the buffer and echoes the marks in it at once;
- sends DTMF (:meth:`press`) and ``stop`` (:meth:`hang_up`);
- records what the caller heard: every played chunk with its time and the reply item it
  belongs to (the bridge names its marks ``<item_id>.<n>``), the clears, and
  :attr:`stale_ms`, audio of an interrupted item heard after its ``clear``.

::

    async with PhoneSimulator(server.stream_url, custom_parameters={"From": "+1555"}) as phone:
        await phone.say("question.wav")
        await phone.wait_heard(1000)
        await phone.wait_quiet(1.0)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed as WSConnectionClosed

from audio.wav import read_wav

from .exceptions import CallEnded, MediaStreamError
from .media import MediaCodec, PhoneAudio, phone_audio, phone_to_pcm16
from .messages import (
    ClearMessage,
    ConnectedMessage,
    DtmfMessage,
    MarkMessage,
    MediaFormat,
    MediaMessage,
    StartMessage,
    StopMessage,
    encode_message,
    parse_message,
)

__all__ = ["Clear", "HeardChunk", "PhoneSimulator"]


@dataclass(frozen=True)
class HeardChunk:
    """Reply audio the caller heard: when (loop time), how long, which item (``None``: unknown)."""

    t: float
    ms: float
    item_id: str | None
    audio: bytes


@dataclass
class Clear:
    """A ``clear`` from the bridge: when, what it dropped, and which items it interrupted."""

    t: float
    dropped_ms: float
    items: set[str] = field(default_factory=set)


@dataclass
class _Segment:
    """Audio received between two marks (its item is known once the next mark arrives)."""

    item_id: str | None = None


class PhoneSimulator:
    """A simulated caller on a media-stream WebSocket (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        custom_parameters: Mapping[str, str] | None = None,
        call_sid: str | None = None,
        stream_sid: str | None = None,
        media_format: MediaFormat | None = None,
        frame_ms: int = 20,
    ) -> None:
        self.url = url
        self.custom_parameters = dict(custom_parameters or {})
        self.call_sid = call_sid or "CA" + secrets.token_hex(16)
        self.stream_sid = stream_sid or "MZ" + secrets.token_hex(16)
        self.media_format = media_format or MediaFormat()
        self.audio: PhoneAudio = phone_audio(self.media_format)
        self.frame_ms = frame_ms
        self._frame_bytes = int(self.audio.bytes_per_ms * frame_ms)
        self._codec = MediaCodec(self.audio)
        self._ws: ClientConnection | None = None
        self._mic: deque[bytes] = deque()
        self._mic_empty = asyncio.Event()
        self._mic_empty.set()
        self._buffer: deque[tuple[bytes, _Segment] | str] = deque()  # audio or a mark name
        self._segment = _Segment()
        self._tasks: list[asyncio.Task[None]] = []
        self._chunk = 0
        self._seq = 0
        self._changed = asyncio.Event()
        self.closed = asyncio.Event()
        self.heard: list[HeardChunk] = []
        self.clears: list[Clear] = []
        self.marks_acknowledged: list[str] = []
        self.last_played_at: float | None = None
        self.bad_messages = 0
        self._last_item: str | None = None
        self._acks: set[asyncio.Future[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> PhoneSimulator:
        await self.dial()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.hang_up()

    async def dial(self) -> None:
        """Connect, send ``connected`` and ``start``, and start streaming."""
        self._ws = await connect(self.url, max_size=None)
        await self._send(encode_message(ConnectedMessage()))
        start = StartMessage(
            stream_sid=self.stream_sid,
            call_sid=self.call_sid,
            account_sid="AC" + "0" * 32,
            custom_parameters=self.custom_parameters,
            media_format=self.media_format,
        )
        await self._send(encode_message(start))
        self._tasks = [
            asyncio.create_task(self._talk()),
            asyncio.create_task(self._listen()),
            asyncio.create_task(self._play()),
        ]

    async def hang_up(self) -> None:
        """Send ``stop`` and close (idempotent)."""
        if self._ws is None:
            return
        ws, self._ws = self._ws, None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(WSConnectionClosed, OSError):
            await ws.send(encode_message(StopMessage(self.stream_sid, self.call_sid)))
        with contextlib.suppress(WSConnectionClosed, OSError):
            await ws.close()
        self.closed.set()

    async def _send(self, text: str) -> None:
        if self._ws is None:
            raise CallEnded("the simulated call is not connected")
        try:
            await self._ws.send(text)
        except WSConnectionClosed:
            self.closed.set()
            raise CallEnded("the bridge closed the call") from None

    # -- the caller speaks -------------------------------------------------------------

    async def say(self, speech: str | Path | bytes, rate: int = 24000) -> None:
        """Speak a WAV file (or PCM16 mono at ``rate``) at real-time pace; returns when sent."""
        pcm = read_wav(speech, rate=rate) if isinstance(speech, (str, Path)) else speech
        data = self._codec.encode_phone(pcm, rate)
        step = self._frame_bytes
        for i in range(0, len(data), step):
            frame = data[i : i + step]
            self._mic.append(frame + self.audio.silence(self.frame_ms)[len(frame) :])
        self._mic_empty.clear()
        await self._mic_empty.wait()

    async def press(self, digits: str) -> None:
        """Send one ``dtmf`` message per digit."""
        for digit in digits:
            self._seq += 1
            await self._send(encode_message(DtmfMessage(self.stream_sid, digit)))

    async def _talk(self) -> None:
        loop = asyncio.get_running_loop()
        silence = self.audio.silence(self.frame_ms)
        period = self.frame_ms / 1000.0
        next_t = loop.time()
        while True:
            if self._mic:
                frame = self._mic.popleft()
            else:
                frame = silence
                self._mic_empty.set()
            self._chunk += 1
            media = MediaMessage(
                self.stream_sid,
                base64.b64encode(frame).decode("ascii"),
                track="inbound",
                chunk=str(self._chunk),
                timestamp=str(self._chunk * self.frame_ms),
            )
            try:
                await self._send(encode_message(media))
            except CallEnded:
                return
            if not self._mic:
                self._mic_empty.set()
            next_t += period
            await asyncio.sleep(max(0.0, next_t - loop.time()))

    # -- the caller listens ------------------------------------------------------------

    async def _listen(self) -> None:
        assert self._ws is not None
        try:
            async for text in self._ws:
                try:
                    msg = parse_message(text)
                except MediaStreamError:
                    self.bad_messages += 1
                    continue
                if isinstance(msg, MediaMessage):
                    self._buffer.append((base64.b64decode(msg.payload), self._segment))
                elif isinstance(msg, MarkMessage):
                    item = msg.name.rsplit(".", 1)[0] if "." in msg.name else None
                    self._segment.item_id = item
                    self._segment = _Segment()
                    self._buffer.append(msg.name)
                elif isinstance(msg, ClearMessage):
                    self._clear()
                self._changed.set()
        except WSConnectionClosed:
            pass
        self.closed.set()
        self._changed.set()

    def _clear(self) -> None:
        loop = asyncio.get_running_loop()
        record = Clear(loop.time(), 0.0)
        if self._last_item is not None:
            record.items.add(self._last_item)
        marks: list[str] = []
        for entry in self._buffer:
            if isinstance(entry, str):
                marks.append(entry)
            else:
                record.dropped_ms += len(entry[0]) / self.audio.bytes_per_ms
                if entry[1].item_id is not None:
                    record.items.add(entry[1].item_id)
        self._buffer.clear()
        self.clears.append(record)
        for name in marks:  # a provider echoes the marks of the audio it dropped
            self._ack(name)

    def _ack(self, name: str) -> None:
        self.marks_acknowledged.append(name)
        if self._ws is not None:
            msg = encode_message(MarkMessage(self.stream_sid, name))
            task = asyncio.ensure_future(self._send(msg))
            self._acks.add(task)
            task.add_done_callback(self._ack_sent)

    def _ack_sent(self, task: asyncio.Future[None]) -> None:
        self._acks.discard(task)
        if not task.cancelled():
            task.exception()  # CallEnded after a hang-up: nothing to do

    async def _play(self) -> None:
        loop = asyncio.get_running_loop()
        period = self.frame_ms / 1000.0
        next_t = loop.time()
        while True:
            want = self._frame_bytes
            buf = self._buffer
            while buf and (want > 0 or isinstance(buf[0], str)):
                entry = buf[0]
                if isinstance(entry, str):
                    buf.popleft()
                    self._ack(entry)
                    continue
                data, segment = entry
                take = data[:want]
                if len(take) < len(data):
                    buf[0] = (data[want:], segment)
                else:
                    buf.popleft()
                want -= len(take)
                self._played(loop.time(), take, segment)
            next_t += period
            await asyncio.sleep(max(0.0, next_t - loop.time()))

    def _played(self, t: float, data: bytes, segment: _Segment) -> None:
        self.heard.append(HeardChunk(t, len(data) / self.audio.bytes_per_ms, segment.item_id, data))
        self.last_played_at = t
        if segment.item_id is not None:
            self._last_item = segment.item_id
        self._changed.set()

    # -- what was heard ----------------------------------------------------------------

    @property
    def heard_ms(self) -> float:
        """Milliseconds of reply audio played to the caller."""
        return sum(chunk.ms for chunk in self.heard)

    def heard_of(self, item_id: str) -> float:
        """Milliseconds of this reply item played to the caller."""
        return sum(chunk.ms for chunk in self.heard if chunk.item_id == item_id)

    @property
    def heard_items(self) -> list[str]:
        """The reply items heard, in order of first sound."""
        seen: dict[str, None] = {}
        for chunk in self.heard:
            if chunk.item_id is not None:
                seen.setdefault(chunk.item_id, None)
        return list(seen)

    @property
    def stale_ms(self) -> float:
        """Audio of an interrupted item heard after the ``clear`` that interrupted it."""
        total = 0.0
        for clear in self.clears:
            total += sum(c.ms for c in self.heard if c.t > clear.t and c.item_id in clear.items)
        return total

    def heard_pcm16(self) -> bytes:
        """Everything heard, as PCM16 at the stream's rate."""
        return phone_to_pcm16(self.audio, b"".join(c.audio for c in self.heard))

    @property
    def buffered_ms(self) -> float:
        """Reply audio received and not yet played."""
        return sum(
            len(e[0]) / self.audio.bytes_per_ms for e in self._buffer if not isinstance(e, str)
        )

    async def _until(self, test: Callable[[], bool], timeout: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not test():
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"{what} within {timeout} s")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.05))

    async def wait_until(self, test: Callable[[], bool], *, timeout: float = 30.0) -> None:
        """Wait until ``test()`` is true (checked whenever something is heard or received)."""
        await self._until(test, timeout, "the condition did not hold")

    async def wait_heard(self, ms: float, *, timeout: float = 30.0) -> None:
        """Wait until ``ms`` of reply audio has been played to the caller."""
        await self._until(lambda: self.heard_ms >= ms, timeout, f"no {ms} ms of reply heard")

    async def wait_quiet(self, seconds: float, *, timeout: float = 60.0) -> None:
        """Wait until nothing was played nor buffered for ``seconds``."""
        loop = asyncio.get_running_loop()

        def quiet() -> bool:
            if self._buffer:
                return False
            last = self.last_played_at
            return last is not None and loop.time() - last >= seconds

        await self._until(quiet, timeout, "the line did not go quiet")
