"""`python benchmarks/overhead.py ...` still works: it runs `python -m benchmarks.overhead ...`.

The benchmark itself is the package `benchmarks/overhead/` (its `__init__.py` is the map).
"""

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parent.parent)  # the repository, not benchmarks/
    runpy.run_module("benchmarks.overhead", run_name="__main__", alter_sys=True)
