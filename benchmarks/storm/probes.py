"""Usability probes: does a budget still let an ordinary client retry what it should?

Each probe is one client process with its own fresh budget and the package's
default policy (no Retry-After: the server sends none), against a server that
answers every attempt in 50 ms and fails some of them. A budget that protects
a fleet must not starve these clients. Many independent trials run side by side
in one simulation (one process and one budget each), so the success rates are
precise to a few thousandths.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from .budgets import make_budget
from .model import Clients, FlakyServer, Proc, Req, Sim, Stats
from .policy import Policy

ATTEMPT_MS = 50.0
_SERVER_MS = ATTEMPT_MS - 2.0  # plus 1 ms of network each way


@dataclass(frozen=True)
class Probe:
    """One probe: who sends what, how the server fails, and how many trials."""

    key: str
    title: str
    fail_p: float
    trials: int
    quick_trials: int
    requests: int = 0  # closed loop: this many requests in sequence, each after the last
    rate_per_s: float = 0.0  # open loop: Poisson arrivals at this rate ...
    every_s: float = 0.0  # ... or exactly one request every `every_s`
    duration_s: float = 0.0
    blip_s: tuple[float, float] | None = None  # every attempt fails in [start, end)


PROBES = (
    Probe(
        key="i",
        title="fresh script: 5 requests in sequence, attempts fail w.p. 0.5",
        fail_p=0.5,
        trials=20_000,
        quick_trials=4_000,
        requests=5,
    ),
    Probe(
        key="ii",
        title="quiet client: 1 request a minute for an hour, 20 % failures",
        fail_p=0.2,
        trials=2_000,
        quick_trials=400,
        every_s=60.0,
        duration_s=3600.0,
    ),
    Probe(
        key="iii",
        title="busy client: 50 req/s through a 0.2 s blip (success of the blip's requests)",
        fail_p=0.0,
        trials=600,
        quick_trials=150,
        rate_per_s=50.0,
        duration_s=5.0,  # a busy budget has saved up to capacity within 2 s
        blip_s=(3.0, 3.2),
    ),
    Probe(
        key="iv",
        title="busy client: 20 req/s for 5 minutes, 20 % failures",
        fail_p=0.2,
        trials=10,
        quick_trials=3,
        rate_per_s=20.0,
        duration_s=300.0,
    ),
)


def probe_run(probe: Probe, policy: Policy, budget: str, seed: int, quick: bool) -> float:
    """Success rate of the probe's logical requests (of the blip's, for a blip probe)."""
    trials = probe.quick_trials if quick else probe.trials
    blip = None if probe.blip_s is None else (probe.blip_s[0] * 1e3, probe.blip_s[1] * 1e3)
    sim = Sim()
    horizon_ms = probe.duration_s * 1e3 + 60_000.0
    stats = Stats(cohorts=2, horizon_ms=horizon_ms)
    server = FlakyServer(random.Random(f"{seed}-probe-{probe.key}"), probe.fail_p, _SERVER_MS, blip)
    remaining: dict[Proc, int] = {}

    def next_in_sequence(req: Req, ok: bool) -> None:
        left = remaining[req.proc] = remaining[req.proc] - 1
        if left > 0:
            sim.at(sim.now_ms, clients.start, Req(sim.now_ms, 0, req.proc))

    clients = Clients(sim, policy, server, stats, next_in_sequence if probe.requests else None)
    for trial in range(trials):
        rng = random.Random(f"{seed}-{probe.key}-{budget}-{trial}")
        proc = Proc(rng, make_budget(budget, sim.clock_s, rng), policy.make_backoff(rng))
        if probe.requests:
            remaining[proc] = probe.requests
            sim.at(0.0, clients.start, Req(0.0, 0, proc))
            continue
        for t in _arrivals(probe, random.Random(f"{seed}-{probe.key}-arr-{trial}")):
            cohort = int(blip is not None and blip[0] <= t < blip[1])
            sim.at(t, clients.start, Req(t, cohort, proc))
    sim.run(horizon_ms)
    cohort = 1 if blip is not None else 0
    return stats.ok[cohort] / stats.logical[cohort]


def _arrivals(probe: Probe, rng: random.Random) -> list[float]:
    """Arrival times in ms: regular (`every_s`) or Poisson (`rate_per_s`)."""
    end = probe.duration_s * 1e3
    if probe.every_s:
        step = probe.every_s * 1e3
        return [i * step for i in range(int(end // step))]
    times: list[float] = []
    gap: Callable[[float], float] = rng.expovariate
    t = gap(probe.rate_per_s / 1e3)
    while t < end:
        times.append(t)
        t += gap(probe.rate_per_s / 1e3)
    return times
