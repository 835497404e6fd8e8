"""Scripted sessions: the YAML format (steps, line numbers, errors) and the runner end to end."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from cli_kit import SAMPLES, SCRIPTS
from server_kit import shared_engines

from audio.wav import read_wav
from realtime.exceptions import ScriptError
from realtime.script.format import (
    Commit,
    Expect,
    InterruptAfter,
    Respond,
    Say,
    Script,
    SendAudio,
    Wait,
    load_script,
    parse_script,
)
from realtime.script.runner import run_script
from realtime.server import LocalServer

pytestmark = pytest.mark.timeout(180)


def parse(text: str, path: Path | None = None) -> Script:
    return parse_script(textwrap.dedent(text).lstrip("\n"), path=path)


# -- format -------------------------------------------------------------------------------


def test_every_step_kind_parses_with_its_line(tmp_path: Path) -> None:
    """Each step kind becomes its typed step, with the line it was written on."""
    script = parse(
        """
        name: all
        session: {output_modalities: [text]}
        steps:
          - say: hello
          - send_audio: a.wav
            realtime: true
          - commit
          - respond
          - respond: {instructions: Be short.}
          - expect: response.done
          - expect: {transcript: "(?i)hi", user_transcript: "hello", status: completed, within: 3}
          - expect: {tool_call: get_time, within: 2}
          - expect: {tool_call: {name: get_weather, arguments: {city: Paris}}}
          - interrupt_after_ms: 800
          - wait: 0.25
          - commit: {}
        """,
        path=tmp_path / "all.yaml",
    )
    s = script.steps
    assert script.name == "all" and script.session == {"output_modalities": ["text"]}
    assert s[0] == Say(text="hello", line=4)
    assert s[1] == SendAudio(path=tmp_path / "a.wav", line=5, realtime=True)
    assert s[2] == Commit(line=7)
    assert s[3] == Respond(overrides={}, line=8)
    assert s[4] == Respond(overrides={"instructions": "Be short."}, line=9)
    assert isinstance(s[5], Expect) and s[5].event == "response.done" and s[5].line == 10
    e = s[6]
    assert isinstance(e, Expect) and e.line == 11 and e.within == 3.0
    assert e.transcript is not None and e.transcript.search("Hi there")
    assert e.user_transcript is not None and e.status == "completed"
    assert isinstance(s[7], Expect) and s[7].tool_name == "get_time" and s[7].within == 2.0
    t = s[8]
    assert isinstance(t, Expect) and t.tool_name == "get_weather"
    assert t.tool_arguments == {"city": "Paris"} and t.within == 15.0
    assert s[9] == InterruptAfter(ms=800, line=14)
    assert s[10] == Wait(seconds=0.25, line=15)
    assert s[11] == Commit(line=16)
    assert "tool call get_weather" in t.describe() and "within 15s" in t.describe()


def test_tools_and_top_level_keys() -> None:
    """Tools keep their schema and canned output or python target; dialect/model are read."""
    script = parse(
        """
        dialect: beta
        model: gpt-4o-realtime-preview
        tools:
          get_weather:
            description: Weather.
            parameters: {type: object, properties: {city: {type: string}}}
            output: {temp: 21}
          get_time:
            python: tools_mod:get_time
        steps:
          - say: hi
        """
    )
    assert script.dialect == "beta" and script.model == "gpt-4o-realtime-preview"
    weather, clock = script.tools
    assert weather.name == "get_weather" and weather.output == {"temp": 21}
    assert weather.parameters == {"type": "object", "properties": {"city": {"type": "string"}}}
    assert clock.python == "tools_mod:get_time" and clock.output is None


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ("steps:\n  - say: hi\n  - shout: hello\n", 3, "unknown step 'shout'"),
        ("steps:\n  - say: hi\n  - dance\n", 3, "unknown step 'dance'"),
        ("steps:\n  - say: hi\n  - expect: {transcript: '(unclosed'}\n", 3, "bad regular"),
        ("steps:\n  - expect: {event: response.done, within: -1}\n", 2, "'within'"),
        ("steps:\n  - expect: {event: x, within: soon}\n", 2, "'within'"),
        ("steps:\n  - expect: {event: x, colour: red}\n", 2, "unknown expect key 'colour'"),
        ("steps:\n  - say: hi\n    loudly: true\n", 2, "unknown key 'loudly'"),
        ("steps:\n  - wait: -2\n", 2, "'wait'"),
        ("steps:\n  - interrupt_after_ms: soon\n", 2, "interrupt_after_ms"),
        ("steps: [say: hi\n", 1, "invalid YAML"),  # the unclosed bracket's line
        ('name: t\nsteps:\n  - say: "hi\n  - wait: 1\n  - say: x\n', 3, "quoted scalar"),
        ("colour: red\nsteps:\n  - say: hi\n", 1, "unknown top-level key 'colour'"),
        (
            "name: x\nsession:\n  input_audio_transcription: {model: w}\nsteps: [say: hi]\n",
            3,
            "invalid session field 'input_audio_transcription': Extra inputs",
        ),
        ("session: {output_modalities: audio}\nsteps: [say: hi]\n", 1, "'output_modalities'"),
    ],
)
def test_errors_name_the_line(body: str, line: int, words: str) -> None:
    """A bad script raises ScriptError naming the file, the line and the problem."""
    with pytest.raises(ScriptError) as info:
        parse_script(body, path=Path("bad.yaml"))
    assert info.value.line == line, str(info.value)
    assert words in str(info.value)
    assert str(info.value).startswith(f"bad.yaml:{line}: ")


def test_missing_script_file(tmp_path: Path) -> None:
    """A script path that does not exist is a ScriptError naming it."""
    with pytest.raises(ScriptError, match="no such script file") as info:
        load_script(tmp_path / "nope.yaml")
    assert info.value.path == str(tmp_path / "nope.yaml")


async def test_missing_audio_file_names_the_line(tmp_path: Path) -> None:
    """A send_audio step whose WAV is missing fails before connecting, naming its line."""
    path = tmp_path / "s.yaml"
    path.write_text("steps:\n  - say: hi\n  - send_audio: missing.wav\n")
    with pytest.raises(ScriptError, match="audio file not found") as info:
        await run_script(load_script(path), url="ws://127.0.0.1:9/v1")
    assert info.value.line == 3


async def test_missing_tool_module_is_script_error(tmp_path: Path) -> None:
    """A python: tool that cannot be imported fails before connecting, naming the script."""
    path = tmp_path / "s.yaml"
    path.write_text("tools:\n  t:\n    python: h10_no_such_module:f\nsteps:\n  - say: hi\n")
    with pytest.raises(ScriptError, match="cannot load h10_no_such_module:f") as info:
        await run_script(load_script(path), url="ws://127.0.0.1:9/v1")
    assert info.value.path == str(path)


def test_shipped_scripts_parse() -> None:
    """Every example script in share/scripts parses."""
    names = sorted(p.name for p in SCRIPTS.glob("*.yaml"))
    assert names, "no example scripts"
    for p in SCRIPTS.glob("*.yaml"):
        assert load_script(p).steps


# -- runner -------------------------------------------------------------------------------


@pytest.fixture
async def server() -> LocalServer:
    """A local server with the shared engines and the weather rules as its responder."""
    rules = SCRIPTS / "responders" / "weather.yaml"
    async with LocalServer(engines=shared_engines(), responder=f"script:{rules}") as srv:
        yield srv


async def test_runner_passes_and_writes_outputs(server: LocalServer, tmp_path: Path) -> None:
    """A passing script writes events.jsonl (both directions), summary.json and a turn WAV."""
    script = parse(
        """
        name: spoken
        session: {output_modalities: [audio], instructions: Be brief.}
        steps:
          - say: Tell me something.
          - respond: {}
          - expect: {event: response.done, status: completed, within: 60}
          - expect: {transcript: "(?i)weather", within: 5}
        """
    )
    result = await run_script(script, url=server.url, out_dir=tmp_path)
    assert result.passed, result.report()
    assert [e.passed for e in result.expects] == [True, True]
    records = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    directions = {r["direction"] for r in records}
    assert directions == {"client", "server"}
    client_types = {r["event"]["type"] for r in records if r["direction"] == "client"}
    assert {"session.update", "conversation.item.create", "response.create"} <= client_types
    server_types = [r["event"]["type"] for r in records if r["direction"] == "server"]
    assert server_types[0] == "session.created" and "session.updated" in server_types
    assert all(isinstance(r["t"], float | int) for r in records)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["passed"] is True and summary["name"] == "spoken"
    (turn,) = summary["turns"]
    assert turn["status"] == "completed" and turn["latency_ms"] is not None
    assert "weather" in turn["transcript"].lower()
    assert turn["usage"]["total_tokens"] > 0 and summary["usage"]["total_tokens"] > 0
    assert turn["audio_file"] == "turn-1.wav"
    pcm = read_wav(tmp_path / "turn-1.wav")
    assert len(pcm) / 48 == pytest.approx(turn["audio_ms"], abs=50)
    assert [e["passed"] for e in summary["expects"]] == [True, True]


async def test_runner_failing_expect_reports_line(server: LocalServer) -> None:
    """A failing expect makes the run fail, and the report names its line and what was seen."""
    script = parse(
        """
        session: {output_modalities: [text]}
        steps:
          - say: Hello there.
          - respond
          - expect: {event: response.done, within: 30}
          - expect: {transcript: "(?i)purple elephants", within: 1}
        """,
        path=Path("fail.yaml"),
    )
    result = await run_script(script, url=server.url)
    assert not result.passed and result.error is None
    ok, bad = result.expects
    assert ok.passed and not bad.passed and bad.line == 6
    assert "purple elephants" in bad.detail
    report = result.report()
    assert "FAILED" in report and "FAIL line 6" in report and "weather" in report


async def test_runner_tool_calls_canned_and_python(server: LocalServer, tmp_path: Path) -> None:
    """Tool calls are checked and recorded; a python: tool runs a function next to the script."""
    (tmp_path / "h10_weather_tools.py").write_text(
        "def get_weather(city):\n    return {'temperature_c': 17, 'sky': 'grey', 'city': city}\n"
    )
    script = parse(
        """
        session: {output_modalities: [text]}
        tools:
          get_weather:
            description: Weather for a city.
            parameters: {type: object, properties: {city: {type: string}}, required: [city]}
            python: h10_weather_tools:get_weather
        steps:
          - say: How is the weather?
          - respond
          - expect: {tool_call: {name: get_weather, arguments: {city: Paris}}, within: 30}
          - expect: {transcript: "17 degrees and grey in Paris", within: 30}
        """,
        path=tmp_path / "tools.yaml",
    )
    result = await run_script(script, url=server.url, out_dir=tmp_path / "out")
    assert result.passed, result.report()
    calls = [c for t in result.turns for c in t.tool_calls]
    assert calls == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["turns"][0]["tool_calls"] == calls


async def test_shipped_weather_script_passes(tmp_path: Path) -> None:
    """share/scripts/weather_tool.yaml passes with its local responder (canned output)."""
    script = load_script(SCRIPTS / "weather_tool.yaml")
    assert script.local_responder is not None and script.local_responder.exists()
    async with LocalServer(
        engines=shared_engines(), responder=f"script:{script.local_responder}"
    ) as srv:
        result = await run_script(script, url=srv.url)
    assert result.passed, result.report()


async def test_interrupt_after_ms_cancels_and_truncates(tmp_path: Path) -> None:
    """interrupt_after_ms barges in: the response is cancelled and the item truncated there."""
    script = parse(
        """
        session: {output_modalities: [audio]}
        steps:
          - say: Read this long text back to me, it has many words so the reply takes a while.
          - respond
          - interrupt_after_ms: 600
          - expect: {event: response.done, status: cancelled, within: 30}
          - expect: {event: conversation.item.truncated, within: 10}
        """
    )
    # audio paced in real time (as a model would stream it), so the reply is still going
    async with LocalServer(engines=shared_engines(), pace_audio=True) as srv:
        result = await run_script(script, url=srv.url, out_dir=tmp_path)
    assert result.passed, result.report()
    assert result.turns[0].status == "cancelled"
    records = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    sent = [r["event"] for r in records if r["direction"] == "client"]
    kinds = [e["type"] for e in sent]
    assert "response.cancel" in kinds and "conversation.item.truncate" in kinds
    truncate = next(e for e in sent if e["type"] == "conversation.item.truncate")
    assert truncate["audio_end_ms"] >= 600
    truncated = next(
        r["event"]
        for r in records
        if r["direction"] == "server" and r["event"]["type"] == "conversation.item.truncated"
    )
    assert truncated["audio_end_ms"] == truncate["audio_end_ms"]


async def test_send_audio_any_rate_and_user_transcript(server: LocalServer, tmp_path: Path) -> None:
    """send_audio resamples any WAV; the user transcript expectation sees the recognised words."""
    import numpy as np

    from audio.resample import resample
    from audio.wav import write_wav

    pcm = np.frombuffer(read_wav(SAMPLES / "greeting.wav"), np.int16)
    write_wav(tmp_path / "g16k.wav", resample(pcm, 24000, 16000), rate=16000)
    script = parse(
        """
        session: {output_modalities: [text], transcription: {model: whisper-1}}
        steps:
          - send_audio: g16k.wav
          - commit
          - expect: {user_transcript: "(?i)hear me", within: 90}
        """,
        path=tmp_path / "s.yaml",
    )
    result = await run_script(script, url=server.url)
    assert result.passed, result.report()
    assert any("hear me" in t.lower() for t in result.user_transcripts)


async def test_beta_dialect_script(server: LocalServer, tmp_path: Path) -> None:
    """A script with `dialect: beta` runs in the beta dialect; GA event names still match."""
    script = parse(
        """
        dialect: beta
        session: {output_modalities: [audio]}
        steps:
          - say: Say something.
          - respond
          - expect: {event: response.output_audio.delta, within: 60}
          - expect: {event: response.done, status: completed, within: 60}
        """
    )
    result = await run_script(script, url=server.url, out_dir=tmp_path)
    assert result.passed, result.report()
    records = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    types = {r["event"]["type"] for r in records if r["direction"] == "server"}
    assert "response.audio.delta" in types and "response.output_audio.delta" not in types
    assert result.turns[0].audio_file == "turn-1.wav"
    assert len(read_wav(tmp_path / "turn-1.wav")) > 0
