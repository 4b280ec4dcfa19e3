"""What MockTransport cannot show, against a real server on 127.0.0.1.

Pools, connection release, streamed request bodies, resets, stale keep-alive
connections and a Retry-After that is really slept. Every test runs for both
flavours in sync, asyncio and trio unless it says otherwise. Every fault for
every request shape is in test_fault_matrix.py; cancellation is in
test_concurrency.py.
"""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import tenacity

from httpx_retrying import RetryPolicy
from tests.conftest import Harness
from tests.servers import FaultServer, ok, refused_url, status

QUICK = RetryPolicy(backoff=tenacity.wait_none())


def one_connection_pool(harness: Harness) -> Any:
    return harness.http_transport(limits=harness.lib.Limits(max_connections=1))


def tight_timeouts(harness: Harness, read: float = 2.0) -> Any:
    """A short pool timeout turns any leaked connection into a PoolTimeout."""
    return harness.lib.Timeout(5.0, read=read, pool=0.5)


def generator_body(harness: Harness, *chunks: bytes) -> Any:
    """A body that can be streamed once: a generator, or an async one in async modes."""
    if harness.is_async:

        async def agen() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk

        return agen()

    def gen() -> Iterator[bytes]:
        yield from chunks

    return gen()


def test_retries_release_connections_to_a_pool_of_one(
    harness: Harness, server: FaultServer
) -> None:
    """503, 503, 200, then more requests on one connection: no PoolTimeout, no new socket."""
    server.script("/a", status(503, b"busy"), status(503, b"busy"), ok())
    server.script("/b", status(503, b"busy"), ok())
    transport = harness.RetryTransport(one_connection_pool(harness), policy=QUICK)
    timeout = tight_timeouts(harness)
    outcomes = harness.send_all(
        transport,
        [
            ("GET", f"{server.url}/a", {"timeout": timeout}),
            ("GET", f"{server.url}/b", {"timeout": timeout}),
            ("GET", f"{server.url}/c", {"timeout": timeout}),
        ],
    )
    assert [o.status_code for o in outcomes] == [200, 200, 200]
    assert server.count() == 6
    assert server.connections == 1  # small error bodies were drained: keep-alive kept


def test_large_error_bodies_are_closed_unread(harness: Harness, server: FaultServer) -> None:
    """A 1 MiB error body is not downloaded: the connection is dropped, the slot freed."""
    server.script("/big", status(503, b"x" * (1 << 20)), ok())
    transport = harness.RetryTransport(one_connection_pool(harness), policy=QUICK)
    (response,) = harness.send_all(
        transport, [("GET", f"{server.url}/big", {"timeout": tight_timeouts(harness)})]
    )
    assert response.status_code == 200
    assert server.connections == 2


def test_exhausted_response_is_returned_unread(harness: Harness, server: FaultServer) -> None:
    """Giving up returns the last response still streamable, and its slot is the caller's."""
    server.script("/x", *[status(503, b"last words")] * 3)
    transport = harness.RetryTransport(one_connection_pool(harness), policy=QUICK)
    url = f"{server.url}/x"

    if not harness.is_async:
        with harness.lib.Client(transport=transport) as client:
            with client.stream("GET", url) as response:
                assert response.status_code == 503
                assert not response.is_stream_consumed
                assert response.read() == b"last words"
            assert client.get(f"{server.url}/y", timeout=tight_timeouts(harness)).status_code == 200
        return

    async def main() -> None:
        async with harness.lib.AsyncClient(transport=transport) as client:
            async with client.stream("GET", url) as response:
                assert response.status_code == 503
                assert not response.is_stream_consumed
                assert await response.aread() == b"last words"
            follow = await client.get(f"{server.url}/y", timeout=tight_timeouts(harness))
            assert follow.status_code == 200

    harness.run(main)


def test_generator_body_is_never_sent_twice(harness: Harness, server: FaultServer) -> None:
    """A streamed body met by a 503: the 503 comes back, no StreamConsumed, one request seen."""
    server.script("/upload", status(503, b"busy"), ok())
    transport = harness.RetryTransport(one_connection_pool(harness), policy=QUICK)
    body = generator_body(harness, b"chunk-1,", b"chunk-2")
    (response,) = harness.send_all(transport, [("PUT", f"{server.url}/upload", {"content": body})])
    assert response.status_code == 503
    assert server.bodies("/upload") == [b"chunk-1,chunk-2"]


def test_generator_body_is_resent_whole_after_a_connect_error(
    harness: Harness, server: FaultServer
) -> None:
    """Nothing was streamed before a ConnectError, so the body goes out complete on retry."""
    failures = [harness.lib.ConnectError("first connect fails")]

    def connect_fails_once(request: Any) -> None:
        if failures:
            raise failures.pop()

    transport = harness.RetryTransport(
        harness.spy(harness.http_transport(), before=connect_fails_once), policy=QUICK
    )
    body = generator_body(harness, b"all ", b"of ", b"it")
    (response,) = harness.send_all(transport, [("POST", f"{server.url}/p", {"content": body})])
    assert response.status_code == 200
    assert server.bodies("/p") == [b"all of it"]


@pytest.mark.parametrize("flavour", ["httpx", "httpx2"])
def test_file_body_is_never_resent_truncated(flavour: str, server: FaultServer) -> None:
    """A file object is streamed once: a reset after it is not retried (sync only)."""
    harness = Harness(flavour, "sync")
    server.script("/file", "reset_after_read", ok())
    transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)
    body = io.BytesIO(b"file contents")
    (outcome,) = harness.send_all(transport, [("PUT", f"{server.url}/file", {"content": body})])
    assert isinstance(outcome, harness.lib.ReadError | harness.lib.RemoteProtocolError)
    assert server.bodies("/file") == [b"file contents"]


def test_bytes_body_is_replayed_identically(harness: Harness, server: FaultServer) -> None:
    """A reset after the server read the request: a keyed POST is resent byte for byte."""
    server.script("/pay", "reset_after_read", ok())
    transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)
    (response,) = harness.send_all(
        transport,
        [
            (
                "POST",
                f"{server.url}/pay",
                {"content": b"amount=5", "headers": {"Idempotency-Key": "k"}},
            )
        ],
    )
    assert response.status_code == 200
    assert server.bodies("/pay") == [b"amount=5", b"amount=5"]


def test_post_without_key_is_not_resent_after_a_reset(
    harness: Harness, server: FaultServer
) -> None:
    """The server may have processed it: the error surfaces and the server saw it once."""
    server.script("/order", "reset_after_read", ok())
    transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)
    (outcome,) = harness.send_all(transport, [("POST", f"{server.url}/order", {"content": b"1"})])
    assert isinstance(outcome, harness.lib.ReadError | harness.lib.RemoteProtocolError)
    assert server.count("/order") == 1


@pytest.mark.parametrize("fault", ["reset_after_read", "close_after_read", "garbage"])
def test_connection_faults_are_retried_for_get(
    harness: Harness, server: FaultServer, fault: str
) -> None:
    """Resets, silent closes and garbage status lines: a GET retries and succeeds."""
    server.script("/r", fault, ok())
    transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)
    (response,) = harness.send_all(transport, [("GET", f"{server.url}/r", {})])
    assert response.status_code == 200
    assert server.count("/r") == 2


def test_stale_keep_alive_connection_is_absorbed(harness: Harness, server: FaultServer) -> None:
    """The server drops a pooled connection as it is reused: one retry on a new one."""
    server.script("/ka", ok(), "close_after_read", ok())
    transport = harness.RetryTransport(one_connection_pool(harness), policy=QUICK)
    outcomes = harness.send_all(
        transport, [("GET", f"{server.url}/ka", {}), ("GET", f"{server.url}/ka", {})]
    )
    assert [o.status_code for o in outcomes] == [200, 200]
    assert outcomes[1].extensions["retry_history"][0].reason in {"RemoteProtocolError", "ReadError"}
    assert server.connections == 2


def test_stale_keep_alive_race_with_real_timing() -> None:
    """Reusing a connection as the server's idle timeout fires: every GET still succeeds."""
    harness = Harness("httpx", "sync")
    with FaultServer(keepalive_timeout=0.025) as server:
        transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)
        idle = iter([0.0225, 0.024, 0.025, 0.026, 0.0275] * 6)
        outcomes = harness.send_all(
            transport,
            [("GET", f"{server.url}/k", {})] * 30,
            between=lambda: time.sleep(next(idle)),
        )
    assert [getattr(o, "status_code", o) for o in outcomes] == [200] * 30


def test_truncated_response_body_is_retried_only_when_safe(
    harness: Harness, server: FaultServer
) -> None:
    """A small body that breaks is read inside the transport: a GET is retried, a POST is not."""
    server.script("/t", "truncated_body", ok(b"whole"), "truncated_body", ok())
    transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)
    got, posted = harness.send_all(
        transport, [("GET", f"{server.url}/t", {}), ("POST", f"{server.url}/t", {})]
    )
    assert got.content == b"whole"
    assert isinstance(posted, harness.lib.RemoteProtocolError)
    assert server.count("/t") == 3


def test_connect_errors_exhaust_with_the_real_exception(harness: Harness) -> None:
    """A refused port: ConnectError itself after every attempt, with the story noted."""
    transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)
    (outcome,) = harness.send_all(transport, [("POST", refused_url(), {"content": b"x"})])
    assert isinstance(outcome, harness.lib.ConnectError)
    assert "gave up after 3 attempt(s)" in outcome.__notes__[0]


def test_default_inner_transport_is_made_on_first_use(
    harness: Harness, server: FaultServer
) -> None:
    """RetryTransport() with no argument makes the default transport for the mode it is used in."""
    server.script("/d", status(503), ok())
    transport = harness.RetryTransport(policy=QUICK)
    (response,) = harness.send_all(transport, [("GET", f"{server.url}/d", {})])
    assert response.status_code == 200


def test_retry_after_is_really_waited(server: FaultServer) -> None:
    """retry-after-ms: 200, spread by up to 50 %: 0.2 to 0.3 s really pass before the retry.

    One real-time proof, in sync mode; the arithmetic is proved everywhere else with
    recorded sleeps, and test_concurrency's cancellation during a backoff shows that
    the async modes really sleep too.
    """
    harness = Harness("httpx", "sync")
    server.script("/ra", status(503, retry_after_ms="200"), ok())
    transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)  # no backoff
    started = time.monotonic()
    (response,) = harness.send_all(transport, [("GET", f"{server.url}/ra", {})])
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert 0.2 <= response.extensions["retry_history"][0].delay <= 0.3
    assert 0.2 <= elapsed < 2.0  # slept what was asked, not seconds more


def test_a_backoff_that_raises_leaks_no_connection(harness: Harness, server: FaultServer) -> None:
    """A broken user backoff propagates, and the response it interrupted is released."""

    def broken(state: Any) -> float:
        raise ZeroDivisionError("bug in a custom wait")

    server.script("/w", status(503, b"busy"), ok())
    transport = harness.RetryTransport(
        one_connection_pool(harness), policy=RetryPolicy(backoff=broken)
    )
    timeout = tight_timeouts(harness)
    first, second = harness.send_all(
        transport,
        [
            ("GET", f"{server.url}/w", {"timeout": timeout}),
            ("GET", f"{server.url}/next", {"timeout": timeout, "extensions": {"retry": False}}),
        ],
    )
    assert isinstance(first, ZeroDivisionError)
    assert second.status_code == 200
