"""A real browser for the console tests: Debian's chromium driven by Playwright.

Chromium is launched headless with a fake microphone playing a WAV file in a loop. When
Playwright or chromium cannot start here the tests skip with the reason, unless
``REALTIME_REQUIRE_BROWSER=1`` or ``REALTIME_REQUIRE_AUDIO=1`` (``.ci/run`` sets both), in which
case they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "share" / "samples"


def unavailable(reason: str) -> None:
    """Skip (or fail where a browser is required) because the browser cannot run."""
    if "1" in (
        os.environ.get(name) for name in ("REALTIME_REQUIRE_BROWSER", "REALTIME_REQUIRE_AUDIO")
    ):
        pytest.fail(f"REALTIME_REQUIRE_BROWSER=1 but the browser tests cannot run: {reason}")
    pytest.skip(f"browser tests need Playwright and chromium: {reason}")


def mic_file(
    tmp: Path, sample: str = "question.wav", pause_ms: int = 3000, lead_ms: int = 1500
) -> Path:
    """A WAV for the fake microphone: a lead-in, the sample, a pause (chromium loops it)."""
    with wave.open(str(SAMPLES / sample), "rb") as w:
        params = w.getparams()
        frames = w.readframes(w.getnframes())
    out = tmp / f"mic-{sample}"
    with wave.open(str(out), "wb") as w:
        w.setparams(params)
        lead = bytes(params.framerate * lead_ms // 1000 * params.sampwidth)
        w.writeframes(lead + frames + bytes(params.framerate * pause_ms // 1000 * params.sampwidth))
    return out


def make_cert(tmp: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (``openssl``): (cert.pem, key.pem)."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True,
    )  # fmt: skip
    assert made.returncode == 0, f"openssl could not make a test certificate: {made.stderr!r}"
    return cert, key


@asynccontextmanager
async def chromium(mic: Path) -> AsyncIterator[Any]:
    """A headless chromium browser whose microphone plays ``mic``."""
    try:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import async_playwright
    except ImportError as exc:
        unavailable(f"the playwright package is missing ({exc})")
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        unavailable("no chromium executable on PATH (apt install chromium)")
    args = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic}",
        "--autoplay-policy=no-user-gesture-required",
        "--no-sandbox",
    ]
    async with async_playwright() as p:
        try:
            browser = await p.chromium.launch(executable_path=exe, args=args, headless=True)
        except PlaywrightError as exc:
            unavailable(f"chromium did not start: {str(exc).splitlines()[0]}")
        try:
            yield browser
        finally:
            await browser.close()
