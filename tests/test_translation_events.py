"""Spec conformance of the translation session events and objects (issue 16).

Everything is derived from the GA spec: the event types are the members of the
``RealtimeTranslationClientEvent`` / ``RealtimeTranslationServerEvent`` unions, the objects
are the ``RealtimeTranslationSession*`` schemas, and every ``x-oaiMeta`` example of them (and
of ``POST /realtime/translations/client_secrets``) must parse and re-encode unchanged.

About the examples: the ``session.created`` and ``session.updated`` examples carry
``audio.input.transcription.language``, a property the transcription object of
``RealtimeTranslationSession`` does not declare. It is not an error (the schema allows
extra properties), and the models keep it as an extra field, as they keep any field a newer
server adds; the test below pins that down.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import BaseModel

from realtime.events import (
    ErrorEvent,
    TranslationInputAudioBufferAppendEvent,
    TranslationOutputAudioDeltaEvent,
    TranslationSession,
    TranslationSessionConfig,
    TranslationSessionCreatedEvent,
    TranslationSessionUpdate,
    UnknownServerEvent,
    client_event_types,
    encode_client_event,
    encode_server_event,
    parse_client_event,
    parse_server_event,
    server_event_types,
    unsupported_format,
)
from realtime.exceptions import ProtocolError
from realtime.rest.secrets import TranslationClientSecret
from tests.test_events_conformance import example_documents, union_members

UNIONS = {"client": "RealtimeTranslationClientEvent", "server": "RealtimeTranslationServerEvent"}
OBJECTS: dict[str, type[BaseModel]] = {
    "RealtimeTranslationSession": TranslationSession,
    "RealtimeTranslationSessionCreateRequest": TranslationSessionConfig,
    "RealtimeTranslationSessionUpdateRequest": TranslationSessionUpdate,
    "RealtimeTranslationClientSecretCreateResponse": TranslationClientSecret,
}


def _table(side: str) -> dict[str, Any]:
    return dict(
        client_event_types("translation") if side == "client" else server_event_types("translation")
    )


@pytest.mark.parametrize("side", ["client", "server"])
def test_every_union_member_has_a_model(side: str, spec_ga: dict[str, Any]) -> None:
    members = union_members(spec_ga, UNIONS[side])
    assert set(members) == set(_table(side))


@pytest.mark.parametrize("side", ["client", "server"])
def test_event_fields_follow_the_spec(side: str, spec_ga: dict[str, Any]) -> None:
    """Every property is a field, required exactly where the spec requires it (``type`` has
    a default for building events, ``event_id`` is generated when encoding)."""
    table = _table(side)
    problems = []
    for wire, (name, schema) in union_members(spec_ga, UNIONS[side]).items():
        cls = table[wire]
        required = set(schema.get("required", []))
        for prop in schema["properties"]:
            field = cls.model_fields.get(prop)
            if field is None:
                problems.append(f"{name}.{prop}: no field on {cls.__name__}")
            elif prop not in ("type", "event_id") and field.is_required() != (prop in required):
                problems.append(f"{name}.{prop}: required={field.is_required()}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("schema_name", sorted(OBJECTS))
def test_object_fields_follow_the_spec(schema_name: str, spec_ga: dict[str, Any]) -> None:
    schema = spec_ga["components"]["schemas"][schema_name]
    cls = OBJECTS[schema_name]
    required = set(schema.get("required", []))
    assert set(schema["properties"]) <= set(cls.model_fields)
    for prop in schema["properties"]:
        assert cls.model_fields[prop].is_required() == (prop in required), prop


def _examples(spec: dict[str, Any], side: str) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for wire, (name, schema) in union_members(spec, UNIONS[side]).items():
        text = schema.get("x-oaiMeta", {}).get("example")
        if text:
            out.extend((name, wire, doc) for doc in example_documents(text))
    return out


@pytest.mark.parametrize("side", ["client", "server"])
def test_event_examples_parse_and_reencode(side: str, spec_ga: dict[str, Any]) -> None:
    examples = _examples(spec_ga, side)
    members = {name for name, _ in union_members(spec_ga, UNIONS[side]).values()}
    # RealtimeServerEventError is shared with conversations (its example is checked there).
    assert members - {name for name, _, _ in examples} <= {"RealtimeServerEventError"}
    table = _table(side)
    for name, wire, doc in examples:
        frame = json.dumps(doc).encode()
        if side == "client":
            event: Any = parse_client_event(frame, "translation")
            encoded = encode_client_event(event)
        else:
            event = parse_server_event(frame, "translation")
            encoded = encode_server_event(event)
        assert type(event) is table[wire], name
        expected = dict(doc)
        expected.setdefault("event_id", event.event_id)
        assert json.loads(encoded) == expected, name


def test_undeclared_example_field_is_kept(spec_ga: dict[str, Any]) -> None:
    """``transcription.language`` (in the session.created example, not in the schema)."""
    schema = spec_ga["components"]["schemas"]["RealtimeTranslationServerEventSessionCreated"]
    (doc,) = example_documents(schema["x-oaiMeta"]["example"])
    event = parse_server_event(json.dumps(doc), "translation")
    assert isinstance(event, TranslationSessionCreatedEvent)
    assert event.session.language == "fr"
    assert event.session.audio.input is not None
    transcription = event.session.audio.input.transcription
    assert transcription is not None and transcription.model_extra == {"language": "en"}


def _object_examples(spec: dict[str, Any]) -> list[tuple[str, Any]]:
    out = []
    for name in OBJECTS:
        text = spec["components"]["schemas"][name].get("x-oaiMeta", {}).get("example")
        if text:
            out.extend((name, doc) for doc in example_documents(text))
    post = spec["paths"]["/realtime/translations/client_secrets"]["post"]
    examples = post["x-oaiMeta"]["examples"]
    out.append(("RealtimeTranslationClientSecretCreateResponse", json.loads(examples["response"])))
    match = re.search(r"-d '(\{.*\})'", examples["request"]["curl"], re.S)
    assert match is not None
    body = json.loads(match.group(1))
    out.append(("RealtimeTranslationSessionCreateRequest", body["session"]))
    return out


def test_object_examples_parse_and_reencode(spec_ga: dict[str, Any]) -> None:
    examples = _object_examples(spec_ga)
    assert {name for name, _ in examples} >= {
        "RealtimeTranslationSession",
        "RealtimeTranslationClientSecretCreateResponse",
        "RealtimeTranslationSessionCreateRequest",
    }
    for name, doc in examples:
        model = OBJECTS[name].model_validate(doc)
        assert model.model_dump(mode="json", exclude_unset=True) == doc, name


def test_translation_types_do_not_leak_into_the_dialects() -> None:
    """``session.input_audio_buffer.append`` is a translation event only; the shared wire
    types keep their conversation shapes in GA."""
    frame = b'{"type":"session.output_audio.delta","event_id":"e","delta":"AAA="}'
    assert isinstance(parse_server_event(frame, "ga"), UnknownServerEvent)
    assert isinstance(parse_server_event(frame, "translation"), TranslationOutputAudioDeltaEvent)
    with pytest.raises(ProtocolError):
        parse_client_event(b'{"type":"session.input_audio_buffer.append","audio":""}', "ga")
    with pytest.raises(ProtocolError):  # a conversation event is not a translation event
        parse_client_event(b'{"type":"response.create"}', "translation")
    unknown = parse_server_event(b'{"type":"session.future","event_id":"x"}', "translation")
    assert isinstance(unknown, UnknownServerEvent) and unknown.type == "session.future"
    error = parse_server_event(
        b'{"type":"error","event_id":"e","error":{"type":"invalid_request_error","message":"m"}}',
        "translation",
    )
    assert isinstance(error, ErrorEvent)


def test_audio_round_trip() -> None:
    pcm = bytes(range(256)) * 10
    event = TranslationInputAudioBufferAppendEvent.from_pcm(pcm)
    back = parse_client_event(encode_client_event(event), "translation")
    assert isinstance(back, TranslationInputAudioBufferAppendEvent)
    assert back.audio_bytes() == pcm
    out = TranslationOutputAudioDeltaEvent.from_pcm(pcm, elapsed_ms=400)
    again = parse_server_event(encode_server_event(out), "translation")
    assert isinstance(again, TranslationOutputAudioDeltaEvent)
    assert again.audio_bytes() == pcm and again.elapsed_ms == 400
    with pytest.raises(ProtocolError):
        TranslationInputAudioBufferAppendEvent(audio="not base64!").audio_bytes()


def test_build_update() -> None:
    update = TranslationSessionUpdate.build(language="es", transcription_model="whisper-1")
    assert update.model_dump(exclude_unset=True) == {
        "audio": {"output": {"language": "es"}, "input": {"transcription": {"model": "whisper-1"}}}
    }
    assert TranslationSessionUpdate.build().model_dump(exclude_unset=True) == {}


@pytest.mark.parametrize(
    "fmt",
    [None, "pcm16", {"type": "audio/pcm", "rate": 24000}, {"type": "audio/pcm"}],
)
def test_supported_formats(fmt: Any) -> None:
    session = {"audio": {"input": {} if fmt is None else {"format": fmt}}}
    assert unsupported_format(session) is None


@pytest.mark.parametrize(
    "fmt", ["g711_ulaw", {"type": "audio/pcmu"}, {"type": "audio/pcm", "rate": 16000}, 7]
)
def test_unsupported_formats(fmt: Any) -> None:
    problem = unsupported_format({"audio": {"input": {"format": fmt}}})
    assert problem is not None and "24 kHz PCM16" in problem
    model = TranslationSessionConfig.model_validate(
        {"model": "m", "audio": {"input": {"format": fmt}}}
    )
    assert unsupported_format(model) == problem
