"""`python -m benchmarks.overhead [--quick] [--out DIR]`: run it all, write the report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import environment, peers, plan, render
from .goals import evaluate
from .harness import run_group
from .loopback import running
from .settings import FULL, QUICK
from .stats import Results

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts (CI smoke run)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for overhead.md")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--only", default="", help="comma-separated group and probe keys")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    wanted = set(filter(None, args.only.split(",")))

    started = time.perf_counter()
    digest = environment.source_digest()
    server_cpu, pinning = (None, "not pinned (--no-pin)") if args.no_pin else environment.pin()
    peers.quiet()
    load_before = environment.load()
    command = "python -m benchmarks.overhead" + (" --quick" if args.quick else "")
    print(f"{command}: running ...", file=sys.stderr, flush=True)

    with running(server_cpu) as server:
        groups = [g for g in plan.groups(settings, server) if not wanted or g.key in wanted]
        results = Results({g.key: run_group(g) for g in groups})
    for probe in plan.PROBES:
        if not wanted or probe.key in wanted:
            print(f"  {probe.key} ...", file=sys.stderr, flush=True)
            results.probes[probe.key] = probe.run(settings)

    unchanged = environment.source_digest() == digest
    meta = {
        "Command": f"`{command}`" + (f" (only: {args.only})" if wanted else ""),
        "Date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "Python": environment.python(),
        "Machine": environment.machine(pinning),
        "Load average (1 min) before / after": f"{load_before} / {environment.load()}",
        "Package source measured": f"{environment.source()}; sha256 of its .py files {digest}"
        + (
            ", unchanged during the run" if unchanged else " (**its files changed during the run**)"
        ),
        "Versions": environment.versions(),
        "Total runtime": f"{time.perf_counter() - started:.0f} s",
    }
    verdicts = evaluate(plan.GOALS, results)
    report = render.page(settings, meta, results, verdicts, plan.PROBES)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overhead.md").write_text(report, encoding="utf-8")
    print(report)
    print(f"written to {args.out / 'overhead.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
