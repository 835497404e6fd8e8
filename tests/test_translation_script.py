"""Scripted translation sessions (``translation:`` in a script): parsing and a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from realtime.exceptions import ScriptError
from realtime.script import load_script, parse_script, run_script
from realtime.server.local import LocalServer
from tests.server_kit import shared_engines
from tests.test_translation_session import needs_apertium

SAMPLES = Path(__file__).resolve().parents[1] / "share" / "samples"


def test_parse_translation_script(tmp_path: Path) -> None:
    text = """
translation: {language: es, transcription_model: gpt-realtime-whisper}
steps:
  - send_audio: greeting.wav
  - expect: {user_transcript: "(?i)hear me", transcript: "(?i)hola", within: 20}
  - wait: 0.1
"""
    script = parse_script(text, path=tmp_path / "t.yaml")
    assert script.translation == {"language": "es", "transcription_model": "gpt-realtime-whisper"}
    assert parse_script("translation: fr\nsteps: [{wait: 0}]").translation == {"language": "fr"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("translation: {}\nsteps: [{wait: 0}]", "needs the target 'language'"),
        ("translation: {language: es, voice: x}\nsteps: [{wait: 0}]", "unknown translation key"),
        ("translation: es\nsteps:\n  - say: hi\n", "no 'say' step"),
        ("translation: es\nsteps:\n  - respond\n", "no 'respond' step"),
        ("translation: es\nsteps:\n  - expect: {status: completed}\n", "no tool calls"),
        ("translation: es\nsession: {instructions: x}\nsteps: [{wait: 0}]", "'session' does not"),
        ("translation: [1]\nsteps: [{wait: 0}]", "is a mapping"),
    ],
)
def test_bad_translation_scripts(text: str, problem: str) -> None:
    with pytest.raises(ScriptError, match=problem):
        parse_script(text)


async def test_run_translation_script(tmp_path: Path) -> None:
    needs_apertium()
    path = tmp_path / "interpret.yaml"
    path.write_text(
        f"""
name: interpret greeting
translation: {{language: es, transcription_model: whisper}}
steps:
  - send_audio: {SAMPLES / "greeting.wav"}
  - expect: {{user_transcript: "(?i)can you hear me", within: 20}}
  - expect: {{transcript: "(?i)hola", event: "session.output_audio.delta", within: 20}}
  - expect: {{transcript: "never said", within: 0.2}}
"""
    )
    out = tmp_path / "run"
    async with LocalServer(engines=shared_engines()) as server:
        result = await run_script(load_script(path), url=server.url, out_dir=out)
    assert [e.passed for e in result.expects] == [True, True, False], result.report()
    assert not result.passed and result.error is None
    (turn,) = result.turns
    assert "hola" in turn.transcript.lower() and turn.audio_ms > 300
    assert turn.latency_ms is not None and turn.latency_ms > 0
    assert "hear me" in result.user_transcripts[0].lower()
    assert (out / "translation.wav").stat().st_size > 44
    summary = json.loads((out / "summary.json").read_text())
    assert summary["turns"][0]["audio_file"] == "translation.wav"
    kinds = {
        json.loads(x)["event"]["type"] for x in (out / "events.jsonl").read_text().splitlines()
    }
    assert {"session.created", "session.input_audio_buffer.append", "session.closed"} <= kinds
