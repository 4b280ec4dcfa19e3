"""Paired medians: what a group's rounds say, with how sure they can be.

Every figure is a median over rounds of a *paired* (same-round) difference or ratio
against the baseline A, so that a slow round slows A and the configuration alike;
each comes with its [min, max] over rounds and a distribution-free ~95 % confidence
interval of the median.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from .harness import Config, Timings


def median_ci(values: Sequence[float]) -> tuple[float, float]:
    """Distribution-free ~95 % confidence interval of the median (order statistics)."""
    ordered = sorted(values)
    n = len(ordered)
    half = 1.96 * math.sqrt(n) / 2
    low = math.floor(n / 2 - half) - 1  # 0-based ranks
    high = math.ceil(n / 2 + half)
    if low < 0 or high >= n:
        return ordered[0], ordered[-1]
    return ordered[low], ordered[high]


@dataclasses.dataclass(frozen=True)
class Spread:
    """A median over rounds, its [min, max] over rounds and its ~95 % confidence interval."""

    median: float
    low: float
    high: float
    ci: tuple[float, float]

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values), median_ci(values))

    def scaled(self, factor: float) -> Spread:
        ci = (self.ci[0] * factor, self.ci[1] * factor)
        return Spread(self.median * factor, self.low * factor, self.high * factor, ci)


def paired(
    values: Sequence[float], base: Sequence[float], op: Callable[[float, float], float]
) -> Spread:
    """`op(value, base)` per round (same-round pairs), summarised over rounds."""
    return Spread.of([op(v, b) for v, b in zip(values, base, strict=True)])


def difference(value: float, base: float) -> float:
    return value - base


def ratio(value: float, base: float) -> float:
    return value / base


@dataclasses.dataclass(frozen=True)
class Row:
    cfg: Config
    us: Spread  # µs per logical request
    delta: Spread  # paired difference to A, µs
    ratio: Spread  # paired ratio to A
    conns: tuple[float, float] | None  # new connections per logical request, [min, max]


def summarize(t: Timings) -> dict[str, Row]:
    base = t.us["A"]
    rows = {}
    for cfg in t.configs:
        values = t.us[cfg.key]
        conns = t.conns.get(cfg.key)
        rows[cfg.key] = Row(
            cfg,
            Spread.of(values),
            paired(values, base, difference),
            paired(values, base, ratio),
            (min(conns), max(conns)) if conns else None,
        )
    return rows


@dataclasses.dataclass
class Results:
    """Everything one run measured: the timing groups by key, and each probe's data by key."""

    timings: dict[str, Timings]
    probes: dict[str, Any] = dataclasses.field(default_factory=dict)

    @functools.cached_property
    def rows(self) -> dict[str, dict[str, Row]]:
        return {key: summarize(t) for key, t in self.timings.items()}
