"""The overhead benchmark keeps working: `benchmarks/overhead.py --quick` runs and writes a table.

Not a timed test: nothing here looks at the numbers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "overhead.py"


@pytest.mark.skipif(not SCRIPT.exists(), reason="benchmarks/ is not part of this checkout")
def test_overhead_quick_writes_a_table(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=55,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = (out / "overhead.md").read_text(encoding="utf-8")
    assert report.strip() in proc.stdout  # printed as well as written
    assert "Quick mode" in report
    assert "| target | goal | measured | result |" in report
    # One results table per group, each with the bare baseline and the package's row.
    assert report.count("| cfg |") >= 10
    assert "| A bare inner transport |" in report
    assert "| R httpx_retrying.RetryTransport" in report
    assert "## Memory" in report
    assert "## Import time" in report
