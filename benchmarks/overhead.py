"""Overhead of `httpx_retrying.RetryTransport` against bare httpx and other retry layers.

One command, one run, every configuration of a group interleaved round by round
(A B C D, B C D A, ...: the starting position rotates per round), medians and
paired (same-round) ratios against the bare baseline, and an A/A control (a
second bare configuration) in every group so that jitter can be told from a
real difference. The results are printed as markdown and written to
`<out>/overhead.md` (default: `benchmarks/results/overhead.md`).

    python benchmarks/overhead.py            # full run, about 7 minutes on 2 vCPUs
    python benchmarks/overhead.py --quick    # a few seconds; only keeps the script working
    python benchmarks/overhead.py --quick --out /tmp/x

Levels: (a) a direct `transport.handle_request(request)` call on a minimal inner
transport (and on `httpx.MockTransport`); (b) `Client.get` over MockTransport;
(c) a real keep-alive HTTP/1.1 server on 127.0.0.1 in another process
(`_loopback_server.py`). Peers (httpx-retries, stamina: the optional `bench`
extra) are skipped with a note when they are not importable. Nothing here is a
timed test: `--quick` numbers mean nothing, and CI asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import functools
import gc
import importlib.metadata
import inspect
import itertools
import math
import os
import platform
import pstats
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import tenacity

from httpx_retrying import RetryBudget, RetryEvent, RetryPolicy, RetryTransport

try:
    import httpx_retries
except ImportError:  # the optional `bench` extra is not installed
    httpx_retries = None
try:
    import stamina
except ImportError:
    stamina = None
try:
    import trio
except ImportError:
    trio = None

HERE = Path(__file__).resolve().parent
SERVER_SCRIPT = HERE / "_loopback_server.py"
DEFAULT_OUT = HERE / "results"

URL = "http://bench.local/ok"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
UNAVAILABLE_BODY = b"unavailable"  # 11 bytes, as the loopback server sends
MISSING_PEER = "not importable (install the `bench` extra)"

perf_counter_ns = time.perf_counter_ns


class BenchmarkError(RuntimeError):
    """A block did not do what it was supposed to (wrong status, request count, ...)."""


class RetryableStatusError(Exception):
    """Raised inside a stamina attempt for a retryable status (stamina retries on exceptions)."""


# ---------------------------------------------------------------------------
# Settings


@dataclasses.dataclass(frozen=True)
class Settings:
    quick: bool
    rounds_a: int  # level (a), success path
    n_a: int
    rounds_a_mock: int  # level (a) over MockTransport
    n_a_mock: int
    rounds_a_retry: int  # level (a), retry and connect-error paths
    n_a_retry: int
    rounds_breakdown: int
    n_components: int
    rounds_b: int
    n_b: int
    rounds_c: int
    n_c: int
    n_c_retry: int
    mem_first: int
    mem_total: int
    import_runs: int
    profile_n: int


FULL = Settings(
    quick=False,
    rounds_a=21,
    n_a=400_000,
    rounds_a_mock=11,
    n_a_mock=20_000,
    rounds_a_retry=15,
    n_a_retry=40_000,
    rounds_breakdown=15,
    n_components=100_000,
    rounds_b=151,
    n_b=200,
    rounds_c=9,
    n_c=1_000,
    n_c_retry=300,
    mem_first=100_000,
    mem_total=1_000_000,
    import_runs=15,
    profile_n=20_000,
)
QUICK = Settings(
    quick=True,
    rounds_a=2,
    n_a=2_000,
    rounds_a_mock=2,
    n_a_mock=100,
    rounds_a_retry=2,
    n_a_retry=200,
    rounds_breakdown=2,
    n_components=1_000,
    rounds_b=2,
    n_b=50,
    rounds_c=2,
    n_c=20,
    n_c_retry=10,
    mem_first=1_000,
    mem_total=10_000,
    import_runs=2,
    profile_n=200,
)


# ---------------------------------------------------------------------------
# Inner transports for level (a)


class NullTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The cheapest inner transport: returns one prebuilt 200 response."""

    def __init__(self) -> None:
        self._response = httpx.Response(200, content=b"ok")

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._response


class FlakyTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Answers 503, 503, 200, 503, 503, 200, ... from prebuilt responses.

    `is_closed` is reset on each use so that a layer that releases a response
    pays for a real `close()`.
    """

    def __init__(self) -> None:
        self._responses = (
            httpx.Response(503, content=UNAVAILABLE_BODY),
            httpx.Response(503, content=UNAVAILABLE_BODY),
            httpx.Response(200, content=b"ok"),
        )
        self._next = 0
        self.calls = 0

    def _attempt(self) -> httpx.Response:
        i = self._next
        self._next = 0 if i == 2 else i + 1
        self.calls += 1
        response = self._responses[i]
        response.is_closed = False
        return response

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._attempt()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._attempt()


class RefusingTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Raises `httpx.ConnectError` twice, then returns a prebuilt 200; repeats."""

    def __init__(self) -> None:
        self._response = httpx.Response(200, content=b"ok")
        self._next = 0
        self.calls = 0

    def _attempt(self, request: httpx.Request) -> httpx.Response:
        i = self._next
        self._next = 0 if i == 2 else i + 1
        self.calls += 1
        if i < 2:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return self._response

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._attempt(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._attempt(request)


def _ok_handler(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"ok")


# -- success-path breakdown: the package's fast path rebuilt one step at a time


class _Forward(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Step 1: a wrapper that only forwards to the inner transport."""

    def __init__(self, inner: Any) -> None:
        self._send = inner.handle_request
        self._asend = inner.handle_async_request
        self._transport_error = httpx.TransportError
        self._floor = 408
        self._counter = itertools.count()
        self._record = self._counter.__next__

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._send(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._asend(request)


class _Checked(_Forward):
    """Step 2: + `try/except TransportError` and one status comparison."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = self._send(request)
        except self._transport_error:
            raise
        if response.status_code < self._floor:
            return response
        raise BenchmarkError("unreachable")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self._asend(request)
        except self._transport_error:
            raise
        if response.status_code < self._floor:
            return response
        raise BenchmarkError("unreachable")


class _Extensions(_Forward):
    """Step 3: + `request.extensions.get("retry")` (per-request policy)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.extensions.get("retry") is not None:
            raise BenchmarkError("unreachable")
        try:
            response = self._send(request)
        except self._transport_error:
            raise
        if response.status_code < self._floor:
            return response
        raise BenchmarkError("unreachable")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.extensions.get("retry") is not None:
            raise BenchmarkError("unreachable")
        try:
            response = await self._asend(request)
        except self._transport_error:
            raise
        if response.status_code < self._floor:
            return response
        raise BenchmarkError("unreachable")


class _CountedWrapper(_Forward):
    """Step 4: + the budget's request count as the package does it (`count().__next__`)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.extensions.get("retry") is not None:
            raise BenchmarkError("unreachable")
        self._record()
        try:
            response = self._send(request)
        except self._transport_error:
            raise
        if response.status_code < self._floor:
            return response
        raise BenchmarkError("unreachable")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.extensions.get("retry") is not None:
            raise BenchmarkError("unreachable")
        self._record()
        try:
            response = await self._asend(request)
        except self._transport_error:
            raise
        if response.status_code < self._floor:
            return response
        raise BenchmarkError("unreachable")


class _CountedNext(_Forward):
    """Step 4': the same count through the builtin `next(counter)` instead."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.extensions.get("retry") is not None:
            raise BenchmarkError("unreachable")
        next(self._counter)
        try:
            response = self._send(request)
        except self._transport_error:
            raise
        if response.status_code < self._floor:
            return response
        raise BenchmarkError("unreachable")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.extensions.get("retry") is not None:
            raise BenchmarkError("unreachable")
        next(self._counter)
        try:
            response = await self._asend(request)
        except self._transport_error:
            raise
        if response.status_code < self._floor:
            return response
        raise BenchmarkError("unreachable")


# ---------------------------------------------------------------------------
# Configurations of each layer


class SleepCounter:
    """Injected as `sleep=` / `async_sleep=`: a zero delay must never reach it."""

    def __init__(self) -> None:
        self.calls = 0

    def sleep(self, seconds: float) -> None:
        self.calls += 1
        time.sleep(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.calls += 1
        await asyncio.sleep(seconds)


def _is_retryable(response: httpx.Response) -> bool:
    return response.status_code in RETRY_STATUSES


def ours(inner: Any, *, retry_path: bool, sleeps: SleepCounter | None = None) -> RetryTransport:
    """Success path: defaults (default policy, default budget). Retry path: zero backoff
    and `RetryBudget(ratio=2.0)` (each request earns the two tokens its retries use)."""
    if not retry_path:
        return RetryTransport(inner)
    sleeps = sleeps or SleepCounter()
    return RetryTransport(
        inner,
        policy=RetryPolicy(backoff=tenacity.wait_none()),
        budget=RetryBudget(ratio=2.0),
        sleep=sleeps.sleep,
        async_sleep=sleeps.async_sleep,
    )


def peer_httpx_retries(inner: Any) -> Any:
    return httpx_retries.RetryTransport(inner, retry=httpx_retries.Retry(total=3, backoff_factor=0))


def _tenacity_kwargs() -> dict[str, Any]:
    return {
        "stop": tenacity.stop_after_attempt(4),
        "wait": tenacity.wait_none(),
        "retry": tenacity.retry_if_result(_is_retryable)
        | tenacity.retry_if_exception_type(httpx.TransportError),
        "reraise": True,
    }


def peer_tenacity(send: Callable[..., Any]) -> Callable[[Any], Any]:
    """A pre-built `tenacity.Retrying`, called per request: `retrying(send, arg)`."""
    return functools.partial(tenacity.Retrying(**_tenacity_kwargs()), send)


def peer_tenacity_async(send: Callable[..., Awaitable[Any]]) -> Callable[[Any], Any]:
    return functools.partial(tenacity.AsyncRetrying(**_tenacity_kwargs()), send)


_STAMINA_ON = (httpx.TransportError, RetryableStatusError)


def peer_stamina(send: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`stamina.retry_context` built per request, instrumentation hooks off."""

    def call(arg: Any) -> Any:
        for attempt in stamina.retry_context(
            on=_STAMINA_ON, attempts=4, wait_initial=0, wait_jitter=0
        ):
            with attempt:
                response = send(arg)
                if response.status_code in RETRY_STATUSES:
                    raise RetryableStatusError
        return response

    return call


def peer_stamina_async(send: Callable[[Any], Awaitable[Any]]) -> Callable[[Any], Any]:
    async def call(arg: Any) -> Any:
        async for attempt in stamina.retry_context(
            on=_STAMINA_ON, attempts=4, wait_initial=0, wait_jitter=0
        ):
            with attempt:
                response = await send(arg)
                if response.status_code in RETRY_STATUSES:
                    raise RetryableStatusError
        return response

    return call


def bare_three(send: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Three bare attempts per logical request: the retry path's baseline."""

    def call(arg: Any) -> Any:
        send(arg)
        send(arg)
        return send(arg)

    return call


def bare_three_async(send: Callable[[Any], Awaitable[Any]]) -> Callable[[Any], Any]:
    async def call(arg: Any) -> Any:
        await send(arg)
        await send(arg)
        return await send(arg)

    return call


def bare_three_refused(send: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def call(arg: Any) -> Any:
        try:  # noqa: SIM105 (a suppress() object per call would cost more)
            send(arg)
        except httpx.ConnectError:
            pass
        try:  # noqa: SIM105 (a suppress() object per call would cost more)
            send(arg)
        except httpx.ConnectError:
            pass
        return send(arg)

    return call


def bare_three_refused_async(send: Callable[[Any], Awaitable[Any]]) -> Callable[[Any], Any]:
    async def call(arg: Any) -> Any:
        try:  # noqa: SIM105 (a suppress() object per call would cost more)
            await send(arg)
        except httpx.ConnectError:
            pass
        try:  # noqa: SIM105 (a suppress() object per call would cost more)
            await send(arg)
        except httpx.ConnectError:
            pass
        return await send(arg)

    return call


# ---------------------------------------------------------------------------
# Groups, blocks, rounds


@dataclasses.dataclass
class Config:
    key: str
    label: str
    call: Callable[[Any], Any]
    arg: Any = None
    scale: float = 1.0  # this config runs round(n * scale) logical requests per block
    requests: int = 1  # server-side requests per logical request (loopback validation)
    check: Callable[[], str] | None = None  # after all rounds: raises, or returns a note


@dataclasses.dataclass
class Built:
    configs: list[Config]
    skipped: list[str] = dataclasses.field(default_factory=list)
    cleanup: Callable[[], Any] | None = None  # sync or async


@dataclasses.dataclass
class Group:
    key: str
    title: str
    mode: str  # "sync", "asyncio" or "trio"
    n: int
    rounds: int
    build: Callable[[], Built]
    baseline: str = "A"
    retries: int = 0  # retries per logical request (retry paths: 2)
    server: LoopbackServer | None = None
    note: str = ""
    analysis: bool = False  # rendered under "What the remaining cost is made of"
    unit: str = "logical request"
    # Filled by run_group.
    configs: list[Config] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    us: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    conns: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    notes: dict[str, str] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0


def _check_ok(result: Any, where: str) -> None:
    status = getattr(result, "status_code", None)
    if status != 200:
        raise BenchmarkError(f"{where}: expected a final 200, got {result!r}")


def _time_sync(call: Callable[[Any], Any], arg: Any, n: int) -> tuple[int, Any]:
    """The one timing loop for every sync configuration (same code for bare and wrapped)."""
    gc.collect()
    result = None
    loop = itertools.repeat(None, n)
    start = perf_counter_ns()
    for _ in loop:
        result = call(arg)
    return perf_counter_ns() - start, result


async def _time_async(call: Callable[[Any], Any], arg: Any, n: int) -> tuple[int, Any]:
    """The one timing loop for every async configuration, inside one running event loop."""
    gc.collect()
    result = None
    loop = itertools.repeat(None, n)
    start = perf_counter_ns()
    for _ in loop:
        result = await call(arg)
    return perf_counter_ns() - start, result


def _block_size(group: Group, cfg: Config, warmup: bool) -> int:
    n = max(1, round(group.n * cfg.scale))
    return max(1, n // 10) if warmup else n


def _record(group: Group, cfg: Config, elapsed: int, n: int, conns: float | None) -> None:
    group.us.setdefault(cfg.key, []).append(elapsed / n / 1000)
    if conns is not None:
        group.conns.setdefault(cfg.key, []).append(conns)


def _server_delta(group: Group, cfg: Config, before: tuple[int, int], n: int) -> float | None:
    assert group.server is not None
    after = group.server.stats()
    requests = after[1] - before[1]
    if requests != n * cfg.requests:
        raise BenchmarkError(
            f"{group.key}/{cfg.key}: server saw {requests} requests, expected {n} x {cfg.requests}"
        )
    return (after[0] - before[0]) / n


def _run_rounds_sync(group: Group) -> None:
    configs = group.configs
    for round_ in range(-1, group.rounds):  # round -1: untimed warm-up and validation
        start = max(round_, 0) % len(configs)
        for cfg in configs[start:] + configs[:start]:
            n = _block_size(group, cfg, warmup=round_ < 0)
            before = None
            if group.server is not None:
                _check_ok(cfg.call(cfg.arg), f"{group.key}/{cfg.key} warm-up")
                before = group.server.stats()
            elapsed, result = _time_sync(cfg.call, cfg.arg, n)
            _check_ok(result, f"{group.key}/{cfg.key}")
            conns = _server_delta(group, cfg, before, n) if before is not None else None
            if round_ >= 0:
                _record(group, cfg, elapsed, n, conns)


async def _run_rounds_async(group: Group) -> None:
    configs = group.configs
    for round_ in range(-1, group.rounds):
        start = max(round_, 0) % len(configs)
        for cfg in configs[start:] + configs[:start]:
            n = _block_size(group, cfg, warmup=round_ < 0)
            before = None
            if group.server is not None:
                _check_ok(await cfg.call(cfg.arg), f"{group.key}/{cfg.key} warm-up")
                before = group.server.stats()
            elapsed, result = await _time_async(cfg.call, cfg.arg, n)
            _check_ok(result, f"{group.key}/{cfg.key}")
            conns = _server_delta(group, cfg, before, n) if before is not None else None
            if round_ >= 0:
                _record(group, cfg, elapsed, n, conns)


def _finish(group: Group) -> None:
    for cfg in group.configs:
        if cfg.check is not None:
            group.notes[cfg.key] = cfg.check()


def run_group(group: Group) -> None:
    started = time.perf_counter()
    print(f"  {group.key}: {group.title} ...", file=sys.stderr, flush=True)

    def setup() -> Built:
        built = group.build()
        group.configs, group.skipped = built.configs, built.skipped
        return built

    if group.mode == "sync":
        built = setup()
        try:
            _run_rounds_sync(group)
            _finish(group)
        finally:
            if built.cleanup is not None:
                built.cleanup()
    else:

        async def main() -> None:
            built = setup()
            try:
                await _run_rounds_async(group)
                _finish(group)
            finally:
                if built.cleanup is not None:
                    done = built.cleanup()
                    if inspect.isawaitable(done):
                        await done

        if group.mode == "trio":
            trio.run(main)
        else:
            asyncio.run(main())
    group.seconds = time.perf_counter() - started


# ---------------------------------------------------------------------------
# The loopback server (level c)


class LoopbackServer:
    """`_loopback_server.py` in a child process; stops when we close its stdin."""

    def __init__(self, cpu: int | None) -> None:
        command = [sys.executable, str(SERVER_SCRIPT), "--max-seconds", "1800"]
        if cpu is not None:
            command += ["--cpu", str(cpu)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith("PORT "):
            self.close()
            raise BenchmarkError(f"loopback server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base = f"http://127.0.0.1:{self.port}"

    def stats(self) -> tuple[int, int]:
        """(connections, requests) counted so far, read over a separate, uncounted connection."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(b"GET /_stats HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        connections, requests = data.split(b"\r\n\r\n", 1)[1].split()
        return int(connections), int(requests)

    def close(self) -> None:
        process = self._process
        if process.poll() is None:
            assert process.stdin is not None
            process.stdin.close()  # the server's signal to stop
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if process.stdout is not None:
            process.stdout.close()


# ---------------------------------------------------------------------------
# Group builders


def _request() -> httpx.Request:
    # One request object per configuration: httpx-retries writes into its extensions.
    return httpx.Request("GET", URL)


def build_a_success(async_: bool, peers: bool = True) -> Callable[[], Built]:
    method = "handle_async_request" if async_ else "handle_request"

    def build() -> Built:
        configs = [
            Config("A", "bare inner transport", getattr(NullTransport(), method), _request()),
            Config("A0", "bare inner transport, again (A/A)", getattr(NullTransport(), method),
                   _request()),
            Config("R", "httpx_retrying.RetryTransport (default policy and budget)",
                   getattr(ours(NullTransport(), retry_path=False), method), _request()),
        ]  # fmt: skip
        skipped: list[str] = []
        if httpx_retries is not None:
            configs.append(
                Config("B", "httpx-retries RetryTransport",
                       getattr(peer_httpx_retries(NullTransport()), method), _request(),
                       scale=0.25)
            )  # fmt: skip
        else:
            skipped.append(f"B httpx-retries: {MISSING_PEER}")
        if peers:
            inner = getattr(NullTransport(), method)
            wrap = peer_tenacity_async if async_ else peer_tenacity
            configs.append(
                Config("C", f"tenacity {'AsyncRetrying' if async_ else 'Retrying'} around the call",
                       wrap(inner), _request(), scale=0.025)
            )  # fmt: skip
            if stamina is not None:
                wrap = peer_stamina_async if async_ else peer_stamina
                configs.append(
                    Config("D", "stamina retry_context around the call",
                           wrap(getattr(NullTransport(), method)), _request(), scale=0.02)
                )  # fmt: skip
            else:
                skipped.append(f"D stamina: {MISSING_PEER}")
        return Built(configs, skipped)

    return build


def build_a_breakdown(async_: bool) -> Callable[[], Built]:
    method = "handle_async_request" if async_ else "handle_request"

    def build() -> Built:
        steps = [
            ("A", "bare inner transport", NullTransport()),
            ("V1", "wrapper that only forwards", _Forward(NullTransport())),
            ("V2", "V1 + try/except TransportError + status < floor", _Checked(NullTransport())),
            ("V3", 'V2 + request.extensions.get("retry")', _Extensions(NullTransport())),
            ("V4", "V3 + budget count via count().__next__ (as the package)",
             _CountedWrapper(NullTransport())),
            ("V4n", "V3 + budget count via next(counter)", _CountedNext(NullTransport())),
            ("R", "httpx_retrying.RetryTransport", ours(NullTransport(), retry_path=False)),
        ]  # fmt: skip
        return Built([Config(k, label, getattr(t, method), _request()) for k, label, t in steps])

    return build


def build_retry_components() -> Built:
    """What one retry (a released 503) costs, piece by piece, outside the package."""
    ok = httpx.Response(200, content=b"ok")
    unavailable = httpx.Response(503, content=UNAVAILABLE_BODY)
    request = _request()

    def noop(_: Any) -> httpx.Response:
        return ok

    def header_lookups(_: Any) -> httpx.Response:
        get = unavailable.headers.get
        get("x-should-retry")
        get("content-length")
        get("retry-after-ms")
        get("retry-after")
        return ok

    def header_pass(_: Any) -> httpx.Response:
        dict(unavailable.headers.multi_items())
        return ok

    state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]

    def outcome(_: Any) -> httpx.Response:
        state.set_result(unavailable)
        return ok

    budget = RetryBudget(ratio=2.0)
    record = budget.record_request

    def budget_ops(_: Any) -> httpx.Response:
        record()
        budget.try_acquire()
        return ok

    def event(_: Any) -> httpx.Response:
        RetryEvent(1, 0.0, "status 503", request, unavailable, None)
        return ok

    def drain_and_close(_: Any) -> httpx.Response:
        for _chunk in unavailable.stream:
            pass
        unavailable.is_closed = False
        unavailable.close()
        return ok

    def close_stream_only(_: Any) -> httpx.Response:
        unavailable.is_closed = True
        unavailable.stream.close()
        return ok

    configs = [
        Config("A", "a call that does nothing", noop),
        Config("H4", "4 `response.headers.get(...)` lookups (x-should-retry, content-length, "
               "retry-after-ms, retry-after)", header_lookups),
        Config("H1", "one pass over the headers: `dict(response.headers.multi_items())`",
               header_pass),
        Config("T", "`tenacity.RetryCallState.set_result(response)` (a concurrent.futures "
               "Future; avoided when the outcome is built lazily)", outcome),
        Config("B", "`RetryBudget`: `record_request()` + `try_acquire()`", budget_ops),
        Config("E", "`RetryEvent(...)` construction", event),
        Config("C", "drain the 11-byte body + `response.close()` (with httpx's "
               "`request_context`)", drain_and_close),
        Config("Cs", "`response.stream.close()` without httpx's `request_context`",
               close_stream_only),
    ]  # fmt: skip
    skipped = []
    try:
        from opentelemetry import trace as otel_trace
    except ImportError:
        skipped.append("O `opentelemetry.trace.get_current_span()`: opentelemetry not installed")
    else:

        def span(_: Any) -> httpx.Response:
            otel_trace.get_current_span()
            return ok

        configs.append(
            Config("O", "`opentelemetry.trace.get_current_span()` (installed here)", span)
        )
    return Built(configs, skipped)


def build_a_mock(async_: bool) -> Callable[[], Built]:
    method = "handle_async_request" if async_ else "handle_request"

    def mock() -> httpx.MockTransport:
        return httpx.MockTransport(_ok_handler)

    def build() -> Built:
        configs = [
            Config("A", "MockTransport", getattr(mock(), method), _request()),
            Config("A0", "MockTransport, again (A/A)", getattr(mock(), method), _request()),
            Config("R", "httpx_retrying.RetryTransport(MockTransport)",
                   getattr(ours(mock(), retry_path=False), method), _request()),
        ]  # fmt: skip
        skipped: list[str] = []
        if httpx_retries is not None:
            configs.append(
                Config("B", "httpx-retries RetryTransport(MockTransport)",
                       getattr(peer_httpx_retries(mock()), method), _request())
            )  # fmt: skip
        else:
            skipped.append(f"B httpx-retries: {MISSING_PEER}")
        return Built(configs, skipped)

    return build


def _inner_check(inner: Any, cfg_key: str, attempts: int = 3) -> Callable[[], str]:
    """Checks after the rounds that every logical request made exactly `attempts` calls."""

    def check() -> str:
        if inner.calls % attempts or inner._next != 0:
            raise BenchmarkError(
                f"{cfg_key}: {inner.calls} inner calls, not {attempts} per request"
            )
        return f"{attempts} inner calls per request"

    return check


def build_a_retry(async_: bool, refused: bool) -> Callable[[], Built]:
    """Level (a): 503, 503, 200 (or ConnectError, ConnectError, 200), zero backoff."""
    method = "handle_async_request" if async_ else "handle_request"
    inner_class = RefusingTransport if refused else FlakyTransport
    if refused:
        three = bare_three_refused_async if async_ else bare_three_refused
    else:
        three = bare_three_async if async_ else bare_three

    def build() -> Built:
        configs: list[Config] = []
        skipped: list[str] = []
        for key, label in (("A", "3 bare attempts"), ("A0", "3 bare attempts, again (A/A)")):
            inner = inner_class()
            configs.append(
                Config(key, label, three(getattr(inner, method)), _request(),
                       check=_inner_check(inner, key))
            )  # fmt: skip

        inner = inner_class()
        sleeps = SleepCounter()
        transport = ours(inner, retry_path=True, sleeps=sleeps)
        budget = transport.budget
        assert budget is not None

        def check_ours() -> str:
            _inner_check(inner, "R")()
            if sleeps.calls:
                raise BenchmarkError(f"R: zero backoff, yet sleep was called {sleeps.calls} times")
            if budget.retries_refused:
                raise BenchmarkError(f"R: the budget refused {budget.retries_refused} retries")
            return (
                f"sleep calls: {sleeps.calls} in {budget.retries_allowed} retries; "
                "budget refused: 0"
            )

        configs.append(
            Config("R", "httpx_retrying.RetryTransport, zero backoff, RetryBudget(ratio=2.0)",
                   getattr(transport, method), _request(), check=check_ours)
        )  # fmt: skip
        if httpx_retries is not None:
            inner = inner_class()
            configs.append(
                Config("B", "httpx-retries RetryTransport, backoff_factor=0",
                       getattr(peer_httpx_retries(inner), method), _request(),
                       scale=0.1 if async_ else 0.02, check=_inner_check(inner, "B"))
            )  # fmt: skip
        else:
            skipped.append(f"B httpx-retries: {MISSING_PEER}")
        inner = inner_class()
        wrap = peer_tenacity_async if async_ else peer_tenacity
        configs.append(
            Config("C", "tenacity, wait_none (does not release retried responses)",
                   wrap(getattr(inner, method)), _request(),
                   scale=0.05 if async_ else 0.02, check=_inner_check(inner, "C"))
        )  # fmt: skip
        if stamina is not None:
            inner = inner_class()
            wrap = peer_stamina_async if async_ else peer_stamina
            configs.append(
                Config("D", "stamina retry_context, zero wait (does not release responses)",
                       wrap(getattr(inner, method)), _request(),
                       scale=0.04 if async_ else 0.02, check=_inner_check(inner, "D"))
            )  # fmt: skip
        else:
            skipped.append(f"D stamina: {MISSING_PEER}")
        return Built(configs, skipped)

    return build


def build_b(async_: bool) -> Callable[[], Built]:
    """Level (b): Client.get / AsyncClient.get over MockTransport, success path."""
    client_class: Any = httpx.AsyncClient if async_ else httpx.Client

    def client(transport: Any) -> Any:
        return client_class(transport=transport, trust_env=False)

    def mock() -> httpx.MockTransport:
        return httpx.MockTransport(_ok_handler)

    def build() -> Built:
        clients = [client(mock()), client(mock()), client(ours(mock(), retry_path=False)),
                   client(_Forward(mock()))]  # fmt: skip
        configs = [
            Config("A", "bare client", clients[0].get, URL),
            Config("A0", "bare client, again (A/A)", clients[1].get, URL),
            Config("R", "httpx_retrying.RetryTransport (default policy and budget)",
                   clients[2].get, URL),
            Config("F", "control: a wrapper transport that only forwards",
                   clients[3].get, URL),
        ]  # fmt: skip
        skipped: list[str] = []
        if httpx_retries is not None:
            clients.append(client(peer_httpx_retries(mock())))
            configs.append(Config("B", "httpx-retries RetryTransport", clients[-1].get, URL))
        else:
            skipped.append(f"B httpx-retries: {MISSING_PEER}")
        clients.append(client(mock()))
        wrap = peer_tenacity_async if async_ else peer_tenacity
        configs.append(
            Config("C", "tenacity around client.get", wrap(clients[-1].get), URL, scale=0.25)
        )
        if stamina is not None:
            clients.append(client(mock()))
            wrap = peer_stamina_async if async_ else peer_stamina
            configs.append(
                Config("D", "stamina around client.get", wrap(clients[-1].get), URL, scale=0.2)
            )
        else:
            skipped.append(f"D stamina: {MISSING_PEER}")
        return Built(configs, skipped, _closer(clients, async_))

    return build


def _closer(clients: list[Any], async_: bool) -> Callable[[], Any]:
    if not async_:
        return lambda: [c.close() for c in clients]

    async def aclose() -> None:
        for c in clients:
            await c.aclose()

    return aclose


def build_c(async_: bool, retry_path: bool, server: LoopbackServer) -> Callable[[], Built]:
    """Level (c): a keep-alive loopback server in another process."""
    client_class: Any = httpx.AsyncClient if async_ else httpx.Client
    transport_class: Any = httpx.AsyncHTTPTransport if async_ else httpx.HTTPTransport
    ids = itertools.count()
    base = server.base
    ok_url = f"{base}/ok"

    def client(wrap: Callable[[Any], Any] | None = None) -> Any:
        inner = transport_class()
        return client_class(transport=wrap(inner) if wrap else inner, trust_env=False)

    def per_request(get: Callable[[str], Any]) -> Callable[[Any], Any]:
        """One logical request to a fresh /flaky/<id> (503, 503, 200 on the server)."""
        if async_:

            async def acall(_: Any) -> Any:
                return await get(f"{base}/flaky/{next(ids)}")

            return acall

        def call(_: Any) -> Any:
            return get(f"{base}/flaky/{next(ids)}")

        return call

    def flaky_three(get: Callable[[str], Any]) -> Callable[[Any], Any]:
        if async_:

            async def acall(_: Any) -> Any:
                url = f"{base}/flaky/{next(ids)}"
                await get(url)
                await get(url)
                return await get(url)

            return acall

        def call(_: Any) -> Any:
            url = f"{base}/flaky/{next(ids)}"
            get(url)
            get(url)
            return get(url)

        return call

    def build() -> Built:
        clients: list[Any] = []
        configs: list[Config] = []
        skipped: list[str] = []
        sleeps = SleepCounter()

        def make(wrap: Callable[[Any], Any] | None = None) -> Any:
            clients.append(client(wrap))
            return clients[-1]

        if retry_path:
            n_req = 3
            for key, label in (("A", "3 bare client.get"), ("A0", "3 bare client.get (A/A)")):
                c = make()
                configs.append(Config(key, label, flaky_three(c.get), requests=n_req))
            c = make(lambda t: ours(t, retry_path=True, sleeps=sleeps))
            transport = c._transport
            configs.append(
                Config("R", "httpx_retrying.RetryTransport, zero backoff, RetryBudget(ratio=2.0)",
                       per_request(c.get), requests=n_req,
                       check=lambda: _loopback_ours_check(transport, sleeps))
            )  # fmt: skip
        else:
            n_req = 1
            for key, label in (("A", "bare client"), ("A0", "bare client, again (A/A)")):
                configs.append(Config(key, label, make().get, ok_url))
            c = make(lambda t: ours(t, retry_path=False))
            configs.append(
                Config("R", "httpx_retrying.RetryTransport (default policy and budget)",
                       c.get, ok_url)
            )  # fmt: skip

        def target(get: Callable[[Any], Any]) -> tuple[Callable[[Any], Any], Any]:
            return (per_request(get), None) if retry_path else (get, ok_url)

        if httpx_retries is not None:
            c = make(peer_httpx_retries)
            call, arg = target(c.get)
            label = "httpx-retries RetryTransport" + (", backoff_factor=0" if retry_path else "")
            configs.append(Config("B", label, call, arg, requests=n_req))
        else:
            skipped.append(f"B httpx-retries: {MISSING_PEER}")
        c = make()
        wrap = peer_tenacity_async if async_ else peer_tenacity
        call, arg = target(wrap(c.get))
        configs.append(Config("C", "tenacity around client.get", call, arg, requests=n_req))
        if stamina is not None:
            c = make()
            wrap = peer_stamina_async if async_ else peer_stamina
            call, arg = target(wrap(c.get))
            configs.append(Config("D", "stamina around client.get", call, arg, requests=n_req))
        else:
            skipped.append(f"D stamina: {MISSING_PEER}")
        return Built(configs, skipped, _closer(clients, async_))

    return build


def _loopback_ours_check(transport: Any, sleeps: SleepCounter) -> str:
    budget = transport.budget
    if sleeps.calls:
        raise BenchmarkError(f"R: zero backoff, yet sleep was called {sleeps.calls} times")
    if budget.retries_refused:
        raise BenchmarkError(f"R: the budget refused {budget.retries_refused} retries")
    return f"sleep calls: 0 in {budget.retries_allowed} retries"


# ---------------------------------------------------------------------------
# Memory, profile, import time


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def memory_growth(settings: Settings, async_: bool) -> dict[str, int]:
    """Traced memory after `mem_first` and after `mem_total` successful requests (level a)."""
    transport = ours(NullTransport(), retry_path=False)
    request = _request()
    first, total = settings.mem_first, settings.mem_total

    if async_:

        async def run(n: int) -> None:
            send = transport.handle_async_request
            for _ in itertools.repeat(None, n):
                await send(request)

        async def main() -> dict[str, int]:
            await run(1000)  # warm-up
            tracemalloc.start()
            try:
                base = _traced()
                await run(first)
                after_first = _traced() - base
                await run(total - first)
                after_total = _traced() - base
                peak = tracemalloc.get_traced_memory()[1] - base
            finally:
                tracemalloc.stop()
            return {"first": after_first, "total": after_total, "peak": peak}

        return asyncio.run(main())

    def run_sync(n: int) -> None:
        send = transport.handle_request
        for _ in itertools.repeat(None, n):
            send(request)

    run_sync(1000)
    tracemalloc.start()
    try:
        base = _traced()
        run_sync(first)
        after_first = _traced() - base
        run_sync(total - first)
        after_total = _traced() - base
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return {"first": after_first, "total": after_total, "peak": peak}


def _flaky_mock() -> httpx.MockTransport:
    """MockTransport answering 503, 503, 200 with fresh responses (real streams to release)."""
    counter = itertools.count()

    def handler(request: httpx.Request) -> httpx.Response:
        if next(counter) % 3 < 2:
            return httpx.Response(503, content=UNAVAILABLE_BODY)
        return httpx.Response(200, content=b"ok")

    return httpx.MockTransport(handler)


def memory_retry_peak() -> list[tuple[str, int, int]]:
    """Peak and retained traced memory of one retried request (503, 503, 200), sync."""
    layers: list[tuple[str, Callable[[Any], Any]]] = [
        ("3 bare attempts (MockTransport)", bare_three(_flaky_mock().handle_request)),
        ("httpx_retrying.RetryTransport", ours(_flaky_mock(), retry_path=True).handle_request),
    ]
    if httpx_retries is not None:
        layers.append(("httpx-retries", peer_httpx_retries(_flaky_mock()).handle_request))
    layers.append(("tenacity Retrying", peer_tenacity(_flaky_mock().handle_request)))
    if stamina is not None:
        layers.append(("stamina retry_context", peer_stamina(_flaky_mock().handle_request)))
    rows = []
    for label, call in layers:
        for _ in range(5):  # warm-up: lazy imports, caches
            _check_ok(call(_request()), label)
        request = _request()
        tracemalloc.start()
        try:
            base = _traced()
            tracemalloc.reset_peak()
            response = call(request)
            peak = tracemalloc.get_traced_memory()[1] - base
            retained = _traced() - base
            _check_ok(response, label)
            del response
        finally:
            tracemalloc.stop()
        rows.append((label, peak, retained))
    return rows


def profile_retry(settings: Settings) -> tuple[float, list[tuple[str, float, float, float]]]:
    """cProfile of the sync retry path (level a, 503, 503, 200): where the time goes."""
    inner = FlakyTransport()
    transport = ours(inner, retry_path=True)
    request = _request()
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
    rows = []
    for (filename, line, name), (_, calls, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(filename).parent.name}/{Path(filename).name}:{line}({name})"
        if filename == "~":
            where = name
        rows.append((where, calls / n, tottime / n * 1e6, tottime / total * 100))
    rows.sort(key=lambda row: row[2], reverse=True)
    return total / n * 1e6, rows


def _importtime(code: str, pycache: str) -> dict[str, tuple[int, int]]:
    """{module: (self us, cumulative us)} from `python -X importtime -c code`, fresh process.

    Bytecode caches go to `pycache` (PYTHONPYCACHEPREFIX), written by an untimed first run:
    an installed package imports from its caches, and the repository is left untouched.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME")
    }
    env["PYTHONPYCACHEPREFIX"] = pycache
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    found: dict[str, tuple[int, int]] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative, name = line[len("import time:") :].split("|")
        found.setdefault(name.strip(), (int(self_us), int(cumulative)))
    return found


def import_cost(settings: Settings) -> dict[str, Any]:
    code = "import httpx; import httpx_retrying"
    totals, httpx_totals = [], []
    selves: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="httpx-retrying-pycache-") as pycache:
        _importtime(code, pycache)  # untimed: writes the bytecode caches
        for _ in range(settings.import_runs):
            found = _importtime(code, pycache)
            totals.append(found["httpx_retrying"][1] / 1000)
            httpx_totals.append(found["httpx"][1] / 1000)
            # Modules that `import httpx_retrying` brings in: those listed after httpx.
            names = list(found)
            for name in names[names.index("httpx") + 1 :]:
                selves.setdefault(name, []).append(found[name][0] / 1000)
    heavy = sorted(((statistics.median(v), m) for m, v in selves.items()), reverse=True)
    return {
        "median": statistics.median(totals),
        "ci": median_ci(totals),
        "min": min(totals),
        "max": max(totals),
        "httpx": statistics.median(httpx_totals),
        "count": len(selves),
        "heavy": heavy[:8],
    }


# ---------------------------------------------------------------------------
# Summaries and the report


@dataclasses.dataclass
class Row:
    cfg: Config
    us: float
    us_min: float
    us_max: float
    delta: float
    delta_min: float
    delta_max: float
    ratio: float
    ratio_min: float
    ratio_max: float
    conns: tuple[float, float] | None
    delta_ci: tuple[float, float]
    ratio_ci: tuple[float, float]


def median_ci(values: list[float]) -> tuple[float, float]:
    """Distribution-free ~95 % confidence interval of the median (order statistics)."""
    ordered = sorted(values)
    n = len(ordered)
    half = 1.96 * math.sqrt(n) / 2
    low = math.floor(n / 2 - half) - 1  # 0-based ranks
    high = math.ceil(n / 2 + half)
    if low < 0 or high >= n:
        return ordered[0], ordered[-1]
    return ordered[low], ordered[high]


def summarize(group: Group) -> dict[str, Row]:
    base = group.us[group.baseline]
    rows = {}
    for cfg in group.configs:
        values = group.us[cfg.key]
        deltas = [v - b for v, b in zip(values, base, strict=True)]
        ratios = [v / b for v, b in zip(values, base, strict=True)]
        conns = group.conns.get(cfg.key)
        rows[cfg.key] = Row(
            cfg,
            statistics.median(values),
            min(values),
            max(values),
            statistics.median(deltas),
            min(deltas),
            max(deltas),
            statistics.median(ratios),
            min(ratios),
            max(ratios),
            (min(conns), max(conns)) if conns else None,
            median_ci(deltas),
            median_ci(ratios),
        )
    return rows


def _us(value: float) -> str:
    if abs(value) < 10:
        return f"{value:.3f}"
    if abs(value) < 1000:
        return f"{value:.2f}"
    return f"{value:.1f}"


def _signed(value: float) -> str:
    return ("+" if value >= 0 else "") + _us(value)


def _range(low: str, high: str) -> str:
    return f"[{low}, {high}]"


def group_table(group: Group, rows: dict[str, Row]) -> list[str]:
    loopback = bool(group.conns)
    per_retry = group.retries > 0
    head = f"| cfg | µs / {group.unit}, median [min, max] | Δ vs A, µs [min, max] |"
    sep = "|---|---:|---:|"
    if per_retry:
        head += " Δ per retry, µs |"
        sep += "---:|"
    head += " ratio to A [min, max] |"
    sep += "---|"
    if loopback:
        head += " new conns / logical request |"
        sep += "---:|"
    head += " notes |"
    sep += "---|"
    lines = [head, sep]
    for key, row in rows.items():
        is_base = key == group.baseline
        line = f"| {key} {row.cfg.label} | {_us(row.us)} {_range(_us(row.us_min), _us(row.us_max))}"
        if is_base:
            line += " | — |"
        else:
            line += f" | {_signed(row.delta)} {_range(_signed(row.delta_min), _signed(row.delta_max))} |"  # noqa: E501
        if per_retry:
            line += " — |" if is_base else f" {_signed(row.delta / group.retries)} |"
        if is_base:
            line += " 1.000 |"
        else:
            line += f" {row.ratio:.3f} {_range(f'{row.ratio_min:.3f}', f'{row.ratio_max:.3f}')} |"
        if loopback:
            assert row.conns is not None
            low, high = row.conns
            line += f" {low:g} |" if low == high else f" {low:g} to {high:g} |"
        line += f" {group.notes.get(key, '')} |"
        lines.append(line)
    for note in group.skipped:
        lines.append(f"\n*Skipped:* {note}")
    return lines


@dataclasses.dataclass
class Target:
    name: str
    target: str
    measured: str
    passed: bool
    miss: str = ""
    noise: str = ""


def _versions() -> list[tuple[str, str]]:
    out = []
    for dist in ("httpx-retrying", "httpx", "httpcore", "h11", "tenacity", "httpx-retries",
                 "stamina", "anyio", "trio"):  # fmt: skip
        try:
            out.append((dist, importlib.metadata.version(dist)))
        except importlib.metadata.PackageNotFoundError:
            out.append((dist, "not installed"))
    return out


def _noise_delta(rows: dict[str, Row], per: int = 1) -> str:
    aa = rows.get("A0")
    if aa is None:
        return ""
    return (
        f"A/A Δ {_signed(aa.delta / per)} µs "
        f"{_range(_signed(aa.delta_min / per), _signed(aa.delta_max / per))}"
    )


def _noise_ratio(rows: dict[str, Row]) -> str:
    aa = rows.get("A0")
    if aa is None:
        return ""
    text = f"A/A ratio {aa.ratio:.4f} {_range(f'{aa.ratio_min:.3f}', f'{aa.ratio_max:.3f}')}"
    control = rows.get("F")
    if control is not None:
        text += f"; forward-only wrapper F: {control.ratio:.4f} (Δ {_signed(control.delta)} µs)"
    return text


def _ci_note(ok: bool, ci: tuple[float, float], goal: float, text: str) -> str:
    """Say when the median's ~95 % confidence interval straddles the goal."""
    if ok and ci[1] > goal:
        return f"; CI reaches {text}: not resolved at this noise"
    if not ok and ci[0] <= goal:
        return f"; CI reaches {text}: not resolved at this noise"
    return ""


def evaluate(settings: Settings, groups: dict[str, Group], summaries: dict[str, dict[str, Row]],
             mem: dict[str, dict[str, int]], imp: dict[str, Any]) -> list[Target]:  # fmt: skip
    targets: list[Target] = []

    def delta_target(name: str, rows: dict[str, Row], goal: float, per: int = 1) -> None:
        r = rows["R"]
        value, (low, high) = r.delta / per, (r.delta_ci[0] / per, r.delta_ci[1] / per)
        ok = value <= goal
        edge = high if ok else low
        measured = (
            f"{_signed(value)} µs (95 % CI {_signed(low)}, {_signed(high)}; "
            f"rounds {_signed(r.delta_min / per)} to {_signed(r.delta_max / per)})"
        )
        miss = "" if ok else f"by {value - goal:.3f} µs ({value / goal:.2f} times the goal)"
        targets.append(Target(name, f"≤ {goal:g} µs", measured, ok,
                              miss + _ci_note(ok, (low, high), goal, _signed(edge)),
                              _noise_delta(rows, per)))  # fmt: skip

    def ratio_target(name: str, rows: dict[str, Row], goal: float) -> None:
        r = rows["R"]
        ok = r.ratio <= goal
        edge = r.ratio_ci[1] if ok else r.ratio_ci[0]
        measured = (
            f"{r.ratio:.4f} (95 % CI {r.ratio_ci[0]:.4f}, {r.ratio_ci[1]:.4f}; "
            f"Δ {_signed(r.delta)} µs)"
        )
        miss = "" if ok else f"by {r.ratio - goal:.4f}"
        targets.append(Target(name, f"≤ {goal:g}", measured, ok,
                              miss + _ci_note(ok, r.ratio_ci, goal, f"{edge:.4f}"),
                              _noise_ratio(rows)))  # fmt: skip

    for mode, limit in (("sync", 0.15), ("async", 0.25)):
        rows = summaries.get(f"a-success-{mode}", {})
        if "R" in rows:
            delta_target(
                f"Success path, level (a), {mode}, default budget: overhead per request",
                rows,
                limit,
            )
        if "R" in rows and "B" in rows:
            r, b = rows["R"], rows["B"]
            share = r.delta / b.delta
            ok = share <= 0.25
            targets.append(Target(
                f"Success path, level (a), {mode}: share of httpx-retries' overhead (same run)",
                "≤ 0.25", f"{share:.3f} ({_signed(r.delta)} vs {_signed(b.delta)} µs)", ok,
                "" if ok else f"by {share - 0.25:.3f}", _noise_delta(rows),
            ))  # fmt: skip
    for mode in ("sync", "async"):
        rows = summaries.get(f"b-success-{mode}", {})
        if "R" in rows:
            ratio_target(f"Success path, level (b), {mode}: Client.get ratio to bare", rows, 1.005)
    for mode in ("sync", "async"):
        g = groups.get(f"a-retry-{mode}")
        rows = summaries.get(f"a-retry-{mode}", {})
        if g is not None and "R" in rows:
            delta_target(
                f"Retry path, level (a), {mode}: cost per retry beyond 3 bare attempts",
                rows,
                3.0,
                g.retries,
            )
            note = g.notes.get("R", "")
            ok = note.startswith("sleep calls: 0 ")
            targets.append(Target(
                f"Retry path, level (a), {mode}: a zero delay never calls sleep",
                "0 calls", note.split(";")[0], ok, "" if ok else note,
            ))  # fmt: skip
    for mode in ("sync", "async"):
        rows = summaries.get(f"c-retry-{mode}", {})
        if "R" in rows:
            ratio_target(f"Retry path, level (c), {mode}: ratio to 3 bare requests", rows, 1.1)
            conns = rows["R"].conns
            assert conns is not None
            ok = conns[1] == 0
            targets.append(Target(
                f"Retry path, level (c), {mode}: new TCP connections per logical request",
                "0", f"{conns[1]:g} (max over rounds)", ok,
                "" if ok else f"{conns[1]:g} per logical request",
            ))  # fmt: skip
    for mode, m in mem.items():
        growth = m["total"] - m["first"]
        ok = growth <= MEMORY_NOISE_BYTES
        targets.append(Target(
            f"Memory, {mode}: growth from request {settings.mem_first:,} to {settings.mem_total:,}",
            f"no growth (≤ {MEMORY_NOISE_BYTES} B)",
            f"{growth:+,} B ({m['first']:,} B → {m['total']:,} B traced)", ok,
            "" if ok else f"by {growth - MEMORY_NOISE_BYTES:,} B",
        ))  # fmt: skip
    ok = imp["median"] <= 10
    targets.append(Target(
        "Import time added by `import httpx_retrying` after `import httpx` (median)", "≤ 10 ms",
        f"{imp['median']:.2f} ms (95 % CI {imp['ci'][0]:.2f}, {imp['ci'][1]:.2f}; "
        f"runs {imp['min']:.2f} to {imp['max']:.2f})", ok,
        ("" if ok else f"by {imp['median'] - 10:.2f} ms")
        + _ci_note(ok, imp["ci"], 10, f"{imp['ci'][1 if ok else 0]:.2f}"),
        f"{settings.import_runs} fresh processes",
    ))  # fmt: skip
    return targets


#: Traced-memory growth treated as noise over a long run (allocator bookkeeping, an
#: int counter growing a digit): anything per request would show as >= 900 kB at 1M.
MEMORY_NOISE_BYTES = 4096


def _group_section(g: Group, rows: dict[str, Row]) -> list[str]:
    n_info = ", ".join(
        f"{cfg.key} {max(1, round(g.n * cfg.scale)):,}" for cfg in g.configs if cfg.scale != 1
    )
    lines = [
        f"### {g.title}",
        "",
        f"{g.rounds} rounds; N = {g.n:,} {g.unit}s per block"
        + (f" ({n_info})" if n_info else "")
        + f"; {g.seconds:.0f} s."
        + (f" {g.note}" if g.note else ""),
        "",
    ]
    return [*lines, *group_table(g, rows), ""]


def render(settings: Settings, groups: list[Group], mem: dict[str, dict[str, int]],
           retry_mem: list[tuple[str, int, int]], imp: dict[str, Any],
           profile: tuple[float, list[tuple[str, float, float, float]]],
           meta: dict[str, str]) -> str:  # fmt: skip
    summaries = {g.key: summarize(g) for g in groups}
    by_key = {g.key: g for g in groups}
    targets = evaluate(settings, by_key, summaries, mem, imp)
    out: list[str] = ["# Overhead of httpx_retrying.RetryTransport", ""]
    out.append(
        "Generated by `benchmarks/overhead.py` (do not edit by hand; rerun it). "
        + ("**Quick mode: tiny counts, the numbers below mean nothing.**" if settings.quick else "")
    )
    out += ["", "## Environment", ""]
    for key, value in meta.items():
        out.append(f"* {key}: {value}")
    out.append("* Versions: " + ", ".join(f"{name} {version}" for name, version in _versions()))
    out += ["", "## Method", ""]
    out += [
        "* Every group interleaves its configurations round by round, rotating the starting "
        "position per round; an untimed warm-up and validation round comes first. A block is "
        "`gc.collect()` and then one tight loop of N logical requests timed with "
        "`perf_counter_ns` (GC stays on); every configuration of a group goes through the same "
        "loop code (`result = call(arg)` / `result = await call(arg)`), and every block checks "
        "that the last response is a 200.",
        "* median = median over rounds of µs per logical request; Δ and ratio = median over "
        "rounds of the *paired* (same-round) difference and ratio against A, with [min, max] "
        "over rounds. A0 is a second, identical bare configuration (A/A control): its Δ and "
        "ratio show the noise floor of its group.",
        "* Slow peers run fewer logical requests per block than the fast configurations (µs "
        "per logical request are comparable; the per-block N of each group is in its heading).",
        "* Success-path configurations use the package's defaults: default `RetryPolicy()`, "
        "default `RetryBudget()`. Retry-path configurations use "
        "`RetryPolicy(backoff=tenacity.wait_none())` and `budget=RetryBudget(ratio=2.0)` "
        "(each request earns the 2 tokens its 2 retries spend; the default budget would refuse "
        "most of them), and count calls to an injected `sleep` / `async_sleep` (must stay 0). "
        "Peers: httpx-retries `Retry(total=3, backoff_factor=0)`; tenacity "
        "`stop_after_attempt(4)`, `wait_none()`, `retry_if_result(status in "
        "{429, 502, 503, 504}) | retry_if_exception_type(TransportError)`, pre-built and "
        "called per request; stamina `retry_context(on=(TransportError, RetryableStatusError), "
        "attempts=4, wait_initial=0, wait_jitter=0)` per request, instrumentation hooks off.",
        "* Level (a) inner transports return prebuilt responses: `NullTransport` (200), "
        "`FlakyTransport` (503, 503, 200; `is_closed` is reset so that releasing a response "
        "pays for a real `close()`), `RefusingTransport` (raises a fresh `ConnectError` twice, "
        "then 200). Around them, tenacity and stamina do not release the retried responses "
        "(at Client level the Client reads and closes every response). Level (b) adds F, a "
        "forward-only wrapper transport, as a control for what any extra transport layer "
        "costs under a Client.",
        "* Level (c): `_loopback_server.py`, an asyncio HTTP/1.1 keep-alive server on "
        "127.0.0.1 (port 0) in a child process pinned to another CPU than the benchmark; "
        "`/flaky/<id>` answers 503 (11-byte body) twice, then 200. Each block sends one "
        "untimed request first (so an expired keep-alive connection is not counted), then "
        "reads the server's counters before and after the timed loop: the request count must "
        "be exactly N x (1 or 3), and the accepted-connection count gives new TCP connections "
        "per logical request.",
    ]
    out += [
        "",
        "## Targets",
        "",
        "Paired medians from this run, each with a distribution-free ~95 % confidence "
        "interval of the median (order statistics over rounds) and its [min, max] over rounds; "
        "the noise column is the A/A control of the same group (median [min, max]). A verdict "
        "follows the median, as the targets are defined; where the interval straddles the goal "
        "the row says the difference is not resolved at this run's noise.",
        "",
        "| target | goal | measured | result | noise |",
        "|---|---|---|---|---|",
    ]
    for t in targets:
        verdict = "PASS" if t.passed else f"**MISS** ({t.miss})"
        out.append(f"| {t.name} | {t.target} | {t.measured} | {verdict} | {t.noise} |")
    misses = [t for t in targets if not t.passed]
    if misses and not settings.quick:
        out += [
            "",
            "Missed targets are analysed under *What the remaining cost is made of*: the "
            "success-path breakdown and the retry-path components (timing variants) and a "
            "cProfile of the retry path.",
        ]
    out += ["", "## Results", ""]
    for g in groups:
        if not g.analysis:
            out += _group_section(g, summaries[g.key])
    out += ["## Memory", ""]
    out += [
        f"Traced memory (`tracemalloc`, after `gc.collect()`) above the start, for "
        f"{settings.mem_total:,} successful requests through one transport (level a, default "
        "budget):",
        "",
        f"| mode | after {settings.mem_first:,} | after {settings.mem_total:,} | growth | "
        "peak during the run |",
        "|---|---:|---:|---:|---:|",
    ]
    for mode, m in mem.items():
        out.append(
            f"| {mode} | {m['first']:,} B | {m['total']:,} B | {m['total'] - m['first']:+,} B | "
            f"{m['peak']:,} B |"
        )
    out += [
        "",
        "One retried request (503, 503, 200 from a MockTransport with fresh responses; sync; "
        "zero backoff), after warm-up: the traced peak during the call and what is still "
        "allocated while the final response is held (for httpx_retrying: the response's "
        "`retry_history` keeps the two released 503 responses and their events):",
        "",
        "| layer | peak | retained with the response |",
        "|---|---:|---:|",
    ]
    for label, peak, retained in retry_mem:
        out.append(f"| {label} | {peak:,} B | {retained:,} B |")
    out += ["", "## Import time", ""]
    out += [
        f"`python -X importtime -c 'import httpx; import httpx_retrying'`, {settings.import_runs} "
        "fresh processes: cumulative time of the `httpx_retrying` entry, i.e. what it adds on "
        f"top of `import httpx`: median **{imp['median']:.2f} ms** (min {imp['min']:.2f}, max "
        f"{imp['max']:.2f}); `import httpx` itself: {imp['httpx']:.1f} ms. "
        "Bytecode caches are warm (`PYTHONPYCACHEPREFIX` in a temporary directory, written by "
        f"an untimed first run). {imp['count']} modules are imported beyond httpx's; the "
        "largest by median self time: "
        + ", ".join(f"{m} {t:.2f} ms" for t, m in imp["heavy"])
        + ".",
    ]
    out += ["", "## What the remaining cost is made of", ""]
    out += [
        "Timing variants, measured in this run with the same harness: the success path "
        "rebuilt one step at a time (each V row adds one step to the row above it; R is the "
        "package), single operations a retry can involve, each timed alone (Δ vs A is the "
        "cost of one operation; the cProfile below shows which ones the package calls, and "
        "how often per logical request), then that cProfile of the retry path.",
        "",
    ]
    for g in groups:
        if g.analysis:
            out += _group_section(g, summaries[g.key])
    total_us, prof_rows = profile
    out += ["", "### Where the retry path's time goes (cProfile)", ""]
    out += [
        f"cProfile of {settings.profile_n:,} logical requests (503, 503, 200; zero backoff; "
        "`RetryBudget(ratio=2.0)`) through `RetryTransport(FlakyTransport())`, sync. cProfile "
        f"adds its own cost per call (total here {total_us:.1f} µs per logical request against "
        "the unprofiled R row above), so read the shares, not the absolute values. Top "
        "functions by own time:",
        "",
        "| function | calls / logical request | own µs / logical request | share |",
        "|---|---:|---:|---:|",
    ]
    for where, calls, own, share in prof_rows[:16]:
        out.append(f"| `{where}` | {calls:g} | {own:.2f} | {share:.1f} % |")
    out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------------------
# Main


def _source_state() -> tuple[str, str]:
    """Which package source is measured: (its path and git commit, a digest of its files)."""
    import hashlib

    import httpx_retrying

    package = Path(httpx_retrying.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(package.parent), *args], capture_output=True, text=True, timeout=10
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", package.name)
    except (OSError, subprocess.SubprocessError):
        head, dirty = "", ""
    where = str(package)
    if head:
        where += f" at git commit {head}" + (
            f" (with uncommitted changes in {package.name}/)" if dirty else ""
        )
    return where, digest.hexdigest()[:12]


def _pin() -> tuple[int | None, str]:
    """Pin this process to one CPU and return another one for the server."""
    if not hasattr(os, "sched_getaffinity"):
        return None, "not pinned (no sched_setaffinity)"
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, f"not pinned (only CPU {cpus} available)"
    os.sched_setaffinity(0, {cpus[0]})
    return cpus[1], f"benchmark on CPU {cpus[0]}, loopback server on CPU {cpus[1]}"


@contextmanager
def _maybe_server(cpu: int | None) -> Iterator[LoopbackServer]:
    server = LoopbackServer(cpu)
    try:
        yield server
    finally:
        server.close()


B_NOTE = (
    "F is a control: a transport whose `handle_request` only calls the inner one. Its Δ is "
    "what any extra Python-level transport layer costs under a Client in this harness; R's "
    "own logic is what R adds beyond F (compare the level (a) breakdown)."
)


def make_groups(settings: Settings, server: LoopbackServer) -> list[Group]:
    s = settings
    groups = [
        Group("a-success-sync", "(a) success path, sync: `transport.handle_request(request)` "
              "on a minimal inner transport", "sync", s.n_a, s.rounds_a, build_a_success(False)),
        Group("a-success-async", "(a) success path, async (asyncio): "
              "`await transport.handle_async_request(request)`", "asyncio", s.n_a, s.rounds_a,
              build_a_success(True)),
    ]  # fmt: skip
    if trio is not None:
        groups.append(
            Group("a-success-trio", "(a) success path, async under trio (no stamina/tenacity)",
                  "trio", s.n_a, max(1, s.rounds_a // 2), build_a_success(True, peers=False))
        )  # fmt: skip
    groups += [
        Group("a-breakdown-sync", "(a) success path breakdown, sync: the package's fast path "
              "rebuilt step by step (timing variants)", "sync", s.n_a, s.rounds_breakdown,
              build_a_breakdown(False), analysis=True),
        Group("a-breakdown-async", "(a) success path breakdown, async (asyncio)", "asyncio",
              s.n_a, s.rounds_breakdown, build_a_breakdown(True), analysis=True),
        Group("a-mock-sync", "(a) success path, sync, over `httpx.MockTransport`", "sync",
              s.n_a_mock, s.rounds_a_mock, build_a_mock(False)),
        Group("a-mock-async", "(a) success path, async, over `httpx.MockTransport`", "asyncio",
              s.n_a_mock, s.rounds_a_mock, build_a_mock(True)),
        Group("a-retry-sync", "(a) retry path, sync: 503, 503, 200 per logical request, "
              "zero backoff; baseline A = 3 bare attempts", "sync", s.n_a_retry,
              s.rounds_a_retry, build_a_retry(False, refused=False), retries=2),
        Group("a-retry-async", "(a) retry path, async (asyncio): 503, 503, 200, zero backoff",
              "asyncio", s.n_a_retry, s.rounds_a_retry, build_a_retry(True, refused=False),
              retries=2),
        Group("a-refused-sync", "(a) connection errors retried, sync: ConnectError, "
              "ConnectError, 200; baseline A = 3 bare attempts (errors caught)", "sync",
              s.n_a_retry, s.rounds_a_retry, build_a_retry(False, refused=True), retries=2),
        Group("a-refused-async", "(a) connection errors retried, async (asyncio)", "asyncio",
              s.n_a_retry, s.rounds_a_retry, build_a_retry(True, refused=True), retries=2),
        Group("b-success-sync", "(b) success path, sync: `Client.get` over MockTransport",
              "sync", s.n_b, s.rounds_b, build_b(False), note=B_NOTE),
        Group("b-success-async", "(b) success path, async: `AsyncClient.get` over "
              "MockTransport", "asyncio", s.n_b, s.rounds_b, build_b(True), note=B_NOTE),
        Group("c-success-sync", "(c) success path, sync: `Client.get` to the loopback server",
              "sync", s.n_c, s.rounds_c, build_c(False, False, server), server=server),
        Group("c-success-async", "(c) success path, async: `AsyncClient.get` to the loopback "
              "server", "asyncio", s.n_c, s.rounds_c, build_c(True, False, server),
              server=server),
        Group("c-retry-sync", "(c) retry path, sync: `/flaky/<id>` (503, 503, 200); baseline "
              "A = 3 bare `client.get`", "sync", s.n_c_retry, s.rounds_c,
              build_c(False, True, server), retries=2, server=server),
        Group("c-retry-async", "(c) retry path, async: `/flaky/<id>` (503, 503, 200)",
              "asyncio", s.n_c_retry, s.rounds_c, build_c(True, True, server), retries=2,
              server=server),
        Group("retry-components", "Retry path components: single operations a retry can "
              "involve, each timed alone", "sync", s.n_components,
              s.rounds_breakdown, build_retry_components, analysis=True, unit="operation"),
    ]  # fmt: skip
    return groups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts (CI smoke run)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for overhead.md")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--only", default="", help="comma-separated group keys (debugging)")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL

    started = time.perf_counter()
    source = _source_state()  # the code imported now is the code measured
    server_cpu, pinning = (None, "not pinned (--no-pin)") if args.no_pin else _pin()
    if stamina is not None:
        stamina.instrumentation.set_on_retry_hooks([])
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    command = "python benchmarks/overhead.py" + (" --quick" if args.quick else "")
    print(f"{command}: running ...", file=sys.stderr, flush=True)

    with _maybe_server(server_cpu) as server:
        groups = make_groups(settings, server)
        if args.only:
            wanted = set(args.only.split(","))
            groups = [g for g in groups if g.key in wanted]
        for group in groups:
            run_group(group)
    print("  memory ...", file=sys.stderr, flush=True)
    mem = {"sync": memory_growth(settings, False), "async (asyncio)": memory_growth(settings, True)}
    retry_mem = memory_retry_peak()
    print("  import time ...", file=sys.stderr, flush=True)
    imp = import_cost(settings)
    print("  retry-path profile ...", file=sys.stderr, flush=True)
    profile = profile_retry(settings)

    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
    meta = {
        "Command": f"`{command}`" + (" (subset: " + args.only + ")" if args.only else ""),
        "Date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "Python": f"{platform.python_implementation()} {platform.python_version()} "
        f"({sys.executable})",
        "Machine": f"{platform.system()} {platform.release()} {platform.machine()}, "
        f"{os.cpu_count()} cores (os.cpu_count()); {pinning}",
        "Load average (1 min) before / after": (
            f"{load_before[0]:.2f} / {load_after[0]:.2f}" if load_before and load_after else "n/a"
        ),
        "Package source measured": f"{source[0]}; sha256 of its .py files {source[1]}"
        + (
            ", unchanged during the run"
            if _source_state()[1] == source[1]
            else " (**its files changed during the run**)"
        ),
        "Total runtime": f"{time.perf_counter() - started:.0f} s",
    }
    report = render(settings, groups, mem, retry_mem, imp, profile, meta)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overhead.md").write_text(report, encoding="utf-8")
    print(report)
    print(f"written to {args.out / 'overhead.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
