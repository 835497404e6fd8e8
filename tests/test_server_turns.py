"""Turn taking on the local server: VAD settings, interruption, pacing, audio items, out-of-band."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest

from audio.wav import read_wav
from realtime.server import LocalServer
from tests.server_kit import StrictClient, b64, pcm_of, shared_engines, silence

SAMPLES = Path(__file__).resolve().parents[1] / "share" / "samples"
DIALECTS = ["ga", "beta"]
BYTES_PER_MS = 48  # PCM16 24 kHz mono
SLACK_MS = 150  # delivery jitter allowed when checking the pace of audio deltas
SENTENCE = "This is a long sentence that keeps the synthesizer busy for a while."
LONG = " ".join([SENTENCE] * 12)


def names(dialect: str) -> dict[str, str]:
    """Wire names of the events that differ between the dialects."""
    if dialect == "ga":
        return {
            "added": "conversation.item.added",
            "audio": "response.output_audio.delta",
            "text": "response.output_text.delta",
        }
    return {
        "added": "conversation.item.created",
        "audio": "response.audio.delta",
        "text": "response.text.delta",
    }


def vad(**fields: Any) -> dict[str, Any]:
    """A server_vad turn-detection object with the usual defaults, overridden by ``fields``."""
    td: dict[str, Any] = {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
    }
    td.update(fields)
    return td


def session(
    dialect: str,
    *,
    audio_out: bool = True,
    turn_detection: dict[str, Any] | None = None,
    transcription: bool = False,
) -> dict[str, Any]:
    """A session.update payload in the dialect's shape."""
    tr = {"model": "whisper-1"} if transcription else None
    if dialect == "ga":
        return {
            "type": "realtime",
            "output_modalities": ["audio"] if audio_out else ["text"],
            "audio": {
                "input": {"turn_detection": turn_detection, "transcription": tr},
                "output": {"voice": "alloy"},
            },
        }
    return {
        "modalities": ["audio", "text"] if audio_out else ["text"],
        "turn_detection": turn_detection,
        "input_audio_transcription": tr,
        "voice": "alloy",
    }


@pytest.fixture
async def server():
    """A local server on a free port with the shared engines."""
    async with LocalServer(port=0, engines=shared_engines()) as srv:
        yield srv


async def configured(srv: LocalServer, dialect: str, payload: dict[str, Any]) -> StrictClient:
    """A connected client whose session.update was acknowledged."""
    c = await StrictClient.open(srv.url, dialect)
    assert (await c.recv())["type"] == "session.created"
    await c.send({"type": "session.update", "session": payload})
    await c.until("session.updated")
    return c


async def append_chunks(c: StrictClient, pcm: bytes, chunk_ms: int = 20) -> None:
    """Append audio in chunks of ``chunk_ms`` (as fast as the socket takes them)."""
    step = chunk_ms * BYTES_PER_MS
    for i in range(0, len(pcm), step):
        await c.send({"type": "input_audio_buffer.append", "audio": b64(pcm[i : i + step])})


async def user_text(c: StrictClient, text: str, dialect: str) -> dict[str, Any]:
    """Add a typed user message; returns its conversation.item.added/created event."""
    await c.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": text}],
            },
        }
    )
    return await c.until(names(dialect)["added"])


def speech(name: str) -> bytes:
    """A sample without its 200 ms of leading and trailing silence."""
    pcm = read_wav(SAMPLES / f"{name}.wav")
    return pcm[200 * BYTES_PER_MS : len(pcm) - 200 * BYTES_PER_MS]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_new_speech_interrupts_response(dialect):
    """interrupt_response: speech during a spoken reply cancels it (reason turn_detected)."""
    async with LocalServer(port=0, engines=shared_engines(), pace_audio=True) as srv:
        td = vad(create_response=False, interrupt_response=True)
        c = await configured(srv, dialect, session(dialect, turn_detection=td))
        await user_text(c, LONG, dialect)
        await c.send({"type": "response.create"})
        created = await c.until("response.created")
        await c.until(names(dialect)["audio"])
        await append_chunks(c, silence(300) + read_wav(SAMPLES / "greeting.wav") + silence(800))
        events = await c.collect_until("response.done")
        kinds = [e["type"] for e in events]
        assert "input_audio_buffer.speech_started" in kinds
        assert kinds.index("input_audio_buffer.speech_started") < kinds.index("response.done")
        done = events[-1]["response"]
        assert done["id"] == created["response"]["id"]
        assert done["status"] == "cancelled"
        assert done["status_details"]["reason"] == "turn_detected"
        assert [item["status"] for item in done["output"]] == ["incomplete"]
        if not any(e["type"] == "input_audio_buffer.committed" for e in c.events):
            await c.until("input_audio_buffer.committed")
        started = next(e for e in c.events if e["type"].endswith("speech_started"))
        committed = next(e for e in c.events if e["type"] == "input_audio_buffer.committed")
        assert committed["item_id"] == started["item_id"]
        await c.close()


async def test_interrupt_response_false_keeps_reply():
    """interrupt_response false: speech during a reply leaves the reply running to completion."""
    dialect = "ga"
    td = vad(create_response=False, interrupt_response=False)
    async with LocalServer(port=0, engines=shared_engines()) as srv:
        c = await configured(srv, dialect, session(dialect, turn_detection=td))
        await user_text(c, " ".join([SENTENCE] * 3), dialect)
        await c.send({"type": "response.create"})
        await c.until(names(dialect)["audio"])
        await append_chunks(c, silence(300) + read_wav(SAMPLES / "greeting.wav") + silence(800))
        done = await c.until("response.done", timeout=90)
        kinds = [e["type"] for e in c.events]
        assert kinds.index("input_audio_buffer.speech_started") < kinds.index("response.done")
        assert done["response"]["status"] == "completed"
        await c.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_semantic_vad_accepted(server, dialect):
    """semantic_vad is accepted, echoed, and detects turns like server_vad."""
    td = {"type": "semantic_vad", "eagerness": "auto"}
    c = await configured(server, dialect, session(dialect, audio_out=False, turn_detection=td))
    echoed = c.events[-1]["session"]
    got = echoed["audio"]["input"] if dialect == "ga" else echoed
    got = got["turn_detection"]
    assert got["type"] == "semantic_vad"
    await append_chunks(c, silence(600) + read_wav(SAMPLES / "greeting.wav") + silence(1200))
    started = await c.until("input_audio_buffer.speech_started")
    stopped = await c.until("input_audio_buffer.speech_stopped")
    assert stopped["item_id"] == started["item_id"]
    await c.until("input_audio_buffer.committed")
    events = await c.collect_until("response.done")
    text = "".join(e["delta"] for e in events if e["type"] == names(dialect)["text"])
    assert "hear" in text.lower()
    await c.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_create_response_false(server, dialect):
    """create_response false: the turn is committed and transcribed, but no response starts."""
    td = vad(create_response=False)
    payload = session(dialect, audio_out=False, turn_detection=td, transcription=True)
    c = await configured(server, dialect, payload)
    await append_chunks(c, silence(600) + read_wav(SAMPLES / "greeting.wav") + silence(1000))
    committed = await c.until("input_audio_buffer.committed")
    done = await c.until("conversation.item.input_audio_transcription.completed")
    assert done["item_id"] == committed["item_id"]
    assert "hear" in done["transcript"].lower()
    # a marker round trip: a response would have been created before the clear is answered
    await c.send({"type": "input_audio_buffer.clear"})
    await c.until("input_audio_buffer.cleared")
    assert not [e for e in c.events if e["type"].startswith("response.")]
    await c.close()


async def vad_turns(srv: LocalServer, silence_ms: int) -> tuple[list[int], list[int]]:
    """Speech, a 300 ms pause, more speech: the speech_started and speech_stopped times."""
    td = vad(silence_duration_ms=silence_ms, create_response=False)
    c = await configured(srv, "ga", session("ga", audio_out=False, turn_detection=td))
    pcm = silence(500) + speech("greeting") + silence(300) + speech("tool_call") + silence(1500)
    await append_chunks(c, pcm)
    await c.send({"type": "input_audio_buffer.clear"})
    await c.until("input_audio_buffer.cleared")
    starts = [e["audio_start_ms"] for e in c.events if e["type"].endswith("speech_started")]
    stops = [e["audio_end_ms"] for e in c.events if e["type"].endswith("speech_stopped")]
    await c.close()
    return starts, stops


async def test_silence_duration_honoured(server):
    """A 300 ms pause does not split a turn at silence_duration_ms=800 and does at 200."""
    first_end = 500 + len(speech("greeting")) // BYTES_PER_MS
    second_start = first_end + 300
    second_end = second_start + len(speech("tool_call")) // BYTES_PER_MS

    starts, stops = await vad_turns(server, 800)
    assert len(starts) == 1 and len(stops) == 1
    assert starts[0] < 500
    assert second_end - 100 <= stops[0] <= second_end + 800 + 200

    starts, stops = await vad_turns(server, 200)
    assert len(starts) >= 2 and len(stops) == len(starts)
    # one turn ends inside the pause, and the next starts there (minus prefix padding)
    assert any(first_end - 100 <= s <= second_start + 100 for s in stops)
    assert any(second_start - 300 - 150 <= s <= second_start + 150 for s in starts)


async def test_pace_audio_real_time():
    """pace_audio: audio deltas never run more than the allowed 300 ms ahead of real time."""
    async with LocalServer(port=0, engines=shared_engines(), pace_audio=True) as srv:
        c = await configured(srv, "ga", session("ga"))
        await user_text(c, "Pacing check. Two short sentences are spoken here.", "ga")
        await c.send({"type": "response.create"})
        await c.until("response.content_part.added")
        t0 = time.monotonic()
        sent_ms = 0.0
        worst_lead_ms = -1e9
        while True:
            ev = await c.recv(30)
            if ev["type"] == "response.output_audio.delta":
                now_ms = (time.monotonic() - t0) * 1000
                worst_lead_ms = max(worst_lead_ms, sent_ms - now_ms)
                sent_ms += len(base64.b64decode(ev["delta"])) / BYTES_PER_MS
            if ev["type"] == "response.done":
                break
        wall_ms = (time.monotonic() - t0) * 1000
        assert ev["response"]["status"] == "completed"
        assert sent_ms > 2500  # long enough for pacing to matter
        # audio sent before each delta is at most 300 ms ahead of the clock (+ delivery
        # jitter slack; an unpaced server runs seconds ahead here)
        assert worst_lead_ms <= 300 + SLACK_MS, (worst_lead_ms, sent_ms)
        assert wall_ms >= sent_ms - 300 - 200 - SLACK_MS  # the last 200 ms chunk may go early
        await c.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_item_create_with_input_audio_is_transcribed(server, dialect):
    """conversation.item.create with an input_audio part is transcribed and answered."""
    payload = session(dialect, audio_out=False, transcription=True)
    c = await configured(server, dialect, payload)
    audio = b64(read_wav(SAMPLES / "question.wav"))
    await c.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_audio", "audio": audio}],
            },
        }
    )
    added = await c.until(names(dialect)["added"])
    assert "audio" not in added["item"]["content"][0]
    done = await c.until("conversation.item.input_audio_transcription.completed")
    assert done["item_id"] == added["item"]["id"]
    assert "paris" in done["transcript"].lower()
    await c.send({"type": "response.create"})
    events = await c.collect_until("response.done")
    text = "".join(e["delta"] for e in events if e["type"] == names(dialect)["text"])
    assert "paris" in text.lower()
    await c.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_out_of_band_does_not_disturb_conversation(server, dialect):
    """An out-of-band response leaves the default conversation's next response unchanged."""
    n = names(dialect)
    c = await configured(server, dialect, session(dialect, audio_out=False))
    user = await user_text(c, "alpha bravo", dialect)
    await c.send(
        {
            "type": "response.create",
            "response": {
                "conversation": "none",
                "metadata": {"topic": "side"},
                "input": [
                    {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "charlie delta"}],
                    }
                ],
            },
        }
    )
    side = await c.collect_until("response.done")
    side_text = "".join(e["delta"] for e in side if e["type"] == n["text"])
    assert "charlie delta" in side_text and "alpha" not in side_text
    assert not [e for e in side if e["type"] == n["added"]]
    side_item = side[-1]["response"]["output"][0]["id"]

    await c.send({"type": "response.create"})
    main = await c.collect_until("response.done")
    text = "".join(e["delta"] for e in main if e["type"] == n["text"])
    assert "alpha bravo" in text and "charlie" not in text
    added = next(e for e in main if e["type"] == n["added"])
    assert added["previous_item_id"] == user["item"]["id"]
    await c.send({"type": "conversation.item.retrieve", "item_id": side_item, "event_id": "e_r"})
    err = await c.until("error")
    assert err["error"]["event_id"] == "e_r"
    await c.close()


async def test_out_of_band_while_idle_then_audio_turn(server):
    """After an out-of-band text response, a spoken default response still streams audio."""
    c = await configured(server, "ga", session("ga"))
    await user_text(c, "echo this please", "ga")
    await c.send(
        {
            "type": "response.create",
            "response": {"conversation": "none", "output_modalities": ["text"]},
        }
    )
    side = await c.collect_until("response.done")
    assert side[-1]["response"]["status"] == "completed"
    assert not pcm_of(side, "response.output_audio.delta")
    await c.send({"type": "response.create"})
    main = await c.collect_until("response.done")
    assert main[-1]["response"]["status"] == "completed"
    assert len(pcm_of(main, "response.output_audio.delta")) > 24000  # > 0.5 s of speech
    await c.close()
