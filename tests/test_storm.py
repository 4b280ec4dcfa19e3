"""The storm simulator's parts, checked in milliseconds (the full benchmark runs in CI's script).

Each test builds a tiny model and checks an invariant that a broken simulator would
violate: event order, the server's queue arithmetic, the client's retry order, the
budget calls the transport makes, cohort accounting and determinism.
"""

from __future__ import annotations

import dataclasses
import math
import random
from pathlib import Path

import pytest

from benchmarks.storm.budgets import (
    LEGACY,
    OURS,
    TIMEOUTS_PAY,
    LegacyBudget,
    NoBudget,
    PackageBudget,
    make_budget,
)
from benchmarks.storm.checks import Check
from benchmarks.storm.model import (
    Clients,
    FlakyServer,
    Proc,
    QueueServer,
    Req,
    Sim,
    Stats,
)
from benchmarks.storm.policy import Policy, package_default_policy
from benchmarks.storm.probes import PROBES, probe_run
from benchmarks.storm.render import fmt, table
from benchmarks.storm.scenarios import S3_LOAD, S4_LOAD, overload_run, s5_run

FAST = Policy(attempts=3, backoff="full", initial_s=0.01, cap_s=0.1)


def test_events_run_in_time_order_then_insertion_order() -> None:
    sim, seen = Sim(), []
    for t, tag in ((5.0, "c"), (1.0, "a"), (5.0, "d"), (2.0, "b"), (99.0, "late")):
        sim.at(t, seen.append, tag)
    sim.run(until_ms=50.0)
    assert seen == ["a", "b", "c", "d"]
    assert sim.now_ms == 5.0
    assert sim.clock_s() == 0.005


def test_queue_server_serves_queues_then_sheds() -> None:
    """2 workers, 10 ms each, a queue of 2: at one instant 2 start, 2 wait, the rest are shed."""
    stats = Stats(cohorts=1, horizon_ms=1000.0)
    server = QueueServer(stats, workers=2, service_ms=10.0, queue=2)
    replies = [server.arrive(Req(0.0, 0, _proc()), 1.0) for _ in range(6)]
    assert replies == [(True, 11.0), (True, 11.0), (True, 21.0), (True, 21.0)] + [(False, 1.0)] * 2
    assert stats.shed == 2
    assert server.arrive(Req(0.0, 0, _proc()), 11.0) == (True, 31.0)  # a queued start freed
    outage = QueueServer(stats, workers=1, service_ms=1.0, queue=0, outage=(0.0, 500.0))
    req = Req(0.0, 0, _proc())
    assert outage.arrive(req, 100.0) == (False, 100.0)
    assert req.ra == 400.0  # Retry-After: the outage time left
    assert stats.outage_arrivals == 1


def _proc(budget: object | None = None, seed: int = 1) -> Proc:
    rng = random.Random(seed)
    return Proc(rng, budget or NoBudget(), FAST.make_backoff(rng))  # type: ignore[arg-type]


def _flaky_run(p: float, budget: object, requests: int = 200) -> tuple[Stats, Proc]:
    sim = Sim()
    stats = Stats(cohorts=1, horizon_ms=600_000.0)
    clients = Clients(sim, FAST, FlakyServer(random.Random("s"), p, 48.0, None), stats)
    proc = _proc(budget)
    for i in range(requests):
        sim.at(i * 1000.0, clients.start, Req(i * 1000.0, 0, proc))
    sim.run()
    return stats, proc


def test_clients_retry_up_to_attempts_and_count_every_attempt() -> None:
    healthy, _ = _flaky_run(0.0, NoBudget())
    assert healthy.attempts == healthy.ok == healthy.logical == [200]
    assert healthy.latencies[0] == [50.0] * 200  # 1 ms + 48 ms + 1 ms
    down, _ = _flaky_run(1.0, NoBudget())
    assert down.attempts == [600]
    assert down.ok == [0]


def test_the_package_budget_is_driven_as_the_transport_drives_it() -> None:
    """One request recorded per logical request; every retry granted or refused by it."""
    sim = Sim()
    budget = PackageBudget(sim.clock_s)
    stats, _ = _flaky_run(0.5, budget)
    real = budget.budget
    assert real.requests == stats.logical[0] == 200
    assert real.retries_allowed == stats.attempts[0] - stats.logical[0]
    assert real.retries_refused == stats.denied[0]
    assert 0.0 <= real.balance <= real.capacity

    fresh = PackageBudget(Sim().clock_s)  # a timeout costs timeout_cost; a success refunds it
    fresh.on_attempt(0.0, is_retry=False)
    fresh.on_attempt(0.0, is_retry=False)
    assert fresh.allow_retry(0.0, is_timeout=True) == (True, 2.0)
    assert fresh.budget.balance == pytest.approx(0.2)  # the grant + 2 x 0.1 - 2
    fresh.on_outcome(0.0, True, True, 2.0, False)
    assert fresh.budget.balance == pytest.approx(2.2)


def test_the_first_request_contract_and_its_variant() -> None:
    """The first request's timeout retries: never refused by the package; paid by the variant."""
    for name, granted in ((OURS, True), (TIMEOUTS_PAY, False)):
        budget = make_budget(name, Sim().clock_s, random.Random(1))
        budget.on_attempt(0.0, is_retry=False)
        assert budget.allow_retry(0.0, is_timeout=True)[0]  # 2.1 tokens pay for one
        assert budget.allow_retry(0.0, is_timeout=True)[0] is granted


def test_legacy_budget_is_the_previous_default() -> None:
    """Starts full at 10; 0.1 per request; 0.1 per second; one token per retry."""
    legacy = LegacyBudget()
    assert sum(legacy.allow_retry(0.0, False)[0] for _ in range(12)) == 10
    for _ in range(10):
        legacy.on_attempt(0.0, is_retry=False)
    assert legacy.allow_retry(0.0, False) == (True, 1.0)
    assert legacy.allow_retry(10_000.0, False) == (True, 1.0)  # 10 s x 0.1/s
    assert legacy.allow_retry(10_000.0, False) == (False, 0.0)


def test_make_budget_by_name() -> None:
    sim, rng = Sim(), random.Random(1)
    assert isinstance(make_budget(LEGACY, sim.clock_s, rng), LegacyBudget)
    swept = make_budget(f"{OURS}(grant=3,capacity=5)", sim.clock_s, rng)
    assert isinstance(swept, PackageBudget)
    assert (swept.budget.grant, swept.budget.capacity) == (3.0, 5.0)
    with pytest.raises(KeyError):
        make_budget("nonsense", sim.clock_s, rng)


def test_retry_after_rule() -> None:
    ignore = dataclasses.replace(FAST, ra="ignore")
    exact = dataclasses.replace(FAST, ra="exact")
    spread = dataclasses.replace(FAST, ra="spread", spread=0.5, max_ra_s=1.0)
    assert ignore.wait_ms(0.1, 700.0, lambda: 0.5) == pytest.approx(100.0)
    assert exact.wait_ms(0.1, 700.0, lambda: 0.5) == pytest.approx(700.0)
    assert exact.wait_ms(0.9, 700.0, lambda: 0.5) == pytest.approx(900.0)
    assert spread.wait_ms(0.1, 400.0, lambda: 1.0) == pytest.approx(600.0)
    assert spread.wait_ms(0.1, 5000.0, lambda: 0.0) is None  # beyond max_retry_after
    assert exact.wait_ms(0.1, -1.0, lambda: 0.5) == pytest.approx(100.0)  # no Retry-After


def test_package_default_policy_reads_the_package() -> None:
    policy = package_default_policy(timeout_ms=200.0)
    assert (policy.attempts, policy.backoff, policy.ra) == (3, "full", "spread")
    assert policy.timeout_ms == 200.0


def test_overload_cohorts_add_up_and_runs_repeat_exactly() -> None:
    """A short S4: every arrival counted once, in its phase; the same seed, the same run."""
    load = S4_LOAD.scaled(0.02)
    policy = package_default_policy(timeout_ms=200.0)
    first = overload_run(load, policy, OURS, seed=7, processes=5)
    again = overload_run(load, policy, OURS, seed=7, processes=5)
    assert first == again
    assert 1.0 <= first["amp_over"] <= 3.0
    assert 0.0 <= first["success_after"] <= 1.0
    assert first["load_vs_offered"] >= 1.0
    naive = overload_run(load, policy, "none", seed=7, processes=5)
    assert naive["amp_over"] >= first["amp_over"]
    assert S3_LOAD.rate_per_s(0, 1000) == pytest.approx(2.5)


def test_layers_multiply_without_a_budget() -> None:
    assert s5_run(3, 4, "none", 5) == 64.0
    assert s5_run(2, 3, OURS, 200) < 9.0 / 2


def test_a_probe_measures_success_of_its_requests() -> None:
    """Without a budget, 3 attempts at 50 % failure succeed 1 - 0.5**3 of the time."""
    fresh = dataclasses.replace(PROBES[0], quick_trials=400)
    rate = probe_run(fresh, package_default_policy(), "none", seed=1, quick=True)
    assert rate == pytest.approx(0.875, abs=0.04)
    budgeted = probe_run(fresh, package_default_policy(), OURS, seed=1, quick=True)
    assert budgeted < rate


def test_checks_and_tables() -> None:
    assert Check("target", "x", 1.1, "<=", 1.2).ok
    assert not Check("target", "x", math.nan, ">=", 0.0).ok
    assert "missed by 0.1" in Check("target", "x", 0.75, ">=", 0.85).margin
    assert fmt(math.nan) == "n/a"
    assert table(("a", "b"), [("1", "2")]) == ["| a | b |", "|---|---|", "| 1 | 2 |"]


def test_every_reference_resolves_inside_the_repository() -> None:
    """The results and the code cite REFERENCES.md, which must exist beside them."""
    root = Path(__file__).resolve().parent.parent / "benchmarks"
    assert (root / "storm" / "REFERENCES.md").is_file()
    for path in [*(root / "storm").glob("*.py"), root / "results" / "storm.md"]:
        assert "shared/reference" not in path.read_text(encoding="utf-8"), path
