"""S2-S5: a herd after an outage, sustained overload, a metastable storm, layered retries."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .budgets import make_budget
from .model import Clients, Proc, QueueServer, Req, Sim, Stats, percentile, ratio
from .policy import Policy

# S2 ------------------------------------------------------------------------

S2_N, S2_OUTAGE_MS, S2_CAP_PER_BUCKET = 1000, 2000.0, 100.0
S2_ORACLE_S = S2_OUTAGE_MS / 1000 + S2_N / 1000  # T_out + N / C


def s2_run(policy: Policy, budget: str, seed: int, shared_budget: bool = False) -> dict[str, Any]:
    """1000 clients, one request each, a 2 s outage; each client has its own budget."""
    sim = Sim()
    stats = Stats(cohorts=1, horizon_ms=120_000.0)
    server = QueueServer(stats, workers=10, service_ms=10.0, queue=100, outage=(0.0, S2_OUTAGE_MS))
    clients = Clients(sim, policy, server, stats)
    shared = make_budget(budget, sim.clock_s, random.Random(f"{seed}-{policy.backoff}-shared"))
    for i in range(S2_N):
        rng = random.Random(f"{seed}-{policy.backoff}-{i}")
        own = shared if shared_budget else make_budget(budget, sim.clock_s, rng)
        proc = Proc(rng, own, policy.make_backoff(rng))
        t0 = rng.random()
        sim.at(t0, clients.start, Req(t0, 0, proc))
    sim.run()
    post = stats.buckets[int(S2_OUTAGE_MS // 100) :]
    return {
        "success": stats.ok[0] / S2_N,
        "calls_per_success": ratio(stats.attempts[0], stats.ok[0]),
        "makespan_s": stats.makespan_ms / 1000.0,
        "peak_x": max(post) / S2_CAP_PER_BUCKET,
        "calls_during_outage": stats.outage_arrivals / S2_N,
        "shed": stats.shed,
        "denied": stats.denied[0],
        "buckets": stats.buckets,
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

    def rate_per_s(self, phase: int, processes: int) -> float:
        """Requests per second that one of `processes` client processes sends in a phase."""
        return self.phases[phase][1] * CAPACITY_PER_MS * 1000 / processes


S3_LOAD = Load("S3", queue=50, phases=((10_000.0, 5.0), (30_000.0, 0.5)))
S4_LOAD = Load("S4", queue=500, phases=((5_000.0, 2.0), (30_000.0, 0.6)))
CAPACITY_PER_MS = 0.5  # W = 5 workers, S = 10 ms: 500 requests per second


def overload_run(
    load: Load, policy: Policy, budget: str, seed: int, processes: int = 20
) -> dict[str, Any]:
    """M client processes, one budget each, Poisson arrivals shared by every strategy.

    The total load is the same for any M: each process sends 1/M of it.
    """
    sim = Sim()
    stats = Stats(cohorts=2, horizon_ms=load.horizon_ms)
    server = QueueServer(stats, workers=5, service_ms=10.0, queue=load.queue)
    clients = Clients(sim, policy, server, stats)
    arrivals = random.Random(f"{seed}-arr")
    over_end = load.over_end_ms
    for m in range(processes):
        rng = random.Random(f"{seed}-{policy.backoff}-{budget}-{m}")
        proc = Proc(rng, make_budget(budget, sim.clock_s, rng), policy.make_backoff(rng))
        t = 0.0
        for end, x in load.phases:  # exact piecewise Poisson: the process is memoryless
            rate = x * CAPACITY_PER_MS / processes
            while True:
                t_next = t + arrivals.expovariate(rate)
                if t_next >= end:
                    t = end
                    break
                t = t_next
                sim.at(t, clients.start, Req(t, 0 if t < over_end else 1, proc))
    sim.run(load.horizon_ms)
    return {
        "amp_over": ratio(stats.attempts[0], stats.logical[0]),
        "amp_after": ratio(stats.attempts[1], stats.logical[1]),
        "success_over": ratio(stats.ok[0], stats.logical[0]),
        "success_after": ratio(stats.ok[1], stats.logical[1]),
        "load_vs_offered": ratio(sum(stats.attempts), sum(stats.logical)),
        "denied": sum(stats.denied),
        "local_reject": sum(stats.local_reject),
        "shed": stats.shed,
        "wasted": stats.wasted,
        "p50_after_ms": percentile(stats.latencies[1], 0.5),
        "p99_after_ms": percentile(stats.latencies[1], 0.99),
        "ok_per_s": stats.ok_per_s[: int(load.phases[-1][0] // 1000) + 1],
    }


# S5 ------------------------------------------------------------------------


def s5_run(layers: int, attempts: int, budget: str, n_top: int) -> float:
    """Bottom attempts per top-level request through `layers` retrying layers, one budget each."""
    sim = Sim()
    budgets = [
        make_budget(budget, sim.clock_s, random.Random(f"s5-{layers}-{attempts}-{budget}-{i}"))
        for i in range(layers)
    ]
    bottom = 0
    last = layers - 1

    def call(level: int, now: float) -> bool:
        nonlocal bottom
        b = budgets[level]
        cost = 0.0
        for k in range(attempts):
            b.on_attempt(now, k > 0)
            if level == last:
                bottom += 1
                ok = False  # the bottom dependency always fails
            else:
                ok = call(level + 1, now)
            b.on_outcome(now, ok, k > 0, cost, False)
            if ok:
                return True
            if k + 1 < attempts:
                allowed, cost = b.allow_retry(now, False)
                if not allowed:
                    return False
        return False

    for n in range(n_top):
        sim.now_ms = float(n)  # t = n * 1 ms; no time passes inside a call
        call(0, sim.now_ms)
    return bottom / n_top
