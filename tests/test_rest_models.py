"""realtime.rest models, event parsing and module hygiene (no sockets)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import realtime.rest
from realtime.exceptions import APIError
from realtime.rest import (
    EphemeralKey,
    SpeechAudioDeltaEvent,
    Transcription,
    TranscriptTextDeltaEvent,
    TranscriptTextDoneEvent,
    UnknownStreamEvent,
    UsageDuration,
)
from realtime.rest.models import parse_speech_event, parse_transcript_event, validate_json

PACKAGE = Path(realtime.rest.__file__).parent
SANS_IO = ("sse", "models", "wavio")


def test_every_module_has_all_and_docstring() -> None:
    """Each realtime.rest module has a docstring and an __all__ naming real attributes."""
    for info in pkgutil.iter_modules([str(PACKAGE)]):
        module = importlib.import_module(f"realtime.rest.{info.name}")
        assert module.__doc__, info.name
        assert isinstance(module.__all__, list), info.name
        for name in module.__all__:
            assert hasattr(module, name), (info.name, name)
    for name in realtime.rest.__all__:
        assert hasattr(realtime.rest, name), name


@pytest.mark.parametrize("name", SANS_IO)
def test_pure_modules_import_no_io(name: str) -> None:
    """The SSE decoder, the models and the WAV helpers import no httpx, asyncio or sockets."""
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"httpx", "asyncio", "socket", "threading", "sounddevice"}


def test_transcript_event_parsing() -> None:
    """Known events are typed, unknown ones kept whole, bad ones raise APIError."""
    ev = parse_transcript_event('{"type":"transcript.text.delta","delta":"hi","extra":1}')
    assert isinstance(ev, TranscriptTextDeltaEvent) and ev.model_extra == {"extra": 1}
    done = parse_transcript_event('{"type":"transcript.text.done","text":"hi"}')
    assert isinstance(done, TranscriptTextDoneEvent) and done.usage is None
    unknown = parse_transcript_event('{"type":"transcript.text.future","x":[1]}')
    assert isinstance(unknown, UnknownStreamEvent) and unknown.model_extra == {"x": [1]}
    with pytest.raises(APIError, match="malformed JSON"):
        parse_transcript_event("{nope")
    with pytest.raises(APIError, match="without a type"):
        parse_transcript_event('{"delta": "x"}')
    with pytest.raises(APIError, match="not a JSON object"):
        parse_transcript_event("[1]")
    with pytest.raises(APIError, match=r"invalid 'transcript\.text\.delta' event: delta"):
        parse_transcript_event('{"type":"transcript.text.delta"}')


def test_error_events_raise_with_fields() -> None:
    """An error event, typed or not, raises APIError carrying type, code and param."""
    with pytest.raises(APIError) as info:
        parse_transcript_event('{"error":{"message":"bad","type":"server_error","code":"x"}}')
    assert (info.value.message, info.value.type, info.value.code) == ("bad", "server_error", "x")
    with pytest.raises(APIError, match="too long") as info:
        parse_speech_event('{"type":"error","message":"too long","param":"input"}')
    assert info.value.param == "input"


def test_speech_delta_decodes_audio() -> None:
    """speech.audio.delta decodes its base64 audio on demand."""
    ev = parse_speech_event('{"type":"speech.audio.delta","audio":"AAEC"}')
    assert isinstance(ev, SpeechAudioDeltaEvent) and ev.audio_bytes() == b"\x00\x01\x02"


def test_usage_discriminator_and_extras() -> None:
    """A transcription's usage is typed by its 'type'; unknown fields are kept."""
    t = validate_json(
        Transcription, b'{"text":"a","usage":{"type":"duration","seconds":3},"new":true}'
    )
    assert isinstance(t.usage, UsageDuration) and t.usage.seconds == 3
    assert t.model_extra == {"new": True}
    with pytest.raises(APIError, match="usage"):
        validate_json(Transcription, b'{"text":"a","usage":{"type":"bogus"}}')


def test_ephemeral_key_hides_value() -> None:
    """EphemeralKey keeps the value out of repr and str; expiry helpers work."""
    key = EphemeralKey(value="ek_secret_value", expires_at=1)
    assert "ek_secret_value" not in repr(key) and "ek_secret_value" not in str(key)
    assert key.expired and key.expires_in < 0
