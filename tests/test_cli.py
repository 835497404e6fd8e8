"""The ``realtime`` command end to end against the local server, headless.

Most commands run in-process through ``realtime.cli.main`` (the embedded local server uses the
shared engines, so the models load once); a few run as real subprocesses of the console script
to check exit codes, one-line errors and Ctrl-C.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_kit import REPO, SAMPLES, SCRIPTS, ThreadedServer, cli_env, run_cli_process
from server_kit import shared_engines

from audio.wav import read_wav
from realtime.cli import main
from realtime.cli.backend import local_engines
from realtime.cli.transcribe import LiveTranscript
from realtime.events import parse_server_event
from realtime.exceptions import ConnectionError as RealtimeConnectionError

pytestmark = pytest.mark.timeout(240)

GREETING = str(SAMPLES / "greeting.wav")
QUESTION = str(SAMPLES / "question.wav")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No key or URL from the environment; the embedded server shares the test engines.

    The working directory is the test's own folder (``run`` writes ``realtime-runs/`` there).
    """
    monkeypatch.chdir(tmp_path)
    for name in ("OPENAI_API_KEY", "OPENAI_REALTIME_URL", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    local_engines(shared_engines())


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[ThreadedServer]:
    """A local server that requires the key ``sk-right``."""
    server = ThreadedServer(api_key="sk-right").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def echo_server() -> Iterator[ThreadedServer]:
    """A local server (echo responder) for subprocesses, so they need not load models."""
    server = ThreadedServer().start()
    yield server
    server.stop()


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command in-process; returns (exit status, stdout, stderr)."""
    capsys.readouterr()
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def error_line(err: str) -> str:
    """The single ``error:`` line of stderr (asserting there is exactly one, no traceback)."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


# -- talk ---------------------------------------------------------------------------------


def test_talk_input_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """talk --input/--output: the transcript is printed and the reply WAV holds the reply."""
    out_wav = tmp_path / "reply.wav"
    status, out, err = cli(capsys, "talk", "--input", QUESTION, "--output", str(out_wav))
    assert status == 0, err
    assert "backend: local server at ws://127.0.0.1:" in err
    assert re.search(r"(?i)you: What is the weather like", out), out
    assert re.search(r"(?i)assistant: You said: What is the weather like", out), out
    assert "turn latency" in err
    pcm = read_wav(out_wav)
    assert len(pcm) / 48000 > 1.0  # seconds of PCM16 24 kHz


def test_talk_tools_with_script_responder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """talk --ptt --tools FILE: one committed turn; the tool call runs the file's function."""
    tools = tmp_path / "my_tools.py"
    tools.write_text(
        '"""Tools for the test."""\n\n\n'
        "def get_weather(city: str) -> dict:\n"
        '    """Current weather for a city."""\n'
        '    return {"temperature_c": 19, "sky": "cloudy", "asked": city}\n\n\n'
        "def _private() -> None:\n"
        "    pass\n"
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - when: weather\n"
        "    call: {name: get_weather, arguments: {city: Paris}}\n"
        '    then: "It is {output[temperature_c]} degrees and {output[sky]} in {args[city]}."\n'
    )
    rec = tmp_path / "talk.jsonl"
    status, out, err = cli(
        capsys,
        "talk",
        "--ptt",
        "--input",
        QUESTION,
        "--output",
        str(tmp_path / "reply.wav"),
        "--tools",
        str(tools),
        "--responder",
        f"script:{rules}",
        "--record",
        str(rec),
    )
    assert status == 0, err
    assert re.search(r"(?i)you: What is the weather like", out), out
    assert "assistant: It is 19 degrees and cloudy in Paris." in out
    assert len(read_wav(tmp_path / "reply.wav")) > 0
    records = [json.loads(line) for line in rec.read_text().splitlines()]
    sent = [r["event"] for r in records if r["direction"] == "client"]
    assert sent[0]["type"] == "session.update"  # the handshake is recorded too
    assert any(r["event"]["type"] == "session.created" for r in records)
    outputs = [e for e in sent if e.get("item", {}).get("type") == "function_call_output"]
    assert outputs and json.loads(outputs[0]["item"]["output"])["asked"] == "Paris"
    status, out, err = cli(capsys, "replay", str(rec))
    assert status == 0, err
    assert "tool call: get_weather" in out and "19 degrees" in out


def test_talk_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A missing WAV, --input without --output and a missing tools file are one-line errors."""
    cases = [
        (["talk", "--input", "nope.wav", "--output", "x.wav"], "no such input WAV: nope.wav"),
        (["talk", "--input", GREETING], "--input needs --output"),
        (
            ["talk", "--input", GREETING, "--output", str(tmp_path / "x.wav"), "--tools", "no.py"],
            "no such tools file",
        ),
    ]
    for argv, words in cases:
        status, _, err = cli(capsys, *argv)
        assert status == 2 and words in error_line(err)


# -- transcribe ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "srt", "vtt", "verbose_json"])
def test_transcribe_file_formats(
    capsys: pytest.CaptureFixture[str], echo_server: ThreadedServer, fmt: str
) -> None:
    """transcribe FILE --format F prints the REST transcription in that format."""
    status, out, err = cli(
        capsys, "transcribe", GREETING, "--format", fmt, "--url", echo_server.url
    )
    assert status == 0, err
    if fmt == "json":
        assert re.search(r"(?i)hello,? can you hear me", json.loads(out)["text"])
    elif fmt == "verbose_json":
        data = json.loads(out)
        assert data["duration"] == pytest.approx(1.9, abs=0.2)
        assert data["segments"] and "hear me" in data["text"].lower()
    elif fmt == "srt":
        assert re.match(r"1\n00:00:0\d,\d{3} --> 00:00:0\d,\d{3}\n.*hear me", out, re.I), out
    else:
        assert out.startswith("WEBVTT") and re.search(r"00:0\d\.\d{3} --> ", out), out


def test_transcribe_files_text_to_output(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """transcribe a.wav b.wav --output F (local backend): one line of text per file."""
    target = tmp_path / "out.txt"
    tool_call = str(SAMPLES / "tool_call.wav")
    status, _, err = cli(capsys, "transcribe", GREETING, tool_call, "--output", str(target))
    assert status == 0, err
    lines = target.read_text().splitlines()
    assert len(lines) == 2
    assert "hear me" in lines[0].lower() and "tokyo" in lines[1].lower()


def test_transcribe_live_from_wav(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Live transcription with --input WAV --format jsonl writes one timed line per turn."""
    target = tmp_path / "live.jsonl"
    status, _, err = cli(
        capsys, "transcribe", "--input", GREETING, "--format", "jsonl", "--output", str(target)
    )
    assert status == 0, err
    (record,) = [json.loads(line) for line in target.read_text().splitlines()]
    assert "hear me" in record["text"].lower()
    assert 0 <= record["start"] < record["end"] <= 3.5


def _live_events() -> list[object]:
    frames = [
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": 1200, "item_id": "i1"},
        {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 3450, "item_id": "i1"},
        {
            "type": "conversation.item.input_audio_transcription.delta",
            "item_id": "i1",
            "content_index": 0,
            "delta": "Hello",
        },
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "i1",
            "content_index": 0,
            "transcript": "Hello world.",
            "usage": {"type": "duration", "seconds": 2.25},
        },
    ]
    return [parse_server_event(json.dumps({"event_id": "e", **f})) for f in frames]


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("text", "Hello world.\n"),
        ("srt", "1\n00:00:01,200 --> 00:00:03,450\nHello world.\n\n"),
        ("jsonl", '{"item_id": "i1", "start": 1.2, "end": 3.45, "text": "Hello world."}\n'),
    ],
)
def test_live_transcript_formats(fmt: str, expected: str) -> None:
    """The live formats render a final transcription with the VAD timings."""
    buf = io.StringIO()
    view = LiveTranscript(fmt, buf, show_partials=False)
    for event in _live_events():
        view.on_event(event)  # type: ignore[arg-type]
    assert buf.getvalue() == expected


def test_transcribe_bad_format(capsys: pytest.CaptureFixture[str]) -> None:
    """A format the mode does not support is a one-line error."""
    status, _, err = cli(capsys, "transcribe", "--input", GREETING, "--format", "vtt")
    assert status == 2 and "live transcription" in error_line(err)
    status, _, err = cli(capsys, "transcribe", "missing.wav")
    assert status == 2 and "no such file: missing.wav" in error_line(err)


# -- speak --------------------------------------------------------------------------------


def test_speak_to_wav_and_stdin(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """speak "text" --output x.wav writes speech; "-" reads the text from stdin (raw PCM)."""
    wav = tmp_path / "x.wav"
    status, _, err = cli(capsys, "speak", "Hello there, this is a test.", "--output", str(wav))
    assert status == 0, err
    assert len(read_wav(wav)) / 48000 > 0.8 and f"to {wav}" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("Text from standard input.\n"))
    raw = tmp_path / "x.pcm"
    status, _, err = cli(capsys, "speak", "-", "--output", str(raw))
    assert status == 0, err
    assert raw.stat().st_size > 24000 and raw.stat().st_size % 2 == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("  \n"))
    status, _, err = cli(capsys, "speak", "-", "--output", str(raw))
    assert status == 2 and "text is empty" in error_line(err)


# -- run ----------------------------------------------------------------------------------


def test_run_shipped_scripts(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """run share/scripts/*.yaml: every example passes (exit 0), one output folder each."""
    scripts = sorted(SCRIPTS.glob("*.yaml"))
    assert len(scripts) >= 4
    status, out, err = cli(capsys, "run", *map(str, scripts), "--out", str(tmp_path))
    assert status == 0, out + err
    assert f"{len(scripts)} scripts: {len(scripts)} passed, 0 failed" in out
    assert "FAIL" not in out
    for script in scripts:
        folder = tmp_path / script.stem
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["passed"] and summary["turns"], script.name
        assert (folder / "events.jsonl").stat().st_size > 0
    assert list((tmp_path / "spoken_question").glob("turn-*.wav"))


def test_run_repeat_concurrency_and_record(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--repeat 3 --concurrency 2 makes three run folders; --record + replay show the text."""
    rec = tmp_path / "rec.jsonl"
    status, out, err = cli(
        capsys,
        "run",
        str(SCRIPTS / "hello_text.yaml"),
        "--out",
        str(tmp_path / "batch"),
        "--repeat",
        "3",
        "--concurrency",
        "2",
        "--record",
        str(rec),
    )
    assert status == 0, out + err
    assert "3 passed, 0 failed" in out
    runs = sorted(p.name for p in (tmp_path / "batch").iterdir())
    assert runs == ["run-001", "run-002", "run-003"]
    for run in runs:
        assert json.loads((tmp_path / "batch" / run / "summary.json").read_text())["passed"]
    assert {json.loads(line)["direction"] for line in rec.read_text().splitlines()} == {
        "client",
        "server",
    }
    status, out, err = cli(capsys, "replay", str(rec))
    assert status == 0, err
    assert "user: Hello there, can you hear me?" in out
    assert "assistant: You said: Hello there, can you hear me" in out
    assert "events replayed" in err


def test_run_beta_dialect_and_replay(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """run --dialect beta speaks beta; replay recognises a beta recording."""
    rec = tmp_path / "beta.jsonl"
    status, out, err = cli(
        capsys, "run", str(SCRIPTS / "hello_text.yaml"), "--dialect", "beta",
        "--out", str(tmp_path / "o"), "--record", str(rec),
    )  # fmt: skip
    assert status == 0, out + err
    assert '"modalities": ["text"]' in rec.read_text()  # the beta session shape
    status, out, err = cli(capsys, "replay", str(rec))
    assert status == 0, err
    assert "assistant: You said: Hello there, can you hear me" in out


def test_run_failing_expect(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A failing expect exits 1 with a report naming the line and what was seen instead."""
    script = tmp_path / "fail.yaml"
    script.write_text(
        "session: {output_modalities: [text]}\n"
        "steps:\n"
        "  - say: Good morning.\n"
        "  - respond\n"
        "  - expect: {event: response.done, within: 30}\n"
        "  - expect: {transcript: '(?i)good night', within: 1}\n"
    )
    status, out, err = cli(capsys, "run", str(script), "--out", str(tmp_path / "o"))
    assert status == 1, err
    assert "FAILED" in out and "ok   line 5" in out
    assert "FAIL line 6: expect transcript /(?i)good night/" in out
    assert "Good morning" in out  # what the assistant said instead


def test_run_bad_yaml_names_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A bad script is a one-line error with the file and line number (exit 2)."""
    script = tmp_path / "bad.yaml"
    script.write_text("steps:\n  - say: hi\n  - expect: {transcript: '(oops'}\n")
    status, _, err = cli(capsys, "run", str(script))
    assert status == 2
    assert f"{script}:3: bad regular expression" in error_line(err)
    script.write_text("steps:\n  - say: [unclosed\n")
    status, _, err = cli(capsys, "run", str(script))
    assert status == 2 and re.search(rf"{re.escape(str(script))}:\d+: invalid YAML", err)
    hello = str(SCRIPTS / "hello_text.yaml")
    status, _, err = cli(capsys, "run", hello, hello, "--record", str(tmp_path / "r.jsonl"))
    assert status == 2 and "--record takes a single script" in error_line(err)


# -- backends and errors ------------------------------------------------------------------


def test_unreachable_url_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An unreachable --url is a one-line error for realtime and REST commands."""
    url = "ws://127.0.0.1:9/v1"
    status, _, err = cli(capsys, "run", str(SCRIPTS / "hello_text.yaml"), "--url", url)
    assert status == 2 and "cannot connect to ws://127.0.0.1:9/v1/realtime" in error_line(err)
    status, _, err = cli(capsys, "speak", "hi", "--output", str(tmp_path / "x.wav"), "--url", url)
    assert status == 2 and "ConnectError" in error_line(err)


def test_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    """--url, then Azure, then OPENAI_API_KEY, then the local server; the key is never shown."""
    import argparse
    import asyncio

    from realtime.cli.backend import add_backend_arguments, open_backend

    parser = argparse.ArgumentParser()
    add_backend_arguments(parser)

    async def resolve(*argv: str) -> tuple[str, str, str | None, dict[str, object]]:
        async with open_backend(parser.parse_args(list(argv))) as b:
            return b.kind, b.description, b.http_url, b.connect_kwargs

    kind, desc, http, kwargs = asyncio.run(
        resolve("--url", "wss://example.test/v1/realtime", "--api-key", "sk-x")
    )
    assert kind == "url" and http == "https://example.test/v1"
    assert kwargs == {"dialect": "ga", "url": "wss://example.test/v1/realtime"}
    monkeypatch.setenv("OPENAI_REALTIME_URL", "ws://127.0.0.1:1234/v1")
    kind, _, http, _ = asyncio.run(resolve("--dialect", "beta"))
    assert kind == "url" and http == "http://127.0.0.1:1234/v1"
    monkeypatch.delenv("OPENAI_REALTIME_URL")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    kind, desc, http, kwargs = asyncio.run(resolve("--model", "gpt-realtime-mini"))
    assert kind == "openai" and "sk-secret" not in desc and http == "https://api.openai.com/v1"
    assert kwargs == {"dialect": "ga", "model": "gpt-realtime-mini"}
    kind, desc, _, kwargs = asyncio.run(
        resolve(
            "--azure-endpoint",
            "https://x.openai.azure.com",
            "--azure-deployment",
            "rt",
            "--api-key",
            "az-x",
        )
    )
    assert kind == "azure" and "x.openai.azure.com" in desc
    assert kwargs["azure_deployment"] == "rt"
    monkeypatch.delenv("OPENAI_API_KEY")
    kind, desc, http, kwargs = asyncio.run(resolve())
    assert kind == "local" and "no OPENAI_API_KEY" in desc
    assert str(kwargs["url"]).startswith("ws://127.0.0.1:") and str(http).startswith("http://")


def test_recorder_lines(tmp_path: Path) -> None:
    """Recorder writes one timestamped JSON line per event; unknown server events stay raw."""
    from realtime.recording import Recorder

    path = tmp_path / "r.jsonl"
    with Recorder(path) as rec:
        rec.client('{"type": "response.create"}')
        rec.server(parse_server_event('{"type": "future.event", "x": 1}'))
        rec.server(parse_server_event('{"type": "input_audio_buffer.cleared", "event_id": "e1"}'))
        assert rec.count == 3
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["direction"] for r in records] == ["client", "server", "server"]
    assert records[1]["event"] == {"type": "future.event", "x": 1}
    assert records[2]["event"] == {"type": "input_audio_buffer.cleared", "event_id": "e1"}
    assert all(r["t"] >= 0 for r in records)


def test_debug_shows_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    """With --debug the error propagates (the traceback is shown)."""
    with pytest.raises(RealtimeConnectionError):
        main(["--debug", "run", str(SCRIPTS / "hello_text.yaml"), "--url", "ws://127.0.0.1:9/v1"])


def test_wrong_key_is_one_line(
    capsys: pytest.CaptureFixture[str],
    keyed_server: ThreadedServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A wrong OPENAI_API_KEY against a keyed server is a one-line error (WS and REST)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    status, _, err = cli(capsys, "run", str(SCRIPTS / "hello_text.yaml"), "--url", keyed_server.url)
    assert status == 2 and "refused the API key (HTTP 401)" in error_line(err)
    assert "sk-wrong" not in err
    status, _, err = cli(
        capsys, "speak", "hi", "--output", str(tmp_path / "x.wav"), "--url", keyed_server.url
    )
    assert status == 2 and "401" in error_line(err)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-right")
    status, out, err = cli(
        capsys,
        "run",
        str(SCRIPTS / "hello_text.yaml"),
        "--url",
        keyed_server.url,
        "--out",
        str(tmp_path / "o"),
    )
    assert status == 0, out + err


def test_devices(capsys: pytest.CaptureFixture[str]) -> None:
    """devices prints a table with the defaults marked, or a clear error when there is none."""
    from audio.devices import devices
    from audio.exceptions import AudioError

    try:
        found = devices()
    except AudioError as exc:  # PortAudio itself is unusable: the command says the same
        status, _, err = cli(capsys, "devices")
        assert status == 2 and str(exc) in error_line(err)
        return
    status, out, err = cli(capsys, "devices")
    if not found:
        assert status == 2 and "no audio devices" in error_line(err)
    else:
        assert status == 0, err
        assert all(d.name[:10] in out for d in found) and "*" in out


_PULSE_DEVICES = """
import sys
sys.path.insert(0, sys.argv[1])
from virtual_pulse import PulseUnavailable, VirtualPulse

vp = VirtualPulse()
try:
    vp.start()  # exports the daemon's address before PortAudio first enumerates devices
except PulseUnavailable as exc:
    vp.stop()
    print("UNAVAILABLE:", exc)
    sys.exit(0)
try:
    from realtime.cli import main

    status = main(["devices"])
finally:
    vp.stop()
sys.exit(status)
"""


def test_devices_table_with_pulseaudio() -> None:
    """With a (private, virtual) PulseAudio daemon, devices lists it and marks the defaults."""
    proc = subprocess.run(
        [sys.executable, "-c", _PULSE_DEVICES, str(Path(__file__).parent / "audio_devices")],
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    if proc.stdout.startswith("UNAVAILABLE:"):
        if os.environ.get("REALTIME_REQUIRE_AUDIO") == "1":
            pytest.fail(f"REALTIME_REQUIRE_AUDIO=1 but {proc.stdout.strip()}")
        pytest.skip(f"PulseAudio cannot run here: {proc.stdout.strip()}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line for line in proc.stdout.splitlines() if "default" in line or "pulse" in line]
    assert any("* input output" in row for row in rows), proc.stdout
    assert re.search(r"pulse\s.*ALSA", proc.stdout), proc.stdout


_PULSE_TALK = """
import signal, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from virtual_pulse import PulseUnavailable, VirtualPulse

url, wav, rec = sys.argv[2], sys.argv[3], Path(sys.argv[4])
vp = VirtualPulse()
try:
    vp.start()
except PulseUnavailable as exc:
    vp.stop()
    print("UNAVAILABLE:", exc)
    sys.exit(0)
try:
    env = dict(vp.env, COLUMNS="160")
    talk = subprocess.Popen(
        [sys.executable, "-m", "realtime", "talk", "--url", url, "--record", str(rec)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    ready = lambda: rec.exists() and "session.updated" in rec.read_text()  # noqa: E731
    while time.monotonic() < deadline and not ready():
        time.sleep(0.2)
    time.sleep(1.0)  # the microphone stream is running
    subprocess.run(["paplay", "-d", "micsink", wav], env=vp.env, check=True, timeout=30)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and '"response.done"' not in rec.read_text():
        time.sleep(0.2)
    time.sleep(0.5)
    talk.send_signal(signal.SIGINT)
    out, err = talk.communicate(timeout=60)
    print("STATUS", talk.returncode)
    print(err)
finally:
    vp.stop()
"""


def test_talk_live_with_virtual_devices(echo_server: ThreadedServer, tmp_path: Path) -> None:
    """talk with a (virtual PulseAudio) microphone and speaker: a spoken turn is answered."""
    rec = tmp_path / "live.jsonl"
    proc = subprocess.run(
        [
            sys.executable, "-c", _PULSE_TALK, str(Path(__file__).parent / "audio_devices"),
            echo_server.url, QUESTION, str(rec),
        ],
        cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    if proc.stdout.startswith("UNAVAILABLE:"):
        if os.environ.get("REALTIME_REQUIRE_AUDIO") == "1":
            pytest.fail(f"REALTIME_REQUIRE_AUDIO=1 but {proc.stdout.strip()}")
        pytest.skip(f"PulseAudio cannot run here: {proc.stdout.strip()}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "STATUS 130" in proc.stdout and "Traceback" not in proc.stdout, proc.stdout
    assert re.search(r"(?i)you\s+What is the weather like", proc.stdout), proc.stdout
    assert "You said: What is the weather like" in proc.stdout
    events = [json.loads(line)["event"]["type"] for line in rec.read_text().splitlines()]
    assert "input_audio_buffer.speech_started" in events and "response.done" in events


def test_replay_bad_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """replay of a missing or broken recording is a one-line error naming the line."""
    status, _, err = cli(capsys, "replay", str(tmp_path / "none.jsonl"))
    assert status == 2 and "no such recording" in error_line(err)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"direction": "server", "event": {"type": "x"}}\nnot json\n')
    status, _, err = cli(capsys, "replay", str(bad))
    assert status == 2 and f"{bad}:2: not JSON" in error_line(err)


# -- real subprocesses --------------------------------------------------------------------


def _finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_console_script_errors(keyed_server: ThreadedServer, tmp_path: Path) -> None:
    """The installed command: missing WAV, unreachable URL, wrong key -> exit 2, one line."""
    procs = [
        run_cli_process(["talk", "--input", "missing.wav", "--output", str(tmp_path / "a.wav")]),
        run_cli_process(
            [
                "talk",
                "--input",
                GREETING,
                "--output",
                str(tmp_path / "b.wav"),
                "--url",
                "ws://127.0.0.1:9/v1",
            ]
        ),
        run_cli_process(
            [
                "run",
                str(SCRIPTS / "hello_text.yaml"),
                "--url",
                keyed_server.url,
                "--out",
                str(tmp_path / "o"),
            ],
            env=cli_env(OPENAI_API_KEY="sk-wrong"),
        ),
    ]
    expected = [
        "error: no such input WAV: missing.wav",
        "error: cannot connect to ws://127.0.0.1:9/v1/realtime",
        "refused the API key (HTTP 401)",
    ]
    for proc, words in zip(procs, expected, strict=True):
        status, _, err = _finish(proc)
        assert status == 2, err
        assert words in error_line(err)


def _read_stderr_until(proc: subprocess.Popen[str], pattern: str, timeout: float) -> list[str]:
    """Collect stderr lines (on a thread) until one matches; returns the lines so far."""
    lines: list[str] = []
    found = threading.Event()

    def reader() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if re.search(pattern, line):
                found.set()

    threading.Thread(target=reader, daemon=True).start()
    if not found.wait(timeout):
        proc.kill()
        raise AssertionError(f"no {pattern!r} on stderr within {timeout}s: {''.join(lines)}")
    return lines


def test_sigint_during_talk_leaves_valid_wav(echo_server: ThreadedServer, tmp_path: Path) -> None:
    """Ctrl-C during talk --input stops cleanly (exit 130) and the output WAV is valid."""
    out_wav = tmp_path / "reply.wav"
    proc = run_cli_process(
        [
            "talk",
            "--input",
            str(SAMPLES / "long.wav"),
            "--output",
            str(out_wav),
            "--url",
            echo_server.url,
        ]
    )
    lines = _read_stderr_until(proc, r"^backend:", 120)
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    time.sleep(0.2)  # the reader thread drains the rest of stderr
    err = "".join(lines)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    read_wav(out_wav)  # a valid WAV (possibly still without audio: the user was speaking)


def test_serve_starts_and_stops(tmp_path: Path) -> None:
    """serve --port 0 prints its URL on stderr, accepts a session, and stops on Ctrl-C."""
    import asyncio

    from realtime.session import connect

    proc = run_cli_process(["serve", "--port", "0", "--tts", "espeak"])
    lines = _read_stderr_until(proc, r"realtime server: ws://", 180)
    url = re.search(r"realtime server: (ws://\S+)/realtime", "".join(lines))
    assert url, lines

    async def hello() -> str:
        async with connect(url=url.group(1)) as session:
            done = asyncio.ensure_future(session.wait_for("response.done", timeout=60))
            await session.send_text("Hello server.", respond=True)
            return str((await done).response.status)  # type: ignore[attr-defined]

    assert asyncio.run(hello()) == "completed"
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    time.sleep(0.2)
    err = "".join(lines)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
