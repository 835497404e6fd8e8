"""A recording (``--record`` / ``events.jsonl``) turned into a fake server's script.

``FakeServer.from_recording(path)`` (in :mod:`realtime.testing`) answers a client as the
recorded server did, so a bug report's recording becomes a regression test::

    async with FakeServer.from_recording("bug.jsonl") as server:
        async with realtime.connect(url=server.url) as session:
            ...  # the same client actions as in the recording

The script is the recording in order: each client event becomes an :func:`expect` of its
type, each server event is sent once the client events recorded before it have arrived, with
the ids the recorded client chose replaced by the live client's. Runs of
``input_audio_buffer.append`` are matched by their first append only (the
client's audio chunking need not be identical); the server events recorded during such a run
follow it. With ``pace=True`` the recorded gaps between server events are kept as delays.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from .exceptions import RealtimeError
from .testing import Frame, Step, delay, expect, reply

__all__ = ["RecordingError", "load_recording", "recording_script"]

_APPEND = "input_audio_buffer.append"
MAX_RECORDING_BYTES = 256 * 1024 * 1024
"""The largest recording read (a bound on memory)."""


class RecordingError(RealtimeError):
    """A recording that cannot be read (missing, too large, or a line that is not JSON)."""


def load_recording(path: str | Path) -> list[dict[str, Any]]:
    """The records (``{"t", "direction", "event"}``) of a JSONL recording, in order."""
    file = Path(path)
    try:
        size = file.stat().st_size
    except OSError as exc:
        raise RecordingError(f"cannot read recording {file}: {exc.strerror or exc}") from None
    if size > MAX_RECORDING_BYTES:
        raise RecordingError(f"recording {file} is larger than {MAX_RECORDING_BYTES} bytes")
    records: list[dict[str, Any]] = []
    for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise RecordingError(f"{file}:{n}: not JSON ({exc.args[0]})") from None
        if (
            isinstance(record, dict)
            and record.get("direction") in ("client", "server")
            and isinstance(record.get("event"), dict)
        ):
            records.append(record)
    return records


class _IdMap:
    """Ids the recorded client chose (item ids, call ids, event ids) -> the live client's."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def learn(self, recorded: Any, live: Any, key: str = "") -> None:
        if isinstance(recorded, dict) and isinstance(live, dict):
            for k, v in recorded.items():
                if k in live:
                    self.learn(v, live[k], k)
        elif isinstance(recorded, list) and isinstance(live, list):
            for a, b in zip(recorded, live, strict=False):
                self.learn(a, b, key)
        elif (
            isinstance(recorded, str)
            and isinstance(live, str)
            and recorded != live
            and (key == "id" or key.endswith("_id"))
        ):
            self.ids[recorded] = live

    def rewrite(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.rewrite(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.rewrite(v) for v in value]
        if isinstance(value, str):
            return self.ids.get(value, value)
        return value


def recording_script(
    records: Iterable[dict[str, Any]], *, pace: bool = False, timeout: float = 10.0
) -> list[Step]:
    """The fake-server script that replays ``records`` (see the module docstring).

    Ids the client chose in the recording (an item's ``id``, a ``call_id``, an ``event_id``)
    are learnt from the matching live client event and replaced in the server events that
    follow, so a fresh client recognises the answers to its own requests.
    """
    ids = _IdMap()
    steps: list[Step] = []
    last_client: str | None = None
    last_t: float | None = None
    for record in records:
        event = record["event"]
        kind = str(event.get("type", ""))
        if record["direction"] == "client":
            if kind == _APPEND and last_client == _APPEND:
                continue  # one expect per run of appends
            steps.append(expect(kind, timeout=timeout))
            if kind != _APPEND:
                steps.append(reply(partial(_learn, ids, event)))
            last_client = kind
            last_t = None
            continue
        t = record.get("t")
        if pace and isinstance(t, (int, float)) and last_t is not None and t > last_t:
            steps.append(delay(float(t) - last_t))
        if isinstance(t, (int, float)):
            last_t = float(t)
        steps.append(reply(partial(_rewritten, ids, event)))
    return steps


def _learn(ids: _IdMap, recorded: dict[str, Any], live: dict[str, Any]) -> list[Frame]:
    ids.learn(recorded, live)
    return []


def _rewritten(ids: _IdMap, recorded: dict[str, Any], _live: dict[str, Any]) -> list[Frame]:
    return [ids.rewrite(recorded)]
