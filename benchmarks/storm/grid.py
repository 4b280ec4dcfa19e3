"""What a run simulates (the full grid or the quick one) and the results it collects."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .budgets import LEGACY, OURS, REFERENCE_BUDGETS, TIMEOUTS_PAY
from .contention import S1_NAMES, s1_run
from .policy import JITTERS, RA_MODES, package_default_policy, s2_policy, s34_policy
from .probes import PROBES, probe_run
from .scenarios import S3_LOAD, S4_LOAD, overload_run, s2_run, s5_run

PKG = "package defaults"  # RetryPolicy() + RetryBudget() (one budget per client process)
FLEET_BUDGETS = ("none", LEGACY, OURS)


@dataclass(frozen=True)
class Grid:
    quick: bool = False
    s1_sizes: tuple[int, ...] = (50, 100, 150)
    s1_reps: int = 20
    s2_seeds: tuple[int, ...] = (1, 2, 3)
    s2_jitters: tuple[str, ...] = JITTERS
    s2_ra: tuple[str, ...] = RA_MODES
    s34_budgets: tuple[str, ...] = ("none", OURS, *REFERENCE_BUDGETS[1:])
    s34_jitters: tuple[str, ...] = JITTERS
    s3_scale: float = 1.0  # the 20-process S3 runs' durations x this
    fleet_sizes: tuple[int, ...] = (1, 10, 100, 1000, 3000, 10000)
    fleet_budgets: tuple[str, ...] = (*FLEET_BUDGETS, TIMEOUTS_PAY)
    fleet_seeds: tuple[int, ...] = (1, 2, 3)
    probe_budgets: tuple[str, ...] = FLEET_BUDGETS
    s5_top: int = 20_000
    s5_top_unbudgeted: int = 500  # exactly a**L per request: a smaller run gives the same mean
    s5_budgets: tuple[str, ...] = ("none", "sre_ratio10", "tps20", "grpc_10_0.1", "aws_std", OURS)


DEFAULT_GRID = Grid()
QUICK_GRID = Grid(
    quick=True,
    s1_sizes=(50, 100),
    s1_reps=4,
    s2_seeds=(1,),
    s2_jitters=("none", "full"),
    s2_ra=("ignore", "spread"),
    s34_budgets=("none", OURS),
    s34_jitters=("full",),
    s3_scale=0.3,
    fleet_sizes=(1000,),  # unscaled: amplification depends on requests per process
    fleet_budgets=(OURS,),
    fleet_seeds=(1,),
    probe_budgets=(OURS,),
    s5_top=2_000,
    s5_top_unbudgeted=100,
)

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

Run = dict[str, Any]


@dataclass
class Results:
    grid: Grid
    s1: dict[tuple[int, str], tuple[float, float]] = field(default_factory=dict)
    s2: dict[tuple[str, str], list[Run]] = field(default_factory=dict)
    s3: dict[tuple[str, str, str], Run] = field(default_factory=dict)
    s4: dict[tuple[str, str, str], Run] = field(default_factory=dict)
    fleet: dict[tuple[str, int, str], list[Run]] = field(default_factory=dict)  # over seeds
    probes: dict[tuple[str, str], float] = field(default_factory=dict)
    s5: dict[tuple[int, int, str], float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # stderr only, never in output

    @property
    def quick(self) -> bool:
        return self.grid.quick


def run_all(grid: Grid, log: Callable[[str], None]) -> Results:
    res = Results(grid)
    steps: tuple[tuple[str, Callable[[Results], None]], ...] = (
        ("S1", _s1),
        ("S2", _s2),
        ("S3/S4", _s34),
        ("fleet", _fleet),
        ("probes", _probes),
        ("S5", _s5),
    )
    for name, step in steps:
        started = time.perf_counter()
        step(res)
        res.seconds[name] = time.perf_counter() - started
        log(f"{name} {res.seconds[name]:.1f} s")
    return res


def _s1(res: Results) -> None:
    for n in res.grid.s1_sizes:
        for name in S1_NAMES:
            res.s1[(n, name)] = s1_run(n, name, 1, res.grid.s1_reps)


def _s2(res: Results) -> None:
    grid = res.grid
    for jitter in grid.s2_jitters:
        for ra in grid.s2_ra:
            policy = s2_policy(jitter, ra)
            res.s2[(jitter, ra)] = [s2_run(policy, "none", seed) for seed in grid.s2_seeds]
    for label, changes, budget, shared in S2_PKG_ROWS:
        policy = package_default_policy(**changes)
        res.s2[(label, policy.ra)] = [
            s2_run(policy, budget, seed, shared_budget=shared) for seed in grid.s2_seeds
        ]


def _s34(res: Results) -> None:
    grid, pkg_policy = res.grid, package_default_policy(timeout_ms=200.0)
    for load, out in ((S3_LOAD.scaled(grid.s3_scale), res.s3), (S4_LOAD, res.s4)):
        for budget in grid.s34_budgets:
            for jitter in grid.s34_jitters:
                out[("spec", budget, jitter)] = overload_run(load, s34_policy(jitter), budget, 1)
        for budget in ("none", OURS):
            out[(PKG, budget, pkg_policy.backoff)] = overload_run(load, pkg_policy, budget, 1)


def _fleet(res: Results) -> None:
    grid, pkg_policy = res.grid, package_default_policy(timeout_ms=200.0)
    for processes in grid.fleet_sizes:
        for budget in grid.fleet_budgets:
            for load in (S3_LOAD, S4_LOAD):
                res.fleet[(load.name, processes, budget)] = [
                    overload_run(load, pkg_policy, budget, seed, processes)
                    for seed in grid.fleet_seeds
                ]


def _probes(res: Results) -> None:
    policy = package_default_policy()
    for probe in PROBES:
        for budget in res.grid.probe_budgets:
            res.probes[(probe.key, budget)] = probe_run(probe, policy, budget, 1, res.quick)


def _s5(res: Results) -> None:
    grid = res.grid
    for layers, attempts in ((3, 4), (5, 3)):
        for budget in grid.s5_budgets:
            n_top = grid.s5_top_unbudgeted if budget == "none" else grid.s5_top
            res.s5[(layers, attempts, budget)] = s5_run(layers, attempts, budget, n_top)
