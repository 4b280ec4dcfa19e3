"""Parse the server's requested wait: `Retry-After` and `retry-after-ms`.

Pure functions: the current time is passed in, nothing here reads a clock.
Whatever a server sends, the result is `None` (no usable hint) or a
non-negative float, possibly `inf` for absurdly large values; the caller
decides what a too-long wait means.

Dates: the three RFC 9110 forms are read exactly; anything else goes to
`email.utils.parsedate_to_datetime`, which real servers' dates need
(`Mon, 3 Jun 2019 12:00:00 UTC`, numeric zones, no zone at all, meaning UTC),
as urllib3 and the openai SDK read them. Only short ASCII text reaches it, so
foreign digits and Python's `1_000` spelling stay malformed.
"""

from __future__ import annotations

import calendar
import datetime
import re
from collections.abc import Callable

__all__ = ["parse_delta_seconds", "parse_retry_after", "requested_delay", "wait_with_retry_after"]

# Patterns are compiled on first use (by `re`'s cache), keeping the import cheap.
# ASCII digits only: `\d` would accept Arabic-Indic and other digits.
_NUMBER = r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+"
_FLAGS = re.ASCII | re.IGNORECASE

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_TIME = r"([0-9]{2}):([0-9]{2}):([0-9]{2})"
# RFC 9110 section 5.6.7: IMF-fixdate, the obsolete RFC 850 form, and asctime.
_IMF_FIXDATE = r"[a-z]{3}, ([0-9]{2}) ([a-z]{3}) ([0-9]{4}) " + _TIME + r" gmt"
_RFC850 = r"[a-z]{6,9}, ([0-9]{2})-([a-z]{3})-([0-9]{2}) " + _TIME + r" gmt"
_ASCTIME = r"[a-z]{3} ([a-z]{3}) ([ 0-9][0-9]) " + _TIME + r" ([0-9]{4})"


def parse_delta_seconds(text: str) -> float | None:
    """A non-negative decimal number of ASCII digits as a float (`inf` if huge), else None."""
    if re.fullmatch(_NUMBER, text, _FLAGS) is None:
        return None
    return float(text)  # a 400-digit number is `inf`, never an error


def _epoch(year: int, month: str, day: int, hms: tuple[str, str, str]) -> float | None:
    month_number = _MONTHS.get(month.lower())
    hour, minute, second = (int(part) for part in hms)
    if month_number is None or not (1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    try:
        datetime.date(year, month_number, day)  # 31 Feb is no date (timegm would roll it over)
        return float(calendar.timegm((year, month_number, day, hour, minute, second, 0, 0, 0)))
    except (ValueError, OverflowError):  # e.g. year 0000: no such date
        return None


def _http_date(text: str, now: float) -> float | None:
    if match := re.fullmatch(_IMF_FIXDATE, text, _FLAGS):
        day, month, year, *hms = match.groups()
        return _epoch(int(year), month, int(day), (hms[0], hms[1], hms[2]))
    if match := re.fullmatch(_RFC850, text, _FLAGS):
        day, month, short_year, *hms = match.groups()
        # RFC 9110: a two-digit year more than 50 years ahead is in the past century.
        this_year = int(now // 31_556_952) + 1970
        year = this_year // 100 * 100 + int(short_year)
        if year > this_year + 50:
            year -= 100
        return _epoch(year, month, int(day), (hms[0], hms[1], hms[2]))
    if match := re.fullmatch(_ASCTIME, text, _FLAGS):
        month, day, *hms, year = match.groups()
        return _epoch(int(year), month, int(day.strip()), (hms[0], hms[1], hms[2]))
    return _loose_date(text)


#: Longer than any real date (`Wednesday, 30 September 2026 23:59:59 +0000` is 44).
_LONGEST_DATE = 64


def _loose_date(text: str) -> float | None:
    """Unix seconds for the other dates `email.utils` reads; a date with no zone is UTC."""
    if len(text) > _LONGEST_DATE or not text.isascii() or "_" in text:
        return None
    from email.utils import parsedate_to_datetime  # rarely needed: keep the import cheap

    try:
        moment = parsedate_to_datetime(text)
        if moment.tzinfo is None:  # naive would mean local time to `timestamp()`
            moment = moment.replace(tzinfo=datetime.UTC)
        return moment.timestamp()
    except (ValueError, OverflowError, IndexError, TypeError):  # year 0, +9999 zones, ...
        return None


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait for a `Retry-After` value, at wall-clock time `now`.

    Accepts delta-seconds (tolerating a decimal fraction), the three HTTP-date
    forms and the looser dates `email.utils.parsedate_to_datetime` reads (a
    date without a zone is UTC); a date in the past means "now" (0.0). Anything
    else, including negative numbers, NaN, words and impossible dates, is `None`.
    """
    text = value.strip()
    seconds = parse_delta_seconds(text)
    if seconds is not None:
        return seconds
    moment = _http_date(text, now)
    if moment is None:
        return None
    return max(0.0, moment - now)


def requested_delay(get_header: Callable[[str], str | None], now: float) -> float | None:
    """The wait a response asks for, preferring `retry-after-ms` to `Retry-After`.

    `get_header` looks a header up case-insensitively (`response.headers.get`).
    The result is `None` or a non-negative float that may be `inf`.
    """
    milliseconds = get_header("retry-after-ms")
    if milliseconds is not None:
        parsed = parse_delta_seconds(milliseconds.strip())
        if parsed is not None:
            return parsed / 1000.0
    value = get_header("retry-after")
    if value is None:
        return None
    return parse_retry_after(value, now)


def wait_with_retry_after(
    backoff: float, asked: float, *, spread: float, uniform: float, max_retry_after: float
) -> float | None:
    """Combine our backoff with a server-requested wait `asked` (seconds).

    The server's value is a floor, not a replacement: the wait is the larger of
    the backoff and `asked * (1 + spread * uniform)` (never beyond
    `max_retry_after`), so clients told the same `Retry-After` spread out over
    `[asked, asked * (1 + spread)]` instead of returning in one instant, and a
    server repeating "1 second" cannot cut a growing backoff short. A request
    for more than `max_retry_after` is refused: None.
    """
    if asked > max_retry_after:
        return None
    return max(backoff, min(asked * (1.0 + spread * uniform), max_retry_after))
