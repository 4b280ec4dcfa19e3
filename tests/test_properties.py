"""Hostile input, found by Hypothesis: headers, outcomes, backoffs, clocks and secrets.

The inner transport here is `Scripted`: it answers from a list without reading
request bodies (MockTransport reads them, which would make every body
replayable) and spends the time each attempt costs on a fake clock, honouring
the attempt's read timeout like a real transport. The decisions are shared by
the sync and async loops, so these properties run in sync; the fault matrix
runs every mode.
"""

from __future__ import annotations

import calendar
import logging
import math
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
import tenacity
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from httpx_retrying import (
    RetryEvent,
    RetryPolicy,
    RetryTransport,
    backoff_decorrelated_jitter,
    backoff_equal_jitter,
    backoff_full_jitter,
    backoff_no_jitter,
)
from httpx_retrying._policy import DEFAULT_STATUSES
from httpx_retrying._rate_limit import RATE_LIMIT_HEADERS, rate_limit_delay
from httpx_retrying._retry_after import parse_retry_after
from tests.conftest import FakeClock

NOW = float(calendar.timegm((2026, 11, 22, 12, 0, 0, 0, 0, 0)))
NEVER_SENT = ("ConnectError", "ConnectTimeout", "PoolTimeout")
MAYBE_SENT = ("ReadTimeout", "ReadError", "WriteTimeout", "WriteError", "RemoteProtocolError")
NEVER_RETRIED = ("LocalProtocolError", "UnsupportedProtocol", "ProxyError")
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Outcome = tuple[str, Any, Any]  # ("status", code, headers) or ("error", class name, None)


class Scripted(httpx.BaseTransport):
    """Answers from `outcomes` (200 once they run out); never reads a request body."""

    def __init__(
        self,
        outcomes: Sequence[Outcome],
        clock: FakeClock,
        costs: Sequence[float] = (),
    ) -> None:
        self.outcomes = list(outcomes)
        self.costs = list(costs)
        self.clock = clock
        self.requests: list[httpx.Request] = []
        self.started: list[float] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        index = len(self.requests)
        self.requests.append(request)
        self.started.append(self.clock.now)
        cost = self.costs[index] if index < len(self.costs) else 0.0
        read = (request.extensions.get("timeout") or {}).get("read")
        if read is not None and cost > read:
            self.clock.now += read
            raise httpx.ReadTimeout("timed out", request=request)
        self.clock.now += cost
        if index >= len(self.outcomes):
            return httpx.Response(200, content=b"done")
        kind, value, headers = self.outcomes[index]
        if kind == "error":
            raise getattr(httpx, value)("scripted failure", request=request)
        return httpx.Response(value, headers=headers or [], content=b"body")


def _client(inner: Scripted, policy: RetryPolicy, **kwargs: Any) -> httpx.Client:
    clock = inner.clock
    kwargs.setdefault("budget", None)
    transport = RetryTransport(
        inner, policy=policy, clock=clock, sleep=clock.sleep, wall_clock=lambda: NOW, **kwargs
    )
    return httpx.Client(transport=transport)


def _send(client: httpx.Client, method: str = "GET", **kwargs: Any) -> Any:
    with client:
        try:
            return client.request(method, "http://test/", **kwargs)
        except httpx.HTTPError as exc:
            return exc


# -- Retry-After: any text, any bytes -------------------------------------------

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Monday", "Sunday")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@st.composite
def http_dates(draw: st.DrawFn) -> str:
    """Date-shaped values in all three RFC 9110 forms, any year from 0000 to 9999."""
    weekday = draw(st.sampled_from(WEEKDAYS))
    month = draw(st.sampled_from((*MONTHS, "Foo")))
    day, year = draw(st.integers(0, 39)), draw(st.integers(0, 9999))
    hms = ":".join(f"{draw(st.integers(0, 99)):02d}" for _ in range(3))
    form = draw(st.sampled_from(("imf", "rfc850", "asctime")))
    if form == "imf":
        return f"{weekday}, {day:02d} {month} {year:04d} {hms} GMT"
    if form == "rfc850":
        return f"{weekday}, {day:02d}-{month}-{year % 100:02d} {hms} GMT"
    return f"{weekday} {month} {day:2d} {hms} {year:04d}"


#: Zones `email.utils` knows, numeric offsets (one too large), an unknown name, none.
ZONES = ("GMT", "UTC", "UT", "Z", "EST", "PDT", "+0000", "-0000", "+0130", "-1200", "+9999")
ZONES += ("XYZ", "")


@st.composite
def loose_dates(draw: st.DrawFn) -> str:
    """The looser dates `email.utils` reads: any zone or none, no weekday or seconds, any year."""
    weekday = draw(st.sampled_from(("", "Mon, ", "Sunday, ", "Fri,")))
    month = draw(st.sampled_from((*MONTHS, "June", "Foo")))
    day = draw(st.integers(0, 39))
    year = draw(st.integers(0, 10**6) | st.just(10**400))
    clock = ":".join(f"{draw(st.integers(0, 99)):02d}" for _ in range(draw(st.integers(2, 3))))
    return f"{weekday}{day} {month} {year} {clock} {draw(st.sampled_from(ZONES))}".strip()


#: Values that broke parsers: a superscript two, 5000 digits (both as Content-Length),
#: Arabic-Indic digits, int() spellings, NaN and infinities, a NUL.
HOSTILE_VALUES = ("\u00b2", "9" * 5000, "\u0661\u0662", "1_000", "NaN", "nan", "inf", "-inf")
HOSTILE_VALUES += ("-1", "1e309", "0x10", "", " ", "\x00", "-0")
HOSTILE = st.sampled_from(HOSTILE_VALUES)
#: RateLimit parameter values: integers in and out of sf-integer range, other sf types.
SF_VALUES = st.one_of(
    st.integers(-10, 10**16).map(str),
    st.sampled_from(("0", "1.5", '"0"', "?1", ":YWJj:", "tok", "*", "@1700000000")),
    HOSTILE,
)


@st.composite
def ratelimit_fields(draw: st.DrawFn) -> str:
    """RateLimit fields, well-formed (half of them) or nearly: items, parameters, separators."""
    valid = draw(st.booleans())
    names = ('"default"', "burst", '"a,b;c"', "(a b)")
    keys = ("r", "t", "pk")
    values: st.SearchStrategy[str] = st.integers(0, 10**15).map(str) | st.just("0")
    if not valid:
        names += ("1", "", '%"x"')
        keys += ("R", "x-y", "1")
        values = values | SF_VALUES
    items = []
    for _ in range(draw(st.integers(0, 3))):
        params = draw(st.lists(st.tuples(st.sampled_from(keys), values), max_size=4))
        separator = draw(st.sampled_from((";", "; ") if valid else (";", "; ", " ;")))
        items.append(
            draw(st.sampled_from(names))
            + "".join(f"{separator}{key}={value}" for key, value in params)
        )
    joiners = (",", ", ", " , ", ",\t") if valid else (",", ",,", ", ,")
    return draw(st.sampled_from(joiners)).join(items)


@st.composite
def go_durations(draw: st.DrawFn) -> str:
    """Go durations, valid or not: numbers of any size with units, or none, or unknown ones."""
    numbers = st.integers(0, 10**6).map(str) | st.sampled_from(("1.5", ".5", "1.", "9" * 400))
    units = st.sampled_from(("ns", "us", "\u00b5s", "\u03bcs", "ms", "s", "m", "h", "d", ""))
    parts = draw(st.lists(st.tuples(numbers | HOSTILE, units), min_size=1, max_size=4))
    return "".join(number + unit for number, unit in parts)


RESET_TEXT = st.one_of(
    st.integers(-10, 3 * 10**9).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    HOSTILE,
)
HEADER_TEXT = st.one_of(
    st.text(),
    st.integers(min_value=-(10**30), max_value=10**400).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    http_dates(),
    loose_dates(),
    HOSTILE,
    ratelimit_fields(),
    go_durations(),
)
HEADER_VALUE = st.one_of(HEADER_TEXT.map(lambda text: text.encode("utf-8")), st.binary())
RETRY_AFTER_NAMES = (b"Retry-After", b"retry-after", b"retry-after-ms", b"RETRY-AFTER-MS")
HINT_NAMES = (b"RateLimit", b"x-ratelimit-reset", b"X-RateLimit-Remaining", b"ratelimit-reset")
HINT_NAMES += (b"x-ratelimit-reset-requests", b"x-ratelimit-remaining-requests")
HINT_NAMES += (b"x-ratelimit-reset-tokens", b"x-ratelimit-remaining-tokens")
HEADER_NAME = st.sampled_from((*RETRY_AFTER_NAMES, *HINT_NAMES))


@PROPERTY
@given(value=http_dates() | loose_dates() | HEADER_TEXT, now=st.floats(0, 4e9))
@example(value="Mon, 3 Jun 0001 00:00:00 +0100", now=NOW)
@example(value="Fri, 31 Dec 9999 23:59:59 -1200", now=NOW)
@example(value="Mon, 3 Jun 2019 12:00:00 +9999", now=NOW)
def test_any_date_or_text_gives_no_wait_or_a_non_negative_one(value: str, now: float) -> None:
    """Retry-After, strict or loose dates, any year or zone: None or a non-negative number."""
    delay = parse_retry_after(value, now)
    assert delay is None or (delay >= 0 and not math.isnan(delay))


# -- rate-limit hints -------------------------------------------------------------

#: The hint kinds, restated: each reset header with the count that gates it.
HINT_KINDS = (
    ("ratelimit",),
    ("x-ratelimit-reset-requests", "x-ratelimit-remaining-requests"),
    ("x-ratelimit-reset-tokens", "x-ratelimit-remaining-tokens"),
    ("x-ratelimit-reset", "x-ratelimit-remaining"),
    ("ratelimit-reset", "ratelimit-remaining"),
)
REMAINING_TEXT = st.sampled_from(("0", "00", "0.0", "1", "59")) | HOSTILE | st.text(max_size=5)


def _hint_value(name: str) -> st.SearchStrategy[str]:
    if name == "ratelimit":
        return ratelimit_fields() | HEADER_TEXT
    if "remaining" in name:
        return REMAINING_TEXT
    if name.endswith(("requests", "tokens")):
        return go_durations() | HEADER_TEXT
    return RESET_TEXT | HEADER_TEXT


HINT_HEADERS = st.fixed_dictionaries(
    {}, optional={name: _hint_value(name) for name in sorted(RATE_LIMIT_HEADERS)}
)


@PROPERTY
@given(headers=HINT_HEADERS, now=st.floats(0, 4e9))
@example(headers={"x-ratelimit-reset": "\u00b2", "ratelimit-reset": "9" * 5000}, now=NOW)
@example(headers={"x-ratelimit-reset-tokens": "9" * 400 + "h"}, now=NOW)
def test_any_rate_limit_hint_gives_no_wait_or_a_non_negative_one(
    headers: dict[str, str], now: float
) -> None:
    """Whatever the hint headers say: None or a non-negative number (maybe inf), never NaN."""
    delay = rate_limit_delay(headers.get, now)
    assert delay is None or (delay >= 0 and not math.isnan(delay))


@PROPERTY
@given(headers=HINT_HEADERS, now=st.floats(0, 4e9))
def test_the_longest_hint_wins_whatever_else_is_sent(headers: dict[str, str], now: float) -> None:
    """Precedence: the delay is the longest of what each kind of hint gives on its own."""
    alone = [
        rate_limit_delay({name: headers[name] for name in kind if name in headers}.get, now)
        for kind in HINT_KINDS
    ]
    assert rate_limit_delay(headers.get, now) == max(
        (delay for delay in alone if delay is not None), default=None
    )
    assert {name for kind in HINT_KINDS for name in kind} == RATE_LIMIT_HEADERS


@PROPERTY
@given(
    headers=st.lists(st.tuples(HEADER_NAME, HEADER_VALUE), min_size=1, max_size=3),
    code=st.sampled_from((429, 503)),
    max_retry_after=st.floats(min_value=0, max_value=1e7),
    uniform=st.floats(min_value=0, max_value=1, exclude_max=True),
)
@example(
    headers=[(b"Retry-After", b"Sat, 01 Jan 0000 00:00:00 GMT")],
    code=503,
    max_retry_after=60.0,
    uniform=0.0,
)
@example(
    headers=[(b"Retry-After", b"Sat Jan  1 00:00:00 0000")],
    code=503,
    max_retry_after=60.0,
    uniform=0.0,
)
@example(
    headers=[(b"Retry-After", b"Fri, 31 Dec 9999 23:59:59 GMT")],
    code=429,
    max_retry_after=60.0,
    uniform=0.0,
)
@example(headers=[(b"retry-after-ms", b"1e309")], code=503, max_retry_after=60.0, uniform=0.0)
def test_any_retry_after_yields_no_wait_or_a_bounded_one(
    headers: list[tuple[bytes, bytes]], code: int, max_retry_after: float, uniform: float
) -> None:
    """Whatever a 429/503 says about waiting (Retry-After or a rate-limit hint): an answer,
    and a sleep in [0, max_retry_after]."""
    clock = FakeClock()
    inner = Scripted([("status", code, headers)], clock)
    policy = RetryPolicy(attempts=2, backoff=tenacity.wait_none(), max_retry_after=max_retry_after)
    outcome = _send(_client(inner, policy, random=lambda: uniform))
    assert isinstance(outcome, httpx.Response)
    assert all(math.isfinite(s) and 0 <= s <= max_retry_after for s in clock.sleeps)
    assert len(inner.requests) == 1 + (outcome.status_code == 200)


# -- every sleep is finite, non-negative and capped -----------------------------

STRATEGIES = (
    backoff_full_jitter,
    backoff_equal_jitter,
    backoff_decorrelated_jitter,
    backoff_no_jitter,
)


@PROPERTY
@given(
    strategy=st.sampled_from((*STRATEGIES, None)),
    initial=st.floats(min_value=0.001, max_value=10),
    cap=st.floats(min_value=10, max_value=1e6),
    hostile=st.lists(st.floats(max_value=10) | st.sampled_from((math.nan, math.inf)), min_size=12),
    seed=st.randoms(use_true_random=False),
    attempts=st.integers(min_value=2, max_value=12),
    retry_after=st.lists(st.none() | HEADER_TEXT, min_size=12, max_size=12),
    max_retry_after=st.floats(min_value=0, max_value=1e4),
)
def test_every_sleep_is_finite_non_negative_and_capped(
    strategy: Any,
    initial: float,
    cap: float,
    hostile: list[float],
    seed: Any,
    attempts: int,
    retry_after: list[str | None],
    max_retry_after: float,
) -> None:
    """Any backoff (ours, or one giving NaN, inf or negatives), any Retry-After: sane sleeps."""
    if strategy is None:  # a user's backoff that misbehaves, though never past the cap

        def backoff(state: Any) -> float:
            return float(hostile[state.attempt_number - 1])
    else:
        backoff = strategy(initial=initial, cap=cap, random=seed.random)
    outcomes: list[Outcome] = [
        ("status", 503, [] if value is None else [("Retry-After", value.encode("utf-8"))])
        for value in retry_after
    ]
    clock = FakeClock()
    inner = Scripted(outcomes, clock)
    policy = RetryPolicy(attempts=attempts, backoff=backoff, max_retry_after=max_retry_after)
    outcome = _send(_client(inner, policy, random=seed.random))
    assert isinstance(outcome, httpx.Response)
    assert len(inner.requests) <= attempts
    assert all(math.isfinite(s) and 0 <= s <= max(cap, max_retry_after) for s in clock.sleeps)


# -- the rules: which outcomes are retried, and never more than `attempts` ------

OUTCOMES = st.one_of(
    st.tuples(
        st.just("status"),
        st.sampled_from((200, 204, 400, 404, 408, 429, 500, 502, 503, 504)),
        st.sampled_from(([], [("x-should-retry", "true")], [("x-should-retry", "false")])),
    ),
    st.tuples(
        st.just("error"), st.sampled_from((*NEVER_SENT, *MAYBE_SENT, *NEVER_RETRIED)), st.none()
    ),
)
#: name -> (method, headers, idempotent?)
KINDS = {
    "GET": ("GET", {}, True),
    "PUT": ("PUT", {}, True),
    "DELETE": ("DELETE", {}, True),
    "POST": ("POST", {}, False),
    "PATCH": ("PATCH", {}, False),
    "POST+key": ("POST", {"Idempotency-Key": "k"}, True),
}


def _expected_attempts(
    outcomes: Sequence[Outcome], attempts: int, idempotent: bool, replayable: bool
) -> int:
    """The rules from the README, restated: how many attempts the transport makes."""
    for number, (kind, value, headers) in enumerate(outcomes, start=1):
        if number == attempts:
            return number
        if kind == "error":
            if value in NEVER_SENT or (value in MAYBE_SENT and idempotent and replayable):
                continue
            return number
        hint = dict(headers).get("x-should-retry")
        if value < 400 or hint == "false":
            return number
        vouched = hint == "true"
        if (value in DEFAULT_STATUSES or vouched) and (idempotent or vouched) and replayable:
            continue
        return number
    return len(outcomes) + 1  # then a 200


def _body(replayable: bool) -> Any:
    if replayable:
        return b"payload"

    def chunks() -> Iterator[bytes]:
        yield b"pay"
        yield b"load"

    return chunks()


@PROPERTY
@given(
    outcomes=st.lists(OUTCOMES, min_size=1, max_size=8),
    attempts=st.integers(min_value=1, max_value=6),
    kind=st.sampled_from(sorted(KINDS)),
    replayable=st.booleans(),
)
def test_attempts_follow_the_rules_and_never_exceed_the_policy(
    outcomes: list[Outcome], attempts: int, kind: str, replayable: bool
) -> None:
    """Any run of outcomes: exactly the attempts the rules allow, and the last outcome returned."""
    method, headers, idempotent = KINDS[kind]
    clock = FakeClock()
    inner = Scripted(outcomes, clock)
    policy = RetryPolicy(attempts=attempts, backoff=tenacity.wait_fixed(0.5))
    outcome = _send(_client(inner, policy), method, content=_body(replayable), headers=headers)
    expected = _expected_attempts(outcomes, attempts, idempotent, replayable)
    assert len(inner.requests) == expected <= attempts
    _, value, _ = outcomes[expected - 1] if expected <= len(outcomes) else ("status", 200, [])
    got = outcome.status_code if isinstance(outcome, httpx.Response) else type(outcome).__name__
    assert got == value
    assert clock.sleeps == [0.5] * (expected - 1)


# -- deadlines ------------------------------------------------------------------


@PROPERTY
@given(
    deadline=st.floats(min_value=0.05, max_value=30),
    timeout=st.floats(min_value=0.01, max_value=10),
    costs=st.lists(st.floats(min_value=0, max_value=20), min_size=10, max_size=10),
    waits=st.lists(st.floats(min_value=0, max_value=20), min_size=10, max_size=10),
    retry_after=st.lists(st.none() | st.integers(0, 30).map(str), min_size=10, max_size=10),
)
def test_a_deadline_is_never_overrun(
    deadline: float,
    timeout: float,
    costs: list[float],
    waits: list[float],
    retry_after: list[str | None],
) -> None:
    """Slow attempts, long waits, Retry-After: done by the deadline plus one attempt's timeout."""
    clock = FakeClock()
    outcomes: list[Outcome] = [
        ("status", 503, [] if value is None else [("Retry-After", value)]) for value in retry_after
    ]
    inner = Scripted(outcomes, clock, costs)
    policy = RetryPolicy(
        attempts=10, backoff=lambda state: waits[state.attempt_number - 1], deadline=deadline
    )
    started = clock.now
    outcome = _send(_client(inner, policy), timeout=timeout)
    assert isinstance(outcome, httpx.Response | httpx.TimeoutException)
    assert clock.now - started <= deadline + timeout
    assert all(moment - started < deadline for moment in inner.started)  # none starts late


# -- secrets --------------------------------------------------------------------

SECRET = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=6, max_size=12).map(
    lambda core: f"S3{core}Q9"
)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logging.Formatter().format(record))


@settings(max_examples=40, deadline=None)
@given(user=SECRET, password=SECRET, query=SECRET, fragment=SECRET, token=SECRET, cookie=SECRET)
def test_no_secret_reaches_a_log_line_a_span_event_or_a_note(
    user: str, password: str, query: str, fragment: str, token: str, cookie: str
) -> None:
    """Credentials in the URL or headers never appear in logs, trace events or error notes."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    handler = _Lines()
    logger = logging.getLogger("httpx_retrying")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)

    def broken_hook(event: RetryEvent) -> None:
        raise RuntimeError("a hook bug")

    url = f"http://{user}:{password}@test/path?key={query}#{fragment}"
    headers = {
        "Authorization": f"Bearer {token}",
        "Proxy-Authorization": f"Basic {token}",
        "Cookie": f"session={cookie}",
    }
    texts: list[str] = []
    try:
        with provider.get_tracer("test").start_as_current_span("call"):
            scripts: list[list[Outcome]] = [
                [("status", 503, []), ("error", "ConnectError", None)],  # retried, then 200
                [("error", "ReadError", None)] * 3,  # gives up: the error carries a note
            ]
            for script in scripts:
                clock = FakeClock()
                client = httpx.Client(
                    transport=RetryTransport(
                        Scripted(script, clock),
                        policy=RetryPolicy(backoff=tenacity.wait_none()),
                        budget=None,
                        on_retry=broken_hook,
                    )
                )
                with client:
                    try:
                        client.get(url, headers=headers)
                    except httpx.HTTPError as exc:
                        texts += [str(exc), *getattr(exc, "__notes__", ())]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    for span in exporter.get_finished_spans():
        texts += [f"{event.name} {dict(event.attributes or {})}" for event in span.events]
    texts += handler.lines
    assert any("Retrying GET http://test/path" in line for line in handler.lines)
    for secret in (user, password, query, fragment, token, cookie):
        assert not [text for text in texts if secret in text]


@pytest.mark.parametrize("render", [repr, str])
def test_a_retry_event_shows_no_url_secret(render: Any) -> None:
    """A RetryEvent, as a hook would log it, hides URL userinfo and query like the log line."""
    events: list[RetryEvent] = []
    clock = FakeClock()
    client = _client(
        Scripted([("status", 503, [])], clock),
        RetryPolicy(backoff=tenacity.wait_none()),
        on_retry=events.append,
    )
    with client:
        client.get("http://user:S3password@test/path?token=S3query")
    (event,) = events
    text = render(event)
    assert "test/path" in text
    for secret in ("user:", "S3password", "S3query"):
        assert secret not in text
