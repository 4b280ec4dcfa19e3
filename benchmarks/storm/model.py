"""The discrete-event model: an event heap, retrying clients, and the servers they call.

Time is float milliseconds and never the wall clock. Every random stream is a
`random.Random("<string seed>")`, so a run is byte-identical on every machine
and under any `PYTHONHASHSEED`. Every outcome of a logical request is counted
in the cohort (phase) in which that request arrived.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .budgets import Budget
from .policy import AttemptState, BackoffFn, Policy

NETWORK_MS = 1.0  # one way, every message


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


@dataclass
class Stats:
    """Counters per cohort (index = phase in which the logical request arrived)."""

    cohorts: int
    horizon_ms: float
    logical: list[int] = field(init=False)
    attempts: list[int] = field(init=False)
    ok: list[int] = field(init=False)
    denied: list[int] = field(init=False)
    local_reject: list[int] = field(init=False)
    latencies: list[list[float]] = field(init=False)
    buckets: list[int] = field(init=False)  # server arrivals per 100 ms
    ok_per_s: list[int] = field(init=False)  # successes per second of completion
    shed: int = 0
    wasted: int = 0
    outage_arrivals: int = 0
    makespan_ms: float = 0.0

    def __post_init__(self) -> None:
        for name in ("logical", "attempts", "ok", "denied", "local_reject"):
            setattr(self, name, [0] * self.cohorts)
        self.latencies = [[] for _ in range(self.cohorts)]
        self.buckets = [0] * (int(self.horizon_ms // 100) + 2)
        self.ok_per_s = [0] * (int(self.horizon_ms // 1000) + 2)


class Proc:
    """One client process: its RNG, its budget, its backoff strategy."""

    __slots__ = ("backoff", "budget", "rng")

    def __init__(self, rng: random.Random, budget: Budget, backoff: BackoffFn) -> None:
        self.rng, self.budget, self.backoff = rng, budget, backoff


class Req:
    """One logical request in flight: attempt index `k`, last paid cost, Retry-After."""

    __slots__ = ("cohort", "cost", "k", "proc", "ra", "retried", "state", "t0")

    def __init__(self, t0: float, cohort: int, proc: Proc) -> None:
        self.t0, self.cohort, self.proc = t0, cohort, proc
        self.k = 0
        self.retried = False
        self.cost = 0.0
        self.ra = -1.0  # Retry-After of the last failure, ms (negative: none)
        self.state = AttemptState()


class Server(Protocol):
    def arrive(self, req: Req, t: float) -> tuple[bool, float]:
        """An attempt arrives at `t`: (answered 200?, when the answer leaves the server)."""
        ...


class QueueServer:
    """W workers, fixed service time, FIFO queue of Q; sheds (503) beyond it; optional outage.

    With FIFO and a fixed service time, an admitted attempt's completion time is known on
    arrival, so the server keeps only worker-free times and queued start times.
    """

    def __init__(
        self,
        stats: Stats,
        *,
        workers: int,
        service_ms: float,
        queue: int,
        outage: tuple[float, float] | None = None,
    ) -> None:
        self.stats, self.service, self.queue, self.outage = stats, service_ms, queue, outage
        self.free = [0.0] * workers
        self.starts: deque[float] = deque()

    def arrive(self, req: Req, t: float) -> tuple[bool, float]:
        st, outage = self.stats, self.outage
        if outage is not None and outage[0] <= t < outage[1]:
            st.outage_arrivals += 1
            req.ra = outage[1] - t  # the time left, as retry-after-ms would say
            return False, t
        req.ra = -1.0
        free, starts = self.free, self.starts
        while starts and starts[0] <= t:
            starts.popleft()
        if free[0] <= t:
            begin = t
        elif len(starts) < self.queue:
            begin = free[0]
            starts.append(begin)
        else:
            st.shed += 1
            return False, t
        done = begin + self.service
        heapq.heapreplace(free, done)
        return True, done


class FlakyServer:
    """Answers every attempt after `latency_ms`; fails it with probability `p`, or in `blip`."""

    def __init__(
        self, rng: random.Random, p: float, latency_ms: float, blip: tuple[float, float] | None
    ) -> None:
        self.rng, self.p, self.latency, self.blip = rng, p, latency_ms, blip

    def arrive(self, req: Req, t: float) -> tuple[bool, float]:
        req.ra = -1.0
        blip = self.blip
        failed = (blip is not None and blip[0] <= t < blip[1]) or self.rng.random() < self.p
        return not failed, t + self.latency


class Clients:
    """Retrying clients in the package's order (`RetryCall.decide`: `_wait`, then `_paid_for`).

    On a failure: report the outcome to the budget, stop at `attempts`, back off,
    apply Retry-After, then ask the budget. `on_done(req, ok)` (optional) hears when a
    logical request ends, for closed-loop clients.
    """

    def __init__(
        self,
        sim: Sim,
        policy: Policy,
        server: Server,
        stats: Stats,
        on_done: Callable[[Req, bool], None] | None = None,
    ) -> None:
        self.sim, self.policy, self.server, self.stats = sim, policy, server, stats
        self.on_done = on_done

    def start(self, req: Req) -> None:
        """A logical request arrives at its client."""
        st = self.stats
        st.logical[req.cohort] += 1
        if not req.proc.budget.allow_request(self.sim.now_ms):
            st.local_reject[req.cohort] += 1
            self._end(req, False)
            return
        self.send(req)

    def send(self, req: Req) -> None:
        sim, st = self.sim, self.stats
        now = sim.now_ms
        st.attempts[req.cohort] += 1
        req.proc.budget.on_attempt(now, req.k > 0)
        t = now + NETWORK_MS
        bucket = int(t // 100)
        if bucket < len(st.buckets):
            st.buckets[bucket] += 1
        ok, done = self.server.arrive(req, t)
        if not ok:
            sim.at(done + NETWORK_MS, self.on_fail, req)
            return
        timeout = self.policy.timeout_ms
        if timeout is not None and done + NETWORK_MS > now + timeout:
            st.wasted += 1  # the server will still do the work; nobody waits for it
            sim.at(now + timeout, self.on_timeout, req)
        else:
            sim.at(done + NETWORK_MS, self.on_ok, req)

    def on_ok(self, req: Req) -> None:
        now, st = self.sim.now_ms, self.stats
        req.proc.budget.on_outcome(now, True, req.retried, req.cost, False)
        st.ok[req.cohort] += 1
        st.latencies[req.cohort].append(now - req.t0)
        st.makespan_ms = max(st.makespan_ms, now)
        second = int(now // 1000)
        if second < len(st.ok_per_s):
            st.ok_per_s[second] += 1
        self._end(req, True)

    def on_fail(self, req: Req) -> None:
        self._failed(req, False)

    def on_timeout(self, req: Req) -> None:
        req.ra = -1.0
        self._failed(req, True)

    def _failed(self, req: Req, is_timeout: bool) -> None:
        now, policy, proc = self.sim.now_ms, self.policy, req.proc
        proc.budget.on_outcome(now, False, req.retried, req.cost, is_timeout)
        if req.k + 1 >= policy.attempts:
            self._end(req, False)
            return
        req.state.attempt_number = req.k + 1
        wait = policy.wait_ms(max(0.0, proc.backoff(req.state)), req.ra, proc.rng.random)
        if wait is None:
            self._end(req, False)
            return
        allowed, cost = proc.budget.allow_retry(now, is_timeout)
        if not allowed:
            self.stats.denied[req.cohort] += 1
            self._end(req, False)
            return
        req.cost = cost
        req.retried = True
        req.k += 1
        self.sim.at(now + wait, self.send, req)

    def _end(self, req: Req, ok: bool) -> None:
        if self.on_done is not None:
            self.on_done(req, ok)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ratio(a: float, b: float) -> float:
    return a / b if b else math.nan
