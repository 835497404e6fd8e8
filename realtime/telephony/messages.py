"""The media-stream messages (Twilio Media Streams, the de facto shape), pure models.

From the provider: ``connected``, ``start`` (call metadata, custom parameters, media
format), ``media`` (base64 audio), ``mark`` (a mark the application sent has been
played), ``dtmf`` (a key press) and ``stop`` (the call or stream ended). From the
application: ``media``, ``mark`` and ``clear`` (drop the audio buffered at the
provider). :func:`parse_message` reads any of them (the simulator reads the
application's side with the same function) and :func:`encode_message` writes them.

Parsing is on the hot path (50 ``media`` messages a second per call), so the models
are slotted dataclasses checked by hand, not pydantic models. Malformed input raises
:class:`~realtime.telephony.exceptions.MediaStreamError`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from .exceptions import MediaStreamError

__all__ = [
    "ClearMessage",
    "ConnectedMessage",
    "DtmfMessage",
    "MarkMessage",
    "MediaFormat",
    "MediaMessage",
    "MediaStreamMessage",
    "StartMessage",
    "StopMessage",
    "encode_message",
    "mark_frame",
    "media_frame",
    "parse_message",
]

MAX_MESSAGE_CHARS = 256 * 1024
"""Longest message accepted (a 20 ms frame is ~300 characters; generous for replies)."""


@dataclass(frozen=True, slots=True)
class MediaFormat:
    """The stream's audio: ``encoding`` (``audio/x-mulaw``, ``audio/x-alaw``, ``audio/l16``)."""

    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000
    channels: int = 1


@dataclass(frozen=True, slots=True)
class ConnectedMessage:
    """First message of a stream: the WebSocket protocol in use."""

    protocol: str = "Call"
    version: str = "1.0.0"
    event: str = "connected"


@dataclass(frozen=True, slots=True)
class StartMessage:
    """Stream metadata: identifiers, tracks, custom parameters and the media format."""

    stream_sid: str
    call_sid: str = ""
    account_sid: str = ""
    tracks: tuple[str, ...] = ("inbound",)
    custom_parameters: Mapping[str, str] = field(default_factory=dict)
    media_format: MediaFormat = field(default_factory=MediaFormat)
    sequence_number: str | None = None
    event: str = "start"


@dataclass(frozen=True, slots=True)
class MediaMessage:
    """A chunk of audio, ``payload`` in base64 (provider side also gives track/chunk/timestamp)."""

    stream_sid: str
    payload: str
    track: str | None = None
    chunk: str | None = None
    timestamp: str | None = None
    sequence_number: str | None = None
    event: str = "media"


@dataclass(frozen=True, slots=True)
class MarkMessage:
    """A named point in the outgoing audio (sent by the app, echoed once played)."""

    stream_sid: str
    name: str
    sequence_number: str | None = None
    event: str = "mark"


@dataclass(frozen=True, slots=True)
class DtmfMessage:
    """A key press on the caller's keypad (``digit``: 0-9, ``*``, ``#``, A-D)."""

    stream_sid: str
    digit: str
    track: str = "inbound_track"
    sequence_number: str | None = None
    event: str = "dtmf"


@dataclass(frozen=True, slots=True)
class StopMessage:
    """The stream ended (the call hung up or the stream was stopped)."""

    stream_sid: str
    call_sid: str = ""
    account_sid: str = ""
    sequence_number: str | None = None
    event: str = "stop"


@dataclass(frozen=True, slots=True)
class ClearMessage:
    """Sent by the app: drop every buffered outgoing chunk (marks come back at once)."""

    stream_sid: str
    event: str = "clear"


MediaStreamMessage: TypeAlias = (
    ConnectedMessage
    | StartMessage
    | MediaMessage
    | MarkMessage
    | DtmfMessage
    | StopMessage
    | ClearMessage
)

_B64_CHARS = re.compile(r"[A-Za-z0-9+/=]*\Z").match
_DIGITS = frozenset("0123456789*#ABCD")


def _obj(data: Mapping[str, Any], key: str, event: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise MediaStreamError(f"'{key}' must be an object", event=event)
    return value


def _str(data: Mapping[str, Any], key: str, event: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        if value is None:
            raise MediaStreamError(f"missing '{key}'", event=event)
        raise MediaStreamError(f"'{key}' must be a string", event=event)
    return value


def _opt(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _media_format(data: Any) -> MediaFormat:
    if data is None:
        return MediaFormat()
    if not isinstance(data, Mapping):
        raise MediaStreamError("'mediaFormat' must be an object", event="start")
    encoding = data.get("encoding", "audio/x-mulaw")
    rate = data.get("sampleRate", 8000)
    channels = data.get("channels", 1)
    if not isinstance(encoding, str):
        raise MediaStreamError("'mediaFormat.encoding' must be a string", event="start")
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        raise MediaStreamError("'mediaFormat.sampleRate' must be a positive integer", event="start")
    if isinstance(channels, bool) or not isinstance(channels, int) or channels <= 0:
        raise MediaStreamError("'mediaFormat.channels' must be a positive integer", event="start")
    return MediaFormat(encoding.lower(), rate, channels)


def _parse_start(data: Mapping[str, Any], seq: str | None) -> StartMessage:
    start = _obj(data, "start", "start")
    sid = start.get("streamSid", data.get("streamSid"))
    if not isinstance(sid, str) or not sid:
        raise MediaStreamError("missing 'streamSid'", event="start")
    params = start.get("customParameters")
    params = {} if params is None else params
    if not isinstance(params, Mapping):
        raise MediaStreamError("'customParameters' must be an object", event="start")
    tracks = start.get("tracks") or ["inbound"]
    if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
        raise MediaStreamError("'tracks' must be a list of strings", event="start")
    return StartMessage(
        stream_sid=sid,
        call_sid=str(start.get("callSid") or ""),
        account_sid=str(start.get("accountSid") or ""),
        tracks=tuple(tracks),
        custom_parameters={str(k): str(v) for k, v in params.items()},
        media_format=_media_format(start.get("mediaFormat")),
        sequence_number=seq,
    )


def _parse_media(data: Mapping[str, Any], seq: str | None) -> MediaMessage:
    media = data.get("media")
    if not isinstance(media, dict):
        raise MediaStreamError("'media' must be an object", event="media")
    payload = media.get("payload")
    if not isinstance(payload, str):
        raise MediaStreamError("'media.payload' must be a base64 string", event="media")
    try:
        base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise MediaStreamError("'media.payload' is not valid base64", event="media") from None
    return MediaMessage(
        stream_sid=_str(data, "streamSid", "media", ""),
        payload=payload,
        track=media.get("track"),
        chunk=_opt(media, "chunk"),
        timestamp=_opt(media, "timestamp"),
        sequence_number=seq,
    )


def parse_message(text: str | bytes) -> MediaStreamMessage:
    """Parse one message of either direction; raises MediaStreamError when malformed.

    An unknown ``event`` is an error too (the caller decides whether to ignore it).
    """
    if len(text) > MAX_MESSAGE_CHARS:
        raise MediaStreamError(f"message longer than {MAX_MESSAGE_CHARS} characters")
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise MediaStreamError("message is not valid JSON") from None
    if not isinstance(data, dict):
        raise MediaStreamError("message is not a JSON object")
    event = data.get("event")
    seq = _opt(data, "sequenceNumber")
    if event == "media":
        return _parse_media(data, seq)
    if event == "mark":
        mark = _obj(data, "mark", "mark")
        return MarkMessage(
            _str(data, "streamSid", "mark", ""), _str(mark, "name", "mark"), sequence_number=seq
        )
    if event == "start":
        return _parse_start(data, seq)
    if event == "dtmf":
        dtmf = _obj(data, "dtmf", "dtmf")
        digit = _str(dtmf, "digit", "dtmf")
        if digit not in _DIGITS:
            raise MediaStreamError(f"unknown DTMF digit {digit[:8]!r}", event="dtmf")
        return DtmfMessage(
            _str(data, "streamSid", "dtmf", ""),
            digit,
            str(dtmf.get("track") or "inbound_track"),
            sequence_number=seq,
        )
    if event == "stop":
        stop = data.get("stop") or {}
        if not isinstance(stop, Mapping):
            raise MediaStreamError("'stop' must be an object", event="stop")
        return StopMessage(
            _str(data, "streamSid", "stop", ""),
            str(stop.get("callSid") or ""),
            str(stop.get("accountSid") or ""),
            sequence_number=seq,
        )
    if event == "connected":
        return ConnectedMessage(str(data.get("protocol", "Call")), str(data.get("version", "")))
    if event == "clear":
        return ClearMessage(_str(data, "streamSid", "clear", ""))
    if not isinstance(event, str):
        raise MediaStreamError("message has no 'event' string")
    raise MediaStreamError("unknown event", event=event[:40])


def encode_message(message: MediaStreamMessage) -> str:
    """The JSON text of a message (the provider's wire names)."""
    data: dict[str, Any]
    if isinstance(message, MediaMessage):
        media: dict[str, Any] = {"payload": message.payload}
        for key, value in (
            ("track", message.track),
            ("chunk", message.chunk),
            ("timestamp", message.timestamp),
        ):
            if value is not None:
                media[key] = value
        data = {"event": "media", "streamSid": message.stream_sid, "media": media}
    elif isinstance(message, MarkMessage):
        data = {"event": "mark", "streamSid": message.stream_sid, "mark": {"name": message.name}}
    elif isinstance(message, ClearMessage):
        data = {"event": "clear", "streamSid": message.stream_sid}
    elif isinstance(message, DtmfMessage):
        data = {
            "event": "dtmf",
            "streamSid": message.stream_sid,
            "dtmf": {"track": message.track, "digit": message.digit},
        }
    elif isinstance(message, StartMessage):
        fmt = message.media_format
        data = {
            "event": "start",
            "streamSid": message.stream_sid,
            "start": {
                "streamSid": message.stream_sid,
                "accountSid": message.account_sid,
                "callSid": message.call_sid,
                "tracks": list(message.tracks),
                "customParameters": dict(message.custom_parameters),
                "mediaFormat": {
                    "encoding": fmt.encoding,
                    "sampleRate": fmt.sample_rate,
                    "channels": fmt.channels,
                },
            },
        }
    elif isinstance(message, StopMessage):
        data = {
            "event": "stop",
            "streamSid": message.stream_sid,
            "stop": {"accountSid": message.account_sid, "callSid": message.call_sid},
        }
    else:
        data = {"event": "connected", "protocol": message.protocol, "version": message.version}
    seq = getattr(message, "sequence_number", None)
    if seq is not None:
        data["sequenceNumber"] = seq
    return json.dumps(data, separators=(",", ":"))


def media_frame(stream_sid: str, payload: str) -> str:
    """The outgoing ``media`` message for a base64 payload, built without a dict (hot path).

    Raises MediaStreamError when ``payload`` has characters outside the base64 alphabet.
    """
    if _B64_CHARS(payload) is None:
        raise MediaStreamError("audio payload is not base64", event="media")
    return (
        '{"event":"media","streamSid":'
        + json.dumps(stream_sid)
        + ',"media":{"payload":"'
        + payload
        + '"}}'
    )


def mark_frame(stream_sid: str, name: str) -> str:
    """The outgoing ``mark`` message."""
    return (
        '{"event":"mark","streamSid":'
        + json.dumps(stream_sid)
        + ',"mark":{"name":'
        + json.dumps(name)
        + "}}"
    )
