"""Overhead of `httpx_retrying.RetryTransport` against bare httpx and other retry layers.

    python -m benchmarks.overhead            # full run, about 17 minutes on 2 vCPUs
    python -m benchmarks.overhead --quick    # smoke run (seconds); its numbers mean nothing
    python -m benchmarks.overhead --quick --out /tmp/x

Writes `benchmarks/results/overhead.md` (or `<out>/overhead.md`) and prints it.
Nothing here is a timed test: CI runs `--quick` and asserts nothing about speed.

Where things are:

* `harness.py`: groups of configurations, interleaved rounds, the one timing loop, the A/A
  control; `stats.py`: paired medians and their confidence intervals.
* `groups/`: one module per group of interleaved measurements (`groups()` + `GOALS`).
* `probes/`: memory, import time and the retry-path profile (`PROBES` + `GOALS`).
* `goals.py`: the `Goal` row, the measures that read a figure from the results, `evaluate`.
* `plan.py`: which groups and probes run, in report order, and the joined goals table.
* `render.py`: the markdown report. `settings.py`: sizes of the full and quick runs.
* `fixtures.py`, `peers.py`: inner transports, the forwarding wrapper, and the layers compared.
* `loopback.py`, `loopback_server.py`: the real HTTP/1.1 server on 127.0.0.1 in a child process.
"""
