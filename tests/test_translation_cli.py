"""``realtime interpret`` (headless, on the embedded local server) and ``serve --translator``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_kit import SAMPLES
from server_kit import shared_engines

from audio.wav import read_wav
from realtime.cli import build_parser, main
from realtime.cli.backend import local_engines
from tests.test_translation_session import needs_apertium

GREETING = str(SAMPLES / "greeting.wav")  # "Hello, can you hear me?"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("OPENAI_API_KEY", "OPENAI_REALTIME_URL", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    local_engines(shared_engines())


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_interpret_headless_srt(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--input/--output/--format srt: bilingual subtitles on stdout, Spanish speech in the WAV,
    both transcripts shown live on stderr."""
    needs_apertium()
    target = tmp_path / "es.wav"
    status, out, err = cli(
        capsys, "interpret", "--to", "es", "--input", GREETING, "--output", str(target),
        "--format", "srt",
    )  # fmt: skip
    assert status == 0, err
    match = re.match(r"1\n00:00:0\d,\d{3} --> 00:00:0\d,\d{3}\n(.*)\n(.*)\n", out)
    assert match is not None, out
    assert "hear me" in match.group(1).lower()
    assert "hola" in match.group(2).lower()
    assert "[source] Hello" in err and "[es] Hola" in err
    speech = read_wav(target, rate=24000)
    assert len(speech) > 24000  # over half a second of translated speech


def test_interpret_jsonl_to_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    needs_apertium()
    target = tmp_path / "t.jsonl"
    status, out, err = cli(
        capsys, "interpret", "--to", "es", "--input", GREETING, "--format", "jsonl",
        "--transcript", str(target),
    )  # fmt: skip
    assert status == 0, err
    assert out == ""
    lines = [json.loads(x) for x in target.read_text().splitlines()]
    sides = [x["side"] for x in lines]
    assert sides[0] == "source" and "translation" in sides
    assert all(isinstance(x["elapsed_ms"], int) for x in lines)
    text = "".join(x["delta"] for x in lines if x["side"] == "translation")
    assert "hola" in text.lower()


def test_interpret_bad_arguments(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = cli(capsys, "interpret", "--to", "es", "--output", str(tmp_path / "x.wav"))
    assert status == 2 and "error: --output needs --input" in err
    status, _, err = cli(capsys, "interpret", "--to", "es", "--input", "missing.wav")
    assert status == 2 and "error: no such input WAV" in err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["interpret"])  # --to is required


def test_interpret_without_translator(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = cli(
        capsys, "interpret", "--to", "es", "--input", GREETING, "--translator", "none"
    )
    assert status == 2
    assert "cannot translate" in err and "--translator" in err


def test_serve_translator_option() -> None:
    args = build_parser().parse_args(["serve", "--translator", "openai-compatible:http://x/v1"])
    assert args.translator == "openai-compatible:http://x/v1"
    assert build_parser().parse_args(["serve"]).translator == "auto"


def test_interpret_to_french_offline(capsys: pytest.CaptureFixture[str]) -> None:
    """``--to fr`` works offline: Apertium goes through Spanish (apertium-fr-es)."""
    needs_apertium()
    status, out, err = cli(capsys, "interpret", "--to", "fr", "--input", GREETING)
    assert status == 0, err
    source, translation = out.splitlines()
    assert "hear me" in source.lower()
    assert translation.lower().startswith("salut")
