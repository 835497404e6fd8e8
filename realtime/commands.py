"""What a session can be asked to do: client events as methods, and subscriptions.

:class:`SessionCommands` is the part of :class:`realtime.session.Session` that turns
calls such as :meth:`~SessionCommands.commit_audio` into a
:class:`~realtime.protocol.ClientProtocol` request and awaits its acknowledgement; the
session supplies the sending and waiting (``_request``, ``send``, ``expect``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import numpy as np

from .dispatch import Dispatcher
from .events import ClientEvent, ServerEvent
from .exceptions import ConfigError
from .interruption import Interruption
from .outbox import Outbox
from .protocol import ClientProtocol, Request
from .tools import Tool, ToolRegistry
from .waiting import EventMatch, Expectation

if TYPE_CHECKING:
    from audio.playback import HeardPosition, PlaybackTracker

    from .events.config import SessionConfig

__all__ = ["SessionCommands"]


def _plays_output(session: object) -> bool:
    """True when the session's transport has the server play the audio (WebRTC)."""
    transport = getattr(session, "_transport", None)
    return bool(getattr(transport, "carries_output_audio_buffer", False))


H = TypeVar("H", bound=Callable[..., Any])


class SessionCommands:
    """Client events as methods; mixed into :class:`realtime.session.Session`."""

    protocol: ClientProtocol
    dialect: Literal["beta", "ga"]
    playback: PlaybackTracker | None
    config: SessionConfig | None
    dispatcher: Dispatcher

    _outbox: Outbox
    _receive_listeners: list[Callable[[ServerEvent], None]]

    if TYPE_CHECKING:  # provided by Session

        @property
        def tools(self) -> ToolRegistry: ...

        async def _request(
            self,
            request: Request,
            *,
            timeout: float | None = None,
            then: Callable[[], Awaitable[None]] | None = None,
        ) -> ServerEvent: ...

        async def _append(self, frame: str) -> None: ...

        async def send(self, event: ClientEvent | Mapping[str, Any]) -> str: ...

        def _check_open(self) -> None: ...

        def _stop_playback(
            self, tracker: PlaybackTracker | None = None
        ) -> HeardPosition | None: ...

        def expect(
            self, match: EventMatch, timeout: float | None = None, *, any_dialect: bool = False
        ) -> Expectation: ...

    # -- client events -------------------------------------------------------------------

    async def update(
        self, config: SessionConfig | None = None, *, timeout: float | None = None
    ) -> ServerEvent:
        """Configure the session (with the registered tools) and wait for the acknowledgement.

        ``session.update`` -> ``session.updated``; a beta transcription configuration
        (``kind="transcription"``) sends ``transcription_session.update``. On success
        :attr:`config` becomes ``config``. Raises :class:`ServerError`,
        :class:`RequestTimeout`, :class:`ConnectionClosed`, or :class:`ConfigError`.
        """
        request = self.protocol.update(config if config is not None else self.config)
        reply = await self._request(request, timeout=timeout)
        if config is not None:
            self.config = config
        return reply

    async def update_transcription_session(
        self, session: Mapping[str, Any] | SessionConfig, *, timeout: float | None = None
    ) -> ServerEvent:
        """Configure a transcription-only session from its wire object and wait for the ack.

        Beta sends ``transcription_session.update``; GA ``session.update`` with
        ``type: "transcription"``. A :class:`SessionConfig` is encoded for the dialect.
        """
        if not isinstance(session, Mapping):
            session = session.to_wire(self.dialect)
        request = self.protocol.update_transcription_session(session)
        return await self._request(request, timeout=timeout)

    async def append_audio(
        self, audio: bytes | bytearray | memoryview | np.ndarray[Any, Any]
    ) -> None:
        """Send ``input_audio_buffer.append`` with PCM16 audio (bytes or an int16 array).

        No acknowledgement exists for appends; this returns once the frame is queued.
        """
        if isinstance(audio, np.ndarray):
            if audio.dtype != np.int16 or audio.ndim != 1:
                raise ConfigError(
                    "append_audio takes a 1-D int16 array, "
                    f"got {audio.dtype} with shape {audio.shape}"
                )
            data = audio.astype("<i2", copy=False).tobytes()
        else:
            data = bytes(audio)
        if data:
            await self._append(self.protocol.append_audio_frame(data))

    async def commit_audio(self, *, timeout: float | None = None) -> ServerEvent:
        """Send ``input_audio_buffer.commit``; waits for its ``committed`` (never a VAD one)."""
        return await self._request(self.protocol.commit(), timeout=timeout)

    async def clear_audio(self, *, timeout: float | None = None) -> ServerEvent:
        """Send ``input_audio_buffer.clear``; waits for ``input_audio_buffer.cleared``."""
        return await self._request(self.protocol.clear_audio(), timeout=timeout)

    async def clear_output_audio(self) -> None:
        """Send ``output_audio_buffer.clear`` (GA, and beta over WebRTC): the server stops
        playing the reply audio and truncates it to what was played."""
        if self.dialect != "ga" and not _plays_output(self):
            raise ConfigError("output_audio_buffer.clear exists only in the GA dialect")
        await self.send({"type": "output_audio_buffer.clear"})

    async def create_item(
        self,
        item: Mapping[str, Any] | Any,
        *,
        previous_item_id: str | None = None,
        timeout: float | None = None,
        then: Callable[[], Awaitable[None]] | None = None,
    ) -> ServerEvent:
        """Send ``conversation.item.create``; waits for the item's ``created``/``added`` event.

        ``item`` is a wire item (dict or model); an ``id`` is generated when absent so
        the acknowledgement is matched to this item. ``then`` is awaited right after
        the item is queued, before waiting (to queue more events behind it).
        """
        data = item.model_dump(exclude_none=True) if hasattr(item, "model_dump") else dict(item)
        request = self.protocol.create_item(data, previous_item_id=previous_item_id)
        return await self._request(request, timeout=timeout, then=then)

    async def send_text(
        self,
        text: str,
        *,
        role: str = "user",
        respond: bool = True,
        wait: bool = False,
        timeout: float | None = None,
    ) -> ServerEvent:
        """Add a text message (and, by default, ask for a response right behind it).

        Returns the item's acknowledgement (``timeout`` bounds it); with ``wait=True``
        the ``response.done`` of the reply instead, awaited from before sending so a fast
        reply is never missed (``timeout`` then bounds the wait for the reply). A reply
        lost to a dropped connection ends with a ``response.done`` of status ``incomplete``.
        """
        if wait and not respond:
            raise ConfigError("send_text(wait=True) needs respond=True")
        expectation = self.expect("response.done", timeout, any_dialect=True) if wait else None
        request = self.protocol.send_text(text, role=role, respond=respond)
        try:
            ack = await self._request(request, timeout=None if wait else timeout)
        except BaseException:
            if expectation is not None:
                expectation.cancel()
            raise
        return ack if expectation is None else await expectation.wait()

    async def truncate(
        self, item_id: str, content_index: int, audio_end_ms: int, *, timeout: float | None = None
    ) -> ServerEvent:
        """Send ``conversation.item.truncate``; waits for ``conversation.item.truncated``."""
        request = self.protocol.truncate(item_id, content_index, audio_end_ms)
        return await self._request(request, timeout=timeout)

    async def delete_item(self, item_id: str, *, timeout: float | None = None) -> ServerEvent:
        """Send ``conversation.item.delete``; waits for ``conversation.item.deleted``."""
        return await self._request(self.protocol.delete_item(item_id), timeout=timeout)

    async def retrieve_item(self, item_id: str, *, timeout: float | None = None) -> ServerEvent:
        """Send ``conversation.item.retrieve``; waits for ``conversation.item.retrieved``."""
        return await self._request(self.protocol.retrieve_item(item_id), timeout=timeout)

    async def create_response(self, **response: Any) -> None:
        """Ask for a response (``response.create``; keyword arguments become ``response``).

        While another response is active the request is queued and sent when that one
        is done (instead of earning an error).
        """
        self._check_open()
        for event in self.protocol.create_response(**response):
            await self.send(event)

    async def cancel_response(self, response_id: str | None = None) -> bool:
        """Cancel the active response; returns False when there was none (nothing sent)."""
        self._check_open()
        events = self.protocol.cancel_response(response_id)
        for event in events:
            await self.send(event)
        return bool(events)

    async def interrupt(self, tracker: PlaybackTracker | None = None) -> Interruption:
        """Barge in locally: stop playback, cancel the response, truncate at what was heard.

        ``tracker`` (default: the session's) is told to ``interrupt()``: a speaker stops
        with its fade and reports the heard position, where the item is truncated; the
        active response is cancelled (either dialect). Without any tracker, the time
        since the first audio delta stands for what was heard. Returns the decision.
        """
        self._check_open()
        tracker = tracker if tracker is not None else self.playback
        if tracker is not None:
            decision = self.protocol.interrupt(self._stop_playback(tracker))
        else:
            decision = self.protocol.interrupt(None, now=time.monotonic())
        if _plays_output(self):
            # WebRTC: the server plays the audio; output_audio_buffer.clear stops it there
            # and truncates the item to what was played (no guess from received audio)
            for event in decision.events:
                if event.type != "conversation.item.truncate":
                    await self.send(event)
            await self.send({"type": "output_audio_buffer.clear"})
            return decision
        for event in decision.events:
            await self.send(event)
        return decision

    # -- tools ---------------------------------------------------------------------------

    @overload
    def tool(self, func: Callable[..., Any], /) -> Tool: ...

    @overload
    def tool(
        self,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> Callable[[Callable[..., Any]], Tool]: ...

    def tool(
        self,
        func: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> Tool | Callable[[Callable[..., Any]], Tool]:
        """Register a function tool (``@session.tool`` or ``@session.tool(timeout=5)``).

        Tools go out with the next :meth:`update` (and the initial configuration).
        """
        if func is None:
            return self.tools.tool(name=name, description=description, timeout=timeout)
        return self.tools.tool(func)

    def register_tool(
        self,
        func: Callable[..., Any] | Tool,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> Tool:
        """Register a function (or :class:`Tool`); it goes out with the next :meth:`update`."""
        return self.tools.register(func, name=name, description=description, timeout=timeout)

    # -- subscriptions -------------------------------------------------------------------

    @overload
    def on(
        self,
        pattern: str,
        handler: None = None,
        *,
        any_dialect: bool = False,
        thread: bool = False,
    ) -> Callable[[H], H]: ...

    @overload
    def on(
        self, pattern: str, handler: H, *, any_dialect: bool = False, thread: bool = False
    ) -> H: ...

    def on(
        self,
        pattern: str,
        handler: H | None = None,
        *,
        any_dialect: bool = False,
        thread: bool = False,
    ) -> H | Callable[[H], H]:
        """Subscribe a handler (sync or async) to events matching ``pattern``; decorator too.

        Patterns: an exact type, a glob (``"conversation.item.*"``) or ``"*"`` (everything,
        unknown types, invalid events and the synthetic ``connection.*`` events included).
        ``any_dialect=True`` also matches the other dialect's name for the same event;
        ``thread=True`` runs a sync handler in a worker thread (see
        :class:`~realtime.dispatch.HandlerRunner`).
        """
        return self.dispatcher.on(pattern, handler, any_dialect=any_dialect, thread=thread)

    @overload
    def once(
        self,
        pattern: str,
        handler: None = None,
        *,
        any_dialect: bool = False,
        thread: bool = False,
    ) -> Callable[[H], H]: ...

    @overload
    def once(
        self, pattern: str, handler: H, *, any_dialect: bool = False, thread: bool = False
    ) -> H: ...

    def once(
        self,
        pattern: str,
        handler: H | None = None,
        *,
        any_dialect: bool = False,
        thread: bool = False,
    ) -> H | Callable[[H], H]:
        """Like :meth:`on`, for the first matching event only."""
        return self.dispatcher.once(pattern, handler, any_dialect=any_dialect, thread=thread)

    def off(self, pattern: str, handler: Callable[..., Any] | None = None) -> int:
        """Remove subscriptions of ``pattern`` (only ``handler``'s if given); returns the count."""
        return self.dispatcher.off(pattern, handler)

    def add_send_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(frame)`` with every client frame once it has been sent.

        For recording (:class:`realtime.recording.Recorder`); it runs in the writer
        task, so it must be quick. Exceptions it raises are logged and ignored.
        """
        self._outbox.listeners.append(listener)

    def remove_send_listener(self, listener: Callable[[str], None]) -> None:
        """Stop calling a listener added with :meth:`add_send_listener`."""
        self._outbox.listeners.remove(listener)

    def add_receive_listener(self, listener: Callable[[ServerEvent], None]) -> None:
        """Call ``listener(event)`` with every event (received or synthetic) at once.

        Unlike a handler it runs in the reader, before the event is delivered, so with
        :meth:`add_send_listener` it sees both directions in causal order (a recording
        that :meth:`realtime.testing.FakeServer.from_recording` can replay). It must be
        quick; exceptions it raises are logged and ignored.
        """
        self._receive_listeners.append(listener)

    def remove_receive_listener(self, listener: Callable[[ServerEvent], None]) -> None:
        """Stop calling a listener added with :meth:`add_receive_listener`."""
        self._receive_listeners.remove(listener)
