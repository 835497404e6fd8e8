"""Unit tests of the realtime.events models: construction, encoding rules, strictness,
forward compatibility, naming, the dialect helpers and SessionConfig's wire shapes."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

import realtime.events as ev
from realtime.exceptions import ConfigError, ProtocolError

DIALECTS = ("beta", "ga")


def _frame(obj: dict[str, Any]) -> bytes:
    """Compact JSON bytes of ``obj``."""
    return json.dumps(obj, separators=(",", ":")).encode()


def _ga_delta(**overrides: Any) -> dict[str, Any]:
    """A GA audio delta event as a dict."""
    event = {
        "event_id": "event_1",
        "type": "response.output_audio.delta",
        "response_id": "resp_1",
        "item_id": "item_1",
        "output_index": 0,
        "content_index": 0,
        "delta": "AAAA",
    }
    event.update(overrides)
    return event


# ----------------------------------------------------------------------- naming, tables


@pytest.mark.parametrize("dialect", DIALECTS)
def test_class_names_follow_the_wire_types(dialect: str) -> None:
    """Each class is CamelCase(wire type) + "Event", prefixed "Beta" where GA shares the type."""
    tables = [ev.server_event_types(dialect), ev.client_event_types(dialect)]
    other = "ga" if dialect == "beta" else "beta"
    other_tables = [ev.server_event_types(other), ev.client_event_types(other)]
    for table, other_table in zip(tables, other_tables, strict=True):
        for wire, cls in table.items():
            plain = "".join(part.capitalize() for part in re.split(r"[._]", wire)) + "Event"
            shared_type_differs = wire in other_table and other_table[wire] is not cls
            expected = "Beta" + plain if dialect == "beta" and shared_type_differs else plain
            assert cls.__name__ == expected, wire


@pytest.mark.parametrize("dialect", DIALECTS)
def test_tables_hold_server_and_client_subclasses(dialect: str) -> None:
    """Server tables hold ServerEvent subclasses, client tables ClientEvent subclasses."""
    assert all(issubclass(c, ev.ServerEvent) for c in ev.server_event_types(dialect).values())
    assert all(issubclass(c, ev.ClientEvent) for c in ev.client_event_types(dialect).values())
    assert all(ev.wire_type(c) == w for w, c in ev.server_event_types(dialect).items())


def test_unknown_dialect_is_a_config_error() -> None:
    """Asking for a dialect other than beta/ga raises ConfigError."""
    with pytest.raises(ConfigError):
        ev.server_event_types("v3")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        ev.counterpart("response.audio.delta", "v3")  # type: ignore[arg-type]


# ----------------------------------------------------------------------- encoding


def test_encode_writes_type_and_omits_unset_fields() -> None:
    """Encoding writes type and event_id, nothing unset, and nested defaulted types."""
    event = ev.SessionUpdateEvent(
        session=ev.RealtimeSessionConfig(
            audio=ev.SessionAudio(input=ev.AudioInput(turn_detection=ev.ServerVad()))
        )
    )
    wire = json.loads(ev.encode_client_event(event))
    assert wire == {
        "type": "session.update",
        "event_id": event.event_id,
        "session": {
            "type": "realtime",
            "audio": {"input": {"turn_detection": {"type": "server_vad"}}},
        },
    }


def test_explicit_none_is_written_as_null() -> None:
    """An optional field set to None explicitly is sent as null (it disables a feature)."""
    event = ev.SessionUpdateEvent(
        session=ev.RealtimeSessionConfig(
            audio=ev.SessionAudio(input=ev.AudioInput(turn_detection=None))
        )
    )
    wire = json.loads(ev.encode_client_event(event))
    assert wire["session"]["audio"]["input"] == {"turn_detection": None}


def test_event_id_is_generated_once_and_kept() -> None:
    """A missing event_id is generated, stored on the event and reused; a given one is kept."""
    event = ev.InputAudioBufferCommitEvent()
    first = json.loads(ev.encode_client_event(event))["event_id"]
    assert first and event.event_id == first
    assert json.loads(ev.encode_client_event(event))["event_id"] == first
    other = ev.InputAudioBufferCommitEvent()
    assert json.loads(ev.encode_client_event(other))["event_id"] != first
    mine = ev.ResponseCancelEvent(event_id="mine")
    assert json.loads(ev.encode_client_event(mine)) == {
        "type": "response.cancel",
        "event_id": "mine",
    }


def test_append_fast_path_matches_generic_encoding() -> None:
    """The append fast path gives the same JSON as pydantic's serializer."""
    pcm = bytes(range(256)) * 4
    event = ev.InputAudioBufferAppendEvent.from_pcm(pcm, event_id="id_1")
    fast = ev.encode_client_event(event)
    assert json.loads(fast) == json.loads(event.model_dump_json(exclude_unset=True))
    assert json.loads(fast) == {
        "type": "input_audio_buffer.append",
        "event_id": "id_1",
        "audio": base64.b64encode(pcm).decode(),
    }
    assert event.audio_bytes() == pcm


@pytest.mark.parametrize(
    "event",
    [
        ev.InputAudioBufferAppendEvent(audio='quote"back\\slash', event_id="e"),
        ev.InputAudioBufferAppendEvent(audio="AAAA", event_id='odd"id'),
        ev.InputAudioBufferAppendEvent(audio="AAAA", event_id="e", note="extra"),
    ],
    ids=["unsafe-audio", "unsafe-id", "extra-field"],
)
def test_append_with_unusual_content_is_still_valid_json(
    event: ev.InputAudioBufferAppendEvent,
) -> None:
    """An append whose text needs escaping, or with extra fields, encodes to valid JSON."""
    wire = json.loads(ev.encode_client_event(event))
    assert wire == json.loads(event.model_dump_json(exclude_unset=True))
    assert wire["audio"] == event.audio


def test_unknown_server_event_reencodes_its_raw_object() -> None:
    """An UnknownServerEvent keeps the whole frame and encodes back to it."""
    raw = {"type": "future.event", "event_id": "e9", "payload": {"a": [1, 2]}}
    event = ev.parse_server_event(_frame(raw))
    assert isinstance(event, ev.UnknownServerEvent)
    assert event.event_id == "e9" and event.raw == raw
    assert json.loads(ev.encode_server_event(event)) == raw


# ----------------------------------------------------------------------- strictness


@pytest.mark.parametrize(
    "override",
    [{"output_index": "0"}, {"output_index": 0.5}, {"output_index": True}, {"delta": None}],
    ids=["numeric-string", "float", "bool", "null-required"],
)
def test_scalars_are_strict(override: dict[str, Any]) -> None:
    """Numeric strings, floats and booleans are not silently accepted as integers."""
    with pytest.raises(ProtocolError) as info:
        ev.parse_server_event(_frame(_ga_delta(**override)))
    assert info.value.event_type == "response.output_audio.delta"


def test_string_where_object_required_fails() -> None:
    """A string where the spec requires an object is a ProtocolError naming the type."""
    frame = _frame({"type": "response.done", "event_id": "e", "response": "done"})
    with pytest.raises(ProtocolError) as info:
        ev.parse_server_event(frame)
    assert info.value.event_type == "response.done"
    assert "response" in str(info.value)


def test_booleans_are_strict_in_nested_models() -> None:
    """A nested boolean given as 1 is rejected."""
    session = {
        "type": "realtime",
        "audio": {"input": {"turn_detection": {"type": "server_vad", "create_response": 1}}},
    }
    with pytest.raises(ProtocolError):
        ev.parse_client_event(_frame({"type": "session.update", "session": session}))


def test_invalid_base64_is_a_protocol_error() -> None:
    """audio_bytes() of a delta that is not base64 raises ProtocolError naming the type."""
    event = ev.parse_server_event(_frame(_ga_delta(delta="not base64!")))
    with pytest.raises(ProtocolError) as info:
        event.audio_bytes()  # type: ignore[attr-defined]
    assert info.value.event_type == "response.output_audio.delta"


def test_unknown_client_type_is_a_protocol_error() -> None:
    """parse_client_event rejects a type the dialect does not know, naming it."""
    with pytest.raises(ProtocolError) as info:
        ev.parse_client_event(_frame({"type": "response.output_audio.delta"}), "beta")
    assert info.value.event_type == "response.output_audio.delta"


# ----------------------------------------------------------------------- forward compatibility


def test_new_item_type_becomes_generic_item() -> None:
    """A GA item of a type without a model parses as GenericItem, keeping its fields."""
    item = {"type": "web_search_call", "id": "ws_1", "query": "weather"}
    event = ev.parse_server_event(
        _frame({"type": "conversation.item.added", "event_id": "e", "item": item})
    )
    assert isinstance(event, ev.ConversationItemAddedEvent)
    assert isinstance(event.item, ev.GenericItem)
    assert json.loads(ev.encode_server_event(event))["item"] == item


def test_item_reference_in_response_input_is_kept() -> None:
    """A GA response.create input item_reference is accepted and re-encoded unchanged."""
    frame = {
        "type": "response.create",
        "response": {"input": [{"type": "item_reference", "id": "i1"}]},
    }
    event = ev.parse_client_event(_frame(frame))
    assert isinstance(event, ev.ResponseCreateEvent)
    assert json.loads(ev.encode_client_event(event))["response"] == frame["response"]


def test_new_enum_values_and_unions_are_accepted() -> None:
    """New status values, turn-detection types, tool types and session types parse."""
    session = {
        "type": "realtime",
        "id": "s",
        "object": "realtime.session",
        "audio": {"input": {"turn_detection": {"type": "neural_vad", "x": 1}}},
        "tools": [{"type": "web_search"}],
    }
    created = ev.parse_server_event(
        _frame({"type": "session.created", "event_id": "e", "session": session})
    )
    assert isinstance(created, ev.SessionCreatedEvent)
    assert isinstance(created.session, ev.RealtimeSession)
    assert created.session.audio is not None and created.session.audio.input is not None
    assert isinstance(created.session.audio.input.turn_detection, ev.GenericTurnDetection)
    assert isinstance((created.session.tools or [])[0], ev.GenericTool)
    translation = {"type": "translation", "id": "s", "object": "realtime.session"}
    updated = ev.parse_server_event(
        _frame({"type": "session.updated", "event_id": "e", "session": translation})
    )
    assert isinstance(updated, ev.SessionUpdatedEvent)
    assert isinstance(updated.session, ev.GenericSession)
    done = {"id": "r", "status": "paused_for_thought", "output": []}
    parsed = ev.parse_server_event(
        _frame({"type": "response.done", "event_id": "e", "response": done})
    )
    assert (
        isinstance(parsed, ev.ResponseDoneEvent) and parsed.response.status == "paused_for_thought"
    )


def test_extra_fields_are_kept_at_every_level() -> None:
    """Fields a newer server adds survive parse and encode, nested ones included."""
    frame = {
        "type": "response.done",
        "event_id": "e",
        "new_top": 1,
        "response": {"id": "r", "usage": {"total_tokens": 3, "new_usage": {"k": "v"}}},
    }
    event = ev.parse_server_event(_frame(frame), "beta")
    assert isinstance(event, ev.BetaResponseDoneEvent)
    assert json.loads(ev.encode_server_event(event)) == frame


# ----------------------------------------------------------------------- dialect helpers


@pytest.mark.parametrize(
    ("pattern", "beta", "ga"),
    [
        (
            "response.output_audio_transcript.*",
            "response.audio_transcript.*",
            "response.output_audio_transcript.*",
        ),
        ("response.text.*", "response.text.*", "response.output_text.*"),
        ("response.audio.delta", "response.audio.delta", "response.output_audio.delta"),
        ("conversation.item.added", "conversation.item.created", "conversation.item.added"),
        ("response.*", "response.*", "response.*"),
        ("*", "*", "*"),
    ],
)
def test_counterpart_pattern(pattern: str, beta: str, ga: str) -> None:
    """Glob patterns of renamed families are translated; others are left alone."""
    assert ev.counterpart_pattern(pattern, "beta") == beta
    assert ev.counterpart_pattern(pattern, "ga") == ga
    assert ev.equivalent_patterns(pattern) == {pattern, beta, ga}


def test_counterparts_exist_in_their_dialects() -> None:
    """Each table pair names a beta server type and a GA server type."""
    for beta, ga in ev.COUNTERPARTS.items():
        assert beta in ev.server_event_types("beta")
        assert ga in ev.server_event_types("ga")


# ----------------------------------------------------------------------- SessionConfig


def _full_config() -> ev.SessionConfig:
    """A configuration both dialects can express."""
    return ev.SessionConfig(
        model="m",
        instructions="be brief",
        output_modalities=["audio"],
        voice="alloy",
        input_format="pcm16",
        output_format="g711_ulaw",
        turn_detection=ev.ServerVad(threshold=0.4, silence_duration_ms=300),
        transcription=ev.InputAudioTranscription(model="whisper-1", language="en"),
        noise_reduction="near_field",
        tools=[ev.FunctionTool(name="f", description="d", parameters={"type": "object"})],
        tool_choice="auto",
        max_output_tokens="inf",
    )


def test_session_config_beta_wire_is_flat() -> None:
    """The beta session is flat, with beta names and format strings."""
    wire = _full_config().to_wire("beta")
    assert wire == {
        "model": "m",
        "instructions": "be brief",
        "modalities": ["text", "audio"],
        "voice": "alloy",
        "input_audio_format": "pcm16",
        "output_audio_format": "g711_ulaw",
        "turn_detection": {"type": "server_vad", "threshold": 0.4, "silence_duration_ms": 300},
        "input_audio_transcription": {"model": "whisper-1", "language": "en"},
        "input_audio_noise_reduction": {"type": "near_field"},
        "tools": [
            {"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}}
        ],
        "tool_choice": "auto",
        "max_response_output_tokens": "inf",
    }


def test_session_config_ga_wire_is_nested() -> None:
    """The GA session nests audio settings and uses format objects."""
    wire = _full_config().to_wire("ga")
    assert wire["type"] == "realtime"
    assert wire["output_modalities"] == ["audio"]
    assert wire["audio"] == {
        "input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": {"model": "whisper-1", "language": "en"},
            "noise_reduction": {"type": "near_field"},
            "turn_detection": {"type": "server_vad", "threshold": 0.4, "silence_duration_ms": 300},
        },
        "output": {"format": {"type": "audio/pcmu"}, "voice": "alloy"},
    }
    assert wire["max_output_tokens"] == "inf"
    assert "modalities" not in wire and "input_audio_format" not in wire


@pytest.mark.parametrize("dialect", DIALECTS)
def test_session_config_reads_back_its_own_wire(dialect: str) -> None:
    """from_wire(to_wire(config)) gives the same configuration in both dialects."""
    config = _full_config()
    assert ev.SessionConfig.from_wire(config.to_wire(dialect), dialect) == config


@pytest.mark.parametrize(
    ("config", "dialect", "word"),
    [
        (ev.SessionConfig(temperature=0.7), "ga", "temperature"),
        (ev.SessionConfig(tracing="auto"), "beta", "tracing"),
        (ev.SessionConfig(speed=1.2), "beta", "speed"),
        (ev.SessionConfig(tools=[ev.McpTool(server_label="s")]), "beta", "mcp"),
        (ev.SessionConfig(voice={"id": "custom"}), "beta", "voice"),
        (
            ev.SessionConfig(turn_detection=ev.ServerVad(idle_timeout_ms=5000)),
            "beta",
            "idle_timeout_ms",
        ),
        (ev.SessionConfig(transcription=ev.InputAudioTranscription(delay="low")), "beta", "delay"),
        (ev.SessionConfig(include=["item.input_audio_transcription.logprobs"]), "beta", "include"),
        (ev.SessionConfig(kind="transcription", voice="alloy"), "ga", "voice"),
        (ev.SessionConfig(kind="transcription", instructions="x"), "beta", "instructions"),
    ],
)
def test_inexpressible_fields_raise_config_error(
    config: ev.SessionConfig, dialect: Any, word: str
) -> None:
    """A set field the dialect (or session kind) cannot express raises ConfigError."""
    with pytest.raises(ConfigError, match=word):
        config.to_wire(dialect)


def test_none_for_a_missing_feature_is_omitted() -> None:
    """A GA-only feature set to None is not an error in beta (nothing to express)."""
    config = ev.SessionConfig(tracing=None, prompt=None, instructions="x")
    assert config.to_wire("beta") == {"instructions": "x"}


def test_transcription_session_shapes() -> None:
    """A transcription config is transcription_session.update (beta), type=transcription (GA)."""
    config = ev.SessionConfig(
        kind="transcription",
        input_format="g711_alaw",
        transcription=ev.InputAudioTranscription(model="gpt-4o-transcribe"),
        turn_detection=None,
        include=["item.input_audio_transcription.logprobs"],
    )
    beta = config.to_event("beta")
    assert isinstance(beta, ev.TranscriptionSessionUpdateEvent)
    assert json.loads(ev.encode_client_event(beta))["session"] == {
        "input_audio_format": "g711_alaw",
        "input_audio_transcription": {"model": "gpt-4o-transcribe"},
        "turn_detection": None,
        "include": ["item.input_audio_transcription.logprobs"],
    }
    ga = config.to_event("ga")
    assert isinstance(ga, ev.SessionUpdateEvent)
    assert isinstance(ga.session, ev.TranscriptionSessionConfig)
    session = json.loads(ev.encode_client_event(ga))["session"]
    assert session["type"] == "transcription"
    assert session["audio"]["input"]["format"] == {"type": "audio/pcma"}


def test_to_event_realtime_classes() -> None:
    """to_event gives BetaSessionUpdateEvent for beta and SessionUpdateEvent for GA."""
    config = ev.SessionConfig(voice="marin", instructions="hi")
    assert isinstance(config.to_event("beta"), ev.BetaSessionUpdateEvent)
    assert isinstance(config.to_event("ga"), ev.SessionUpdateEvent)


def test_from_wire_reads_server_sessions() -> None:
    """from_wire reads GA format objects and beta transcription sessions; odd rates fail."""
    ga = {
        "type": "realtime",
        "id": "s",
        "object": "realtime.session",
        "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "cedar"}},
    }
    config = ev.SessionConfig.from_wire(ga, "ga")
    assert config.output_format == "pcm16" and config.voice == "cedar" and config.kind == "realtime"
    beta = {"object": "realtime.transcription_session", "input_audio_format": "pcm16"}
    assert ev.SessionConfig.from_wire(beta, "beta").kind == "transcription"
    odd = {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}
    with pytest.raises(ConfigError):
        ev.SessionConfig.from_wire(odd, "ga")


def test_invalid_session_config_is_a_config_error() -> None:
    """Bad values or unknown fields raise ConfigError at construction."""
    with pytest.raises(ConfigError):
        ev.SessionConfig(input_format="mp3")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        ev.SessionConfig(voise="alloy")  # type: ignore[call-arg]


def test_session_config_accepts_wire_dicts_and_validates_assignment() -> None:
    """Tools and turn detection may be given as dicts (tagged by type); bad assignment fails."""
    config = ev.SessionConfig(
        tools=[{"type": "function", "name": "f"}, {"type": "mcp", "server_label": "s"}],
        turn_detection={"type": "semantic_vad", "eagerness": "high"},
    )
    assert [type(tool) for tool in config.tools or []] == [ev.FunctionTool, ev.McpTool]
    assert isinstance(config.turn_detection, ev.SemanticVad)
    assert config.to_wire("ga")["audio"]["input"]["turn_detection"] == {
        "type": "semantic_vad",
        "eagerness": "high",
    }
    with pytest.raises(ConfigError):
        config.output_format = "opus"  # type: ignore[assignment]
