"""Retry storms: a seeded discrete-event simulation of scenarios S1-S5, a fleet sweep and probes.

It drives the package's own objects (`RetryBudget`, the four backoff strategies,
the Retry-After rule, `RetryPolicy()` defaults) with a simulated clock and
seeded RNGs, and compares them with published budget algorithms simulated here
(REFERENCES.md says where each comes from).

    python -m benchmarks.storm            # full grid, fleet sweep, probes (a few minutes)
    python -m benchmarks.storm --quick    # reduced grid for CI (well under a minute)
    python -m benchmarks.storm --check    # also assert the goals; exit 1 on a miss
    python -m benchmarks.storm --out DIR  # where storm.md, storm.jsonl and the PNGs go

Output is byte-identical on every run: every random stream is `random.Random("<seed>")`,
the module-level `random` is never used and no wall-clock time reaches the output.

Modules: `model` (event heap, clients, servers), `policy` (the package's backoffs and
Retry-After rule), `budgets` (the package's budget, its 0.1.0 predecessor, reference
algorithms), `contention` (S1), `scenarios` (S2-S5), `probes`, `grid` (what runs),
`goals` and `calibration` (bounds as data), `checks` (one evaluator), `render`, `plots`.
"""
