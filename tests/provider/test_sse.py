from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provider.sse import Event, SSEParser
from tests.capture import capture as load


def parse_all(chunks: list[bytes], **kw: int) -> list[Event]:
    parser = SSEParser(**kw)
    out: list[Event] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    return out + parser.end()


def test_data_with_and_without_space_and_comments() -> None:
    body = b": comment\ndata:a\n\ndata: b\n\n:\n\ndata:  c\n\n"
    assert [e.data for e in parse_all([body])] == ["a", "b", " c"]


def test_crlf_cr_and_lf_line_endings_give_the_same_events() -> None:
    lf = b"event: x\ndata: 1\ndata: 2\n\ndata: 3\n\n"
    expected = parse_all([lf])
    assert expected == [Event("1\n2", "x"), Event("3")]
    assert parse_all([lf.replace(b"\n", b"\r\n")]) == expected
    assert parse_all([lf.replace(b"\n", b"\r")]) == expected


def test_crlf_split_between_reads_is_one_line_ending() -> None:
    # "\r" at the end of one read and "\n" at the start of the next must not
    # count as two line endings (which would dispatch an empty line early).
    events = parse_all([b"data: a\r", b"\ndata: b\r\n\r\n"])
    assert events == [Event("a\nb")]


def test_event_name_resets_after_dispatch_and_id_persists() -> None:
    events = parse_all([b"event: error\nid: err-1\ndata: x\n\ndata: y\n\n"])
    assert events == [Event("x", "error", "err-1"), Event("y", "", "err-1")]


def test_unfinished_event_at_end_is_not_dispatched() -> None:
    assert parse_all([b'data: [DONE]\n\n{"status":"success"}']) == [Event("[DONE]")]


def test_utf8_character_split_across_reads() -> None:
    body = "data: héllo — ✓ 🙂\n\n".encode()
    for i in range(len(body) + 1):
        assert parse_all([body[:i], body[i:]]) == [Event("héllo — ✓ 🙂")]


def test_overlong_line_is_skipped_with_bounded_memory() -> None:
    parser = SSEParser(max_line=100)
    out = parser.feed(b"data: " + b"x" * 80)
    out += parser.feed(b"y" * 500)  # now over the limit: dropped, not buffered
    assert len(parser._buf) <= 100
    out += parser.feed(b"z" * 500 + b"\ndata: ok\n\n")
    assert out == [Event("ok")]
    assert parser.skipped_lines == 1


@pytest.mark.parametrize(
    "name",
    [
        "legacy-chat-stream.http",
        "legacy-upstream-error.http",
        "aipkit-stream.http",
        "aipkit-upstream-error.http",
        "aipkit-bad-nonce-stream.http",
    ],
)
def test_captures_parse_identically_at_every_split_point(name: str) -> None:
    body = load(name).body
    whole = parse_all([body])
    assert whole, "the capture holds events"
    for i in range(0, len(body) + 1, 7 if len(body) > 3000 else 1):
        assert parse_all([body[:i], body[i:]]) == whole
    assert parse_all([body[i : i + 1] for i in range(len(body))]) == whole


@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=8))
def test_any_bytes_any_split_same_events_never_raises(body: bytes, cuts: list[int]) -> None:
    points = sorted({min(c, len(body)) for c in cuts})
    pieces = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    assert parse_all(pieces) == parse_all([body])


#: Pieces SSE streams are made of, so random bodies are mostly well-formed events:
#: the fast path (whole events in one read) and the line rules (one byte per read,
#: never a whole event at once) both see them.
SSE_PIECES = [
    b"data: ",
    b"data:",
    b"event: ",
    b"event: done",
    b"id: 7",
    b": comment",
    b"retry: 5",
    b"\n",
    b"\n\n",
    b"\r",
    b"\r\n",
    b'{"delta":"h\xc3\xa9"}',
    b"\xc3",
    b" ",
    b"x" * 40,
]


@given(
    st.lists(st.sampled_from(SSE_PIECES), max_size=40),
    st.sampled_from([1 << 20, 8, 30]),
)
def test_whole_events_in_one_read_parse_as_the_line_rules_do(
    pieces: list[bytes], max_line: int
) -> None:
    body = b"".join(pieces)
    whole, bytewise = SSEParser(max_line=max_line), SSEParser(max_line=max_line)
    at_once = whole.feed(body) + whole.end()
    one_by_one = [e for i in range(len(body)) for e in bytewise.feed(body[i : i + 1])]
    assert at_once == one_by_one + bytewise.end()
    assert whole.skipped_lines == bytewise.skipped_lines


def test_a_lone_cr_ends_an_overlong_line_when_it_comes_alone() -> None:
    long = b"data: " + b"x" * 40
    # The line end (a lone \r, held back: it may start \r\n) comes in its own read,
    # while the over-long line is being skipped: the next line is a line of its own.
    assert parse_all([long, b"\r", b"data: ok\r\r"], max_line=30) == [Event("ok")]
    # A line of exactly max_line bytes is kept, its held-back \r is not part of it.
    exact = b"data: " + b"y" * 24
    assert parse_all([exact, b"\r", b"\r"], max_line=30) == [Event("y" * 24)]
