"""The local server's SIP calls: :class:`CallRegistry` (``ServerState.calls``), each
:class:`LocalCall` and the :class:`CallLeg` joining an accepted call to its realtime
session. The call-control routes that drive them are in :mod:`.calls`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from audio import pcm as pcm_mod

from ..telephony.webhooks import new_webhook_secret

if TYPE_CHECKING:
    from .session import ServerSession

__all__ = ["CallLeg", "CallRegistry", "LocalCall"]


_FRAME_MS = 20
_OUTPUT_DELTAS = frozenset({"response.output_audio.delta"})
_TRANSCRIPTS = frozenset({"response.output_audio_transcript.done", "response.output_text.done"})


@dataclass(eq=False)
class LocalCall:
    """One simulated SIP call and everything that happened to it.

    ``status``: ``ringing`` -> ``accepted`` -> ``active`` (a session is attached) ->
    ``ended``; or ``rejected``, ``referred``, ``missed``.
    """

    call_id: str
    caller: bytes  # PCM16 24 kHz mono: what the caller says once connected
    sip_headers: list[dict[str, str]]
    status: str = "ringing"
    config: dict[str, Any] | None = None
    reject_status: int | None = None
    refer_target: str | None = None
    webhook_status: int | None = None
    heard: bytearray = field(default_factory=bytearray)  # PCM16 24 kHz the caller heard
    transcripts: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    leg: CallLeg | None = None

    @property
    def heard_ms(self) -> float:
        """Milliseconds of assistant audio the caller heard."""
        return len(self.heard) / 48.0

    def finish(self, status: str) -> None:
        """Move to a final status (once)."""
        if not self.ended.is_set():
            self.status = status
            self.ended.set()


class CallLeg:
    """The caller's side of an attached call: feeds the caller's audio, records the replies."""

    def __init__(self, call: LocalCall, *, pace: bool = True) -> None:
        self.call = call
        self.pace = pace
        self._session: ServerSession | None = None
        self._feeder: asyncio.Task[None] | None = None
        self._close: Callable[[], Awaitable[None]] | None = None
        self._decoder: pcm_mod.StreamDecoder | None = None

    async def configure(self, session: ServerSession) -> None:
        """Before ``session.created``: apply the configuration the call was accepted with."""
        self._session = session
        if self.call.config:
            await session.apply_initial(self.call.config)

    def connect(self, close: Callable[[], Awaitable[None]]) -> None:
        """After ``session.created``: the caller is on the line; ``close`` ends the socket."""
        self._close = close
        self.call.status = "active"
        self._feeder = asyncio.create_task(self._feed())

    def observe(self, event: Mapping[str, Any]) -> None:
        """Every event the session emits: reply audio goes to the caller's ear."""
        kind = event.get("type")
        if kind in _OUTPUT_DELTAS and self._session is not None:
            fmt = self._session.config.output_format
            if self._decoder is None or self._decoder.format != fmt:
                self._decoder = pcm_mod.StreamDecoder(fmt)  # type: ignore[arg-type]
            self.call.heard += self._decoder.decode(base64.b64decode(str(event.get("delta", ""))))
        elif kind in _TRANSCRIPTS:
            text = event.get("transcript", event.get("text"))
            if isinstance(text, str):
                self.call.transcripts.append(text)

    async def end(self, status: str) -> None:
        """The call ends from the service side (hang-up, refer): close the socket."""
        self.call.finish(status)
        if self._close is not None:
            await self._close()

    async def detach(self) -> None:
        """The WebSocket closed: stop the caller's audio. The call itself goes on (the
        socket only controls it) until hung up: another socket may attach."""
        if self._feeder is not None:
            self._feeder.cancel()
            await asyncio.gather(self._feeder, return_exceptions=True)
        if self.call.leg is self:
            self.call.leg = None
        if self.call.status == "active":
            self.call.status = "accepted"

    async def _feed(self) -> None:
        session = self._session
        assert session is not None
        loop = asyncio.get_running_loop()
        step = _FRAME_MS * 48
        speech = self.call.caller
        silence = bytes(step)
        n = 0
        next_t = loop.time()
        while not self.call.ended.is_set():
            chunk = speech[n * step : (n + 1) * step] or silence
            n += 1
            fmt = session.config.input_format
            data = chunk if fmt == "pcm16" else pcm_mod.encode(chunk, fmt)  # type: ignore[arg-type]
            frame = {"type": "input_audio_buffer.append", "audio": base64.b64encode(data).decode()}
            await session.handle(json.dumps(frame))
            if self.pace:
                next_t += _FRAME_MS / 1000.0
                await asyncio.sleep(max(0.0, next_t - loop.time()))
            elif n * step >= len(speech) + 48 * 2000:  # unpaced: 2 s of silence is enough
                return
            else:
                await asyncio.sleep(0)


class CallRegistry:
    """The local server's calls, and the webhook secret it signs with."""

    def __init__(
        self, secret: str | None = None, *, max_calls: int = 256, ring_seconds: float = 60.0
    ) -> None:
        self.secret = secret or new_webhook_secret()
        self.max_calls = max_calls
        self.ring_seconds = ring_seconds
        self.calls: dict[str, LocalCall] = {}

    def __repr__(self) -> str:
        return f"CallRegistry(calls={len(self.calls)})"

    def new_call(self, caller: bytes, sip_headers: Sequence[Mapping[str, str]] = ()) -> LocalCall:
        """A ringing call (the oldest finished calls make room when the registry is full)."""
        if len(self.calls) >= self.max_calls:
            for call_id, old in list(self.calls.items()):
                if old.ended.is_set():
                    del self.calls[call_id]
                if len(self.calls) < self.max_calls:
                    break
            if len(self.calls) >= self.max_calls:
                raise RuntimeError(f"too many calls in progress (limit {self.max_calls})")
        call = LocalCall("rtc_" + secrets.token_hex(16), caller, [dict(h) for h in sip_headers])
        self.calls[call.call_id] = call
        loop = asyncio.get_running_loop()
        loop.call_later(self.ring_seconds, self._missed, call)
        return call

    def _missed(self, call: LocalCall) -> None:
        if call.status == "ringing":
            call.finish("missed")

    def get(self, call_id: str) -> LocalCall | None:
        """The call with this id, or ``None``."""
        return self.calls.get(call_id)

    def attach(self, call_id: str) -> CallLeg | None:
        """A leg for a WebSocket attaching to an accepted call; ``None`` when not possible."""
        call = self.calls.get(call_id)
        if call is None or call.status != "accepted" or call.leg is not None:
            return None
        call.leg = CallLeg(call)
        return call.leg
