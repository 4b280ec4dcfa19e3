"""Kept for old commands: `python benchmarks/storm.py ARGS` = `python -m benchmarks.storm ARGS`.

The simulation is the package `benchmarks/storm/` (see its `__init__.py`).
"""

import runpy
import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # the repository root, not benchmarks/
runpy.run_module("benchmarks.storm", run_name="__main__", alter_sys=True)
