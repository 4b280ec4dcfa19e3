"""Resume arithmetic: when a broken download may be continued, and whether a reply continues it.

Pure (no I/O): RFC 9110 sections 8.8 (strong validators), 13.1.5 (If-Range),
14 (Range, Content-Range) and 15.3.7 (206). Offsets count *raw* bytes, before
content decoding: a range indexes the encoded representation (section 8.4), so
splicing raw bytes lets the client's gzip/br/zstd decoder simply keep going.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping

__all__ = ["Splice", "content_length", "media_type", "splice_for"]

_ASCII = re.ASCII
_CONTENT_RANGE = r"bytes ([0-9]{1,18})-([0-9]{1,18})/([0-9]{1,18}|\*)"
_SINGLE_RANGE = r"bytes=([0-9]{1,18})-([0-9]{0,18})"
_MAX_DIGITS = 18  # below 2**63: lengths and offsets parse as plain ints, never huge ones


def content_length(value: str | None) -> int | None:
    """A `Content-Length` value as an int, or None for anything but ASCII digits (`'²'`...)."""
    if value is None:
        return None
    text = value.strip()
    if not (0 < len(text) <= _MAX_DIGITS and text.isascii() and text.isdigit()):
        return None
    return int(text)


def media_type(value: str | None) -> str:
    """`text/event-stream; charset=utf-8` -> `text/event-stream` (lower case)."""
    return "" if value is None else value.partition(";")[0].strip().lower()


def _encoding(headers: Mapping[str, str]) -> str:
    return "".join(headers.get("content-encoding", "").lower().split())


def _http_date(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def strong_validator(headers: Mapping[str, str]) -> str | None:
    """The value for `If-Range`: a strong ETag, else a strong `Last-Modified`, else None.

    A weak ETag (`W/"..."`) rules the resume out: the client then has an entity
    tag, so it may not fall back to a date (section 13.1.5). A `Last-Modified`
    is strong only when the response's `Date` is at least one second later
    (section 8.8.2.2).
    """
    etag = headers.get("etag")
    if etag is not None:
        etag = etag.strip()
        if len(etag) >= 2 and etag[0] == etag[-1] == '"':
            return etag
        return None  # weak, or not an entity tag at all
    last_modified = headers.get("last-modified")
    modified, date = _http_date(last_modified), _http_date(headers.get("date"))
    if last_modified is not None and modified is not None and date is not None:  # noqa: SIM102
        if date - modified >= 1.0:  # section 8.8.2.2: at least a second older than the Date
            return last_modified.strip()
    return None


def _content_range(value: str | None) -> tuple[int, int, int | None] | None:
    match = re.fullmatch(_CONTENT_RANGE, (value or "").strip(), _ASCII)
    if match is None:
        return None
    first, last, total = match.groups()
    start, end = int(first), int(last)
    complete = None if total == "*" else int(total)
    if end < start or (complete is not None and end >= complete):
        return None
    return start, end, complete


class Splice:
    """One download's position: what has reached the caller, and what the current source owes.

    `start`/`end` are the representation's byte positions the caller asked for
    (inclusive; `end` None while unknown). `delivered` raw bytes have gone to the
    caller. The current source (the first response or a continuation) starts
    `skip` bytes before the position we need, and owes `owed` more (None: until
    its end).
    """

    __slots__ = ("delivered", "encoding", "end", "owed", "skip", "start", "total", "validator")

    def __init__(
        self, validator: str, encoding: str, start: int, end: int | None, total: int | None
    ) -> None:
        self.validator = validator
        self.encoding = encoding
        self.start = start
        self.end = end
        self.total = total
        self.delivered = 0
        self.skip = 0
        self.owed = None if end is None else end - start + 1

    @property
    def position(self) -> int:
        """The representation's byte position of the next byte the caller needs."""
        return self.start + self.delivered

    def continuation_headers(self) -> dict[str, str]:
        """`Range` (composed with the caller's own range) and `If-Range` for the rest."""
        last = "" if self.end is None else str(self.end)
        return {"Range": f"bytes={self.position}-{last}", "If-Range": self.validator}

    def take(self, chunk: bytes) -> bytes:
        """The part of a source's raw chunk the caller gets (after the skip, up to what is owed)."""
        if self.skip:
            dropped = min(self.skip, len(chunk))
            self.skip -= dropped
            chunk = chunk[dropped:]
        if self.owed is not None:
            chunk = chunk[: self.owed]
            self.owed -= len(chunk)
        self.delivered += len(chunk)
        return chunk

    @property
    def satisfied(self) -> bool:
        """Every byte owed has been delivered (nothing more to read from this source)."""
        return self.owed == 0

    def shortfall(self) -> str | None:
        """Why a source that ended cleanly still broke the body (None when it is complete)."""
        if self.skip:
            return f"the continuation ended {self.skip} bytes before byte {self.position}"
        if self.owed:
            last = self.position + self.owed
            return f"the body ended at byte {self.position} of {last}"
        return None

    def accept(self, headers: Mapping[str, str], status: int) -> str | None:
        """Take a continuation's status and headers; None if it continues us, else why not.

        A 206 must start exactly where we are, end where we want and agree on
        the total; a 200 must be the same representation (identical strong
        validator) and is then skipped up to where we are. Both must carry the
        same `Content-Encoding`. Nothing else is ever spliced.
        """
        if _encoding(headers) != self.encoding:
            return "the continuation has another Content-Encoding"
        if status == 206:
            parsed = _content_range(headers.get("content-range"))
            if parsed is None:
                return "the 206 has no usable single Content-Range"
            first, last, total = parsed
            etag = headers.get("etag")
            if etag is not None and etag.strip() != self.validator:
                return "the 206 carries another validator"  # its value is not logged
            if first != self.position:
                return f"the 206 starts at byte {first}, not {self.position}"
            if self.total is not None and total != self.total:
                return f"the 206 says the whole is {total} bytes, not {self.total}"
            wanted_end = (
                self.end if self.end is not None else (None if total is None else total - 1)
            )
            if wanted_end is None:  # a short 206 could pass for the whole body
                return "neither the body nor the 206 says where the body ends"
            if last != wanted_end:
                return f"the 206 ends at byte {last}, not {wanted_end}"
            if self.total is None:
                self.total = total
            self.end, self.skip, self.owed = last, 0, last - first + 1
            return None
        if status == 200:
            if strong_validator(headers) != self.validator:
                return "the server sent the whole body again with another validator"
            length = content_length(headers.get("content-length"))
            if length is not None and self.total is not None and length != self.total:
                return f"the 200 is {length} bytes, not {self.total}"
            end = self.end if self.end is not None else (None if length is None else length - 1)
            self.skip = self.position
            self.owed = None if end is None else end - self.position + 1
            self.end = end
            return None
        return f"the server answered {status} to the Range request"


def splice_for(
    request_headers: Mapping[str, str], status: int, headers: Mapping[str, str]
) -> Splice | None:
    """A `Splice` for a GET response that may be resumed, or None.

    A 200, or a 206 answering the caller's own single range, with a strong
    validator. Multipart byte ranges and ranges we cannot compose are never resumed.
    """
    validator = strong_validator(headers)
    if validator is None:
        return None
    encoding = _encoding(headers)
    if status == 200:
        length = content_length(headers.get("content-length"))
        return Splice(validator, encoding, 0, None if length is None else length - 1, length)
    if status != 206 or media_type(headers.get("content-type")) == "multipart/byteranges":
        return None
    asked = re.fullmatch(_SINGLE_RANGE, request_headers.get("range", "").strip(), _ASCII)
    parsed = _content_range(headers.get("content-range"))
    if asked is None or parsed is None or int(asked.group(1)) != parsed[0]:
        return None
    first, last, total = parsed
    return Splice(validator, encoding, first, last, total)
