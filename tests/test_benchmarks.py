"""The overhead benchmark's harness, goals and report, checked on small fake results.

Not a timed test and no run of the benchmark (CI runs `python -m benchmarks.overhead
--quick` once): these check the pieces that turn timings into verdicts.
"""

from __future__ import annotations

import dataclasses
import re
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from benchmarks.overhead import harness, plan, render
from benchmarks.overhead.goals import Goal, added_us, cost_ratio, counter, evaluate
from benchmarks.overhead.harness import (
    BenchmarkError,
    Built,
    Config,
    Group,
    Timings,
    control,
    rotated,
    run_group,
)
from benchmarks.overhead.probes import Probe
from benchmarks.overhead.probes.import_time import ImportCost
from benchmarks.overhead.probes.memory import Growth
from benchmarks.overhead.probes.profile import REPOSITORY, where
from benchmarks.overhead.settings import FULL, QUICK, Settings, Size, smoke
from benchmarks.overhead.stats import Results, median_ci, summarize

RESULTS = REPOSITORY / "benchmarks" / "results"
OK = httpx.Response(200)


def timings(us: dict[str, list[float]], key: str = "g", **group: Any) -> Timings:
    """A group's timings as if measured: µs per logical request, per configuration per round."""
    rounds = len(next(iter(us.values())))
    g = Group(key, f"group {key}", "sync", Size(10, rounds), lambda: Built([]), **group)
    return Timings(g, [Config(k, f"config {k}", lambda _: OK) for k in us], us=us)


# -- harness -------------------------------------------------------------------


def test_each_round_starts_one_configuration_later() -> None:
    order = ["A", "B", "C"]
    assert [rotated(order, r) for r in (-1, 0, 1, 2, 3)] == [
        ["A", "B", "C"],  # the warm-up round
        ["A", "B", "C"],
        ["B", "C", "A"],
        ["C", "A", "B"],
        ["A", "B", "C"],
    ]


@pytest.mark.parametrize("mode", ["sync", "asyncio"])
def test_run_group_interleaves_blocks_and_records_each_timed_round(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(harness, "gc", SimpleNamespace(collect=lambda: 0))  # fast in a big heap
    calls: list[str] = []
    cleaned: list[str] = []

    def config(key: str, label: str = "") -> Config:
        def call(arg: Any) -> Any:
            calls.append(key)
            return OK

        async def acall(arg: Any) -> Any:
            return call(arg)

        return Config(
            key, label, acall if mode == "asyncio" else call, scale=2 if key == "B" else 1
        )

    def build() -> Built:
        return Built([*control(config, "bare"), config("B")], cleanup=lambda: cleaned.append("x"))

    t = run_group(Group("g", "a group", mode, Size(10, 3), build))
    blocks = [calls[i] for i in range(len(calls)) if i == 0 or calls[i] != calls[i - 1]]
    assert blocks == ["A", "A0", "B", "A", "A0", "B", "A0", "B", "A", "B", "A", "A0"]
    # Warm-up blocks are a tenth of N; the timed ones N, or N x scale.
    assert calls.count("A") == 1 + 3 * 10
    assert calls.count("B") == 2 + 3 * 20
    assert {key: len(values) for key, values in t.us.items()} == {"A": 3, "A0": 3, "B": 3}
    assert cleaned == ["x"]


def test_a_block_that_does_not_end_in_a_200_stops_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "gc", SimpleNamespace(collect=lambda: 0))

    def build() -> Built:
        return Built([Config("A", "bare", lambda _: httpx.Response(503))])

    with pytest.raises(BenchmarkError, match="expected a final 200"):
        run_group(Group("g", "a group", "sync", Size(5, 1), build))


def test_median_confidence_interval_uses_order_statistics() -> None:
    assert median_ci([3.0, 1.0, 2.0]) == (1.0, 3.0)  # too few rounds: the whole range
    assert median_ci([float(v) for v in range(1, 22)]) == (6.0, 16.0)


def test_differences_and_ratios_are_paired_round_by_round() -> None:
    # Unpaired, R and A have the same median (2.0); paired, R costs 1.0 more per round.
    rows = summarize(timings({"A": [1.0, 2.0, 3.0], "A0": [1.0, 2.0, 3.0], "R": [2.0, 2.0, 6.0]}))
    r = rows["R"]
    assert (r.us.median, r.delta.median, r.ratio.median) == (2.0, 1.0, 2.0)
    assert (r.delta.low, r.delta.high) == (0.0, 3.0)
    assert rows["A0"].delta.median == 0.0


# -- goals ---------------------------------------------------------------------


def test_the_evaluator_passes_misses_and_says_what_it_could_not_measure() -> None:
    results = Results({"g": timings({"A": [1.0, 1.0, 1.0], "A0": [1.0, 1.1, 0.9], "R": [1.1] * 3})})
    goals = (
        Goal("cheap enough", 0.2, "µs", added_us("g")),
        Goal("too strict", 0.05, "µs", added_us("g")),
        Goal("missing group", 1.0, "µs", added_us("other")),
    )
    passed, missed, unmeasured = evaluate(goals, results)
    assert passed.passed is True
    assert passed.measured is not None
    assert passed.measured.value == pytest.approx(0.1)
    assert "A/A Δ" in passed.measured.noise
    assert missed.passed is False
    assert missed.note.startswith("by 0.05 µs, 2.00 times the limit")
    assert unmeasured.passed is None


def test_an_interval_straddling_the_limit_is_called_unresolved() -> None:
    results = Results({"g": timings({"A": [1.0] * 5, "R": [1.0, 1.05, 1.1, 1.15, 1.2]})})
    (verdict,) = evaluate((Goal("noisy", 0.12, "µs", added_us("g")),), results)
    assert verdict.passed is True
    assert "not resolved" in verdict.note


def test_cost_ratio_divides_added_costs_in_the_same_round() -> None:
    us = {"A": [1.0, 2.0, 1.0], "F": [2.0, 3.0, 2.0], "R": [3.0, 5.0, 5.0]}
    (verdict,) = evaluate(
        (Goal("R / F", 2.0, "", cost_ratio("g", "F")),), Results({"g": timings(us)})
    )
    assert verdict.measured is not None
    assert verdict.measured.value == 3.0  # per round: 2/1, 3/1, 4/1
    assert verdict.passed is False


def test_a_counter_goal_reads_what_the_check_reported() -> None:
    t = timings({"A": [1.0], "R": [2.0]})
    t.counters["R"] = {"sleep calls": 2, "retries": 10}
    (verdict,) = evaluate(
        (Goal("no sleep", 0, "", counter("g", "R", "sleep calls")),), Results({"g": t})
    )
    assert verdict.passed is False
    assert verdict.measured is not None
    assert verdict.measured.text == "sleep calls: 2 (retries: 10)"


def test_every_goal_of_the_plan_is_measured_from_a_group_or_probe_it_runs() -> None:
    class Server:
        base = "http://127.0.0.1:1"

        def stats(self) -> tuple[int, int]:
            return 0, 0

    groups = plan.groups(QUICK, Server())  # type: ignore[arg-type]
    assert len({g.key for g in groups}) == len(groups)
    results = Results({})
    for g in groups:
        t = timings({key: [1.0, 2.0] for key in ("A", "A0", "F", "R", "B")}, g.key)
        t.conns = {"R": [0.0, 0.0]}
        t.counters = {"R": {"sleep calls": 0}}
        results.timings[g.key] = t
    results.probes["memory"] = {m: Growth(0, 0, 0, (1, 2)) for m in ("sync", "async (asyncio)")}
    results.probes["import"] = ImportCost(summarize(timings({"A": [1.0]}))["A"].us, 1.0, 1, [], 1)
    results.probes["preload-memory"] = {
        "10 bytes": (100, 200),
        "at the limit": (1_048_676, 2_000_000),
        "one byte over": (300, 400),
    }
    verdicts = evaluate(plan.GOALS, results)
    assert [v.goal.name for v in verdicts if v.passed is None] == []
    assert len({goal.name for goal in plan.GOALS}) == len(plan.GOALS)


# -- settings, report ----------------------------------------------------------


def test_the_quick_run_is_the_full_run_shrunk() -> None:
    assert isinstance(QUICK, Settings)
    assert QUICK.quick
    assert not FULL.quick
    sizes = [
        (getattr(FULL, f), getattr(QUICK, f))
        for f in vars(FULL)
        if isinstance(getattr(FULL, f), Size)
    ]
    assert sizes
    assert all(quick.rounds == 2 and quick.n <= full.n for full, quick in sizes)
    one_download = dataclasses.replace(FULL, success=Size(1, 7))
    assert smoke(one_download).success == Size(1, 2)  # never more than the full run


def test_the_report_renders_a_small_run() -> None:
    results = Results(
        {"g": timings({"A": [1.0, 1.0, 1.0], "A0": [1.0] * 3, "R": [1.5] * 3}, retries=2)}
    )
    results.timings["g"].counters["R"] = {"sleep calls": 0}
    results.probes["p"] = 42
    verdicts = evaluate((Goal("R per retry", 0.2, "µs", added_us("g", per=2)),), results)
    probe = Probe("p", lambda s: 0, lambda s, data: ["## A probe", "", f"data {data}", ""])
    page = render.page(QUICK, {"Command": "`x`"}, results, verdicts, [probe])
    assert "**Quick mode" in page
    assert "| R per retry | ≤ 0.2 µs | +0.250 µs" in page
    assert "**MISS** (by 0.05 µs, 1.25 times the limit)" in page
    assert "| Δ per retry, µs |" in page
    assert "| R config R | 1.500 [1.500, 1.500] | +0.500 [+0.500, +0.500] | +0.250 |" in page
    assert "sleep calls: 0 |" in page
    assert "## A probe\n\ndata 42" in page
    assert_links_resolve(page)


def assert_links_resolve(markdown: str) -> None:
    """Every relative link of a report in `benchmarks/results/` names a file of this repository."""
    links = re.findall(r"\]\(([^)#]+)\)", markdown)
    assert links
    for link in links:
        target = (RESULTS / link).resolve()
        assert target.is_relative_to(REPOSITORY), link
        assert target.exists(), link


def test_every_link_in_the_committed_report_resolves_inside_the_repository() -> None:
    assert_links_resolve((RESULTS / "overhead.md").read_text(encoding="utf-8"))


def test_profile_rows_name_repository_files_by_path_and_others_by_module() -> None:
    inside = REPOSITORY / "httpx_retrying" / "_call.py"
    assert where(str(inside), 7, "f") == "httpx_retrying/_call.py:7(f)"
    site = "/venv/lib/python3.11/site-packages/httpx/_models.py"
    assert where(site, 9, "close") == "httpx._models:9(close)"
    assert where("/usr/lib/python3.11/contextlib.py", 1, "g") == "contextlib:1(g)"
    assert where("~", 0, "<built-in method builtins.max>") == "<built-in method builtins.max>"
