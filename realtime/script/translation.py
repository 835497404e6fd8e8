"""Scripted translation sessions: a script with ``translation:`` drives
:func:`realtime.translation.connect_translation` (see :mod:`realtime.script.format`).
Checking such a script is pure; the network code loads when one runs.

The run writes, with an output folder, ``events.jsonl`` (every event both ways),
``translation.wav`` (the translated speech) and ``summary.json``. The result has one
:class:`~realtime.script.runner.TurnRecord` (the translation: its transcript, audio length and
the latency from the end of the last ``send_audio`` to the first translated audio) and the
source transcript in ``user_transcripts``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audio.wav import WavWriter, read_wav

from ..events import ServerEvent, TranslationOutputAudioDeltaEvent
from ..exceptions import RealtimeError, ScriptError
from ..recording import Recorder
from .format import Expect, Script, SendAudio, Step, Wait

if TYPE_CHECKING:
    from ..translation import TranslationClient
    from .runner import ExpectOutcome, RunResult

__all__ = ["check_translation_script", "run_translation_script"]

_KEYS = {"language", "transcription_model", "noise_reduction"}


def check_translation_script(
    data: Mapping[str, Any], steps: list[Step], fail: Any
) -> dict[str, Any]:
    """Validate a translation script: its ``translation`` mapping (or language) and steps."""
    raw = data["translation"]
    line = data.get("__line__")
    if isinstance(raw, str):
        raw = {"language": raw}
    if not isinstance(raw, Mapping):
        raise fail("'translation' is a mapping (language, transcription_model, …)", line)
    options = {k: v for k, v in raw.items() if k != "__line__"}
    unknown = sorted(set(options) - _KEYS)
    if unknown:
        raise fail(f"unknown translation key {unknown[0]!r}", raw.get("__line__", line))
    if not isinstance(options.get("language"), str) or not options["language"]:
        raise fail("'translation' needs the target 'language'", raw.get("__line__", line))
    for key in ("session", "tools", "local_responder", "dialect"):
        if data.get(key):
            raise fail(f"'{key}' does not apply to a translation script", line)
    for step in steps:
        if not isinstance(step, (SendAudio, Expect, Wait)):
            name = type(step).__name__.lower()
            raise fail(f"a translation script has no {name!r} step", step.line)
        if isinstance(step, Expect) and (step.tool_name or step.status):
            raise fail("a translation session has no tool calls or responses", step.line)
    return options


class _TranslationRunner:
    def __init__(self, client: TranslationClient, out: Path | None) -> None:
        self.client = client
        self.events: list[ServerEvent] = []
        self.changed = asyncio.Event()
        self.cursor = 0
        self.audio_end: float | None = None
        self.latency_ms: float | None = None
        self.audio_ms = 0.0
        self.writer = WavWriter(out / "translation.wav", rate=24000, channels=1) if out else None

    def on_event(self, event: ServerEvent) -> None:
        self.events.append(event)
        self.changed.set()
        if isinstance(event, TranslationOutputAudioDeltaEvent):
            pcm = event.audio_bytes()
            self.audio_ms += len(pcm) / 48
            if self.latency_ms is None and self.audio_end is not None:
                self.latency_ms = round((time.monotonic() - self.audio_end) * 1000, 1)
            if self.writer is not None:
                self.writer.write(pcm)

    async def send_audio(self, step: SendAudio) -> None:
        try:
            pcm = read_wav(step.path, rate=24000)
        except Exception as exc:
            raise ScriptError(str(exc), line=step.line) from exc
        self.cursor = len(self.events)
        await self.client.send_audio(pcm)
        # the audio ends when the pacer has sent its last frame
        while self.client.pacer.pending_bytes:
            await asyncio.sleep(0.05)
        self.audio_end = time.monotonic()
        self.latency_ms = None

    def check(self, step: Expect) -> tuple[bool, str]:
        problems = []
        if step.event is not None and not any(
            fnmatch.fnmatchcase(e.type, step.event) for e in self.events[self.cursor :]
        ):
            problems.append(f"no {step.event} event")
        out, said = self.client.output_transcript, self.client.input_transcript
        if step.transcript is not None and not step.transcript.search(out):
            problems.append(f"translation {out!r} does not match /{step.transcript.pattern}/")
        if step.user_transcript is not None and not step.user_transcript.search(said):
            problems.append(f"source {said!r} does not match /{step.user_transcript.pattern}/")
        return not problems, "; ".join(problems)

    async def expect(self, step: Expect) -> ExpectOutcome:
        from .runner import ExpectOutcome

        start = time.monotonic()
        while True:
            ok, detail = self.check(step)
            left = start + step.within - time.monotonic()
            if ok or left <= 0:
                spent = round(time.monotonic() - start, 3)
                return ExpectOutcome(step.line, step.describe(), ok, "" if ok else detail, spent)
            self.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 0.25))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def run_translation_script(
    script: Script,
    *,
    url: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
    out: Path | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Run a translation script (called by :func:`realtime.script.runner.run_script`)."""
    from ..translation import DEFAULT_TRANSLATION_MODEL, connect_translation
    from .runner import RunResult, TurnRecord

    assert script.translation is not None
    for step in script.steps:
        if isinstance(step, SendAudio) and not step.path.exists():
            raise ScriptError(
                f"audio file not found: {step.path}", path=str(script.path), line=step.line
            )
    result = RunResult(name=script.name, out_dir=str(out) if out is not None else None)
    t0 = time.monotonic()
    with contextlib.ExitStack() as stack:
        recorder = stack.enter_context(Recorder(out / "events.jsonl")) if out else None
        client = await connect_translation(
            model or script.model or DEFAULT_TRANSLATION_MODEL,
            url=url,
            api_key=api_key,
            recorder=recorder,
            **script.translation,
        )
        runner = _TranslationRunner(client, out)
        stack.callback(runner.close)
        client.on("*", runner.on_event)
        try:
            for step in script.steps:
                if on_progress is not None:
                    on_progress(f"line {step.line}: {type(step).__name__.lower()}")
                if isinstance(step, SendAudio):
                    await runner.send_audio(step)
                elif isinstance(step, Wait):
                    await asyncio.sleep(step.seconds)
                elif isinstance(step, Expect):
                    result.expects.append(await runner.expect(step))
            await client.close()
        except ScriptError:
            raise
        except RealtimeError as exc:
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            if client.is_open:
                await client.close(timeout=10, wait_audio=False)
    session_id = client.session.id if client.session is not None else ""
    result.turns = [
        TurnRecord(
            index=1,
            response_id=session_id,
            status="completed" if result.error is None else "failed",
            transcript=client.output_transcript,
            latency_ms=runner.latency_ms,
            audio_ms=round(runner.audio_ms, 1),
            audio_file="translation.wav" if out is not None else None,
        )
    ]
    result.user_transcripts = [client.input_transcript] if client.input_transcript else []
    result.seconds = round(time.monotonic() - t0, 3)
    result.passed = result.error is None and all(e.passed for e in result.expects)
    if out is not None:
        (out / "summary.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
    return result
