"""Client input checked against the spec before the server acts on it.

:func:`check_session` walks a ``session`` object of either dialect (``session.update``,
``transcription_session.update``, the mint endpoints) and raises
:class:`~.exceptions.InvalidValue` naming the offending field (``session.audio.input.
turn_detection.threshold``) for a value outside the spec's ranges and enumerations: VAD
threshold within 0..1 and finite, non-negative durations, ``output_modalities`` of ``text``
or ``audio``, a voice that is a string (or a GA custom voice ``{"id": …}``), known audio
formats, speed within 0.25..1.5, ``max_output_tokens`` within 1..4096 or ``"inf"``.

:func:`load_frame` parses a client frame with bounded nesting (:class:`~.exceptions.
LimitExceeded` ``nesting_too_deep``, never a ``RecursionError``). Pure functions, no I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .exceptions import InvalidValue, LimitExceeded

__all__ = ["check_response", "check_session", "json_depth_exceeds", "load_frame"]

MODALITIES = ("text", "audio")
GA_FORMATS = ("audio/pcm", "audio/pcmu", "audio/pcma")
BETA_FORMATS = ("pcm16", "g711_ulaw", "g711_alaw")
NOISE_REDUCTION = ("near_field", "far_field")
EAGERNESS = ("low", "medium", "high", "auto")
TOOL_CHOICES = ("auto", "none", "required")
INCLUDE = ("item.input_audio_transcription.logprobs",)
SESSION_TYPES = ("realtime", "transcription")


def load_frame(frame: str | bytes, max_depth: int) -> Any:
    """Parse a JSON frame; :class:`LimitExceeded` when nested deeper than ``max_depth``.

    Raises ``ValueError`` for invalid JSON (``json.JSONDecodeError``, undecodable bytes).
    """
    text = frame.decode("utf-8") if isinstance(frame, bytes) else frame
    # at most as many levels as opening brackets: most frames are decided without a walk
    if text.count("[") + text.count("{") > max_depth:
        try:
            data = json.loads(text)
        except RecursionError:
            raise _too_deep(max_depth) from None
        if json_depth_exceeds(data, max_depth):
            raise _too_deep(max_depth)
        return data
    return json.loads(text)


def _too_deep(max_depth: int) -> LimitExceeded:
    return LimitExceeded(
        f"The event is nested more than {max_depth} levels deep.", code="nesting_too_deep"
    )


def json_depth_exceeds(value: Any, max_depth: int) -> bool:
    """Whether parsed JSON nests containers more than ``max_depth`` levels (iterative)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


# --- session objects ------------------------------------------------------------------------


def check_session(session: Any, dialect: str, *, param: str = "session") -> None:
    """Raise :class:`InvalidValue` for the first value of ``session`` the spec does not allow."""
    if not isinstance(session, Mapping):
        raise InvalidValue("The session must be an object.", param=param)
    if dialect == "ga":
        _check_ga(session, param)
    else:
        _check_beta(session, param)


def check_response(response: Any, dialect: str, *, param: str = "response") -> None:
    """Raise :class:`InvalidValue` for a ``response.create`` override the spec does not allow."""
    if response is None:
        return
    if not isinstance(response, Mapping):
        raise InvalidValue("The response must be an object.", param=param)
    p = param
    _opt_str(response, "instructions", p)
    if "max_output_tokens" in response:
        _max_tokens(response["max_output_tokens"], f"{p}.max_output_tokens")
    if "max_response_output_tokens" in response:
        _max_tokens(response["max_response_output_tokens"], f"{p}.max_response_output_tokens")
    _tools(response, p)
    conversation = response.get("conversation")
    if conversation is not None and not isinstance(conversation, str):
        raise InvalidValue("'conversation' must be 'auto' or 'none'.", param=f"{p}.conversation")
    if dialect == "ga":
        if response.get("output_modalities") is not None:
            _modalities(response["output_modalities"], f"{p}.output_modalities", single=True)
        audio = _opt_obj(response, "audio", p)
        out = _opt_obj(audio, "output", f"{p}.audio") if audio is not None else None
        if out is not None:
            if "voice" in out:
                _voice(out["voice"], f"{p}.audio.output.voice", custom=True)
            if "format" in out:
                _ga_format(out["format"], f"{p}.audio.output.format")
    else:
        if response.get("modalities") is not None:
            _modalities(response["modalities"], f"{p}.modalities", single=False)
        if "voice" in response:
            _voice(response["voice"], f"{p}.voice", custom=False)
        if "output_audio_format" in response:
            _enum(response["output_audio_format"], BETA_FORMATS, f"{p}.output_audio_format")
        if response.get("temperature") is not None:
            _number(response["temperature"], f"{p}.temperature", 0.6, 1.2)


def _check_ga(s: Mapping[str, Any], p: str) -> None:
    if "type" in s:
        _enum(s["type"], SESSION_TYPES, f"{p}.type")
    _opt_str(s, "instructions", p)
    _opt_str(s, "model", p)
    if "output_modalities" in s and s["output_modalities"] is not None:
        _modalities(s["output_modalities"], f"{p}.output_modalities", single=True)
    if "max_output_tokens" in s:
        _max_tokens(s["max_output_tokens"], f"{p}.max_output_tokens")
    _tools(s, p)
    _include(s, p)
    audio = _opt_obj(s, "audio", p)
    if audio is None:
        return
    inp = _opt_obj(audio, "input", f"{p}.audio")
    if inp is not None:
        q = f"{p}.audio.input"
        if "format" in inp:
            _ga_format(inp["format"], f"{q}.format")
        _transcription(inp, "transcription", q)
        _noise(inp, "noise_reduction", q)
        if "turn_detection" in inp:
            _turn_detection(inp["turn_detection"], f"{q}.turn_detection")
    out = _opt_obj(audio, "output", f"{p}.audio")
    if out is not None:
        q = f"{p}.audio.output"
        if "format" in out:
            _ga_format(out["format"], f"{q}.format")
        if "voice" in out:
            _voice(out["voice"], f"{q}.voice", custom=True)
        if "speed" in out:
            _number(out["speed"], f"{q}.speed", 0.25, 1.5)


def _check_beta(s: Mapping[str, Any], p: str) -> None:
    _opt_str(s, "instructions", p)
    _opt_str(s, "model", p)
    if "modalities" in s and s["modalities"] is not None:
        _modalities(s["modalities"], f"{p}.modalities", single=False)
    if "voice" in s:
        _voice(s["voice"], f"{p}.voice", custom=False)
    for name in ("input_audio_format", "output_audio_format"):
        if name in s:
            _enum(s[name], BETA_FORMATS, f"{p}.{name}")
    _transcription(s, "input_audio_transcription", p)
    _noise(s, "input_audio_noise_reduction", p)
    if "turn_detection" in s:
        _turn_detection(s["turn_detection"], f"{p}.turn_detection")
    if "temperature" in s and s["temperature"] is not None:
        _number(s["temperature"], f"{p}.temperature", 0.6, 1.2)
    if "speed" in s and s["speed"] is not None:
        _number(s["speed"], f"{p}.speed", 0.25, 1.5)
    if "max_response_output_tokens" in s:
        _max_tokens(s["max_response_output_tokens"], f"{p}.max_response_output_tokens")
    _tools(s, p)
    _include(s, p)


def _turn_detection(td: Any, p: str) -> None:
    if td is None:
        return
    if not isinstance(td, Mapping):
        raise InvalidValue("Turn detection must be an object or null.", param=p)
    kind = td.get("type", "server_vad")
    _enum(kind, ("server_vad", "semantic_vad"), f"{p}.type")
    for name in ("create_response", "interrupt_response"):
        if name in td and not isinstance(td[name], bool):
            raise InvalidValue(f"'{name}' must be a boolean.", param=f"{p}.{name}")
    if kind == "semantic_vad":
        if "eagerness" in td:
            _enum(td["eagerness"], EAGERNESS, f"{p}.eagerness")
        return
    if "threshold" in td and td["threshold"] is not None:
        _number(td["threshold"], f"{p}.threshold", 0.0, 1.0)
    for name in ("prefix_padding_ms", "silence_duration_ms"):
        if name in td and td[name] is not None:
            _integer(td[name], f"{p}.{name}", 0, 60_000)
    if td.get("idle_timeout_ms") is not None:
        _integer(td["idle_timeout_ms"], f"{p}.idle_timeout_ms", 5000, 30_000)


def _transcription(s: Mapping[str, Any], name: str, p: str) -> None:
    value = s.get(name)
    if name not in s or value is None:
        return
    q = f"{p}.{name}"
    if not isinstance(value, Mapping):
        raise InvalidValue("Transcription must be an object or null.", param=q)
    for field in ("model", "language", "prompt"):
        _opt_str(value, field, q)


def _noise(s: Mapping[str, Any], name: str, p: str) -> None:
    value = s.get(name)
    if name not in s or value is None:
        return
    if not isinstance(value, Mapping):
        raise InvalidValue("Noise reduction must be an object or null.", param=f"{p}.{name}")
    _enum(value.get("type"), NOISE_REDUCTION, f"{p}.{name}.type")


def _ga_format(fmt: Any, p: str) -> None:
    if fmt is None:
        return
    if not isinstance(fmt, Mapping):
        raise InvalidValue("An audio format must be an object.", param=p)
    _enum(fmt.get("type"), GA_FORMATS, f"{p}.type")
    if fmt.get("type") == "audio/pcm" and fmt.get("rate", 24000) != 24000:
        raise InvalidValue(
            f"Invalid value: {fmt.get('rate')!r}. Supported values are: 24000.",
            param=f"{p}.rate",
        )


def _voice(voice: Any, p: str, *, custom: bool) -> None:
    if isinstance(voice, str) and voice.strip() and len(voice) <= 256:
        return
    if custom and isinstance(voice, Mapping) and isinstance(voice.get("id"), str):
        return
    want = "a voice name or an object with an 'id'" if custom else "a voice name (a string)"
    raise InvalidValue(f"Invalid 'voice': expected {want}.", param=p)


def _modalities(value: Any, p: str, *, single: bool) -> None:
    if not isinstance(value, list) or not value:
        raise InvalidValue("Modalities must be a non-empty list.", param=p)
    for mode in value:
        _enum(mode, MODALITIES, p)
    if single and len(set(value)) > 1:
        raise InvalidValue(
            "output_modalities takes either ['text'] or ['audio'], not both.", param=p
        )


def _max_tokens(value: Any, p: str) -> None:
    if value is None or value == "inf":
        return
    _integer(value, p, 1, 4096)


def _tools(s: Mapping[str, Any], p: str) -> None:
    if "tools" in s and s["tools"] is not None:
        tools = s["tools"]
        if not isinstance(tools, list) or not all(isinstance(t, Mapping) for t in tools):
            raise InvalidValue("'tools' must be a list of objects.", param=f"{p}.tools")
    if "tool_choice" in s and s["tool_choice"] is not None:
        choice = s["tool_choice"]
        if isinstance(choice, str):
            return
        if not isinstance(choice, Mapping):
            raise InvalidValue(
                "'tool_choice' must be 'auto', 'none', 'required' or an object.",
                param=f"{p}.tool_choice",
            )


def _include(s: Mapping[str, Any], p: str) -> None:
    if "include" in s and s["include"] is not None:
        if not isinstance(s["include"], list):
            raise InvalidValue("'include' must be a list.", param=f"{p}.include")
        for entry in s["include"]:
            _enum(entry, INCLUDE, f"{p}.include")


def _opt_obj(s: Mapping[str, Any], name: str, p: str) -> Mapping[str, Any] | None:
    value = s.get(name)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidValue(f"'{name}' must be an object.", param=f"{p}.{name}")
    return value


def _opt_str(s: Mapping[str, Any], name: str, p: str) -> None:
    if name in s and s[name] is not None and not isinstance(s[name], str):
        raise InvalidValue(f"'{name}' must be a string.", param=f"{p}.{name}")


def _enum(value: Any, allowed: tuple[str, ...], p: str) -> None:
    if not isinstance(value, str) or value not in allowed:
        shown = json.dumps(value)[:60] if _jsonable(value) else type(value).__name__
        raise InvalidValue(
            f"Invalid value: {shown}. Supported values are: "
            + ", ".join(f"'{a}'" for a in allowed)
            + ".",
            param=p,
        )


def _number(value: Any, p: str, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValue(f"'{p.rsplit('.', 1)[-1]}' must be a number.", param=p)
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidValue(
            f"Invalid '{p.rsplit('.', 1)[-1]}': {value!r}. Expected a number from {low} to {high}.",
            param=p,
        )


def _integer(value: Any, p: str, low: int, high: int) -> None:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidValue(
            f"Invalid '{p.rsplit('.', 1)[-1]}': {value!r}. Expected an integer from {low} to "
            f"{high}.",
            param=p,
        )


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return False
    return True
