"""The default retry budget holds down amplification over real sockets.

The simulation (`python -m benchmarks.storm`) drives `RetryBudget` with a simulated clock;
these tests check the same property end to end against a loopback HTTP/1.1 server of fixed
capacity that sheds the excess with 503: many threads sharing one `RetryTransport` (one
process), and a fleet of 200 fresh transports with a budget each (200 young processes).
Server-seen requests per logical request must stay <= 1.3 with the default budget, and be
far higher with `budget=None` under the same load. Everything is bounded: request counts,
thread joins and the server's lifetime.
"""

from __future__ import annotations

import ssl
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
PER_THREAD = 25  # 400 logical requests: the budget's grant of 2 is 0.5 % of them
DEADLINE_S = 60.0  # whole-run bound; a run takes well under 5 s
TIMEOUT_S = 30.0  # per request: generous, a loaded machine must not turn 503s into timeouts


class CapacityServer(ThreadingHTTPServer):
    """Admits at most `max_in_flight` requests and `rate` per second; sheds the rest (503)."""

    daemon_threads = True
    request_queue_size = 512  # 200 clients connect at once: no SYN drops, no 1 s retransmits

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
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK wait
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


def _serve(srv: CapacityServer) -> Iterator[CapacityServer]:
    # shutdown() waits for the next poll: every 5 ms, not the default 0.5 s
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.005})
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=10)
        assert not thread.is_alive()


@pytest.fixture
def server() -> Iterator[CapacityServer]:
    # About 50 requests/s: far below what 16 looping client threads offer, even on a slow box.
    yield from _serve(CapacityServer(max_in_flight=2, service_s=0.01, rate=50.0))


@pytest.fixture
def fleet_server() -> Iterator[CapacityServer]:
    # About 100 requests/s: a fraction of what 200 looping clients offer on any machine.
    yield from _serve(CapacityServer(max_in_flight=2, service_s=0.005, rate=100.0))


@dataclass
class Run:
    """What one overload run sent and what the server saw."""

    logical: int
    seen: int
    shed: int
    statuses: Counter[int]
    budgets: list[RetryBudget]

    @property
    def ratio(self) -> float:
        return self.seen / self.logical


POLICY = RetryPolicy(backoff=backoff_full_jitter(initial=0.005, cap=0.05))


#: One TLS context for every transport: each would otherwise load the CA bundle (~0.1 s).
SSL_CONTEXT = ssl.create_default_context()


def _transport(default_budget: bool) -> RetryTransport:
    inner = httpx.HTTPTransport(verify=SSL_CONTEXT)
    if default_budget:  # what RetryTransport() does unless told otherwise
        return RetryTransport(inner, policy=POLICY)
    return RetryTransport(inner, policy=POLICY, budget=None)


def _overload(
    server: CapacityServer, clients: list[httpx.Client], per_client: int, threads_each: int
) -> Run:
    """`threads_each` threads per client send `per_client` GETs each, all started together."""
    statuses: Counter[int] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()
    seen_before, shed_before = server.seen, server.shed
    barrier = threading.Barrier(len(clients) * threads_each)

    def worker(client: httpx.Client) -> None:
        barrier.wait(timeout=DEADLINE_S)
        for _ in range(per_client):
            try:
                status = client.get(server.url).status_code
            except Exception as exc:  # reported below, not lost in the thread
                with lock:
                    errors.append(exc)
                return
            with lock:
                statuses[status] += 1

    threads = [
        threading.Thread(target=worker, args=(client,))
        for client in clients
        for _ in range(threads_each)
    ]
    end = time.monotonic() + DEADLINE_S
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=max(0.0, end - time.monotonic()))
    finally:
        for client in clients:
            client.close()
    assert not any(thread.is_alive() for thread in threads), "client threads overran"
    assert not errors, errors[:3]
    logical = len(threads) * per_client
    assert sum(statuses.values()) == logical
    budgets = list({id(b): b for c in clients if (b := _budget_of(c)) is not None}.values())
    return Run(logical, server.seen - seen_before, server.shed - shed_before, statuses, budgets)


def _budget_of(client: httpx.Client) -> RetryBudget | None:
    transport = client._transport
    assert isinstance(transport, RetryTransport)
    return transport.budget


def _books_agree(run: Run) -> None:
    """The budgets' own books agree with what the server saw."""
    assert sum(budget.requests for budget in run.budgets) == run.logical
    assert sum(budget.retries_allowed for budget in run.budgets) == run.seen - run.logical
    assert sum(budget.retries_refused for budget in run.budgets) > 0


def test_default_budget_caps_amplification_over_sockets(server: CapacityServer) -> None:
    """16 threads share one transport (one process): about 1.1 requests per logical request."""
    budgeted = _overload(
        server, [httpx.Client(transport=_transport(True), timeout=TIMEOUT_S)], PER_THREAD, THREADS
    )
    naive = _overload(
        server, [httpx.Client(transport=_transport(False), timeout=TIMEOUT_S)], PER_THREAD, THREADS
    )

    # The server really was overloaded: without a budget most attempts were shed.
    assert naive.shed > 0.4 * naive.seen, naive
    assert naive.statuses[503] > 0

    # The default budget keeps failed retries to about 10 % of requests (+ its grant of 2);
    # without one, most logical requests used all 3 attempts.
    assert budgeted.ratio <= 1.3, budgeted
    assert naive.ratio > 1.8, naive
    assert naive.ratio > budgeted.ratio + 0.5
    assert len(budgeted.budgets) == 1
    _books_agree(budgeted)


FLEET = 200  # client transports, each with its own default budget: 200 young processes
FLEET_REQUESTS = 15  # per transport: the grant of 2 is spread over 15 requests


def test_a_fleet_of_young_transports_stays_near_the_ratio(fleet_server: CapacityServer) -> None:
    """200 fresh transports, each its own default budget, hammer a small server at once.

    Each holds only its grant before it has earned more, so the fleet adds up 200 x 2
    retries, not 200 x 10: server-seen requests per logical request stay <= 1.3, where
    budget=None sends nearly 3 (fewer requests per client there: the ratio does not
    depend on it).
    """

    def clients(default_budget: bool) -> list[httpx.Client]:
        transports = [_transport(default_budget) for _ in range(FLEET)]
        return [httpx.Client(transport=transport, timeout=TIMEOUT_S) for transport in transports]

    budgeted = _overload(fleet_server, clients(True), FLEET_REQUESTS, 1)
    naive = _overload(fleet_server, clients(False), 2, 1)

    assert naive.shed > 0.5 * naive.seen, naive  # several times the capacity was offered
    assert budgeted.ratio <= 1.3, budgeted
    assert naive.ratio > 2.0, naive
    assert len(budgeted.budgets) == FLEET
    _books_agree(budgeted)
