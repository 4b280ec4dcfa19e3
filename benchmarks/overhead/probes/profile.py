"""Where the retry path's time goes: cProfile of `RetryTransport(FlakyTransport())`, sync."""

from __future__ import annotations

import cProfile
import dataclasses
import itertools
import pstats
from pathlib import Path

from ..fixtures import FlakyTransport, new_request
from ..peers import ours
from ..settings import Settings
from . import Probe

REPOSITORY = Path(__file__).resolve().parents[3]


@dataclasses.dataclass(frozen=True)
class Profile:
    total_us: float  # per logical request, under the profiler
    rows: list[tuple[str, float, float, float]]  # (function, calls, own µs, share %) per request


def where(filename: str, line: int, name: str) -> str:
    """A function's place: a path inside this repository, else a dotted module name."""
    if filename == "~":
        return name  # a builtin
    path = Path(filename).resolve()
    if path.is_relative_to(REPOSITORY):
        return f"{path.relative_to(REPOSITORY).as_posix()}:{line}({name})"
    parts = path.with_suffix("").parts
    # Installed packages below site-packages; the standard library below lib/python3.X.
    roots = [
        i
        for i, part in enumerate(parts)
        if part.endswith("-packages") or part.startswith("python3")
    ]
    module = ".".join(parts[roots[-1] + 1 :] if roots else parts[-1:])
    return f"{module}:{line}({name})"


def measure(settings: Settings) -> Profile:
    transport, request = ours(FlakyTransport(), retry_path=True), new_request()
    for _ in range(100):
        transport.handle_request(request)
    n = settings.profile_n
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in itertools.repeat(None, n):
        transport.handle_request(request)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = [
        (where(*place), calls / n, tottime / n * 1e6, tottime / total * 100)
        for place, (_, calls, tottime, _, _) in stats.stats.items()  # type: ignore[attr-defined]
    ]
    rows.sort(key=lambda row: row[2], reverse=True)
    return Profile(total / n * 1e6, rows[:16])


def section(settings: Settings, profile: Profile) -> list[str]:
    lines = [
        "### Where the retry path's time goes (cProfile)",
        "",
        f"cProfile of {settings.profile_n:,} logical requests (503, 503, 200; zero backoff; "
        "`RetryBudget(ratio=2.0)`) through `RetryTransport(FlakyTransport())`, sync. cProfile "
        f"adds its own cost per call (total here {profile.total_us:.1f} µs per logical request, "
        "against the unprofiled R row of the retry path), so read the shares, not the absolute "
        "values. Top functions by own time:",
        "",
        "| function | calls / logical request | own µs / logical request | share |",
        "|---|---:|---:|---:|",
    ]
    for name, calls, own, share in profile.rows:
        lines.append(f"| `{name}` | {calls:g} | {own:.2f} | {share:.1f} % |")
    return [*lines, ""]


PROBES = (Probe("profile", measure, section, analysis=True),)
GOALS = ()
