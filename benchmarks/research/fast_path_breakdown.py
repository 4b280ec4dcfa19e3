"""Research, not run in CI: the package's success path rebuilt one step at a time.

Question: of what `RetryTransport` adds to a first-try success, how much is any
Python wrapper (F, a do-nothing forwarding transport), and how much each step of
the fast path? V1 forwards through a stored bound method; each later step adds
one piece of the package's fast path to the step before it (V4n is V4 with the
other way to tick a counter). R is the package itself. Read each step's Δ against
the row above it.

    python -m benchmarks.research.fast_path_breakdown [--quick] [--show-source]

The steps are generated from one template, as `timeit` does, so that each is
inline code (no helper call of its own to time) and no step is written twice.
They mirror the fast path as of this module's last edit; when the package's fast
path changes, change `STEPS`.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable
from typing import Any

import httpx

from benchmarks.overhead.fixtures import ForwardingTransport, NullTransport, new_request, sender
from benchmarks.overhead.harness import Built, Config, Group, control, run_group
from benchmarks.overhead.peers import ours
from benchmarks.overhead.render import group_section
from benchmarks.overhead.settings import FULL, QUICK
from benchmarks.overhead.stats import summarize

#: (key, what the step adds, the pieces it has). Pieces: see `_body`.
STEPS = (
    ("V1", "a wrapper forwarding through a stored bound method", ()),
    ("V2", "V1 + try/except TransportError + `status < floor`", ("checked",)),
    ("V3", 'V2 + `request.extensions.get("retry")`', ("checked", "extensions")),
    ("V4", "V3 + a budget tick via `count().__next__`", ("checked", "extensions", "tick")),
    ("V4n", "V3 + a budget tick via `next(counter)`", ("checked", "extensions", "next")),
)


class _Step(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """What every step holds: the inner transport's bound methods, a floor, a counter."""

    def __init__(self, inner: Any) -> None:
        self._send = inner.handle_request
        self._asend = inner.handle_async_request
        self._transport_error = httpx.TransportError
        self._floor = 408
        self._counter = itertools.count()
        self._tick = self._counter.__next__


def _body(pieces: tuple[str, ...], call: str) -> list[str]:
    lines = []
    if "extensions" in pieces:
        lines += ['if request.extensions.get("retry") is not None:', "    raise AssertionError"]
    if "tick" in pieces:
        lines.append("self._tick()")
    if "next" in pieces:
        lines.append("next(self._counter)")
    if "checked" not in pieces:
        return [*lines, f"return {call}"]
    return [
        *lines,
        "try:",
        f"    response = {call}",
        "except self._transport_error:",
        "    raise",
        "if response.status_code < self._floor:",
        "    return response",
        "raise AssertionError",
    ]


def source(pieces: tuple[str, ...]) -> str:
    """The sync and async methods of one step, as Python source."""
    methods = []
    for prefix, name, call in (
        ("", "handle_request", "self._send(request)"),
        ("async ", "handle_async_request", "await self._asend(request)"),
    ):
        body = "\n".join(f"    {line}" for line in _body(pieces, call))
        methods.append(f"{prefix}def {name}(self, request):\n{body}\n")
    return "\n".join(methods)


def step_class(key: str, pieces: tuple[str, ...]) -> type[_Step]:
    namespace: dict[str, Any] = {}
    exec(compile(source(pieces), f"<step {key}>", "exec"), namespace)
    return type(f"Step{key}", (_Step,), namespace)


def build(async_: bool) -> Callable[[], Built]:
    def bare(key: str, label: str) -> Config:
        return Config(key, label, sender(NullTransport(), async_), new_request())

    def config(key: str, label: str, transport: Any) -> Config:
        return Config(key, label, sender(transport, async_), new_request())

    def build() -> Built:
        steps = [
            config(key, label, step_class(key, pieces)(NullTransport()))
            for key, label, pieces in STEPS
        ]
        forwarding = ForwardingTransport(NullTransport())
        configs = [
            *control(bare, "bare inner transport"),
            config("F", "do-nothing forwarding wrapper (as in the benchmark)", forwarding),
            *steps,
            config("R", "httpx_retrying.RetryTransport", ours(NullTransport(), retry_path=False)),
        ]
        return Built(configs)

    return build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts: checks it runs")
    parser.add_argument("--show-source", action="store_true", help="print the generated steps")
    args = parser.parse_args(argv)
    if args.show_source:
        for key, label, pieces in STEPS:
            print(f"# {key}: {label}\n{source(pieces)}")
    size = (QUICK if args.quick else FULL).success
    for mode, async_ in (("sync", False), ("asyncio", True)):
        title = f"Success path, {mode}: the fast path step by step"
        timings = run_group(Group(f"breakdown-{mode}", title, mode, size, build(async_)))
        print("\n".join(group_section(timings, summarize(timings))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
