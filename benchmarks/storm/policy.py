"""What a simulated client does on a failure: the package's backoffs and Retry-After rule.

The strategies are the package's own objects, driven with a seeded RNG and a
per-request state object, so the simulation measures them rather than a copy.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from httpx_retrying import (
    RetryPolicy,
    backoff_decorrelated_jitter,
    backoff_equal_jitter,
    backoff_full_jitter,
    backoff_no_jitter,
)

# Not public (yet): the documented rule combining a backoff with a server's Retry-After.
from httpx_retrying._retry_after import wait_with_retry_after

BackoffFn = Callable[[Any], float]
BACKOFFS: dict[str, Callable[..., BackoffFn]] = {
    "none": backoff_no_jitter,  # exponential, no jitter
    "full": backoff_full_jitter,
    "equal": backoff_equal_jitter,
    "decorrelated": backoff_decorrelated_jitter,
}
JITTERS = tuple(BACKOFFS)
RA_MODES = ("ignore", "exact", "aws2026", "spread")


class AttemptState:
    """The per-logical-request state the package's strategies read (like tenacity's).

    One instance per logical request: decorrelated jitter keeps its previous sleep on it.
    """

    def __init__(self) -> None:
        self.attempt_number = 1


@dataclass(frozen=True)
class Policy:
    """What a client does; `backoff` names one of the package's strategies."""

    attempts: int
    backoff: str
    initial_s: float
    cap_s: float
    ra: str = "ignore"  # one of RA_MODES
    spread: float = 0.5
    max_ra_s: float = 60.0
    timeout_ms: float | None = None

    def make_backoff(self, rng: random.Random) -> BackoffFn:
        return BACKOFFS[self.backoff](self.initial_s, self.cap_s, random=rng.random)

    def wait_ms(
        self, backoff_s: float, retry_after_ms: float, uniform: Callable[[], float]
    ) -> float | None:
        """The wait before the next attempt, in ms, or None to give up (Retry-After too long)."""
        if retry_after_ms < 0 or self.ra == "ignore":
            return backoff_s * 1000.0
        asked = retry_after_ms / 1000.0
        if self.ra == "aws2026":  # reference only: max(d, min(RA, d + 5 s))
            return max(backoff_s, min(min(asked, 60.0), backoff_s + 5.0)) * 1000.0
        combined = wait_with_retry_after(
            backoff_s,
            asked,
            spread=0.0 if self.ra == "exact" else self.spread,
            uniform=uniform(),  # drawn only when Retry-After applies
            max_retry_after=self.max_ra_s,
        )
        return None if combined is None else combined * 1000.0


def backoff_name(strategy: object) -> str:
    names: dict[object, str] = {cls: name for name, cls in BACKOFFS.items()}
    return names[type(strategy)]


def package_default_policy(timeout_ms: float | None = None, **changes: Any) -> Policy:
    """`RetryPolicy()` as the transport would apply it (read from the package, not copied)."""
    p = RetryPolicy(**changes)
    strategy: Any = p.backoff
    return Policy(
        attempts=p.attempts,
        backoff=backoff_name(strategy),
        initial_s=strategy.initial,
        cap_s=strategy.cap,
        ra="spread" if p.respect_retry_after else "ignore",
        spread=p.retry_after_spread,
        max_ra_s=p.max_retry_after,
        timeout_ms=timeout_ms,
    )


def s2_policy(jitter: str, ra: str) -> Policy:
    """The herd's reference client: 8 attempts, 100 ms base, 10 s cap, no timeout."""
    return Policy(attempts=8, backoff=jitter, initial_s=0.1, cap_s=10.0, ra=ra)


def s34_policy(jitter: str) -> Policy:
    """The overload scenarios' reference client: 3 attempts, 50 ms base, 2 s cap, 200 ms timeout."""
    return Policy(attempts=3, backoff=jitter, initial_s=0.05, cap_s=2.0, timeout_ms=200.0)
