"""PNG plots next to storm.md (needs matplotlib, from the `bench` extra; skipped without it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .budgets import LEGACY, OURS, TIMEOUTS_PAY
from .checks import mean
from .contention import S1_NAMES
from .goals import S3_AMP, S4_SUCCESS
from .grid import PKG, S2_PKG_ROWS, Results
from .scenarios import S2_CAP_PER_BUCKET, S2_OUTAGE_MS, S4_LOAD

Saver = Callable[[Any, str], None]


def plot(res: Results, out_dir: Path) -> list[Path]:
    """Write every plot this run has data for; return their paths (none without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written: list[Path] = []

    def save(fig: Any, name: str) -> None:
        path = out_dir / name
        fig.tight_layout()
        fig.savefig(path, dpi=100, metadata={"Software": None})  # byte-stable PNGs
        plt.close(fig)
        written.append(path)

    for draw in (_s1, _s2, _s3_bars, _s4_goodput, _fleet):
        draw(res, plt, save)
    return written


def _s1(res: Results, plt: Any, save: Saver) -> None:
    sizes = sorted({n for n, _ in res.s1})
    fig, (work, span) = plt.subplots(1, 2, figsize=(10, 4))
    for name in S1_NAMES:
        work.plot(sizes, [res.s1[(n, name)][0] for n in sizes], marker="o", label=name)
        span.plot(sizes, [res.s1[(n, name)][1] for n in sizes], marker="o", label=name)
    for ax, title in ((work, "S1 server write calls"), (span, "S1 completion time, ms")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("clients N")
        ax.set_title(title)
        ax.legend(fontsize=8)
    save(fig, "storm_s1.png")


def _s2(res: Results, plt: Any, save: Saver) -> None:
    fig, ax = plt.subplots(figsize=(10, 4))
    shown = (
        (("none", "ignore"), "spec, no jitter, RA ignored"),
        (("full", "ignore"), "spec, full jitter, RA ignored"),
        (("full", "exact"), "spec, full jitter, RA exact"),
        ((S2_PKG_ROWS[0][0], "spread"), "package defaults (RA + spread 0.5)"),
        ((S2_PKG_ROWS[2][0], "spread"), "package, RA without spread"),
    )
    for key, label in shown:
        if key in res.s2:
            buckets = res.s2[key][0]["buckets"][:100]
            ax.step([i / 10 for i in range(len(buckets))], buckets, where="post", label=label)
    ax.axhline(S2_CAP_PER_BUCKET, color="black", linestyle="--", label="capacity")
    ax.axvline(S2_OUTAGE_MS / 1000, color="grey", linestyle=":")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("time, s (outage until 2 s)")
    ax.set_ylabel("arrivals per 100 ms")
    ax.set_title("S2 herd, seed 1")
    ax.legend(fontsize=8)
    save(fig, "storm_s2.png")


def _s3_bars(res: Results, plt: Any, save: Saver) -> None:
    fig, (amp, rec) = plt.subplots(1, 2, figsize=(11, 4))
    keys = sorted((k for k in res.s3 if k[2] == "full"), key=lambda k: k[0] != PKG)
    labels = [f"{'pkg ' if pol == PKG else ''}{budget}" for pol, budget, _ in keys]
    for ax, table, metric, bound, title in (
        (amp, res.s3, "amp_over", S3_AMP, "S3 overload-phase amplification (full jitter)"),
        (rec, res.s4, "success_after", S4_SUCCESS, "S4 after-phase success (full jitter)"),
    ):
        ax.bar(labels, [table[k][metric] for k in keys])
        ax.axhline(bound, color="red", linestyle="--", label=f"target {bound:g}")
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=60, labelsize=8)
        ax.legend(fontsize=8)
    save(fig, "storm_s3.png")


def _s4_goodput(res: Results, plt: Any, save: Saver) -> None:
    fig, ax = plt.subplots(figsize=(10, 4))
    for pol, budget, jitter in res.s4:
        if jitter == "full" and budget in ("none", OURS, "sre_ratio10"):
            series = res.s4[(pol, budget, jitter)]["ok_per_s"]
            name = "package defaults" if pol == PKG else "spec"
            ax.plot(range(len(series)), series, label=f"{name} / {budget}")
    ax.set_xlabel("time, s")
    ax.set_ylabel("successes per second")
    trigger_end = S4_LOAD.over_end_ms / 1000
    ax.set_title(f"S4 goodput (capacity 500/s; the 2x trigger ends at {trigger_end:g} s)")
    ax.legend(fontsize=8)
    save(fig, "storm_s4.png")


def _fleet(res: Results, plt: Any, save: Saver) -> None:
    """S3 amplification and S4 recovery against the number of processes: the fleet sweep."""
    sizes = sorted({n for _, n, _ in res.fleet})
    if len(sizes) < 2:
        return
    fig, (amp, rec) = plt.subplots(1, 2, figsize=(11, 4))
    names = {
        "none": "no budget",
        LEGACY: "v0.1.0 default",
        OURS: "RetryBudget() now",
        TIMEOUTS_PAY: "now, if the first request's timeout retries paid",
    }
    for budget in res.grid.fleet_budgets:
        for ax, scenario, metric in ((amp, "S3", "amp_over"), (rec, "S4", "success_after")):
            values = [mean(res.fleet[(scenario, n, budget)], metric) for n in sizes]
            ax.plot(sizes, values, marker="o", label=names.get(budget, budget))
    for ax, bound, title in (
        (amp, S3_AMP, "S3 amplification in the overload (target <= 1.2 up to N = 1000)"),
        (rec, S4_SUCCESS, "S4 success after the trigger (target >= 0.85 up to N = 3000)"),
    ):
        ax.axhline(bound, color="red", linestyle="--", label=f"target {bound:g}")
        ax.set_xscale("log")
        ax.set_xlabel("client processes N (same total load)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    save(fig, "storm_s34_fleet.png")
