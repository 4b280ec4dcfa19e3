"""The jitter family: bounds, the cap, composition with tenacity."""

from __future__ import annotations

import math
import random

import pytest
import tenacity
from hypothesis import given
from hypothesis import strategies as st

from httpx_retrying import (
    backoff_decorrelated_jitter,
    backoff_equal_jitter,
    backoff_full_jitter,
    backoff_no_jitter,
)

FAMILY = [backoff_no_jitter, backoff_full_jitter, backoff_equal_jitter, backoff_decorrelated_jitter]


def state(attempt: int) -> tenacity.RetryCallState:
    retry_state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
    retry_state.attempt_number = attempt
    return retry_state


def fixed(value: float) -> random.Random:
    rng = random.Random()
    rng.random = lambda: value  # type: ignore[method-assign]
    return rng


def test_no_jitter_doubles_up_to_the_cap() -> None:
    """min(cap, initial * 2**(n-1)), also for huge attempt numbers."""
    wait = backoff_no_jitter(initial=0.5, cap=8.0)
    assert [wait(state(n)) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 8, 8]
    assert wait(state(10_000)) == 8.0


@pytest.mark.parametrize(
    ("strategy", "low", "high"),
    [(backoff_full_jitter, 0.0, 8.0), (backoff_equal_jitter, 4.0, 8.0)],
)
def test_jitter_survives_at_the_cap(strategy: type, low: float, high: float) -> None:
    """At the cap clients still spread out: draws cover the range, not one value."""
    rng = random.Random("cap")
    wait = strategy(initial=0.5, cap=8.0, random=rng.random)
    draws = [wait(state(50)) for _ in range(500)]
    assert low <= min(draws) < low + 0.5
    assert high - 0.5 < max(draws) <= high
    assert len(set(draws)) > 400


def test_decorrelated_keeps_its_state_per_call_and_jitters_at_the_cap() -> None:
    """The previous sleep lives on the call's state; draws stay in [initial, cap]."""
    wait = backoff_decorrelated_jitter(initial=0.1, cap=2.0, random=random.Random("d").random)
    one, other = state(1), state(1)
    first = wait(one)
    assert 0.1 <= first <= 0.3
    assert getattr(other, "_httpx_retrying_previous_sleep", None) is None
    draws = []
    for attempt in range(2, 200):
        one.attempt_number = attempt
        draws.append(wait(one))
    assert all(0.1 <= draw <= 2.0 for draw in draws)
    assert max(draws) > 1.9
    assert len({round(d, 6) for d in draws[-50:]}) == 50
    one.attempt_number = 1  # a new call reusing the state starts over
    assert wait(one) <= 0.3


@pytest.mark.parametrize("strategy", FAMILY)
@given(attempt=st.integers(min_value=1, max_value=10**6), uniform=st.floats(0, 1, exclude_max=True))
def test_every_delay_is_finite_non_negative_and_capped(
    strategy: type, attempt: int, uniform: float
) -> None:
    """Property: any attempt number gives a delay in [0, cap]."""
    wait = strategy(initial=0.25, cap=30.0, random=lambda: uniform)
    delay = wait(state(attempt))
    assert math.isfinite(delay)
    assert 0 <= delay <= 30.0


@pytest.mark.parametrize("strategy", FAMILY)
def test_composes_with_tenacity(strategy: type) -> None:
    """`+`, `sum()` and `wait_chain` accept the family like any tenacity wait."""
    ours = strategy(initial=1.0, cap=1.0, random=lambda: 0.999999)
    assert (ours + tenacity.wait_fixed(2))(state(1)) == pytest.approx(3.0, abs=0.01)
    assert (tenacity.wait_fixed(2) + ours)(state(1)) == pytest.approx(3.0, abs=0.01)
    assert sum([ours, tenacity.wait_fixed(1)])(state(1)) == pytest.approx(2.0, abs=0.01)
    chain = tenacity.wait_chain(tenacity.wait_fixed(5), ours)
    assert chain(state(1)) == 5
    assert chain(state(2)) == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial": 0}, "initial"),
        ({"initial": -1}, "initial"),
        ({"cap": math.inf}, "cap"),
        ({"initial": 2, "cap": 1}, "cap must be >= initial"),
    ],
)
def test_bad_parameters_name_the_field(kwargs: dict[str, float], message: str) -> None:
    """ValueError at construction, naming the field."""
    with pytest.raises(ValueError, match=message):
        backoff_full_jitter(**kwargs)


def test_type_errors_and_repr() -> None:
    """Non-numbers are a TypeError; the repr shows the parameters; equality by value."""
    with pytest.raises(TypeError, match="initial"):
        backoff_full_jitter(initial="1")  # type: ignore[arg-type]
    assert repr(backoff_equal_jitter(1, 4)) == "backoff_equal_jitter(initial=1.0, cap=4.0)"
    assert backoff_no_jitter(1, 4) == backoff_no_jitter(1, 4)
    assert backoff_no_jitter(1, 4) != backoff_full_jitter(1, 4)
    assert hash(backoff_no_jitter(1, 4)) == hash(backoff_no_jitter(1, 4))


def test_a_random_source_is_checked_and_clamped() -> None:
    """Not callable: refused at once. Outside [0, 1]: the wait stays within the cap."""
    with pytest.raises(TypeError, match="random"):
        backoff_full_jitter(random=3)  # type: ignore[arg-type]
    assert backoff_full_jitter(initial=8, cap=8, random=lambda: 100.0)(state(5)) == 8.0
    assert backoff_full_jitter(initial=8, cap=8, random=lambda: -1.0)(state(5)) == 0.0
