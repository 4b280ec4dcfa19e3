"""The goals as data, and the one evaluator that judges a run against them.

A `Goal` names a figure, the most it may be (every goal is "value <= limit"), and a
`measure` that reads the figure from the run's `Results`. The measures below cover
the timing groups; a probe brings its own. Each measurement module keeps its goals
next to what it measures (`GOALS` in `groups/*.py` and `probes/*.py`); `plan.py`
joins them into the table that `evaluate` walks.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from .fmt import signed, span
from .stats import Results, Row, Spread, paired

__all__ = ["Goal", "Measured", "Verdict", "evaluate"]


@dataclasses.dataclass(frozen=True)
class Measured:
    value: float
    text: str  # how the report shows it
    ci: tuple[float, float] | None = None  # ~95 % confidence interval of `value`, if any
    noise: str = ""  # the A/A control of the same group, or another word on precision


Measure = Callable[[Results], Measured | None]  # None: not measured in this run


@dataclasses.dataclass(frozen=True)
class Goal:
    name: str
    limit: float
    unit: str  # "µs", "ms", "B", "" ...
    measure: Measure

    @property
    def text(self) -> str:
        return f"≤ {self.limit:g} {self.unit}".rstrip() if self.limit else f"0 {self.unit}".rstrip()


@dataclasses.dataclass(frozen=True)
class Verdict:
    goal: Goal
    measured: Measured | None
    passed: bool | None  # None: not measured in this run (group left out, peer missing)
    note: str  # by how much it missed; whether the interval straddles the limit


def evaluate(goals: tuple[Goal, ...], results: Results) -> list[Verdict]:
    verdicts = []
    for goal in goals:
        m = goal.measure(results)
        if m is None:
            verdicts.append(Verdict(goal, None, None, ""))
            continue
        passed = m.value <= goal.limit
        note = ""
        if not passed:
            note = f"by {m.value - goal.limit:.3g} {goal.unit}".rstrip()
            if goal.unit and goal.limit > 0:  # a quantity: say how many times the limit
                note += f", {m.value / goal.limit:.2f} times the limit"
        if m.ci is not None and m.ci[0] <= goal.limit < m.ci[1]:
            note += ("; " if note else "") + "the interval straddles the limit: not resolved"
        verdicts.append(Verdict(goal, m, passed, note))
    return verdicts


# -- measures over the timing groups -------------------------------------------


def _row(results: Results, group: str, key: str) -> Row | None:
    return results.rows.get(group, {}).get(key)


def _delta_text(s: Spread, unit: str = "µs") -> str:
    return (
        f"{signed(s.median)} {unit} (95 % CI {signed(s.ci[0])}, {signed(s.ci[1])}; "
        f"rounds {signed(s.low)} to {signed(s.high)})"
    )


def _aa_delta(results: Results, group: str, per: int = 1) -> str:
    aa = _row(results, group, "A0")
    if aa is None:
        return ""
    d = aa.delta.scaled(1 / per)
    return f"A/A Δ {signed(d.median)} µs {span(signed(d.low), signed(d.high))}"


def added_us(group: str, key: str = "R", per: int = 1) -> Measure:
    """What `key` adds to the bare baseline A, µs per logical request (or per retry: `per`)."""

    def measure(results: Results) -> Measured | None:
        row = _row(results, group, key)
        if row is None:
            return None
        d = row.delta.scaled(1 / per)
        return Measured(d.median, _delta_text(d), d.ci, _aa_delta(results, group, per))

    return measure


def _share(added: float, reference_added: float) -> float:
    return added / reference_added if reference_added > 0 else math.inf


def cost_ratio(group: str, reference: str, key: str = "R") -> Measure:
    """`key`'s added cost over A divided by `reference`'s, paired round by round."""

    def measure(results: Results) -> Measured | None:
        row, ref = _row(results, group, key), _row(results, group, reference)
        if row is None or ref is None:
            return None
        us = results.timings[group].us
        base = us["A"]
        added = [v - b for v, b in zip(us[key], base, strict=True)]
        ref_added = [v - b for v, b in zip(us[reference], base, strict=True)]
        s = paired(added, ref_added, _share)
        text = (
            f"{s.median:.2f} (95 % CI {s.ci[0]:.2f}, {s.ci[1]:.2f}; "
            f"{signed(row.delta.median)} vs {signed(ref.delta.median)} µs)"
        )
        if unresolved := sum(r <= 0 for r in ref_added):
            text += f"; {reference} cost nothing measurable in {unresolved} rounds (ratio ∞)"
        return Measured(s.median, text, s.ci, _aa_delta(results, group))

    return measure


def _ratio_spread(s: Spread) -> str:
    return f"{s.median:.4f} {span(f'{s.low:.3f}', f'{s.high:.3f}')}"


def _controls(results: Results, group: str) -> list[tuple[str, Row]]:
    """The group's controls: A0 (identical to A) and F (a forwarding wrapper), if present."""
    names = {"A0": "A/A ratio", "F": "forwarding wrapper F"}
    rows = results.rows.get(group, {})
    return [(name, rows[key]) for key, name in names.items() if key in rows]


def ratio_to_bare(group: str, key: str = "R") -> Measure:
    """`key`'s time divided by the bare baseline A's, paired round by round."""

    def measure(results: Results) -> Measured | None:
        row = _row(results, group, key)
        if row is None:
            return None
        r = row.ratio
        delta = signed(row.delta.median)
        text = f"{r.median:.4f} (95 % CI {r.ci[0]:.4f}, {r.ci[1]:.4f}; Δ {delta} µs)"
        noise = [
            f"{name} {_ratio_spread(other.ratio)}" for name, other in _controls(results, group)
        ]
        return Measured(r.median, text, r.ci, "; ".join(noise))

    return measure


def max_new_connections(group: str, key: str = "R") -> Measure:
    def measure(results: Results) -> Measured | None:
        row = _row(results, group, key)
        if row is None or row.conns is None:
            return None
        return Measured(row.conns[1], f"{row.conns[1]:g} (max over rounds)")

    return measure


def counter(group: str, key: str, name: str) -> Measure:
    """A counter a configuration's check reported after the rounds (e.g. sleep calls)."""

    def measure(results: Results) -> Measured | None:
        t = results.timings.get(group)
        counters = t.counters.get(key) if t is not None else None
        if counters is None:
            return None
        others = "; ".join(f"{k}: {v:,.0f}" for k, v in counters.items() if k != name)
        text = f"{name}: {counters[name]:,.0f}" + (f" ({others})" if others else "")
        return Measured(counters[name], text)

    return measure
