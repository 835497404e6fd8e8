"""Media-stream messages, audio pass-through/conversion and the mark tracker (no sockets)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from audio.playback import HeardPosition, PlaybackTracker
from realtime.telephony.exceptions import MediaStreamError, UnsupportedMediaFormat
from realtime.telephony.marks import MarkTracker
from realtime.telephony.media import MediaCodec, PhoneAudio, b64_size, phone_audio
from realtime.telephony.messages import (
    ClearMessage,
    ConnectedMessage,
    DtmfMessage,
    MarkMessage,
    MediaFormat,
    MediaMessage,
    StartMessage,
    StopMessage,
    encode_message,
    mark_frame,
    media_frame,
    parse_message,
)

# Wire samples in the provider's documented shape.
START = {
    "event": "start",
    "sequenceNumber": "1",
    "start": {
        "accountSid": "AC123",
        "streamSid": "MZ123",
        "callSid": "CA123",
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"From": "+15550100", "tier": "gold"},
    },
    "streamSid": "MZ123",
}
MEDIA = {
    "event": "media",
    "sequenceNumber": "3",
    "media": {"track": "inbound", "chunk": "1", "timestamp": "5", "payload": "//79/A=="},
    "streamSid": "MZ123",
}


# -- messages -----------------------------------------------------------------------------


def test_parse_provider_messages() -> None:
    """Every provider message parses into its model with the fields an app needs."""
    start = parse_message(json.dumps(START))
    assert isinstance(start, StartMessage)
    assert (start.stream_sid, start.call_sid, start.account_sid) == ("MZ123", "CA123", "AC123")
    assert start.custom_parameters == {"From": "+15550100", "tier": "gold"}
    assert start.media_format == MediaFormat("audio/x-mulaw", 8000, 1)
    media = parse_message(json.dumps(MEDIA))
    assert isinstance(media, MediaMessage)
    assert (media.payload, media.track, media.chunk, media.timestamp) == (
        "//79/A==",
        "inbound",
        "1",
        "5",
    )
    mark = parse_message('{"event":"mark","streamSid":"MZ123","mark":{"name":"item_1.4"}}')
    assert mark == MarkMessage("MZ123", "item_1.4")
    dtmf = parse_message(
        '{"event":"dtmf","streamSid":"MZ123","sequenceNumber":"5",'
        '"dtmf":{"track":"inbound_track","digit":"7"}}'
    )
    assert isinstance(dtmf, DtmfMessage) and dtmf.digit == "7"
    stop = parse_message('{"event":"stop","streamSid":"MZ123","stop":{"callSid":"CA123"}}')
    assert isinstance(stop, StopMessage) and stop.call_sid == "CA123"
    assert isinstance(parse_message('{"event":"connected","protocol":"Call"}'), ConnectedMessage)
    assert parse_message('{"event":"clear","streamSid":"MZ1"}') == ClearMessage("MZ1")


@pytest.mark.parametrize(
    "message",
    [
        ConnectedMessage(),
        StartMessage(
            "MZ1", "CA1", "AC1", ("inbound",), {"a": "b"}, MediaFormat("audio/l16", 16000)
        ),
        MediaMessage("MZ1", "AAAA", track="inbound", chunk="2", timestamp="40"),
        MediaMessage("MZ1", "AAAA"),
        MarkMessage("MZ1", "m1"),
        DtmfMessage("MZ1", "#"),
        StopMessage("MZ1", "CA1", "AC1"),
        ClearMessage("MZ1"),
    ],
)
def test_encode_parse_round_trip(message: object) -> None:
    """encode_message and parse_message are inverse."""
    assert parse_message(encode_message(message)) == message  # type: ignore[arg-type]


def test_fast_frames_match_the_encoder() -> None:
    """The hot-path builders write the same JSON as the general encoder, escaping the sid."""
    assert json.loads(media_frame("MZ1", "AAAA")) == json.loads(
        encode_message(MediaMessage("MZ1", "AAAA"))
    )
    assert json.loads(mark_frame('M"Z', "a.1")) == {
        "event": "mark",
        "streamSid": 'M"Z',
        "mark": {"name": "a.1"},
    }
    with pytest.raises(MediaStreamError):
        media_frame("MZ1", 'AA"}')


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("not json", "not valid JSON"),
        ("[1]", "not a JSON object"),
        ('{"event": 3}', "no 'event'"),
        ('{"event": "teleport"}', "unknown event"),
        ('{"event": "media", "media": {"payload": 5}}', "base64 string"),
        ('{"event": "media", "media": {"payload": "@@@@"}}', "not valid base64"),
        ('{"event": "media"}', "'media' must be an object"),
        ('{"event": "mark", "mark": {}}', "missing 'name'"),
        ('{"event": "dtmf", "dtmf": {"digit": "x"}}', "unknown DTMF digit"),
        ('{"event": "start", "start": {}}', "missing 'streamSid'"),
        (
            '{"event": "start", "start": {"streamSid": "M", "mediaFormat": {"sampleRate": "8k"}}}',
            "sampleRate",
        ),
        ('{"event": "start", "start": {"streamSid": "M", "customParameters": []}}', "customParam"),
    ],
)
def test_malformed_messages_raise_typed_errors(text: str, fragment: str) -> None:
    """Bad input is a MediaStreamError naming the problem."""
    with pytest.raises(MediaStreamError, match=fragment):
        parse_message(text)


def test_oversized_message_is_refused() -> None:
    with pytest.raises(MediaStreamError, match="longer than"):
        parse_message('{"event":"media","media":{"payload":"' + "A" * 300_000 + '"}}')


# -- media ---------------------------------------------------------------------------------


def test_mulaw_and_alaw_pass_straight_through() -> None:
    """G.711 streams keep their format: payloads are forwarded untouched, both ways."""
    for encoding, kind in (("audio/x-mulaw", "g711_ulaw"), ("audio/x-alaw", "g711_alaw")):
        codec = MediaCodec(phone_audio(MediaFormat(encoding, 8000)))
        assert codec.passthrough and codec.session_format == kind
        payload = base64.b64encode(bytes(range(160))).decode()
        assert codec.to_session(payload) is payload
        assert codec.to_phone(payload) is payload
        assert codec.phone_ms(payload) == 20.0


@pytest.mark.parametrize("rate", [8000, 16000])
def test_linear_pcm_streams_are_resampled_to_the_session(rate: int) -> None:
    """L16 at 8/16 kHz becomes PCM16 24 kHz for the session and back, keeping duration."""
    codec = MediaCodec(phone_audio(MediaFormat("audio/l16", rate)))
    assert not codec.passthrough and codec.session_format == "pcm16"
    t = np.arange(rate // 5) / rate  # 200 ms of 300 Hz
    tone = (np.sin(2 * np.pi * 300 * t) * 10000).astype("<i2").tobytes()
    frames = [tone[i : i + rate // 25] for i in range(0, len(tone), rate // 25)]  # 20 ms
    session = b"".join(
        base64.b64decode(codec.to_session(base64.b64encode(f).decode())) for f in frames
    )
    assert abs(len(session) / 48 - 200) <= 10  # 24 kHz PCM16: 48 bytes per ms
    back = base64.b64decode(codec.to_phone(base64.b64encode(session).decode()))
    assert abs(len(back) / (rate / 500) - len(session) / 48) <= 10


def test_mulaw_stream_into_a_pcm_session_converts() -> None:
    """A forced session format goes through audio/ conversion instead of pass-through."""
    codec = MediaCodec(phone_audio(MediaFormat()), "pcm16")
    assert not codec.passthrough
    out = base64.b64decode(codec.to_session(base64.b64encode(b"\xff" * 1600).decode()))
    assert abs(len(out) / 48 - 200) <= 10
    assert max(abs(v) for v in np.frombuffer(out, "<i2")) < 50  # mu-law silence stays silent


@pytest.mark.parametrize(
    "fmt",
    [
        MediaFormat("audio/opus", 48000),
        MediaFormat("audio/x-mulaw", 16000),
        MediaFormat("audio/l16", 44100),
        MediaFormat("audio/x-mulaw", 8000, 2),
    ],
)
def test_unsupported_formats_are_refused(fmt: MediaFormat) -> None:
    with pytest.raises(UnsupportedMediaFormat):
        phone_audio(fmt)


def test_bad_audio_is_a_media_error() -> None:
    codec = MediaCodec(PhoneAudio("pcm16", 8000))
    with pytest.raises(MediaStreamError):
        codec.to_session("@@@")
    assert b64_size("") == 0 and b64_size("AAA=") == 2 and b64_size("AA==") == 1


# -- mark tracker --------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_tracker_is_a_playback_tracker() -> None:
    assert isinstance(MarkTracker(), PlaybackTracker)


def test_heard_position_from_acknowledged_marks_and_time_since() -> None:
    """Acknowledged marks pin the position; between them playback runs in real time."""
    clock = Clock()
    tracker = MarkTracker(clock=clock)
    names = [tracker.sent("item_a", 0, 100.0) for _ in range(5)]  # 500 ms queued at once
    assert names == [f"item_a.{n}" for n in range(1, 6)]
    clock.now += 0.05
    assert tracker.played_ms("item_a") == pytest.approx(50.0)  # extrapolated from the first send
    clock.now += 0.2  # the provider is slower than the clock: the ack is what counts
    assert tracker.acknowledged("item_a.1")
    assert tracker.played_ms("item_a") == 100.0
    clock.now += 0.03
    assert tracker.played_ms("item_a") == pytest.approx(130.0)
    clock.now += 10  # never beyond what was sent
    assert tracker.played_ms("item_a") == 500.0
    assert tracker.pending_ms == 0 and tracker.pending_marks == 4


def test_interrupt_returns_heard_position_and_drops_the_rest() -> None:
    clock = Clock()
    cleared: list[bool] = []
    tracker = MarkTracker(clock=clock, on_clear=lambda: cleared.append(True))
    for _ in range(3):
        tracker.sent("item_a", 0, 200.0)
    clock.now += 0.1
    tracker.acknowledged("item_a.1")  # 200 ms played at t+0.1
    clock.now += 0.05
    position = tracker.interrupt()
    assert position == HeardPosition("item_a", 0, 250.0)
    assert cleared == [True]
    assert not tracker.accepts("item_a") and tracker.accepts("item_b")
    # the provider echoes the cleared marks: they are not evidence of playback
    assert not tracker.acknowledged("item_a.2") and not tracker.acknowledged("item_a.3")
    clock.now += 5
    assert tracker.played_ms("item_a") == 250.0  # frozen at the interruption
    # the next reply starts a fresh stretch of the timeline
    tracker.sent("item_b", 0, 100.0)
    clock.now += 0.04
    assert tracker.played_ms("item_b") == pytest.approx(40.0)
    assert tracker.interrupt() == HeardPosition("item_b", 0, pytest.approx(40.0))


def test_idle_provider_restarts_the_clock() -> None:
    """Audio sent after the buffer ran dry starts playing when it is sent, not before."""
    clock = Clock()
    tracker = MarkTracker(clock=clock)
    tracker.sent("item_a", 0, 100.0)
    clock.now += 1.0  # all played, and then some silence
    tracker.sent("item_a", 0, 100.0)
    clock.now += 0.03
    assert tracker.played_ms("item_a") == pytest.approx(130.0)


def test_nothing_sent_means_nothing_to_truncate() -> None:
    tracker = MarkTracker()
    assert tracker.interrupt() is None
    assert tracker.played_ms("nope") == 0.0
    assert not tracker.acknowledged("unknown")


def test_pending_marks_are_bounded() -> None:
    clock = Clock()
    tracker = MarkTracker(clock=clock, max_pending=2)
    assert tracker.sent("i", 0, 20.0) is not None
    assert tracker.sent("i", 0, 20.0) is not None
    assert tracker.sent("i", 0, 20.0) is None  # audio still counted, no mark
    assert tracker.pending_marks == 2
    clock.now += 0.06
    assert tracker.played_ms("i") == pytest.approx(60.0)
    with pytest.raises(ValueError):
        MarkTracker(max_pending=0)
