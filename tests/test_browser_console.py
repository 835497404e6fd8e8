"""The browser console in a real browser: chromium (Debian) driven by Playwright, fake microphone.

Each test serves the console from a local server, opens it in headless chromium whose
microphone loops ``share/samples/question.wav`` (with pauses), presses Start and checks what
the page shows: both transcripts, reply audio arriving over WebRTC, push-to-talk, an
interruption, tool calls, the upstream mode. Screenshots go to the test's tmp dir.
Skips (or fails under REALTIME_REQUIRE_BROWSER=1 / REALTIME_REQUIRE_AUDIO=1) when the
browser cannot start: see tests/browser_kit.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from realtime.server import LocalServer, ScriptResponder
from realtime.server.console import Upstream
from tests.browser_kit import chromium, make_cert, mic_file
from tests.server_kit import shared_engines
from tests.webrtc_kit import aiortc  # noqa: F401  (skips or fails like the browser)

pytestmark = pytest.mark.slow

WAIT_MS = 120_000  # liveness only: on a loaded 2-core machine a turn can take 30 s


def page_url(server: LocalServer) -> str:
    return server.http_url.removesuffix("/v1") + "/"


async def stat(page: Any, name: str) -> Any:
    return await page.evaluate(f"window.rtConsole.stats.{name}")


async def wait_stat(page: Any, expr: str, timeout: int = WAIT_MS) -> None:
    try:
        await page.wait_for_function(f"window.rtConsole.stats.{expr}", timeout=timeout)
    except Exception as exc:
        raise AssertionError(f"{expr} never held; page: {await describe(page)}") from exc


async def describe(page: Any) -> str:
    """The console's counters and last events (for failure messages)."""
    stats = await page.evaluate("JSON.stringify(window.rtConsole.stats)")
    types = await page.eval_on_selector_all("#log li", "els => els.map(e => e.dataset.type)")
    return f"stats={stats} last events={types[-25:]}"


async def wait_text(page: Any, selector: str, text: str, timeout: int = WAIT_MS) -> None:
    try:
        await page.wait_for_function(
            "([sel, text]) => document.querySelector(sel).textContent.toLowerCase().includes(text)",
            arg=[selector, text.lower()],
            timeout=timeout,
        )
    except Exception as exc:
        shown = await page.inner_text(selector)
        state = await describe(page)
        raise AssertionError(f"{text!r} not in {selector} ({shown!r}); {state}") from exc


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer(port=0, engines=shared_engines(), warm=True) as srv:
        yield srv


async def test_conversation_transcripts_reply_audio_and_stats(
    server: LocalServer, tmp_path: Path
) -> None:
    """VAD turn: the user's words and the reply appear, the reply audio plays in the page."""
    async with chromium(mic_file(tmp_path, pause_ms=9000)) as browser:
        page = await browser.new_page()
        await page.goto(page_url(server))
        assert await page.title() == "realtime-voice console"
        await page.click("#start")
        await page.wait_for_selector("#status.live", timeout=20_000)
        await wait_text(page, "#user-transcript", "weather like in")
        await wait_text(page, "#assistant-transcript", "local echo assistant")
        await wait_stat(page, "stopped >= 1")  # the whole reply played
        # reply audio reached the page: RTP bytes, decoded energy, and the Web Audio meter
        assert await stat(page, "bytesReceived") > 5000
        await wait_stat(page, "totalAudioEnergy > 0")
        assert await stat(page, "outputPeak") > 0.02
        latency = await stat(page, "lastLatencyMs")
        assert latency is not None and 0 < latency < 20_000
        assert "ms" in await page.inner_text("#latency")
        assert int(await page.inner_text("#tokens-total")) > 0
        assert int(await page.inner_text("#tokens-out")) > 0
        # the event log, and its filters
        types = await page.eval_on_selector_all("#log li", "els => els.map(e => e.dataset.type)")
        assert "session.created" in types and "response.done" in types
        await page.fill("#log-filter", "response.done")
        await page.dispatch_event("#log-filter", "input")
        shown = await page.eval_on_selector_all(
            "#log li:not(.hidden)", "els => els.map(e => e.dataset.type)"
        )
        assert shown and set(shown) == {"response.done"}
        await page.fill("#log-filter", "")
        await page.uncheck("#log-server")
        assert await page.eval_on_selector_all("#log li.server:not(.hidden)", "e => e.length") == 0
        await page.check("#log-server")
        # the mic level meter moves, and mute silences the outgoing track
        await page.wait_for_function(
            "parseFloat(document.querySelector('#mic-level').style.width) > 0", timeout=20_000
        )
        await page.click("#mute")
        assert await page.evaluate("window.rtConsole.state.micTrack.enabled") is False
        await page.click("#mute")
        assert await page.evaluate("window.rtConsole.state.micTrack.enabled") is True
        assert await stat(page, "errors.length") == 0
        await page.screenshot(path=str(tmp_path / "console.png"), full_page=True)
        assert (tmp_path / "console.png").stat().st_size > 10_000
        await page.click("#stop")
        await page.wait_for_selector("#status.idle", timeout=10_000)


async def test_barge_in_interrupts_the_reply(tmp_path: Path) -> None:
    """The looped question comes back while the (long) reply plays: playback is cleared, the
    turn is marked interrupted and truncated, and the next turn is answered."""
    script = tmp_path / "script.yaml"
    long_reply = " ".join(["This reply goes on for a long while, sentence after sentence."] * 8)
    script.write_text(f'rules:\n  - when: "weather"\n    say: "{long_reply}"\n')
    async with (
        LocalServer(
            port=0, engines=shared_engines(), warm=True, responder=ScriptResponder.from_file(script)
        ) as srv,
        # the reply (about 30 s) has 14 s to start before the question comes round again
        chromium(mic_file(tmp_path, pause_ms=12_500)) as browser,
    ):
        page = await browser.new_page()
        await page.goto(page_url(srv))
        await page.click("#start")
        await wait_stat(page, "cleared >= 1")
        await wait_stat(page, "truncated >= 1")
        await page.wait_for_selector("#assistant-transcript p.interrupted", timeout=WAIT_MS)
        await page.screenshot(path=str(tmp_path / "interrupted.png"), full_page=True)
        before = await stat(page, "started")
        await wait_stat(page, f"started > {before}")  # the next question is answered too


async def test_push_to_talk_over_https(tmp_path: Path) -> None:
    """Over TLS (a secure context off localhost): with push-to-talk nothing is heard until
    the button is held; the held speech is committed and answered on release."""
    cert, key = make_cert(tmp_path)
    script = tmp_path / "script.yaml"
    long_reply = " ".join(["This reply goes on for a long while, sentence after sentence."] * 4)
    script.write_text(f'rules:\n  - when: "weather"\n    say: "{long_reply}"\n')
    async with (
        LocalServer(
            port=0,
            engines=shared_engines(),
            warm=True,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            responder=ScriptResponder.from_file(script),
        ) as srv,
        chromium(mic_file(tmp_path, pause_ms=3000, lead_ms=500)) as browser,
    ):
        assert page_url(srv).startswith("https://")
        context = await browser.new_context(ignore_https_errors=True)
        page = await context.new_page()
        await page.goto(page_url(srv))
        await page.check("#ptt-mode")
        await page.click("#start")
        await page.wait_for_selector("#status.live", timeout=20_000)
        assert await page.evaluate("window.isSecureContext") is True
        assert await page.evaluate("window.rtConsole.state.micTrack.enabled") is False
        await page.wait_for_timeout(6000)  # a whole loop of the question, not held: not heard
        types = await page.eval_on_selector_all("#log li", "els => els.map(e => e.dataset.type)")
        assert "input_audio_buffer.speech_started" not in types
        assert "conversation.item.input_audio_transcription.completed" not in types
        box = await page.query_selector("#ptt")
        assert box is not None
        await box.hover()
        await page.mouse.down()
        await page.wait_for_timeout(6000)
        await page.mouse.up()
        await wait_text(page, "#user-transcript", "weather")
        await wait_text(page, "#assistant-transcript", "goes on for a long while")
        await wait_stat(page, "started >= 1")
        sent = await page.eval_on_selector_all(
            "#log li.client", "els => els.map(e => e.dataset.type)"
        )
        assert sent[-2:] == ["input_audio_buffer.commit", "response.create"]
        await page.screenshot(path=str(tmp_path / "push-to-talk.png"), full_page=True)
        # the Interrupt button stops the long reply: the server clears and truncates
        await page.click("#interrupt")
        await wait_stat(page, "cleared >= 1", timeout=10_000)
        await wait_stat(page, "truncated >= 1", timeout=10_000)
        sent = await page.eval_on_selector_all(
            "#log li.client", "els => els.map(e => e.dataset.type)"
        )
        assert "output_audio_buffer.clear" in sent
        assert await stat(page, "stopped") == 0
        await context.close()


async def test_tool_calls_show_as_they_run(tmp_path: Path) -> None:
    script = tmp_path / "script.yaml"
    script.write_text(
        "rules:\n"
        '  - when: "weather"\n'
        "    call: {name: get_weather, arguments: {city: Paris, unit: celsius}}\n"
        '    then: "It is {output} in Paris."\n'
    )
    async with (
        LocalServer(
            port=0, engines=shared_engines(), warm=True, responder=ScriptResponder.from_file(script)
        ) as srv,
        chromium(mic_file(tmp_path, pause_ms=9000)) as browser,
    ):
        page = await browser.new_page()
        await page.goto(page_url(srv))
        await page.click("#start")
        await page.wait_for_selector("#tools .tool.done", timeout=WAIT_MS)
        text = await page.inner_text("#tools")
        assert "get_weather" in text and "Paris" in text and "celsius" in text
        await page.screenshot(path=str(tmp_path / "tools.png"), full_page=True)


async def test_console_through_an_upstream_holding_the_key(tmp_path: Path) -> None:
    """``serve --upstream``: the page talks to the upstream (a second local server that needs
    a key); the key stays on the console's server, the page only sees ephemeral secrets."""
    secret_key = "sk-upstream-secret-1234"
    async with (
        LocalServer(port=0, engines=shared_engines(), warm=True, api_key=secret_key) as up,
        LocalServer(
            port=0, engines=shared_engines(), upstream=Upstream(up.http_url, secret_key)
        ) as front,
        chromium(mic_file(tmp_path, pause_ms=9000)) as browser,
    ):
        page = await browser.new_page()
        seen: list[str] = []

        async def record(request: Any) -> None:
            seen.append(str(await request.all_headers()) + (request.post_data or ""))

        page.on("request", record)
        responses: list[str] = []

        async def record_response(response: Any) -> None:
            try:
                responses.append(await response.text())
            except Exception:  # bodies of some responses are not available
                responses.append("")

        page.on("response", record_response)
        await page.goto(page_url(front))
        await page.click("#start")
        await wait_text(page, "#assistant-transcript", "local echo assistant")
        assert await page.inner_text("#mode") == "via upstream"
        assert len(up.state.sessions) == 1 and not front.state.sessions
        assert seen and all(secret_key not in s for s in seen)
        assert responses and all(secret_key not in r for r in responses)
