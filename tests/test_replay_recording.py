"""Recordings: FakeServer.from_recording re-drives a client, `realtime replay` marks truncation
and guesses the dialect of a beta transcription recording; usage counts transcriptions."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_kit import REPO, SAMPLES, cli_env
from server_kit import shared_engines

from audio.wav import read_wav
from realtime.cli.replay import guess_dialect, replay_file
from realtime.events.common import InputAudioTranscription, ServerVad
from realtime.events.config import SessionConfig
from realtime.recording import Recorder
from realtime.replay_server import RecordingError, load_recording, recording_script
from realtime.response_state import ResponseTracker, UsageTotals
from realtime.server import LocalServer
from realtime.session import connect
from realtime.testing import FakeServer

pytestmark = pytest.mark.timeout(180)


async def _hello_session(url: str, record: Path | None = None) -> list[dict[str, Any]]:
    """One text turn; returns the server events the client saw (as recorded dicts)."""
    seen: list[dict[str, Any]] = []
    ctx = connect(url=url)
    rec = Recorder(record) if record is not None else None
    if rec is not None:
        ctx.session.add_send_listener(rec.client)
        ctx.session.on("*", rec.server)
    ctx.session.on("*", lambda e: seen.append(e.model_dump(mode="json", exclude_unset=True)))
    try:
        async with ctx as session:
            done = asyncio.ensure_future(session.wait_for("response.done", timeout=60))
            await session.send_text("Hello there, replay me.", respond=True)
            await done
    finally:
        if rec is not None:
            rec.close()
    return seen


async def test_from_recording_answers_a_fresh_client(tmp_path: Path) -> None:
    """Record a session with the local server; a fresh client against the recording's fake
    server receives the same server events, and the server sees the same client events."""
    path = tmp_path / "session.jsonl"
    async with LocalServer(port=0, engines=shared_engines()) as server:
        original = await _hello_session(server.url, path)
    assert any(e["type"] == "response.done" for e in original)

    async with FakeServer.from_recording(str(path)) as fake:
        replayed = await _hello_session(fake.url)
    recorded = [r["event"] for r in load_recording(path) if r["direction"] == "client"]
    assert fake.received_types() == [e["type"] for e in recorded]
    assert not fake.failures
    # the only differences: the ids the fresh client chose itself (e.g. its item's id)
    chosen = {
        old: new
        for before, now in zip(recorded, fake.received, strict=True)
        for old, new in _ids(before, now)
    }
    assert chosen  # the client does choose ids: they were rewritten, not replayed verbatim
    assert replayed == json.loads(
        json.dumps(original, sort_keys=True),
        object_hook=lambda d: {
            k: chosen.get(v, v) if isinstance(v, str) else v for k, v in d.items()
        },
    )


def _ids(before: Any, now: Any) -> list[tuple[str, str]]:
    """Pairs of differing id values at the same place in two client events."""
    if isinstance(before, dict) and isinstance(now, dict):
        pairs = []
        for key, value in before.items():
            if key in now and isinstance(value, str) and key.endswith("id") and value != now[key]:
                pairs.append((value, now[key]))
            elif key in now:
                pairs.extend(_ids(value, now[key]))
        return pairs
    if isinstance(before, list) and isinstance(now, list):
        return [p for a, b in zip(before, now, strict=False) for p in _ids(a, b)]
    return []


async def test_from_recording_waits_for_the_client_and_reports_a_mismatch(tmp_path: Path) -> None:
    """Server events recorded after a client event wait for it; a client that does not send
    it makes the fake server fail the test (the regression is caught)."""
    path = tmp_path / "r.jsonl"
    lines = [
        {
            "t": 0.0,
            "direction": "server",
            "event": {"type": "session.created", "event_id": "e1", "session": {"type": "realtime"}},
        },
        {
            "t": 0.1,
            "direction": "client",
            "event": {"type": "input_audio_buffer.append", "audio": ""},
        },
        {
            "t": 0.2,
            "direction": "client",
            "event": {"type": "input_audio_buffer.append", "audio": ""},
        },
        {
            "t": 0.3,
            "direction": "server",
            "event": {
                "type": "input_audio_buffer.speech_started",
                "event_id": "e2",
                "audio_start_ms": 0,
                "item_id": "i1",
            },
        },
        {"t": 0.4, "direction": "client", "event": {"type": "response.create"}},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    steps = recording_script(load_recording(path))
    assert [s.kind for s in steps] == ["reply", "expect", "reply", "expect", "reply"]
    server = FakeServer.from_recording(str(path), timeout=0.5)
    with pytest.raises(AssertionError, match=r"response\.create"):
        async with server, connect(url=server.url) as session:
            await session.append_audio(bytes(960))
            await asyncio.sleep(1.0)  # never sends response.create
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\nnope\n")
    with pytest.raises(RecordingError, match=r"bad\.jsonl:2: not JSON"):
        load_recording(bad)


def _truncation_recording(path: Path) -> None:
    """A GA recording: a 2 s reply cut after 0.5 s."""
    audio = "A" * (48000 * 2 * 4 // 3)  # base64 of 2 s of PCM16 24 kHz
    events = [
        {"type": "session.created", "session": {"type": "realtime"}},
        {
            "type": "conversation.item.added",
            "item": {"id": "a1", "type": "message", "role": "assistant", "content": []},
        },
        {
            "type": "response.content_part.added",
            "response_id": "r1",
            "item_id": "a1",
            "output_index": 0,
            "content_index": 0,
            "part": {"type": "audio"},
        },
        {
            "type": "response.output_audio.delta",
            "response_id": "r1",
            "item_id": "a1",
            "output_index": 0,
            "content_index": 0,
            "delta": audio,
        },
        {
            "type": "response.output_audio_transcript.delta",
            "response_id": "r1",
            "item_id": "a1",
            "output_index": 0,
            "content_index": 0,
            "delta": "One two three four five six seven eight.",
        },
        {
            "type": "conversation.item.truncated",
            "item_id": "a1",
            "content_index": 0,
            "audio_end_ms": 500,
        },
    ]
    path.write_text(
        "\n".join(
            json.dumps({"t": i / 10, "direction": "server", "event": {"event_id": f"e{i}", **e}})
            for i, e in enumerate(events)
        )
        + "\n"
    )


def test_replay_marks_truncated_text(tmp_path: Path) -> None:
    """`realtime replay` prints the heard part of an interrupted reply and marks the rest."""
    path = tmp_path / "cut.jsonl"
    _truncation_recording(path)
    proc = subprocess.run(
        [sys.executable, "-m", "realtime", "replay", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=cli_env(),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert line.startswith("assistant: One two"), line
    assert "[interrupted after ~0.5 of 2.0 s; not heard: " in line
    heard = line.split(" [interrupted")[0]
    assert "eight" not in heard and "eight." in line


def test_replay_guesses_beta_transcription_recording(tmp_path: Path) -> None:
    """A transcription-only beta recording (no beta-only response events) replays as beta:
    its transcripts (beta shape: no usage) are applied, not skipped; a GA one stays GA."""
    item = {
        "id": "u1",
        "object": "realtime.item",
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_audio", "transcript": None}],
    }
    events: list[dict[str, Any]] = [
        {
            "type": "transcription_session.updated",
            "session": {
                "id": "s1",
                "object": "realtime.transcription_session",
                "input_audio_format": "pcm16",
            },
        },
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "u1"},
        {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 900, "item_id": "u1"},
        {"type": "input_audio_buffer.committed", "previous_item_id": None, "item_id": "u1"},
        {"type": "conversation.item.created", "previous_item_id": None, "item": item},
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u1",
            "content_index": 0,
            "transcript": "Hello, can you hear me?",
        },
    ]
    path = tmp_path / "beta.jsonl"
    path.write_text(
        "\n".join(
            json.dumps({"t": n / 10, "direction": "server", "event": {"event_id": f"e{n}", **e}})
            for n, e in enumerate(events)
        )
        + "\n"
    )
    records = load_recording(path)
    assert guess_dialect(records) == "beta"
    replay = replay_file(path)
    assert replay.dialect == "beta" and replay.skipped == 0
    assert [i.transcript for i in replay.conversation.items] == ["Hello, can you hear me?"]
    proc = subprocess.run(
        [sys.executable, "-m", "realtime", "replay", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=cli_env(),
        timeout=60,
    )
    assert proc.stdout.strip() == "user: Hello, can you hear me?", proc.stderr
    assert "0 skipped (beta dialect)" in proc.stderr

    ga = dict(events[-1], usage={"type": "duration", "seconds": 1.0})
    assert guess_dialect([{"direction": "server", "event": ga}]) == "ga"


def test_usage_counts_transcription() -> None:
    """Transcription usage (GA completed events) adds to the session's totals."""
    from realtime.events import parse_server_event

    tracker = ResponseTracker()
    for n in (1, 2):
        event = parse_server_event(
            json.dumps(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "event_id": f"e{n}",
                    "item_id": f"i{n}",
                    "content_index": 0,
                    "transcript": "hi",
                    "usage": {
                        "type": "tokens",
                        "input_tokens": 10,
                        "output_tokens": 3,
                        "total_tokens": 13,
                    },
                }
            )
        )
        tracker.apply(event)
    usage = tracker.usage
    assert (usage.transcriptions, usage.transcription_tokens, usage.total_tokens) == (2, 26, 26)
    assert usage.transcription_input_tokens == 20 and usage.transcription_output_tokens == 6
    totals = UsageTotals()
    totals.add_transcription({"type": "duration", "seconds": 2.5})
    assert totals.transcription_seconds == 2.5 and totals.total_tokens == 0


async def test_session_usage_of_transcription_only_session() -> None:
    """A transcription-only GA session against the local server reports its usage."""
    config = SessionConfig(
        kind="transcription",
        transcription=InputAudioTranscription(model="whisper-1"),
        turn_detection=ServerVad(type="server_vad", silence_duration_ms=500),
    )
    pcm = read_wav(str(SAMPLES / "greeting.wav"))
    server = LocalServer(port=0, engines=shared_engines())
    async with server, connect(url=server.url, config=config) as session:
        done = asyncio.ensure_future(
            session.wait_for("conversation.item.input_audio_transcription.completed", timeout=60)
        )
        await session.append_audio(pcm + bytes(48000))
        event = await done
        await asyncio.sleep(0.1)
        usage = session.usage
    assert usage.transcriptions == 1
    reported = event.usage  # type: ignore[attr-defined]
    assert usage.transcription_tokens == (reported.total_tokens or 0)
    assert usage.transcription_seconds == (reported.seconds or 0.0)
    assert usage.responses == 0
