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

    def on_outcome(
        self, now: float, ok: bool, retried: bool, cost: float, is_timeout: bool
    ) -> None:
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
    strategy: Any = p.backoff
    kind = {cls: name for name, cls in BACKOFFS.items()}[type(strategy)]
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
        sim,
        policy,
        workers=10,
        service_ms=10.0,
        queue=100,
        outage=(0.0, S2_OUTAGE_MS),
        cohorts=1,
        horizon_ms=120_000.0,
    )
    shared = make_budget(budget, sim, random.Random(f"{seed}-{policy.backoff}-shared"))
    for i in range(S2_N):
        rng = random.Random(f"{seed}-{policy.backoff}-{i}")
        proc = _Proc(
            rng,
            shared if shared_budget else make_budget(budget, sim, rng),
            policy.make_backoff(rng),
        )
        t0 = rng.random()
        sim.at(t0, server.start, _Req(t0, 0, proc))
    sim.run()
    st = server.stats
    post = st.buckets[int(S2_OUTAGE_MS // 100) :]
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


# S3 / S4 -------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """An open-loop load shape: `phases` are `(end_ms, x)` with x = load / capacity."""

    name: str
    queue: int
    phases: tuple[tuple[float, float], ...]
    horizon_ms: float = 90_000.0

    @property
    def over_end_ms(self) -> float:
        return self.phases[0][0]

    def scaled(self, factor: float) -> Load:
        phases = tuple((end * factor, x) for end, x in self.phases)
        return Load(self.name, self.queue, phases, self.horizon_ms * factor)


S3_LOAD = Load("S3", queue=50, phases=((10_000.0, 5.0), (30_000.0, 0.5)))
S4_LOAD = Load("S4", queue=500, phases=((5_000.0, 2.0), (30_000.0, 0.6)))
S34_CAPACITY_PER_MS = 0.5  # W = 5 workers, S = 10 ms: 500 requests per second


def s34_policy(jitter: str) -> Policy:
    return Policy(attempts=3, backoff=jitter, initial_s=0.05, cap_s=2.0, timeout_ms=200.0)


def overload_run(
    load: Load, policy: Policy, budget: str, seed: int, processes: int = 20
) -> dict[str, Any]:
    """M client processes, one budget each, Poisson arrivals shared by every strategy."""
    sim = Sim()
    server = ServerSim(
        sim,
        policy,
        workers=5,
        service_ms=10.0,
        queue=load.queue,
        outage=None,
        cohorts=2,
        horizon_ms=load.horizon_ms,
    )
    arrivals = random.Random(f"{seed}-arr")
    over_end = load.over_end_ms
    for m in range(processes):
        rng = random.Random(f"{seed}-{policy.backoff}-{budget}-{m}")
        proc = _Proc(rng, make_budget(budget, sim, rng), policy.make_backoff(rng))
        t = 0.0
        for end, x in load.phases:  # exact piecewise Poisson: the process is memoryless
            rate = x * S34_CAPACITY_PER_MS / processes
            while True:
                t_next = t + arrivals.expovariate(rate)
                if t_next >= end:
                    t = end
                    break
                t = t_next
                sim.at(t, server.start, _Req(t, 0 if t < over_end else 1, proc))
    sim.run(load.horizon_ms)
    st = server.stats
    return {
        "amp_over": _ratio(st.attempts[0], st.logical[0]),
        "amp_after": _ratio(st.attempts[1], st.logical[1]),
        "success_over": _ratio(st.ok[0], st.logical[0]),
        "success_after": _ratio(st.ok[1], st.logical[1]),
        "load_vs_offered": _ratio(sum(st.attempts), sum(st.logical)),
        "denied": sum(st.denied),
        "local_reject": sum(st.local_reject),
        "shed": st.shed,
        "wasted": st.wasted,
        "p50_after_ms": _percentile(st.latencies[1], 0.5),
        "p99_after_ms": _percentile(st.latencies[1], 0.99),
        "ok_per_s": st.ok_per_s[: int(load.phases[-1][0] // 1000) + 1],
    }


# S5 ------------------------------------------------------------------------


def s5_run(layers: int, attempts: int, budget: str, n_top: int) -> float:
    """Bottom attempts per top-level request through `layers` retrying layers, one budget each."""
    sim = Sim()
    budgets = [
        make_budget(budget, sim, random.Random(f"s5-{layers}-{attempts}-{budget}-{i}"))
        for i in range(layers)
    ]
    bottom = 0
    last = layers - 1

    def call(level: int, now: float) -> bool:
        nonlocal bottom
        b = budgets[level]
        for k in range(attempts):
            b.on_attempt(now, k > 0)
            if level == last:
                bottom += 1
                ok = False  # the bottom dependency always fails
            else:
                ok = call(level + 1, now)
            b.on_outcome(now, ok, k > 0, 0.0, False)
            if ok:
                return True
            if k + 1 < attempts and not b.allow_retry(now, False)[0]:
                return False
        return False

    for n in range(n_top):
        sim.now_ms = float(n)  # t = n * 1 ms; no time passes inside a call
        call(0, sim.now_ms)
    return bottom / n_top


# --------------------------------------------------------------------------- the grid


@dataclass(frozen=True)
class Grid:
    s1_sizes: tuple[int, ...] = (50, 100, 150)
    s1_reps: int = 20
    s2_seeds: tuple[int, ...] = (1, 2, 3)
    s2_jitters: tuple[str, ...] = JITTERS
    s2_ra: tuple[str, ...] = ("ignore", "exact", "aws2026", "spread")
    s34_budgets: tuple[str, ...] = ("none", OURS, *REFERENCE_BUDGETS[1:])
    s34_jitters: tuple[str, ...] = JITTERS
    s3_scale: float = 1.0  # S3 and fleet durations x this
    s4_scale: float = 1.0
    fleet_sizes: tuple[int, ...] = (20, 100, 500, 1000)
    fleet_budgets: tuple[str, ...] = (
        "sre_ratio10",
        "grpc_10_0.1",
        OURS,
        "ours(per_second=0.1)",
        "ours(per_second=0.1,capacity=5)",
    )
    s5_top: int = 20_000
    s5_top_unbudgeted: int = 500  # exactly a**L per request: a smaller run gives the same mean
    s5_budgets: tuple[str, ...] = ("none", "sre_ratio10", "tps20", "grpc_10_0.1", "aws_std", OURS)


DEFAULT_GRID = Grid()
QUICK_GRID = Grid(
    s1_sizes=(50, 100),
    s1_reps=4,
    s2_seeds=(1,),
    s2_jitters=("none", "full"),
    s2_ra=("ignore", "spread"),
    s34_budgets=("none", OURS),
    s34_jitters=("full",),
    s3_scale=0.3,
    fleet_sizes=(),
    s5_top=2_000,
    s5_top_unbudgeted=100,
)

PKG = "package defaults"  # RetryPolicy() + RetryBudget() (one budget per client process)
S2_PKG_ROWS: tuple[tuple[str, dict[str, Any], str, bool], ...] = (
    # label, RetryPolicy changes, budget, one budget shared by all 1000 clients
    (f"{PKG}: RA + spread 0.5", {}, OURS, False),
    ("package, Retry-After ignored", {"respect_retry_after": False}, OURS, False),
    ("package, RA without spread", {"retry_after_spread": 0.0}, OURS, False),
    # A herd inside ONE process: all 1000 requests share one budget (a trade-off, no target).
    ("package, 1 shared RetryBudget()", {}, OURS, True),
    ("package, 1 shared sre_ratio10", {}, "sre_ratio10", True),
    ("package, 1 shared tps20", {}, "tps20", True),
)


@dataclass
class Results:
    quick: bool
    s1: dict[tuple[int, str], tuple[float, float]] = field(default_factory=dict)
    s2: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    s3: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    s4: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    fleet: dict[tuple[str, int, str], dict[str, Any]] = field(default_factory=dict)
    s5: dict[tuple[int, int, str], float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # stderr only, never in output


def run_all(grid: Grid, quick: bool, log: Callable[[str], None]) -> Results:
    res = Results(quick)
    clock = time.perf_counter
    t = clock()
    for n in grid.s1_sizes:
        for name in S1_NAMES:
            res.s1[(n, name)] = s1_run(n, name, 1, grid.s1_reps)
    res.seconds["S1"] = clock() - t
    log(f"S1 {res.seconds['S1']:.1f} s")

    t = clock()
    for jitter in grid.s2_jitters:
        for ra in grid.s2_ra:
            res.s2[(jitter, ra)] = [
                s2_run(s2_policy(jitter, ra), "none", seed) for seed in grid.s2_seeds
            ]
    for label, changes, budget, shared in S2_PKG_ROWS:
        policy = package_default_policy(**changes)
        res.s2[(label, policy.ra)] = [
            s2_run(policy, budget, seed, shared_budget=shared) for seed in grid.s2_seeds
        ]
    res.seconds["S2"] = clock() - t
    log(f"S2 {res.seconds['S2']:.1f} s")

    pkg_policy = package_default_policy(timeout_ms=200.0)
    for key, load, out in (
        ("S3", S3_LOAD.scaled(grid.s3_scale), res.s3),
        ("S4", S4_LOAD.scaled(grid.s4_scale), res.s4),
    ):
        t = clock()
        for budget in grid.s34_budgets:
            for jitter in grid.s34_jitters:
                out[("spec", budget, jitter)] = overload_run(load, s34_policy(jitter), budget, 1)
        for budget in ("none", OURS):
            out[(PKG, budget, pkg_policy.backoff)] = overload_run(load, pkg_policy, budget, 1)
        res.seconds[key] = clock() - t
        log(f"{key} {res.seconds[key]:.1f} s")

    t = clock()
    for processes in grid.fleet_sizes:
        for budget in grid.fleet_budgets:
            for key, load in (
                ("S3", S3_LOAD.scaled(grid.s3_scale)),
                ("S4", S4_LOAD.scaled(grid.s4_scale)),
            ):
                res.fleet[(key, processes, budget)] = overload_run(
                    load, pkg_policy, budget, 1, processes
                )
    res.seconds["fleet"] = clock() - t
    log(f"fleet {res.seconds['fleet']:.1f} s")

    t = clock()
    for layers, attempts in ((3, 4), (5, 3)):
        for budget in grid.s5_budgets:
            n_top = grid.s5_top_unbudgeted if budget == "none" else grid.s5_top
            res.s5[(layers, attempts, budget)] = s5_run(layers, attempts, budget, n_top)
    res.seconds["S5"] = clock() - t
    log(f"S5 {res.seconds['S5']:.1f} s")
    return res


# --------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Check:
    """One bound: `kind` is "target" (the issue's bar for the package) or "model" (section 6)."""

    kind: str
    name: str
    measured: float
    op: str  # "<=", ">=", "=="
    bound: float
    note: str = ""

    @property
    def ok(self) -> bool:
        if math.isnan(self.measured):
            return False
        if self.op == "<=":
            return self.measured <= self.bound
        if self.op == ">=":
            return self.measured >= self.bound
        return abs(self.measured - self.bound) < 1e-9

    @property
    def margin(self) -> str:
        gap = abs(self.measured - self.bound)
        if self.op == "==":
            return "exact" if self.ok else f"off by {gap:.4g}"
        return f"{gap:.3g} to spare" if self.ok else f"**missed by {gap:.3g}**"


def _mean(runs: Iterable[dict[str, Any]], key: str) -> float:
    return statistics.fmean(run[key] for run in runs)


def _s1_ratio(res: Results, n: int, name: str, index: int) -> float:
    return res.s1[(n, name)][index] / res.s1[(n, "full")][index]


def _slope(res: Results, name: str) -> float:
    lo, hi = min(n for n, _ in res.s1), max(n for n, _ in res.s1)
    return math.log(res.s1[(hi, name)][0] / res.s1[(lo, name)][0]) / math.log(hi / lo)


def targets(res: Results) -> list[Check]:
    checks: list[Check] = []
    s3, s4 = res.s3[(PKG, OURS, "full")], res.s4[(PKG, OURS, "full")]
    s3n, s4n = res.s3[(PKG, "none", "full")], res.s4[(PKG, "none", "full")]
    checks.append(
        Check(
            "target",
            "S3 overload-phase amplification",
            s3["amp_over"],
            "<=",
            1.2,
            f"no budget: {s3n['amp_over']:.2f}x",
        )
    )
    checks.append(
        Check(
            "target",
            "S4 after-phase success",
            s4["success_after"],
            ">=",
            0.85,
            f"no budget: {s4n['success_after']:.3f}",
        )
    )
    s2 = res.s2[(S2_PKG_ROWS[0][0], "spread")]
    checks.append(
        Check(
            "target",
            "S2 success (worst seed), RA + spread 0.5",
            min(r["success"] for r in s2),
            ">=",
            0.95,
        )
    )
    checks.append(
        Check(
            "target",
            "S2 post-outage peak x capacity (worst seed)",
            max(r["peak_x"] for r in s2),
            "<=",
            1.6,
        )
    )
    big = [n for n, name in res.s1 if name == "full" and n >= 100]
    worst = min(big, key=lambda n: _s1_ratio(res, n, "expo", 0))
    checks.append(
        Check(
            "target",
            f"S1 work, expo / full jitter (min over N >= 100: N = {worst})",
            _s1_ratio(res, worst, "expo", 0),
            ">=",
            2.0,
        )
    )
    checks.append(
        Check(
            "target",
            "S5 bottom attempts per request, 3 layers x 4 attempts",
            res.s5[(3, 4, OURS)],
            "<=",
            1.5,
            f"no budget: {res.s5[(3, 4, 'none')]:.0f}x",
        )
    )
    return checks


def model_checks(res: Results) -> list[Check]:
    """overload.md section 6: validates this simulator against the calibrated reference."""
    out: list[Check] = []

    def add(name: str, measured: float, op: str, bound: float) -> None:
        out.append(Check("model", name, measured, op, bound))

    sizes = sorted({n for n, _ in res.s1})
    for n in sizes:
        big = n >= 100
        for name, lo_small, lo_big in (
            ("decorr", 1.08, 1.2),
            ("expo", 1.7, 2.0),
            ("nobackoff", 1.8, 2.7),
        ):
            add(
                f"S1 N={n} work {name}/full",
                _s1_ratio(res, n, name, 0),
                ">=",
                lo_big if big else lo_small,
            )
        add(f"S1 N={n} work equal/full", _s1_ratio(res, n, "equal", 0), ">=", 0.92)
        add(f"S1 N={n} work equal/full", _s1_ratio(res, n, "equal", 0), "<=", 1.08)
        add(f"S1 N={n} time expo/full", _s1_ratio(res, n, "expo", 1), ">=", 10.0)
        add(f"S1 N={n} time equal/full", _s1_ratio(res, n, "equal", 1), ">=", 1.2)
        add(f"S1 N={n} time decorr/full", _s1_ratio(res, n, "decorr", 1), ">=", 0.70)
        add(f"S1 N={n} time decorr/full", _s1_ratio(res, n, "decorr", 1), "<=", 1.10)
        add(f"S1 N={n} time nobackoff/full", _s1_ratio(res, n, "nobackoff", 1), "<=", 0.6)
    add("S1 work slope, no backoff", _slope(res, "nobackoff"), ">=", 1.6)
    add("S1 work slope, full jitter", _slope(res, "full"), "<=", 1.4)

    none_ignore = res.s2[("none", "ignore")]
    add("S2 none/ignore success", _mean(none_ignore, "success"), "<=", 0.5)
    add("S2 none/ignore peak", _mean(none_ignore, "peak_x"), ">=", 5.0)
    for jitter in ("full", "equal", "decorrelated"):
        runs = res.s2[(jitter, "ignore")]
        add(f"S2 {jitter}/ignore success", _mean(runs, "success"), ">=", 0.9)
        add(f"S2 {jitter}/ignore peak", _mean(runs, "peak_x"), "<=", 1.6)
    for jitter in JITTERS:
        ignored = _mean(res.s2[(jitter, "ignore")], "calls_per_success")
        for ra in ("exact", "aws2026", "spread"):
            runs = res.s2[(jitter, ra)]
            add(
                f"S2 {jitter}/{ra} calls during outage",
                _mean(runs, "calls_during_outage"),
                "==",
                1.0,
            )
            add(
                f"S2 {jitter}/{ra} calls/success vs ignore",
                _mean(runs, "calls_per_success") / ignored,
                "<=",
                0.7,
            )
            if ra != "spread":
                add(f"S2 {jitter}/{ra} peak", _mean(runs, "peak_x"), ">=", 5.0)
        runs = res.s2[(jitter, "spread")]
        add(f"S2 {jitter}/spread calls/success", _mean(runs, "calls_per_success"), "<=", 2.05)
        add(f"S2 {jitter}/spread makespan s", _mean(runs, "makespan_s"), "<=", 1.05 * S2_ORACLE_S)
        add(f"S2 {jitter}/spread peak", _mean(runs, "peak_x"), "<=", 1.3)

    s3 = res.s3
    for jitter in JITTERS:
        add(f"S3 none/{jitter} amp", s3[("spec", "none", jitter)]["amp_over"], ">=", 2.6)
        add(f"S3 none/{jitter} amp", s3[("spec", "none", jitter)]["amp_over"], "<=", 3.0)
        add(
            f"S3 sre_ratio10/{jitter} amp",
            s3[("spec", "sre_ratio10", jitter)]["amp_over"],
            ">=",
            1.08,
        )
        add(
            f"S3 sre_ratio10/{jitter} amp",
            s3[("spec", "sre_ratio10", jitter)]["amp_over"],
            "<=",
            1.15,
        )
        add(f"S3 tps20/{jitter} amp", s3[("spec", "tps20", jitter)]["amp_over"], "<=", 1.35)
        add(f"S3 aws_std/{jitter} amp", s3[("spec", "aws_std", jitter)]["amp_over"], "<=", 1.2)
        add(f"S3 grpc/{jitter} amp", s3[("spec", "grpc_10_0.1", jitter)]["amp_over"], "<=", 1.05)
        none_success = s3[("spec", "none", jitter)]["success_over"]
        for budget in (*REFERENCE_BUDGETS[1:], OURS):
            run = s3[("spec", budget, jitter)]
            add(
                f"S3 {budget}/{jitter} success over - none's",
                run["success_over"] - none_success,
                ">=",
                -0.02,
            )
            if budget != "sre_adaptive_k2":
                add(f"S3 {budget}/{jitter} success after", run["success_after"], ">=", 0.99)
        add(
            f"S3 sre_adaptive_k2/{jitter} load / offered",
            s3[("spec", "sre_adaptive_k2", jitter)]["load_vs_offered"],
            "<=",
            0.7,
        )
    for budget in (*REFERENCE_BUDGETS, OURS):
        amps = [s3[("spec", budget, jitter)]["amp_over"] for jitter in JITTERS]
        add(f"S3 {budget} amp spread over jitters", max(amps) / min(amps) - 1, "<=", 0.03)

    s4 = res.s4
    for jitter in JITTERS:
        add(
            f"S4 none/{jitter} success after",
            s4[("spec", "none", jitter)]["success_after"],
            "<=",
            0.05,
        )
        add(f"S4 none/{jitter} amp after", s4[("spec", "none", jitter)]["amp_after"], ">=", 2.9)
        for budget in ("sre_ratio10", "tps20", "grpc_10_0.1", "aws_std"):
            run = s4[("spec", budget, jitter)]
            add(f"S4 {budget}/{jitter} success after", run["success_after"], ">=", 0.85)
            add(f"S4 {budget}/{jitter} amp after", run["amp_after"], "<=", 1.05)

    s5 = res.s5
    for layers, attempts in ((3, 4), (5, 3)):
        tag = f"S5 {layers}x{attempts}"
        add(f"{tag} none", s5[(layers, attempts, "none")], "==", float(attempts**layers))
        add(f"{tag} sre_ratio10", s5[(layers, attempts, "sre_ratio10")], "<=", 1.02 * 1.111**layers)
        add(f"{tag} tps20", s5[(layers, attempts, "tps20")], "<=", 1.02 * 1.21**layers)
        add(f"{tag} grpc", s5[(layers, attempts, "grpc_10_0.1")], "<=", 1.01)
        add(f"{tag} aws_std", s5[(layers, attempts, "aws_std")], "<=", 1.03)
    return out


# --------------------------------------------------------------------------- output


def _f(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


HEADER = """\
# Retry storms: simulated S1-S5 results

Generated by `python benchmarks/storm.py{mode}`: a seeded, deterministic discrete-event
simulation (standard library only; the output is byte-identical on every run). The model,
scenarios and reference thresholds are those of `shared/reference/overload.md` (sections
3-6). The simulation drives the package's own objects through a simulated clock and seeded
RNGs: `RetryBudget` (clock injected, `record_request()` on each first attempt,
`try_acquire()` before each retry), the four `backoff_*` strategies (one state object per
logical request) and `wait_with_retry_after`, in the order `RetryCall.next_delay` uses them
(backoff, then Retry-After, then the budget). The other budgets (sre_ratio10, tps20,
grpc_10_0.1, aws_std, sre_adaptive_k2) are reference algorithms simulated in `storm.py`.

**Package defaults** = `RetryPolicy()` ({attempts} attempts, {backoff} jitter over
{initial:g} s doubling up to {cap:g} s, Retry-After honoured with spread {spread:g}, at most
{max_ra:g} s) with `RetryBudget()` (ratio {ratio:g}, {per_second:g} token/s, capacity
{capacity:g}), one budget per client process (per layer in S5). **ours** = `RetryBudget()`
with the scenario's own policy; **none** = no budget (the naive client).

* **S1** Brooker 2015 optimistic-concurrency race: N clients, one row, 100 % contention;
  work = server write calls. Backoff base 5 ms, cap 2 s; no budget.
* **S2** herd: 1000 clients (one request each, own budget) hit a 2 s outage of a
  1000 req/s server (W 10, S 10 ms, Q 100); outage 503s carry the time left as a
  Retry-After (fractional, as `retry-after-ms` would). Spec policy: 8 attempts, 100 ms
  base, 10 s cap.
* **S3** sustained overload: 20 client processes, Poisson load 5x capacity for 10 s, then
  0.5x until 30 s (W 5, S 10 ms, Q 50, 200 ms attempt timeout). Spec policy: 3 attempts,
  50 ms base, 2 s cap. The package-defaults rows keep the 200 ms attempt timeout (in the
  package that is httpx's timeout, not part of `RetryPolicy`).
* **S4** metastable: as S3 with Q 500 (up to 1 s of queueing, so timed-out attempts still
  cost server time); 2x for 5 s, then 0.6x until 30 s. Does goodput recover?
* **S5** layers: L layers x a attempts over a dependency that always fails, one budget per
  layer; 20 000 top-level requests at 1 ms intervals.
"""


def render(res: Results, grid: Grid) -> str:
    policy, budget = RetryPolicy(), RetryBudget(clock=lambda: 0.0)
    strategy: Any = policy.backoff
    out = [
        HEADER.format(
            mode=" --quick" if res.quick else "",
            attempts=policy.attempts,
            backoff={cls: name for name, cls in BACKOFFS.items()}[type(strategy)],
            initial=strategy.initial,
            cap=strategy.cap,
            spread=policy.retry_after_spread,
            max_ra=policy.max_retry_after,
            ratio=budget.ratio,
            per_second=budget.per_second,
            capacity=budget.capacity,
        )
    ]
    if res.quick:
        out.append(
            "**Quick mode** (CI smoke run): a small grid, S3 time-scaled by "
            f"{grid.s3_scale:g}; the numbers are indicative only.\n"
        )

    checks = targets(res)
    out.append("## Targets (package defaults)\n")
    out += _table(
        ("target", "measured", "bound", "margin", "result", "reference"),
        (
            (
                c.name,
                _f(c.measured),
                f"{c.op} {c.bound:g}",
                c.margin,
                "pass" if c.ok else "**FAIL**",
                c.note,
            )
            for c in checks
        ),
    )
    out.append(
        f"\nS5 with 5 layers x 3 attempts (no bound set): {_f(res.s5[(5, 3, OURS)])}x with "
        f"`RetryBudget()` per layer, {res.s5[(5, 3, 'none')]:.0f}x without.\n"
    )

    # S1
    out.append(f"## S1: contention (Brooker 2015), {grid.s1_reps} reps, means\n")
    names = S1_NAMES
    out += _table(
        ("N", *(f"calls {n}" for n in names), *(f"ms {n}" for n in names), "expo/full calls"),
        (
            (
                str(n),
                *(f"{res.s1[(n, name)][0]:.0f}" for name in names),
                *(f"{res.s1[(n, name)][1]:.0f}" for name in names),
                _f(_s1_ratio(res, n, "expo", 0), 2),
            )
            for n in sorted({n for n, _ in res.s1})
        ),
    )
    out.append(
        "\n`nobackoff` retries at once; `expo` is `backoff_no_jitter`; the others are the "
        "package's jittered strategies. Work slope (log-log, smallest to largest N): "
        + ", ".join(f"{name} {_slope(res, name):.2f}" for name in names)
        + ".\n"
    )

    # S2
    seeds = ", ".join(str(s) for s in grid.s2_seeds)
    out.append(f"## S2: herd after a 2 s outage (mean of seeds {seeds})\n")
    out.append(
        "RA modes: `ignore`; `exact` = `wait_with_retry_after(spread=0)`; `aws2026` = "
        "max(d, min(RA, d + 5 s)) (reference); `spread` = `wait_with_retry_after(spread=0.5)` "
        "(the package default; equals overload.md's `proportional` whenever the backoff is "
        f"below RA). Oracle makespan: {S2_ORACLE_S:.1f} s.\n"
    )
    rows = []
    for (label, ra), runs in res.s2.items():
        rows.append(
            (
                label,
                ra,
                _f(_mean(runs, "success")),
                _f(min(r["success"] for r in runs)),
                _f(_mean(runs, "calls_per_success"), 2),
                _f(_mean(runs, "makespan_s"), 2),
                _f(_mean(runs, "peak_x"), 2),
                _f(max(r["peak_x"] for r in runs), 2),
                _f(_mean(runs, "calls_during_outage"), 2),
                f"{_mean(runs, 'denied'):.0f}",
            )
        )
    out += _table(
        (
            "policy / jitter",
            "RA",
            "success",
            "worst",
            "calls/success",
            "makespan s",
            "peak x cap",
            "worst peak",
            "calls in outage",
            "denied",
        ),
        rows,
    )
    out.append(
        "\nThe last three rows put all 1000 requests in one process with one budget: a "
        "herd inside a single client, where a budget trades recovery for protection. "
        "`RetryBudget()` allows `capacity` (10) retries for a simultaneous burst, since "
        "deposits never lift the balance above it; the simulated sre_ratio10 counts a retry "
        "only when it is sent, so retries delayed by Retry-After all pass it.\n"
    )

    # S3 / S4
    for key, table, title in (
        ("S3", res.s3, "sustained overload (5x for 10 s, then 0.5x)"),
        ("S4", res.s4, "metastable storm (2x for 5 s, then 0.6x)"),
    ):
        out.append(f"## {key}: {title}, seed 1\n")
        out += _table(
            (
                "policy",
                "budget",
                "jitter",
                "amp over",
                "amp after",
                "success over",
                "success after",
                "denied",
                "local rejects",
                "shed",
                "wasted",
                "p99 after ms",
            ),
            (
                (
                    "package defaults" if pol == PKG else "spec",
                    budget_name,
                    jitter,
                    _f(run["amp_over"]),
                    _f(run["amp_after"]),
                    _f(run["success_over"]),
                    _f(run["success_after"]),
                    str(run["denied"]),
                    str(run["local_reject"]),
                    str(run["shed"]),
                    str(run["wasted"]),
                    _f(run["p99_after_ms"], 0),
                )
                for (pol, budget_name, jitter), run in sorted(
                    table.items(),
                    key=lambda item: item[0][0] != PKG,  # stable: grid order
                )
            ),
        )
        out.append("")

    if res.fleet:
        out.append("## Fleet size: S3 / S4 with the same total load over more client processes\n")
        out.append(
            "Package-default policy; each process owns one budget. `RetryBudget`'s "
            "`per_second` trickle and starting `capacity` are per process: a process sending "
            "r req/s may retry about `ratio + per_second / r` of its requests, plus "
            "`capacity` retries per incident. Below r = per_second / ratio (10 req/s with "
            "the defaults) the trickle, not `ratio`, sets the retry rate.\n"
        )
        sizes = sorted({m for _, m, _ in res.fleet})
        out += _table(
            (
                "budget",
                "processes",
                "req/s per process (S3 over / S4 after)",
                "S3 amp over",
                "S3 success after",
                "S4 amp after",
                "S4 success after",
            ),
            (
                (
                    budget_name,
                    str(m),
                    f"{_rate(S3_LOAD, 0, m):.3g} / {_rate(S4_LOAD, 1, m):.3g}",
                    _f(res.fleet[("S3", m, budget_name)]["amp_over"]),
                    _f(res.fleet[("S3", m, budget_name)]["success_after"]),
                    _f(res.fleet[("S4", m, budget_name)]["amp_after"]),
                    _f(res.fleet[("S4", m, budget_name)]["success_after"]),
                )
                for budget_name in grid.fleet_budgets
                for m in sizes
            ),
        )

        def s4_after(budget_name: str) -> str:
            return ", ".join(
                f"{m}: {res.fleet[('S4', m, budget_name)]['success_after']:.3f}" for m in sizes
            )

        missed = [
            m
            for m in sizes
            if res.fleet[("S4", m, OURS)]["success_after"] < 0.85
            or res.fleet[("S3", m, OURS)]["amp_over"] > 1.2
        ]
        verdict = (
            "`RetryBudget()` meets the S3 and S4 targets at every fleet size here."
            if not missed
            else "`RetryBudget()` misses the S3 or S4 target with "
            + ", ".join(str(m) for m in missed)
            + " processes."
        )
        out.append(
            "\nS4 after-phase success by number of processes (target >= 0.85): "
            f"`RetryBudget()` {s4_after(OURS)}; sre_ratio10 {s4_after('sre_ratio10')}. "
            f"{verdict}\n"
        )

    out.append("## S5: bottom attempts per top-level request\n")
    out += _table(
        ("budget", "3 layers x 4 attempts", "5 layers x 3 attempts"),
        ((name, _f(res.s5[(3, 4, name)]), _f(res.s5[(5, 3, name)])) for name in grid.s5_budgets),
    )
    out.append(
        f"\n`none` ran {grid.s5_top_unbudgeted} top-level requests (every request makes "
        f"exactly a^L bottom attempts); the budgets ran {grid.s5_top}.\n"
    )

    if not res.quick:
        model = model_checks(res)
        failed = [c for c in model if not c.ok]
        out.append("## Reference checks (overload.md section 6)\n")
        out.append(f"{len(model) - len(failed)} of {len(model)} bounds hold.")
        if failed:
            out.append("")
            out += _table(
                ("check", "measured", "bound", "margin"),
                ((c.name, _f(c.measured, 4), f"{c.op} {c.bound:g}", c.margin) for c in failed),
            )
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _rate(load: Load, phase: int, processes: int) -> float:
    """Requests per second that one client process sends in a phase of `load`."""
    return load.phases[phase][1] * S34_CAPACITY_PER_MS * 1000 / processes


def jsonl(res: Results) -> str:
    rows: list[dict[str, Any]] = []

    def clean(metrics: dict[str, Any]) -> dict[str, Any]:
        return {
            k: (round(v, 6) if isinstance(v, float) else v)
            for k, v in metrics.items()
            if not isinstance(v, list)
        }

    for (n, name), (calls, ms) in res.s1.items():
        rows.append(
            {
                "scenario": "S1",
                "n": n,
                "strategy": name,
                "seed": 1,
                "write_calls": round(calls, 6),
                "time_ms": round(ms, 6),
            }
        )
    for (label, ra), runs in res.s2.items():
        for seed, run in zip(res_seeds(res), runs, strict=True):
            rows.append({"scenario": "S2", "strategy": label, "ra": ra, "seed": seed, **clean(run)})
    for key, table in (("S3", res.s3), ("S4", res.s4)):
        for (pol, budget, jitter), run in table.items():
            rows.append(
                {
                    "scenario": key,
                    "policy": pol,
                    "budget": budget,
                    "strategy": jitter,
                    "seed": 1,
                    "processes": 20,
                    **clean(run),
                }
            )
    for (key, m, budget), run in res.fleet.items():
        rows.append(
            {
                "scenario": key,
                "policy": PKG,
                "budget": budget,
                "strategy": "full",
                "seed": 1,
                "processes": m,
                **clean(run),
            }
        )
    for (layers, attempts, budget), value in res.s5.items():
        rows.append(
            {
                "scenario": "S5",
                "layers": layers,
                "attempts": attempts,
                "budget": budget,
                "bottom_per_request": round(value, 6),
            }
        )
    return "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)


def res_seeds(res: Results) -> tuple[int, ...]:
    return (QUICK_GRID if res.quick else DEFAULT_GRID).s2_seeds


def plot(res: Results, out_dir: Path) -> list[Path]:
    """PNG plots next to storm.md; skipped (empty list) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written: list[Path] = []
    meta = {"Software": None}

    def save(fig: Any, name: str) -> None:
        path = out_dir / name
        fig.tight_layout()
        fig.savefig(path, dpi=100, metadata=meta)
        plt.close(fig)
        written.append(path)

    sizes = sorted({n for n, _ in res.s1})
    fig, (work, span) = plt.subplots(1, 2, figsize=(10, 4))
    for name in S1_NAMES:
        work.plot(sizes, [res.s1[(n, name)][0] for n in sizes], marker="o", label=name)
        span.plot(sizes, [res.s1[(n, name)][1] for n in sizes], marker="o", label=name)
    for ax, title in ((work, "S1 server write calls"), (span, "S1 completion time, ms")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("clients N")
        ax.set_title(title)
        ax.legend(fontsize=8)
    save(fig, "storm_s1.png")

    fig, ax = plt.subplots(figsize=(10, 4))
    shown = (
        (("none", "ignore"), "spec, no jitter, RA ignored"),
        (("full", "ignore"), "spec, full jitter, RA ignored"),
        (("full", "exact"), "spec, full jitter, RA exact"),
        ((S2_PKG_ROWS[0][0], "spread"), "package defaults (RA + spread 0.5)"),
        ((S2_PKG_ROWS[2][0], "spread"), "package, RA without spread"),
    )
    for key, label in shown:
        if key in res.s2:
            buckets = res.s2[key][0]["buckets"][:100]
            ax.step([i / 10 for i in range(len(buckets))], buckets, where="post", label=label)
    ax.axhline(S2_CAP_PER_BUCKET, color="black", linestyle="--", label="capacity")
    ax.axvline(S2_OUTAGE_MS / 1000, color="grey", linestyle=":")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("time, s (outage until 2 s)")
    ax.set_ylabel("arrivals per 100 ms")
    ax.set_title("S2 herd, seed 1")
    ax.legend(fontsize=8)
    save(fig, "storm_s2.png")

    fig, (amp, rec) = plt.subplots(1, 2, figsize=(11, 4))
    keys = sorted((k for k in res.s3 if k[2] == "full"), key=lambda k: k[0] != PKG)
    labels = [f"{'pkg ' if pol == PKG else ''}{budget}" for pol, budget, _ in keys]
    amp.bar(labels, [res.s3[k]["amp_over"] for k in keys])
    amp.axhline(1.2, color="red", linestyle="--", label="target 1.2")
    amp.set_title("S3 overload-phase amplification (full jitter)")
    amp.tick_params(axis="x", rotation=60, labelsize=8)
    amp.legend(fontsize=8)
    rec.bar(labels, [res.s4[k]["success_after"] for k in keys])
    rec.axhline(0.85, color="red", linestyle="--", label="target 0.85")
    rec.set_title("S4 after-phase success (full jitter)")
    rec.tick_params(axis="x", rotation=60, labelsize=8)
    rec.legend(fontsize=8)
    save(fig, "storm_s3.png")

    fig, ax = plt.subplots(figsize=(10, 4))
    for pol, budget, jitter in res.s4:
        if jitter == "full" and budget in ("none", OURS, "sre_ratio10"):
            series = res.s4[(pol, budget, jitter)]["ok_per_s"]
            name = "package defaults" if pol == PKG else "spec"
            ax.plot(range(len(series)), series, label=f"{name} / {budget}")
    ax.set_xlabel("time, s")
    ax.set_ylabel("successes per second")
    trigger_end = S4_LOAD.over_end_ms / 1000
    ax.set_title(f"S4 goodput (capacity 500/s; the 2x trigger ends at {trigger_end:g} s)")
    ax.legend(fontsize=8)
    save(fig, "storm_s4.png")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small grid for CI (a few seconds)")
    parser.add_argument("--check", action="store_true", help="assert the targets; exit 1 on a miss")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(f"storm: {message}", file=sys.stderr)

    grid = QUICK_GRID if args.quick else DEFAULT_GRID
    started = time.perf_counter()
    res = run_all(grid, args.quick, log)
    log(f"simulation {time.perf_counter() - started:.1f} s")
    text = render(res, grid)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "storm.md").write_text(text, encoding="utf-8")
    (args.out / "storm.jsonl").write_text(jsonl(res), encoding="utf-8")
    if not args.no_plots:
        for path in plot(res, args.out):
            log(f"wrote {path}")
    print(text, end="")

    if args.check:
        checks = targets(res) + ([] if args.quick else model_checks(res))
        failed = [c for c in checks if not c.ok]
        for c in failed:
            print(
                f"CHECK FAILED ({c.kind}): {c.name}: {c.measured:.4g}, wanted {c.op} "
                f"{c.bound:g} ({c.margin.strip('*')})",
                file=sys.stderr,
            )
        log(f"check: {len(checks) - len(failed)} of {len(checks)} bounds hold")
        return 1 if failed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
