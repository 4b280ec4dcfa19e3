"""The pure parts of body-phase retries: validators, ranges, splicing, classification.

No sockets: RFC 9110's rules for resuming, and RFC 9113's "not processed"
signals, checked value by value (the real-server proofs are in test_body_phase.py).
"""

from __future__ import annotations

import email.utils
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from httpx_retrying._classify import Sent, classify
from httpx_retrying._flavour import Flavour
from httpx_retrying._ranges import Splice, content_length, media_type, splice_for, strong_validator

FLAVOUR = Flavour(httpx)
NOW = 1_750_000_000.0


def date(moment: float) -> str:
    return email.utils.formatdate(moment, usegmt=True)


def headers(**fields: str) -> httpx.Headers:
    return httpx.Headers({name.replace("_", "-"): value for name, value in fields.items()})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"etag": '"v1"'}, '"v1"'),
        ({"etag": ' "v1" '}, '"v1"'),
        ({"etag": 'W/"v1"'}, None),  # weak: may not go in If-Range
        ({"etag": "v1"}, None),  # not an entity tag
        ({"etag": 'W/"v1"', "last_modified": date(NOW - 60), "date": date(NOW)}, None),
        ({"last_modified": date(NOW - 60), "date": date(NOW)}, date(NOW - 60)),
        ({"last_modified": date(NOW), "date": date(NOW)}, None),  # not a second older: weak
        ({"last_modified": date(NOW - 60)}, None),  # no Date to compare with
        ({"last_modified": "yesterday", "date": date(NOW)}, None),
        ({}, None),
    ],
)
def test_strong_validators(fields: dict[str, str], expected: str | None) -> None:
    """RFC 9110 8.8.2.2 and 13.1.5: a strong ETag, else a Last-Modified a second before Date."""
    assert strong_validator(headers(**fields)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12", 12),
        (" 7 ", 7),
        ("\u00b2", None),
        ("9" * 5000, None),
        ("-1", None),
        ("", None),
        (None, None),
    ],
)
def test_content_length_is_parsed_strictly(value: str | None, expected: int | None) -> None:
    """ASCII digits only, at most 18 of them: never a ValueError."""
    assert content_length(value) == expected


def test_media_type_ignores_parameters_and_case() -> None:
    """`Text/Event-Stream; charset=utf-8` is an event stream."""
    assert media_type("Text/Event-Stream; charset=utf-8") == "text/event-stream"
    assert media_type(None) == ""


def test_a_200_resumes_from_where_it_broke() -> None:
    """Range bytes=N- with If-Range; a 206 starting at N is spliced to the end."""
    splice = splice_for({}, 200, headers(etag='"v1"', content_length="10"))
    assert splice is not None
    assert splice.take(b"0123") == b"0123"
    assert splice.continuation_headers() == {"Range": "bytes=4-9", "If-Range": '"v1"'}
    assert splice.accept(headers(content_range="bytes 4-9/10", etag='"v1"'), 206) is None
    assert splice.take(b"456789") == b"456789"
    assert splice.satisfied
    assert splice.shortfall() is None


def test_a_200_with_the_same_validator_is_skipped_to_the_position() -> None:
    """A server ignoring Range answers 200: with the same strong ETag, the prefix is dropped."""
    splice = splice_for({}, 200, headers(etag='"v1"', content_length="10"))
    assert splice is not None
    splice.take(b"0123")
    assert splice.accept(headers(etag='"v1"', content_length="10"), 200) is None
    assert b"".join(splice.take(chunk) for chunk in (b"01", b"2345", b"6789")) == b"456789"


def test_the_callers_range_is_composed() -> None:
    """A 206 to the caller's bytes=100-199 resumes as bytes=(100+N)-199."""
    splice = splice_for(
        {"range": "bytes=100-199"},
        206,
        headers(etag='"v1"', content_range="bytes 100-199/1000", content_length="100"),
    )
    assert splice is not None
    splice.take(b"x" * 30)
    assert splice.continuation_headers()["Range"] == "bytes=130-199"
    # A 200 (range ignored) of the whole representation: skip to 130, stop at 199.
    assert splice.accept(headers(etag='"v1"', content_length="1000"), 200) is None
    assert splice.take(b"y" * 1000) == b"y" * 70
    assert splice.satisfied


@pytest.mark.parametrize(
    ("status", "fields", "why"),
    [
        (206, {"content_range": "bytes 5-9/10"}, "starts at byte 5, not 4"),
        (206, {"content_range": "bytes 4-9/11"}, "whole is 11 bytes"),
        (206, {"content_range": "bytes 4-8/10"}, "ends at byte 8"),
        (206, {"content_range": "bytes 4-9/10", "etag": '"v2"'}, "another validator"),
        (206, {"content_range": "bytes 4-9/10", "content_encoding": "gzip"}, "Content-Encoding"),
        (206, {}, "no usable single Content-Range"),
        (200, {"etag": '"v2"', "content_length": "10"}, "another validator"),
        (200, {"etag": 'W/"v1"', "content_length": "10"}, "another validator"),
        (200, {"etag": '"v1"', "content_length": "12"}, "12 bytes, not 10"),
        (416, {"content_range": "bytes */10"}, "answered 416"),
    ],
)
def test_anything_else_is_never_spliced(status: int, fields: dict[str, str], why: str) -> None:
    """Wrong range, another validator or encoding, 416: the resume ends, saying why."""
    splice = splice_for({}, 200, headers(etag='"v1"', content_length="10"))
    assert splice is not None
    splice.take(b"0123")
    reason = splice.accept(headers(**fields), status)
    assert reason is not None
    assert why in reason


@pytest.mark.parametrize(
    ("request_range", "status", "fields"),
    [
        ({}, 200, {"etag": 'W/"v1"'}),  # weak validator
        ({}, 200, {}),  # no validator
        ({"range": "bytes=0-9,20-29"}, 206, {"etag": '"v1"', "content_range": "bytes 0-9/100"}),
        ({"range": "bytes=-10"}, 206, {"etag": '"v1"', "content_range": "bytes 90-99/100"}),
        ({"range": "bytes=5-9"}, 206, {"etag": '"v1"', "content_range": "bytes 0-9/100"}),
        ({}, 206, {"etag": '"v1"', "content_range": "bytes 0-9/100"}),  # a range nobody asked for
        (
            {"range": "bytes=0-"},
            206,
            {"etag": '"v1"', "content_type": "multipart/byteranges; boundary=x"},
        ),
        ({}, 404, {"etag": '"v1"'}),
    ],
)
def test_responses_that_cannot_be_resumed(
    request_range: dict[str, str], status: int, fields: dict[str, str]
) -> None:
    """Weak or missing validators, multi-range, suffix or foreign ranges, other statuses."""
    assert splice_for(request_range, status, headers(**fields)) is None


def test_a_body_of_unknown_length_learns_it_from_the_continuation() -> None:
    """A chunked 200 resumes with bytes=N-; the 206's total says where the end is."""
    splice = splice_for({}, 200, headers(etag='"v1"'))
    assert splice is not None
    assert splice.owed is None
    splice.take(b"abc")
    assert splice.continuation_headers()["Range"] == "bytes=3-"
    assert splice.accept(headers(content_range="bytes 3-5/6"), 206) is None
    assert splice.take(b"de") == b"de"
    assert splice.shortfall() == "the body ended at byte 5 of 6"


def _chunks(data: bytes, size: int = 7) -> list[bytes]:
    return [data[index : index + size] for index in range(0, len(data), size)]


@given(
    size=st.integers(1, 2000),
    breaks=st.lists(st.tuples(st.integers(0, 2000), st.booleans()), max_size=6),
)
def test_splicing_after_any_breaks_gives_the_exact_body(
    size: int, breaks: list[tuple[int, bool]]
) -> None:
    """Each source breaks after any number of raw bytes; the next is a 206 from the position or
    the whole body again (a 200 with the same validator): the caller gets each byte once."""
    body = bytes(index % 251 for index in range(size))
    splice = Splice('"v"', "", 0, size - 1, size)
    delivered = b""
    source = body
    for raw_before_break, whole_again in breaks:
        delivered += b"".join(splice.take(chunk) for chunk in _chunks(source[:raw_before_break]))
        if splice.position == size:
            break  # nothing left to resume
        if whole_again:
            assert splice.accept(headers(etag='"v"', content_length=str(size)), 200) is None
            source = body
        else:
            start = splice.position
            range_ = headers(content_range=f"bytes {start}-{size - 1}/{size}")
            assert splice.accept(range_, 206) is None
            source = body[start:]
    delivered += b"".join(splice.take(chunk) for chunk in _chunks(source))
    assert delivered == body
    assert splice.shortfall() is None


# -- classification ---------------------------------------------------------------


class StreamReset:  # named like h2's events: recognised by class name, h2 is never imported
    def __init__(self, error_code: int) -> None:
        self.error_code = error_code


class ConnectionTerminated:
    def __init__(self, last_stream_id: int) -> None:
        self.last_stream_id = last_stream_id


def mapped(event: Any) -> Exception:
    """What httpx raises: its RemoteProtocolError `from` httpcore's, whose args[0] is the event."""
    try:
        try:
            raise RuntimeError(event)  # stands in for httpcore.RemoteProtocolError(event)
        except RuntimeError as cause:
            raise httpx.RemoteProtocolError(str(event)) from cause
    except httpx.RemoteProtocolError as error:
        return error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (mapped(StreamReset(7)), Sent.NOT_PROCESSED),  # REFUSED_STREAM
        (mapped(StreamReset(8)), Sent.MAYBE),  # CANCEL: it may have been processed
        (mapped(ConnectionTerminated(0)), Sent.NOT_PROCESSED),  # GOAWAY: nothing processed
        (mapped(ConnectionTerminated(3)), Sent.MAYBE),
        (httpx.RemoteProtocolError("Server disconnected"), Sent.MAYBE),
        (httpx.ConnectError("refused"), Sent.NEVER),
        (httpx.PoolTimeout("busy"), Sent.NEVER),
        (httpx.ReadTimeout("slow"), Sent.MAYBE),
        (httpx.TimeoutException("unknown"), Sent.MAYBE),
        (httpx.CloseError("closing"), Sent.MAYBE),
        (httpx.LocalProtocolError("bad"), Sent.CLIENT_SIDE),
        (httpx.UnsupportedProtocol("ftp"), Sent.CLIENT_SIDE),
        (httpx.ProxyError("proxy"), Sent.CLIENT_SIDE),
    ],
)
def test_classification(error: Exception, expected: Sent) -> None:
    """What each error proves about whether the request was processed."""
    assert classify(error, FLAVOUR) is expected


def test_a_cyclic_cause_chain_ends() -> None:
    """Exceptions whose causes loop are walked a bounded number of steps."""
    first, second = httpx.RemoteProtocolError("a"), RuntimeError("b")
    first.__cause__, second.__cause__ = second, first
    assert classify(first, FLAVOUR) is Sent.MAYBE


def test_a_206_that_does_not_say_where_the_body_ends_is_refused() -> None:
    """Neither the first answer (chunked) nor the 206 (`/*`) gives the end: a short 206 could
    pass for the whole body, so it is not spliced."""
    splice = splice_for(httpx.Headers(), 200, headers(etag='"v"'))
    assert splice is not None
    splice.take(b"x" * 10)
    why = splice.accept(headers(etag='"v"', content_range="bytes 10-19/*"), 206)
    assert why == "neither the body nor the 206 says where the body ends"


def test_a_200_continuation_that_ends_inside_the_skip_is_a_break() -> None:
    """The whole body again, shorter than what was already delivered: not complete."""
    splice = splice_for(httpx.Headers(), 200, headers(etag='"v"'))
    assert splice is not None
    splice.take(b"x" * 50)
    assert splice.accept(headers(etag='"v"'), 200) is None
    assert splice.take(b"z" * 30) == b""
    assert splice.shortfall() == "the continuation ended 20 bytes before byte 50"


def test_a_refusal_never_quotes_a_header_value() -> None:
    """Reasons reach the logs and the exception note, which never show header values."""
    splice = splice_for(httpx.Headers(), 200, headers(etag='"v1"', content_length="100"))
    assert splice is not None
    splice.take(b"x" * 10)
    reply = headers(etag='"secret-looking"', content_range="bytes 10-99/100")
    assert splice.accept(reply, 206) == "the 206 carries another validator"
