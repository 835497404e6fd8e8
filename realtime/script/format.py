"""The scripted-session file format: YAML in, typed steps out (with line numbers).

A script drives one realtime session, step by step, and checks what comes back::

    name: weather check              # optional
    session:                         # a SessionConfig (any of its fields)
      instructions: Be brief.
      output_modalities: [audio]
      turn_detection: null           # manual turns (the default for scripts)
      transcription: {model: whisper-1}
    local_responder: rules.yaml      # optional: plays the model's part on the local server
    tools:                           # function tools the model may call, and their outputs
      get_weather:
        description: Weather for a city.
        parameters: {type: object, properties: {city: {type: string}}}
        output: {temp: 21}           # canned output (JSON), or:
        # python: mymodule:get_weather   (called with the arguments; mymodule.py may sit
        #                                   next to the script or anywhere on sys.path)
    steps:
      - say: What is the weather in Paris?       # a user text message
      - respond: {}                              # response.create (overrides allowed)
      - expect: {tool_call: {name: get_weather, arguments: {city: Paris}}, within: 10}
      - expect: {transcript: "(?i)21 degrees", within: 20}
      - send_audio: question.wav                 # any WAV: resampled to the session rate
      - commit                                   # input_audio_buffer.commit
      - respond: {instructions: Answer in French.}
      - interrupt_after_ms: 800                  # barge in once that much reply was heard
      - expect: {event: response.done, within: 10}
      - wait: 0.5                                # seconds

A script can drive a translation session instead (``translation:`` replaces ``session``)::

    translation: {language: es, transcription_model: gpt-realtime-whisper}
    steps:
      - send_audio: question.wav               # paced in 200 ms frames, silence in between
      - expect: {user_transcript: "(?i)weather", transcript: "(?i)tiempo", within: 20}
      - expect: session.output_audio.delta

There ``transcript`` is the translated transcript and ``user_transcript`` the source one; the
steps are ``send_audio``, ``expect`` (``event``, ``transcript``, ``user_transcript``) and
``wait``; the session is closed (pending audio flushed) after the last step.

``expect`` checks: ``event`` (a type, glob, or dialect-neutral name), ``transcript`` (a regex
searched in the assistant transcript/text of the current turn), ``user_transcript`` (a regex on
the input transcription), ``tool_call`` (name and, optionally, a subset of the arguments),
``status`` (of the next ``response.done``); ``within`` is the timeout in seconds (default 15).
Relative paths are resolved from the script's folder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..events.config import SessionConfig
from ..exceptions import ConfigError, ScriptError

__all__ = [
    "Commit",
    "Expect",
    "InterruptAfter",
    "Respond",
    "Say",
    "Script",
    "SendAudio",
    "Step",
    "ToolSpec",
    "Wait",
    "load_script",
    "parse_script",
]


@dataclass(frozen=True)
class Say:
    """Add a user text message."""

    text: str
    line: int


@dataclass(frozen=True)
class SendAudio:
    """Stream a WAV file into the input audio buffer (paced in real time when asked)."""

    path: Path
    line: int
    realtime: bool = False


@dataclass(frozen=True)
class Commit:
    """Commit the input audio buffer."""

    line: int


@dataclass(frozen=True)
class Respond:
    """Create a response, with optional per-response overrides."""

    overrides: Mapping[str, Any]
    line: int


@dataclass(frozen=True)
class Expect:
    """Wait (up to ``within`` seconds) for something to happen."""

    line: int
    within: float = 15.0
    event: str | None = None
    transcript: re.Pattern[str] | None = None
    user_transcript: re.Pattern[str] | None = None
    tool_name: str | None = None
    tool_arguments: Mapping[str, Any] | None = None
    status: str | None = None

    def describe(self) -> str:
        """A short human description for reports."""
        parts = []
        if self.event:
            parts.append(f"event {self.event}")
        if self.transcript is not None:
            parts.append(f"transcript /{self.transcript.pattern}/")
        if self.user_transcript is not None:
            parts.append(f"user transcript /{self.user_transcript.pattern}/")
        if self.tool_name:
            args = f" {dict(self.tool_arguments)}" if self.tool_arguments else ""
            parts.append(f"tool call {self.tool_name}{args}")
        if self.status:
            parts.append(f"response status {self.status}")
        return " and ".join(parts) + f" within {self.within:g}s"


@dataclass(frozen=True)
class InterruptAfter:
    """Barge in once ``ms`` of the current reply has been heard."""

    ms: int
    line: int


@dataclass(frozen=True)
class Wait:
    """Pause for ``seconds``."""

    seconds: float
    line: int


Step = Say | SendAudio | Commit | Respond | Expect | InterruptAfter | Wait


@dataclass(frozen=True)
class ToolSpec:
    """A tool the script offers: its definition and how its output is produced."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    output: Any = None
    python: str | None = None


@dataclass
class Script:
    """A parsed script."""

    path: Path | None
    name: str
    session: dict[str, Any]
    tools: list[ToolSpec]
    steps: list[Step]
    dialect: str | None = None
    model: str | None = None
    local_responder: Path | None = None
    translation: dict[str, Any] | None = None


class _LineLoader(yaml.SafeLoader):
    """A safe loader that records the line of every mapping under the key ``__line__``."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


class _Lines(list[Any]):
    """A YAML sequence that remembers the line of each item (plain strings carry none)."""

    lines: list[int]


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> _Lines:
    seq = _Lines(loader.construct_sequence(node, deep=True))
    seq.lines = [item.start_mark.line + 1 for item in node.value]
    return seq


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _strip_lines(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_lines(v) for k, v in value.items() if k != "__line__"}
    if isinstance(value, list):
        return [_strip_lines(v) for v in value]
    return value


def load_script(path: str | Path) -> Script:
    """Read and parse a script file; errors name the file and the line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScriptError("no such script file", path=str(p)) from None
    except OSError as exc:
        raise ScriptError(f"cannot read the script: {exc.strerror}", path=str(p)) from exc
    return parse_script(text, path=p)


def _yaml_error(exc: yaml.YAMLError, where: str | None) -> ScriptError:
    """A YAML error blamed on the line where the trouble starts.

    An unclosed quote or bracket is only noticed lines later (often at the end of the file):
    the error names the line where the unclosed construct begins, and where it was noticed.
    """
    mark = getattr(exc, "problem_mark", None)
    context_mark = getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    unclosed = bool(context) and ("quoted scalar" in str(context) or "flow" in str(context))
    if context_mark is not None and unclosed and context_mark.line + 1 != line:
        noticed = f" (noticed at line {line})" if line is not None else ""
        started = str(context).removeprefix("while ")
        return ScriptError(
            f"invalid YAML: {problem}{noticed}, {started} that starts here",
            path=where,
            line=context_mark.line + 1,
        )
    return ScriptError(f"invalid YAML: {problem}", path=where, line=line)


def parse_script(text: str, *, path: Path | None = None) -> Script:
    """Parse a script from YAML text (``path`` resolves relative audio files)."""
    where = str(path) if path is not None else None
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, where) from exc
    if not isinstance(data, dict):
        raise ScriptError("a script is a mapping with 'steps'", path=where, line=1)
    base = path.parent if path is not None else Path.cwd()

    def fail(message: str, line: int | None) -> ScriptError:
        return ScriptError(message, path=where, line=line)

    session = data.get("session") or {}
    if not isinstance(session, dict):
        raise fail("'session' must be a mapping", data.get("__line__"))
    _check_session(_strip_lines(session), session.get("__line__"), fail)
    tools = _parse_tools(data.get("tools") or {}, fail)
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise fail("'steps' must be a non-empty list", data.get("__line__"))
    lines = getattr(raw_steps, "lines", None) or [data.get("__line__", 1)] * len(raw_steps)
    steps = [_parse_step(raw, base, fail, line) for raw, line in zip(raw_steps, lines, strict=True)]
    known = {"name", "session", "tools", "steps", "dialect", "model", "local_responder", "__line__"}
    known.add("translation")
    unknown = sorted(set(data) - known)
    if unknown:
        raise fail(f"unknown top-level key {unknown[0]!r}", data.get("__line__"))
    dialect = data.get("dialect")
    if dialect not in (None, "ga", "beta"):
        raise fail("'dialect' must be 'ga' or 'beta'", data.get("__line__"))
    local = data.get("local_responder")
    if local is not None and not isinstance(local, str):
        raise fail("'local_responder' must be a responder script path", data.get("__line__"))
    translation = None
    if "translation" in data:
        from .translation import check_translation_script

        translation = check_translation_script(data, steps, fail)
    return Script(
        path=path,
        local_responder=(base / local) if local else None,
        name=str(data.get("name") or (path.stem if path is not None else "script")),
        session=_strip_lines(session),
        tools=tools,
        steps=steps,
        dialect=dialect,
        model=str(data["model"]) if data.get("model") else None,
        translation=translation,
    )


def _check_session(fields: dict[str, Any], line: int | None, fail: Any) -> None:
    """Validate the ``session`` mapping as a SessionConfig; the first problem, on one line."""
    try:
        SessionConfig(**fields)
    except ConfigError as exc:
        raise fail(_one_line(str(exc)), line) from None


def _one_line(message: str) -> str:
    """The first field and problem of a (multi-line) validation message."""
    lines = [x.strip() for x in message.splitlines() if x.strip()]
    for i, text in enumerate(lines[:-2]):
        if "validation error" in text:
            problem = lines[i + 2].split(" [type=")[0]
            return f"invalid session field {lines[i + 1]!r}: {problem}"
    return f"invalid session: {lines[0] if lines else message}"


def _parse_tools(raw: Any, fail: Any) -> list[ToolSpec]:
    if not isinstance(raw, dict):
        raise fail("'tools' must be a mapping of tool names", None)
    out = []
    for name, spec in raw.items():
        if name == "__line__":
            continue
        if not isinstance(spec, dict):
            raise fail(f"tool {name!r} must be a mapping", raw.get("__line__"))
        line = spec.get("__line__")
        if "output" in spec and "python" in spec:
            raise fail(f"tool {name!r}: give 'output' or 'python', not both", line)
        python = spec.get("python")
        if python is not None and (not isinstance(python, str) or ":" not in python):
            raise fail(f"tool {name!r}: 'python' must be 'module:function'", line)
        params = _strip_lines(spec.get("parameters") or {"type": "object", "properties": {}})
        out.append(
            ToolSpec(
                name=str(name),
                description=str(spec.get("description") or ""),
                parameters=params,
                output=_strip_lines(spec.get("output")),
                python=python,
            )
        )
    return out


_STEP_KEYS = ("say", "send_audio", "commit", "respond", "expect", "interrupt_after_ms", "wait")


def _parse_step(raw: Any, base: Path, fail: Any, item_line: int) -> Step:
    if isinstance(raw, str):
        if raw == "commit":
            return Commit(line=item_line)
        if raw == "respond":
            return Respond(overrides={}, line=item_line)
        raise fail(f"unknown step {raw!r} (steps: {', '.join(_STEP_KEYS)})", item_line)
    if not isinstance(raw, dict):
        raise fail("a step is a mapping such as '- say: hello'", item_line)
    line = int(raw.get("__line__", item_line))
    keys = [k for k in raw if k != "__line__"]
    kinds = [k for k in keys if k in _STEP_KEYS]
    if not kinds:
        raise fail(f"unknown step {keys[0]!r} (steps: {', '.join(_STEP_KEYS)})", line)
    if len(kinds) != 1:
        raise fail(f"a step needs exactly one of: {', '.join(_STEP_KEYS)}; got {keys}", line)
    kind = kinds[0]
    extra = [k for k in keys if k != kind and not (kind == "send_audio" and k == "realtime")]
    if extra:
        raise fail(f"unknown key {extra[0]!r} in a {kind!r} step", line)
    value = raw[kind]
    if kind == "say":
        if not isinstance(value, str) or not value.strip():
            raise fail("'say' needs the text to say", line)
        return Say(text=value, line=line)
    if kind == "send_audio":
        if not isinstance(value, str):
            raise fail("'send_audio' needs a WAV file path", line)
        p = Path(value)
        return SendAudio(
            path=p if p.is_absolute() else base / p,
            line=line,
            realtime=bool(raw.get("realtime", False)),
        )
    if kind == "commit":
        return Commit(line=line)
    if kind == "respond":
        if value is not None and not isinstance(value, dict):
            raise fail("'respond' takes a mapping of response overrides", line)
        return Respond(overrides=_strip_lines(value or {}), line=line)
    if kind == "interrupt_after_ms":
        if not isinstance(value, (int, float)) or value < 0:
            raise fail("'interrupt_after_ms' needs a number of milliseconds >= 0", line)
        return InterruptAfter(ms=int(value), line=line)
    if kind == "wait":
        if not isinstance(value, (int, float)) or value < 0:
            raise fail("'wait' needs a number of seconds >= 0", line)
        return Wait(seconds=float(value), line=line)
    return _parse_expect(value, line, fail)


def _parse_expect(value: Any, line: int, fail: Any) -> Expect:
    if isinstance(value, str):
        value = {"event": value}
    if not isinstance(value, dict):
        raise fail("'expect' takes a mapping (event, transcript, tool_call, status, within)", line)
    line = int(value.get("__line__", line))
    allowed = {
        "event",
        "transcript",
        "user_transcript",
        "tool_call",
        "status",
        "within",
        "__line__",
    }
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise fail(f"unknown expect key {unknown[0]!r}", line)
    if len(set(value) - {"within", "__line__"}) == 0:
        raise fail("'expect' needs something to check", line)

    def regex(key: str) -> re.Pattern[str] | None:
        if value.get(key) is None:
            return None
        try:
            return re.compile(str(value[key]))
        except re.error as exc:
            raise fail(f"bad regular expression in {key!r}: {exc}", line) from exc

    tool = value.get("tool_call")
    name = None
    arguments = None
    if tool is not None:
        if isinstance(tool, str):
            name = tool
        elif isinstance(tool, dict) and "name" in tool:
            name = str(tool["name"])
            arguments = _strip_lines(tool.get("arguments")) if "arguments" in tool else None
        else:
            raise fail("'tool_call' needs a name (and optionally arguments)", line)
    within = value.get("within", 15.0)
    if not isinstance(within, (int, float)) or within <= 0:
        raise fail("'within' must be a positive number of seconds", line)
    return Expect(
        line=line,
        within=float(within),
        event=str(value["event"]) if value.get("event") else None,
        transcript=regex("transcript"),
        user_transcript=regex("user_transcript"),
        tool_name=name,
        tool_arguments=arguments,
        status=str(value["status"]) if value.get("status") else None,
    )
