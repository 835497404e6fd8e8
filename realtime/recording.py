"""Record a session to JSONL: every client and server event, timestamped.

Each line is ``{"t": seconds_since_start, "direction": "client" | "server", "event": {...}}``.
``realtime replay FILE`` rebuilds the conversation from such a file, offline::

    with Recorder("session.jsonl") as rec:
        session.add_send_listener(rec.client)
        session.on("*", rec.server)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from .events import ServerEvent, UnknownServerEvent

__all__ = ["Recorder"]


class Recorder:
    """Appends events to a JSONL file as they happen (line-buffered, so a crash loses nothing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: TextIO | None = self.path.open("w", encoding="utf-8", buffering=1)
        self._t0 = time.monotonic()
        self.count = 0

    def _write(self, direction: str, payload: Any) -> None:
        if self._file is None:
            return
        t = round(time.monotonic() - self._t0, 4)
        self._file.write(
            json.dumps({"t": t, "direction": direction, "event": payload}, ensure_ascii=False)
            + "\n"
        )
        self.count += 1

    def client(self, frame: str) -> None:
        """Record a client frame (as sent)."""
        try:
            payload: Any = json.loads(frame)
        except ValueError:
            payload = frame
        self._write("client", payload)

    def server(self, event: ServerEvent) -> None:
        """Record a server event (its fields as received)."""
        if isinstance(event, UnknownServerEvent):
            self._write("server", event.raw)
        else:
            self._write("server", event.model_dump(mode="json", exclude_unset=True))

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
