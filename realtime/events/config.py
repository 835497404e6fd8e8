"""SessionConfig: the one session configuration an application writes.

:meth:`SessionConfig.to_wire` encodes it as the ``session`` object of either dialect:
flat for beta (``input_audio_format``, ``turn_detection``, ``modalities``, …; a
transcription session goes in ``transcription_session.update``), nested for GA
(``type``, ``output_modalities``, ``audio.input.{format, transcription,
noise_reduction, turn_detection}``, ``audio.output.{format, voice, speed}``).
:meth:`SessionConfig.from_wire` reads a ``session.created``/``updated`` session of
either dialect back.  Only the fields an application set are written; a set field the
chosen dialect cannot express raises :class:`~realtime.exceptions.ConfigError`
(``None`` for a feature the dialect lacks is simply "not used" and is omitted).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ..exceptions import ConfigError
from .base import ClientEvent
from .common import (
    FunctionTool,
    InputAudioTranscription,
    Prompt,
    Reasoning,
    Tool,
    ToolChoiceFunction,
    ToolChoiceMcp,
    TracingConfig,
    TruncationRetentionRatio,
    TurnDetection,
)
from .registry import Dialect
from .session import (
    BetaSession,
    BetaSessionUpdateEvent,
    BetaTranscriptionSession,
    SessionUpdateEvent,
    TranscriptionSessionUpdateEvent,
)

__all__ = ["AudioFormat", "SessionConfig", "SessionKind"]

AudioFormat = Literal["pcm16", "g711_ulaw", "g711_alaw"]
"""Audio format names applications use (beta wire names)."""

SessionKind = Literal["realtime", "transcription"]
"""A speech-to-speech session or a transcription-only session."""

# GA ``RealtimeAudioFormats`` objects for each application-facing name.
_GA_FORMATS: dict[str, dict[str, Any]] = {
    "pcm16": {"type": "audio/pcm", "rate": 24000},
    "g711_ulaw": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
}
_GA_FORMAT_NAMES = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}

# Fields a transcription session can carry (everything else is about the model's output).
_TRANSCRIPTION_FIELDS = frozenset(
    {"kind", "input_format", "transcription", "noise_reduction", "turn_detection", "include"}
)
# Fields only GA sessions have, and the single beta-only field.
_GA_ONLY = ("tracing", "truncation", "prompt", "reasoning", "parallel_tool_calls", "speed")
_BETA_ONLY = ("temperature",)
# Transcription settings beta's ``input_audio_transcription`` has no place for.
_GA_ONLY_TRANSCRIPTION = ("languages", "keywords", "delay")


class SessionConfig(BaseModel):
    """A session configuration, independent of the dialect.

    Every field is optional; only the fields given are sent, so ``SessionConfig(voice=
    "marin")`` changes just the voice.  ``turn_detection=None``, ``transcription=None``
    and ``noise_reduction=None`` given explicitly turn those features off.  Invalid
    values raise :class:`~realtime.exceptions.ConfigError`.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    kind: SessionKind = "realtime"
    model: str | None = None
    instructions: str | None = None
    output_modalities: list[str] | None = None
    voice: str | dict[str, Any] | None = None
    speed: float | None = None
    input_format: AudioFormat | None = None
    output_format: AudioFormat | None = None
    turn_detection: TurnDetection | None = None
    transcription: InputAudioTranscription | None = None
    noise_reduction: str | None = None
    tools: list[Tool] | None = None
    tool_choice: str | ToolChoiceFunction | ToolChoiceMcp | None = None
    temperature: float | None = None
    max_output_tokens: int | Literal["inf"] | None = None
    include: list[str] | None = None
    tracing: Literal["auto"] | TracingConfig | None = None
    truncation: str | TruncationRetentionRatio | None = None
    prompt: Prompt | None = None
    reasoning: Reasoning | None = None
    parallel_tool_calls: bool | None = None

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(f"invalid session configuration: {exc}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise ConfigError(f"invalid session configuration: {exc}") from None

    # --- encoding --------------------------------------------------------------------------

    def to_wire(self, dialect: Dialect) -> dict[str, Any]:
        """Return the ``session`` object of an update in ``dialect`` (a fresh dict).

        Raises :class:`~realtime.exceptions.ConfigError` when a set field cannot be
        expressed in ``dialect`` (for example ``temperature`` in GA, ``tracing`` in
        beta) or in the session kind (``voice`` in a transcription session).
        """
        given = self._given()
        if self.kind == "transcription":
            extra = sorted(
                name
                for name, value in given.items()
                if name not in _TRANSCRIPTION_FIELDS and value is not None
            )
            if extra:
                raise ConfigError(f"a transcription session has no {', '.join(extra)}")
        if dialect == "beta":
            return self._to_beta(given)
        if dialect == "ga":
            return self._to_ga(given)
        raise ConfigError(f"unknown dialect {dialect!r} (expected 'beta' or 'ga')")

    def to_event(self, dialect: Dialect) -> ClientEvent:
        """Return the client event that applies this configuration in ``dialect``.

        ``session.update`` (beta or GA shape), or ``transcription_session.update`` for a
        beta transcription session.  Raises ConfigError like :meth:`to_wire`.
        """
        session = self.to_wire(dialect)
        try:
            if dialect == "ga":
                return SessionUpdateEvent(session=session)
            if self.kind == "transcription":
                return TranscriptionSessionUpdateEvent(
                    session=BetaTranscriptionSession.model_validate(session)
                )
            return BetaSessionUpdateEvent(session=BetaSession.model_validate(session))
        except ValidationError as exc:
            raise ConfigError(f"session configuration does not fit {dialect}: {exc}") from None

    def _given(self) -> dict[str, Any]:
        """The fields the application set, ``kind`` always included."""
        given = {name: getattr(self, name) for name in self.model_fields_set}
        given["kind"] = self.kind
        return given

    def _to_beta(self, given: dict[str, Any]) -> dict[str, Any]:
        _refuse(given, _GA_ONLY, "beta")
        wire: dict[str, Any] = {}
        if "model" in given:
            wire["model"] = given["model"]
        if "instructions" in given:
            wire["instructions"] = given["instructions"]
        if "output_modalities" in given:
            modes = given["output_modalities"]
            wire["modalities"] = None if modes is None else _beta_modalities(modes)
        if "voice" in given:
            if isinstance(given["voice"], dict):
                raise ConfigError("beta cannot express a custom voice object")
            wire["voice"] = given["voice"]
        if "input_format" in given:
            wire["input_audio_format"] = given["input_format"]
        if "output_format" in given:
            wire["output_audio_format"] = given["output_format"]
        if "transcription" in given:
            wire["input_audio_transcription"] = _beta_transcription(given["transcription"])
        if "turn_detection" in given:
            wire["turn_detection"] = _beta_turn_detection(given["turn_detection"])
        if "noise_reduction" in given:
            wire["input_audio_noise_reduction"] = _noise(given["noise_reduction"])
        if "tools" in given:
            wire["tools"] = _tools(given["tools"], "beta")
        if "tool_choice" in given:
            choice = given["tool_choice"]
            if choice is not None and not isinstance(choice, str):
                raise ConfigError("beta's tool_choice is a string ('auto', 'none', 'required')")
            wire["tool_choice"] = choice
        if "temperature" in given:
            wire["temperature"] = given["temperature"]
        if "max_output_tokens" in given:
            wire["max_response_output_tokens"] = given["max_output_tokens"]
        if "include" in given and given["include"] is not None:
            if self.kind != "transcription":
                raise ConfigError("beta can express 'include' only in a transcription session")
            wire["include"] = list(given["include"])
        return wire

    def _to_ga(self, given: dict[str, Any]) -> dict[str, Any]:
        _refuse(given, _BETA_ONLY, "GA")
        wire: dict[str, Any] = {"type": self.kind}
        audio_in: dict[str, Any] = {}
        audio_out: dict[str, Any] = {}
        for name in ("model", "instructions", "output_modalities", "max_output_tokens"):
            if name in given:
                wire[name] = _plain(given[name])
        if "input_format" in given:
            audio_in["format"] = _ga_format(given["input_format"])
        if "transcription" in given:
            audio_in["transcription"] = _plain(given["transcription"])
        if "noise_reduction" in given:
            audio_in["noise_reduction"] = _noise(given["noise_reduction"])
        if "turn_detection" in given:
            audio_in["turn_detection"] = _plain(given["turn_detection"])
        if "output_format" in given:
            audio_out["format"] = _ga_format(given["output_format"])
        for name in ("voice", "speed"):
            if name in given:
                audio_out[name] = _plain(given[name])
        if audio_in or audio_out:
            wire["audio"] = {}
            if audio_in:
                wire["audio"]["input"] = audio_in
            if audio_out:
                wire["audio"]["output"] = audio_out
        if "tools" in given:
            wire["tools"] = _tools(given["tools"], "ga")
        for name in ("tool_choice", "include", "tracing", "truncation", "prompt", "reasoning"):
            if name in given:
                wire[name] = _plain(given[name])
        if "parallel_tool_calls" in given:
            wire["parallel_tool_calls"] = given["parallel_tool_calls"]
        return wire

    # --- decoding --------------------------------------------------------------------------

    @classmethod
    def from_wire(
        cls, session: Mapping[str, Any], dialect: Dialect, *, kind: SessionKind | None = None
    ) -> SessionConfig:
        """Read the ``session`` of a ``session.created``/``updated`` event (or of an update).

        ``kind`` is taken from the session (GA ``type``, beta ``object``) unless given.
        Server bookkeeping (``id``, ``object``, ``expires_at``, ``client_secret``) and
        fields this class does not model are ignored.  Raises
        :class:`~realtime.exceptions.ConfigError` for values it cannot represent.
        """
        if dialect == "beta":
            data = _from_beta(session)
            if kind is None and session.get("object") == "realtime.transcription_session":
                kind = "transcription"
        elif dialect == "ga":
            data = _from_ga(session)
            if kind is None and session.get("type") in ("realtime", "transcription"):
                kind = session["type"]
        else:
            raise ConfigError(f"unknown dialect {dialect!r} (expected 'beta' or 'ga')")
        if kind is not None:
            data["kind"] = kind
        return cls(**data)


# --- helpers -------------------------------------------------------------------------------


def _refuse(given: Mapping[str, Any], names: tuple[str, ...], dialect: str) -> None:
    """ConfigError for each of ``names`` given with a value the dialect cannot carry."""
    bad = [name for name in names if given.get(name) is not None]
    if bad:
        raise ConfigError(f"{dialect} sessions cannot express {', '.join(bad)}")


def _plain(value: Any) -> Any:
    """A JSON-ready copy of a field value (models dumped without their unset fields)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return dict(value)
    return value


def _beta_modalities(modes: list[str]) -> list[str]:
    # Beta ["text", "audio"] is GA ["audio"] (audio with its transcript).
    return ["text", "audio"] if "audio" in modes else list(modes)


def _noise(value: str | None) -> dict[str, Any] | None:
    return None if value is None else {"type": value}


def _ga_format(name: str | None) -> dict[str, Any] | None:
    return None if name is None else dict(_GA_FORMATS[name])


def _beta_transcription(value: InputAudioTranscription | None) -> dict[str, Any] | None:
    if value is None:
        return None
    wire: dict[str, Any] = _plain(value)
    bad = [name for name in _GA_ONLY_TRANSCRIPTION if wire.get(name) is not None]
    if bad:
        raise ConfigError(f"beta transcription cannot express {', '.join(bad)}")
    return wire


def _beta_turn_detection(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    wire: dict[str, Any] = _plain(value)
    if wire.get("idle_timeout_ms") is not None:
        raise ConfigError("beta turn detection cannot express idle_timeout_ms")
    wire.pop("idle_timeout_ms", None)
    return wire


def _tools(tools: list[Any] | None, dialect: str) -> list[dict[str, Any]] | None:
    if tools is None:
        return None
    if dialect == "beta":
        for tool in tools:
            if not isinstance(tool, FunctionTool):
                raise ConfigError(f"beta sessions only have function tools, not {tool.type!r}")
    out: list[dict[str, Any]] = _plain(tools)
    return out


def _format_name(value: Any) -> str | None:
    """The application name of a GA format object (``None`` stays ``None``)."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or value.get("type") not in _GA_FORMAT_NAMES:
        raise ConfigError(f"unsupported audio format {value!r}")
    name = _GA_FORMAT_NAMES[value["type"]]
    if name == "pcm16" and value.get("rate", 24000) != 24000:
        raise ConfigError(f"unsupported PCM rate {value.get('rate')!r} (expected 24000)")
    return name


def _from_beta(session: Mapping[str, Any]) -> dict[str, Any]:
    """SessionConfig fields of a flat beta session."""
    names = {
        "model": "model",
        "instructions": "instructions",
        "voice": "voice",
        "input_audio_format": "input_format",
        "output_audio_format": "output_format",
        "input_audio_transcription": "transcription",
        "turn_detection": "turn_detection",
        "tools": "tools",
        "tool_choice": "tool_choice",
        "temperature": "temperature",
        "max_response_output_tokens": "max_output_tokens",
        "include": "include",
    }
    data = {ours: session[theirs] for theirs, ours in names.items() if theirs in session}
    if "modalities" in session:
        modes = session["modalities"]
        data["output_modalities"] = (
            None if modes is None else (["audio"] if "audio" in modes else list(modes))
        )
    if "input_audio_noise_reduction" in session:
        data["noise_reduction"] = _noise_type(session["input_audio_noise_reduction"])
    return data


def _from_ga(session: Mapping[str, Any]) -> dict[str, Any]:
    """SessionConfig fields of a nested GA session."""
    names = (
        "model",
        "instructions",
        "output_modalities",
        "max_output_tokens",
        "tools",
        "tool_choice",
        "include",
        "tracing",
        "truncation",
        "prompt",
        "reasoning",
        "parallel_tool_calls",
    )
    data = {name: session[name] for name in names if name in session}
    audio = session.get("audio") or {}
    audio_in = audio.get("input") or {}
    audio_out = audio.get("output") or {}
    if "format" in audio_in:
        data["input_format"] = _format_name(audio_in["format"])
    if "transcription" in audio_in:
        data["transcription"] = audio_in["transcription"]
    if "noise_reduction" in audio_in:
        data["noise_reduction"] = _noise_type(audio_in["noise_reduction"])
    if "turn_detection" in audio_in:
        data["turn_detection"] = audio_in["turn_detection"]
    if "format" in audio_out:
        data["output_format"] = _format_name(audio_out["format"])
    for name in ("voice", "speed"):
        if name in audio_out:
            data[name] = audio_out[name]
    return data


def _noise_type(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not isinstance(value.get("type"), str):
        raise ConfigError(f"unsupported noise reduction {value!r}")
    kind: str = value["type"]
    return kind
