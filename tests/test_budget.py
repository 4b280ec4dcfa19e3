"""RetryBudget arithmetic, with an injected clock, and its behaviour under threads."""

from __future__ import annotations

import threading

import pytest

from httpx_retrying import RetryBudget


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def spend(budget: RetryBudget) -> int:
    """Withdraw until refused; return how many were granted (bounded)."""
    for granted in range(10_000):
        if not budget.try_acquire():
            return granted
    raise AssertionError("budget never ran out")


def test_starts_full_so_first_requests_retry() -> None:
    """A fresh budget grants `capacity` retries before any traffic."""
    budget = RetryBudget(capacity=10, ratio=0.1, per_second=0, clock=Clock())
    assert budget.balance == 10
    assert spend(budget) == 10
    assert (budget.retries_allowed, budget.retries_refused) == (10, 1)


def test_requests_earn_a_fraction_of_a_token() -> None:
    """Ten requests at ratio 0.1 earn one retry; the balance never passes capacity."""
    budget = RetryBudget(capacity=5, ratio=0.1, per_second=0, clock=Clock())
    spend(budget)
    for _ in range(25):
        budget.record_request()
    assert budget.requests == 25
    assert spend(budget) == 2  # 2.5 tokens: two whole retries
    for _ in range(1000):
        budget.record_request()
    assert budget.balance == 5  # capped
    assert spend(budget) == 5


def test_time_trickle_lets_quiet_clients_retry() -> None:
    """`per_second` refills without traffic, up to capacity."""
    clock = Clock()
    budget = RetryBudget(capacity=3, ratio=0, per_second=0.5, clock=clock)
    spend(budget)
    clock.now = 2.0
    assert spend(budget) == 1
    clock.now = 1000.0
    assert spend(budget) == 3
    clock.now = 999.0  # a clock going backwards earns nothing and breaks nothing
    assert budget.balance == 0


def test_lazy_folding_equals_eager_capping() -> None:
    """Deposits folded late give the same balance as folding each one, capped."""
    budget = RetryBudget(capacity=2, ratio=0.5, per_second=0, clock=Clock())
    eager = 2.0
    for step in range(50):
        if step % 7 == 0:
            budget.try_acquire()
            eager = eager - 1 if eager >= 1 else eager
        else:
            budget.record_request()
            eager = min(2.0, eager + 0.5)
    assert budget.balance == pytest.approx(eager)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ratio": -0.1}, "ratio"),
        ({"per_second": float("nan")}, "per_second"),
        ({"capacity": 0.5}, "capacity"),
        ({"capacity": float("inf")}, "capacity"),
    ],
)
def test_invalid_values_name_the_field(kwargs: dict[str, float], field: str) -> None:
    """ValueError naming the field; TypeError for non-numbers."""
    with pytest.raises(ValueError, match=field):
        RetryBudget(**kwargs)
    with pytest.raises(TypeError, match="ratio"):
        RetryBudget(ratio="0.1")  # type: ignore[arg-type]
    assert "ratio=0.1" in repr(RetryBudget())


def test_counters_stay_consistent_under_threads() -> None:
    """32 threads depositing and withdrawing: no token created or lost."""
    budget = RetryBudget(capacity=1000, ratio=0.01, per_second=0, clock=Clock())
    spend(budget)
    barrier = threading.Barrier(32)

    def work() -> None:
        barrier.wait()
        for index in range(2000):
            budget.record_request()
            if index % 8 == 0:
                budget.try_acquire()

    threads = [threading.Thread(target=work) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert budget.requests == 32 * 2000
    granted = budget.retries_allowed - 1000
    assert granted + budget.retries_refused - 1 == 32 * 250
    # Every granted retry was paid for by deposits (0.01 per request, never capped here).
    assert 0 < granted <= 32 * 2000 * 0.01
    assert budget.balance == pytest.approx(32 * 2000 * 0.01 - granted)
    assert budget.balance >= 0
