"""Research: one-off investigations kept for whoever picks the question up again.

Not benchmarks: nothing here runs in CI, has goals, or writes to `benchmarks/results/`.
Each module says what question it answers and how to run it.
"""
