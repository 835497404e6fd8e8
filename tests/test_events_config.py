"""SessionConfig: one configuration, encoded to both dialects and read back (issue 2, section 2).

The wire dicts are checked against the session schemas of each spec file with a small
validator written here (unknown keys are errors), and against the client event models
by parsing a ``session.update`` built from them. Values come from the spec enums.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import realtime.events as ev
from realtime.events import (
    FunctionTool,
    InputAudioTranscription,
    SemanticVad,
    ServerVad,
    SessionConfig,
)
from realtime.exceptions import ConfigError
from tests.spec_kit import load_spec

DIALECTS = ("beta", "ga")

# The spec schema of the `session` object of an update, per dialect and session kind.
SESSION_SCHEMAS = {
    ("beta", "realtime"): "RealtimeSessionCreateRequest",
    ("beta", "transcription"): "RealtimeTranscriptionSessionCreateRequest",
    ("ga", "realtime"): "RealtimeSessionCreateRequestGA",
    ("ga", "transcription"): "RealtimeTranscriptionSessionCreateRequestGA",
}
# The client event that carries that session.
UPDATE_EVENT = {
    ("beta", "realtime"): "session.update",
    ("beta", "transcription"): "transcription_session.update",
    ("ga", "realtime"): "session.update",
    ("ga", "transcription"): "session.update",
}

WEATHER = FunctionTool(
    name="get_weather",
    description="Current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)


# ---------------------------------------------------------------- a small spec validator


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _is_type(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "null":
        return value is None
    raise AssertionError(f"schema type {name!r} unknown to the test validator")


def schema_errors(value: Any, schema: dict[str, Any], spec: dict[str, Any], path: str) -> list[str]:
    """Why ``value`` does not match the OpenAPI ``schema`` (empty when it does).

    Strict about objects: a key the schema's ``properties`` do not list is an error
    unless ``additionalProperties`` allows it.
    """
    # Nullability is often said only in prose ("can be set to `null`"), sometimes beside a $ref.
    said_null = "`null`" in schema.get("description", "")
    schema = _resolve(schema, spec)
    nullable = (
        said_null
        or schema.get("nullable")
        or ("default" in schema and schema["default"] is None)
        or "`null`" in schema.get("description", "")
    )
    if value is None and nullable:
        return []
    errors: list[str] = []
    for key in ("anyOf", "oneOf"):
        if key in schema:
            branches = [schema_errors(value, b, spec, path) for b in schema[key]]
            if all(branches):
                errors.append(f"{path}: {value!r:.80} matches no {key} branch: {branches}")
    for branch in schema.get("allOf", []):
        errors += schema_errors(value, branch, spec, path)
    if "type" in schema:
        types = [schema["type"]] if isinstance(schema["type"], str) else schema["type"]
        if not any(_is_type(value, t) for t in types):
            return [*errors, f"{path}: {value!r:.80} is not of type {types}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r:.80} not in {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: {value!r:.80} is not {schema['const']!r}")
    if isinstance(value, dict) and "properties" in schema:
        props, extra = schema["properties"], schema.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                errors += schema_errors(item, props[key], spec, f"{path}.{key}")
            elif isinstance(extra, dict):
                errors += schema_errors(item, extra, spec, f"{path}.{key}")
            elif not extra:
                errors.append(f"{path}: key {key!r} is not in the spec")
        errors += [f"{path}: missing {k!r}" for k in schema.get("required", []) if k not in value]
    if isinstance(value, list):
        if "items" in schema:
            for i, item in enumerate(value):
                errors += schema_errors(item, schema["items"], spec, f"{path}[{i}]")
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{path}: fewer than {schema['minItems']} items")
    if _is_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: {value} > {schema['maximum']}")
    return errors


def assert_fits_spec(wire: dict[str, Any], dialect: str, kind: str) -> None:
    """The session dict matches its dialect's spec schema and the client event models."""
    spec = load_spec(dialect)
    schema = spec["components"]["schemas"][SESSION_SCHEMAS[dialect, kind]]
    errors = schema_errors(wire, schema, spec, "session")
    assert not errors, "\n".join(errors)
    update = {"type": UPDATE_EVENT[dialect, kind], "event_id": "evt_cfg", "session": wire}
    event = ev.parse_client_event(json.dumps(update), dialect=dialect)  # type: ignore[arg-type]
    assert type(event) is ev.client_event_types(dialect)[UPDATE_EVENT[dialect, kind]]  # type: ignore[arg-type]
    assert json.loads(ev.encode_client_event(event)) == update


def load_example(text: str) -> dict[str, Any]:
    """A spec example as a dict (drops // comments and trailing commas, which JSON forbids)."""
    text = re.sub(r"(^|\s)//.*$", r"\1", text, flags=re.M)
    text = re.sub(r",(\s*[}\]])", r"\1", text)
    value, _ = json.JSONDecoder().raw_decode(text.strip())  # some hold several: take the first
    return dict(value)


def spec_example(dialect: str, wire_type: str, side: str = "Server") -> dict[str, Any]:
    """The x-oaiMeta example of the event schema ``wire_type`` in the dialect's spec."""
    for name, schema in load_spec(dialect)["components"]["schemas"].items():
        if not name.startswith(f"Realtime{side}Event"):
            continue
        if schema.get("x-oaiMeta", {}).get("name") == wire_type:
            return load_example(schema["x-oaiMeta"]["example"])
    raise AssertionError(f"no {wire_type} example in the {dialect} spec")


# ---------------------------------------------------------------- full configurations


def full_beta() -> SessionConfig:
    """A realtime config with every field the beta dialect can express."""
    return SessionConfig(
        kind="realtime",
        model="gpt-4o-realtime-preview",
        instructions="Answer in one sentence.",
        output_modalities=["audio"],
        voice="sage",
        input_format="g711_ulaw",
        output_format="g711_alaw",
        turn_detection=ServerVad(
            threshold=0.6,
            prefix_padding_ms=250,
            silence_duration_ms=450,
            create_response=True,
            interrupt_response=False,
        ),
        transcription=InputAudioTranscription(
            model="whisper-1", language="en", prompt="Names: Ada, Grace."
        ),
        noise_reduction="far_field",
        tools=[WEATHER],
        tool_choice="required",
        temperature=0.7,
        max_output_tokens=512,
    )


def full_ga() -> SessionConfig:
    """A realtime config with every field the GA dialect can express."""
    return SessionConfig(
        kind="realtime",
        model="gpt-realtime",
        instructions="Answer in one sentence.",
        output_modalities=["audio"],
        voice="marin",
        speed=1.25,
        input_format="pcm16",
        output_format="g711_ulaw",
        turn_detection=ServerVad(
            threshold=0.4,
            prefix_padding_ms=300,
            silence_duration_ms=600,
            create_response=False,
            interrupt_response=True,
            idle_timeout_ms=6000,
        ),
        transcription=InputAudioTranscription(
            model="gpt-4o-transcribe",
            language="en",
            languages=["en", "pt"],
            keywords=["Lisbon"],
            prompt="Travel talk.",
            delay="low",
        ),
        noise_reduction="near_field",
        tools=[WEATHER, ev.McpTool(server_label="docs", server_url="https://mcp.example.com/sse")],
        tool_choice=ev.ToolChoiceFunction(name="get_weather"),
        max_output_tokens="inf",
        include=["item.input_audio_transcription.logprobs"],
        tracing=ev.TracingConfig(workflow_name="voice", group_id="g1", metadata={"k": "v"}),
        truncation=ev.TruncationRetentionRatio(
            retention_ratio=0.5, token_limits={"post_instructions": 1000}
        ),
        prompt=ev.Prompt(id="pmpt_123", version="2", variables={"city": "Lisbon"}),
        reasoning=ev.Reasoning(effort="low"),
        parallel_tool_calls=True,
    )


def full_transcription() -> SessionConfig:
    """A transcription-only config with every field both dialects can express."""
    return SessionConfig(
        kind="transcription",
        input_format="pcm16",
        transcription=InputAudioTranscription(model="gpt-4o-transcribe", language="en", prompt=""),
        noise_reduction="near_field",
        turn_detection=SemanticVad(eagerness="high", create_response=True),
        include=["item.input_audio_transcription.logprobs"],
    )


FULL = {"beta": full_beta, "ga": full_ga}


def server_echo(wire: dict[str, Any], dialect: str, kind: str) -> dict[str, Any]:
    """The session as a server would echo it: the wire dict plus server bookkeeping fields.

    A beta transcription session says what it is only through ``object`` (spec example
    of transcription_session.updated); the update's session dict itself cannot.
    """
    echo = json.loads(json.dumps(wire))
    echo["id"] = "sess_001"
    if dialect == "beta":
        echo["object"] = f"realtime.{'transcription_' if kind == 'transcription' else ''}session"
    else:
        echo["expires_at"] = 1756324625
        if kind == "realtime":
            echo["object"] = "realtime.session"
    return echo


def roundtrip(config: SessionConfig, dialect: str) -> tuple[dict[str, Any], SessionConfig]:
    """(wire dict, config read back from the server's echo of it)."""
    wire = config.to_wire(dialect)  # type: ignore[arg-type]
    back = SessionConfig.from_wire(server_echo(wire, dialect, config.kind), dialect)  # type: ignore[arg-type]
    return wire, back


def assert_same(config: SessionConfig, back: SessionConfig, dialect: str) -> None:
    """Equal values, the same fields set (kind aside), and the same wire encoding."""
    assert back == config
    assert back.model_fields_set - {"kind"} == config.model_fields_set - {"kind"}
    assert back.to_wire(dialect) == config.to_wire(dialect)  # type: ignore[arg-type]


# ---------------------------------------------------------------- round trips


def test_full_configs_cover_every_field() -> None:
    """Between them the full beta and GA configs set every field of SessionConfig."""
    covered = full_beta().model_fields_set | full_ga().model_fields_set
    assert covered == set(SessionConfig.model_fields), set(SessionConfig.model_fields) ^ covered


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_field_roundtrips(dialect: str) -> None:
    """A config with every field the dialect expresses survives to_wire then from_wire."""
    config = FULL[dialect]()
    _, back = roundtrip(config, dialect)
    assert_same(config, back, dialect)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_transcription_session_roundtrips(dialect: str) -> None:
    """A transcription-only config round-trips and keeps its kind."""
    config = full_transcription()
    _, back = roundtrip(config, dialect)
    assert back.kind == "transcription"
    assert_same(config, back, dialect)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "fields",
    [
        {"turn_detection": SemanticVad(eagerness="low", create_response=False)},
        {"turn_detection": None, "transcription": None, "noise_reduction": None},
        {"output_modalities": ["text"], "tool_choice": "none", "max_output_tokens": 1},
        {"tools": [], "instructions": ""},
        {"voice": "alloy"},
    ],
    ids=["semantic-vad", "features-off", "text-only", "cleared", "one-field"],
)
def test_variants_roundtrip(dialect: str, fields: dict[str, Any]) -> None:
    """Other shapes of the same fields (semantic VAD, nulls that turn features off, …)."""
    config = SessionConfig(**fields)
    wire, back = roundtrip(config, dialect)
    assert_same(config, back, dialect)
    assert_fits_spec(wire, dialect, "realtime")


@pytest.mark.parametrize("variant", ["auto", "disabled"])
def test_ga_string_forms_roundtrip(variant: str) -> None:
    """GA tracing "auto", truncation strings and a custom voice object round-trip."""
    config = SessionConfig(tracing="auto", truncation=variant, voice={"id": "voice_1234"})
    wire, back = roundtrip(config, "ga")
    assert_same(config, back, "ga")
    assert_fits_spec(wire, "ga", "realtime")


def test_only_given_fields_are_sent() -> None:
    """A config naming one field sends just that field (plus GA's session type)."""
    assert SessionConfig(voice="marin").to_wire("beta") == {"voice": "marin"}
    assert SessionConfig(voice="marin").to_wire("ga") == {
        "type": "realtime",
        "audio": {"output": {"voice": "marin"}},
    }


# ---------------------------------------------------------------- wire shapes


@pytest.mark.parametrize("dialect", DIALECTS)
def test_full_wire_fits_spec(dialect: str) -> None:
    """The full config's session dict matches the spec's session.update schema."""
    assert_fits_spec(FULL[dialect]().to_wire(dialect), dialect, "realtime")  # type: ignore[arg-type]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_transcription_wire_fits_spec(dialect: str) -> None:
    """The transcription config fits transcription_session.update (beta) / session.update (GA)."""
    wire = full_transcription().to_wire(dialect)  # type: ignore[arg-type]
    assert_fits_spec(wire, dialect, "transcription")


def test_beta_wire_is_flat() -> None:
    """Beta: flat keys with beta names and format strings."""
    wire = full_beta().to_wire("beta")
    assert "audio" not in wire and "type" not in wire
    assert wire["input_audio_format"] == "g711_ulaw"
    assert wire["output_audio_format"] == "g711_alaw"
    assert wire["modalities"] == ["text", "audio"]
    assert wire["voice"] == "sage"
    assert wire["input_audio_noise_reduction"] == {"type": "far_field"}
    assert wire["input_audio_transcription"] == {
        "model": "whisper-1",
        "language": "en",
        "prompt": "Names: Ada, Grace.",
    }
    assert wire["turn_detection"] == {
        "type": "server_vad",
        "threshold": 0.6,
        "prefix_padding_ms": 250,
        "silence_duration_ms": 450,
        "create_response": True,
        "interrupt_response": False,
    }
    assert wire["max_response_output_tokens"] == 512
    assert wire["temperature"] == 0.7
    assert wire["tools"][0]["name"] == "get_weather" and wire["tools"][0]["type"] == "function"


def test_ga_wire_is_nested() -> None:
    """GA: type, output_modalities and audio.input/audio.output with format objects."""
    wire = full_ga().to_wire("ga")
    assert wire["type"] == "realtime"
    assert wire["output_modalities"] == ["audio"]
    for flat in ("modalities", "voice", "input_audio_format", "output_audio_format",
                 "turn_detection", "input_audio_transcription", "temperature"):  # fmt: skip
        assert flat not in wire, flat
    audio_in, audio_out = wire["audio"]["input"], wire["audio"]["output"]
    assert audio_in["format"] == {"type": "audio/pcm", "rate": 24000}
    assert audio_out["format"] == {"type": "audio/pcmu"}
    assert audio_out["voice"] == "marin" and audio_out["speed"] == 1.25
    assert audio_in["noise_reduction"] == {"type": "near_field"}
    assert audio_in["turn_detection"]["idle_timeout_ms"] == 6000
    assert audio_in["transcription"]["languages"] == ["en", "pt"]
    assert wire["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert wire["max_output_tokens"] == "inf"


@pytest.mark.parametrize(
    ("name", "ga_format", "beta_format"),
    [
        ("pcm16", {"type": "audio/pcm", "rate": 24000}, "pcm16"),
        ("g711_ulaw", {"type": "audio/pcmu"}, "g711_ulaw"),
        ("g711_alaw", {"type": "audio/pcma"}, "g711_alaw"),
    ],
)
def test_audio_format_names(name: str, ga_format: dict[str, Any], beta_format: str) -> None:
    """Each format name maps to the beta string and the GA format object, and back."""
    config = SessionConfig(input_format=name, output_format=name)
    assert config.to_wire("beta")["input_audio_format"] == beta_format
    assert config.to_wire("beta")["output_audio_format"] == beta_format
    ga = config.to_wire("ga")["audio"]
    assert ga["input"]["format"] == ga_format and ga["output"]["format"] == ga_format
    for dialect in DIALECTS:
        _, back = roundtrip(config, dialect)
        assert back.input_format == back.output_format == name


# ---------------------------------------------------------------- what a dialect cannot say


GA_ONLY = [
    ("speed", {"speed": 1.2}),
    ("tracing", {"tracing": "auto"}),
    ("truncation", {"truncation": "disabled"}),
    ("prompt", {"prompt": ev.Prompt(id="pmpt_1")}),
    ("reasoning", {"reasoning": ev.Reasoning(effort="low")}),
    ("parallel_tool_calls", {"parallel_tool_calls": False}),
    ("voice", {"voice": {"id": "voice_1234"}}),
    ("idle_timeout_ms", {"turn_detection": ServerVad(idle_timeout_ms=6000)}),
    ("languages", {"transcription": InputAudioTranscription(languages=["en"])}),
    ("keywords", {"transcription": InputAudioTranscription(keywords=["x"])}),
    ("delay", {"transcription": InputAudioTranscription(delay="low")}),
    ("mcp", {"tools": [ev.McpTool(server_label="docs", server_url="https://x.example")]}),
    ("tool_choice", {"tool_choice": ev.ToolChoiceFunction(name="get_weather")}),
    ("include", {"include": ["item.input_audio_transcription.logprobs"]}),
]


@pytest.mark.parametrize(("name", "fields"), GA_ONLY, ids=[n for n, _ in GA_ONLY])
def test_ga_only_field_in_beta_is_config_error(name: str, fields: dict[str, Any]) -> None:
    """A field the beta session schema has no place for raises ConfigError when encoding."""
    config = SessionConfig(**fields)  # building it is fine: the error is at encode time
    assert config.to_wire("ga")
    with pytest.raises(ConfigError) as info:
        config.to_wire("beta")
    assert len(str(info.value)) < 500


def test_ga_only_field_error_names_the_field() -> None:
    """The ConfigError says which field beta cannot express."""
    with pytest.raises(ConfigError, match="speed"):
        SessionConfig(voice="sage", speed=1.2).to_wire("beta")


def test_beta_only_field_in_ga_is_config_error() -> None:
    """temperature exists only in the beta session schema: ConfigError for GA, naming it."""
    config = SessionConfig(temperature=0.8)
    assert config.to_wire("beta") == {"temperature": 0.8}
    with pytest.raises(ConfigError, match="temperature"):
        config.to_wire("ga")


def test_full_configs_fail_in_the_other_dialect() -> None:
    """The full GA config cannot be sent as beta, nor the full beta config as GA."""
    with pytest.raises(ConfigError):
        full_ga().to_wire("beta")
    with pytest.raises(ConfigError):
        full_beta().to_wire("ga")


def test_invalid_values_are_config_errors() -> None:
    """An unknown format name or field is a ConfigError, not a pydantic error."""
    with pytest.raises(ConfigError):
        SessionConfig(input_format="mp3")
    with pytest.raises(ConfigError):
        SessionConfig(volume=11)


# ---------------------------------------------------------------- reading sessions back


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("wire_type", ["session.created", "session.updated"])
def test_spec_session_examples_give_a_config(dialect: str, wire_type: str) -> None:
    """session.created/updated examples of either spec read back into a SessionConfig."""
    example = spec_example(dialect, wire_type)
    config = SessionConfig.from_wire(example["session"], dialect)  # type: ignore[arg-type]
    assert isinstance(config, SessionConfig)
    assert config.kind == "realtime"
    parsed = ev.parse_server_event(json.dumps(example), dialect=dialect)  # type: ignore[arg-type]
    session = json.loads(ev.encode_server_event(parsed))["session"]
    assert SessionConfig.from_wire(session, dialect) == config  # type: ignore[arg-type]


def test_beta_session_created_values() -> None:
    """The beta session.created example reads as the values it holds."""
    config = SessionConfig.from_wire(spec_example("beta", "session.created")["session"], "beta")
    assert config.voice == "sage"
    assert config.input_format == config.output_format == "pcm16"
    assert config.output_modalities == ["audio"]
    assert config.transcription is None
    assert config.turn_detection == ServerVad(
        threshold=0.5, prefix_padding_ms=300, silence_duration_ms=200
    )
    assert config.temperature == 0.8
    assert config.max_output_tokens == "inf"
    assert config.tools == [] and config.tool_choice == "auto"


def test_beta_session_updated_values() -> None:
    """The beta session.updated example: text only, VAD off, whisper transcription."""
    config = SessionConfig.from_wire(spec_example("beta", "session.updated")["session"], "beta")
    assert config.output_modalities == ["text"]
    assert config.turn_detection is None
    assert config.transcription == InputAudioTranscription(model="whisper-1")
    assert config.tool_choice == "none"
    assert config.max_output_tokens == 200


def test_ga_session_created_values() -> None:
    """The GA session.created example reads as the values it holds."""
    config = SessionConfig.from_wire(spec_example("ga", "session.created")["session"], "ga")
    assert config.model == "gpt-realtime-2025-08-28"
    assert config.voice == "marin" and config.speed == 1
    assert config.input_format == config.output_format == "pcm16"
    assert config.output_modalities == ["audio"]
    assert config.transcription is None and config.noise_reduction is None
    assert isinstance(config.turn_detection, ServerVad)
    assert config.turn_detection.silence_duration_ms == 200
    assert config.turn_detection.create_response is True
    assert config.max_output_tokens == "inf"


def test_ga_session_updated_tools() -> None:
    """The GA session.updated example's function tool reads back as a FunctionTool."""
    config = SessionConfig.from_wire(spec_example("ga", "session.updated")["session"], "ga")
    assert config.tools is not None and len(config.tools) == 1
    tool = config.tools[0]
    assert isinstance(tool, FunctionTool)
    assert tool.name == "display_color_palette"
    assert tool.parameters is not None and tool.parameters["required"] == ["theme", "colors"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_spec_update_examples_give_a_config(dialect: str) -> None:
    """The session of each spec's session.update example reads back and re-encodes equal."""
    session = spec_example(dialect, "session.update", side="Client")["session"]
    config = SessionConfig.from_wire(session, dialect)  # type: ignore[arg-type]
    assert config.to_wire(dialect) == session  # type: ignore[arg-type]


def test_beta_transcription_session_example() -> None:
    """The beta transcription_session.updated example reads as a transcription config."""
    session = spec_example("beta", "transcription_session.updated")["session"]
    config = SessionConfig.from_wire(session, "beta")
    assert config.kind == "transcription"
    assert config.noise_reduction == "near_field"
    assert config.transcription is not None
    assert config.transcription.model == "gpt-4o-transcribe"
