"""storm.jsonl: one JSON line per simulated run, for other tools to read."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .grid import PKG, Results


def jsonl(res: Results) -> str:
    """One JSON line per run (per seed), sorted keys, floats rounded to 6 places."""
    return "".join(json.dumps(row, sort_keys=True) + "\n" for row in _rows(res))


def _clean(metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (round(v, 6) if isinstance(v, float) else v)
        for k, v in metrics.items()
        if not isinstance(v, list)
    }


def _rows(res: Results) -> Iterable[dict[str, Any]]:
    for (n, name), (calls, ms) in res.s1.items():
        yield {
            "scenario": "S1",
            "n": n,
            "strategy": name,
            "seed": 1,
            "write_calls": round(calls, 6),
            "time_ms": round(ms, 6),
        }
    for (label, ra), runs in res.s2.items():
        for seed, run in zip(res.grid.s2_seeds, runs, strict=True):
            yield {"scenario": "S2", "strategy": label, "ra": ra, "seed": seed, **_clean(run)}
    for key, overload in (("S3", res.s3), ("S4", res.s4)):
        for (pol, budget, jitter), run in overload.items():
            yield {
                "scenario": key,
                "policy": pol,
                "budget": budget,
                "strategy": jitter,
                "seed": 1,
                "processes": 20,
                **_clean(run),
            }
    for (key, n, budget), runs in res.fleet.items():
        for seed, run in zip(res.grid.fleet_seeds, runs, strict=True):
            yield {
                "scenario": key,
                "policy": PKG,
                "budget": budget,
                "strategy": "full",
                "seed": seed,
                "processes": n,
                **_clean(run),
            }
    for (probe, budget), success in res.probes.items():
        yield {
            "scenario": "probe",
            "probe": probe,
            "budget": budget,
            "seed": 1,
            "success": round(success, 6),
        }
    for (layers, attempts, budget), value in res.s5.items():
        yield {
            "scenario": "S5",
            "layers": layers,
            "attempts": attempts,
            "budget": budget,
            "bottom_per_request": round(value, 6),
        }
