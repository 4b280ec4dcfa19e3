"""Read a rate limiter's reset hint: how long until a spent quota comes back.

Servers that throttle often say when to come back in rate-limit headers rather
than in `Retry-After`. `rate_limit_delay` reads the common ones:

* the IETF `RateLimit` field (draft-ietf-httpapi-ratelimit-headers-10/11): a
  Structured Fields List of items such as `"default";r=0;t=30`; an item whose
  `r` (quota left) is 0 contributes its `t` (seconds until the window ends);
* openai-style `x-ratelimit-reset-requests` / `x-ratelimit-reset-tokens`, Go
  durations such as `20ms`, `1.5s`, `6m0s`, `1h2m3s`, paired with
  `x-ratelimit-remaining-requests` / `x-ratelimit-remaining-tokens`;
* `x-ratelimit-reset` (GitHub and many others) paired with
  `x-ratelimit-remaining`, and the older IETF drafts' `ratelimit-reset` with
  `ratelimit-remaining` (express-rate-limit, GitLab): a number of at least
  10**9 is a Unix time, a smaller one delta seconds.

A reset hint counts only when its quota is spent: its remaining count is 0, or
absent or unreadable (a server that sends only a reset time means it). A reset
time whose count is positive is ignored: GitHub sends its hourly reset on every
response, and a 502 with quota left must not wait up to an hour for it.

Precedence: the longest usable hint wins. Every counted hint is a quota that is
spent, and a retry before the last of them comes back meets a 429 again, so the
wait is the longest of them (for the `RateLimit` field too, when several of its
items are spent). Which header kinds a server sends does not change the answer.

Like `_retry_after`, pure: `now` (Unix seconds) is passed in, and whatever a
server sends, the result is `None` or a non-negative float, possibly `inf` for
absurd values, never an exception. A malformed `RateLimit` field is ignored
whole, as Structured Fields require.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ._retry_after import parse_delta_seconds

__all__ = ["RATE_LIMIT_HEADERS", "rate_limit_delay"]

#: (reset header, the remaining-count header that gates it, how the reset is written).
_RESETS = (
    ("x-ratelimit-reset-requests", "x-ratelimit-remaining-requests", "duration"),
    ("x-ratelimit-reset-tokens", "x-ratelimit-remaining-tokens", "duration"),
    ("x-ratelimit-reset", "x-ratelimit-remaining", "time"),
    ("ratelimit-reset", "ratelimit-remaining", "time"),
)
#: Every header `rate_limit_delay` may read, lowercase.
RATE_LIMIT_HEADERS: frozenset[str] = frozenset(
    {"ratelimit", *(name for reset, remaining, _ in _RESETS for name in (reset, remaining))}
)

#: Below this a reset time is delta seconds; from it on, Unix seconds (2001-09-09).
_UNIX_TIME_FROM = 1e9

# -- Go durations (time.ParseDuration, unsigned) ----------------------------------

_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0}
_UNIT_SECONDS |= {"m": 60.0, "h": 3600.0}
# ASCII digits only; `ms` is tried before `m`, `us`/`µs` before `s`.
_DURATION_PART = r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)"


def _go_duration(text: str) -> float | None:
    """Seconds in a Go duration (`1h2m3.5s`, `20ms`, `0`), else None."""
    if text == "0":
        return 0.0
    if re.fullmatch(f"(?:{_DURATION_PART})+", text) is None:
        return None
    # Non-negative parts only: the sum is never NaN, at worst `inf`.
    return sum(
        float(number) * _UNIT_SECONDS[unit] for number, unit in re.findall(_DURATION_PART, text)
    )


def _reset_time(text: str, now: float) -> float | None:
    """Seconds until a reset given as Unix seconds (from 10**9) or as delta seconds."""
    value = parse_delta_seconds(text)
    if value is None or value < _UNIX_TIME_FROM:
        return value
    return max(0.0, value - now)  # `inf - now` stays `inf`


# -- the RateLimit field: a Structured Fields List (RFC 9651 section 3.1) -----------

_BARE_ITEM = (
    r'(?:"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*"'  # string
    r"|-?[0-9]{1,12}\.[0-9]{1,3}|-?[0-9]{1,15}"  # decimal, integer
    r"|[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*"  # token
    r"|:[A-Za-z0-9+/=]*:|\?[01]|@-?[0-9]{1,15}"  # byte sequence, boolean, date
    r'|%"(?:[\x20\x21\x23\x24\x26-\x7e]|%[0-9a-f]{2})*")'  # display string
)
_PARAMETER = rf"; *([a-z*][a-z0-9_\-.*]*)(?:=({_BARE_ITEM}))?"
_ITEM = rf"{_BARE_ITEM}((?:{_PARAMETER})*)"
_INNER_LIST = rf"\( *(?:{_ITEM}(?: +{_ITEM})*)? *\)(?:{_PARAMETER})*"
_SEPARATOR = r"[ \t]*,[ \t]*"
_INTEGER = r"[0-9]{1,15}"  # a non-negative sf-integer


def _list_parameters(field: str) -> list[dict[str, str]] | None:
    """The parameters of each item of a Structured List, or None if it is malformed.

    Inner lists are valid members but not items: they contribute nothing.
    """
    text = field.strip(" \t")
    members: list[dict[str, str]] = []
    position = 0
    while text:
        if match := re.compile(_ITEM).match(text, position):
            # A later key overwrites an earlier one; a key alone is the boolean true.
            members.append({key: value or "?1" for key, value in re.findall(_PARAMETER, match[1])})
        elif not (match := re.compile(_INNER_LIST).match(text, position)):
            return None
        if match.end() == len(text):
            break
        separator = re.compile(_SEPARATOR).match(text, match.end())
        if separator is None or separator.end() == len(text):
            return None  # junk after a member, or a trailing comma
        position = separator.end()
    return members


def _ratelimit_field(field: str) -> float | None:
    """The longest `t` among the items whose `r` is 0 (integers only, as the draft says)."""
    items = _list_parameters(field)
    if items is None:
        return None
    resets = [
        float(item["t"])
        for item in items
        if re.fullmatch(_INTEGER, item.get("r", "")) and int(item["r"]) == 0
        if re.fullmatch(_INTEGER, item.get("t", ""))
    ]
    return max(resets, default=None)


# -- all hints together ---------------------------------------------------------


def _spent(remaining: str | None) -> bool:
    """Whether a quota is spent: a count of 0, or none readable (absent or unknown).

    A count sent twice arrives joined by a comma (RFC 9110 5.3): `4999, 4999` is
    not spent, and neither is `4,999`.
    """
    if remaining is None:
        return True
    counts = [parse_delta_seconds(part.strip()) for part in remaining.split(",")]
    readable = [count for count in counts if count is not None]
    return not readable or 0 in readable


def rate_limit_delay(get_header: Callable[[str], str | None], now: float) -> float | None:
    """Seconds until the spent quotas a response reports come back, or None.

    `get_header` looks up a lowercase header name (`response.headers.get`);
    `now` is the wall-clock time in Unix seconds. The longest usable hint wins
    (see the module docstring); the result is None or a non-negative float that
    may be `inf`.
    """
    field = get_header("ratelimit")
    hints = [None if field is None else _ratelimit_field(field)]
    for reset_name, remaining_name, written_as in _RESETS:
        reset = get_header(reset_name)
        if reset is not None and _spent(get_header(remaining_name)):
            text = reset.strip()
            hints.append(_go_duration(text) if written_as == "duration" else _reset_time(text, now))
    return max((hint for hint in hints if hint is not None), default=None)
