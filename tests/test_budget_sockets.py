"""The default retry budget holds down amplification over real sockets.

The simulation (`benchmarks/storm.py`) drives `RetryBudget` with a simulated clock; this
test checks the same property end to end: many threads share one `RetryTransport` (one
budget, as in one client process) against a loopback HTTP/1.1 server of fixed capacity
that sheds the excess with 503. Server-seen requests per logical request must stay near
1.1 with the default budget, and be far higher with `budget=None` under the same load.
Everything is bounded: request counts, thread joins and the server's lifetime.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from httpx_retrying import RetryBudget, RetryPolicy, RetryTransport, backoff_full_jitter

THREADS = 16
PER_THREAD = 25  # 400 logical requests: the budget's 10 starting tokens are 2.5 % of them
DEADLINE_S = 60.0  # whole-run bound; a run takes well under 5 s


class CapacityServer(ThreadingHTTPServer):
    """Admits at most `max_in_flight` requests and `rate` per second; sheds the rest (503)."""

    daemon_threads = True

    def __init__(self, *, max_in_flight: int, service_s: float, rate: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.max_in_flight, self.service_s, self.rate = max_in_flight, service_s, rate
        self.lock = threading.Lock()
        self.seen = self.shed = self.in_flight = 0
        self._tokens = rate / 10  # a burst of a tenth of a second
        self._refilled = time.monotonic()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"

    def admit(self) -> bool:
        with self.lock:
            self.seen += 1
            now = time.monotonic()
            self._tokens = min(self.rate / 10, self._tokens + (now - self._refilled) * self.rate)
            self._refilled = now
            if self.in_flight >= self.max_in_flight or self._tokens < 1:
                self.shed += 1
                return False
            self._tokens -= 1
            self.in_flight += 1
            return True

    def release(self) -> None:
        with self.lock:
            self.in_flight -= 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real client pool expects
    timeout = 10  # an idle keep-alive connection's thread ends by itself
    server: CapacityServer

    def do_GET(self) -> None:
        if not self.server.admit():
            self._reply(503, b"overloaded\n")
            return
        try:
            time.sleep(self.server.service_s)
            self._reply(200, b"ok\n")
        finally:
            self.server.release()

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[CapacityServer]:
    # About 50 requests/s: far below what 16 looping client threads offer, even on a slow box.
    srv = CapacityServer(max_in_flight=2, service_s=0.01, rate=50.0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=10)
        assert not thread.is_alive()


@dataclass
class Run:
    """What one overload run sent and what the server saw."""

    logical: int
    seen: int
    shed: int
    statuses: Counter[int]
    budget: RetryBudget | None

    @property
    def ratio(self) -> float:
        return self.seen / self.logical


def _overload(server: CapacityServer, *, default_budget: bool) -> Run:
    """THREADS threads, PER_THREAD GETs each, through one shared client and transport."""
    policy = RetryPolicy(backoff=backoff_full_jitter(initial=0.005, cap=0.05))
    if default_budget:  # what RetryTransport() does unless told otherwise
        transport = RetryTransport(httpx.HTTPTransport(), policy=policy)
    else:
        transport = RetryTransport(httpx.HTTPTransport(), policy=policy, budget=None)
    statuses: Counter[int] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()
    seen_before = server.seen
    shed_before = server.shed

    with httpx.Client(transport=transport, timeout=5.0) as client:

        def worker() -> None:
            for _ in range(PER_THREAD):
                try:
                    status = client.get(server.url).status_code
                except Exception as exc:  # reported below, not lost in the thread
                    with lock:
                        errors.append(exc)
                    return
                with lock:
                    statuses[status] += 1

        threads = [threading.Thread(target=worker) for _ in range(THREADS)]
        end = time.monotonic() + DEADLINE_S
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=max(0.0, end - time.monotonic()))
        assert not any(thread.is_alive() for thread in threads), "client threads overran"
    assert not errors, errors[:3]
    logical = THREADS * PER_THREAD
    assert sum(statuses.values()) == logical
    return Run(
        logical, server.seen - seen_before, server.shed - shed_before, statuses, transport.budget
    )


def test_default_budget_caps_amplification_over_sockets(server: CapacityServer) -> None:
    budgeted = _overload(server, default_budget=True)
    naive = _overload(server, default_budget=False)

    # The server really was overloaded: without a budget most attempts were shed.
    assert naive.shed > 0.4 * naive.seen, naive
    assert naive.statuses[503] > 0

    # The default budget keeps retries to about 10 % of requests (+ 10 starting tokens
    # and 1 token/s); without one, most logical requests used all 3 attempts.
    assert budgeted.ratio <= 1.3, budgeted
    assert naive.ratio > 1.8, naive
    assert naive.ratio > budgeted.ratio + 0.5

    # The budget's own books agree with what the server saw.
    budget = budgeted.budget
    assert budget is not None
    assert budget.requests == budgeted.logical
    assert budget.retries_allowed == budgeted.seen - budgeted.logical
    assert budget.retries_refused > 0
