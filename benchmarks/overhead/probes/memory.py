"""Memory: no growth over a million successful requests, and the peak of one retried request."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import itertools
import tracemalloc
from collections.abc import Callable, Generator
from typing import Any

from ..fixtures import NullTransport, flaky_mock, new_request
from ..goals import Goal, Measure, Measured
from ..harness import BenchmarkError
from ..peers import NAMES, around, bare_three, collect, httpx_retries_transport, ours
from ..settings import Settings
from ..stats import Results
from . import Probe

#: Traced-memory growth treated as noise over a long run (allocator bookkeeping, an int
#: counter growing a digit): anything kept per request would show as >= 900 kB at 1M.
NOISE_BYTES = 4096
ASYNC = "async (asyncio)"


@dataclasses.dataclass(frozen=True)
class Growth:
    first: int  # traced bytes above the start after `mem_first` requests
    total: int  # ... after `mem_total` requests
    peak: int
    requests: tuple[int, int]  # (mem_first, mem_total)


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def _readings(first: int, total: int) -> Generator[int, None, Growth]:
    """The measurement, as a generator: yields how many requests to make next.

    A sync and an async driver make the requests, so that the async ones run inside one
    event loop while the readings are taken by the same code.
    """
    yield 1000  # warm-up: caches, lazy imports
    tracemalloc.start()
    try:
        base = _traced()
        yield first
        after_first = _traced() - base
        yield total - first
        after_total = _traced() - base
        peak = tracemalloc.get_traced_memory()[1] - base
        return Growth(after_first, after_total, peak, (first, total))
    finally:
        tracemalloc.stop()


def _drive(
    readings: Generator[int, None, Growth], send: Callable[[Any], Any], request: Any
) -> Growth:
    try:
        while True:
            for _ in itertools.repeat(None, readings.send(None)):
                send(request)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def _adrive(
    readings: Generator[int, None, Growth], send: Callable[[Any], Any], request: Any
) -> Growth:
    try:
        while True:
            for _ in itertools.repeat(None, readings.send(None)):
                await send(request)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def growth(settings: Settings) -> dict[str, Growth]:
    """Through one `RetryTransport(NullTransport())` with the default budget, sync and async."""
    first, total = settings.mem_first, settings.mem_total
    transport, request = ours(NullTransport(), retry_path=False), new_request()
    sync = _drive(_readings(first, total), transport.handle_request, request)
    asend = transport.handle_async_request
    return {"sync": sync, ASYNC: asyncio.run(_adrive(_readings(first, total), asend, request))}


def growth_section(settings: Settings, found: dict[str, Growth]) -> list[str]:
    lines = [
        "## Memory",
        "",
        "Traced memory (`tracemalloc`, after `gc.collect()`) above the start, for "
        f"{settings.mem_total:,} successful requests through one transport (in-memory inner "
        "transport, default budget):",
        "",
        f"| mode | after {settings.mem_first:,} | after {settings.mem_total:,} | growth | "
        "peak during the run |",
        "|---|---:|---:|---:|---:|",
    ]
    for mode, g in found.items():
        lines.append(
            f"| {mode} | {g.first:,} B | {g.total:,} B | {g.total - g.first:+,} B | {g.peak:,} B |"
        )
    return [*lines, ""]


def retry_peak(settings: Settings) -> list[tuple[str, int, int]]:
    """(layer, peak, retained) for one retried request (503, 503, 200), sync, after warm-up."""
    layers: list[tuple[str, Callable[[Any], Any]]] = [
        ("3 bare attempts (MockTransport)", bare_three(flaky_mock().handle_request)),
        ("httpx_retrying.RetryTransport", ours(flaky_mock(), retry_path=True).handle_request),
    ]

    def peer(key: str) -> Any:
        if key == "B":
            return NAMES[key], httpx_retries_transport(flaky_mock()).handle_request
        return NAMES[key], around(key, False, flaky_mock().handle_request)

    layers += collect(peer)[0]
    rows = []
    for label, call in layers:
        for _ in range(5):  # warm-up: lazy imports, caches
            call(new_request())
        request = new_request()
        tracemalloc.start()
        try:
            base = _traced()
            tracemalloc.reset_peak()
            response = call(request)
            peak = tracemalloc.get_traced_memory()[1] - base
            retained = _traced() - base
        finally:
            tracemalloc.stop()
        if response.status_code != 200:
            raise BenchmarkError(f"retry memory, {label}: expected a final 200, got {response!r}")
        rows.append((label, peak, retained))
    return rows


def retry_peak_section(settings: Settings, rows: list[tuple[str, int, int]]) -> list[str]:
    lines = [
        "One retried request (503, 503, 200 from a MockTransport with fresh responses; sync; "
        "zero backoff), after warm-up: the traced peak during the call and what is still "
        "allocated while the final response is held (for httpx_retrying: the response's "
        "`retry_history` keeps the two released 503 responses and their events):",
        "",
        "| layer | peak | retained with the response |",
        "|---|---:|---:|",
    ]
    lines += [f"| {label} | {peak:,} B | {retained:,} B |" for label, peak, retained in rows]
    return [*lines, ""]


def _growth_measure(mode: str) -> Measure:
    def measure(results: Results) -> Measured | None:
        g = results.probes.get("memory", {}).get(mode)
        if g is None:
            return None
        first, total = g.requests
        text = f"{g.total - g.first:+,} B from request {first:,} to {total:,}"
        return Measured(g.total - g.first, f"{text} ({g.first:,} B → {g.total:,} B traced)")

    return measure


PROBES = (
    Probe("memory", growth, growth_section),
    Probe("retry-memory", retry_peak, retry_peak_section),
)
GOALS = (
    Goal("Memory, sync: growth over the run", NOISE_BYTES, "B", _growth_measure("sync")),
    Goal("Memory, async: growth over the run", NOISE_BYTES, "B", _growth_measure(ASYNC)),
)
