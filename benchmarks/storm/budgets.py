"""Retry budgets as the simulated clients see them: the package's, its predecessor, the references.

`PackageBudget` drives `httpx_retrying.RetryBudget` exactly as `RetryTransport`
does. `LegacyBudget` is the package's 0.1.0 design, kept here (not in the
package) as the baseline the fleet sweep compares against. The others are the
published algorithms summarised in REFERENCES.md, simulated for comparison.
Times are simulated milliseconds.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Protocol

from httpx_retrying import RetryBudget


class Budget(Protocol):
    def allow_request(self, now: float) -> bool: ...
    def on_attempt(self, now: float, is_retry: bool) -> None: ...
    def on_outcome(
        self, now: float, ok: bool, retried: bool, cost: float, is_timeout: bool
    ) -> None: ...
    def allow_retry(self, now: float, is_timeout: bool) -> tuple[bool, float]: ...


class NoBudget:
    """Always allow: the naive client. The other budgets override what they use."""

    def allow_request(self, now: float) -> bool:
        return True

    def on_attempt(self, now: float, is_retry: bool) -> None:
        pass

    def on_outcome(
        self, now: float, ok: bool, retried: bool, cost: float, is_timeout: bool
    ) -> None:
        pass

    def allow_retry(self, now: float, is_timeout: bool) -> tuple[bool, float]:
        return True, 0.0


class PackageBudget(NoBudget):
    """`httpx_retrying.RetryBudget`, called exactly as `RetryTransport` calls it.

    `record_request()` once per logical request; `try_acquire(cost)` before each retry,
    with `timeout_cost` after a timeout; `record_retry_outcome(ok, cost)` when a retry
    attempt ends (`retried` is true for the outcome of any attempt after the first).
    """

    def __init__(self, clock: Callable[[], float], **params: float) -> None:
        self.budget = RetryBudget(clock=clock, **params)
        self._record = self.budget.record_request

    def on_attempt(self, now: float, is_retry: bool) -> None:
        if not is_retry:
            self._record()

    def on_outcome(
        self, now: float, ok: bool, retried: bool, cost: float, is_timeout: bool
    ) -> None:
        if retried:
            self.budget.record_retry_outcome(ok, cost)

    def allow_retry(self, now: float, is_timeout: bool) -> tuple[bool, float]:
        cost = self.budget.timeout_cost if is_timeout else 1.0
        return self.budget.try_acquire(cost), cost


class TimeoutsPayFirstBudget(PackageBudget):
    """`RetryBudget()`, except that its first request's timeout retries are not exempt.

    The package never refuses a retry of the first request it counts (a one-call script
    may use all its attempts). This variant refuses a timeout retry that the balance
    cannot pay even then: it shows what that contract costs a fleet of young processes.
    """

    def allow_retry(self, now: float, is_timeout: bool) -> tuple[bool, float]:
        budget = self.budget
        if is_timeout and budget.requests == 1 and budget.balance < budget.timeout_cost:
            return False, budget.timeout_cost
        return super().allow_retry(now, is_timeout)


class LegacyBudget(NoBudget):
    """The package's 0.1.0 `RetryBudget()`: starts full at 10, 0.1 per request, 0.1 per second.

    As in 0.1.0, requests are counted and folded into the balance (capped) when a retry
    asks; retries cost one token whatever the failure; nothing is refunded.
    """

    def __init__(self, ratio: float = 0.1, per_second: float = 0.1, capacity: float = 10.0):
        self.ratio, self.per_ms, self.capacity = ratio, per_second / 1000.0, capacity
        self.balance = capacity
        self.pending = 0
        self.last = 0.0  # every simulated process is created at t = 0

    def on_attempt(self, now: float, is_retry: bool) -> None:
        if not is_retry:
            self.pending += 1

    def allow_retry(self, now: float, is_timeout: bool) -> tuple[bool, float]:
        earned = self.pending * self.ratio + max(0.0, now - self.last) * self.per_ms
        self.pending, self.last = 0, max(now, self.last)
        self.balance = min(self.capacity, self.balance + earned)
        if self.balance >= 1.0:
            self.balance -= 1.0
            return True, 1.0
        return False, 0.0


class SreRatio(NoBudget):
    """SRE per-client budget: 120 s window, allow iff (retries + 1) / (attempts + 1) <= 10 %."""

    def __init__(self, ratio: float = 0.10, window_ms: float = 120_000.0) -> None:
        self.ratio, self.window = ratio, window_ms
        self.log: deque[tuple[float, bool]] = deque()
        self.attempts = self.retries = 0

    def on_attempt(self, now: float, is_retry: bool) -> None:
        self.log.append((now, is_retry))
        self.attempts += 1
        self.retries += is_retry

    def allow_retry(self, now: float, is_timeout: bool) -> tuple[bool, float]:
        log, edge = self.log, now - self.window
        while log and log[0][0] <= edge:
            _, was_retry = log.popleft()
            self.attempts -= 1
            self.retries -= was_retry
        return (self.retries + 1) / (self.attempts + 1) <= self.ratio, 0.0


class Tps(NoBudget):
    """tower/Finagle `TpsBudget(10 s, 10/s, 20 %)`: deposits and withdrawals expire after 10 s."""

    def __init__(self, ttl_ms: float = 10_000.0, reserve: float = 100.0, pct: float = 0.2) -> None:
        self.ttl, self.reserve, self.pct = ttl_ms, reserve, pct
        self.deposits: deque[float] = deque()
        self.withdrawals: deque[float] = deque()

    def on_attempt(self, now: float, is_retry: bool) -> None:
        if not is_retry:
            self.deposits.append(now)

    def allow_retry(self, now: float, is_timeout: bool) -> tuple[bool, float]:
        edge = now - self.ttl
        for log in (self.deposits, self.withdrawals):
            while log and log[0] <= edge:
                log.popleft()
        if self.reserve + self.pct * len(self.deposits) - len(self.withdrawals) >= 1:
            self.withdrawals.append(now)
            return True, 0.0
        return False, 0.0


class Grpc(NoBudget):
    """gRPC A6 retryThrottling(maxTokens 10, tokenRatio 0.1): retry while tokens > 5."""

    def __init__(self, max_tokens: float = 10.0, ratio: float = 0.1) -> None:
        self.max, self.ratio, self.tokens = max_tokens, ratio, max_tokens

    def on_outcome(
        self, now: float, ok: bool, retried: bool, cost: float, is_timeout: bool
    ) -> None:
        self.tokens = min(self.max, self.tokens + self.ratio) if ok else max(0.0, self.tokens - 1)

    def allow_retry(self, now: float, is_timeout: bool) -> tuple[bool, float]:
        return self.tokens > self.max / 2, 0.0


class AwsStd(NoBudget):
    """botocore standard retry quota: 500 tokens, retry costs 5 (10 after a timeout)."""

    def __init__(self) -> None:
        self.available = 500.0

    def on_outcome(
        self, now: float, ok: bool, retried: bool, cost: float, is_timeout: bool
    ) -> None:
        if ok:
            self.available = min(500.0, self.available + (cost if retried else 1.0))

    def allow_retry(self, now: float, is_timeout: bool) -> tuple[bool, float]:
        cost = 10.0 if is_timeout else 5.0
        if self.available >= cost:
            self.available -= cost
            return True, cost
        return False, 0.0


class SreAdaptive(NoBudget):
    """SRE client-side adaptive throttling, K = 2, 120 s window; checks first attempts only."""

    def __init__(self, rng: random.Random, k: float = 2.0, window_ms: float = 120_000.0) -> None:
        self.rng, self.k, self.window = rng, k, window_ms
        self.log: deque[tuple[float, bool]] = deque()
        self.requests = self.accepts = 0

    def _add(self, now: float, accepted: bool) -> None:
        self.log.append((now, accepted))
        self.requests += 1
        self.accepts += accepted

    def allow_request(self, now: float) -> bool:
        log, edge = self.log, now - self.window
        while log and log[0][0] <= edge:
            _, accepted = log.popleft()
            self.requests -= 1
            self.accepts -= accepted
        p = max(0.0, (self.requests - self.k * self.accepts) / (self.requests + 1))
        if p > 0 and self.rng.random() < p:
            self._add(now, False)
            return False
        return True

    def on_outcome(
        self, now: float, ok: bool, retried: bool, cost: float, is_timeout: bool
    ) -> None:
        if not is_timeout:
            self._add(now, ok)


OURS = "ours"  # RetryBudget() with the package defaults
LEGACY = "v0.1.0"  # the package's previous default design (LegacyBudget)
TIMEOUTS_PAY = "ours, first timeouts pay"  # TimeoutsPayFirstBudget
REFERENCE_BUDGETS = ("none", "sre_ratio10", "tps20", "grpc_10_0.1", "aws_std", "sre_adaptive_k2")
_REFERENCES: dict[str, Callable[[random.Random], Budget]] = {
    "none": lambda rng: NoBudget(),
    LEGACY: lambda rng: LegacyBudget(),
    "sre_ratio10": lambda rng: SreRatio(),
    "tps20": lambda rng: Tps(),
    "grpc_10_0.1": lambda rng: Grpc(),
    "aws_std": lambda rng: AwsStd(),
    "sre_adaptive_k2": SreAdaptive,
}


def make_budget(name: str, clock: Callable[[], float], rng: random.Random) -> Budget:
    """A fresh budget by name; `ours(grant=3,capacity=5)` sweeps RetryBudget's parameters."""
    if name == OURS:
        return PackageBudget(clock)
    if name == TIMEOUTS_PAY:
        return TimeoutsPayFirstBudget(clock)
    if name.startswith(OURS + "("):
        params = dict(part.split("=") for part in name[len(OURS) + 1 : -1].split(","))
        return PackageBudget(clock, **{key: float(value) for key, value in params.items()})
    return _REFERENCES[name](rng)
