"""Unit tests of the incremental SSE decoder (realtime.rest.sse): no sockets."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.rest.sse import SSEDecoder, SSEEvent

STREAM = (
    ": comment line\n"
    "event: transcript.text.delta\n"
    'data: {"delta": "héllo 日本語 🎤"}\n'
    "\n"
    "id: 7\n"
    "data: line one\n"
    "data: line two\n"
    "\n"
    "retry: 1500\n"
    "data: [DONE]\n"
    "\n"
).encode()

EXPECTED = [
    SSEEvent(data='{"delta": "héllo 日本語 🎤"}', event="transcript.text.delta"),
    SSEEvent(data="line one\nline two", id="7"),
    SSEEvent(data="[DONE]", id="7", retry=1500),
]


def decode_in(pieces: list[bytes]) -> tuple[list[SSEEvent], SSEDecoder]:
    """Feed pieces one by one, then close; return all events and the decoder."""
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for piece in pieces:
        events += decoder.feed(piece)
    events += decoder.close()
    return events, decoder


def test_whole_stream_at_once() -> None:
    """A stream fed in one piece yields every event with name, data, id and retry."""
    events, decoder = decode_in([STREAM])
    assert events == EXPECTED
    assert events[-1].is_done and not events[0].is_done
    assert not decoder.truncated


def test_byte_by_byte_including_mid_utf8() -> None:
    """Feeding one byte at a time (splitting every multi-byte character) gives the same events."""
    events, _ = decode_in([STREAM[i : i + 1] for i in range(len(STREAM))])
    assert events == EXPECTED


def test_every_single_split_point() -> None:
    """Every two-piece split of the stream decodes identically."""
    for cut in range(len(STREAM) + 1):
        events, _ = decode_in([STREAM[:cut], STREAM[cut:]])
        assert events == EXPECTED, cut


def test_crlf_and_cr_line_endings() -> None:
    """CRLF and lone CR end lines like LF, also when CR and LF arrive in different chunks."""
    crlf = STREAM.replace(b"\n", b"\r\n")
    cr = STREAM.replace(b"\n", b"\r")
    assert decode_in([crlf])[0] == EXPECTED
    assert decode_in([crlf[i : i + 1] for i in range(len(crlf))])[0] == EXPECTED
    assert decode_in([cr])[0] == EXPECTED
    assert decode_in([cr[i : i + 1] for i in range(len(cr))])[0] == EXPECTED


def test_cr_at_chunk_end_is_held_until_next_byte() -> None:
    """A CR at the end of a chunk is not taken as a blank line before the next byte shows."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n") == []  # CRLF: one line end, the event is not finished yet
    assert decoder.feed(b"\r\n") == [SSEEvent(data="a")]


def test_field_parsing_rules() -> None:
    """No space after the colon, a field without colon, unknown fields and empty data lines."""
    events, _ = decode_in([b"data:x\ndata\nfoo: bar\ndata: \n\n"])
    assert events == [SSEEvent(data="x\n\n")]


def test_event_without_data_is_not_dispatched() -> None:
    """An event that only sets a name and an id is dropped, but the id is remembered."""
    events, decoder = decode_in([b"event: ping\nid: 42\n\ndata: x\n\n"])
    assert events == [SSEEvent(data="x", id="42")]
    assert decoder.last_event_id == "42"


def test_invalid_retry_and_nul_id_are_ignored() -> None:
    """retry must be digits only; an id containing NUL does not change the last id."""
    events, _ = decode_in([b"retry: 10a\nid: a\x00b\ndata: x\n\n"])
    assert events == [SSEEvent(data="x")]


def test_bom_is_skipped_once() -> None:
    """A UTF-8 BOM before the first line is ignored, split across chunks too."""
    events, _ = decode_in([b"\xef\xbb", b"\xbfdata: x\n\n"])
    assert events == [SSEEvent(data="x")]


def test_truncated_mid_event_is_reported() -> None:
    """A stream that stops after a data line but before the blank line is flagged truncated."""
    events, decoder = decode_in([b"data: one\n\ndata: tw"])
    assert events == [SSEEvent(data="one")]
    assert decoder.truncated
    events, decoder = decode_in([b"data: one\n\ndata: two\n"])
    assert events == [SSEEvent(data="one")]
    assert decoder.truncated


def test_final_lone_cr_completes_the_event() -> None:
    """A stream ending in CR CR dispatches its last event at close."""
    events, decoder = decode_in([b"data: z\r\r"])
    assert events == [SSEEvent(data="z")]
    assert not decoder.truncated


def test_invalid_utf8_is_replaced_not_raised() -> None:
    """Bytes that are not UTF-8 become U+FFFD instead of failing the stream."""
    events, _ = decode_in([b"data: \xff\xfe ok\n\n"])
    assert events == [SSEEvent(data="\ufffd\ufffd ok")]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12),
    st.sampled_from([b"\n", b"\r\n", b"\r"]),
)
def test_arbitrary_chunking(cuts: list[int], line_end: bytes) -> None:
    """Any chunking of the stream with any line ending yields the same events."""
    data = STREAM.replace(b"\n", line_end)
    points = sorted({min(c, len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    events, decoder = decode_in(pieces)
    assert events == EXPECTED
    assert not decoder.truncated
