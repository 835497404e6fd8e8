"""The translation session: a thin asyncio shell over the transport, dispatch and pure state.

.. code-block:: python

    from realtime.translation import connect_translation

    async with connect_translation(url=server.url, language="es", speaker=speaker) as tr:
        async for chunk in microphone:
            await tr.send_audio(chunk)          # paced for you: 200 ms frames, silence between
    print(tr.input_transcript, "->", tr.output_transcript)

What it is built from (nothing of :mod:`realtime.session` is copied):

- :func:`realtime.connection.resolve_endpoint` for the URL and credentials (the path becomes
  ``…/realtime/translations``), :func:`realtime.transport.open_connection` for the WebSocket
  (a :class:`~realtime.transport.FrameTransport`: a reader task takes its messages in batches
  and stops taking them while handlers are behind, so the socket stops being read);
- :func:`realtime.events.parse_server_event` / :func:`~realtime.events.encode_client_event`
  with the ``"translation"`` event set;
- :class:`realtime.dispatch.Dispatcher` for ``on``/``once``/``off`` handlers;
- :class:`~realtime.translation.pacing.FramePacer` (pure) for the input cadence and
  :class:`~realtime.translation.transcript.TranslationTranscript` (pure) for both transcripts;
- an :class:`audio.playback.AudioSink` (``Speaker``, ``FileSpeaker``, …) for the translated
  speech, fed as each ``session.output_audio.delta`` arrives, and a
  :class:`realtime.recording.Recorder` for JSONL recordings.

Bounds: queued input audio (``FramePacer.max_pending_ms``, :meth:`send_audio` waits for room),
received events waiting for handlers (``max_events``: beyond it reading from the socket
pauses until handlers catch up; nothing is dropped), kept transcript deltas
(``TranslationTranscript``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
from collections.abc import Callable, Generator, Mapping
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from audio.exceptions import AudioError
from audio.pcm import int16_from_pcm16, pcm16_from_int16
from audio.playback import AudioSink
from audio.resample import StreamResampler

from ..connection import ApiKey, Endpoint, resolve_endpoint
from ..dispatch import Dispatcher
from ..events import (
    ClientEvent,
    ErrorEvent,
    ServerEvent,
    TranslationInputAudioBufferAppendEvent,
    TranslationOutputAudioDeltaEvent,
    TranslationSession,
    TranslationSessionClosedEvent,
    TranslationSessionCloseEvent,
    TranslationSessionCreatedEvent,
    TranslationSessionUpdate,
    TranslationSessionUpdatedEvent,
    TranslationSessionUpdateEvent,
    encode_client_event,
    parse_server_event,
    unsupported_format,
)
from ..events.translation import TRANSLATION_SAMPLE_RATE
from ..exceptions import (
    ConfigError,
    ConnectionClosed,
    ProtocolError,
    RequestTimeout,
    ServerError,
)
from ..recording import Recorder
from ..transport import FrameTransport, open_connection
from .pacing import FramePacer
from .transcript import TranslationTranscript

__all__ = [
    "DEFAULT_TRANSLATION_MODEL",
    "TranslationClient",
    "connect_translation",
    "translation_endpoint",
]

log = logging.getLogger("realtime.translation")

DEFAULT_TRANSLATION_MODEL = "gpt-realtime-translate"
SPEECH_ITEM = "translation"
"""The ``item_id`` under which translated speech is queued on the speaker."""

H = TypeVar("H", bound=Callable[..., Any])


def translation_endpoint(
    model: str | None = DEFAULT_TRANSLATION_MODEL,
    *,
    url: str | None = None,
    api_key: ApiKey | None = None,
    **options: Any,
) -> Endpoint:
    """The translation WebSocket endpoint: :func:`~realtime.connection.resolve_endpoint`'s
    URL with ``/realtime/translations`` as its path (``url`` may name either path)."""
    if url is not None:
        parts = urlsplit(url)
        path = parts.path.rstrip("/")
        if path.endswith("/realtime/translations"):
            url = urlunsplit(parts._replace(path=path.removesuffix("/translations")))
    endpoint = resolve_endpoint(model, url=url, api_key=api_key, dialect="ga", **options)
    parts = urlsplit(endpoint.url)
    path = parts.path.rstrip("/") + "/translations"
    return dataclasses.replace(endpoint, url=urlunsplit(parts._replace(path=path)))


def _error(event: ErrorEvent) -> ServerError:
    e = event.error
    return ServerError(
        e.message, type=e.type, code=e.code, param=e.param, event_id=e.event_id, event=event
    )


class TranslationClient:
    """One translation session over one WebSocket (see the module docstring).

    Use :func:`connect_translation` to build and open it. Audio goes in with
    :meth:`send_audio` (any sample rate; resampled to 24 kHz, paced in 200 ms frames with
    silence between), the target language changes with :meth:`update`, and :meth:`close`
    flushes the queued audio, sends ``session.close`` and waits for ``session.closed``.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        update: TranslationSessionUpdate | None = None,
        speaker: AudioSink | None = None,
        recorder: Recorder | None = None,
        pacer: FramePacer | None = None,
        connect_timeout: float = 10.0,
        request_timeout: float = 10.0,
        max_events: int = 10_000,
        clock: Callable[[], float] | None = None,
    ) -> None:
        problem = unsupported_format(update)
        if problem is not None:
            raise ConfigError(problem)
        self.endpoint = endpoint
        self.speaker = speaker
        self.recorder = recorder
        self.pacer = pacer or FramePacer()
        self.transcript = TranslationTranscript()
        self.dispatcher = Dispatcher()
        self.session: TranslationSession | None = None
        """The session as the server last described it (``session.created`` / ``updated``)."""
        self.errors: list[ErrorEvent] = []
        """``error`` events received (also raised to the request they answer, if any)."""
        self.output_audio_bytes = 0
        self._initial = update
        self._connect_timeout = connect_timeout
        self._timeout = request_timeout
        self._events: asyncio.Queue[ServerEvent | None] = asyncio.Queue(max_events)
        self._ws: FrameTransport | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._waiters: list[tuple[Callable[[ServerEvent], bool], asyncio.Future[ServerEvent]]] = []
        self._room = asyncio.Event()
        self._closing = False
        self._closed: ConnectionClosed | None = None
        self._resampler: StreamResampler | None = None
        self._outbox: list[bytes] = []  # frames the pacer polled and has not sent yet
        self._clock = clock
        self._t0 = 0.0

    # -- life cycle ---------------------------------------------------------------------
    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    @property
    def is_open(self) -> bool:
        """True from :meth:`open` until the connection is closed."""
        return self._ws is not None and self._closed is None

    async def open(self) -> TranslationClient:
        """Connect, wait for ``session.created`` and send the initial ``session.update``."""
        ws = await open_connection(self.endpoint, connect_timeout=self._connect_timeout)
        self._ws = ws
        self._t0 = self._now()
        created = self._expect(
            lambda e: isinstance(e, (TranslationSessionCreatedEvent, ErrorEvent))
        )
        self._tasks = [
            asyncio.create_task(self._run_events(), name="translation-events"),
            asyncio.create_task(self._read(ws), name="translation-reader"),
        ]
        try:
            first = await self._await(created, "session.created")
            if isinstance(first, ErrorEvent):  # e.g. a server without a translator
                raise _error(first)
            if self._initial is not None and self._initial.model_fields_set:
                await self.update(self._initial)
        except BaseException:
            await self._shutdown()
            raise
        self._tasks.append(asyncio.create_task(self._run_pacer(), name="translation-pacer"))
        return self

    async def close(self, *, timeout: float = 30.0, wait_audio: bool = True) -> None:
        """Flush queued audio, send ``session.close``, wait for ``session.closed``, disconnect.

        The server translates the pending audio first, so ``session.closed`` may take a while
        (``timeout`` seconds at most; then :class:`RequestTimeout`, the connection is closed
        anyway). ``wait_audio`` also waits until the speaker has played what it was given.
        Idempotent.
        """
        if self._ws is None or self._closing:
            return
        self._closing = True
        try:
            pacer_task = next((t for t in self._tasks if t.get_name() == "translation-pacer"), None)
            if pacer_task is not None:  # stop the cadence; what it had polled is sent below
                pacer_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await pacer_task
            if self._closed is None:
                for audio in self._outbox:
                    await self._send(TranslationInputAudioBufferAppendEvent.from_pcm(audio))
                self._outbox.clear()
                rs, self._resampler = self._resampler, None
                if rs is not None:  # the resampler's last few samples
                    tail = pcm16_from_int16(rs.flush().astype(np.int16))
                    if len(tail) <= self.pacer.room():
                        self.pacer.push(tail)
                for piece in self.pacer.drain():
                    await self._send(TranslationInputAudioBufferAppendEvent.from_pcm(piece))
                done = self._expect(lambda e: isinstance(e, TranslationSessionClosedEvent))
                await self._send(TranslationSessionCloseEvent())
                await self._await(done, "session.closed", timeout)
                # handlers of the last events run before close returns
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._events.join(), timeout)
                if wait_audio and self.speaker is not None:
                    await self.speaker.drained()
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        ws = self._ws
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for task in self._tasks:
            if task is not asyncio.current_task():
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks = []
        if ws is not None:
            await ws.close()
            if self._closed is None:
                self._finish(_closed(ws))

    async def __aenter__(self) -> TranslationClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.close()
        else:
            self._closing = True
            await self._shutdown()

    # -- receiving ----------------------------------------------------------------------
    async def _read(self, ws: FrameTransport) -> None:
        """Take the transport's messages; a full event queue pauses reading (back-pressure)."""
        try:
            while True:
                for data in await ws.receive():
                    try:
                        event = parse_server_event(data, "translation")
                    except ProtocolError as exc:
                        log.warning("ignoring a bad frame: %s", exc)
                        continue
                    await self._events.put(event)
        except ConnectionClosed as exc:
            self._finish(exc)

    async def _run_events(self) -> None:
        while True:
            event = await self._events.get()
            try:
                if event is None:
                    return
                await self._handle(event)
            finally:
                self._events.task_done()

    async def _handle(self, event: ServerEvent) -> None:
        arrival = (self._now() - self._t0) * 1000
        if self.recorder is not None:
            self.recorder.server(event)
        if isinstance(event, TranslationOutputAudioDeltaEvent):
            try:
                self._play(event)
            except (ProtocolError, AudioError) as exc:  # bad audio: skip it, keep the session
                log.warning("skipping translated audio: %s", exc)
        elif isinstance(event, (TranslationSessionCreatedEvent, TranslationSessionUpdatedEvent)):
            self.session = event.session
        elif isinstance(event, ErrorEvent):
            self.errors.append(event)
            log.warning("server error: %s", event.error.message)
        else:
            self.transcript.feed(event, arrival)
        for test, future in list(self._waiters):
            if not future.done() and test(event):
                future.set_result(event)
        for handler in self.dispatcher.handlers_for(event.type):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # a failing handler must not stop the session
                log.exception("handler %r failed on %s", handler, event.type)

    def _play(self, event: TranslationOutputAudioDeltaEvent) -> None:
        pcm = event.audio_bytes()
        if event.channels != 1 and pcm:
            samples = int16_from_pcm16(pcm).reshape(-1, event.channels)
            pcm = pcm16_from_int16(samples.mean(axis=1).astype(np.int16))
        if event.sample_rate != TRANSLATION_SAMPLE_RATE and pcm:
            rs = StreamResampler(event.sample_rate, TRANSLATION_SAMPLE_RATE, dtype="int16")
            pcm = pcm16_from_int16(
                np.concatenate([rs.process(int16_from_pcm16(pcm)), rs.flush()]).astype(np.int16)
            )
        self.output_audio_bytes += len(pcm)
        if self.speaker is not None and pcm:
            self.speaker.enqueue(pcm, SPEECH_ITEM)

    def _finish(self, error: ConnectionClosed) -> None:
        if self._closed is not None:
            return
        self._closed = error
        self._room.set()
        for _, future in self._waiters:
            if not future.done():
                future.set_exception(error)
        self._waiters.clear()
        with contextlib.suppress(asyncio.QueueFull):
            self._events.put_nowait(None)

    def _expect(self, test: Callable[[ServerEvent], bool]) -> asyncio.Future[ServerEvent]:
        future: asyncio.Future[ServerEvent] = asyncio.get_running_loop().create_future()
        if self._closed is not None:
            future.set_exception(self._closed)
        else:
            self._waiters.append((test, future))
        return future

    async def _await(
        self, future: asyncio.Future[ServerEvent], what: str, timeout: float | None = None
    ) -> ServerEvent:
        try:
            return await asyncio.wait_for(future, timeout or self._timeout)
        except asyncio.TimeoutError:
            raise RequestTimeout(f"no {what} within {timeout or self._timeout:g} s") from None
        finally:
            self._waiters = [w for w in self._waiters if w[1] is not future]

    # -- sending ------------------------------------------------------------------------
    async def _send(self, event: ClientEvent) -> str:
        if self._ws is None:
            raise ConnectionClosed(None, "not connected")
        if self._closed is not None:
            raise self._closed
        frame = encode_client_event(event)
        if self.recorder is not None:
            self.recorder.client(frame)
        try:
            await self._ws.send(frame)
        except Exception as exc:  # websockets' ConnectionClosed and OSError
            raise _closed(self._ws) from exc
        return frame

    async def _run_pacer(self) -> None:
        pacer = self.pacer
        outbox = self._outbox
        try:
            while self._closed is None and not self._closing:
                outbox.extend(frame.audio for frame in pacer.poll(self._now()))
                while outbox:
                    audio = outbox.pop(0)
                    await self._send(TranslationInputAudioBufferAppendEvent.from_pcm(audio))
                self._room.set()
                delay = pacer.next_due(self._now()) - self._now()
                if delay > 0:
                    await asyncio.sleep(delay)
        except ConnectionClosed:
            self._room.set()  # the watcher records how it closed; send_audio then raises

    async def send_audio(self, pcm16: bytes, *, sample_rate: int = TRANSLATION_SAMPLE_RATE) -> None:
        """Queue PCM16 mono audio for translation; it is sent in real time, 200 ms a frame.

        Audio at another ``sample_rate`` is resampled to 24 kHz (keep the rate constant
        within a session). Waits while the queue is full (its bound is the pacer's
        ``max_pending_ms``). Raises :class:`~realtime.exceptions.ConnectionClosed` once the
        session is closed.
        """
        if self._closing or self._closed is not None:
            raise self._closed or ConnectionClosed(None, "the session is closing")
        if sample_rate != TRANSLATION_SAMPLE_RATE:
            rs = self._resampler
            if rs is None or rs.in_rate != sample_rate:
                rs = self._resampler = StreamResampler(
                    sample_rate, TRANSLATION_SAMPLE_RATE, dtype="int16"
                )
            pcm16 = pcm16_from_int16(rs.process(int16_from_pcm16(pcm16)).astype(np.int16))
        view = memoryview(pcm16)
        while view:
            room = self.pacer.room() & ~1
            if room == 0:
                self._room.clear()
                await self._room.wait()
                if self._closed is not None:
                    raise self._closed
                continue
            self.pacer.push(bytes(view[:room]))
            view = view[room:]

    async def update(
        self,
        session: TranslationSessionUpdate | Mapping[str, Any] | None = None,
        *,
        language: str | None = None,
        transcription_model: str | None = None,
        noise_reduction: str | None = None,
    ) -> TranslationSession:
        """Send ``session.update`` and return the session of the ``session.updated`` reply.

        Raises :class:`ConfigError` for an unsupported input audio format (before sending),
        :class:`ServerError` when the server answers with an ``error``.
        """
        if session is None:
            update = TranslationSessionUpdate.build(
                language=language,
                transcription_model=transcription_model,
                noise_reduction=noise_reduction,
            )
        elif isinstance(session, TranslationSessionUpdate):
            update = session
        else:
            update = TranslationSessionUpdate.model_validate(dict(session))
        problem = unsupported_format(update)
        if problem is not None:
            raise ConfigError(problem)
        event = TranslationSessionUpdateEvent(session=update)
        encode_client_event(event)  # assigns the event id the error would name
        event_id = event.event_id

        def answer(e: ServerEvent) -> bool:
            if isinstance(e, ErrorEvent):
                return e.error.event_id in (None, event_id)
            return isinstance(e, TranslationSessionUpdatedEvent)

        future = self._expect(answer)
        await self._send(event)
        reply = await self._await(future, "session.updated")
        if isinstance(reply, ErrorEvent):
            raise _error(reply)
        assert isinstance(reply, TranslationSessionUpdatedEvent)
        return reply.session

    # -- observing ----------------------------------------------------------------------
    def on(self, pattern: str, handler: H) -> H:
        """Call ``handler`` (sync or async) for every event matching ``pattern``."""
        return self.dispatcher.on(pattern, handler)

    def off(self, pattern: str, handler: Callable[..., Any] | None = None) -> int:
        """Remove handlers of ``pattern``."""
        return self.dispatcher.off(pattern, handler)

    async def wait_for(self, event_type: str, *, timeout: float | None = None) -> ServerEvent:
        """The next event of ``event_type`` (RequestTimeout after ``timeout`` seconds)."""
        future = self._expect(lambda e: e.type == event_type)
        return await self._await(future, event_type, timeout)

    @property
    def input_transcript(self) -> str:
        """The source-language transcript so far."""
        return self.transcript.input_text

    @property
    def output_transcript(self) -> str:
        """The translated transcript so far."""
        return self.transcript.output_text

    @property
    def closed(self) -> ConnectionClosed | None:
        """How the connection closed (``None`` while open)."""
        return self._closed


class _Connector:
    """``await connect_translation(...)`` or ``async with connect_translation(...) as tr``."""

    def __init__(self, client: TranslationClient) -> None:
        self._client = client

    def __await__(self) -> Generator[Any, None, TranslationClient]:
        return self._client.open().__await__()

    @property
    def client(self) -> TranslationClient:
        """The client, before it is opened (to subscribe handlers first)."""
        return self._client

    async def __aenter__(self) -> TranslationClient:
        return await self._client.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.__aexit__(exc_type, exc, tb)


def connect_translation(
    model: str = DEFAULT_TRANSLATION_MODEL,
    *,
    language: str | None = None,
    transcription_model: str | None = None,
    noise_reduction: str | None = None,
    session: TranslationSessionUpdate | Mapping[str, Any] | None = None,
    url: str | None = None,
    api_key: ApiKey | None = None,
    speaker: AudioSink | None = None,
    recorder: Recorder | None = None,
    pacer: FramePacer | None = None,
    request_timeout: float = 10.0,
    connect_timeout: float = 10.0,
    **endpoint_options: Any,
) -> _Connector:
    """Open a translation session (the sibling of :func:`realtime.connect` for translation).

    ``language`` is the target language (``audio.output.language``); ``transcription_model``
    turns on the source transcript; ``session`` gives the whole update instead. ``url``,
    ``api_key`` and ``endpoint_options`` (``base_url``, ``azure_endpoint``, ``env``, …) are
    those of :func:`~realtime.connection.resolve_endpoint`. Raises :class:`ConfigError` for
    an unsupported input audio format.
    """
    if session is None:
        update = TranslationSessionUpdate.build(
            language=language,
            transcription_model=transcription_model,
            noise_reduction=noise_reduction,
        )
    elif isinstance(session, TranslationSessionUpdate):
        update = session
    else:
        update = TranslationSessionUpdate.model_validate(dict(session))
    endpoint = translation_endpoint(model, url=url, api_key=api_key, **endpoint_options)
    client = TranslationClient(
        endpoint,
        update=update,
        speaker=speaker,
        recorder=recorder,
        pacer=pacer,
        request_timeout=request_timeout,
        connect_timeout=connect_timeout,
    )
    return _Connector(client)


def _closed(ws: FrameTransport) -> ConnectionClosed:
    return ConnectionClosed(ws.close_code, ws.close_reason)
