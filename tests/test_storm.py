"""The retry-storm simulation keeps working, stays deterministic, and keeps its orderings.

`benchmarks/storm.py --quick` runs twice, in parallel subprocesses (about 2 s each, and
outside the coverage tracer, which would double that), with different hash seeds; the
first run also checks the issue's targets (`--check`). Only orderings and
the issue's bars are asserted, with margins: the numbers themselves belong to the default
grid's results file, not to a test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "storm.py"

pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="benchmarks/ is not in this checkout")


def _start(out: Path, hash_seed: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), "--quick", "--no-plots", "--out", str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two independent runs, side by side (one per core on a 2-core box)."""
    first, second = tmp_path_factory.mktemp("storm1"), tmp_path_factory.mktemp("storm2")
    procs = [_start(first, "0", "--check"), _start(second, "12345")]
    try:
        outputs = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-4000:]
    assert outputs[0][0] == (first / "storm.md").read_text(encoding="utf-8")
    return first, second


def _rows(out: Path) -> list[dict[str, Any]]:
    lines = (out / "storm.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _one(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [row for row in rows if all(row.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, len(found))
    return found[0]


def test_quick_mode_is_deterministic(runs: tuple[Path, Path]) -> None:
    first, second = runs
    for name in ("storm.md", "storm.jsonl"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    text = (first / "storm.md").read_text(encoding="utf-8")
    assert "Quick mode" in text
    assert "| target | measured | bound |" in text
    assert "**FAIL**" not in text


def test_quick_mode_orderings(runs: tuple[Path, Path]) -> None:
    rows = _rows(runs[0])
    pkg, ours = "package defaults", "ours"

    # S1: no jitter does far more work than full jitter, and no backoff more still.
    for n in (50, 100):

        def calls(name: str, n: int = n) -> float:
            return float(_one(rows, scenario="S1", n=n, strategy=name)["write_calls"])

        assert calls("expo") > 1.5 * calls("full")
        assert calls("nobackoff") > 1.5 * calls("full")

    # S2: the package's Retry-After spread keeps the post-outage peak near capacity;
    # without the spread the herd comes back in one instant.
    spread = _one(rows, scenario="S2", strategy=f"{pkg}: RA + spread 0.5")
    no_spread = _one(rows, scenario="S2", strategy="package, RA without spread")
    assert spread["success"] >= 0.95
    assert spread["peak_x"] <= 1.6
    assert no_spread["peak_x"] > 3 * spread["peak_x"]
    naive = _one(rows, scenario="S2", strategy="none", ra="ignore")
    jittered = _one(rows, scenario="S2", strategy="full", ra="ignore")
    assert naive["peak_x"] > 3 * jittered["peak_x"]

    # S3: without a budget retries nearly triple the load; RetryBudget() cuts them back.
    for policy in (pkg, "spec"):
        none = _one(rows, scenario="S3", policy=policy, budget="none")
        budgeted = _one(rows, scenario="S3", policy=policy, budget=ours)
        assert none["amp_over"] > 2.3
        assert budgeted["amp_over"] < 1.2
        assert budgeted["success_after"] > 0.98

    # S4: the unbudgeted storm outlives its trigger; the budgeted client recovers.
    assert _one(rows, scenario="S4", policy=pkg, budget="none")["success_after"] < 0.1
    assert _one(rows, scenario="S4", policy=pkg, budget=ours)["success_after"] > 0.8
    assert _one(rows, scenario="S4", policy="spec", budget="none")["amp_after"] > 2.5

    # S5: a budget per layer turns 4**3 and 3**5 into small numbers.
    def s5(layers: int, attempts: int, budget: str) -> float:
        row = _one(rows, scenario="S5", layers=layers, attempts=attempts, budget=budget)
        return float(row["bottom_per_request"])

    assert s5(3, 4, "none") == 64
    assert s5(5, 3, "none") == 243
    assert s5(3, 4, ours) < 1.5
    assert s5(5, 3, ours) < 2.0
