"""`python -m benchmarks.storm [--quick] [--check] [--out DIR] [--no-plots]`."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import __doc__ as package_doc
from .calibration import calibration_goals
from .checks import evaluate
from .export import jsonl
from .goals import GOALS
from .grid import DEFAULT_GRID, QUICK_GRID, run_all
from .plots import plot
from .render import render

RESULTS = Path(__file__).resolve().parent.parent / "results"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.storm", description=(package_doc or "").split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="reduced grid for CI")
    parser.add_argument("--check", action="store_true", help="assert the goals; exit 1 on a miss")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the results go")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(f"storm: {message}", file=sys.stderr)

    started = time.perf_counter()
    res = run_all(QUICK_GRID if args.quick else DEFAULT_GRID, log)
    log(f"simulation {time.perf_counter() - started:.1f} s")
    targets = evaluate("target", GOALS, res)
    model = evaluate("model", calibration_goals(res.grid.s1_sizes), res)
    text = render(res, targets, model)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "storm.md").write_text(text, encoding="utf-8")
    (args.out / "storm.jsonl").write_text(jsonl(res), encoding="utf-8")
    if not args.no_plots:
        for path in plot(res, args.out):
            log(f"wrote {path}")
    print(text, end="")
    if not args.check:
        return 0
    checks = targets + model
    failed = [c for c in checks if not c.ok]
    for c in failed:
        print(
            f"CHECK FAILED ({c.kind}): {c.name}: {c.measured:.4g}, wanted {c.op} "
            f"{c.bound:g} ({c.margin.strip('*')})",
            file=sys.stderr,
        )
    log(f"check: {len(checks) - len(failed)} of {len(checks)} bounds hold")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
