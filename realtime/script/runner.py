"""Run a scripted session against a server and report what happened.

:func:`run_script` connects, applies the script's session and tools, runs each step, checks
each ``expect``, and returns a :class:`RunResult`. With ``out_dir`` it writes:

- ``events.jsonl``: every client and server event, timestamped (seconds since the start),
  with its direction (``"client"`` / ``"server"``);
- ``turn-N.wav``: the audio of each assistant turn (24 kHz mono);
- ``summary.json``: per-turn latency, transcripts, tool calls, usage, each expect's outcome.

The runner is usable from Python and from pytest::

    result = await run_script(load_script("share/scripts/weather_tool.yaml"), url=server.url)
    assert result.passed, result.report()
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import inspect
import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from audio.files import NullSpeaker
from audio.wav import WavWriter, read_wav

from ..events import ServerEvent
from ..events.config import SessionConfig
from ..exceptions import RealtimeError, ScriptError
from ..matching import match_type
from ..recording import Recorder
from ..session import Session, connect
from ..tools import Tool
from .format import (
    Commit,
    Expect,
    InterruptAfter,
    Respond,
    Say,
    Script,
    SendAudio,
    Step,
    ToolSpec,
    Wait,
)

__all__ = ["ExpectOutcome", "RunResult", "TurnRecord", "run_script"]

_AUDIO_DELTAS = ("response.output_audio.delta", "response.audio.delta")
_TRANSCRIPT_DELTAS = (
    "response.output_audio_transcript.delta",
    "response.audio_transcript.delta",
    "response.output_text.delta",
    "response.text.delta",
)


@dataclass
class ExpectOutcome:
    """How one ``expect`` step went."""

    line: int
    description: str
    passed: bool
    detail: str = ""
    seconds: float = 0.0


@dataclass
class TurnRecord:
    """One assistant turn (one response)."""

    index: int
    response_id: str
    status: str = "in_progress"
    transcript: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: float | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    audio_ms: float = 0.0
    audio_file: str | None = None


@dataclass
class RunResult:
    """The outcome of a run: ``passed`` only when every expect passed and nothing failed."""

    name: str
    passed: bool = False
    expects: list[ExpectOutcome] = field(default_factory=list)
    turns: list[TurnRecord] = field(default_factory=list)
    user_transcripts: list[str] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    out_dir: str | None = None

    def summary(self) -> dict[str, Any]:
        """The JSON-serialisable summary written to ``summary.json``."""
        return asdict(self)

    def report(self) -> str:
        """A readable multi-line report (one line per expect, then the error if any)."""
        lines = [f"{self.name}: {'PASSED' if self.passed else 'FAILED'} ({self.seconds:.1f}s)"]
        for e in self.expects:
            mark = "ok  " if e.passed else "FAIL"
            extra = f" — {e.detail}" if e.detail and not e.passed else ""
            lines.append(f"  {mark} line {e.line}: expect {e.description}{extra}")
        for t in self.turns:
            latency = f"{t.latency_ms:.0f} ms" if t.latency_ms is not None else "-"
            text = t.transcript if len(t.transcript) < 80 else t.transcript[:77] + "..."
            lines.append(f"  turn {t.index}: {t.status}, first output after {latency}: {text!r}")
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)


class _Log:
    """Everything the server sent, in order, with waiters notified on each event."""

    def __init__(self) -> None:
        self.events: list[tuple[float, ServerEvent]] = []
        self.changed = asyncio.Event()

    def add(self, t: float, event: ServerEvent) -> None:
        self.events.append((t, event))
        self.changed.set()

    async def wait_change(self, timeout: float) -> None:
        self.changed.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.changed.wait(), timeout)


def _import(module_name: str, base: Path | None) -> Any:
    """Import a module, looking next to the script first (then on ``sys.path``)."""
    if base is not None and (base / (module_name.replace(".", "/") + ".py")).exists():
        sys.path.insert(0, str(base))
        try:
            return importlib.import_module(module_name)
        finally:
            sys.path.remove(str(base))
    return importlib.import_module(module_name)


def _tool_for(spec: ToolSpec, script_path: Path | None = None) -> Tool:
    """A :class:`Tool` from a script's tool entry (canned output or ``module:function``)."""
    if spec.python is not None:
        module_name, _, func_name = spec.python.partition(":")
        base = script_path.parent if script_path is not None else None
        try:
            func = getattr(_import(module_name, base), func_name)
        except (ImportError, AttributeError) as exc:
            raise ScriptError(
                f"tool {spec.name!r}: cannot load {spec.python}: {exc}",
                path=str(script_path) if script_path is not None else None,
            ) from exc

        async def call(**arguments: Any) -> Any:
            result = func(**arguments)
            return await result if inspect.isawaitable(result) else result

    else:
        canned = spec.output

        async def call(**arguments: Any) -> Any:
            return canned

    return Tool.from_schema(
        name=spec.name, description=spec.description, parameters=dict(spec.parameters), func=call
    )


def _subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            k in actual and _subset(v, actual[k]) for k, v in expected.items()
        )
    return bool(expected == actual)


class _Runner:
    def __init__(self, script: Script, session: Session, out: Path | None) -> None:
        self.script = script
        self.session = session
        self.out = out
        self.log = _Log()
        self.cursor = 0
        self.trigger_time: float | None = None
        self.turns: dict[str, TurnRecord] = {}
        self.order: list[str] = []
        self.user_transcripts: list[str] = []
        self.writers: dict[str, WavWriter] = {}
        self.tracker = NullSpeaker(clock="realtime")
        self.expects: list[ExpectOutcome] = []
        self.recorder = Recorder(out / "events.jsonl") if out else None

    # -- recording ------------------------------------------------------------------------
    def on_client_frame(self, frame: str) -> None:
        if self.recorder is not None:
            self.recorder.client(frame)

    def on_event(self, event: ServerEvent) -> None:
        now = time.monotonic()
        self.log.add(now, event)
        if self.recorder is not None:
            self.recorder.server(event)
        kind = event.type
        rid = getattr(event, "response_id", None)
        if kind == "response.created":
            rid = event.response.id  # type: ignore[attr-defined]
            self.turns[rid] = TurnRecord(index=len(self.order) + 1, response_id=rid)
            self.order.append(rid)
        turn = self.turns.get(str(rid)) if rid else None
        if turn is not None and kind in _AUDIO_DELTAS + _TRANSCRIPT_DELTAS:
            if turn.latency_ms is None and self.trigger_time is not None:
                turn.latency_ms = round((now - self.trigger_time) * 1000, 1)
            if kind in _AUDIO_DELTAS:
                pcm = base64.b64decode(event.delta)  # type: ignore[attr-defined]
                turn.audio_ms += len(pcm) / 48
                item_id = str(getattr(event, "item_id", ""))
                self.tracker.enqueue(pcm, item_id, int(getattr(event, "content_index", 0)))
                if self.out is not None:
                    writer = self.writers.get(turn.response_id)
                    if writer is None:
                        path = self.out / f"turn-{turn.index}.wav"
                        writer = WavWriter(path, rate=24000, channels=1)
                        self.writers[turn.response_id] = writer
                        turn.audio_file = path.name
                    writer.write(pcm)
            else:
                turn.transcript += str(getattr(event, "delta", ""))
        elif turn is not None and kind == "response.function_call_arguments.done":
            try:
                args = json.loads(event.arguments)  # type: ignore[attr-defined]
            except ValueError:
                args = event.arguments  # type: ignore[attr-defined]
            turn.tool_calls.append({"name": event.name, "arguments": args})  # type: ignore[attr-defined]
        elif kind == "response.done":
            response = event.response  # type: ignore[attr-defined]
            turn = self.turns.get(response.id)
            if turn is not None:
                turn.status = str(response.status)
                usage = getattr(response, "usage", None)
                turn.usage = usage.model_dump(mode="json", exclude_none=True) if usage else {}
                writer = self.writers.pop(response.id, None)
                if writer is not None:
                    writer.close()
        elif kind == "conversation.item.input_audio_transcription.completed":
            self.user_transcripts.append(str(event.transcript))  # type: ignore[attr-defined]

    # -- steps ----------------------------------------------------------------------------
    def mark_action(self) -> None:
        self.cursor = len(self.log.events)
        self.trigger_time = time.monotonic()

    async def run_step(self, step: Step) -> None:
        s = self.session
        if isinstance(step, Say):
            self.mark_action()
            await s.send_text(step.text, respond=False)
        elif isinstance(step, SendAudio):
            try:
                pcm = read_wav(step.path, rate=24000)
            except RealtimeError:
                raise
            except Exception as exc:
                raise ScriptError(str(exc), line=step.line) from exc
            chunk = 4800  # 100 ms
            for i in range(0, len(pcm), chunk):
                await s.append_audio(pcm[i : i + chunk])
                if step.realtime:
                    await asyncio.sleep(0.1)
            self.mark_action()
        elif isinstance(step, Commit):
            await s.commit_audio()
            self.mark_action()
        elif isinstance(step, Respond):
            self.mark_action()
            await s.create_response(**dict(step.overrides))
        elif isinstance(step, Wait):
            await asyncio.sleep(step.seconds)
        elif isinstance(step, InterruptAfter):
            await self.interrupt_after(step)
        elif isinstance(step, Expect):
            self.expects.append(await self.expect(step))

    async def interrupt_after(self, step: InterruptAfter) -> None:
        """Wait until ``ms`` of the current reply was heard, then barge in (truncate + cancel)."""
        deadline = time.monotonic() + 30 + step.ms / 1000
        while time.monotonic() < deadline:
            for _, event in reversed(self.log.events):
                if event.type in _AUDIO_DELTAS:
                    item_id = str(getattr(event, "item_id", ""))
                    heard = self.tracker.played_ms(item_id, 0)
                    if heard >= step.ms:
                        pos = self.tracker.interrupt()
                        if pos is not None:
                            await self.session.cancel_response()
                            await self.session.truncate(
                                pos.item_id, pos.content_index, int(pos.played_ms)
                            )
                        return
                    break
            await asyncio.sleep(0.01)
        raise ScriptError(f"no reply reached {step.ms} ms of audio to interrupt", line=step.line)

    def check(self, step: Expect) -> tuple[bool, str]:
        events: list[Any] = [e for _, e in self.log.events[self.cursor :]]
        problems = []
        if step.event is not None and not any(
            match_type(step.event, e.type, any_dialect=True) for e in events
        ):
            problems.append(f"no {step.event} event")
        if step.transcript is not None:
            rids = {getattr(e, "response_id", None) for e in events} | {
                e.response.id for e in events if e.type == "response.created"
            }
            texts = [self.turns[r].transcript for r in rids if r in self.turns]
            if not any(step.transcript.search(t) for t in texts):
                problems.append(f"transcript {texts!r} does not match /{step.transcript.pattern}/")
        if step.user_transcript is not None:
            said = [
                str(e.transcript)
                for e in events
                if e.type == "conversation.item.input_audio_transcription.completed"
            ]
            if not any(step.user_transcript.search(t) for t in said):
                problems.append(
                    f"user transcript {said!r} does not match /{step.user_transcript.pattern}/"
                )
        if step.tool_name is not None:
            calls = [e for e in events if e.type == "response.function_call_arguments.done"]
            found = False
            for call in calls:
                if call.name != step.tool_name:
                    continue
                try:
                    args = json.loads(call.arguments)
                except ValueError:
                    args = None
                if step.tool_arguments is None or _subset(step.tool_arguments, args):
                    found = True
            if not found:
                seen = [(c.name, c.arguments) for c in calls]
                problems.append(f"no call of {step.tool_name} matching; calls seen: {seen}")
        if step.status is not None:
            statuses = [str(e.response.status) for e in events if e.type == "response.done"]
            if step.status not in statuses:
                problems.append(f"response statuses {statuses} lack {step.status!r}")
        return not problems, "; ".join(problems)

    async def expect(self, step: Expect) -> ExpectOutcome:
        start = time.monotonic()
        deadline = start + step.within
        while True:
            ok, detail = self.check(step)
            left = deadline - time.monotonic()
            if ok or left <= 0:
                return ExpectOutcome(
                    step.line,
                    step.describe(),
                    ok,
                    "" if ok else detail,
                    round(time.monotonic() - start, 3),
                )
            await self.log.wait_change(min(left, 0.25))

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()
        if self.recorder is not None:
            self.recorder.close()
        self.tracker.close()


async def run_script(
    script: Script,
    *,
    url: str | None = None,
    api_key: str | None = None,
    dialect: str | None = None,
    model: str | None = None,
    out_dir: str | Path | None = None,
    connect_options: Mapping[str, Any] | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Run ``script`` against the server at ``url`` (or as :func:`realtime.connect` resolves it).

    Never raises for a failing expect or a server error once the session is open: the result
    says what happened (``passed``, ``error``). Raises :class:`ScriptError` for a script that
    cannot run (e.g. a missing audio file or tool module), and the connection's
    :class:`~realtime.exceptions.RealtimeError` (e.g. ``ConnectionError``,
    ``AuthenticationError``) when the session cannot be opened at all.
    """
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    if script.translation is not None:  # a translation session (realtime.script.translation)
        from .translation import run_translation_script

        return await run_translation_script(
            script, url=url, api_key=api_key, model=model, out=out, on_progress=on_progress
        )
    for step in script.steps:
        if isinstance(step, SendAudio) and not step.path.exists():
            raise ScriptError(
                f"audio file not found: {step.path}", path=str(script.path), line=step.line
            )
    tools = [_tool_for(spec, script.path) for spec in script.tools]
    session_fields = dict(script.session)
    session_fields.setdefault("turn_detection", None)
    try:
        config = SessionConfig(**session_fields)
    except RealtimeError as exc:
        raise ScriptError(f"invalid session: {exc}", path=str(script.path)) from exc
    result = RunResult(name=script.name, out_dir=str(out) if out is not None else None)
    t0 = time.monotonic()
    ctx = connect(
        model or script.model or "gpt-realtime",
        url=url,
        api_key=api_key,
        dialect=(dialect or script.dialect or "ga"),  # type: ignore[arg-type]
        config=config,
        tools=tools,
        **dict(connect_options or {}),
    )
    # subscribe before connecting, so the handshake (session.update / session.created) is kept
    runner = _Runner(script, ctx.session, out)
    ctx.session.add_send_listener(runner.on_client_frame)
    ctx.session.on("*", runner.on_event)
    opened = False
    try:
        async with ctx as session:
            opened = True
            for step in script.steps:
                if on_progress is not None:
                    on_progress(f"line {step.line}: {type(step).__name__.lower()}")
                await runner.run_step(step)
            with contextlib.suppress(RealtimeError, asyncio.TimeoutError):
                await session.flush(timeout=5)
            # let handlers catch up with what has already arrived
            await asyncio.sleep(0.05)
    except ScriptError:
        raise
    except RealtimeError as exc:
        if not opened:
            raise  # never connected: not a test outcome but a setup problem
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        runner.close()
    result.seconds = round(time.monotonic() - t0, 3)
    if opened:
        result.expects = runner.expects
        result.turns = [runner.turns[r] for r in runner.order]
        result.user_transcripts = runner.user_transcripts
        totals: dict[str, int] = {}
        for turn in result.turns:
            for key in ("input_tokens", "output_tokens", "total_tokens"):
                totals[key] = totals.get(key, 0) + int(turn.usage.get(key, 0) or 0)
        result.usage = totals
    result.passed = result.error is None and all(e.passed for e in result.expects)
    if out is not None:
        (out / "summary.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
    return result
