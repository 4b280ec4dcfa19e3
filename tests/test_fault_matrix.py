"""The fault matrix: every server fault, for GET, PUT, POST and keyed POST, bytes or generator body.

Each cell runs a real `FaultServer` and a pool of one connection (any leaked
connection turns the follow-up request into a PoolTimeout), for both flavours
(httpx, httpx2) in sync, asyncio and trio. It checks what the server read, what
the caller got, which sleeps were asked for (recorded, never slept) and that
the call stayed short.

What every cell must see comes from one place, the oracle below: the
`SCENARIOS` table says what each fault does, `expected()` applies the rules. An
error that proves nothing was sent is retried for every request; anything that
may have reached the server is retried only for an idempotent method (or an
Idempotency-Key) with a replayable body; a response body that breaks after the
transport returned is the caller's error.

Real time: reads that must succeed get a generous `READ_TIMEOUT`, so that a
loaded machine cannot fail a cell; only reads that must time out (a silent
server's head, a stalled body) get a short one, `EXPIRING`.
"""

from __future__ import annotations

import dataclasses
import email.utils
import gc
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import tenacity

from httpx_retrying import RetryPolicy
from tests.conftest import Harness, settled_count
from tests.servers import FaultServer, Reply, chunked, drip, dripping, ok, status

# httpcore abandons a request body's async generator when a write fails (it
# swallows the WriteError and reads the response); trio then warns when the
# generator is collected. Plain httpx does it too, without this package. The
# warning is filtered in this module, and `_collect_abandoned_generators` collects
# them before the module ends, so that it never surfaces in a later test.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:Exception ignored in. <async_generator object (Async)?(Iterator)?ByteStream\.__aiter__"
    ":pytest.PytestUnraisableExceptionWarning"
)

#: The wall clock the transports see, for Retry-After HTTP-dates.
NOW = 1_800_000_000.0
BACKOFF = 0.125
#: The read timeout of every read that must succeed: generous, never waited for.
READ_TIMEOUT = 2.0
#: The read timeout of a read that must time out: nothing arrives for it, so a short
#: one is as robust as a long one, and each such cell costs only this much real time.
EXPIRING = 0.01
#: A correct cell takes a few milliseconds. One that waited a whole READ_TIMEOUT, or
#: really slept a Retry-After (1.875 s at least here), takes longer than this.
SLOW_CELL = 1.5
POLICY = RetryPolicy(backoff=tenacity.wait_fixed(BACKOFF))
BODY = (b"part-1,", b"part-2")
#: Errors that prove the request never left: retried for any method and body.
NEVER_SENT = {"ConnectError", "ConnectTimeout", "PoolTimeout"}

#: name -> (method, extra headers, idempotent?)
KINDS: dict[str, tuple[str, dict[str, str], bool]] = {
    "GET": ("GET", {}, True),
    "PUT": ("PUT", {}, True),
    "POST": ("POST", {}, False),
    "POST+key": ("POST", {"Idempotency-Key": "k-1"}, True),
}
BODIES = ("bytes", "generator")
#: Every request shape (kind, body): what a fault does to a request depends on all of them.
EVERY_SHAPE = tuple((kind, body) for kind in KINDS for body in BODIES)
#: A Retry-After header is read only once a retry has been decided, and the wait it
#: asks for does not depend on the request: each form runs for a request that is
#: retried and one that is not. One form per status runs for every shape.
RETRIED_AND_NOT = (("GET", "bytes"), ("POST", "bytes"))


# -- the oracle ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One fault on the first attempt; every later attempt is answered 200."""

    name: str
    #: What the first attempt can end in: a status, or an exception class name.
    first: frozenset[int | str]
    #: How many times the server fully read the failing attempt (0 or 1).
    processed: int
    #: "safe": retried when the request is safe to resend (or nothing was sent); "never".
    retry: str = "safe"
    #: The sleeps asked for when retried (the backoff, or what Retry-After makes of it).
    sleeps: tuple[float, ...] = (BACKOFF,)
    actions: tuple[Reply | str, ...] = ()
    connection_fault: str | None = None
    refused: bool = False  # the first connection is refused; the server listens from the backoff on
    warm_up: bool = False  # a first GET /warm leaves the pooled connection to be dropped on reuse
    #: The first attempt's read timeouts (head, body); every other read gets READ_TIMEOUT.
    first_reads: tuple[float, float] | None = None
    shapes: tuple[tuple[str, str], ...] = EVERY_SHAPE


@dataclasses.dataclass(frozen=True)
class Expected:
    """What one cell must see."""

    retried: bool
    outcome: int | str  # the final status, or the exception class name
    seen: int  # requests to /x the server read in full
    sleeps: tuple[float, ...]


def expected(scenario: Scenario, kind: str, body: str, first: int | str) -> Expected:
    """The rules, given how the first attempt ended (some faults can end in two ways)."""
    _, _, idempotent = KINDS[kind]
    safe = idempotent and body == "bytes"
    if scenario.retry == "safe" and (safe or first in NEVER_SENT):
        return Expected(True, 200, scenario.processed + 1, scenario.sleeps)
    return Expected(False, first, scenario.processed, ())


def _named(outcome: Any) -> int | str:
    return outcome.status_code if hasattr(outcome, "status_code") else type(outcome).__name__


def _reason(first: int | str) -> str:
    return f"status {first}" if isinstance(first, int) else first


def how_the_first_attempt_ended(scenario: Scenario, outcome: Any) -> int | str:
    """The first retry's reason, or else the outcome itself, as one of `scenario.first`."""
    history = getattr(outcome, "extensions", {}).get("retry_history", ())
    # A body that broke while preloaded says where: "ReadTimeout at body byte 0 of 10".
    first = (
        history[0].reason.partition(" at body byte ")[0] if history else _reason(_named(outcome))
    )
    matches = [code for code in scenario.first if _reason(code) == first]
    assert matches, f"the first attempt ended in {first}, not in {set(scenario.first)}"
    return matches[0]


def _retry_after(code: int, form: str, sleeps: tuple[float, ...], **header: str) -> Scenario:
    never = not sleeps
    return Scenario(
        f"{code}-{form}",
        frozenset({code}),
        processed=1,
        retry="never" if never else "safe",
        sleeps=sleeps,
        actions=(status(code, b"busy", **header),),
        shapes=EVERY_SHAPE if form == "seconds" else RETRIED_AND_NOT,
    )


def _http_date(moment: float) -> str:
    return email.utils.formatdate(moment, usegmt=True)


SCENARIOS = [
    Scenario("refused", frozenset({"ConnectError"}), 0, refused=True),
    # Before anything is read the client cannot tell what happened (ConnectError sometimes).
    *(
        Scenario(
            fault,
            frozenset({"ReadError", "RemoteProtocolError", "ConnectError"}),
            0,
            connection_fault=fault,
        )
        for fault in ("reset_before_read", "close_before_read")
    ),
    Scenario(
        "close_after_read", frozenset({"RemoteProtocolError"}), 1, actions=("close_after_read",)
    ),
    Scenario("reset_after_read", frozenset({"ReadError"}), 1, actions=("reset_after_read",)),
    Scenario(
        "silent",
        frozenset({"ReadTimeout"}),
        1,
        actions=("silent",),
        first_reads=(EXPIRING, READ_TIMEOUT),
    ),
    Scenario(
        "partial_headers", frozenset({"RemoteProtocolError"}), 1, actions=("partial_headers",)
    ),
    Scenario("garbage", frozenset({"RemoteProtocolError"}), 1, actions=("garbage",)),
    Scenario(
        "close_on_reuse",
        frozenset({"ReadError", "RemoteProtocolError"}),
        0,
        warm_up=True,
    ),
    # The body breaks or stalls: preloaded inside the transport (its length is announced and
    # small), so a request that is safe to resend gets the whole body from a second attempt.
    Scenario("truncated_body", frozenset({"RemoteProtocolError"}), 1, actions=("truncated_body",)),
    Scenario(
        "stalled_body",
        frozenset({"ReadTimeout"}),
        1,
        actions=(drip(60.0),),  # the first body byte would come a minute later
        first_reads=(READ_TIMEOUT, EXPIRING),
    ),
    Scenario("dripped_body", frozenset({200}), 1, "never", (), (drip(0.002),)),  # ten pieces
    # Retry-After is a floor (spread by 50 % x random 0.5 = x1.25) over the 0.125 s backoff.
    *(
        scenario
        for code in (503, 429)
        for scenario in (
            _retry_after(code, "seconds", (2.5,), retry_after="2"),
            _retry_after(code, "decimal", (1.875,), retry_after="1.5"),
            _retry_after(code, "date-future", (5.0,), retry_after=_http_date(NOW + 4)),
            _retry_after(code, "date-past", (BACKOFF,), retry_after=_http_date(NOW - 3600)),
            _retry_after(code, "ms", (1.875,), retry_after_ms="1500"),
            _retry_after(code, "negative", (BACKOFF,), retry_after="-3"),
            _retry_after(code, "malformed", (BACKOFF,), retry_after="soon"),
            # Beyond max_retry_after (60 s): the response comes back at once.
            _retry_after(code, "huge", (), retry_after="86400"),
        )
    ),
]


# -- running a cell -----------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def _collect_abandoned_generators() -> Iterator[None]:
    """Collect the generators `pytestmark` is about while this module's filter applies.

    Once for the module: a full collection costs ~0.25 s in a large test session.
    """
    yield
    gc.collect()


def _body(harness: Harness, kind: str) -> Any:
    if kind == "bytes":
        return b"".join(BODY)
    if harness.is_async:

        async def agen() -> AsyncIterator[bytes]:
            for chunk in BODY:
                yield chunk

        return agen  # a factory: `send_all` makes the generator in the event loop

    def gen() -> Iterator[bytes]:
        yield from BODY

    return gen()


def _set_read_timeout(request: Any, seconds: float) -> None:
    request.extensions["timeout"] = {**request.extensions["timeout"], "read": seconds}


def first_attempt_reads(harness: Harness, inner: Any, path: str, head: float, body: float) -> Any:
    """`inner` behind a spy giving the first attempt at `path` these read timeouts.

    httpcore looks the read timeout up in the request's extensions when it starts
    reading the head, and again when it starts on the body, so setting it again
    once the head is in sets the body's. (Were that to change, a stalled body would
    be waited for READ_TIMEOUT and its cells would fail on SLOW_CELL.) Every other
    attempt and request reads with READ_TIMEOUT.
    """
    attempts = 0

    def first_attempt(request: Any) -> bool:
        return request.url.path == path and attempts == 1

    def before(request: Any) -> None:
        nonlocal attempts
        attempts += request.url.path == path
        _set_read_timeout(request, head if first_attempt(request) else READ_TIMEOUT)

    def after(request: Any, response: Any) -> None:
        if first_attempt(request):
            _set_read_timeout(request, body)

    return harness.spy(inner, before=before, after=after)


CELLS = [
    pytest.param(scenario, kind, body, id=f"{scenario.name}-{kind}-{body}")
    for scenario in SCENARIOS
    for kind, body in scenario.shapes
]


@pytest.mark.parametrize(("scenario", "kind", "body"), CELLS)
def test_fault_matrix(harness: Harness, scenario: Scenario, kind: str, body: str) -> None:
    """One fault x request x body x flavour x mode: attempts seen, outcome, sleeps, no leak."""
    lib = harness.lib
    method, headers, idempotent = KINDS[kind]
    sleeps: list[float] = []

    async def async_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    with FaultServer(listening=not scenario.refused) as server:
        server.script("/x", *scenario.actions)
        if scenario.connection_fault:
            server.next_connections(scenario.connection_fault)
        inner = harness.http_transport(limits=lib.Limits(max_connections=1))
        if scenario.first_reads:
            inner = first_attempt_reads(harness, inner, "/x", *scenario.first_reads)
        transport = harness.RetryTransport(
            inner,
            policy=POLICY,
            sleep=sleeps.append,
            async_sleep=async_sleep,
            random=lambda: 0.5,
            wall_clock=lambda: NOW,
            # The server comes up during the backoff after a refused connection.
            on_retry=(lambda event: server.start_listening()) if scenario.refused else None,
        )
        timeout = lib.Timeout(5.0, read=READ_TIMEOUT, pool=0.5)
        send = {"content": _body(harness, body), "headers": headers, "timeout": timeout}
        follow_up = ("GET", f"{server.url}/after", {"timeout": timeout})
        requests = [(method, f"{server.url}/x", send), follow_up]
        if scenario.warm_up:
            server.script("/warm", "close_on_reuse")
            requests.insert(0, ("GET", f"{server.url}/warm", {"timeout": timeout}))
        started = time.monotonic()
        *warm, outcome, follow = harness.send_all(transport, requests)
        elapsed = time.monotonic() - started

        assert isinstance(outcome, lib.Response | lib.HTTPError), outcome  # an httpx answer
        want = expected(scenario, kind, body, how_the_first_attempt_ended(scenario, outcome))
        seen = settled_count(server, "/x", want.seen, method)
        bodies = server.bodies("/x")

    history = getattr(outcome, "extensions", {}).get("retry_history", ())
    assert [_named(o) for o in [*warm, follow]] == [200] * len(warm) + [200]  # nothing leaked
    assert [_named(outcome), bool(history), seen] == [want.outcome, want.retried, want.seen]
    assert len(history) == want.retried  # at most one retry: every later attempt succeeds
    assert sleeps == list(want.sleeps)
    if not idempotent:
        assert seen <= 1  # a plain POST is never processed twice
    assert all(seen_body == b"".join(BODY) for seen_body in bodies)  # never a truncated replay
    assert elapsed < SLOW_CELL  # every wait was short or recorded, never a hang


@pytest.mark.parametrize(
    "reply",
    [dripping(503, 0.05, b"x" * 40), dripping(503, 5.0, b"x" * 40)],
    ids=["dripping-for-2s", "stalled"],
)
def test_a_slow_error_body_delays_the_retry_by_at_most_a_read_timeout(
    harness: Harness, reply: Reply
) -> None:
    """A 503 whose small body trickles or stalls: the retry starts within about one read timeout.

    The 503's body is read with a 0.2 s timeout (its head, and the retry, with READ_TIMEOUT);
    reading all of it would take 2 s (dripping) or 200 s (stalled).
    """
    body_read = 0.2
    with FaultServer() as server:
        server.script("/slow-error", reply, ok())
        inner = first_attempt_reads(
            harness, harness.http_transport(), "/slow-error", READ_TIMEOUT, body_read
        )
        transport = harness.RetryTransport(inner, policy=RetryPolicy(backoff=tenacity.wait_none()))
        timeout = harness.lib.Timeout(5.0, read=READ_TIMEOUT)
        started = time.monotonic()
        (response,) = harness.send_all(
            transport, [("GET", f"{server.url}/slow-error", {"timeout": timeout})]
        )
        elapsed = time.monotonic() - started
    assert _named(response) == 200
    assert elapsed < body_read + 1.0


def test_a_large_error_body_of_unknown_length_is_dropped_cleanly(harness: Harness) -> None:
    """A chunked 1 MiB 503 is read only in part: the retry succeeds, no generator is left open."""
    with FaultServer() as server:
        server.script("/big", chunked(503, b"x" * (1 << 20)), ok())
        transport = harness.RetryTransport(
            harness.http_transport(), policy=RetryPolicy(backoff=tenacity.wait_none())
        )
        (response,) = harness.send_all(transport, [("GET", f"{server.url}/big", {})])
        if harness.mode == "trio":
            gc.collect()  # a half-read body's generators, if left open, warn here
    assert _named(response) == 200
    assert server.connections == 2  # the half-read connection was dropped, not reused


class _OvershootingClock:
    """Monotonic time where each backoff sleep takes a second longer than asked.

    Stands for whatever eats time between the retry decision and the next
    attempt: an OS sleep that overshoots, or a slow release of the last response.
    """

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds + 1.0

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def test_no_attempt_is_sent_past_the_deadline(harness: Harness) -> None:
    """Time ran out during the backoff: no attempt is sent, and the 503 is the answer, untouched.

    (0.1.0 sent one with 1 ms timeouts, which could replace the 503 with a PoolTimeout.)
    """
    timeouts: list[dict[str, float]] = []
    clock = _OvershootingClock()
    with FaultServer() as server:
        server.script("/late", status(503, b"busy"), ok())
        transport = harness.RetryTransport(
            harness.spy(
                harness.http_transport(),
                before=lambda request: timeouts.append(request.extensions["timeout"]),
            ),
            policy=RetryPolicy(backoff=tenacity.wait_fixed(0.5), deadline=1.0),
            clock=clock,
            sleep=clock.sleep,
            async_sleep=clock.async_sleep,
        )
        (outcome,) = harness.send_all(transport, [("GET", f"{server.url}/late", {})])
    assert _named(outcome) == 503
    assert outcome.content == b"busy"  # a small body was kept: still readable
    assert len(timeouts) == 1
    assert all(value > 0 for attempt in timeouts for value in attempt.values()), timeouts
