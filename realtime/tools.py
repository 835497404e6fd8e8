"""Function tools: schemas from Python functions, validated calls, and the call/response loop.

:class:`ToolRegistry` turns plain (sync or async) functions into Realtime function
tools. The JSON schema of the parameters comes from the type hints (through pydantic),
the description from the docstring's first paragraph, and parameter descriptions from a
Google-style ``Args:`` section::

    registry = ToolRegistry()

    @registry.tool(timeout=5)
    def get_weather(city: str, unit: Literal["c", "f"] = "c") -> dict[str, float]:
        '''Current weather for a city.

        Args:
            city: The city name, e.g. "Paris".
            unit: Temperature unit.
        '''

    session_config.tools = registry.definitions()

:meth:`ToolRegistry.execute` runs one call (sync functions in a worker thread, async
ones as a task) under a timeout and always returns a :class:`ToolResult`: exceptions,
invalid arguments, timeouts and unknown tool names become an error output
(``{"error": "..."}``) the model can read. Nothing is swallowed silently and no
exception escapes (except cancellation of the caller itself).

:class:`ToolCallCoordinator` is the pure bookkeeping around it: fed server events and
tool results, it says which calls to start and which client events to send — one
``function_call_output`` item per call, then exactly one ``response.create`` once every
call of a response has its output and that response is done.
"""

from __future__ import annotations

import inspect
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_type_hints, overload

import pydantic
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from realtime.events import (
    BetaConversationItem,
    BetaConversationItemCreateEvent,
    BetaResponseCreateEvent,
    BetaResponseDoneEvent,
    BetaResponseFunctionCallArgumentsDoneEvent,
    BetaResponseOutputItemAddedEvent,
    BetaResponseOutputItemDoneEvent,
    ConversationItemCreateEvent,
    FunctionCallItem,
    ResponseCreateEvent,
    ResponseDoneEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
)
from realtime.exceptions import ToolError

if TYPE_CHECKING:
    from realtime.events import ClientEvent, ServerEvent
    from realtime.response_state import ResponseTracker

__all__ = [
    "DEFAULT_TOOL_TIMEOUT",
    "Tool",
    "ToolCall",
    "ToolCallCoordinator",
    "SchemaTool",
    "ToolRegistry",
    "ToolResult",
    "error_output",
    "parse_docstring",
    "tool",
]

DEFAULT_TOOL_TIMEOUT = 30.0
"""Seconds a tool may run when neither the tool nor the registry sets a timeout."""

_SETTLED_LIMIT = 4096
_ARGS_HEADERS = ("args:", "arguments:", "parameters:", "params:")
_SECTION_RE = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")
_ARG_LINE_RE = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a docstring into (description, {parameter: description}).

    The description is the first paragraph (lines joined by spaces); parameter
    descriptions come from a Google-style ``Args:`` section (continuation lines,
    indented deeper, are appended).
    """
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    paragraph: list[str] = []
    for line in lines:
        if not line.strip():
            if paragraph:
                break
            continue
        if line.strip().lower() in _ARGS_HEADERS or _SECTION_RE.match(line.strip()):
            break
        paragraph.append(line.strip())
    description = " ".join(paragraph)

    params: dict[str, str] = {}
    in_args = False
    arg_indent: int | None = None
    current: str | None = None
    for line in lines:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if not in_args:
            if stripped.lower() in _ARGS_HEADERS:
                in_args = True
            continue
        if not stripped:
            continue
        if indent == 0:  # the next section (Returns:, Raises:, ...) ends the Args block
            break
        if arg_indent is None:
            arg_indent = indent
        m = _ARG_LINE_RE.match(line)
        if indent == arg_indent and m:
            current = m.group(1)
            params[current] = m.group(2).strip()
        elif current is not None and indent > arg_indent:
            params[current] = f"{params[current]} {stripped}".strip()
    return description, params


def error_output(message: str) -> str:
    """The output string sent to the model for a failed call: ``{"error": message}``."""
    return json.dumps({"error": message}, ensure_ascii=False)


def _strip_titles(schema: Any) -> Any:
    """Drop pydantic's auto-generated ``title`` keywords (not property names called title)."""
    if isinstance(schema, dict):
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key == "title" and isinstance(value, str):
                continue
            if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
                out[key] = {name: _strip_titles(sub) for name, sub in value.items()}
            else:
                out[key] = _strip_titles(value)
        return out
    if isinstance(schema, list):
        return [_strip_titles(x) for x in schema]
    return schema


def _to_output(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(to_jsonable_python(value), ensure_ascii=False)


@dataclass(frozen=True)
class ToolCall:
    """One function call requested by the model."""

    call_id: str
    name: str
    arguments: str
    item_id: str | None = None
    response_id: str | None = None


@dataclass(frozen=True)
class ToolResult:
    """The outcome of one call: ``output`` is what goes back to the model.

    ``error`` is ``None`` on success; on failure it holds the message and ``output`` is
    its JSON error form. ``duration`` is the wall time the call took, in seconds.
    """

    call_id: str
    name: str
    output: str
    error: str | None = None
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the tool ran and returned normally."""
        return self.error is None


class Tool:
    """A function wrapped as a Realtime function tool.

    Calling the Tool calls the function unchanged, so decorated functions stay usable.
    Raises :class:`ToolError` at construction when the signature cannot be described
    (``*args``/``**kwargs``, positional-only parameters, unresolvable annotations).
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> None:
        if not callable(func):
            raise ToolError(f"a tool must be callable, got {func!r}")
        self.func = func
        self.name: str = name or str(getattr(func, "__name__", ""))
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", self.name):
            raise ToolError(f"invalid tool name {self.name!r} (letters, digits, _ and -; 1-64)")
        if timeout is not None and timeout <= 0:
            raise ToolError(f"tool {self.name!r}: timeout must be positive, got {timeout}")
        self.timeout = timeout
        self.is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
            getattr(func, "__call__", None)  # noqa: B004 - callable objects with async __call__
        )
        doc_description, arg_docs = parse_docstring(inspect.getdoc(func))
        self.description = description if description is not None else doc_description
        self.model = self._build_model(func, arg_docs)
        self.parameters: dict[str, Any] = _strip_titles(self.model.model_json_schema())
        self.parameters.setdefault("properties", {})

    def _build_model(
        self, func: Callable[..., Any], arg_docs: Mapping[str, str]
    ) -> type[pydantic.BaseModel]:
        try:
            sig = inspect.signature(func)
        except (TypeError, ValueError) as exc:
            raise ToolError(f"tool {self.name!r}: cannot read its signature: {exc}") from exc
        try:
            hints = get_type_hints(func, include_extras=True)
        except Exception as exc:
            raise ToolError(f"tool {self.name!r}: cannot resolve type hints: {exc}") from exc
        fields: dict[str, Any] = {}
        for pname, param in sig.parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise ToolError(f"tool {self.name!r}: *args/**kwargs cannot be described")
            if param.kind is param.POSITIONAL_ONLY:
                raise ToolError(f"tool {self.name!r}: positional-only parameter {pname!r}")
            annotation = hints.get(pname, Any)
            default = ... if param.default is param.empty else param.default
            if isinstance(default, FieldInfo):  # def f(x: int = Field(3, ge=0))
                if default.description is None and pname in arg_docs:
                    # A new FieldInfo: the caller's one is never modified.
                    default = FieldInfo.merge_field_infos(default, description=arg_docs[pname])
                fields[pname] = (annotation, default)
                continue
            fields[pname] = (
                annotation,
                pydantic.Field(default=default, description=arg_docs.get(pname)),
            )
        try:
            return pydantic.create_model(
                f"{self.name}_arguments",
                __config__=pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=False),
                **fields,
            )
        except Exception as exc:
            raise ToolError(f"tool {self.name!r}: cannot build a schema: {exc}") from exc

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"

    @classmethod
    def from_schema(
        cls,
        name: str,
        *,
        parameters: Mapping[str, Any],
        func: Callable[..., Any],
        description: str = "",
        timeout: float | None = None,
    ) -> Tool:
        """A tool from a JSON schema and a function taking the arguments as keywords."""
        return SchemaTool(
            name, parameters=parameters, func=func, description=description, timeout=timeout
        )

    def definition(self) -> dict[str, Any]:
        """The wire definition: ``type`` (function), ``name``, ``description``, ``parameters``."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }

    def validate(self, arguments: str | Mapping[str, Any]) -> dict[str, Any]:
        """Parse and validate the model's argument JSON; returns the keyword arguments.

        An empty string counts as ``{}``. Raises :class:`ToolError` naming the problem
        for broken JSON, a non-object, unknown or missing parameters, or wrong types.
        """
        if isinstance(arguments, str):
            text = arguments.strip() or "{}"
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ToolError(f"arguments of {self.name!r} are not valid JSON: {exc}") from exc
        else:
            data = dict(arguments)
        if not isinstance(data, dict):
            raise ToolError(
                f"arguments of {self.name!r} must be a JSON object, got {type(data).__name__}"
            )
        try:
            model = self.model.model_validate(data)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(arguments)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ToolError(f"invalid arguments for {self.name!r}: {problems}") from exc
        return {name: getattr(model, name) for name in type(model).model_fields}


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


class SchemaTool(Tool):
    """A tool described by a JSON schema rather than a Python signature.

    For tools defined in data (a scripted session, a configuration file): ``func`` is
    called with the validated arguments as keywords. Validation checks what a JSON
    schema's top level says: an object, its ``required`` names, ``additionalProperties:
    false``, and the JSON type of each declared property.
    """

    def __init__(
        self,
        name: str,
        *,
        parameters: Mapping[str, Any],
        func: Callable[..., Any],
        description: str = "",
        timeout: float | None = None,
    ) -> None:
        if not callable(func):
            raise ToolError(f"a tool must be callable, got {func!r}")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            raise ToolError(f"invalid tool name {name!r} (letters, digits, _ and -; 1-64)")
        if timeout is not None and timeout <= 0:
            raise ToolError(f"tool {name!r}: timeout must be positive, got {timeout}")
        if parameters.get("type", "object") != "object":
            raise ToolError(f"tool {name!r}: parameters must describe an object")
        self.func = func
        self.name = name
        self.timeout = timeout
        self.is_async = inspect.iscoroutinefunction(func)
        self.description = description
        self.parameters = dict(parameters)
        self.parameters.setdefault("type", "object")
        self.parameters.setdefault("properties", {})

    def validate(self, arguments: str | Mapping[str, Any]) -> dict[str, Any]:
        """Parse the argument JSON and check it against the schema's top level."""
        if isinstance(arguments, str):
            try:
                data = json.loads(arguments.strip() or "{}")
            except json.JSONDecodeError as exc:
                raise ToolError(f"arguments of {self.name!r} are not valid JSON: {exc}") from exc
        else:
            data = dict(arguments)
        if not isinstance(data, dict):
            raise ToolError(
                f"arguments of {self.name!r} must be a JSON object, got {type(data).__name__}"
            )
        props: Mapping[str, Any] = self.parameters.get("properties") or {}
        problems = [f"{k}: missing" for k in self.parameters.get("required") or () if k not in data]
        if self.parameters.get("additionalProperties") is False:
            problems += [f"{k}: not a parameter" for k in data if k not in props]
        for key, value in data.items():
            kind = (props.get(key) or {}).get("type")
            kinds = kind if isinstance(kind, list) else [kind] if kind else []
            allowed = tuple(t for k in kinds for t in _JSON_TYPES.get(k, ()))
            bad_bool = isinstance(value, bool) and bool not in allowed
            if allowed and (not isinstance(value, allowed) or bad_bool):
                problems.append(f"{key}: expected {'/'.join(kinds)}")
        if problems:
            raise ToolError(f"invalid arguments for {self.name!r}: {'; '.join(problems)}")
        return data


@overload
def tool(func: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *, name: str | None = None, description: str | None = None, timeout: float | None = None
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Wrap a function as a :class:`Tool` (``@tool`` or ``@tool(name=..., timeout=...)``).

    The result can be passed to :meth:`ToolRegistry.register` or to a session's
    ``register_tool``; it stays callable like the original function.
    """

    def wrap(f: Callable[..., Any]) -> Tool:
        return Tool(f, name=name, description=description, timeout=timeout)

    return wrap if func is None else wrap(func)


class ToolRegistry:
    """The tools a session offers, by name, and their execution.

    ``default_timeout`` applies to tools registered without their own timeout.
    """

    def __init__(self, *, default_timeout: float = DEFAULT_TOOL_TIMEOUT) -> None:
        if default_timeout <= 0:
            raise ToolError(f"default_timeout must be positive, got {default_timeout}")
        self.default_timeout = default_timeout
        self._tools: dict[str, Tool] = {}

    def register(
        self,
        func: Callable[..., Any] | Tool,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> Tool:
        """Register a function (or a :class:`Tool`) and return its Tool.

        Raises :class:`ToolError` when the name is taken or the signature cannot be
        described. Options given here override those of an already built Tool.
        """
        if isinstance(func, Tool):
            if name is None and description is None and timeout is None:
                t = func
            else:
                t = Tool(
                    func.func,
                    name=name or func.name,
                    description=description if description is not None else func.description,
                    timeout=timeout if timeout is not None else func.timeout,
                )
        else:
            t = Tool(func, name=name, description=description, timeout=timeout)
        if t.name in self._tools:
            raise ToolError(f"a tool named {t.name!r} is already registered")
        self._tools[t.name] = t
        return t

    @overload
    def tool(self, func: Callable[..., Any], /) -> Tool: ...

    @overload
    def tool(
        self,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> Callable[[Callable[..., Any]], Tool]: ...

    def tool(
        self,
        func: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> Tool | Callable[[Callable[..., Any]], Tool]:
        """Decorator form of :meth:`register` (``@registry.tool`` or ``@registry.tool(...)``)."""

        def wrap(f: Callable[..., Any]) -> Tool:
            return self.register(f, name=name, description=description, timeout=timeout)

        return wrap if func is None else wrap(func)

    def unregister(self, name: str) -> None:
        """Remove a tool; raises :class:`ToolError` when there is none by that name."""
        if self._tools.pop(name, None) is None:
            raise ToolError(f"no tool named {name!r}")

    def get(self, name: str) -> Tool | None:
        """The tool called ``name``, or ``None``."""
        return self._tools.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def __iter__(self) -> Any:
        return iter(self._tools.values())

    @property
    def names(self) -> list[str]:
        """The registered tool names, in registration order."""
        return list(self._tools)

    def definitions(self) -> list[dict[str, Any]]:
        """Wire definitions of every tool, for the session config's ``tools``."""
        return [t.definition() for t in self._tools.values()]

    async def execute(self, call: ToolCall, *, timeout: float | None = None) -> ToolResult:
        """Run one call and return its result; never raises (except on cancellation).

        Sync functions run in a worker thread (``asyncio.to_thread``; a sync function
        still running at the timeout keeps its thread until it returns, its result is
        discarded), async ones as a task cancelled at the timeout. ``timeout``
        overrides the tool's and the registry's.
        """
        # Imported here: the rest of this module (and the sans-I/O protocol using it)
        # runs without an event loop; only running a tool needs one.
        import asyncio

        start = time.perf_counter()

        def failed(message: str) -> ToolResult:
            return ToolResult(
                call.call_id,
                call.name,
                error_output(message),
                error=message,
                duration=time.perf_counter() - start,
            )

        t = self._tools.get(call.name)
        if t is None:
            return failed(f"unknown tool {call.name!r}")
        try:
            kwargs = t.validate(call.arguments)
        except ToolError as exc:
            return failed(str(exc))
        limit = timeout if timeout is not None else (t.timeout or self.default_timeout)
        try:
            if t.is_async:
                value = await asyncio.wait_for(t.func(**kwargs), limit)
            else:
                value = await asyncio.wait_for(asyncio.to_thread(t.func, **kwargs), limit)
        except asyncio.TimeoutError:
            return failed(f"tool {call.name!r} timed out after {limit:g} s")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return failed(f"tool {call.name!r} raised {type(exc).__name__}: {exc}")
        try:
            output = _to_output(value)
        except Exception as exc:
            return failed(f"tool {call.name!r} returned a value that is not JSON: {exc}")
        return ToolResult(call.call_id, call.name, output, duration=time.perf_counter() - start)


_ARGS_DONE = (ResponseFunctionCallArgumentsDoneEvent, BetaResponseFunctionCallArgumentsDoneEvent)
_ITEM_EVENTS = (
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    BetaResponseOutputItemAddedEvent,
    BetaResponseOutputItemDoneEvent,
)
_DONE = (ResponseDoneEvent, BetaResponseDoneEvent)


def _call_fields(item: object) -> tuple[str | None, str | None, str | None, str]:
    """(id, call_id, name, arguments) of a function call item of either dialect, or Nones."""
    if isinstance(item, FunctionCallItem):
        return item.id, item.call_id, item.name, item.arguments
    if isinstance(item, BetaConversationItem) and item.type == "function_call":
        return item.id, item.call_id, item.name, item.arguments or ""
    return None, None, None, ""


@dataclass
class _ResponseCalls:
    call_ids: list[str] = field(default_factory=list)
    done: bool = False
    respond: bool = True


class ToolCallCoordinator:
    """Pure bookkeeping of function calls between the model and the tools.

    Feed every server event to :meth:`apply` (it ignores what it does not need), start
    the calls :meth:`take_calls` hands out, and feed each :class:`ToolResult` to
    :meth:`complete`. Both :meth:`apply` and :meth:`complete` return the client events
    to send, in order: a ``conversation.item.create`` with the ``function_call_output``
    for each finished call, then exactly one ``response.create`` per response once all
    of its calls have outputs *and* its ``response.done`` has arrived.

    With a ``tracker``, that ``response.create`` goes through
    :meth:`ResponseTracker.request_create` (queued while another response is active).
    ``auto_respond=False`` never sends the follow-up ``response.create``; neither does a
    response that ended ``cancelled`` or ``failed`` (its calls still get outputs).
    ``dialect`` selects the model classes of the events built (the JSON is the same).
    """

    def __init__(
        self,
        *,
        tracker: ResponseTracker | None = None,
        auto_respond: bool = True,
        dialect: Literal["beta", "ga"] = "ga",
    ) -> None:
        self.tracker = tracker
        self.auto_respond = auto_respond
        self.dialect = dialect
        self._names: dict[str, str] = {}  # item_id -> function name (beta arguments.done lacks it)
        self._calls: dict[str, ToolCall] = {}  # call_id -> call
        self._results: dict[str, ToolResult] = {}  # call_id -> result
        self._responses: dict[str, _ResponseCalls] = {}
        self._ready: list[ToolCall] = []
        self._settled: OrderedDict[str, None] = OrderedDict()  # call ids already answered

    def apply(self, event: ServerEvent) -> list[ClientEvent]:
        """Feed a server event; returns the client events to send now (often none)."""
        if isinstance(event, _ARGS_DONE):
            name = getattr(event, "name", None) or self._names.get(event.item_id)
            if name:
                self._add_call(
                    call_id=event.call_id,
                    name=name,
                    arguments=event.arguments,
                    item_id=event.item_id,
                    response_id=event.response_id,
                )
            return []
        if isinstance(event, _ITEM_EVENTS):
            item_id, _, item_name, _ = _call_fields(event.item)
            if item_id and item_name:
                self._names[item_id] = item_name
            if event.type == "response.output_item.done":
                self._add_from_item(event.item, event.response_id)
            return []
        if isinstance(event, _DONE):
            response = event.response
            response_id = response.id
            for item in response.output or ():
                self._add_from_item(item, response_id)
            if response_id is None:
                return []
            rc = self._responses.setdefault(response_id, _ResponseCalls())
            rc.done = True
            # A cancelled or failed response gets its outputs but no automatic follow-up:
            # the user interrupted, or the server gave up.
            rc.respond = response.status not in ("cancelled", "failed")
            return self._follow_up(response_id)
        return []

    @property
    def has_ready(self) -> bool:
        """True when :meth:`take_calls` has calls to hand out."""
        return bool(self._ready)

    def take_calls(self) -> list[ToolCall]:
        """The calls that became ready since the last call; each is handed out once."""
        ready, self._ready = self._ready, []
        return ready

    def complete(self, result: ToolResult) -> list[ClientEvent]:
        """Feed a finished call; returns its output item (and the follow-up when due).

        A result for an unknown or already completed call raises :class:`ToolError`.
        """
        call = self._calls.get(result.call_id)
        if call is None:
            raise ToolError(f"no pending function call with call_id {result.call_id!r}")
        if result.call_id in self._results:
            raise ToolError(f"function call {result.call_id!r} already has an output")
        self._results[result.call_id] = result
        cls = (
            BetaConversationItemCreateEvent
            if self.dialect == "beta"
            else ConversationItemCreateEvent
        )
        out: list[ClientEvent] = [
            cls(
                item={
                    "type": "function_call_output",
                    "call_id": result.call_id,
                    "output": result.output,
                }
            )
        ]
        if call.response_id is not None:
            out.extend(self._follow_up(call.response_id))
        return out

    @property
    def pending(self) -> list[ToolCall]:
        """Calls known but still without an output."""
        return [c for cid, c in self._calls.items() if cid not in self._results]

    def _add_from_item(self, item: object, response_id: str | None) -> None:
        item_id, call_id, name, arguments = _call_fields(item)
        if call_id and name:
            self._add_call(
                call_id=call_id,
                name=name,
                arguments=arguments,
                item_id=item_id,
                response_id=response_id,
            )

    def _add_call(
        self,
        *,
        call_id: str | None,
        name: str,
        arguments: str,
        item_id: str | None,
        response_id: str | None,
    ) -> None:
        if not call_id or call_id in self._calls or call_id in self._settled:
            return
        call = ToolCall(call_id, name, arguments, item_id=item_id, response_id=response_id)
        self._calls[call_id] = call
        self._ready.append(call)
        if response_id is not None:
            self._responses.setdefault(response_id, _ResponseCalls()).call_ids.append(call_id)

    def _follow_up(self, response_id: str) -> list[ClientEvent]:
        rc = self._responses.get(response_id)
        if rc is None or not rc.done or not rc.call_ids:
            return []
        if any(cid not in self._results for cid in rc.call_ids):
            return []
        # The response is settled: forget its calls so a long session does not grow.
        for cid in rc.call_ids:
            call = self._calls.pop(cid, None)
            if call is not None and call.item_id is not None:
                self._names.pop(call.item_id, None)
            self._results.pop(cid, None)
            self._settled[cid] = None
        while len(self._settled) > _SETTLED_LIMIT:
            self._settled.popitem(last=False)
        del self._responses[response_id]
        if not (self.auto_respond and rc.respond):
            return []
        if self.tracker is not None:
            return self.tracker.request_create(self.tracker.new_create())
        return [BetaResponseCreateEvent() if self.dialect == "beta" else ResponseCreateEvent()]
