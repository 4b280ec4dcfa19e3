"""The fault matrix: every server fault, for GET, PUT, POST and keyed POST, bytes or generator body.

Each cell runs a real `FaultServer` and a pool of one connection (any leaked
connection turns the follow-up request into a PoolTimeout), in sync, asyncio
and trio. It checks what the server read, what the caller got, which sleeps
were asked for (recorded, never slept) and that the call stayed short. The
rules it encodes: an error that proves nothing was sent is retried for every
request; anything that may have reached the server is retried only for an
idempotent method (or an Idempotency-Key) with a replayable body; a response
body that breaks after the transport returned is the caller's error.
"""

from __future__ import annotations

import dataclasses
import email.utils
import gc
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import tenacity

from httpx_retrying import RetryPolicy
from tests.conftest import Harness
from tests.servers import FaultServer, Reply, chunked, drip, dripping, ok, status

# httpcore abandons a request body's async generator when a write fails (it
# swallows the WriteError and reads the response); trio then warns when the
# generator is collected. Plain httpx does it too, without this package. Cells
# where a write can fail collect garbage before they end, so that the warning
# is filtered here and never surfaces in a later test.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:Exception ignored in. <async_generator object (Async)?(Iterator)?ByteStream\.__aiter__"
    ":pytest.PytestUnraisableExceptionWarning"
)

#: One SSL context for every transport: building one per cell costs ~20 ms.
SSL_CONTEXT = ssl.create_default_context()
#: The wall clock the transports see, for Retry-After HTTP-dates.
NOW = 1_800_000_000.0
BACKOFF = 0.125
READ_TIMEOUT = 0.2
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


def _retry_after(code: int, form: str, sleeps: tuple[float, ...], **header: str) -> Scenario:
    never = not sleeps
    return Scenario(
        f"{code}-{form}",
        frozenset({code}),
        processed=1,
        retry="never" if never else "safe",
        sleeps=sleeps,
        actions=(status(code, b"busy", **header),),
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
    Scenario("silent", frozenset({"ReadTimeout"}), 1, actions=("silent",)),
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
    # The body breaks or stalls: preloaded inside the transport, so retried when safe.
    Scenario("truncated_body", frozenset({"RemoteProtocolError"}), 1, actions=("truncated_body",)),
    Scenario("stalled_body", frozenset({"ReadTimeout"}), 1, actions=(drip(1.0),)),
    Scenario("dripped_body", frozenset({200}), 1, "never", (), (drip(0.02),)),
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


def _named(outcome: Any) -> int | str:
    return outcome.status_code if hasattr(outcome, "status_code") else type(outcome).__name__


def _reason(first: int | str) -> str:
    return f"status {first}" if isinstance(first, int) else first


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


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.name)
def test_fault_matrix(mode_harness: Harness, scenario: Scenario, kind: str, body: str) -> None:
    """One fault x request x body x mode: attempts seen, outcome, sleeps, no leak, no long wait."""
    harness, lib = mode_harness, mode_harness.lib
    method, headers, idempotent = KINDS[kind]
    safe = idempotent and body == "bytes"
    sleeps: list[float] = []

    async def async_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    with FaultServer(listening=not scenario.refused) as server:
        server.script("/x", *scenario.actions)
        if scenario.connection_fault:
            server.next_connections(scenario.connection_fault)
        transport = harness.RetryTransport(
            harness.http_transport(limits=lib.Limits(max_connections=1), verify=SSL_CONTEXT),
            policy=POLICY,
            sleep=sleeps.append,
            async_sleep=async_sleep,
            random=lambda: 0.5,
            wall_clock=lambda: NOW,
            # The server comes up during the backoff after a refused connection.
            on_retry=(lambda event: server.start_listening()) if scenario.refused else None,
        )
        timeout = lib.Timeout(2.0, read=READ_TIMEOUT, pool=0.5)
        send = {"content": _body(harness, body), "headers": headers, "timeout": timeout}
        follow_up = ("GET", f"{server.url}/after", {"timeout": timeout})
        requests = [(method, f"{server.url}/x", send), follow_up]
        if scenario.warm_up:
            server.script("/warm", "close_on_reuse")
            requests.insert(0, ("GET", f"{server.url}/warm", {"timeout": timeout}))
        started = time.monotonic()
        *warm, outcome, follow = harness.send_all(transport, requests)
        elapsed = time.monotonic() - started
        seen = server.count("/x", method)
        bodies = server.bodies("/x")
    if harness.mode == "trio" and (scenario.connection_fault or scenario.warm_up):
        gc.collect()  # see `pytestmark`

    assert isinstance(outcome, lib.Response | lib.HTTPError), outcome  # one answer, an httpx one
    assert [_named(o) for o in [*warm, follow]] == [200] * len(warm) + [200]  # nothing leaked
    history = getattr(outcome, "extensions", {}).get("retry_history", ())
    # A body that broke while preloaded says where: "ReadTimeout at body byte 0 of 10".
    first = (
        history[0].reason.partition(" at body byte ")[0] if history else _reason(_named(outcome))
    )
    assert first in {_reason(expected) for expected in scenario.first}
    retried = scenario.retry == "safe" and (safe or first in NEVER_SENT)
    if retried:
        assert [_named(outcome), len(history), seen] == [200, 1, scenario.processed + 1]
        assert sleeps == list(scenario.sleeps)
    else:
        assert [len(history), seen, sleeps] == [0, scenario.processed, []]
    if not idempotent:
        assert seen <= 1  # a plain POST is never processed twice
    assert all(seen_body == b"".join(BODY) for seen_body in bodies)  # never a truncated replay
    assert elapsed < 2.0  # every wait was short or recorded, never a hang


@pytest.mark.parametrize(
    "reply",
    [dripping(503, 0.05, b"x" * 40), dripping(503, 5.0, b"x" * 40)],
    ids=["dripping-for-2s", "stalled"],
)
def test_a_slow_error_body_delays_the_retry_by_at_most_a_read_timeout(
    mode_harness: Harness, reply: Reply
) -> None:
    """A 503 whose small body trickles or stalls: the retry starts within about one read timeout."""
    harness = mode_harness
    with FaultServer() as server:
        server.script("/slow-error", reply, ok())
        transport = harness.RetryTransport(
            harness.http_transport(verify=SSL_CONTEXT),
            policy=RetryPolicy(backoff=tenacity.wait_none()),
        )
        timeout = harness.lib.Timeout(2.0, read=0.3)
        started = time.monotonic()
        (response,) = harness.send_all(
            transport, [("GET", f"{server.url}/slow-error", {"timeout": timeout})]
        )
        elapsed = time.monotonic() - started
    assert _named(response) == 200
    assert elapsed < 0.3 + 0.5


def test_a_large_error_body_of_unknown_length_is_dropped_cleanly(mode_harness: Harness) -> None:
    """A chunked 1 MiB 503 is read only in part: the retry succeeds, no generator is left open."""
    harness = mode_harness
    with FaultServer() as server:
        server.script("/big", chunked(503, b"x" * (1 << 20)), ok())
        transport = harness.RetryTransport(
            harness.http_transport(verify=SSL_CONTEXT),
            policy=RetryPolicy(backoff=tenacity.wait_none()),
        )
        (response,) = harness.send_all(transport, [("GET", f"{server.url}/big", {})])
        gc.collect()  # a half-read body's generators, if left open, are collected (trio warns) here
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


def test_an_attempt_past_the_deadline_is_never_given_a_zero_timeout(
    mode_harness: Harness,
) -> None:
    """Time ran out during the backoff: no attempt gets 0 s timeouts (a non-blocking socket)."""
    harness, lib = mode_harness, mode_harness.lib
    timeouts: list[dict[str, float]] = []
    inner = harness.http_transport(verify=SSL_CONTEXT)

    class Spy(lib.BaseTransport, lib.AsyncBaseTransport):  # type: ignore[misc,name-defined]
        def handle_request(self, request: Any) -> Any:
            timeouts.append(request.extensions["timeout"])
            return inner.handle_request(request)

        async def handle_async_request(self, request: Any) -> Any:
            timeouts.append(request.extensions["timeout"])
            return await inner.handle_async_request(request)

        def close(self) -> None:
            inner.close()

        async def aclose(self) -> None:
            await inner.aclose()

    clock = _OvershootingClock()
    with FaultServer() as server:
        server.script("/late", status(503, b"busy"), ok())
        transport = harness.RetryTransport(
            Spy(),
            policy=RetryPolicy(backoff=tenacity.wait_fixed(0.5), deadline=1.0),
            clock=clock,
            sleep=clock.sleep,
            async_sleep=clock.async_sleep,
        )
        (outcome,) = harness.send_all(transport, [("GET", f"{server.url}/late", {})])
    assert isinstance(outcome, lib.Response | lib.TimeoutException), outcome
    assert all(value > 0 for attempt in timeouts for value in attempt.values()), timeouts
