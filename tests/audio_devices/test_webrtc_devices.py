"""A WebRTC call with real devices: Microphone -> outgoing track, incoming track -> Speaker.

The virtual microphone plays the sample question (``paplay -d micsink``); the session runs
over WebRTC against the local server; what the Speaker plays is recorded from
``spk.monitor``. Skips (or fails under REALTIME_REQUIRE_AUDIO=1) like the other device tests.
"""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest
from virtual_pulse import RATE as MONITOR_RATE
from virtual_pulse import VirtualPulse, write_wav_mono

import realtime
from audio.microphone import Microphone
from audio.speaker import Speaker
from realtime.events.config import SessionConfig
from realtime.server import LocalServer
from realtime.webrtc import WebRTC
from tests.server_kit import shared_engines
from tests.webrtc_kit import aiortc  # noqa: F401  (skips or fails without the webrtc extra)

pytestmark = [pytest.mark.audio_device, pytest.mark.timeout(120)]

SAMPLE = Path(__file__).resolve().parents[2] / "share" / "samples" / "question.wav"


def loud_seconds(samples: np.ndarray, rate: int) -> float:
    block = rate // 50
    frames = samples[: len(samples) // block * block].reshape(-1, block)
    return float((np.abs(frames).max(axis=1) > 0.02).sum() / 50)


async def test_webrtc_call_with_microphone_and_speaker(pulse: VirtualPulse, tmp_path: Path) -> None:
    with wave.open(str(SAMPLE), "rb") as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
    padded = np.concatenate([np.zeros(rate // 2, np.float32), pcm, np.zeros(rate, np.float32)])
    wav = tmp_path / "question.wav"
    write_wav_mono(wav, padded, rate)
    recorder = pulse.record("spk.monitor", tmp_path / "spk.raw")
    try:
        async with (
            LocalServer(port=0, engines=shared_engines(), warm=True) as server,
            Microphone(chunk_ms=20) as mic,
            Speaker() as speaker,
        ):
            rtc = WebRTC(mic=mic, speaker=speaker)
            config = SessionConfig(transcription={"model": "whisper-1"})
            async with realtime.connect(url=server.url, transport=rtc, config=config) as s:
                async with s.expect(
                    "conversation.item.input_audio_transcription.completed", 60
                ) as done:
                    player = pulse.play_into_mic(wav)
                assert player.wait() == 0
                assert "weather" in done.event.transcript.lower()  # type: ignore[attr-defined]
                stopped = await s.wait_for("output_audio_buffer.stopped", 60)
                await asyncio.wait_for(speaker.drained(), 15)
                played = speaker.played_ms(stopped.response_id)  # type: ignore[attr-defined]
    finally:
        recorded = recorder.stop()
    assert played > 1500
    assert loud_seconds(recorded, MONITOR_RATE) > 1.5
