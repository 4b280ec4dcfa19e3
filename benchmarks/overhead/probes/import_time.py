"""Import time: what `import httpx_retrying` adds to `import httpx`, in fresh processes."""

from __future__ import annotations

import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx_retrying

from ..goals import Goal, Measured
from ..settings import Settings
from ..stats import Results, Spread
from . import Probe

CODE = "import httpx; import httpx_retrying"
SOURCE_ROOT = Path(httpx_retrying.__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class ImportCost:
    ms: Spread  # cumulative time of the `httpx_retrying` entry, per process
    httpx_ms: float  # median of `import httpx` itself
    modules: int  # modules imported beyond httpx's
    heaviest: list[tuple[float, str]]  # (median self ms, module), largest first
    runs: int


def _importtime(pycache: str) -> dict[str, tuple[int, int]]:
    """{module: (self µs, cumulative µs)} from `python -X importtime -c CODE`, fresh process.

    Bytecode caches go to `pycache` (PYTHONPYCACHEPREFIX), written by an untimed first run:
    an installed package imports from its caches, and the repository is left untouched.
    """
    unset = ("PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["PYTHONPYCACHEPREFIX"] = pycache
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", CODE],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=SOURCE_ROOT,  # `-c` imports from its cwd first: the same package as measured here
        timeout=60,
    )
    found: dict[str, tuple[int, int]] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative, name = line[len("import time:") :].split("|")
        found.setdefault(name.strip(), (int(self_us), int(cumulative)))
    return found


def measure(settings: Settings) -> ImportCost:
    totals, httpx_totals = [], []
    selves: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="httpx-retrying-pycache-") as pycache:
        _importtime(pycache)  # untimed: writes the bytecode caches
        for _ in range(settings.import_runs):
            found = _importtime(pycache)
            totals.append(found["httpx_retrying"][1] / 1000)
            httpx_totals.append(found["httpx"][1] / 1000)
            names = list(found)  # the modules `import httpx_retrying` brings in come after httpx
            for name in names[names.index("httpx") + 1 :]:
                selves.setdefault(name, []).append(found[name][0] / 1000)
    heaviest = sorted(((statistics.median(v), m) for m, v in selves.items()), reverse=True)
    return ImportCost(
        Spread.of(totals), statistics.median(httpx_totals), len(selves), heaviest[:8], len(totals)
    )


def section(settings: Settings, cost: ImportCost) -> list[str]:
    ms = cost.ms
    return [
        "## Import time",
        "",
        f"`python -X importtime -c '{CODE}'`, {cost.runs} fresh processes: cumulative time of "
        "the `httpx_retrying` entry, i.e. what it adds on top of `import httpx`: median "
        f"**{ms.median:.2f} ms** (min {ms.low:.2f}, max {ms.high:.2f}); `import httpx` itself: "
        f"{cost.httpx_ms:.1f} ms. Bytecode caches are warm (`PYTHONPYCACHEPREFIX` in a temporary "
        f"directory, written by an untimed first run). {cost.modules} modules are imported "
        "beyond httpx's; the largest by median self time: "
        + ", ".join(f"{m} {t:.2f} ms" for t, m in cost.heaviest)
        + ".",
        "",
    ]


def _median_ms(results: Results) -> Measured | None:
    cost = results.probes.get("import")
    if cost is None:
        return None
    ms = cost.ms
    text = (
        f"{ms.median:.2f} ms (95 % CI {ms.ci[0]:.2f}, {ms.ci[1]:.2f}; "
        f"runs {ms.low:.2f} to {ms.high:.2f})"
    )
    return Measured(ms.median, text, ms.ci, f"{cost.runs} fresh processes")


PROBES = (Probe("import", measure, section),)
GOALS = (Goal("Import time added by `import httpx_retrying` (median)", 10, "ms", _median_ms),)
