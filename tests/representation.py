"""RFC 9110 range logic for the fault server's resources: pure, no sockets.

A `Representation` is what a path serves (bytes, validators, Content-Encoding);
a `Serve` is how the server answers one request for it: correctly by default,
or with one of the failure modes resumable downloads meet in practice (a cut,
a stall, a server that ignores Range, a changed or weak ETag, a wrong
Content-Range, another Content-Encoding, a 416). `answer` turns the three
(representation, request, mode) into the `Reply` the server writes.

Ranges index the representation's bytes as given: for `content_encoding="gzip"`
the body is the already-encoded bytes, served raw (RFC 9110 §8.4: ranges apply
to the encoded form).
"""

from __future__ import annotations

import dataclasses
import email.utils
import time
from types import EllipsisType
from typing import NamedTuple, TypeVar

__all__ = [
    "UNSATISFIABLE",
    "Answer",
    "Representation",
    "Serve",
    "answer",
    "changed",
    "http_date",
    "if_range_holds",
    "parse_range",
]

#: `parse_range`'s answer for a syntactically valid range that selects nothing.
UNSATISFIABLE = "unsatisfiable"


def http_date(seconds: float | None = None) -> str:
    """An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for `seconds` since the epoch (now)."""
    return email.utils.formatdate(time.time() if seconds is None else seconds, usegmt=True)


@dataclasses.dataclass(frozen=True)
class Representation:
    """One selected representation: the body (already content-coded) and its metadata.

    `date=None` sends the current time; `last_modified=None` sends no Last-Modified;
    `etag=None` sends no ETag. `chunked=True` frames every response (200 and 206)
    with chunked transfer coding instead of Content-Length.
    """

    body: bytes
    etag: str | None = '"v1"'
    last_modified: str | None = None
    date: str | None = None
    content_encoding: str | None = None
    content_type: str = "application/octet-stream"
    chunked: bool = False
    chunk_size: int = 65536


@dataclasses.dataclass(frozen=True)
class Serve:
    """How the resource answers one request; every default is the correct behaviour.

    Body faults apply to the body of the response actually sent (a 206's part, a
    200's whole): `cut_after` bytes then close (`reset=True`: RST), `stall_after`
    bytes then silence until the client hangs up or the server stops, `drip`
    seconds between pieces of `drip_size` bytes.

    Failure modes: `ignore_range` answers 200 with the whole body; `body`/`etag`/
    `last_modified`/`content_encoding` (`...` keeps the resource's) make this one
    answer come from another representation, If-Range included, so `etag='"v2"'`
    yields the 200 a changed resource gives and `etag='W/"v1"'` a weak validator;
    `range_shift` serves a 206 starting that many bytes off the requested start
    (its Content-Range says so); `reported_total` claims another complete length in
    Content-Range; `unsatisfiable` answers 416 whatever was asked.
    """

    cut_after: int | None = None
    reset: bool = False
    stall_after: int | None = None
    drip: float = 0.0
    drip_size: int = 1
    ignore_range: bool = False
    body: bytes | None = None
    etag: str | EllipsisType | None = ...
    last_modified: str | EllipsisType | None = ...
    content_encoding: str | EllipsisType | None = ...
    range_shift: int = 0
    reported_total: int | None = None
    unsatisfiable: bool = False


def changed(body: bytes, etag: str | None = '"v2"') -> Serve:
    """One answer from a representation that changed since the client's first response."""
    return Serve(body=body, etag=etag)


def parse_range(value: str, total: int) -> tuple[int, int] | str | None:
    """A single `bytes=` range as (first, last) inclusive, `UNSATISFIABLE`, or None to ignore it.

    Multiple ranges, other units and invalid syntax are ignored (RFC 9110 §14.2: a
    server MAY ignore Range; the whole representation is then sent with a 200).
    """
    unit, _, spec = value.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if (
        not dash
        or not (first_text.isdigit() or first_text == "")
        or not (last_text.isdigit() or last_text == "")
    ):
        return None
    if first_text == "":  # suffix range: the last N bytes
        if last_text == "":
            return None
        suffix = int(last_text)
        if suffix == 0 or total == 0:
            return UNSATISFIABLE
        return max(0, total - suffix), total - 1
    first = int(first_text)
    last = total - 1 if last_text == "" else int(last_text)
    if last_text and last < first:
        return None
    if first >= total:
        return UNSATISFIABLE
    return first, min(last, total - 1)


def if_range_holds(if_range: str | None, etag: str | None, last_modified: str | None) -> bool:
    """RFC 9110 §13.1.5: an entity tag matches by strong comparison, a date exactly."""
    if if_range is None:
        return True
    if_range = if_range.strip()
    if if_range.startswith(('"', "W/")):
        return etag is not None and not etag.startswith("W/") and if_range == etag
    return last_modified is not None and if_range == last_modified


_T = TypeVar("_T")


def _chosen(override: _T | EllipsisType, default: _T) -> _T:
    return default if isinstance(override, EllipsisType) else override


class Answer(NamedTuple):
    """What to write: `body` is a slice of the representation's bytes (no copy)."""

    status: int
    headers: list[tuple[str, str]]
    body: memoryview
    chunked: bool
    content_length: int | None = None  # announced instead of len(body) (HEAD)


def answer(
    representation: Representation, method: str, headers: dict[str, str], serve: Serve
) -> Answer:
    """The answer to one request for `representation`; `headers` has lower-case names."""
    body = representation.body if serve.body is None else serve.body
    etag = _chosen(serve.etag, representation.etag)
    last_modified = _chosen(serve.last_modified, representation.last_modified)
    encoding = _chosen(serve.content_encoding, representation.content_encoding)
    total = len(body)
    view = memoryview(body)
    fields = [
        ("Content-Type", representation.content_type),
        ("Accept-Ranges", "bytes"),
        ("Date", representation.date or http_date()),
    ]
    fields += [("ETag", etag)] if etag is not None else []
    fields += [("Last-Modified", last_modified)] if last_modified is not None else []
    fields += [("Content-Encoding", encoding)] if encoding is not None else []
    chunked = representation.chunked
    unsatisfiable = Answer(416, [*fields, ("Content-Range", f"bytes */{total}")], view[:0], False)
    if serve.unsatisfiable:
        return unsatisfiable
    if method == "HEAD":
        return Answer(200, fields, view[:0], False, content_length=total)
    requested = headers.get("range")
    selected = (
        None
        if method != "GET"
        or requested is None
        or serve.ignore_range
        or not if_range_holds(headers.get("if-range"), etag, last_modified)
        else parse_range(requested, total)
    )
    if selected is None:
        return Answer(200, fields, view, chunked)
    if selected == UNSATISFIABLE:
        return unsatisfiable
    assert isinstance(selected, tuple)
    first, last = selected
    first = min(max(0, first + serve.range_shift), max(total - 1, 0))
    last = max(last, first)
    claimed_total = total if serve.reported_total is None else serve.reported_total
    fields.append(("Content-Range", f"bytes {first}-{last}/{claimed_total}"))
    return Answer(206, fields, view[first : last + 1], chunked)
