"""A scripted fake Realtime server for tests: a real ``websockets`` server on loopback.

Use it when you want to test code that talks to a Realtime server without a network or
an API key. It listens on ``127.0.0.1`` with an ephemeral port, answers the WebSocket
handshake on any path, records everything each client sends (parsed JSON) together with
the request path and headers, and plays a *script* of steps per connection:

* :func:`expect` waits for a client event matching a type (glob allowed), a partial dict
  or a predicate;
* :func:`emit` sends server events (dicts are JSON-encoded, ``str``/``bytes`` go out raw);
* :func:`reply` sends events computed from the last matched client event (to name its
  ``event_id`` in an ``error``, say);
* :func:`delay` pauses; :func:`close` closes with a code and reason; :func:`drop` aborts
  the TCP connection so the client sees an abnormal closure (1006).

After its script, a connection stays open: frames are still recorded and, when a
``handler`` is given (free-running mode), each client event is passed to it and whatever
it returns is sent back. Tests can also push events at any time with :meth:`FakeServer.send`.

Example::

    from realtime.testing import FakeServer, emit, expect, reply

    script = [
        expect("session.update"),
        reply(lambda ev: {"type": "session.updated", "session": ev["session"]}),
    ]
    async with FakeServer(script) as server:
        async with realtime.connect(url=server.url) as session:
            await session.update(config)
        assert server.received_types() == ["session.update"]

Successive connections (a client reconnecting) take successive scripts from
``scripts=[first, second, ...]``; connections beyond the list get no script.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeAlias

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed as WSConnectionClosed
from websockets.http11 import Request, Response

from .connection import CredentialFilter
from .matching import match_type
from .telephony.simulator import PhoneSimulator

_logger = logging.getLogger("realtime.testing")
_logger.addFilter(CredentialFilter())

__all__ = [
    "ClientMatch",
    "Connection",
    "ServerEvents",
    "FakeServer",
    "Frame",
    "Handler",
    "PhoneSimulator",
    "Step",
    "close",
    "delay",
    "drop",
    "emit",
    "expect",
    "matches",
    "reply",
    "recording_scripts",
    "acknowledge",
    "session_created",
]

Frame: TypeAlias = "Mapping[str, Any] | str | bytes"
"""What the server can send: a dict (JSON-encoded) or a raw text/binary frame."""

ClientMatch: TypeAlias = "str | Mapping[str, Any] | Callable[[dict[str, Any]], bool]"
"""How to recognise a client event: a type (glob allowed), a partial dict, or a predicate."""

Handler: TypeAlias = (
    "Callable[[dict[str, Any], Connection], Iterable[Frame] | Awaitable[Iterable[Frame] | None]"
    " | None]"
)
"""Free-running mode: called with each client event; returns the frames to send back."""


def matches(event: Mapping[str, Any], pattern: ClientMatch) -> bool:
    """Return True when a client event (parsed JSON) matches ``pattern``.

    A ``str`` matches the event's ``type`` (globs such as ``"response.*"``, the same
    matcher as ``Session.on``: :func:`realtime.matching.match_type`);
    a mapping matches when every key it names is present with a matching value (nested
    mappings match recursively, other values by equality); a callable is a predicate.
    """
    if isinstance(pattern, str):
        return match_type(pattern, str(event.get("type", "")))
    if isinstance(pattern, Mapping):
        return _partial_match(event, pattern)
    return bool(pattern(dict(event)))


def _partial_match(value: Any, pattern: Any) -> bool:
    if isinstance(pattern, Mapping):
        if not isinstance(value, Mapping):
            return False
        return all(k in value and _partial_match(value[k], v) for k, v in pattern.items())
    return bool(value == pattern)


# --- steps -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One scripted action; build steps with :func:`expect`, :func:`emit` and friends."""

    kind: Literal["expect", "emit", "reply", "delay", "close", "drop"]
    match: ClientMatch | None = None
    frames: tuple[Frame, ...] = ()
    compute: Callable[[dict[str, Any]], Frame | Iterable[Frame]] | None = None
    seconds: float = 0.0
    code: int = 1000
    reason: str = ""


def expect(match: ClientMatch, *, timeout: float = 5.0, strict: bool = False) -> Step:
    """Wait for a client event matching ``match`` (see :func:`matches`).

    Non-matching events are recorded and skipped unless ``strict`` is set, in which case
    the first non-matching event fails the script. Failing to see a match within
    ``timeout`` seconds fails the script too; failures are raised by
    :meth:`FakeServer.__aexit__` as :class:`AssertionError`.
    """
    return Step("expect", match=match, seconds=timeout, code=1 if strict else 0)


def emit(*frames: Frame) -> Step:
    """Send server events; dicts without an ``event_id`` get one."""
    return Step("emit", frames=tuple(frames))


def reply(compute: Callable[[dict[str, Any]], Frame | Iterable[Frame]]) -> Step:
    """Send the frame(s) ``compute(last_matched_client_event)`` returns."""
    return Step("reply", compute=compute)


def delay(seconds: float) -> Step:
    """Pause the script."""
    return Step("delay", seconds=seconds)


def close(code: int = 1000, reason: str = "") -> Step:
    """Close the WebSocket with ``code`` and ``reason`` (a clean closing handshake)."""
    return Step("close", code=code, reason=reason)


def drop() -> Step:
    """Abort the TCP connection without a closing handshake (the client sees 1006)."""
    return Step("drop")


_SYNTHETIC = frozenset(
    {"connection.lost", "connection.restored", "connection.failed", "session.expiring"}
)
_UNANSWERED = frozenset({"input_audio_buffer.append"})


def _substitute(value: Any, ids: Mapping[str, str]) -> Any:
    """``value`` with every string equal to a key of ``ids`` replaced (recursively)."""
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, list):
        return [_substitute(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, ids) for k, v in value.items()}
    return value


def _is_synthetic(event: Mapping[str, Any]) -> bool:
    """Events the client made up itself (connection life, a response lost to a drop)."""
    if event.get("type") in _SYNTHETIC:
        return True
    response = event.get("response")
    details = response.get("status_details") if isinstance(response, dict) else None
    return isinstance(details, dict) and details.get("reason") == "connection_lost"


def _capture_ids(
    recorded: Mapping[str, Any], ids: dict[str, str]
) -> Callable[[dict[str, Any]], list[Frame]]:
    """A reply step's function noting which ids the live client used for the recorded ones."""

    def capture(live: dict[str, Any]) -> list[Frame]:
        old_item, new_item = recorded.get("item"), live.get("item")
        pairs = [(recorded.get("event_id"), live.get("event_id"))]
        if isinstance(old_item, dict) and isinstance(new_item, dict):
            pairs.append((old_item.get("id"), new_item.get("id")))
        for old, new in pairs:
            if isinstance(old, str) and isinstance(new, str):
                ids[old] = new
        return []

    return capture


def recording_scripts(path: str | Path, *, timeout: float = 5.0) -> list[list[Step]]:
    """Scripts answering a client the way the server of a recording did (one per connection).

    ``path`` is a JSONL recording (:class:`realtime.recording.Recorder`, ``--record``).
    Each client event of the recording becomes an :func:`expect` of its type (appends
    excepted: they get no answer), followed by the server events recorded after it. The
    ids the live client makes up (``event_id``, the ids of items it creates) replace the
    recorded ones in those events, so acknowledgements and errors still match. A
    ``connection.lost`` the client saw ends that connection's script (with :func:`drop`
    for 1006, else :func:`close` with the recorded code); events the client synthesised
    are left out.
    """
    records = [json.loads(line) for line in Path(path).read_text("utf-8").splitlines() if line]
    ids: dict[str, str] = {}
    scripts: list[list[Step]] = [[]]
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        if not pending:
            return
        frames = list(pending)
        pending.clear()
        scripts[-1].append(reply(lambda live: [_substitute(f, ids) for f in frames]))

    for record in records:
        event = record.get("event") if isinstance(record, dict) else None
        if not isinstance(event, dict):
            continue
        if record.get("direction") == "client":
            if event.get("type") in _UNANSWERED:
                continue
            flush()
            scripts[-1].append(expect(str(event.get("type")), timeout=timeout))
            scripts[-1].append(reply(_capture_ids(event, ids)))
        elif event.get("type") == "connection.lost":
            flush()
            code = event.get("code")
            if code in (None, 1006):
                scripts[-1].append(drop())
            else:
                scripts[-1].append(close(int(code), str(event.get("reason") or "")))
            scripts.append([])
        elif not _is_synthetic(event):
            pending.append(event)
    flush()
    return scripts


def session_created(dialect: str = "ga", **session: Any) -> dict[str, Any]:
    """A ``session.created`` event in the shape of ``dialect`` ("ga" or "beta").

    Keyword arguments override fields of the ``session`` object (``expires_at=...``).
    """
    base: dict[str, Any] = {"id": "sess_fake", "object": "realtime.session", "model": "fake"}
    if dialect == "ga":
        base.update(type="realtime", output_modalities=["audio"], expires_at=0)
    else:
        base.update(modalities=["text", "audio"], expires_at=0)
    base.update(session)
    return {"type": "session.created", "session": base}


def acknowledge(event: Mapping[str, Any], conn: Connection) -> list[dict[str, Any]]:
    """A free-running handler answering requests the way a server acknowledges them.

    ``session.update`` -> ``session.updated`` (the session echoed over a base session),
    ``transcription_session.update`` -> ``transcription_session.updated`` (beta),
    ``input_audio_buffer.commit``/``clear`` -> ``committed``/``cleared``,
    ``conversation.item.create`` -> ``conversation.item.created`` (beta) or
    ``conversation.item.added`` + ``conversation.item.done`` (GA),
    ``conversation.item.retrieve``/``truncate``/``delete`` -> ``retrieved``/``truncated``/
    ``deleted``. Other events get no answer. Use as ``FakeServer(handler=acknowledge)``
    or call it from your own handler.
    """
    etype = event.get("type")
    dialect = conn.dialect
    if etype == "session.update":
        base = session_created(dialect)["session"]
        base.update(event.get("session") or {})
        return [{"type": "session.updated", "session": base}]
    if etype == "transcription_session.update":
        body = {"id": "sess_fake", "object": "realtime.transcription_session"}
        body.update(event.get("session") or {})
        return [{"type": "transcription_session.updated", "session": body}]
    if etype == "input_audio_buffer.commit":
        conn.items += 1
        return [
            {
                "type": "input_audio_buffer.committed",
                "item_id": f"item_audio{conn.items}",
                "previous_item_id": None,
            }
        ]
    if etype == "input_audio_buffer.clear":
        return [{"type": "input_audio_buffer.cleared"}]
    if etype == "conversation.item.create":
        item = dict(event.get("item") or {})
        conn.items += 1
        item.setdefault("id", f"item_fake{conn.items}")
        item.setdefault("object", "realtime.item")
        item.setdefault("status", "completed")
        if item.get("type", "message") == "message":
            item.setdefault("content", [])
        prev = event.get("previous_item_id")
        if dialect == "beta":
            return [{"type": "conversation.item.created", "previous_item_id": prev, "item": item}]
        return [
            {"type": "conversation.item.added", "previous_item_id": prev, "item": item},
            {"type": "conversation.item.done", "previous_item_id": prev, "item": item},
        ]
    if etype == "conversation.item.retrieve":
        item = {
            "id": event.get("item_id"),
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_text", "text": "retrieved"}],
        }
        return [{"type": "conversation.item.retrieved", "item": item}]
    if etype == "conversation.item.truncate":
        keys = ("item_id", "content_index", "audio_end_ms")
        return [{"type": "conversation.item.truncated", **{k: event.get(k) for k in keys}}]
    if etype == "conversation.item.delete":
        return [{"type": "conversation.item.deleted", "item_id": event.get("item_id")}]
    return []


class ServerEvents:
    """Builders of common server events in the shape of one dialect (plain dicts).

    Use them in scripts: ``ev = ServerEvents("beta"); emit(ev.audio_delta("item_1", pcm))``.
    Only the fields the protocol requires are filled; pass extra keyword arguments to
    add or override fields.
    """

    def __init__(self, dialect: str = "ga") -> None:
        self.dialect = dialect
        ga = dialect == "ga"
        self.audio_delta_type = "response.output_audio.delta" if ga else "response.audio.delta"
        self.transcript_delta_type = (
            "response.output_audio_transcript.delta" if ga else "response.audio_transcript.delta"
        )
        self.text_delta_type = "response.output_text.delta" if ga else "response.text.delta"

    def response_created(self, response_id: str, **extra: Any) -> dict[str, Any]:
        """``response.created`` (status ``in_progress``)."""
        response = {"id": response_id, "object": "realtime.response", "status": "in_progress"}
        return {"type": "response.created", "response": response, **extra}

    def response_done(
        self,
        response_id: str,
        *,
        status: str = "completed",
        output: Sequence[Mapping[str, Any]] = (),
        usage: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``response.done`` with a final ``status``, its output items and usage."""
        response: dict[str, Any] = {
            "id": response_id,
            "object": "realtime.response",
            "status": status,
            "output": [dict(o) for o in output],
        }
        if usage is not None:
            response["usage"] = dict(usage)
        return {"type": "response.done", "response": response}

    def message_item(self, item_id: str, *, status: str = "in_progress") -> dict[str, Any]:
        """An assistant message item with one audio content part."""
        part = {"type": "output_audio" if self.dialect == "ga" else "audio", "transcript": ""}
        return {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": status,
            "content": [part] if status == "completed" else [],
        }

    def function_call_item(
        self,
        item_id: str,
        call_id: str,
        name: str,
        arguments: str = "",
        *,
        status: str = "completed",
    ) -> dict[str, Any]:
        """A ``function_call`` item."""
        return {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": status,
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
        }

    def output_item_added(
        self, response_id: str, item: Mapping[str, Any], output_index: int = 0
    ) -> dict[str, Any]:
        """``response.output_item.added``."""
        return {
            "type": "response.output_item.added",
            "response_id": response_id,
            "output_index": output_index,
            "item": dict(item),
        }

    def output_item_done(
        self, response_id: str, item: Mapping[str, Any], output_index: int = 0
    ) -> dict[str, Any]:
        """``response.output_item.done``."""
        return {
            "type": "response.output_item.done",
            "response_id": response_id,
            "output_index": output_index,
            "item": dict(item),
        }

    def audio_delta(
        self, response_id: str, item_id: str, pcm: bytes, content_index: int = 0
    ) -> dict[str, Any]:
        """An output audio delta carrying ``pcm`` (base64-encoded here)."""
        return {
            "type": self.audio_delta_type,
            "response_id": response_id,
            "item_id": item_id,
            "output_index": 0,
            "content_index": content_index,
            "delta": base64.b64encode(pcm).decode("ascii"),
        }

    def transcript_delta(self, response_id: str, item_id: str, text: str) -> dict[str, Any]:
        """An output audio transcript delta."""
        return {
            "type": self.transcript_delta_type,
            "response_id": response_id,
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            "delta": text,
        }

    def arguments_done(
        self, response_id: str, item_id: str, call_id: str, name: str, arguments: str
    ) -> dict[str, Any]:
        """``response.function_call_arguments.done`` (GA names the function; beta does not)."""
        event: dict[str, Any] = {
            "type": "response.function_call_arguments.done",
            "response_id": response_id,
            "item_id": item_id,
            "output_index": 0,
            "call_id": call_id,
            "arguments": arguments,
        }
        if self.dialect == "ga":
            event["name"] = name
        return event

    def speech_started(self, item_id: str, audio_start_ms: int = 0) -> dict[str, Any]:
        """``input_audio_buffer.speech_started``."""
        return {
            "type": "input_audio_buffer.speech_started",
            "item_id": item_id,
            "audio_start_ms": audio_start_ms,
        }

    def input_transcription_completed(
        self, item_id: str, transcript: str, content_index: int = 0
    ) -> dict[str, Any]:
        """``conversation.item.input_audio_transcription.completed``."""
        event: dict[str, Any] = {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": item_id,
            "content_index": content_index,
            "transcript": transcript,
        }
        if self.dialect == "ga":
            event["usage"] = {"type": "duration", "seconds": 1.0}
        return event

    def user_audio_item(self, item_id: str) -> dict[str, Any]:
        """A user message item with one input audio part (as created after a commit)."""
        return {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }

    def item_added(
        self, item: Mapping[str, Any], previous_item_id: str | None = None
    ) -> dict[str, Any]:
        """``conversation.item.added`` (GA) or ``conversation.item.created`` (beta)."""
        etype = "conversation.item.added" if self.dialect == "ga" else "conversation.item.created"
        return {"type": etype, "previous_item_id": previous_item_id, "item": dict(item)}

    def error(
        self, message: str, *, code: str | None = None, event_id: str | None = None
    ) -> dict[str, Any]:
        """An ``error`` event (``event_id`` names the client event at fault)."""
        error = {"type": "invalid_request_error", "message": message, "code": code}
        error["event_id"] = event_id
        return {"type": "error", "error": error}


# --- connections -------------------------------------------------------------------------


@dataclass
class Connection:
    """One client connection as the server saw it.

    ``path`` and ``headers`` come from the handshake request; ``received`` lists the client
    events (parsed JSON; frames that are not JSON objects are kept as ``{"raw": ...}``).
    ``dialect`` is ``"beta"`` when the client sent ``OpenAI-Beta: realtime=v1``.
    """

    index: int
    path: str
    headers: Headers
    received: list[dict[str, Any]] = field(default_factory=list)
    items: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    ws: ServerConnection | None = field(default=None, repr=False)
    _queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue, repr=False)

    @property
    def dialect(self) -> str:
        """``"beta"`` or ``"ga"``, from the ``OpenAI-Beta`` request header."""
        return "beta" if "realtime" in self.headers.get("OpenAI-Beta", "") else "ga"

    async def send(self, *frames: Frame) -> None:
        """Send frames to this client now (dicts JSON-encoded)."""
        if self.ws is None:
            raise RuntimeError("connection is not open")
        for frame in frames:
            await self.ws.send(_encode(frame))


_ids = itertools.count(1)


async def _cancel_and_wait(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait for them to end (their errors are theirs; a cancellation
    of the caller still propagates)."""
    for task in tasks:
        task.cancel()
    pending = [t for t in tasks if t is not asyncio.current_task()]
    if pending:
        await asyncio.wait(pending)
    for task in pending:
        if not task.cancelled() and task.exception() is not None:
            _logger.debug("fake server task ended with %r", task.exception())


def _encode(frame: Frame) -> str | bytes:
    if isinstance(frame, (str, bytes)):
        return frame
    data = dict(frame)
    data.setdefault("event_id", f"event_fake{next(_ids)}")
    return json.dumps(data, separators=(",", ":"))


def _as_frames(value: Frame | Iterable[Frame] | None) -> list[Frame]:
    if value is None:
        return []
    if isinstance(value, (str, bytes, Mapping)):
        return [value]
    return list(value)


class FakeServer:
    """A scripted Realtime server on ``127.0.0.1`` (ephemeral port); an async context manager.

    Args:
        script: the steps every connection plays (when ``scripts`` is not given).
        scripts: one script per successive connection (for reconnect tests).
        handler: free-running mode; called with each client event received after the
            script ended, returns frames to send (sync or async).
        hello: send a ``session.created`` event (in the connection's dialect) first.
        require_key: when set, the handshake is refused with HTTP 401 unless the request
            carries ``Authorization: Bearer <key>`` or ``api-key: <key>``.

    ``url`` is ``ws://127.0.0.1:<port>/v1`` (a base URL, like the local server's); the
    client may append ``/realtime?model=...``. Script failures (an expectation not met)
    are collected in ``failures`` and raised as :class:`AssertionError` on exit.
    """

    def __init__(
        self,
        script: Sequence[Step] = (),
        *,
        scripts: Sequence[Sequence[Step]] | None = None,
        handler: Handler | None = None,
        hello: bool = True,
        require_key: str | None = None,
    ) -> None:
        self._scripts = [list(s) for s in scripts] if scripts is not None else None
        self._script = list(script)
        self._handler = handler
        self._hello = hello
        self._require_key = require_key
        self._server: Server | None = None
        self.connections: list[Connection] = []
        self.failures: list[str] = []
        self.refused = 0
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def from_recording(
        cls, path: str | Path, *, timeout: float = 5.0, handler: Handler | None = None
    ) -> FakeServer:
        """A server answering a client as the server of a recording did.

        Turns a bug report's ``--record`` file into a regression test: see
        :func:`recording_scripts`. The recorded ``session.created`` is replayed (no
        generated hello).
        """
        return cls(scripts=recording_scripts(path, timeout=timeout), handler=handler, hello=False)

    # lifecycle

    async def __aenter__(self) -> FakeServer:
        """Start listening; returns the server (``.url`` is then valid)."""
        self._server = await serve(
            self._serve,
            "127.0.0.1",
            0,
            max_size=None,
            compression=None,
            process_request=self._process_request,
            ping_interval=None,
            logger=_logger,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server; raise :class:`AssertionError` if a script step failed."""
        await self.aclose()
        if exc_type is None and self.failures:
            raise AssertionError("fake server script failed: " + "; ".join(self.failures))

    async def aclose(self) -> None:
        """Close every connection and stop listening."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
        await _cancel_and_wait(list(self._tasks))

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._server is None:
            raise RuntimeError("FakeServer is not running: use 'async with FakeServer() as s'")
        sock = next(iter(self._server.sockets))
        return int(sock.getsockname()[1])

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>/v1``."""
        return f"ws://127.0.0.1:{self.port}/v1"

    # inspection

    @property
    def received(self) -> list[dict[str, Any]]:
        """Every client event of every connection, in order."""
        return [ev for conn in self.connections for ev in conn.received]

    def received_types(self) -> list[str]:
        """The ``type`` of every client event received, in order."""
        return [str(ev.get("type")) for ev in self.received]

    @property
    def connection(self) -> Connection:
        """The latest connection (raises when no client connected yet)."""
        if not self.connections:
            raise RuntimeError("no client has connected")
        return self.connections[-1]

    async def wait_connections(self, count: int, timeout: float = 5.0) -> Connection:
        """Wait until ``count`` clients have connected; returns the latest connection."""
        await self._wait(lambda: len(self.connections) >= count, timeout, f"{count} connections")
        return self.connections[-1]

    async def wait_received(
        self, match: ClientMatch, *, count: int = 1, timeout: float = 5.0
    ) -> dict[str, Any]:
        """Wait until ``count`` client events matching ``match`` arrived; returns the last."""

        def found() -> list[dict[str, Any]]:
            return [ev for ev in self.received if matches(ev, match)]

        await self._wait(lambda: len(found()) >= count, timeout, f"client event {match!r}")
        return found()[count - 1]

    async def send(self, *frames: Frame) -> None:
        """Send frames on the latest connection now."""
        await self.connection.send(*frames)

    async def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(ready)

        try:
            await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # serving

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        if self._require_key is None:
            return None
        auth = request.headers.get("Authorization", "")
        key = request.headers.get("api-key", "")
        if auth == f"Bearer {self._require_key}" or key == self._require_key:
            return None
        self.refused += 1
        return ws.respond(HTTPStatus.UNAUTHORIZED, "invalid api key\n")

    def _script_for(self, index: int) -> list[Step]:
        if self._scripts is None:
            return self._script
        return self._scripts[index] if index < len(self._scripts) else []

    async def _serve(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        conn = Connection(len(self.connections), request.path, request.headers, ws=ws)
        self.connections.append(conn)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        reader = asyncio.create_task(self._read(conn))
        handling: asyncio.Task[None] | None = None
        try:
            await self._notify()
            if self._hello:
                await conn.send(session_created(conn.dialect))
            if await self._run_script(conn, self._script_for(conn.index)):
                handling = self._start_handler(conn)
            await reader
        except WSConnectionClosed:
            pass
        finally:
            try:
                await _cancel_and_wait([t for t in (reader, handling) if t is not None])
            finally:
                conn.closed.set()
            if task is not None:
                self._tasks.discard(task)
            await self._notify()

    async def _read(self, conn: Connection) -> None:
        assert conn.ws is not None
        try:
            async for message in conn.ws:
                try:
                    data = json.loads(message)
                except ValueError:
                    data = None
                event = data if isinstance(data, dict) else {"raw": message}
                conn.received.append(event)
                conn._queue.put_nowait(event)
                await self._notify()
        except WSConnectionClosed:
            pass

    async def _run_script(self, conn: Connection, script: list[Step]) -> bool:
        """Play ``script``; False when the connection was closed or the script failed."""
        assert conn.ws is not None
        last: dict[str, Any] = {}
        for number, step in enumerate(script, 1):
            if step.kind == "expect":
                assert step.match is not None
                got = await self._expect(conn, step, number)
                if got is None:
                    return False
                last = got
            elif step.kind == "emit":
                await conn.send(*step.frames)
            elif step.kind == "reply":
                assert step.compute is not None
                await conn.send(*_as_frames(step.compute(last)))
            elif step.kind == "delay":
                await asyncio.sleep(step.seconds)
            elif step.kind == "close":
                await conn.ws.close(step.code, step.reason)
                return False
            else:  # drop
                conn.ws.transport.abort()
                return False
        return True

    async def _expect(self, conn: Connection, step: Step, number: int) -> dict[str, Any] | None:
        assert step.match is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + step.seconds
        while True:
            remaining = deadline - loop.time()
            try:
                event = await asyncio.wait_for(conn._queue.get(), max(remaining, 0))
            except asyncio.TimeoutError:
                self.failures.append(
                    f"connection {conn.index} step {number}: no client event matching "
                    f"{step.match!r} within {step.seconds} s"
                )
                return None
            if matches(event, step.match):
                return event
            if step.code:
                self.failures.append(
                    f"connection {conn.index} step {number}: expected {step.match!r}, "
                    f"got {event.get('type')!r}"
                )
                return None

    def _start_handler(self, conn: Connection) -> asyncio.Task[None] | None:
        handler = self._handler
        if handler is None:
            return None

        async def run() -> None:
            with contextlib.suppress(WSConnectionClosed):
                while True:
                    event = await conn._queue.get()
                    try:
                        result = handler(event, conn)
                        if isinstance(result, Awaitable):
                            result = await result
                    except Exception as exc:
                        self.failures.append(f"connection {conn.index}: handler raised {exc!r}")
                        continue
                    await conn.send(*_as_frames(result))

        return asyncio.create_task(run())
