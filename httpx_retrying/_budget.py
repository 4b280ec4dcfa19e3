"""A retry budget whose allowance is earned by recent traffic, not granted up front.

Each process holds only a small `grant` of tokens before it has seen any
traffic; savings above the grant come from its own requests (`ratio` per
request) and decay with time constant `decay_seconds` unless new traffic keeps
earning them, so a fleet of young or quiet processes cannot add up a large
allowance. A retry that succeeds gets its tokens back (refund), so a lossy but
healthy server costs little; a retry after a read or write timeout costs
`timeout_cost` (the server may still be working on the attempt it timed out).
A time trickle (`per_second`) refills up to the grant only while the last
retry succeeded. The first request a budget counts is never refused a retry,
so a script making one call can use all its attempts.

The success path only counts: `record_request` is the bound `__next__` of an
`itertools.count` (`request_counter`), atomic under the GIL (free-threaded
builds are not claimed), with no lock and no clock read. Deposits, decay and
the trickle are folded into the balance lazily, under a lock that is never held
across I/O, when a retry asks for tokens or reports its outcome, or when a
figure is read.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable
from typing import final

from ._validate import finite_number

__all__ = ["RetryBudget"]

#: Float sums of deposits (ten times 0.1) may land a hair below a whole token.
_EPSILON = 1e-9


@final
class RetryBudget:
    """Allow retries while they stay a small fraction of the recent traffic.

    Arguments (the defaults are justified in the documentation, "The retry budget"):

    * `ratio`: tokens earned per request; `0.1` lets failed retries add about
      10 % to the load in a sustained failure (the SRE book's per-client budget).
    * `grant`: the starting balance, and the level the trickle refills to: what a
      process that has not earned anything may spend (default 2, the default
      policy's two retries, or `capacity` if that is smaller).
    * `capacity`: the most tokens that can be saved up: how many retries a burst
      of failures in a busy client may use at once.
    * `decay_seconds`: time constant of the decay of savings above `grant`; a
      client earns about `ratio x rate x decay_seconds` above the grant.
    * `per_second`: trickle up to `grant` while the last retry succeeded, so a
      quiet client on a lossy network keeps its grant.
    * `timeout_cost`: tokens a retry costs after a read or write timeout
      (ordinary retries cost one).
    * `clock`: monotonic seconds; injectable for tests and simulations.

    One instance may be shared by many transports, threads and tasks. A
    transport calls `record_request()` for every request, `try_acquire(cost)`
    before every retry and `record_retry_outcome(succeeded, cost)` when a
    granted retry attempt ends; anything else (a simulation, another client) may
    drive it the same way (`refund(cost)` gives back a granted retry that was
    never sent). The class is final: `record_request` is a counter
    bound in `__init__`, so a subclass could not override it.
    """

    __slots__ = (
        "_allowed",
        "_balance",
        "_clock",
        "_counter_reads",
        "_last_fold",
        "_lock",
        "_open",
        "_refused",
        "_requests_folded",
        "_unpaid",
        "capacity",
        "decay_seconds",
        "grant",
        "per_second",
        "ratio",
        "record_request",
        "request_counter",
        "timeout_cost",
    )

    def __init__(
        self,
        *,
        ratio: float = 0.1,
        grant: float | None = None,
        capacity: float = 10.0,
        decay_seconds: float = 10.0,
        per_second: float = 0.1,
        timeout_cost: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ratio = finite_number("RetryBudget ratio", ratio)
        self.capacity = finite_number("RetryBudget capacity", capacity, minimum=1.0)
        if grant is None:
            grant = min(2.0, self.capacity)
        self.grant = finite_number("RetryBudget grant", grant)
        if self.grant > self.capacity:
            raise ValueError(
                f"RetryBudget grant must be <= capacity ({self.capacity:g}), got {grant!r}"
            )
        self.decay_seconds = finite_number(
            "RetryBudget decay_seconds", decay_seconds, inclusive=False
        )
        self.per_second = finite_number("RetryBudget per_second", per_second)
        self.timeout_cost = finite_number("RetryBudget timeout_cost", timeout_cost, minimum=1.0)
        if not callable(clock):
            raise TypeError(f"RetryBudget clock must be callable, got {clock!r}")
        self._clock = clock
        self._lock = threading.Lock()
        #: The requests counted so far (plus this budget's own reads of it): `record_request()`
        #: is `next(request_counter)`; transports call `next()` on it directly, which costs
        #: half a bound-method call on their success path.
        self.request_counter = itertools.count()
        #: Count one request: a transport's success path does this and nothing else.
        self.record_request: Callable[[], object] = self.request_counter.__next__
        self._counter_reads = 0  # our own next() calls, to subtract from the count
        self._requests_folded = 0
        self._balance = self.grant
        self._last_fold = clock()
        self._open = True  # did the last retry succeed? (gates the trickle)
        self._allowed = 0
        self._refused = 0
        self._unpaid = 0.0  # costs granted under the first request's exemption but not withdrawn

    def __init_subclass__(cls, **kwargs: object) -> None:
        raise TypeError(
            "RetryBudget cannot be subclassed: record_request is a counter bound per "
            "instance, so an override would be silently ignored"
        )

    def _fold(self) -> None:
        """Bring time and pending deposits into the balance; call under the lock.

        Savings above the grant decay; below it, the trickle refills while the
        last retry succeeded. Deposits fill up to the grant as they are; what
        lands above it is credited as if the requests had arrived evenly since
        the last fold (so it has decayed on average), then capped.
        """
        seen = next(self.request_counter) - self._counter_reads
        self._counter_reads += 1
        new = seen - self._requests_folded
        self._requests_folded = seen
        elapsed = self._clock() - self._last_fold
        if elapsed <= 0.0:  # a clock going backwards earns nothing and breaks nothing
            elapsed = 0.0
        else:
            self._last_fold += elapsed
        balance, grant = self._balance, self.grant
        if elapsed:
            if balance > grant:
                balance = grant + (balance - grant) * math.exp(-elapsed / self.decay_seconds)
            elif self._open:
                balance = min(grant, balance + self.per_second * elapsed)
        if new:
            deposit = new * self.ratio
            below = min(deposit, max(0.0, grant - balance))
            above = deposit - below
            if above and elapsed:
                spread = elapsed / self.decay_seconds
                above *= -math.expm1(-spread) / spread
            balance = min(self.capacity, balance + below + above)
        self._balance = balance

    def try_acquire(self, cost: float = 1.0) -> bool:
        """Withdraw `cost` tokens for a retry; `False` means the retry is refused.

        While the budget has counted a single request, no retry is refused (it
        takes what there is, never driving the balance below zero), so a one-call
        script or CLI can use all its attempts whatever `attempts` is. The price:
        a fleet of N fresh processes may add N first requests' retries at once.
        """
        cost = finite_number("RetryBudget.try_acquire cost", cost, inclusive=False)
        with self._lock:
            self._fold()
            balance = self._balance
            if balance + _EPSILON >= cost or self._requests_folded == 1:
                self._unpaid += max(0.0, cost - balance)
                self._balance = max(0.0, balance - cost)
                self._allowed += 1
                return True
            self._refused += 1
            return False

    def record_retry_outcome(self, succeeded: bool, cost: float = 1.0) -> None:
        """A granted retry attempt ended: refund what its `cost` withdrew if it `succeeded`.

        `succeeded` means the attempt got an answer the policy does not retry; a
        failure (retryable status or error) closes the trickle until a retry
        succeeds again. Called on the retry path only.
        """
        if not isinstance(succeeded, bool):
            raise TypeError(
                f"RetryBudget.record_retry_outcome succeeded must be a bool, got {succeeded!r}"
            )
        cost = finite_number("RetryBudget.record_retry_outcome cost", cost)
        with self._lock:
            self._fold()
            paid = self._paid_of(cost)
            if succeeded:
                self._balance = min(self.capacity, self._balance + paid)
            self._open = succeeded

    def refund(self, cost: float = 1.0) -> None:
        """Give back `cost` tokens for a granted retry that was never sent.

        The transport calls it when the deadline runs out between granting a
        retry and sending it (slow hooks, a long release): nothing reached the
        server, so nothing is spent, and the trickle's gate is left as it was.
        """
        cost = finite_number("RetryBudget.refund cost", cost)
        with self._lock:
            self._fold()
            self._balance = min(self.capacity, self._balance + self._paid_of(cost))

    def _paid_of(self, cost: float) -> float:
        """What a granted retry of `cost` really withdrew; call under the lock.

        Only a retry of the first request can have withdrawn less (the exemption
        takes what there is): a refund gives back what was paid, never more.
        """
        unpaid = min(self._unpaid, cost)
        self._unpaid -= unpaid
        return cost - unpaid

    @property
    def balance(self) -> float:
        """Tokens available now (a retry needs one, or `timeout_cost`)."""
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
            f"RetryBudget(ratio={self.ratio!r}, grant={self.grant!r}, "
            f"capacity={self.capacity!r}, decay_seconds={self.decay_seconds!r}, "
            f"per_second={self.per_second!r}, timeout_cost={self.timeout_cost!r})"
        )
