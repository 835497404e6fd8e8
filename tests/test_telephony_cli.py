"""``realtime phone``: the bridge served by the CLI, a call through it, events recorded."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_kit import REPO, SAMPLES, ThreadedServer, cli_env

from realtime.cli import build_parser
from realtime.server.responders import ScriptResponder
from realtime.testing import PhoneSimulator

SCRIPT = 'rules:\n  - when: "weather|paris"\n    say: "It is sunny in Paris today."\n'


def test_phone_command_options() -> None:
    args = build_parser().parse_args(
        ["phone", "--port", "0", "--tools", "t.py", "--instructions", "Be brief.", "--record", "d"]
    )
    assert (args.command, args.port, args.host) == ("phone", 0, "127.0.0.1")
    assert (args.tools, args.instructions, args.record) == ("t.py", "Be brief.", "d")
    assert args.url is None and args.dialect is None  # the backend is chosen as everywhere


@pytest.fixture
def backend() -> Iterator[ThreadedServer]:
    server = ThreadedServer(responder=ScriptResponder.from_yaml(SCRIPT)).start()
    yield server
    server.stop()


async def test_a_call_through_the_phone_command(backend: ThreadedServer, tmp_path: Path) -> None:
    """The command serves /incoming-call and /media-stream; a caller is answered."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "realtime",
            "phone",
            "--port",
            "0",
            "--url",
            backend.url,
            "--record",
            str(tmp_path),
            "--no-apology",
            "--instructions",
            "Be brief.",
        ],
        cwd=REPO,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        lines: list[str] = []
        while not any(line.startswith("media stream:") for line in lines):
            line = await asyncio.wait_for(asyncio.to_thread(proc.stderr.readline), 60)
            assert line, "".join(lines)
            lines.append(line)
        stream_url = lines[-1].split()[-1]
        http_url = stream_url.replace("ws://", "http://").removesuffix("/media-stream")
        async with httpx.AsyncClient() as client:
            r = await client.post(http_url + "/incoming-call", data={"From": "+15550100"})
        assert r.status_code == 200 and f'url="{stream_url}"' in r.text
        async with PhoneSimulator(stream_url, custom_parameters={"From": "+15550100"}) as phone:
            await phone.say(SAMPLES / "question.wav")
            await phone.wait_heard(500)
            await phone.wait_quiet(0.6)
        record = tmp_path / f"{phone.call_sid}.jsonl"
        for _ in range(100):
            if record.exists() and record.stat().st_size:
                break
            await asyncio.sleep(0.05)
        events = [json.loads(line)["event"] for line in record.read_text().splitlines()]
        sent = [e for e in events if e.get("type") == "session.update"]
        assert "Be brief." in sent[0]["session"]["instructions"]
        assert "+15550100" in sent[0]["session"]["instructions"]
        assert any(e.get("type") == "response.done" for e in events)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0  # Ctrl-C is how a server is stopped
