"""Retry storms: a seeded discrete-event simulation of scenarios S1-S5.

The model, scenarios and reference thresholds follow `shared/reference/overload.md`
(sections 3-6). The point is to drive the package's *own* objects (`RetryBudget`,
the four backoff strategies, `wait_with_retry_after`, `RetryPolicy()` defaults)
with a simulated clock and seeded RNGs, rather than a re-implementation of them, and
to compare them with the published budget algorithms (simulated here as baselines).

    python benchmarks/storm.py            # default grid (< 60 s on one core)
    python benchmarks/storm.py --quick    # small grid, a few seconds (CI smoke run)
    python benchmarks/storm.py --check    # also assert the targets; exit 1 on a miss
    python benchmarks/storm.py --out DIR  # where storm.md, storm.jsonl and PNGs go

Output is byte-identical on every run: every random stream is `random.Random("<seed>")`,
the module-level `random` is never used and no wall-clock time reaches the output.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import math
import random
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from httpx_retrying import (
    RetryBudget,
    RetryPolicy,
    backoff_decorrelated_jitter,
    backoff_equal_jitter,
    backoff_full_jitter,
    backoff_no_jitter,
)
from httpx_retrying._retry_after import wait_with_retry_after

BackoffFn = Callable[[Any], float]
BACKOFFS: dict[str, Callable[..., BackoffFn]] = {
    "none": backoff_no_jitter,  # exponential, no jitter
    "full": backoff_full_jitter,
    "equal": backoff_equal_jitter,
    "decorrelated": backoff_decorrelated_jitter,
}
JITTERS = tuple(BACKOFFS)


class AttemptState:
    """The per-logical-request state the package's strategies read (like tenacity's).

    One instance per logical request: decorrelated jitter keeps its previous sleep on it.
    """

    def __init__(self) -> None:
        self.attempt_number = 1


class Sim:
    """Event heap of `(t_ms, seq, fn, arg)`; the strictly increasing `seq` breaks ties."""

    __slots__ = ("_heap", "_seq", "now_ms")

    def __init__(self) -> None:
        self.now_ms = 0.0
        self._heap: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self._seq = itertools.count()

    def at(self, t_ms: float, fn: Callable[[Any], None], arg: Any) -> None:
        heapq.heappush(self._heap, (t_ms, next(self._seq), fn, arg))

    def clock_s(self) -> float:
        """The simulated clock in seconds, as the package's objects expect."""
        return self.now_ms / 1000.0

    def run(self, until_ms: float = math.inf) -> None:
        heap, pop = self._heap, heapq.heappop
        while heap and heap[0][0] <= until_ms:
            t, _, fn, arg = pop(heap)
            self.now_ms = t
            fn(arg)


# --------------------------------------------------------------------------- budgets
# The package's RetryBudget is driven through `PackageBudget`; the others are the
# reference algorithms of overload.md section 3.3, simulated here only for comparison.


class Budget(Protocol):
    def allow_request(self, now: float) -> bool: ...
    def on_attempt(self, now: float, is_retry: bool) -> None: ...
    def on_outcome(
        self, now: float, ok: bool, retried: bool, cost: float, is_timeout: bool
    ) -> None: ...
    def allow_retry(self, now: float, is_timeout: bool) -> tuple[bool, float]: ...


class NoBudget:
    """Always allow: the naive client."""

    def allow_request(self, now: float) -> bool:
        return True

    def on_attempt(self, now: float, is_retry: bool) -> None:
        pass

    def on_outcome(self, now: float, ok: bool, retried: bool, cost: float, is_timeout: bool) -> None:
        pass

    def allow_retry(self, now: float, is_timeout: bool) -> tuple[bool, float]:
        return True, 0.0


class PackageBudget(NoBudget):
    """`httpx_retrying.RetryBudget`, used exactly as `RetryTransport` uses it."""

    def __init__(self, sim: Sim, **params: float) -> None:
        self.budget = RetryBudget(clock=sim.clock_s, **params)
        self._record = self.budget.record_request

    def on_attempt(self, now: float, is_retry: bool) -> None:
        if not is_retry:  # the transport records every logical request once
            self._record()

    def allow_retry(self, now: float, is_timeout: bool) -> tuple[bool, float]:
        return self.budget.try_acquire(), 0.0


class SreRatio(NoBudget):
    """SRE per-client budget: 120 s window, allow iff (retries + 1) / (attempts + 1) <= 10 %."""

    def __init__(self, ratio: float = 0.10, window_ms: float = 120_000.0) -> None:
        self.ratio, self.window = ratio, window_ms
        self.log: deque[tuple[float, bool]] = deque()
        self.attempts = self.retries = 0

    def _expire(self, now: float) -> None:
        log, edge = self.log, now - self.window
        while log and log[0][0] <= edge:
            _, was_retry = log.popleft()
            self.attempts -= 1
            self.retries -= was_retry

    def on_attempt(self, now: float, is_retry: bool) -> None:
        self.log.append((now, is_retry))
        self.attempts += 1
        self.retries += is_retry

    def allow_retry(self, now: float, is_timeout: bool) -> tuple[bool, float]:
        self._expire(now)
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

    def on_outcome(self, now: float, ok: bool, retried: bool, cost: float, is_timeout: bool) -> None:
        self.tokens = min(self.max, self.tokens + self.ratio) if ok else max(0.0, self.tokens - 1)

    def allow_retry(self, now: float, is_timeout: bool) -> tuple[bool, float]:
        return self.tokens > self.max / 2, 0.0


class AwsStd(NoBudget):
    """botocore standard retry quota: 500 tokens, retry costs 5 (10 after a timeout)."""

    def __init__(self) -> None:
        self.available = 500.0

    def on_outcome(self, now: float, ok: bool, retried: bool, cost: float, is_timeout: bool) -> None:
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

    def on_outcome(self, now: float, ok: bool, retried: bool, cost: float, is_timeout: bool) -> None:
        if not is_timeout:
            self._add(now, ok)


REFERENCE_BUDGETS = ("none", "sre_ratio10", "tps20", "grpc_10_0.1", "aws_std", "sre_adaptive_k2")
OURS = "ours"  # RetryBudget() with the package defaults


def make_budget(name: str, sim: Sim, rng: random.Random) -> Budget:
    if name == "none":
        return NoBudget()
    if name == OURS:
        return PackageBudget(sim)
    if name.startswith("ours("):  # e.g. "ours(per_second=0.1)": a parameter sweep
        params = dict(part.split("=") for part in name[5:-1].split(","))
        return PackageBudget(sim, **{key: float(value) for key, value in params.items()})
    factories: dict[str, Callable[[], Budget]] = {
        "sre_ratio10": SreRatio,
        "tps20": Tps,
        "grpc_10_0.1": Grpc,
        "aws_std": AwsStd,
        "sre_adaptive_k2": lambda: SreAdaptive(rng),
    }
    return factories[name]()


# --------------------------------------------------------------------------- policies


@dataclass(frozen=True)
class Policy:
    """What a client does; `backoff` names one of the package's strategies."""

    attempts: int
    backoff: str
    initial_s: float
    cap_s: float
    ra: str = "ignore"  # ignore | exact | aws2026 | spread
    spread: float = 0.5
    max_ra_s: float = 60.0
    timeout_ms: float | None = None

    def make_backoff(self, rng: random.Random) -> BackoffFn:
        return BACKOFFS[self.backoff](self.initial_s, self.cap_s, random=rng.random)


def package_default_policy(timeout_ms: float | None = None, **changes: Any) -> Policy:
    """`RetryPolicy()` as the transport would apply it (read from the package, not copied)."""
    p = RetryPolicy(**changes)
    kind = {cls: name for name, cls in BACKOFFS.items()}[type(p.backoff)]  # type: ignore[index]
    strategy: Any = p.backoff
    return Policy(
        attempts=p.attempts,
        backoff=kind,
        initial_s=strategy.initial,
        cap_s=strategy.cap,
        ra="spread" if p.respect_retry_after else "ignore",
        spread=p.retry_after_spread,
        max_ra_s=p.max_retry_after,
        timeout_ms=timeout_ms,
    )


# --------------------------------------------------------------------------- S1


def s1_run(n: int, name: str, seed: int, reps: int) -> tuple[float, float]:
    """Brooker's OCC race; returns (mean server write calls, mean time of the last event) per rep.

    `expo(n) = min(2000, 5 * 2**n)` ms for the n-th retry is the package's
    `initial * 2**(attempt_number - 1)` with initial 10 ms; decorrelated starts at 5 ms.
    """
    rng = random.Random(f"{seed}-{n}-{name}")
    normal = rng.normalvariate
    strategy: BackoffFn | None = None
    if name != "nobackoff":
        kind = {"expo": "none", "equal": "equal", "full": "full", "decorr": "decorrelated"}[name]
        initial = 0.005 if kind == "decorrelated" else 0.010
        strategy = BACKOFFS[kind](initial, 2.0, random=rng.random)
    calls_total = 0
    time_total = 0.0
    read, read_rsp, write, write_rsp = 0, 1, 2, 3
    for _ in range(reps):
        heap: list[tuple[float, int, int, int, int]] = []
        seq = itertools.count()
        states = [AttemptState() for _ in range(n)]
        attempts = [0] * n
        for c in range(n):
            heap.append((abs(normal(10, 2)), next(seq), read, c, 0))
        heapq.heapify(heap)
        version = 0
        calls = 0
        t = 0.0
        while heap:
            t, _, kind_, c, payload = heapq.heappop(heap)
            if kind_ == read:
                nxt = (t + abs(normal(10, 2)), next(seq), read_rsp, c, version)
            elif kind_ == read_rsp:
                nxt = (t + abs(normal(10, 2)), next(seq), write, c, payload)
            elif kind_ == write:
                calls += 1
                ok = payload == version
                if ok:
                    version += 1
                nxt = (t + abs(normal(10, 2)), next(seq), write_rsp, c, int(ok))
            else:
                if payload:
                    continue
                attempts[c] += 1
                delay = abs(normal(10, 2))
                if strategy is not None:
                    state = states[c]
                    state.attempt_number = attempts[c]
                    delay += strategy(state) * 1000.0
                nxt = (t + delay, next(seq), read, c, 0)
            heapq.heappush(heap, nxt)
        calls_total += calls
        time_total += t
    return calls_total / reps, time_total / reps


S1_NAMES = ("nobackoff", "expo", "equal", "full", "decorr")


# --------------------------------------------------------------------------- S2-S4


@dataclass
class Stats:
    """Counters per cohort (index = phase in which the logical request arrived)."""

    cohorts: int
    logical: list[int] = field(default_factory=list)
    attempts: list[int] = field(default_factory=list)
    ok: list[int] = field(default_factory=list)
    denied: list[int] = field(default_factory=list)
    local_reject: list[int] = field(default_factory=list)
    latencies: list[list[float]] = field(default_factory=list)
    shed: int = 0
    wasted: int = 0
    outage_arrivals: int = 0
    makespan_ms: float = 0.0
    buckets: list[int] = field(default_factory=list)  # server arrivals per 100 ms
    ok_per_s: list[int] = field(default_factory=list)  # successes per second of completion

    def __post_init__(self) -> None:
        for name in ("logical", "attempts", "ok", "denied", "local_reject"):
            setattr(self, name, [0] * self.cohorts)
        self.latencies = [[] for _ in range(self.cohorts)]


class _Proc:
    __slots__ = ("backoff", "budget", "rng")

    def __init__(self, rng: random.Random, budget: Budget, backoff: BackoffFn) -> None:
        self.rng, self.budget, self.backoff = rng, budget, backoff


class _Req:
    __slots__ = ("cohort", "cost", "k", "proc", "ra", "retried", "state", "t0")

    def __init__(self, t0: float, cohort: int, proc: _Proc) -> None:
        self.t0, self.cohort, self.proc = t0, cohort, proc
        self.k = 0
        self.retried = False
        self.cost = 0.0
        self.ra = -1.0
        self.state = AttemptState()


class ServerSim:
    """W workers, fixed service time, FIFO queue of Q, 1 ms network each way (section 3.2-3.3).

    With FIFO and a fixed service time, an admitted attempt's completion time is known on
    arrival, so the server keeps only worker-free times and queued start times.
    """

    def __init__(
        self,
        sim: Sim,
        policy: Policy,
        *,
        workers: int,
        service_ms: float,
        queue: int,
        outage: tuple[float, float] | None,
        cohorts: int,
        horizon_ms: float,
    ) -> None:
        self.sim, self.policy = sim, policy
        self.service, self.queue = service_ms, queue
        self.free = [0.0] * workers
        self.starts: deque[float] = deque()
        self.outage = outage
        self.stats = Stats(cohorts)
        self.stats.buckets = [0] * (int(horizon_ms // 100) + 2)
        self.stats.ok_per_s = [0] * (int(horizon_ms // 1000) + 2)

    def start(self, req: _Req) -> None:
        """A logical request arrives at its client."""
        st = self.stats
        st.logical[req.cohort] += 1
        if not req.proc.budget.allow_request(self.sim.now_ms):
            st.local_reject[req.cohort] += 1
            return
        self.send(req)

    def send(self, req: _Req) -> None:
        sim, st = self.sim, self.stats
        now = sim.now_ms
        st.attempts[req.cohort] += 1
        req.proc.budget.on_attempt(now, req.k > 0)
        t = now + 1.0  # arrival at the server
        bucket = int(t // 100)
        if bucket < len(st.buckets):
            st.buckets[bucket] += 1
        outage = self.outage
        if outage is not None and outage[0] <= t < outage[1]:
            st.outage_arrivals += 1
            req.ra = outage[1] - t
            sim.at(t + 1.0, self.on_fail, req)
            return
        free, starts = self.free, self.starts
        while starts and starts[0] <= t:
            starts.popleft()
        first_free = free[0]
        if first_free <= t:
            begin = t
        elif len(starts) < self.queue:
            begin = first_free
            starts.append(begin)
        else:
            st.shed += 1
            req.ra = -1.0
            sim.at(t + 1.0, self.on_fail, req)
            return
        done = begin + self.service
        heapq.heapreplace(free, done)
        timeout = self.policy.timeout_ms
        if timeout is not None and done + 1.0 > now + timeout:
            st.wasted += 1  # the server will still do the work; nobody waits for it
            sim.at(now + timeout, self.on_timeout, req)
        else:
            sim.at(done + 1.0, self.on_ok, req)

    def on_ok(self, req: _Req) -> None:
        now, st = self.sim.now_ms, self.stats
        req.proc.budget.on_outcome(now, True, req.retried, req.cost, False)
        st.ok[req.cohort] += 1
        st.latencies[req.cohort].append(now - req.t0)
        st.makespan_ms = max(st.makespan_ms, now)
        second = int(now // 1000)
        if second < len(st.ok_per_s):
            st.ok_per_s[second] += 1

    def on_fail(self, req: _Req) -> None:
        self._failed(req, False)

    def on_timeout(self, req: _Req) -> None:
        req.ra = -1.0
        self._failed(req, True)

    def _failed(self, req: _Req, is_timeout: bool) -> None:
        """The package's order (RetryCall.next_delay): attempts, backoff, Retry-After, budget."""
        now, policy, proc = self.sim.now_ms, self.policy, req.proc
        proc.budget.on_outcome(now, False, req.retried, req.cost, is_timeout)
        if req.k + 1 >= policy.attempts:
            return
        req.state.attempt_number = req.k + 1
        delay = max(0.0, proc.backoff(req.state))
        if req.ra >= 0 and policy.ra != "ignore":
            asked = req.ra / 1000.0
            if policy.ra == "aws2026":  # reference: max(d, min(RA, d + 5 s))
                delay = max(delay, min(min(asked, 60.0), delay + 5.0))
            else:
                spread = 0.0 if policy.ra == "exact" else policy.spread
                combined = wait_with_retry_after(
                    delay,
                    asked,
                    spread=spread,
                    uniform=proc.rng.random(),
                    max_retry_after=policy.max_ra_s,
                )
                if combined is None:
                    return
                delay = combined
        allowed, cost = proc.budget.allow_retry(now, is_timeout)
        if not allowed:
            self.stats.denied[req.cohort] += 1
            return
        req.cost = cost
        req.retried = True
        req.k += 1
        self.sim.at(now + delay * 1000.0, self.send, req)


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


# S2 ------------------------------------------------------------------------


S2_N, S2_OUTAGE_MS, S2_CAP_PER_BUCKET = 1000, 2000.0, 100.0
S2_ORACLE_S = S2_OUTAGE_MS / 1000 + S2_N / 1000  # T_out + N / C


def s2_policy(jitter: str, ra: str) -> Policy:
    return Policy(attempts=8, backoff=jitter, initial_s=0.1, cap_s=10.0, ra=ra)


def s2_run(policy: Policy, budget: str, seed: int, shared_budget: bool = False) -> dict[str, Any]:
    """1000 clients, one request each, a 2 s outage; each client has its own budget."""
    sim = Sim()
    server = ServerSim(
        sim, policy, workers=10, service_ms=10.0, queue=100, outage=(0.0, S2_OUTAGE_MS),
        cohorts=1, horizon_ms=120_000.0,
    )
    shared = make_budget(budget, sim, random.Random(f"{seed}-{policy.backoff}-shared"))
    for i in range(S2_N):
        rng = random.Random(f"{seed}-{policy.backoff}-{i}")
        proc = _Proc(rng, shared if shared_budget else make_budget(budget, sim, rng),
                     policy.make_backoff(rng))
        t0 = rng.random()
        sim.at(t0, server.start, _Req(t0, 0, proc))
    sim.run()
    st = server.stats
    post = st.buckets[int(S2_OUTAGE_MS // 100):]
    return {
        "success": st.ok[0] / S2_N,
        "calls_per_success": _ratio(st.attempts[0], st.ok[0]),
        "makespan_s": st.makespan_ms / 1000.0,
        "peak_x": max(post) / S2_CAP_PER_BUCKET,
        "calls_during_outage": st.outage_arrivals / S2_N,
        "shed": st.shed,
        "denied": st.denied[0],
        "buckets": st.buckets,
    }
