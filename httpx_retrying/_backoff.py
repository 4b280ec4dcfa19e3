"""Capped exponential backoff with the four classic jitters, as tenacity waits.

Each strategy is a callable taking a `tenacity.RetryCallState` (only its
`attempt_number`, the 1-based number of the attempt that failed, is read) and
returning seconds, so it composes with tenacity's `+` and `wait_chain`.

Unlike `tenacity.wait_exponential_jitter`, the cap is applied to the
exponential *before* the jitter is drawn: at the cap, clients still spread out
over `[0, cap]` (full), `[cap/2, cap]` (equal) or `[initial, cap]`
(decorrelated) instead of all sleeping exactly `cap`.

tenacity is imported only when strategies are combined with `+`, so that
`import httpx_retrying` stays cheap.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from typing import Any, Protocol

from ._validate import finite_number

__all__ = [
    "backoff_decorrelated_jitter",
    "backoff_equal_jitter",
    "backoff_full_jitter",
    "backoff_no_jitter",
]

# 2**64 times any sane `initial` is past every cap; beyond it, skip the power.
_MAX_EXPONENT = 64


class _AttemptState(Protocol):
    attempt_number: int


class _CappedExponential:
    """Shared shape: `expo(n) = min(cap, initial * 2**(n - 1))` for failed attempt n."""

    __slots__ = ("_random", "cap", "initial")

    def __init__(
        self,
        initial: float = 0.5,
        cap: float = 8.0,
        *,
        random: Callable[[], float] | None = None,
    ) -> None:
        self.initial = finite_number("initial", initial, inclusive=False)
        self.cap = finite_number("cap", cap, inclusive=False)
        if self.cap < self.initial:
            raise ValueError(f"cap must be >= initial, got cap={cap!r} < initial={initial!r}")
        if random is not None and not callable(random):
            raise TypeError(f"random must be a callable returning [0, 1), got {random!r}")
        self._random = random if random is not None else _random.random

    def _expo(self, attempt_number: int) -> float:
        exponent = max(0, attempt_number - 1)
        if exponent >= _MAX_EXPONENT:
            return self.cap
        return min(self.cap, self.initial * (1 << exponent))

    def _uniform(self, low: float, high: float) -> float:
        # Clamped: a random source outside [0, 1] must not stretch a sleep past `cap`.
        return low + (high - low) * min(1.0, max(0.0, self._random()))

    def __call__(self, retry_state: _AttemptState) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def __add__(self, other: Any) -> Any:
        import tenacity

        return tenacity.wait_combine(self, other)

    def __radd__(self, other: Any) -> Any:
        if isinstance(other, int) and other == 0:  # sum() starts from 0
            return self
        import tenacity

        return tenacity.wait_combine(other, self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(initial={self.initial!r}, cap={self.cap!r})"

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, _CappedExponential)
            and (other.initial, other.cap, other._random) == (self.initial, self.cap, self._random)
        )

    def __hash__(self) -> int:
        return hash((type(self), self.initial, self.cap))


class backoff_no_jitter(_CappedExponential):  # noqa: N801 - tenacity's naming style
    """`min(cap, initial * 2**(n-1))`: no randomness, so clients stay in step (see S1, S2)."""

    __slots__ = ()

    def __call__(self, retry_state: _AttemptState) -> float:
        return self._expo(retry_state.attempt_number)


class backoff_full_jitter(_CappedExponential):  # noqa: N801
    """`uniform(0, expo(n))`: the least total work under contention (Brooker 2015)."""

    __slots__ = ()

    def __call__(self, retry_state: _AttemptState) -> float:
        return self._uniform(0.0, self._expo(retry_state.attempt_number))


class backoff_equal_jitter(_CappedExponential):  # noqa: N801
    """`expo(n)/2 + uniform(0, expo(n)/2)`: never shorter than half the exponential."""

    __slots__ = ()

    def __call__(self, retry_state: _AttemptState) -> float:
        half = self._expo(retry_state.attempt_number) / 2
        return self._uniform(half, 2 * half)


# Attribute under which decorrelated jitter keeps its previous sleep on the
# per-call tenacity state, so that one strategy object serves many calls.
_PREVIOUS = "_httpx_retrying_previous_sleep"


class backoff_decorrelated_jitter(_CappedExponential):  # noqa: N801
    """`uniform(initial, min(cap, 3 * previous))`, starting from `initial`.

    The AWS "decorrelated" formula, with the cap applied to the range rather
    than to the draw, so that the jitter survives at the cap. The previous sleep
    is kept on the per-call state, never on this (shared) object.
    """

    __slots__ = ()

    def __call__(self, retry_state: _AttemptState) -> float:
        previous = getattr(retry_state, _PREVIOUS, self.initial)
        if retry_state.attempt_number <= 1:
            previous = self.initial
        delay = self._uniform(self.initial, min(self.cap, 3 * previous))
        setattr(retry_state, _PREVIOUS, delay)
        return delay
