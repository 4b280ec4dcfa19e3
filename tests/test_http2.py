"""HTTP/2: discarded bodies never stall a connection, and "not processed" is retried for any method.

Against servers on 127.0.0.1 speaking HTTP/2 with prior knowledge: hypercorn
(with h2), which this project did not write, and a small `h2` server that sends
RST_STREAM(REFUSED_STREAM) and GOAWAY(0) on purpose.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import tenacity

from httpx_retrying import RetryPolicy
from tests.conftest import Harness
from tests.h2_server import H2Server, Reset, goaway, refuse
from tests.real_servers import HypercornServer, ScriptedApp
from tests.servers import Reply, ok, status

QUICK = RetryPolicy(backoff=tenacity.wait_none())


def h2_transport(harness: Harness) -> Any:
    """HTTP/2 only (prior knowledge), one connection: every request shares one window."""
    limits = harness.lib.Limits(max_connections=1)
    return harness.http_transport(http1=False, http2=True, limits=limits)


@pytest.fixture(scope="module")
def hypercorn() -> Iterator[tuple[HypercornServer, ScriptedApp]]:
    app = ScriptedApp()
    with HypercornServer(app, graceful_timeout=0.25) as server:
        yield server, app


def test_discarded_error_bodies_never_stall_the_connection(
    harness: Harness, hypercorn: tuple[HypercornServer, ScriptedApp]
) -> None:
    """20 rounds of a 1 MiB 503 then a 200 on one HTTP/2 connection: no attempt times out.

    0.1 closed such bodies unread; httpcore neither resets the stream nor
    acknowledges its data, so from the 17th round on the 200 timed out (the
    window was spent). Released bodies are now read to their end.
    """
    server, app = hypercorn
    path = f"/h2-{harness.flavour}-{harness.mode}"
    for _ in range(20):
        app.script(path, status(503, b"x" * (1 << 20)), ok())
    transport = harness.RetryTransport(h2_transport(harness), policy=QUICK, budget=None)
    timeout = harness.lib.Timeout(5.0, read=2.0)
    outcomes = harness.send_all(
        transport, [("GET", f"{server.url}{path}", {"timeout": timeout})] * 20
    )
    reasons = [
        [event.reason for event in getattr(outcome, "extensions", {}).get("retry_history", ())]
        for outcome in outcomes
    ]
    assert [getattr(outcome, "status_code", outcome) for outcome in outcomes] == [200] * 20
    assert reasons == [["status 503"]] * 20  # never a ReadTimeout retried away
    assert all(outcome.extensions["http_version"] == b"HTTP/2" for outcome in outcomes)


@pytest.mark.parametrize("signal", ["refused", "goaway-0"])
def test_a_post_that_was_provably_not_processed_is_retried(harness: Harness, signal: str) -> None:
    """REFUSED_STREAM or GOAWAY(0): the POST is resent, and processed exactly once."""
    action = refuse() if signal == "refused" else goaway(0)
    with H2Server() as server:
        server.script("/p", action, Reply(201, (), b"made"))
        transport = harness.RetryTransport(h2_transport(harness), policy=QUICK)
        response = harness.send(transport, "POST", f"{server.url}/p", content=b"order")
        assert server.processed("POST", "/p") == 1
    assert response.status_code == 201
    (event,) = response.extensions["retry_history"]
    assert event.reason == "RemoteProtocolError (not processed)"


def test_a_reset_after_processing_is_not_retried_for_a_post(harness: Harness) -> None:
    """RST_STREAM(CANCEL) after the body was read may follow processing: the POST is not resent."""
    with H2Server() as server:
        server.script("/p", Reset(error_code=8, after=0), Reply(201, (), b"made"))
        transport = harness.RetryTransport(h2_transport(harness), policy=QUICK)
        outcome = harness.send(transport, "POST", f"{server.url}/p", content=b"order")
        assert server.processed("POST", "/p") == 1
    assert isinstance(outcome, harness.lib.RemoteProtocolError)
