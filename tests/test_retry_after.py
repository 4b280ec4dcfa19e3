"""Retry-After and retry-after-ms parsing: pure, with the time passed in."""

from __future__ import annotations

import calendar
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from httpx_retrying._retry_after import parse_retry_after, requested_delay, wait_with_retry_after

NOW = float(calendar.timegm((2026, 11, 22, 12, 0, 0, 0, 0, 0)))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("120", 120.0),
        ("  7 ", 7.0),
        ("2.5", 2.5),  # a decimal is tolerated (RFC 9110 says integer)
        (".5", 0.5),
        ("Sun, 22 Nov 2026 12:00:30 GMT", 30.0),  # IMF-fixdate
        ("Sunday, 22-Nov-26 12:01:00 GMT", 60.0),  # obsolete RFC 850
        ("Sun Nov 22 12:00:05 2026", 5.0),  # asctime
        ("Sun Nov  1 12:00:00 2026", 0.0),  # asctime, space-padded day, in the past
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),  # a date in the past means now
        ("sun, 22 nov 2026 12:00:30 gmt", 30.0),  # case-insensitive
    ],
)
def test_parses_each_form(value: str, expected: float) -> None:
    """Delta-seconds, decimals and all three HTTP-date forms give seconds from now."""
    assert parse_retry_after(value, NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "-1",
        "soon",
        "nan",
        "NaN",
        "inf",
        "1e3",
        "١٢",
        "0x10",
        "1,5",
        "Sun, 32 Nov 2026 12:00:00 GMT",
        "Sun, 22 Foo 2026 12:00:00 GMT",
        "Sun, 22 Nov 2026 25:00:00 GMT",
        "12 s",
    ],
)
def test_rejects_malformed_values(value: str) -> None:
    """Negative, non-numeric, non-ASCII digits and impossible dates give no hint."""
    assert parse_retry_after(value, NOW) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sun, 22 Nov 2026 12:00:30 UTC", 30.0),  # a zone name other than GMT
        ("Sun, 22 Nov 2026 12:00:30 UT", 30.0),
        ("Sun, 22 Nov 2026 12:00:30", 30.0),  # no zone: UTC
        ("Sun, 22 Nov 2026 12:00:30 +0000", 30.0),
        ("Sun, 22 Nov 2026 13:00:30 +0100", 30.0),  # a numeric offset
        ("Sun, 22 Nov 2026 07:00:30 EST", 30.0),
        ("Sun, 22 Nov 2026 12:00:30 -0000", 30.0),  # "zone unknown": UTC
        ("22 Nov 2026 12:00:30 GMT", 30.0),  # no weekday
        ("Sun, 22 Nov 2026 12:01 GMT", 60.0),  # no seconds
        ("Sun,22 Nov 2026 12:00:30 GMT", 30.0),  # no space after the comma
        ("Mon, 3 Jun 2019 12:00:00 UTC", 0.0),  # the example, long past
    ],
)
def test_parses_the_dates_real_servers_send(value: str, expected: float) -> None:
    """Issue 10 item 9: the forms `email.utils` reads (urllib3, openai) are no longer dropped."""
    assert parse_retry_after(value, NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 22 Nov 2026 12:00:30 +9999",  # an offset of more than a day
        "Mon, 3 Jun 10000 12:00:00 UTC",  # past datetime's range
        "Mon, 3 Jun " + "9" * 5000 + " 12:00:00",  # too long to be a date
        "Mon, 3 Jun 2_019 12:00:00 UTC",  # int() spellings are not digits
        "Mon, \u0661 Jun \u0662\u0660\u0661\u0669 12:00:00 UTC",  # nor Arabic-Indic digits
        "Mon, 3 Jun 2019 24:00:00 UTC",
        "Mon, 3 Jun 2019",  # no time
        "2019-06-03T12:00:00Z",  # ISO 8601 is not an HTTP date
    ],
)
def test_rejects_impossible_and_hostile_loose_dates(value: str) -> None:
    assert parse_retry_after(value, NOW) is None


def test_the_loose_date_at_the_edges_of_time_is_no_error() -> None:
    """Years 0 and 1, year 9999 behind UTC: a past date, or a huge wait, never a crash."""
    # email.utils reads any year below 100 as two digits: 0000 is 2000, in the past.
    assert parse_retry_after("Mon, 3 Jun 0000 12:00:00 UTC", NOW) == 0.0
    assert parse_retry_after("Mon, 1 Jan 0001 00:00:00 +0100", NOW) in (None, 0.0)
    far = parse_retry_after("Fri, 31 Dec 9999 23:59:59 -1200", NOW)
    assert far is None or far > 1e11


def test_absurd_values_are_infinite_not_errors() -> None:
    """A 400-digit number is too long a wait, not a crash."""
    assert parse_retry_after("9" * 400, NOW) == math.inf
    assert parse_retry_after("9999999999", NOW) == 9999999999.0


def test_two_digit_years_pick_the_right_century() -> None:
    """RFC 9110: a two-digit year more than 50 years ahead is in the past."""
    assert parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", NOW) == 0.0
    assert parse_retry_after("Monday, 22-Nov-27 12:00:00 GMT", NOW) == pytest.approx(365 * 86400)


def test_retry_after_ms_wins_and_falls_back() -> None:
    """`retry-after-ms` is preferred; a malformed one falls back to Retry-After."""
    headers = {"retry-after-ms": "1500", "retry-after": "9"}
    assert requested_delay(headers.get, NOW) == 1.5
    headers = {"retry-after-ms": "soon", "retry-after": "9"}
    assert requested_delay(headers.get, NOW) == 9.0
    assert requested_delay({}.get, NOW) is None
    assert requested_delay({"retry-after-ms": "-5"}.get, NOW) is None


def test_combination_is_a_floor_with_spread() -> None:
    """The server's wait is a floor, spread upwards, capped, and refused when too long."""
    kwargs = {"spread": 0.5, "max_retry_after": 60.0}
    assert wait_with_retry_after(0.1, 2.0, uniform=0.0, **kwargs) == 2.0
    assert wait_with_retry_after(0.1, 2.0, uniform=1.0, **kwargs) == 3.0
    assert wait_with_retry_after(5.0, 2.0, uniform=0.5, **kwargs) == 5.0  # backoff is larger
    assert wait_with_retry_after(0.1, 50.0, uniform=1.0, **kwargs) == 60.0  # spread capped
    assert wait_with_retry_after(0.1, 61.0, uniform=0.0, **kwargs) is None


text = st.one_of(
    st.text(),
    st.binary().map(lambda raw: raw.decode("latin-1")),
    st.integers(min_value=-(10**30), max_value=10**400).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.datetimes().map(lambda moment: moment.strftime("%a, %d %b %Y %H:%M:%S GMT")),
)


@given(value=text, now=st.floats(min_value=0, max_value=4e9))
def test_any_header_text_parses_without_raising(value: str, now: float) -> None:
    """Whatever a server sends: no exception, and None or a non-negative number."""
    delay = parse_retry_after(value, now)
    assert delay is None or (delay >= 0 and not math.isnan(delay))


@given(
    ms=st.one_of(st.none(), text),
    seconds=st.one_of(st.none(), text),
    backoff=st.floats(min_value=0, max_value=1e6),
    uniform=st.floats(min_value=0, max_value=1, exclude_max=True),
    max_retry_after=st.floats(min_value=0, max_value=1e6),
)
def test_resulting_wait_is_bounded(
    ms: str | None, seconds: str | None, backoff: float, uniform: float, max_retry_after: float
) -> None:
    """A hostile header yields no wait, or a finite one in [0, max(backoff, max_retry_after)]."""
    headers = {
        name: value
        for name, value in (("retry-after-ms", ms), ("retry-after", seconds))
        if value is not None
    }
    asked = requested_delay(headers.get, NOW)
    if asked is None:
        return
    wait = wait_with_retry_after(
        backoff, asked, spread=0.5, uniform=uniform, max_retry_after=max_retry_after
    )
    if wait is not None:
        assert math.isfinite(wait)
        assert 0 <= wait <= max(backoff, max_retry_after)
        assert wait >= backoff
        assert wait >= asked


@pytest.mark.parametrize(
    "value",
    ["Sat, 31 Feb 2099 00:00:00 GMT", "Sunday, 31-Apr-99 00:00:00 GMT", "Sat Feb 30 00:00:00 2099"],
)
def test_an_impossible_date_in_an_exact_form_is_ignored(value: str) -> None:
    """31 February is no date: not read as 3 March."""
    assert parse_retry_after(value, 0.0) is None
