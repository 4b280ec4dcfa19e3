"""The package's targets: what its defaults must achieve in the simulation (issue 11's bars).

Fleet and probe numbers are judged on the worst seed (fleet) or on one seeded run
of many independent trials (probes). REFERENCES.md says where each bar comes from.
"""

from __future__ import annotations

from collections.abc import Callable

from .budgets import LEGACY, OURS
from .checks import Goal, Measure, mean, worst
from .grid import PKG, S2_PKG_ROWS, Results

FLEET_BOUNDED = (1, 10, 100, 1000)  # both targets; N = 3000 has the S4 target only
S3_AMP, S4_SUCCESS = 1.2, 0.85
PROBE_BOUNDS = {"i": 0.75, "ii": 0.97, "iii": 0.80, "iv": 0.95}
S2_LABEL = S2_PKG_ROWS[0][0]
Note = Callable[[Results], str]


def fleet(scenario: str, n: int, key: str, op: str, budget: str = OURS) -> Measure:
    return lambda res: worst(res.fleet[(scenario, n, budget)], key, op)


def pkg_run(table: str, key: str, budget: str = OURS) -> Measure:
    return lambda res: float(getattr(res, table)[(PKG, budget, "full")][key])


def s2_herd(key: str, op: str) -> Measure:
    return lambda res: worst(res.s2[(S2_LABEL, "spread")], key, op)


def s1_expo_over_full(res: Results) -> float:
    """Work of no jitter over full jitter, at the N >= 100 where it is smallest."""
    return min(
        res.s1[(n, "expo")][0] / res.s1[(n, "full")][0]
        for n, name in res.s1
        if name == "full" and n >= 100
    )


def probe(key: str, budget: str = OURS) -> Measure:
    return lambda res: res.probes[(key, budget)]


def _no_budget(table: str, key: str, digits: int) -> Note:
    return lambda res: f"no budget: {pkg_run(table, key, 'none')(res):.{digits}f}"


def _fleet_note(scenario: str, n: int, key: str) -> Note:
    def note(res: Results) -> str:
        runs = res.fleet.get((scenario, n, LEGACY))
        return "" if runs is None else f"v0.1.0 design: {mean(runs, key):.3f} (mean)"

    return note


def _probe_note(key: str) -> Callable[[Results], str]:
    """What the same probe gives without a budget and with the 0.1.0 budget."""

    def note(res: Results) -> str:
        others = [(b, res.probes.get((key, b))) for b in ("none", LEGACY)]
        return ", ".join(f"{b}: {v:.3f}" for b, v in others if v is not None)

    return note


GOALS: tuple[Goal, ...] = (
    Goal(
        "S3 amplification, 20 processes",
        pkg_run("s3", "amp_over"),
        "<=",
        S3_AMP,
        quick=True,
        note=_no_budget("s3", "amp_over", 2),
    ),
    Goal(
        "S4 success after the trigger, 20 processes",
        pkg_run("s4", "success_after"),
        ">=",
        S4_SUCCESS,
        quick=True,
        note=_no_budget("s4", "success_after", 3),
    ),
    *(
        Goal(
            f"S3 amplification, N = {n} (worst seed)",
            fleet("S3", n, "amp_over", "<="),
            "<=",
            S3_AMP,
            quick=n == 1000,
            note=_fleet_note("S3", n, "amp_over"),
        )
        for n in FLEET_BOUNDED
    ),
    *(
        Goal(
            f"S4 success after the trigger, N = {n} (worst seed)",
            fleet("S4", n, "success_after", ">="),
            ">=",
            S4_SUCCESS,
            quick=n == 1000,
            note=_fleet_note("S4", n, "success_after"),
        )
        for n in (*FLEET_BOUNDED, 3000)
    ),
    Goal(
        "S2 herd success (worst seed), RA + spread 0.5",
        s2_herd("success", ">="),
        ">=",
        0.95,
        quick=True,
    ),
    Goal(
        "S2 post-outage peak x capacity (worst seed)",
        s2_herd("peak_x", "<="),
        "<=",
        1.6,
        quick=True,
    ),
    Goal(
        "S1 work, expo / full jitter (min over N >= 100)", s1_expo_over_full, ">=", 2.0, quick=True
    ),
    Goal(
        "S5 bottom attempts per request, 3 layers x 4 attempts",
        lambda res: res.s5[(3, 4, OURS)],
        "<=",
        1.5,
        quick=True,
        note=lambda res: f"no budget: {res.s5[(3, 4, 'none')]:.0f}x",
    ),
    *(
        Goal(
            f"probe ({key}) success",
            probe(key),
            ">=",
            bound,
            quick=key in ("i", "ii", "iv"),
            note=_probe_note(key),
        )
        for key, bound in PROBE_BOUNDS.items()
    ),
)
