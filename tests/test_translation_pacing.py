"""The pure parts of translation sessions: frame pacing (fed time values) and transcripts."""

from __future__ import annotations

import itertools

import pytest

from audio.exceptions import AudioFormatError
from realtime.events import (
    TranslationInputTranscriptDeltaEvent,
    TranslationOutputTranscriptDeltaEvent,
    TranslationSessionClosedEvent,
)
from realtime.subtitles import srt
from realtime.translation import FramePacer, TranslationTranscript

FRAME = 9600  # 200 ms of 24 kHz PCM16


def tone(ms: int, value: int = 1000) -> bytes:
    return value.to_bytes(2, "little", signed=True) * (24 * ms)


def test_frames_are_200_ms_and_silence_flows_without_audio() -> None:
    p = FramePacer()
    assert p.frame_bytes == FRAME
    first = p.poll(100.0)
    assert len(first) == 1 and first[0].silence and first[0].audio == bytes(FRAME)
    assert p.poll(100.1) == []  # the next frame is due at 100.2
    assert p.next_due(100.1) == pytest.approx(100.2)
    frames = p.poll(101.0)  # 100.2, 100.4, 100.6, 100.8, 101.0
    assert [f.due for f in frames] == pytest.approx([100.2, 100.4, 100.6, 100.8, 101.0])
    assert all(f.silence for f in frames)
    assert p.frames == 6 and p.silent_frames == 6


def test_audio_goes_out_one_frame_per_period_in_order() -> None:
    p = FramePacer()
    p.poll(0.0)
    audio = b"".join(tone(200, v) for v in (1, 2, 3))
    p.push(audio)
    out = p.poll(0.2)
    assert len(out) == 1 and out[0].audio == tone(200, 1) and not out[0].silence
    out = p.poll(0.6)
    assert [f.audio for f in out] == [tone(200, 2), tone(200, 3)]
    assert p.poll(0.8)[0].silence


def test_resumed_audio_is_not_glued_to_old_audio() -> None:
    """A pause in the caller's audio becomes as much silence on the wire."""
    p = FramePacer()
    t = 0.0
    sent: list[bytes] = []
    p.push(tone(400, 5))
    for _ in range(3):  # 0.0, 0.2, 0.4
        sent += [f.audio for f in p.poll(t)]
        t += 0.2
    for _ in range(5):  # the caller says nothing for a second: 0.6 .. 1.4
        sent += [f.audio for f in p.poll(t)]
        t += 0.2
    p.push(tone(200, 7))
    sent += [f.audio for f in p.poll(t)]  # 1.6
    assert sent[:2] == [tone(200, 5)] * 2
    assert sent[2:8] == [bytes(FRAME)] * 6  # 1.2 s of silence in between
    assert sent[8] == tone(200, 7)
    assert len(b"".join(sent)) == FRAME * 9  # audio time == real time


def test_partial_frame_waits_for_its_rest_then_is_padded() -> None:
    p = FramePacer(grace_ms=100)
    p.poll(0.0)
    p.push(tone(120, 3))  # 120 ms: the rest of the frame should follow
    assert p.poll(0.2) == []
    assert p.next_due(0.2) == pytest.approx(0.3)
    p.push(tone(40, 3))
    assert p.poll(0.25) == []
    (frame,) = p.poll(0.3)  # grace over: 160 ms of audio + 40 ms of silence
    assert not frame.silence
    assert frame.audio == tone(160, 3) + bytes(FRAME - len(tone(160, 3)))
    p.push(tone(120, 4))
    p.push(tone(80, 4))
    (full,) = p.poll(0.4)  # completed in time: no padding
    assert full.audio == tone(200, 4)


def test_a_stall_is_caught_up_within_bounds() -> None:
    p = FramePacer(max_catch_up_ms=1000)
    p.poll(0.0)
    out = p.poll(10.0)  # the loop was blocked for 10 s
    assert 5 <= len(out) <= 6  # about a second of frames back to back, not fifty
    assert p.skipped_frames >= 44
    assert p.poll(10.1) == []
    assert len(p.poll(10.2)) == 1


def test_queue_is_bounded_and_checked() -> None:
    p = FramePacer(max_pending_ms=1000)
    assert p.room() == 48000
    p.push(tone(600))
    assert p.pending_ms == pytest.approx(600)
    with pytest.raises(BufferError):
        p.push(tone(600))
    with pytest.raises(AudioFormatError):
        p.push(b"\x00")
    with pytest.raises(ValueError):
        FramePacer(max_pending_ms=100)


def test_drain_hands_out_everything_at_once() -> None:
    p = FramePacer()
    p.push(tone(500, 9))
    pieces = p.drain()
    assert [len(x) for x in pieces] == [FRAME, FRAME, FRAME // 2]
    assert b"".join(pieces) == tone(500, 9)
    assert p.pending_bytes == 0 and p.drain() == []


# --------------------------------------------------------------------------- transcripts


def _in(text: str, ms: int | None) -> TranslationInputTranscriptDeltaEvent:
    return TranslationInputTranscriptDeltaEvent(delta=text, elapsed_ms=ms, event_id="e")


def _out(text: str, ms: int | None) -> TranslationOutputTranscriptDeltaEvent:
    return TranslationOutputTranscriptDeltaEvent(delta=text, elapsed_ms=ms, event_id="e")


def test_transcripts_accumulate_in_order_without_added_spaces() -> None:
    t = TranslationTranscript()
    for event in (_in("Hel", 0), _out("Hol", 400), _in("lo there.", 200), _out("a.", None)):
        t.feed(event, arrival_ms=900)
    assert t.feed(TranslationSessionClosedEvent(event_id="x")) is None
    assert t.input_text == "Hello there."
    assert t.output_text == "Hola."
    assert [d.side for d in t.deltas] == ["input", "output", "input", "output"]
    assert t.deltas[-1].ms == 900  # null elapsed_ms: placed at its arrival


def test_bilingual_cues_pair_sentences() -> None:
    t = TranslationTranscript()
    events = [
        _in("Hello.", 0),
        _in(" How are", 2000),
        _out("Hola.", 800),
        _in(" you?", 2200),
        _out(" ¿Cómo estás?", 3000),
        _in(" Bye", 6000),  # no punctuation: a gap ends it
        _in(" now", 6200),
        _out(" Adiós", 7000),
    ]
    for e in events:
        t.feed(e)
    cues = t.cues()
    assert [(c.source, c.target) for c in cues] == [
        ("Hello.", "Hola."),
        ("How are you?", "¿Cómo estás?"),
        ("Bye now", "Adiós"),
    ]
    assert cues[0].start == 0.0 and cues[1].start == 2.0 and cues[2].start == 6.0
    assert all(a.end <= b.start for a, b in itertools.pairwise(cues))
    doc = srt((c.start, c.end, c.text) for c in cues)
    assert "1\n00:00:00,000 --> " in doc and "Hello.\nHola.\n" in doc


def test_cue_without_partner_and_bound() -> None:
    t = TranslationTranscript(max_deltas=2)
    t.feed(_in("One.", 0))
    t.feed(_in("Two.", 3000))
    t.feed(_out("Uno.", 500))
    assert t.input_text == "One.Two."  # texts stay whole
    assert len(t.deltas) == 2
    assert [(c.source, c.target) for c in t.cues()] == [("Two.", "Uno.")]
    empty = TranslationTranscript()
    empty.feed(_out("Solo.", 0))
    assert [(c.source, c.target) for c in empty.cues()] == [("", "Solo.")]
