"""Calibration: the reference simulation's published bounds, to validate this simulator.

These judge the model, not the package: the reference algorithms (no budget,
sre_ratio10, tps20, grpc, aws_std, sre_adaptive_k2) must land where the
reference implementation measured them (REFERENCES.md, "Calibration bounds").
Full runs only: the quick grid lacks most of the rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from .budgets import OURS, REFERENCE_BUDGETS
from .checks import Goal, Measure, mean
from .grid import Results
from .policy import JITTERS
from .scenarios import S2_ORACLE_S

# S1 ratios to full jitter. Work floors: (N = 50, N >= 100).
S1_WORK_FLOORS = {"decorr": (1.08, 1.2), "expo": (1.7, 2.0), "nobackoff": (1.8, 2.7)}
S1_WORK_EQUAL = (0.92, 1.08)
S1_TIME_BOUNDS = (
    ("expo", ">=", 10.0),
    ("equal", ">=", 1.2),
    ("decorr", ">=", 0.70),
    ("decorr", "<=", 1.10),
    ("nobackoff", "<=", 0.6),
)
# S3 overload-phase amplification bands per reference budget.
S3_AMP_BOUNDS = (
    ("none", ">=", 2.6),
    ("none", "<=", 3.0),
    ("sre_ratio10", ">=", 1.08),
    ("sre_ratio10", "<=", 1.15),
    ("tps20", "<=", 1.35),
    ("aws_std", "<=", 1.2),
    ("grpc_10_0.1", "<=", 1.05),
)
S4_RECOVERING = ("sre_ratio10", "tps20", "grpc_10_0.1", "aws_std")
# S5: budget -> per-layer growth factor bound g (bottom attempts <= slack * g**L).
S5_GROWTH = {"sre_ratio10": (1.02, 1.111), "tps20": (1.02, 1.21)}
S5_FLAT = {"grpc_10_0.1": 1.01, "aws_std": 1.03}


def _s1_ratio(n: int, name: str, index: int) -> Measure:
    """S1 work (index 0) or time (index 1) of `name` over full jitter's, at N = n."""
    return lambda res: res.s1[(n, name)][index] / res.s1[(n, "full")][index]


def _s1_slope(name: str) -> Measure:
    """Log-log slope of S1 work from the smallest to the largest N."""

    def slope(res: Results) -> float:
        lo, hi = min(n for n, _ in res.s1), max(n for n, _ in res.s1)
        return math.log(res.s1[(hi, name)][0] / res.s1[(lo, name)][0]) / math.log(hi / lo)

    return slope


def _s2_mean(jitter: str, ra: str, key: str) -> Measure:
    return lambda res: mean(res.s2[(jitter, ra)], key)


def _s2_calls_vs_ignore(jitter: str, ra: str) -> Measure:
    return lambda res: (
        mean(res.s2[(jitter, ra)], "calls_per_success")
        / mean(res.s2[(jitter, "ignore")], "calls_per_success")
    )


def _spec(table: str, budget: str, jitter: str, key: str) -> Measure:
    return lambda res: float(getattr(res, table)[("spec", budget, jitter)][key])


def _s3_success_over_vs_none(budget: str, jitter: str) -> Measure:
    return lambda res: (
        res.s3[("spec", budget, jitter)]["success_over"]
        - res.s3[("spec", "none", jitter)]["success_over"]
    )


def _s3_jitter_spread(budget: str) -> Measure:
    def spread(res: Results) -> float:
        amps = [float(res.s3[("spec", budget, jitter)]["amp_over"]) for jitter in JITTERS]
        return max(amps) / min(amps) - 1

    return spread


def _s1_goals(sizes: tuple[int, ...]) -> Iterator[Goal]:
    for n in sizes:
        for name, (small, big) in S1_WORK_FLOORS.items():
            floor = big if n >= 100 else small
            yield Goal(f"S1 N={n} work {name}/full", _s1_ratio(n, name, 0), ">=", floor)
        low, high = S1_WORK_EQUAL
        yield Goal(f"S1 N={n} work equal/full", _s1_ratio(n, "equal", 0), ">=", low)
        yield Goal(f"S1 N={n} work equal/full", _s1_ratio(n, "equal", 0), "<=", high)
        for name, op, bound in S1_TIME_BOUNDS:
            yield Goal(f"S1 N={n} time {name}/full", _s1_ratio(n, name, 1), op, bound)
    yield Goal("S1 work slope, no backoff", _s1_slope("nobackoff"), ">=", 1.6)
    yield Goal("S1 work slope, full jitter", _s1_slope("full"), "<=", 1.4)


def _s2_goals() -> Iterator[Goal]:
    yield Goal("S2 none/ignore success", _s2_mean("none", "ignore", "success"), "<=", 0.5)
    yield Goal("S2 none/ignore peak", _s2_mean("none", "ignore", "peak_x"), ">=", 5.0)
    for jitter in ("full", "equal", "decorrelated"):
        yield Goal(f"S2 {jitter}/ignore success", _s2_mean(jitter, "ignore", "success"), ">=", 0.9)
        yield Goal(f"S2 {jitter}/ignore peak", _s2_mean(jitter, "ignore", "peak_x"), "<=", 1.6)
    for jitter in JITTERS:
        for ra in ("exact", "aws2026", "spread"):
            tag = f"S2 {jitter}/{ra}"
            outage = _s2_mean(jitter, ra, "calls_during_outage")
            yield Goal(f"{tag} calls during outage", outage, "==", 1.0)
            yield Goal(f"{tag} calls/success vs ignore", _s2_calls_vs_ignore(jitter, ra), "<=", 0.7)
            if ra != "spread":
                yield Goal(f"{tag} peak", _s2_mean(jitter, ra, "peak_x"), ">=", 5.0)
        calls = _s2_mean(jitter, "spread", "calls_per_success")
        makespan = _s2_mean(jitter, "spread", "makespan_s")
        yield Goal(f"S2 {jitter}/spread calls/success", calls, "<=", 2.05)
        yield Goal(f"S2 {jitter}/spread makespan s", makespan, "<=", 1.05 * S2_ORACLE_S)
        yield Goal(f"S2 {jitter}/spread peak", _s2_mean(jitter, "spread", "peak_x"), "<=", 1.3)


def _s3_goals() -> Iterator[Goal]:
    for jitter in JITTERS:
        for budget, op, bound in S3_AMP_BOUNDS:
            yield Goal(
                f"S3 {budget}/{jitter} amp", _spec("s3", budget, jitter, "amp_over"), op, bound
            )
        for budget in (*REFERENCE_BUDGETS[1:], OURS):
            tag = f"S3 {budget}/{jitter}"
            vs_none = _s3_success_over_vs_none(budget, jitter)
            yield Goal(f"{tag} success over - none's", vs_none, ">=", -0.02)
            if budget != "sre_adaptive_k2":
                after = _spec("s3", budget, jitter, "success_after")
                yield Goal(f"{tag} success after", after, ">=", 0.99)
        offered = _spec("s3", "sre_adaptive_k2", jitter, "load_vs_offered")
        yield Goal(f"S3 sre_adaptive_k2/{jitter} load / offered", offered, "<=", 0.7)
    for budget in (*REFERENCE_BUDGETS, OURS):
        yield Goal(f"S3 {budget} amp spread over jitters", _s3_jitter_spread(budget), "<=", 0.03)


def _s4_goals() -> Iterator[Goal]:
    for jitter in JITTERS:
        yield Goal(
            f"S4 none/{jitter} success after",
            _spec("s4", "none", jitter, "success_after"),
            "<=",
            0.05,
        )
        yield Goal(
            f"S4 none/{jitter} amp after", _spec("s4", "none", jitter, "amp_after"), ">=", 2.9
        )
        for budget in S4_RECOVERING:
            tag = f"S4 {budget}/{jitter}"
            success = _spec("s4", budget, jitter, "success_after")
            yield Goal(f"{tag} success after", success, ">=", 0.85)
            yield Goal(f"{tag} amp after", _spec("s4", budget, jitter, "amp_after"), "<=", 1.05)


def _s5_goals() -> Iterator[Goal]:
    for layers, attempts in ((3, 4), (5, 3)):
        tag = f"S5 {layers}x{attempts}"

        def bottom(budget: str, layers: int = layers, attempts: int = attempts) -> Measure:
            return lambda res: res.s5[(layers, attempts, budget)]

        yield Goal(f"{tag} none", bottom("none"), "==", float(attempts**layers))
        for budget, (slack, growth) in S5_GROWTH.items():
            yield Goal(f"{tag} {budget}", bottom(budget), "<=", slack * growth**layers)
        for budget, bound in S5_FLAT.items():
            yield Goal(f"{tag} {budget}", bottom(budget), "<=", bound)


def calibration_goals(s1_sizes: tuple[int, ...]) -> tuple[Goal, ...]:
    """Every calibration bound for a full run with these S1 sizes."""
    return (*_s1_goals(s1_sizes), *_s2_goals(), *_s3_goals(), *_s4_goals(), *_s5_goals())
