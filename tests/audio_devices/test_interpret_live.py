"""``realtime interpret`` live: the virtual microphone in, the translated speech out of the
virtual speaker (private PulseAudio, see conftest.py), against the embedded local server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import numpy as np
import pytest
from virtual_pulse import VirtualPulse

from realtime.cli import build_parser
from realtime.cli.backend import local_engines
from tests.server_kit import shared_engines
from tests.test_translation_session import needs_apertium

GREETING = Path(__file__).resolve().parents[2] / "share" / "samples" / "greeting.wav"


def loudest(path: Path) -> float:
    """The peak level of the raw 16-bit recording so far (0..1)."""
    data = path.read_bytes()
    samples = np.frombuffer(data[: len(data) // 2 * 2], "<i2")
    return float(np.abs(samples).max()) / 32768 if samples.size else 0.0


async def test_interpret_microphone_to_speaker(
    pulse: VirtualPulse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_apertium()
    for name in ("OPENAI_API_KEY", "OPENAI_REALTIME_URL", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    local_engines(shared_engines())
    srt = tmp_path / "live.srt"
    args = build_parser().parse_args(
        ["interpret", "--to", "es", "--format", "srt", "--transcript", str(srt)]
    )
    spk = pulse.record("spk.monitor", tmp_path / "spk.raw")
    task = asyncio.create_task(args.handler(args))
    try:
        await asyncio.sleep(2.0)  # the session is open and the microphone streams
        assert not task.done()
        player = pulse.play_into_mic(GREETING)
        deadline = time.monotonic() + 45
        while loudest(tmp_path / "spk.raw") < 0.05 and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
        assert player.wait(5) == 0
        await asyncio.sleep(2.0)  # the rest of the translated speech plays
    finally:
        task.cancel()  # what Ctrl-C does
        with contextlib.suppress(asyncio.CancelledError):
            await task
        recorded = spk.stop()
    assert float(np.abs(recorded).max()) >= 0.05, "no translated speech reached the speaker"
    text = srt.read_text()
    assert "hear me" in text.lower() and "hola" in text.lower(), text
