"""RetryBudget arithmetic on a fake clock, its validation, and its invariants under threads."""

from __future__ import annotations

import math
import random
import threading
from typing import Any

import httpx
import pytest
import tenacity

from httpx_retrying import RetryBudget, RetryPolicy, RetryTransport
from tests.conftest import FakeClock


def budget_at(clock: FakeClock | None = None, **kwargs: Any) -> RetryBudget:
    """A budget on a frozen fake clock, with one request already counted (no first-request rule)."""
    budget = RetryBudget(clock=clock or FakeClock(), **kwargs)
    budget.record_request()
    budget.record_request()
    return budget


def spend(budget: RetryBudget, cost: float = 1.0) -> int:
    """Withdraw until refused; return how many were granted (bounded)."""
    for granted in range(1000):
        if not budget.try_acquire(cost):
            return granted
    raise AssertionError("budget never ran out")


def test_defaults() -> None:
    """The defaults the README justifies."""
    budget = RetryBudget(clock=FakeClock())
    assert (budget.ratio, budget.grant, budget.capacity) == (0.1, 2.0, 10.0)
    assert (budget.decay_seconds, budget.per_second, budget.timeout_cost) == (10.0, 0.1, 2.0)
    assert RetryBudget(capacity=1).grant == 1.0  # the default grant never exceeds capacity
    assert "grant=2.0" in repr(budget)
    assert "timeout_cost=2.0" in repr(budget)


def test_a_fresh_budget_holds_only_the_grant() -> None:
    """Two retries before any traffic has earned more, then a refusal."""
    budget = budget_at(ratio=0)
    assert budget.balance == 2
    assert spend(budget) == 2
    assert (budget.retries_allowed, budget.retries_refused) == (2, 1)
    assert budget.balance == 0


def test_the_first_request_may_use_all_its_attempts() -> None:
    """While one request is counted, no retry is refused, timeouts included."""
    budget = RetryBudget(ratio=0, clock=FakeClock())
    budget.record_request()
    assert all(budget.try_acquire() for _ in range(20))  # e.g. attempts=21
    assert budget.try_acquire(budget.timeout_cost)
    assert budget.balance == 0  # never negative
    budget.record_request()  # a second request: the ordinary rule again
    assert not budget.try_acquire()
    idle = RetryBudget(ratio=0, clock=FakeClock())  # nothing counted: no exemption either
    assert spend(idle) == 2


def test_deposits_fill_the_grant_then_savings_decay() -> None:
    """Below the grant deposits stay; above it they decay with time constant decay_seconds."""
    clock = FakeClock()
    budget = budget_at(clock, ratio=1.0, capacity=100.0, decay_seconds=10.0, per_second=0)
    spend(budget)
    for _ in range(7):
        budget.record_request()
    assert budget.balance == pytest.approx(7.0)  # no time has passed
    clock.now += 10.0
    assert budget.balance == pytest.approx(2.0 + 5.0 * math.exp(-1.0))
    clock.now += 1000.0
    assert budget.balance == pytest.approx(2.0)  # the grant itself never decays


def test_lazy_deposits_are_credited_as_if_spread_over_the_interval() -> None:
    """Requests folded after `dt` count as arriving evenly in it: the average decay applies."""
    clock = FakeClock()
    budget = budget_at(clock, ratio=1.0, grant=0.0, capacity=100.0, decay_seconds=10.0)
    assert budget.balance == 2.0  # the two setup requests, folded
    for _ in range(10):
        budget.record_request()
    clock.now += 10.0
    expected = 2.0 * math.exp(-1.0) + 10.0 * (1 - math.exp(-1.0))
    assert budget.balance == pytest.approx(expected)
    # Between "all at the start" and "all at the end", as it must be.
    assert 12.0 * math.exp(-1.0) < budget.balance < 2.0 * math.exp(-1.0) + 10.0


def test_balance_is_capped_at_capacity() -> None:
    budget = budget_at(ratio=1.0, capacity=5.0)
    for _ in range(100):
        budget.record_request()
    assert budget.balance == 5.0
    assert spend(budget) == 5


def test_a_successful_retry_gets_its_tokens_back() -> None:
    """Refunds: a lossy but healthy server costs nothing; a failed retry keeps its cost."""
    budget = budget_at(ratio=0, capacity=3.0)
    assert budget.try_acquire()
    budget.record_retry_outcome(True, 1.0)
    assert budget.balance == 2.0
    assert budget.try_acquire()
    budget.record_retry_outcome(False, 1.0)
    assert budget.balance == 1.0
    for _ in range(5):  # refunds never lift the balance above capacity
        budget.record_retry_outcome(True, 1.0)
    assert budget.balance == 3.0


def test_a_timeout_retry_costs_timeout_cost() -> None:
    budget = budget_at(ratio=0, timeout_cost=2.0)
    assert budget.try_acquire(budget.timeout_cost)
    assert budget.balance == 0
    budget.record_retry_outcome(True, 2.0)
    assert budget.balance == 2.0
    assert budget.try_acquire(1.0)
    assert not budget.try_acquire(2.0)  # 1 token left: a timeout retry is refused ...
    assert budget.try_acquire(1.0)  # ... an ordinary one is not
    assert budget.retries_refused == 1


def test_trickle_refills_to_the_grant_only_while_the_last_retry_succeeded() -> None:
    clock = FakeClock()
    budget = budget_at(clock, ratio=0, grant=2.0, per_second=0.5)
    spend(budget)
    clock.now += 2.0
    assert budget.balance == pytest.approx(1.0)  # open: 0.5 per second
    clock.now += 1000.0
    assert budget.balance == pytest.approx(2.0)  # never above the grant
    spend(budget)
    budget.record_retry_outcome(False, 1.0)  # closed: a storm earns no trickle
    clock.now += 1000.0
    assert budget.balance == 0
    budget.record_retry_outcome(True, 0.0)  # open again
    clock.now += 2.0
    assert budget.balance == pytest.approx(1.0)


def test_a_clock_going_backwards_earns_nothing() -> None:
    clock = FakeClock()
    budget = budget_at(clock, ratio=0, per_second=1.0)
    spend(budget)
    clock.now -= 50.0
    assert budget.balance == 0
    clock.now += 51.0  # one second after the last fold that counted
    assert budget.balance == pytest.approx(1.0)


def test_the_success_path_is_a_counter_tick() -> None:
    """record_request reads no clock and takes no lock; the class cannot be subclassed."""
    clock = FakeClock()
    reads = 0

    def counting_clock() -> float:
        nonlocal reads
        reads += 1
        return clock()

    budget = RetryBudget(clock=counting_clock)
    before = reads
    for _ in range(1000):
        budget.record_request()
    assert reads == before
    assert budget.requests == 1000
    assert type(budget.record_request).__name__ == "method-wrapper"  # itertools.count.__next__
    with pytest.raises(TypeError, match="cannot be subclassed"):
        type("Mine", (RetryBudget,), {})


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"ratio": -0.1}, ValueError, "ratio"),
        ({"ratio": "0.1"}, TypeError, "ratio"),
        ({"grant": 11.0}, ValueError, "grant"),
        ({"grant": -1.0}, ValueError, "grant"),
        ({"grant": True}, TypeError, "grant"),
        ({"capacity": 0.5}, ValueError, "capacity"),
        ({"capacity": float("inf")}, ValueError, "capacity"),
        ({"decay_seconds": 0.0}, ValueError, "decay_seconds"),
        ({"per_second": float("nan")}, ValueError, "per_second"),
        ({"timeout_cost": 0.5}, ValueError, "timeout_cost"),
        ({"clock": 0.0}, TypeError, "clock"),
    ],
)
def test_invalid_parameters_name_the_field(
    kwargs: dict[str, Any], error: type[Exception], field: str
) -> None:
    with pytest.raises(error, match=field):
        RetryBudget(**kwargs)


def test_invalid_calls_name_the_argument() -> None:
    budget = RetryBudget(clock=FakeClock())
    for cost, error in ((0.0, ValueError), (float("nan"), ValueError), ("1", TypeError)):
        with pytest.raises(error, match="try_acquire cost"):
            budget.try_acquire(cost)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="record_retry_outcome cost"):
        budget.record_retry_outcome(True, -1.0)
    with pytest.raises(TypeError, match="succeeded must be a bool"):
        budget.record_retry_outcome(1, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="refund cost"):
        budget.refund(float("inf"))
    assert (budget.retries_allowed, budget.retries_refused) == (0, 0)


def test_a_refund_gives_back_a_granted_retry_up_to_the_capacity() -> None:
    """A retry granted and never sent costs nothing; no refund lifts the balance past capacity."""
    budget = RetryBudget(clock=FakeClock())
    budget.record_request()
    before = budget.balance
    assert budget.try_acquire(1.0)
    budget.refund(1.0)
    assert budget.balance == pytest.approx(before)
    budget.refund(100.0)
    assert budget.balance == budget.capacity


def test_invariants_under_threads() -> None:
    """16 threads depositing, withdrawing and refunding while another samples the balance.

    Time is frozen (no decay, no trickle), so tokens are conserved exactly:
    balance = grant + ratio x requests - granted costs + refunds, and it stays in [0, capacity].
    """
    threads, each = 16, 1500
    budget = budget_at(ratio=0.05, grant=2.0, capacity=1e6)
    lock = threading.Lock()
    paid = refunded = 0.0
    calls = 0
    barrier = threading.Barrier(threads + 1)
    done = threading.Event()
    samples: list[float] = []

    def work(seed: int) -> None:
        nonlocal paid, refunded, calls
        rng = random.Random(seed)
        barrier.wait()
        for _ in range(each):
            budget.record_request()
            if rng.random() < 0.3:
                cost = rng.choice((1.0, 2.0))
                granted = budget.try_acquire(cost)
                succeeded = rng.random() < 0.5
                if granted:
                    budget.record_retry_outcome(succeeded, cost)
                with lock:
                    calls += 1
                    paid += cost if granted else 0.0
                    refunded += cost if granted and succeeded else 0.0

    def watch() -> None:
        barrier.wait()
        while not done.is_set() and len(samples) < 100_000:
            samples.append(budget.balance)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    watcher = threading.Thread(target=watch)
    for thread in [*workers, watcher]:
        thread.start()
    for thread in workers:
        thread.join(timeout=60)
    done.set()
    watcher.join(timeout=60)
    assert not any(thread.is_alive() for thread in [*workers, watcher])

    total = threads * each + 2
    assert budget.requests == total
    assert budget.retries_allowed + budget.retries_refused == calls
    assert budget.retries_refused > 0  # the budget really was exercised
    assert budget.balance == pytest.approx(2.0 + 0.05 * total - paid + refunded)
    assert samples
    assert all(0.0 <= sample <= budget.capacity for sample in samples)


def test_the_transport_pays_timeout_cost_and_is_refunded_for_a_successful_retry() -> None:
    """RetryTransport's side of the contract: the cost it passes and the outcomes it reports."""

    def run(*answers: Any) -> tuple[RetryBudget, list[float]]:
        budget = RetryBudget(ratio=0, clock=FakeClock())
        budget.record_request()  # not the first request: the ordinary rule applies
        script = iter(answers)
        balances: list[float] = []

        def handler(request: httpx.Request) -> httpx.Response:
            answer = next(script)
            if isinstance(answer, Exception):
                raise answer
            return httpx.Response(answer)

        transport = RetryTransport(
            httpx.MockTransport(handler),
            policy=RetryPolicy(backoff=tenacity.wait_none()),
            budget=budget,
            on_retry=lambda event: balances.append(budget.balance),
        )
        with httpx.Client(transport=transport) as client:
            client.get("http://test/")
        return budget, balances

    budget, balances = run(httpx.ReadTimeout("slow"), 200)
    assert balances == [0.0]  # the timeout retry cost 2 ...
    assert budget.balance == 2.0  # ... and came back when it succeeded
    budget, balances = run(503, 503, 200)
    assert balances == [1.0, 0.0]  # one token each
    assert budget.balance == 1.0  # the failed retry kept its token; the successful one did not
    budget, _ = run(503, httpx.ConnectError("down"), 503)
    assert budget.balance == 0.0  # both retries failed (the last one exhausted the attempts)


def test_a_refund_gives_back_no_more_than_the_first_request_withdrew() -> None:
    """The first request's retry is granted 0.1 token where it costs 2: a success refunds 0.1."""
    budget = RetryBudget(clock=FakeClock())
    budget.record_request()
    assert budget.balance == pytest.approx(2.1)
    assert budget.try_acquire(2.0)
    budget.record_retry_outcome(False, 2.0)
    assert budget.try_acquire(2.0)  # the exemption: only 0.1 was there
    budget.record_retry_outcome(True, 2.0)
    assert budget.balance == pytest.approx(0.1)
    budget.record_request()
    assert budget.try_acquire(1.0) is False  # 0.2 tokens, and a second request is not exempt
