"""One evaluator for every bound: a goal is data (a name, a measure, an operator, a bound)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .grid import Results, Run

Measure = Callable[[Results], float]


@dataclass(frozen=True)
class Goal:
    """A bound on one measured number; `quick` goals are asserted by `--quick` runs too."""

    name: str
    measure: Measure
    op: str  # "<=", ">=", "=="
    bound: float
    quick: bool = False
    note: Callable[[Results], str] | None = None


@dataclass(frozen=True)
class Check:
    """A goal, measured: `kind` is "target" (the package's bar) or "model" (calibration)."""

    kind: str
    name: str
    measured: float
    op: str
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


def evaluate(kind: str, goals: Iterable[Goal], res: Results) -> list[Check]:
    """Measure every goal this run can judge (a quick run judges only its `quick` goals)."""
    return [
        Check(
            kind,
            goal.name,
            goal.measure(res),
            goal.op,
            goal.bound,
            goal.note(res) if goal.note else "",
        )
        for goal in goals
        if goal.quick or not res.quick
    ]


def mean(runs: Iterable[Run], key: str) -> float:
    return statistics.fmean(run[key] for run in runs)


def worst(runs: Sequence[Run], key: str, op: str) -> float:
    """The seed that comes closest to failing a bound with operator `op`."""
    values = [float(run[key]) for run in runs]
    return max(values) if op == "<=" else min(values)
