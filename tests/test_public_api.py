"""The packages export what they document, and the pure core stays free of I/O imports."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import audio
import realtime


@pytest.mark.parametrize("package", [realtime, audio])
def test_all_names_exist(package):
    """Every name in __all__ is importable from the package."""
    for name in package.__all__:
        assert hasattr(package, name), f"{package.__name__}.{name} is listed but missing"


@pytest.mark.parametrize(
    "module",
    [
        "realtime.events",
        "realtime.conversation",
        "realtime.response_state",
        "realtime.dispatch",
        "realtime.interruption",
        "realtime.script.format",
    ],
)
def test_pure_modules_import_no_io(module):
    """Sans-I/O modules import neither asyncio networking, websockets, httpx nor sounddevice."""
    code = (
        f"import sys; import {module}; "
        "bad = [m for m in ('websockets', 'httpx', 'sounddevice', 'starlette', 'uvicorn') "
        "if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} pulls in {out.stdout.strip()}"


def test_audio_never_imports_realtime():
    """The audio package does not depend on the realtime package."""
    code = "import sys, audio, audio.vad, audio.files, audio.echo; print('realtime' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_audio_import_does_not_load_portaudio():
    """import audio works without touching PortAudio (devices load it lazily)."""
    code = "import sys, audio; print('sounddevice' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_submodules_declare_all():
    """Every public module of both packages declares __all__."""
    names = [
        "realtime.commands",
        "realtime.connection",
        "realtime.conversation",
        "realtime.dispatch",
        "realtime.exceptions",
        "realtime.interruption",
        "realtime.outbox",
        "realtime.protocol",
        "realtime.reconnect",
        "realtime.waiting",
        "realtime.recording",
        "realtime.subtitles",
        "realtime.response_state",
        "realtime.session",
        "realtime.testing",
        "realtime.transport",
        "realtime.tools",
        "realtime.server",
        "realtime.rest",
        "realtime.script.format",
        "realtime.script.runner",
        "audio.pcm",
        "audio.g711",
        "audio.resample",
        "audio.wav",
        "audio.files",
        "audio.echo",
        "audio.playback",
        "audio.exceptions",
        "audio.ring",
        "audio.microphone",
        "audio.speaker",
        "audio.vad",
    ]
    for name in names:
        mod = importlib.import_module(name)
        assert isinstance(getattr(mod, "__all__", None), list), name


def test_subtitle_formatting():
    """SRT and WebVTT timestamps and documents from (start, end, text) segments."""
    from realtime.subtitles import srt, timestamp, vtt

    assert timestamp(3723.4567) == "01:02:03,457"
    assert timestamp(0.5, ".") == "00:00:00.500"
    assert srt([(0.0, 1.25, "hello"), (1.5, 2.0, "there")]) == (
        "1\n00:00:00,000 --> 00:00:01,250\nhello\n\n2\n00:00:01,500 --> 00:00:02,000\nthere\n\n"
    )
    assert vtt([(0.0, 1.0, "hi")]) == "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nhi\n"
