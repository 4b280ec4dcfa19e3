"""The measuring harness: interleaved rounds, one timing loop, paired medians, the A/A control.

A `Group` compares a few `Config`s (ways of making one logical request). Each round
runs one block of every configuration, starting one position later than the round
before (A B C, B C A, C A B, ...), so that a drift of the machine hits every
configuration alike. A block is `gc.collect()` and one tight loop of N calls timed
with `perf_counter_ns`; every configuration goes through the same loop code. The
baseline A has an identical twin A0 (`control`): what A0 differs from A by is the
noise of that group in that run, the floor under which no difference is resolved.
`stats.py` turns the rounds into paired medians.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import importlib.util
import inspect
import itertools
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from .settings import Size

HAS_TRIO = importlib.util.find_spec("trio") is not None  # without it, trio groups are left out

perf_counter_ns = time.perf_counter_ns


class BenchmarkError(RuntimeError):
    """A block did not do what it was supposed to (wrong status, request count, ...)."""


class ServerCounts(Protocol):
    def stats(self) -> tuple[int, int]:
        """(connections, requests) the server has counted so far."""
        ...


@dataclasses.dataclass
class Config:
    key: str
    label: str
    call: Callable[[Any], Any]  # one logical request: `call(arg)` or `await call(arg)`
    arg: Any = None
    scale: float = 1.0  # this configuration runs round(N * scale) logical requests per block
    requests: int = 1  # server-side requests per logical request (checked on loopback)
    # After the rounds: counters to report (e.g. sleep calls), or BenchmarkError if the
    # configuration did not do what it was measured for.
    check: Callable[[], Mapping[str, float]] | None = None


def control(make: Callable[[str, str], Config], label: str) -> list[Config]:
    """The baseline A and its A/A control A0: two configurations built the same way."""
    return [make("A", label), make("A0", f"{label}, again (A/A)")]


@dataclasses.dataclass
class Built:
    configs: list[Config]
    skipped: list[str] = dataclasses.field(default_factory=list)  # e.g. a peer not installed
    cleanup: Callable[[], Any] | None = None  # sync, or returns an awaitable


@dataclasses.dataclass(frozen=True)
class Group:
    key: str
    title: str
    mode: str  # "sync", "asyncio" or "trio"
    size: Size
    build: Callable[[], Built]  # called inside the group's event loop, if any
    retries: int = 0  # retries per logical request (retry paths: 2)
    server: ServerCounts | None = None  # loopback: count requests and connections per block
    note: str = ""
    analysis: bool = False  # rendered under "What the remaining cost is made of"
    unit: str = "logical request"


def sync_and_async(
    key: str, title: str, size: Size, build: Callable[[bool], Callable[[], Built]], **more: Any
) -> list[Group]:
    """The same group in both modes: `<key>-sync`, and `<key>-async` under asyncio.

    `title` may say `{mode}`; `build(async_)` returns the group's builder.
    """
    return [
        Group(f"{key}-sync", title.format(mode="sync"), "sync", size, build(False), **more),
        Group(f"{key}-async", title.format(mode="async"), "asyncio", size, build(True), **more),
    ]


@dataclasses.dataclass
class Timings:
    """What one run of a group measured: µs per logical request, per configuration per round."""

    group: Group
    configs: list[Config]
    skipped: list[str] = dataclasses.field(default_factory=list)
    us: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    conns: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    counters: dict[str, Mapping[str, float]] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    def block_size(self, cfg: Config, warmup: bool = False) -> int:
        n = max(1, round(self.group.size.n * cfg.scale))
        return max(1, n // 10) if warmup else n


def rotated(items: Sequence[Any], round_: int) -> list[Any]:
    """The order of one round: round r starts at position r (the warm-up round -1 at 0)."""
    start = max(round_, 0) % len(items)
    return [*items[start:], *items[:start]]


def _blocks(t: Timings) -> Iterator[tuple[int, Config, int]]:
    for round_ in range(-1, t.group.size.rounds):  # round -1: untimed warm-up and validation
        for cfg in rotated(t.configs, round_):
            yield round_, cfg, t.block_size(cfg, warmup=round_ < 0)


def _check_ok(result: Any, where: str) -> None:
    if getattr(result, "status_code", None) != 200:
        raise BenchmarkError(f"{where}: expected a final 200, got {result!r}")


def _time_sync(call: Callable[[Any], Any], arg: Any, n: int) -> tuple[int, Any]:
    """The one timing loop of every sync configuration."""
    gc.collect()
    result = None
    loop = itertools.repeat(None, n)
    start = perf_counter_ns()
    for _ in loop:
        result = call(arg)
    return perf_counter_ns() - start, result


async def _time_async(call: Callable[[Any], Any], arg: Any, n: int) -> tuple[int, Any]:
    """The one timing loop of every async configuration, inside one running event loop."""
    gc.collect()
    result = None
    loop = itertools.repeat(None, n)
    start = perf_counter_ns()
    for _ in loop:
        result = await call(arg)
    return perf_counter_ns() - start, result


def _record(
    t: Timings, cfg: Config, round_: int, n: int, timed: tuple[int, Any], before: Any
) -> None:
    elapsed, result = timed
    _check_ok(result, f"{t.group.key}/{cfg.key}")
    conns = None
    if before is not None:
        assert t.group.server is not None
        after = t.group.server.stats()
        requests = after[1] - before[1]
        if requests != n * cfg.requests:
            raise BenchmarkError(
                f"{t.group.key}/{cfg.key}: the server saw {requests} requests, "
                f"expected {n} x {cfg.requests}"
            )
        conns = (after[0] - before[0]) / n
    if round_ >= 0:
        t.us.setdefault(cfg.key, []).append(elapsed / n / 1000)
        if conns is not None:
            t.conns.setdefault(cfg.key, []).append(conns)


def _run_sync(t: Timings) -> None:
    server = t.group.server
    for round_, cfg, n in _blocks(t):
        before = None
        if server is not None:  # one untimed request: an expired keep-alive is not counted
            _check_ok(cfg.call(cfg.arg), f"{t.group.key}/{cfg.key} warm-up")
            before = server.stats()
        _record(t, cfg, round_, n, _time_sync(cfg.call, cfg.arg, n), before)


async def _run_async(t: Timings) -> None:
    server = t.group.server
    for round_, cfg, n in _blocks(t):
        before = None
        if server is not None:
            _check_ok(await cfg.call(cfg.arg), f"{t.group.key}/{cfg.key} warm-up")
            before = server.stats()
        _record(t, cfg, round_, n, await _time_async(cfg.call, cfg.arg, n), before)


def _finish(t: Timings) -> None:
    for cfg in t.configs:
        if cfg.check is not None:
            t.counters[cfg.key] = cfg.check()


async def _run_in_loop(group: Group) -> Timings:
    built = group.build()
    try:
        t = Timings(group, built.configs, built.skipped)
        await _run_async(t)
        _finish(t)
        return t
    finally:
        if built.cleanup is not None and inspect.isawaitable(done := built.cleanup()):
            await done


def run_group(group: Group) -> Timings:
    """Build the group's configurations, run its rounds, and check every configuration."""
    started = time.perf_counter()
    print(f"  {group.key}: {group.title} ...", file=sys.stderr, flush=True)
    if group.mode == "sync":
        built = group.build()
        try:
            t = Timings(group, built.configs, built.skipped)
            _run_sync(t)
            _finish(t)
        finally:
            if built.cleanup is not None:
                built.cleanup()
    elif group.mode == "trio":
        import trio

        t = trio.run(_run_in_loop, group)
    else:
        t = asyncio.run(_run_in_loop(group))
    t.seconds = time.perf_counter() - started
    return t
