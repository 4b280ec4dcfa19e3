"""A retry budget: retries limited to a fraction of recent traffic.

Token bucket in the style of Finagle's `RetryBudget` and gRPC's retry
throttling: every request (first attempt) deposits `ratio` tokens, every retry
withdraws one whole token, a small trickle (`per_second`) keeps a quiet client
able to retry, and the balance never exceeds `capacity`. The bucket starts
full, so a fresh transport's first requests can use all their attempts.

The success path only counts: it calls `next()` on an `itertools.count`, which
is atomic under the GIL and takes no lock. Deposits are folded into the
balance when a retry asks for a token, under a lock that is never held across
I/O. Because deposits are never negative, folding them late gives exactly the
balance that folding them one by one (each capped) would.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

from ._validate import finite_number

__all__ = ["RetryBudget"]


class RetryBudget:
    """Allow retries while they stay a small fraction of the traffic.

    Arguments:

    * `ratio`: tokens earned per request; `0.1` lets retries add at most about
      10 % to the load in a sustained failure (the SRE book's per-client budget).
    * `per_second`: tokens earned per second whatever the traffic, so that a
      quiet client can still retry now and then (0.1: six retries a minute).
    * `capacity`: the most tokens that can be saved up, and the starting
      balance: how many retries a burst of failures may use at once.
    * `clock`: monotonic seconds; injectable for tests and simulations.

    One instance may be shared by many transports, threads and tasks. A
    transport calls `record_request()` for every request and `try_acquire()`
    before every retry; anything else (a simulation, another client) may drive
    it the same way.
    """

    def __init__(
        self,
        *,
        ratio: float = 0.1,
        per_second: float = 0.1,
        capacity: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ratio = finite_number("RetryBudget ratio", ratio)
        self.per_second = finite_number("RetryBudget per_second", per_second)
        self.capacity = finite_number("RetryBudget capacity", capacity, minimum=1.0)
        self._clock = clock
        self._lock = threading.Lock()
        self._counter = itertools.count()
        # The transports' success path calls this, and nothing else.
        self.record_request: Callable[[], object] = self._counter.__next__
        self._counter_reads = 0  # our own next() calls, to subtract from the count
        self._requests_folded = 0
        self._balance = self.capacity
        self._last_refill = clock()
        self._allowed = 0
        self._refused = 0

    def _fold(self) -> None:
        """Bring deposits and the time trickle into the balance; call under the lock."""
        seen = next(self._counter) - self._counter_reads
        self._counter_reads += 1
        now = self._clock()
        earned = (seen - self._requests_folded) * self.ratio
        earned += max(0.0, now - self._last_refill) * self.per_second
        self._requests_folded = seen
        self._last_refill = max(now, self._last_refill)
        self._balance = min(self.capacity, self._balance + earned)

    #: What a retry after a timeout costs (the transport passes it to `try_acquire`).
    timeout_cost = 1.0

    def try_acquire(self, cost: float = 1.0) -> bool:
        """Withdraw `cost` tokens for a retry; `False` means the retry is refused."""
        with self._lock:
            self._fold()
            if self._balance >= cost:
                self._balance -= cost
                self._allowed += 1
                return True
            self._refused += 1
            return False

    def record_retry_outcome(self, succeeded: bool, cost: float = 1.0) -> None:
        """How a retry this budget paid for ended (this bucket does not use it)."""

    @property
    def balance(self) -> float:
        """Tokens available now (a retry needs one)."""
        with self._lock:
            self._fold()
            return self._balance

    @property
    def requests(self) -> int:
        """Requests counted so far (first attempts through any transport using this budget)."""
        with self._lock:
            self._fold()
            return self._requests_folded

    @property
    def retries_allowed(self) -> int:
        """Retries this budget has granted."""
        return self._allowed

    @property
    def retries_refused(self) -> int:
        """Retries this budget has refused."""
        return self._refused

    def __repr__(self) -> str:
        return (
            f"RetryBudget(ratio={self.ratio!r}, per_second={self.per_second!r}, "
            f"capacity={self.capacity!r})"
        )
