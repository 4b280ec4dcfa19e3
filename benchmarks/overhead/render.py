"""The report: one markdown page from a run's results, its goal verdicts and its probes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .fmt import signed, span, us
from .goals import Verdict
from .harness import Timings
from .probes import Probe
from .settings import Settings
from .stats import Results, Row

METHOD = [
    "* Every group interleaves its configurations round by round, rotating the starting "
    "position per round, after an untimed warm-up and validation round. A block is "
    "`gc.collect()` and one tight loop of N logical requests timed with `perf_counter_ns` "
    "(GC stays on), the same loop code for every configuration; every block checks that "
    "the last response is a 200 ([harness.py](../overhead/harness.py)).",
    "* median = median over rounds of µs per logical request; Δ and ratio = median over "
    "rounds of the *paired* (same-round) difference and ratio against A, with [min, max] "
    "over rounds. A0 is a second, identical baseline (the A/A control): its Δ and ratio "
    "are the noise floor of its group in this run.",
    "* Slow peers run fewer logical requests per block (the per-block N of each "
    "configuration is in its group's heading); µs per logical request stay comparable.",
    "* The configurations and the peers' settings: [peers.py](../overhead/peers.py); the "
    "in-memory inner transports and the forwarding wrapper F: "
    "[fixtures.py](../overhead/fixtures.py); each group's purpose: its module in "
    "[groups/](../overhead/groups/). Level (a) calls a transport directly, level (b) goes "
    "through `Client.get` over MockTransport, level (c) through `Client.get` to "
    "[loopback_server.py](../overhead/loopback_server.py), a keep-alive HTTP/1.1 server on "
    "127.0.0.1 in another process, pinned to another CPU.",
]

GOALS_INTRO = (
    "In the goals, A is the bare baseline, F a do-nothing forwarding wrapper and R "
    "`httpx_retrying.RetryTransport`. "
    "Each goal is a figure from this run and the most it may be ([goals.py](../overhead/goals.py); "
    "the rows live next to what they judge, in [groups/](../overhead/groups/) and "
    "[probes/](../overhead/probes/)). Paired medians come with a distribution-free ~95 % "
    "confidence interval of the median (order statistics over rounds); the verdict follows "
    "the median, and a row says so where the interval straddles the limit. The noise column "
    "is the A/A control of the same group."
)


def _counters(values: Mapping[str, float]) -> str:
    return "; ".join(f"{name}: {value:,.0f}" for name, value in values.items())


def _row_line(t: Timings, key: str, row: Row) -> str:
    cells = [
        f"{key} {row.cfg.label}",
        f"{us(row.us.median)} {span(us(row.us.low), us(row.us.high))}",
    ]
    if key == "A":
        cells += ["—"] + (["—"] if t.group.retries else []) + ["1.000"]
    else:
        d, r = row.delta, row.ratio
        cells.append(f"{signed(d.median)} {span(signed(d.low), signed(d.high))}")
        if t.group.retries:
            cells.append(signed(d.median / t.group.retries))
        cells.append(f"{r.median:.3f} {span(f'{r.low:.3f}', f'{r.high:.3f}')}")
    if row.conns is not None:
        low, high = row.conns
        cells.append(f"{low:g}" if low == high else f"{low:g} to {high:g}")
    cells.append(_counters(t.counters.get(key, {})))
    return "| " + " | ".join(cells) + " |"


def group_section(t: Timings, rows: Mapping[str, Row]) -> list[str]:
    g = t.group
    columns = [("cfg", "---"), (f"µs / {g.unit}, median [min, max]", "---:")]
    columns.append(("Δ vs A, µs [min, max]", "---:"))
    if g.retries:
        columns.append(("Δ per retry, µs", "---:"))
    columns.append(("ratio to A [min, max]", "---"))
    if t.conns:
        columns.append((f"new conns / {g.unit}", "---:"))
    columns.append(("notes", "---"))
    scaled = [f"{c.key} {t.block_size(c):,}" for c in t.configs if c.scale != 1]
    sizes = f"{g.size.rounds} rounds; N = {g.size.n:,} {g.unit}s per block"
    sizes += f" ({', '.join(scaled)})" if scaled else ""
    lines = [f"### {g.title}", "", f"{sizes}; {t.seconds:.0f} s. {g.note}".rstrip(), ""]
    lines.append("| " + " | ".join(name for name, _ in columns) + " |")
    lines.append("|" + "|".join(align for _, align in columns) + "|")
    lines += [_row_line(t, key, row) for key, row in rows.items()]
    lines += [f"\n*Left out:* {note}" for note in t.skipped]
    return [*lines, ""]


def goals_table(verdicts: Sequence[Verdict]) -> list[str]:
    lines = ["| goal | limit | measured | result | noise |", "|---|---|---|---|---|"]
    for v in verdicts:
        result = {True: "PASS", False: "**MISS**", None: "not measured in this run"}[v.passed]
        if v.note:
            result += f" ({v.note})"
        measured, noise = (v.measured.text, v.measured.noise) if v.measured else ("—", "")
        lines.append(f"| {v.goal.name} | {v.goal.text} | {measured} | {result} | {noise} |")
    return lines


def page(
    settings: Settings,
    meta: Mapping[str, str],
    results: Results,
    verdicts: Sequence[Verdict],
    probes: Sequence[Probe],
) -> str:
    quick = (
        " **Quick mode: tiny counts, the numbers below mean nothing.**" if settings.quick else ""
    )
    out = [
        "# Overhead of httpx_retrying.RetryTransport",
        "",
        "Generated by `python -m benchmarks.overhead` ([benchmarks/overhead/](../overhead/)); "
        f"do not edit by hand, rerun it.{quick}",
        "",
        "## Environment",
        "",
        *(f"* {key}: {value}" for key, value in meta.items()),
        "",
        "## Method",
        "",
        *METHOD,
        "",
        "## Goals",
        "",
        GOALS_INTRO,
        "",
        *goals_table(verdicts),
        "",
        "## Results",
        "",
    ]
    timings = results.timings.values()
    out += _sections(results, [t for t in timings if not t.group.analysis])
    out += _probes(settings, results, [p for p in probes if not p.analysis])
    out += [
        "## What the remaining cost is made of",
        "",
        "Analysis, not goals: single operations a retry can involve, each timed alone with "
        "the same harness (Δ vs A is the cost of one operation), then a cProfile of the retry "
        "path, which says which of them the package calls and how often.",
        "",
    ]
    out += _sections(results, [t for t in timings if t.group.analysis])
    out += _probes(settings, results, [p for p in probes if p.analysis])
    return "\n".join(out)


def _sections(results: Results, timings: Sequence[Timings]) -> list[str]:
    return [line for t in timings for line in group_section(t, results.rows[t.group.key])]


def _probes(settings: Settings, results: Results, probes: Sequence[Probe]) -> list[str]:
    found: dict[str, Any] = results.probes
    return [line for p in probes if p.key in found for line in p.section(settings, found[p.key])]
