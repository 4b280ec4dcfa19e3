"""Rate-limit reset hints: pure, with the time passed in."""

from __future__ import annotations

import calendar
import math

import pytest

from httpx_retrying._rate_limit import RATE_LIMIT_HEADERS, rate_limit_delay

NOW = float(calendar.timegm((2026, 11, 22, 12, 0, 0, 0, 0, 0)))


def delay(**headers: str) -> float | None:
    """`rate_limit_delay` on keyword headers (`_` for `-`), looked up as the lead's code will."""
    lowered = {name.replace("_", "-"): value for name, value in headers.items()}
    assert set(lowered) <= RATE_LIMIT_HEADERS  # every header read is declared
    return rate_limit_delay(lowered.get, NOW)


# -- the IETF RateLimit field -----------------------------------------------------


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ('"default";r=0;t=30', 30.0),
        ('"default";r=50;t=30', None),  # quota left: no wait
        ('"default";r=0', None),  # spent, but no window given
        ("default;r=0;t=5", 5.0),  # a token names the policy as well as a string
        ('"burst";r=3;t=1, "daily";r=0;t=3600', 3600.0),
        ('"a";r=0;t=20, "b";r=0;t=7', 20.0),  # several spent: the longest
        ('"x"; r=0; t=5;pk=:YWJj:', 5.0),  # spaces after `;`, a partition key
        ('"x";t=5;r=0;r=1', None),  # a repeated key: the last one counts
        ('(a b);r=0;t=9, "x";r=0;t=3', 3.0),  # an inner list is not a service limit
        ('"x";r=0;t=999999999999999', 999999999999999.0),  # 15 digits: an sf-integer
    ],
)
def test_ratelimit_field(field: str, expected: float | None) -> None:
    assert delay(ratelimit=field) == expected


@pytest.mark.parametrize(
    "field",
    [
        '"x";r=0;t=1.5',  # `t` is an integer
        '"x";r=0;t=-5',
        '"x";r=0;t="5"',
        '"x";r=0;t=9999999999999999',  # 16 digits: not an sf-integer
        '"x" ;r=0;t=5',  # no space before `;`
        '"x";r=0;t=5,',  # a trailing comma
        '"x";r=0;t=5 junk',
        "limit=100, remaining=0, reset=30",  # draft-07's dictionary: not this syntax
        '"x";r=0;t=١٢',
        '"x";R=0;T=5',  # keys are lowercase
        "",
    ],
)
def test_a_malformed_ratelimit_field_is_ignored(field: str) -> None:
    assert delay(ratelimit=field) is None


# -- openai-style Go durations ------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [
        ("20ms", 0.02),
        ("1s", 1.0),
        ("1.5s", 1.5),
        ("6m0s", 360.0),
        ("1h2m3s", 3723.0),
        ("0", 0.0),
        ("0s", 0.0),
        ("250us", 250e-6),
        ("250µs", 250e-6),
        (".5s", 0.5),
    ],
)
def test_go_durations(duration: str, seconds: float) -> None:
    assert delay(x_ratelimit_reset_requests=duration) == pytest.approx(seconds)


@pytest.mark.parametrize("duration", ["-1s", "1", "1x", "1h 2m", "\u0661s", "+1s", "1e3s", "s", ""])
def test_malformed_go_durations_are_ignored(duration: str) -> None:
    assert delay(x_ratelimit_reset_requests=duration) is None


def test_openai_headers_count_only_where_the_quota_is_spent() -> None:
    resets = {"x_ratelimit_reset_requests": "1s", "x_ratelimit_reset_tokens": "6m0s"}
    # No remaining count: the longest of the resets.
    assert delay(**resets) == 360.0
    # Requests spent, tokens left: the requests' reset only.
    spent = {"x_ratelimit_remaining_requests": "0", "x_ratelimit_remaining_tokens": "149984"}
    assert delay(**resets, **spent) == 1.0
    # Both spent: the longest.
    both = {"x_ratelimit_remaining_requests": "0", "x_ratelimit_remaining_tokens": "0"}
    assert delay(**resets, **both) == 360.0
    # Both left (as on a 500 from a healthy account): no hint.
    left = {"x_ratelimit_remaining_requests": "59", "x_ratelimit_remaining_tokens": "149984"}
    assert delay(**resets, **left) is None
    # One count sent and positive, the other absent: the unknown one counts.
    assert delay(**resets, x_ratelimit_remaining_requests="59") == 360.0


# -- x-ratelimit-reset (GitHub) and the older IETF drafts' ratelimit-reset ----------


def test_a_unix_time_reset_is_converted_with_now() -> None:
    assert delay(x_ratelimit_reset=str(int(NOW) + 30), x_ratelimit_remaining="0") == 30.0
    assert delay(x_ratelimit_reset=str(int(NOW) - 30), x_ratelimit_remaining="0") == 0.0
    assert delay(x_ratelimit_reset="1000000000") == 0.0  # 2001: in the past, never negative


def test_a_small_reset_is_delta_seconds() -> None:
    assert delay(x_ratelimit_reset="30") == 30.0
    assert delay(x_ratelimit_reset="999999999") == 999999999.0
    assert delay(ratelimit_reset="12", ratelimit_remaining="0") == 12.0


def test_a_reset_with_quota_left_is_ignored() -> None:
    """GitHub sends its reset on every response: a 502 with 4999 left must not wait for it."""
    reset = str(int(NOW) + 3000)
    assert delay(x_ratelimit_reset=reset, x_ratelimit_remaining="4999") is None
    assert delay(ratelimit_reset="30", ratelimit_remaining="1") is None


# -- precedence and hostile values --------------------------------------------------


def test_the_longest_usable_hint_wins_across_kinds() -> None:
    assert (
        delay(
            ratelimit='"default";r=0;t=30',
            x_ratelimit_reset_requests="1m30s",
            x_ratelimit_reset="10",
        )
        == 90.0
    )
    # A malformed hint does not hide a usable one.
    assert delay(ratelimit='"x";r=0;t=oops', x_ratelimit_reset="10") == 10.0


def test_no_hint_headers_no_delay() -> None:
    assert delay() is None
    assert delay(x_ratelimit_remaining="0") is None  # spent, but no reset time given


@pytest.mark.parametrize(
    "value", ["nan", "NaN", "inf", "-1", "1e309", "²", "١٢", "0x10", "soon", " ", "1_000"]
)
def test_hostile_values_are_ignored(value: str) -> None:
    for name in ("x_ratelimit_reset", "ratelimit_reset", "x_ratelimit_reset_tokens"):
        assert delay(**{name: value}) is None
    assert delay(ratelimit=f'"x";r=0;t={value}') is None


def test_huge_values_are_infinite_not_errors() -> None:
    """Too long a wait (the caller refuses it), never an exception."""
    for name in ("x_ratelimit_reset", "ratelimit_reset"):
        assert delay(**{name: "9" * 5000}) == math.inf
    assert delay(x_ratelimit_reset_tokens="9" * 5000 + "h") == math.inf
    # A 5000-digit remaining count is a positive count, not an int() overflow.
    assert delay(x_ratelimit_reset="30", x_ratelimit_remaining="9" * 5000) is None


@pytest.mark.parametrize(
    ("remaining", "expected"),
    [("4999, 4999", None), ("4,999", None), ("0, 0", 360.0), ("5, 0", 360.0), ("many", 360.0)],
)
def test_a_remaining_count_sent_twice_is_read_as_a_list(
    remaining: str, expected: float | None
) -> None:
    """A header sent twice arrives joined by a comma: quota left is not mistaken for spent."""
    resets = {"x_ratelimit_reset_requests": "6m0s"}
    assert delay(**resets, x_ratelimit_remaining_requests=remaining) == expected
