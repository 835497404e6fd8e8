"""Each program in examples/ runs headless against the local server and prints what it should.

The six programs start together as subprocesses (they spend most of their time importing and
waiting). Three start their own local server (no key, no --url), as a developer would run
them; the three that need speech recognition use a server of this test process (--url), so the
models load once.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_kit import REPO, SAMPLES, ThreadedServer, cli_env

from audio.wav import read_wav

pytestmark = pytest.mark.timeout(300)

EXAMPLES = REPO / "examples"


class Run:
    """A finished example: exit status and output."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        out, err = proc.communicate(timeout=240)
        self.status = proc.returncode
        self.out = out
        self.err = err

    def __repr__(self) -> str:
        return f"exit {self.status}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Run], Path]]:
    """Start every example at once; wait for all; yield their results and the output folder."""
    tmp = tmp_path_factory.mktemp("examples")
    server = ThreadedServer().start()
    try:
        commands = {
            "live_conversation": [
                "--input", str(SAMPLES / "greeting.wav"), "--output", str(tmp / "reply.wav"),
                "--url", server.url,
            ],
            "mic_transcription": ["--input", str(SAMPLES / "question.wav"), "--url", server.url],
            "file_transcription": [
                str(SAMPLES / "greeting.wav"), str(SAMPLES / "tool_call.wav"),
                "--url", server.http_url,
            ],
            "scripted_session": ["--out", str(tmp / "script-run")],
            "tool_calling": [],
            "tts_stream": ["Streaming speech, sentence by sentence.", "--output",
                           str(tmp / "speech.wav")],
        }  # fmt: skip
        procs = {
            name: subprocess.Popen(
                [sys.executable, str(EXAMPLES / f"{name}.py"), *args],
                cwd=tmp,
                env=cli_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name, args in commands.items()
        }
        yield {name: Run(proc) for name, proc in procs.items()}, tmp
    finally:
        server.stop()


def test_every_example_is_tested() -> None:
    """The examples folder holds exactly the six programs these tests run."""
    assert sorted(p.stem for p in EXAMPLES.glob("*.py")) == [
        "file_transcription",
        "live_conversation",
        "mic_transcription",
        "scripted_session",
        "tool_calling",
        "tts_stream",
    ]


def test_live_conversation(runs: tuple[dict[str, Run], Path]) -> None:
    """live_conversation --input/--output: prints both sides and writes the spoken reply."""
    results, tmp = runs
    run = results["live_conversation"]
    assert run.status == 0, run
    assert re.search(r"(?i)you: hello,? can you hear me", run.out), run
    assert re.search(r"(?i)assistant: You said: hello,? can you hear me", run.out), run
    assert len(read_wav(tmp / "reply.wav")) / 48000 > 1.0


def test_mic_transcription(runs: tuple[dict[str, Run], Path]) -> None:
    """mic_transcription --input: the final line on stdout, partials on stderr."""
    run = runs[0]["mic_transcription"]
    assert run.status == 0, run
    assert "what is the weather like" in run.out.lower(), run
    assert "..." in run.err


def test_file_transcription(runs: tuple[dict[str, Run], Path]) -> None:
    """file_transcription: each file's text under its name."""
    run = runs[0]["file_transcription"]
    assert run.status == 0, run
    assert "greeting.wav\nHello, can you hear me?" in run.out, run
    assert "tool_call.wav\nWhat time is it in Tokyo?" in run.out, run


def test_scripted_session(runs: tuple[dict[str, Run], Path]) -> None:
    """scripted_session: the weather script passes on its own local server; outputs written."""
    results, tmp = runs
    run = results["scripted_session"]
    assert run.status == 0, run
    assert "weather-tool: PASSED" in run.out and "no OPENAI_API_KEY" in run.out, run
    assert "tool calls [{'name': 'get_weather', 'arguments': {'city': 'Paris'}}]" in run.out
    for name in ("events.jsonl", "summary.json"):
        assert (tmp / "script-run" / name).stat().st_size > 0


def test_tool_calling(runs: tuple[dict[str, Run], Path]) -> None:
    """tool_calling: both tools run and their results reach the answers."""
    run = runs[0]["tool_calling"]
    assert run.status == 0, run
    assert "[tool] get_weather(city='Paris')" in run.out, run
    assert "assistant: It is 21 degrees and clear in Paris." in run.out, run
    assert "[tool] get_time(city='Tokyo')" in run.out
    assert "in Tokyo." in run.out.split("get_time")[1]


def test_tts_stream(runs: tuple[dict[str, Run], Path]) -> None:
    """tts_stream --output: a WAV of the speech and the time to the first byte."""
    results, tmp = runs
    run = results["tts_stream"]
    assert run.status == 0, run
    assert "first audio byte after" in run.out and "written to" in run.out, run
    assert len(read_wav(tmp / "speech.wav")) / 48000 > 1.0
