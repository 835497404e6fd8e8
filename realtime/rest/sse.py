"""An incremental server-sent-events decoder (sans I/O).

Bytes go in as they arrive (:meth:`SSEDecoder.feed`), complete events come out. Chunk
boundaries may fall anywhere: in the middle of a line, between ``\\r`` and ``\\n``, or
inside a multi-byte UTF-8 character, because lines are split on bytes and decoded only
once complete. Follows the WHATWG "event stream interpretation" rules: lines end with
CRLF, LF or CR; a line starting with ``:`` is a comment; ``data`` lines of one event are
joined with ``\\n``; a blank line dispatches the event; an event with no ``data`` line is
not dispatched; ``retry`` must be all digits; an ``id`` containing NUL is ignored.

OpenAI-style streams end with a ``data: [DONE]`` event: it is dispatched like any other,
and :attr:`SSEEvent.is_done` tells it apart.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEDecoder", "SSEEvent"]


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event: ``data``, ``event`` name (default "message"), ``id``, ``retry``."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None

    @property
    def is_done(self) -> bool:
        """True for the ``[DONE]`` sentinel that ends an OpenAI-style stream."""
        return self.data == "[DONE]"


class SSEDecoder:
    """Turns a byte stream into :class:`SSEEvent` objects.

    Call :meth:`feed` with each chunk received, then :meth:`close` at end of stream.
    :attr:`pending` tells whether the stream stopped in the middle of an event.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None
        self._has_fields = False
        self._first_line = True
        self._truncated = False

    @property
    def last_event_id(self) -> str | None:
        """The last ``id`` seen (kept across events, as the spec says)."""
        return self._last_id

    @property
    def pending(self) -> bool:
        """True when bytes or fields of an unfinished event are held (no blank line yet)."""
        return bool(self._buffer) or self._has_fields

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Add received bytes; return the events completed by them (possibly none)."""
        self._buffer += chunk
        events: list[SSEEvent] = []
        buf = self._buffer
        start = 0
        n = len(buf)
        while start < n:
            lf = buf.find(b"\n", start)
            cr = buf.find(b"\r", start, lf if lf >= 0 else n)
            if cr >= 0:
                if cr + 1 == n:
                    break  # a CR at the very end may be the first half of CRLF: wait
                end, nxt = cr, cr + 2 if buf[cr + 1] == 0x0A else cr + 1
            elif lf >= 0:
                end, nxt = lf, lf + 1
            else:
                break
            event = self._line(bytes(buf[start:end]))
            if event is not None:
                events.append(event)
            start = nxt
        del buf[:start]
        return events

    def close(self) -> list[SSEEvent]:
        """Signal end of stream; return an event completed only by it (a final lone CR).

        An event whose blank line never arrived is discarded, per the spec, and
        :attr:`truncated` becomes True: the stream was cut off mid-event.
        """
        events: list[SSEEvent] = []
        if self._buffer.endswith(b"\r"):
            # the trailing CR ends a line after all
            line = bytes(self._buffer[:-1])
            self._buffer.clear()
            event = self._line(line)
            if event is not None:
                events.append(event)
        self._truncated = bool(self._buffer) or self._has_fields
        self._buffer.clear()
        self._reset_event()
        return events

    @property
    def truncated(self) -> bool:
        """After :meth:`close`: True when an unfinished event (or line) was discarded."""
        return self._truncated

    def _reset_event(self) -> None:
        self._data = []
        self._event = ""
        self._has_fields = False

    def _line(self, raw: bytes) -> SSEEvent | None:
        if self._first_line:
            self._first_line = False
            if raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a leading UTF-8 BOM is skipped
        line = raw.decode("utf-8", errors="replace")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._has_fields = True
        elif name == "event":
            self._event = value
            self._has_fields = True
        elif name == "id":
            if "\x00" not in value:
                self._last_id = value
            self._has_fields = True
        elif name == "retry":
            if value.isascii() and value.isdigit():
                self._retry = int(value)
            self._has_fields = True
        return None

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._reset_event()
            return None
        event = SSEEvent(
            data="\n".join(self._data),
            event=self._event or "message",
            id=self._last_id,
            retry=self._retry,
        )
        self._reset_event()
        return event
