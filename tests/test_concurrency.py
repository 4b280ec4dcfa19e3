"""Many callers at once, and callers that cancel, against a real `FaultServer`.

Concurrency: 64 threads, 500 asyncio tasks or a trio nursery of 200 tasks
share one RetryTransport and one RetryBudget, against a server that fails a
third of its requests after reading them. Every request is accounted for, on
both sides, and the budget's counters add up.

Cancellation: a request is cancelled at each point of its life (first
attempt, backoff sleep, release of a slow error body, second attempt); the
cancellation surfaces at once and the pool of one connection still serves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import tenacity

from httpx_retrying import RetryBudget, RetryEvent, RetryPolicy
from tests.conftest import FLAVOURS, Harness
from tests.servers import FaultServer, Reply, dripping, ok, status

#: name -> (method, headers, idempotent?)
KINDS = {
    "GET": ("GET", {}, True),
    "POST": ("POST", {}, False),
    "POST+key": ("POST", {"Idempotency-Key": "k"}, True),
}
FAULTS = (status(503, b"busy"), "reset_after_read", "close_after_read")


class _Records(logging.Handler):
    """Collects the package's log messages from every thread."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def package_log() -> Iterator[_Records]:
    records = _Records()
    logger = logging.getLogger("httpx_retrying")
    level = logger.level
    logger.addHandler(records)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(records)
    logger.setLevel(level)


class _BalanceWatch:
    """Samples a budget's balance from another thread while the load runs."""

    def __init__(self, budget: RetryBudget) -> None:
        self.budget = budget
        self.lowest = budget.balance
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.lowest = min(self.lowest, self.budget.balance)
            self.samples += 1

    def __enter__(self) -> _BalanceWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _load(harness: Harness, url: str, callers: int, each: int, transport: Any) -> list[Any]:
    """`callers` threads or tasks send `each` requests through one client; outcomes by index."""
    lib = harness.lib
    plan = [(number, list(KINDS)[number % len(KINDS)]) for number in range(callers * each)]
    outcomes: list[Any] = [None] * len(plan)
    # Generous: an attempt that timed out may never be read by the server, which the
    # accounting below cannot tell from a lost request, and under coverage on a loaded
    # machine hundreds of callers on httpcore 1.0.9's pool wait seconds for a connection.
    timeout = lib.Timeout(30.0)

    def request_args(number: int, kind: str) -> tuple[str, str, dict[str, Any]]:
        method, headers, _ = KINDS[kind]
        headers = {**headers, "x-id": str(number)}
        return method, f"{url}/{kind}", {"headers": headers, "content": b"p", "timeout": timeout}

    if harness.mode == "sync":
        with lib.Client(transport=transport) as client:

            def worker(caller: int) -> None:
                for number, kind in plan[caller::callers]:
                    method, target, kwargs = request_args(number, kind)
                    try:
                        outcomes[number] = client.request(method, target, **kwargs)
                    except Exception as exc:
                        outcomes[number] = exc

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(callers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        return outcomes

    async def main() -> None:
        async with lib.AsyncClient(transport=transport) as client:

            async def worker(caller: int) -> None:
                for number, kind in plan[caller::callers]:
                    method, target, kwargs = request_args(number, kind)
                    try:
                        outcomes[number] = await client.request(method, target, **kwargs)
                    except Exception as exc:
                        outcomes[number] = exc

            with anyio.fail_after(60):
                async with anyio.create_task_group() as group:
                    for caller in range(callers):
                        group.start_soon(worker, caller)

    harness.run(main)
    return outcomes


NEVER_SENT = ("ConnectError", "ConnectTimeout", "PoolTimeout")


# httpcore 1.0.9's async pool slows down sharply with hundreds of waiting tasks
# (plain httpx, 500 asyncio tasks: ~25 s, vs ~1 s on httpcore2), so the big
# async runs use httpx2; both flavours run the threads. What loads the transport
# is how many callers are in flight at once; each sends a few requests in turn
# (200 to 500 per run: enough to spend the budget, which refuses from ~150 on).
@pytest.mark.parametrize(
    ("flavour", "mode", "callers", "each"),
    [
        ("httpx", "sync", 64, 6),
        ("httpx2", "sync", 64, 6),
        ("httpx2", "asyncio", 500, 1),
        ("httpx2", "trio", 200, 2),
        ("httpx", "trio", 200, 1),
    ],
    ids=[
        "httpx-64-threads",
        "httpx2-64-threads",
        "httpx2-500-asyncio-tasks",
        "httpx2-200-trio-tasks",
        "httpx-200-trio-tasks",
    ],
)
def test_many_callers_share_one_transport_and_budget(
    flavour: str, mode: str, callers: int, each: int, package_log: _Records
) -> None:
    """A third of requests fail: each request gets one answer, and both sides' counts agree."""
    harness = Harness(flavour, mode)
    lib = harness.lib
    budget = RetryBudget(capacity=40, ratio=0.05, per_second=0)
    events: list[RetryEvent] = []
    with FaultServer(keep_requests=True) as server, _BalanceWatch(budget) as watch:
        server.flaky(1 / 3, *FAULTS, seed=4)
        transport = harness.RetryTransport(
            harness.http_transport(),
            policy=RetryPolicy(attempts=4, backoff=tenacity.wait_fixed(0.001)),
            budget=budget,
            on_retry=events.append,  # list.append: atomic, safe from any thread
        )
        outcomes = _load(harness, server.url, callers, each, transport)
        received = list(server.received)
    total = callers * each

    # One answer per request: a response or an httpx exception, never anything else.
    assert all(isinstance(o, lib.Response | lib.HTTPError) for o in outcomes), Counter(
        type(o).__name__ for o in outcomes
    )
    # The server read every attempt that was sent (its faults strike after reading);
    # an attempt that never got a connection (PoolTimeout...) never reached it.
    retries = Counter(int(event.request.headers["x-id"]) for event in events)
    unsent = Counter(
        int(event.request.headers["x-id"])
        for event in events
        if type(event.exception).__name__ in NEVER_SENT
    )
    unsent.update(n for n, o in enumerate(outcomes) if type(o).__name__ in NEVER_SENT)
    seen = Counter(int(request.headers["x-id"]) for request in received)
    assert seen == Counter({n: 1 + retries[n] - unsent[n] for n in range(total)})
    for number, outcome in enumerate(outcomes):
        kind = list(KINDS)[number % len(KINDS)]
        if not KINDS[kind][2]:
            assert seen[number] <= 1  # a plain POST is never processed twice
        history = getattr(outcome, "extensions", {}).get("retry_history", ())
        notes = "".join(getattr(outcome, "__notes__", ()))
        assert len(history) == retries[number] or f"attempt {retries[number] + 1}:" in notes
    # The budget: every first attempt counted, every retry paid for, refusals logged.
    refused = sum("retry budget is spent" in message for message in package_log.messages)
    assert budget.requests == total
    assert budget.retries_allowed == len(events)
    assert budget.retries_refused == refused > 0
    assert watch.samples > 0
    assert watch.lowest >= 0
    assert 0 <= budget.balance <= budget.capacity
    # Tokens out <= tokens in: a retry that got an answer the policy does not retry was
    # refunded; the first request's retries are never refused (at most attempts - 1).
    refunded = sum(
        1
        for number, outcome in enumerate(outcomes)
        if retries[number]
        and isinstance(outcome, lib.Response)
        and outcome.status_code not in RetryPolicy().statuses
    )
    assert len(events) - refunded <= budget.grant + 0.05 * total + 3 + 1e-9


# -- cancellation -----------------------------------------------------------------

#: Where the request is when it is cancelled: what the server does on each attempt, the
#: backoff, when to cancel (SETTLE after the server has read this many attempts, or after
#: the retry was announced), and how many connections the server saw, follow-up included.
CANCEL_POINTS: dict[str, tuple[tuple[Reply | str, ...], float, int | str, int | None]] = {
    # Waiting for a silent server's answer: the connection is dropped.
    "first-attempt": (("silent",), 0.0, 1, 2),
    # Sleeping a 10 s backoff: the 503 was drained first, so its connection serves the follow-up.
    "backoff-sleep": ((status(503, b"busy"), ok()), 10.0, "retry", 1),
    # Releasing a 503 whose body trickles in for 2 s (then a silent server).
    "release": ((dripping(503, 0.05, b"x" * 40), "silent"), 0.0, 1, None),
    # Waiting for a silent server on the retry, on the drained 503's connection.
    "second-attempt": ((status(503, b"busy"), "silent"), 0.0, 2, 2),
}
#: How long after reaching its point the request is cancelled.
SETTLE = 0.02


@pytest.mark.parametrize("point", CANCEL_POINTS)
@pytest.mark.parametrize("mode", ["asyncio", "trio"])
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_cancellation_surfaces_at_once_and_leaks_nothing(
    flavour: str, mode: str, point: str
) -> None:
    """Cancelled at any point of a retried request: it stops now; a pool of one still serves."""
    harness = Harness(flavour, mode)
    lib = harness.lib
    actions, backoff, cancel_at, connections = CANCEL_POINTS[point]
    timings: dict[str, Any] = {}
    announced: list[RetryEvent] = []
    with FaultServer() as server:
        server.script("/c", *actions)
        transport = harness.RetryTransport(
            harness.http_transport(limits=lib.Limits(max_connections=1)),
            policy=RetryPolicy(backoff=tenacity.wait_fixed(backoff)),
            on_retry=announced.append,
        )

        def reached() -> bool:
            if "stopped" in timings:  # it ended before its point: nothing to wait for
                return True
            return bool(announced) if cancel_at == "retry" else server.count("/c") >= cancel_at

        async def main() -> None:
            async with lib.AsyncClient(transport=transport) as client:
                scope = anyio.CancelScope()

                async def request() -> None:
                    with scope:
                        await client.get(f"{server.url}/c", timeout=lib.Timeout(5.0))
                    timings["stopped"] = time.monotonic()
                    timings["caught"] = scope.cancelled_caught

                async def cancel_at_the_point() -> None:
                    # The server counts in its own threads: nothing to await but time.
                    while not reached():  # noqa: ASYNC110
                        await anyio.sleep(0.002)
                    await anyio.sleep(SETTLE)
                    timings["cancelled"] = time.monotonic()
                    scope.cancel()

                with anyio.fail_after(10):
                    async with anyio.create_task_group() as group:
                        group.start_soon(request)
                        group.start_soon(cancel_at_the_point)
                follow = await client.get(f"{server.url}/after", timeout=lib.Timeout(5.0, pool=0.5))
                timings["follow"] = follow.status_code

        harness.run(main)
        seen = server.connections
    assert timings["caught"]
    # At once: not after the 10 s backoff, the 5 s read timeout or the 2 s trickle.
    assert timings["stopped"] - timings["cancelled"] < 1.0
    assert timings["follow"] == 200
    if connections is not None:
        assert seen == connections
