"""Responders: what the local server's assistant says.

A responder is given the conversation so far and streams back what the assistant does:
text to speak (:class:`TextDelta`) or a function call (:class:`ToolCall`). The server turns
that into the protocol's events, synthesizes speech sentence by sentence and so on.

Three responders ship:

- :class:`EchoResponder` (default): repeats what it heard and says it is the local echo
  assistant; after a tool output it reads the output back.
- :class:`ScriptResponder`: a YAML file of rules: when the user's words match a pattern, say a
  text, or call a tool with given arguments and, after the ``function_call_output``, say a text
  built from the output.
- :class:`OpenAICompatibleResponder`: any chat-completions endpoint (a local Ollama, vLLM, …):
  streamed text, tools passed through, tool calls streamed back.

Script file format::

    rules:
      - when: "weather|forecast"            # regular expression, case-insensitive, searched
        call: {name: get_weather, arguments: {city: Paris}}
        then: "It is {output[temperature]} degrees in {args[city]}."
      - when: "hello|hi there"
        say: "Hello! How can I help?"
    default: "Sorry, I only know about the weather."   # optional; else the echo reply

In ``then`` templates, ``{output}`` is the tool output (parsed as JSON when it is JSON),
``{args}`` the call's arguments and ``{user}`` the user's words.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import yaml

from ..exceptions import ConfigError, ScriptError

__all__ = [
    "EchoResponder",
    "OpenAICompatibleResponder",
    "Responder",
    "ResponderContext",
    "ResponderOutput",
    "ScriptResponder",
    "ScriptRule",
    "TextDelta",
    "ToolCall",
    "load_responder",
]


@dataclass(frozen=True)
class TextDelta:
    """A piece of the assistant's text (spoken when the response has audio)."""

    text: str


@dataclass(frozen=True)
class ToolCall:
    """The assistant calls a function with JSON-encoded arguments."""

    name: str
    arguments: str


ResponderOutput = TextDelta | ToolCall


@dataclass
class ResponderContext:
    """What a responder sees: the conversation (GA-shaped items) and the response settings."""

    items: Sequence[Mapping[str, Any]]
    instructions: str | None = None
    tools: Sequence[Mapping[str, Any]] = field(default_factory=list)
    tool_choice: Any = "auto"

    @property
    def last_user_text(self) -> str | None:
        """The words of the latest user message (typed text or the transcript of its audio)."""
        for item in reversed(self.items):
            if item.get("type") == "message" and item.get("role") == "user":
                return item_text(item)
        return None

    @property
    def pending_tool_output(self) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
        """``(function_call, function_call_output)`` when the latest item answers a call."""
        if not self.items:
            return None
        last = self.items[-1]
        if last.get("type") != "function_call_output":
            return None
        call_id = last.get("call_id")
        for item in reversed(self.items):
            if item.get("type") == "function_call" and item.get("call_id") == call_id:
                return item, last
        return None


def item_text(item: Mapping[str, Any]) -> str:
    """The text of a message item: its text parts and audio transcripts joined."""
    parts: list[str] = []
    for part in item.get("content") or ():
        text = part.get("text")
        if text is None:
            text = part.get("transcript")
        if text:
            parts.append(str(text))
    return " ".join(parts).strip()


class Responder(Protocol):
    """Produces the assistant's output for one response."""

    def respond(self, ctx: ResponderContext) -> AsyncIterator[ResponderOutput]:
        """Stream the assistant's text deltas and/or tool calls."""
        ...


def _words(text: str, size: int = 3) -> list[str]:
    """Split text into small deltas (a few words each), keeping the spaces."""
    tokens = re.findall(r"\S+\s*", text)
    return ["".join(tokens[i : i + size]) for i in range(0, len(tokens), size)] or [text]


class EchoResponder:
    """Repeats what the user said; reads back tool outputs."""

    name = "echo"

    async def respond(self, ctx: ResponderContext) -> AsyncIterator[ResponderOutput]:
        """Say back the user's latest words (or the latest tool output)."""
        answered = ctx.pending_tool_output
        if answered is not None:
            call, output = answered
            text = f"The {call.get('name', 'tool')} tool returned: {output.get('output', '')}."
        else:
            heard = ctx.last_user_text
            if heard:
                text = f"You said: {heard.rstrip('.!?')}. I am the local echo assistant."
            else:
                text = "I am the local echo assistant. I did not catch any words."
        for piece in _words(text):
            yield TextDelta(piece)


class _LenientMap(dict[str, Any]):
    """format_map helper: a missing key renders as ``{key}`` instead of failing."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True)
class ScriptRule:
    """One rule of a script: a pattern and either a reply or a tool call (and its follow-up)."""

    pattern: re.Pattern[str]
    say: str | None = None
    call_name: str | None = None
    call_arguments: Mapping[str, Any] = field(default_factory=dict)
    then: str | None = None


class ScriptResponder:
    """Rule-based replies from a YAML script (see the module docstring for the format)."""

    name = "script"

    def __init__(self, rules: Sequence[ScriptRule], default: str | None = None) -> None:
        self.rules = list(rules)
        self.default = default

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptResponder:
        """Load a script; a bad file raises :class:`ScriptError` naming the file and line."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScriptError(f"cannot read responder script: {exc.strerror}", path=str(p)) from exc
        return cls.from_yaml(text, path=str(p))

    @classmethod
    def from_yaml(cls, text: str, *, path: str = "<script>") -> ScriptResponder:
        """Parse a script from YAML text."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc)
            raise ScriptError(f"invalid YAML: {problem}", path=path, line=line) from exc
        if not isinstance(data, Mapping) or not isinstance(data.get("rules", []), list):
            raise ScriptError("a responder script is a mapping with a 'rules' list", path=path)
        rules: list[ScriptRule] = []
        for n, raw in enumerate(data.get("rules") or [], start=1):
            if not isinstance(raw, Mapping) or "when" not in raw:
                raise ScriptError(f"rule {n} needs a 'when' pattern", path=path)
            try:
                pattern = re.compile(str(raw["when"]), re.IGNORECASE)
            except re.error as exc:
                raise ScriptError(f"rule {n}: bad pattern: {exc}", path=path) from exc
            call = raw.get("call")
            if call is None and "say" not in raw:
                raise ScriptError(f"rule {n} needs 'say' or 'call'", path=path)
            if call is not None and (not isinstance(call, Mapping) or "name" not in call):
                raise ScriptError(f"rule {n}: 'call' needs a 'name'", path=path)
            args = call.get("arguments", {}) if call is not None else {}
            if not isinstance(args, Mapping):
                raise ScriptError(f"rule {n}: call arguments must be a mapping", path=path)
            rules.append(
                ScriptRule(
                    pattern=pattern,
                    say=str(raw["say"]) if raw.get("say") is not None else None,
                    call_name=str(call["name"]) if call is not None else None,
                    call_arguments=dict(args),
                    then=str(raw["then"]) if raw.get("then") is not None else None,
                )
            )
        default = data.get("default")
        return cls(rules, default=str(default) if default is not None else None)

    def _match(self, words: str) -> ScriptRule | None:
        for rule in self.rules:
            if rule.pattern.search(words):
                return rule
        return None

    async def respond(self, ctx: ResponderContext) -> AsyncIterator[ResponderOutput]:
        """Apply the first rule matching the user's words."""
        answered = ctx.pending_tool_output
        user = ctx.last_user_text or ""
        if answered is not None:
            call, output_item = answered
            raw_output = str(output_item.get("output", ""))
            try:
                output: Any = json.loads(raw_output)
            except ValueError:
                output = raw_output
            try:
                args = json.loads(str(call.get("arguments") or "{}"))
            except ValueError:
                args = {}
            rule = next((r for r in self.rules if r.call_name == call.get("name")), None)
            template = rule.then if rule is not None and rule.then else "The result is {output}."
            values = _LenientMap(output=output, args=args, user=user)
            try:
                text = template.format_map(values)
            except (KeyError, IndexError, AttributeError, ValueError, TypeError):
                text = f"The result is {raw_output}."
            for piece in _words(text):
                yield TextDelta(piece)
            return
        rule = self._match(user)
        if rule is not None and rule.call_name is not None:
            yield ToolCall(rule.call_name, json.dumps(rule.call_arguments))
            return
        if rule is not None and rule.say is not None:
            text = rule.say.format_map(_LenientMap(user=user))
        elif self.default is not None:
            text = self.default.format_map(_LenientMap(user=user))
        else:
            async for out in EchoResponder().respond(ctx):
                yield out
            return
        for piece in _words(text):
            yield TextDelta(piece)


class OpenAICompatibleResponder:
    """Streams replies from a chat-completions endpoint (``{base_url}/chat/completions``)."""

    name = "openai-compatible"

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "llama3.2",
        api_key: str | None = None,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key
        self._timeout = timeout
        self._transport = transport

    def __repr__(self) -> str:
        return f"OpenAICompatibleResponder(base_url={self.base_url!r}, model={self.model!r})"

    @staticmethod
    def messages(ctx: ResponderContext) -> list[dict[str, Any]]:
        """The conversation as chat-completions messages."""
        out: list[dict[str, Any]] = []
        if ctx.instructions:
            out.append({"role": "system", "content": ctx.instructions})
        for item in ctx.items:
            kind = item.get("type")
            if kind == "message":
                role = item.get("role", "user")
                out.append({"role": role, "content": item_text(item)})
            elif kind == "function_call":
                call = {
                    "id": item.get("call_id"),
                    "type": "function",
                    "function": {"name": item.get("name"), "arguments": item.get("arguments")},
                }
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
            elif kind == "function_call_output":
                call_id = item.get("call_id")
                out.append({"role": "tool", "tool_call_id": call_id, "content": item.get("output")})
        return out

    @staticmethod
    def tools(ctx: ResponderContext) -> list[dict[str, Any]]:
        """Realtime function tools as chat-completions tools."""
        out = []
        for tool in ctx.tools:
            if tool.get("type", "function") != "function":
                continue
            fn = {k: tool[k] for k in ("name", "description", "parameters") if k in tool}
            out.append({"type": "function", "function": fn})
        return out

    async def respond(self, ctx: ResponderContext) -> AsyncIterator[ResponderOutput]:
        """Stream the completion: text deltas, then any tool calls once complete."""
        body: dict[str, Any] = {"model": self.model, "messages": self.messages(ctx), "stream": True}
        tools = self.tools(ctx)
        if tools:
            body["tools"] = tools
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        calls: dict[int, dict[str, str]] = {}
        async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as client:
            try:
                async with client.stream(
                    "POST", f"{self.base_url}/chat/completions", json=body, headers=headers
                ) as resp:
                    if resp.status_code >= 400:
                        detail = (await resp.aread())[:200].decode("utf-8", "replace")
                        raise ConfigError(
                            f"chat endpoint {self.base_url} answered {resp.status_code}: {detail}"
                        )
                    async for line in resp.aiter_lines():
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            break
                        try:
                            chunk = json.loads(data)
                        except ValueError:
                            continue
                        for choice in chunk.get("choices") or ():
                            delta = choice.get("delta") or {}
                            if delta.get("content"):
                                yield TextDelta(str(delta["content"]))
                            for tc in delta.get("tool_calls") or ():
                                index = int(tc.get("index", 0))
                                slot = calls.setdefault(index, {"name": "", "args": ""})
                                fn = tc.get("function") or {}
                                slot["name"] += fn.get("name") or ""
                                slot["args"] += fn.get("arguments") or ""
            except httpx.HTTPError as exc:
                raise ConfigError(f"chat endpoint {self.base_url} unreachable: {exc}") from exc
        for index in sorted(calls):
            yield ToolCall(calls[index]["name"], calls[index]["args"] or "{}")


def load_responder(spec: str | None) -> Responder:
    """Build a responder from a CLI-style spec.

    ``None`` or ``"echo"`` -> :class:`EchoResponder`; ``"script:FILE"`` -> :class:`ScriptResponder`;
    ``"openai-compatible:URL"`` (optionally ``…#model=NAME``) -> :class:`OpenAICompatibleResponder`.
    """
    if spec is None or spec == "echo":
        return EchoResponder()
    kind, _, arg = spec.partition(":")
    if kind == "script" and arg:
        return ScriptResponder.from_file(arg)
    if kind == "openai-compatible" and arg:
        url, _, frag = arg.partition("#")
        model = frag.removeprefix("model=") if frag.startswith("model=") else "llama3.2"
        return OpenAICompatibleResponder(url, model=model)
    raise ConfigError(
        f"unknown responder {spec!r}: use 'echo', 'script:FILE' or 'openai-compatible:URL'"
    )
