"""Policy behaviour through MockTransport, for both flavours, sync, asyncio and trio.

MockTransport buffers request bodies and has no pool, so body replay and
connection release are proved against a real server in test_real_server.py.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest
import tenacity

from httpx_retrying import RetryBudget, RetryEvent, RetryPolicy
from tests.conftest import FakeClock, Harness
from tests.mocks import FAST, Script, clocked, make


def test_first_try_success_is_returned_untouched(harness: Harness) -> None:
    """One call, no history, no sleep."""
    script = Script(harness.lib, 200)
    transport, sleeps = make(harness, script)
    response = harness.send(transport, "GET", "http://test/")
    assert response.status_code == 200
    assert "retry_history" not in response.extensions
    assert (len(script.seen), sleeps) == (1, [])


def test_retryable_status_is_retried_with_backoff(harness: Harness) -> None:
    """503, 503, 200: three calls, two sleeps, the history on the final response."""
    script = Script(harness.lib, 503, 502, 200)
    transport, sleeps = make(harness, script)
    response = harness.send(transport, "GET", "http://test/")
    assert response.status_code == 200
    assert sleeps == [0.25, 0.25]
    history = response.extensions["retry_history"]
    assert [(event.attempt, event.reason) for event in history] == [
        (1, "status 503"),
        (2, "status 502"),
    ]
    assert all(isinstance(event, RetryEvent) for event in history)


def test_exhaustion_returns_the_last_response(harness: Harness) -> None:
    """After `attempts` tries the last response comes back as it is, not an error."""
    script = Script(harness.lib, 503, 503, 504, 200)
    transport, sleeps = make(harness, script)
    response = harness.send(transport, "GET", "http://test/")
    assert response.status_code == 504
    assert response.content == b"body"
    assert len(script.seen) == 3
    assert len(sleeps) == 2
    with pytest.raises(harness.lib.HTTPStatusError):
        response.raise_for_status()


@pytest.mark.parametrize(
    ("method", "headers", "calls"),
    [
        ("POST", {}, 1),
        ("PATCH", {}, 1),
        ("PATCH", {"X-Idempotency-Key": "k-2"}, 2),
        ("POST", {"Idempotency-Key": "k-1"}, 2),
        ("PUT", {}, 2),
        ("DELETE", {}, 2),
        ("get", {}, 2),
    ],
)
def test_statuses_are_retried_only_for_idempotent_requests(
    harness: Harness, method: str, headers: dict[str, str], calls: int
) -> None:
    """RFC 9110 idempotent methods, or any method with an Idempotency-Key."""
    script = Script(harness.lib, 503, 200)
    transport, _ = make(harness, script)
    response = harness.send(transport, method, "http://test/", headers=headers, content=b"x")
    assert len(script.seen) == calls
    assert response.status_code == (200 if calls == 2 else 503)


def test_server_hints(harness: Harness) -> None:
    """x-should-retry: false forbids; true allows POST and unlisted error statuses."""
    lib = harness.lib
    script = Script(
        lib,
        lib.Response(503, headers={"x-should-retry": "false"}),
        lib.Response(500, headers={"x-should-retry": "true"}),
        lib.Response(500, headers={"x-should-retry": "TRUE"}),
        lib.Response(500),
        lib.Response(200, headers={"x-should-retry": "true"}),
    )
    transport, _ = make(harness, script)
    outcomes = harness.send_all(
        transport,
        [
            ("GET", "http://test/a", {}),  # 503 + false: returned
            ("POST", "http://test/b", {"content": b"x"}),  # 500 + true, 500 + true, 500
            ("GET", "http://test/c", {}),  # 200 + true is a success
        ],
    )
    assert [outcome.status_code for outcome in outcomes] == [503, 500, 200]
    assert [request.url.path for request in script.seen] == ["/a", "/b", "/b", "/b", "/c"]


def test_unlisted_status_is_not_retried(harness: Harness) -> None:
    """500 is not in the default statuses: one call."""
    script = Script(harness.lib, 500, 200)
    transport, _ = make(harness, script)
    assert harness.send(transport, "GET", "http://test/").status_code == 500
    assert len(script.seen) == 1


@pytest.mark.parametrize("name", ["ConnectError", "ConnectTimeout", "PoolTimeout"])
def test_errors_before_sending_are_retried_for_any_method(harness: Harness, name: str) -> None:
    """Nothing reached the server: POST is retried too."""
    error = getattr(harness.lib, name)("nothing sent")
    script = Script(harness.lib, error, 200)
    transport, _ = make(harness, script)
    response = harness.send(transport, "POST", "http://test/", content=b"x")
    assert response.status_code == 200
    assert response.extensions["retry_history"][0].reason == name
    assert response.extensions["retry_history"][0].exception is error


@pytest.mark.parametrize(
    "name", ["ReadTimeout", "ReadError", "WriteTimeout", "WriteError", "RemoteProtocolError"]
)
def test_errors_after_sending_are_retried_only_when_idempotent(harness: Harness, name: str) -> None:
    """Maybe processed: GET is retried, POST gets the error back after one call."""
    lib = harness.lib
    script = Script(lib, getattr(lib, name)("maybe"), 200, getattr(lib, name)("maybe"), 200)
    transport, _ = make(harness, script)
    get, post = harness.send_all(
        transport, [("GET", "http://test/", {}), ("POST", "http://test/", {"content": b"x"})]
    )
    assert get.status_code == 200
    assert isinstance(post, getattr(lib, name))
    assert len(script.seen) == 3


@pytest.mark.parametrize(
    "make_error",
    [
        lambda lib: lib.LocalProtocolError("bad header"),
        lambda lib: lib.UnsupportedProtocol("ftp"),
        lambda lib: lib.ProxyError("proxy said no"),
        lambda lib: ValueError("not an httpx error"),
        lambda lib: lib.StreamConsumed(),
    ],
)
def test_other_errors_propagate_unchanged(harness: Harness, make_error: Any) -> None:
    """Never retried, the same object, no note added."""
    error = make_error(harness.lib)
    script = Script(harness.lib, error, 200)
    transport, _ = make(harness, script)
    raised = harness.send(transport, "GET", "http://test/")
    assert raised is error
    assert len(script.seen) == 1
    assert not getattr(raised, "__notes__", None)


def test_exhaustion_reraises_the_last_error_with_its_story(harness: Harness) -> None:
    """The last exception object itself, its own class, with a PEP 678 note."""
    lib = harness.lib
    errors = [lib.ConnectError("one"), lib.ReadTimeout("two"), lib.ConnectError("three")]
    script = Script(lib, *errors)
    transport, _ = make(harness, script)
    raised = harness.send(transport, "GET", "http://test/")
    assert raised is errors[-1]
    (note,) = raised.__notes__
    assert "gave up after 3 attempt(s)" in note
    assert "attempt 1: ConnectError" in note
    assert "attempt 2: ReadTimeout" in note
    assert "all 3 attempts used" in note


def test_per_request_policy_and_opt_out(harness: Harness) -> None:
    """extensions["retry"]: a policy for this request, False for none, True for the default."""
    script = Script(harness.lib, *([503] * 10))
    transport, _ = make(harness, script, budget=None)  # 3 retries: more than a fresh grant
    outcomes = harness.send_all(
        transport,
        [
            ("GET", "http://test/a", {"extensions": {"retry": False}}),
            ("GET", "http://test/b", {"extensions": {"retry": RetryPolicy(attempts=2)}}),
            ("GET", "http://test/c", {"extensions": {"retry": True}}),
        ],
    )
    assert [o.status_code for o in outcomes] == [503, 503, 503]
    assert [r.url.path for r in script.seen] == ["/a", "/b", "/b", "/c", "/c", "/c"]


def test_invalid_per_request_policy_is_a_clear_error(harness: Harness) -> None:
    """A wrong extension value is a TypeError naming it, before anything is sent."""
    script = Script(harness.lib)
    transport, _ = make(harness, script)
    raised = harness.send(transport, "GET", "http://test/", extensions={"retry": 3})
    assert isinstance(raised, TypeError)
    assert 'extensions["retry"]' in str(raised)
    assert script.seen == []


def test_retry_after_is_a_floor_spread_upwards(harness: Harness) -> None:
    """Retry-After 2 with spread 0.5 and random 0.5: a 2.5 s wait; ms form preferred."""
    lib = harness.lib
    script = Script(
        lib,
        lib.Response(503, headers={"Retry-After": "2"}),
        lib.Response(429, headers={"retry-after-ms": "1000", "Retry-After": "30"}),
        200,
    )
    transport, sleeps = make(harness, script, random=lambda: 0.5)
    assert harness.send(transport, "GET", "http://test/").status_code == 200
    assert sleeps == [2.5, 1.25]


def test_retry_after_beyond_the_maximum_returns_at_once(harness: Harness) -> None:
    """A server asking for more than max_retry_after gets its response back, no sleep."""
    lib = harness.lib
    script = Script(lib, lib.Response(503, headers={"Retry-After": "3600"}), 200)
    transport, sleeps = make(harness, script)
    response = harness.send(transport, "GET", "http://test/")
    assert (response.status_code, sleeps, len(script.seen)) == (503, [], 1)


def test_retry_after_ignored_when_not_respected(harness: Harness) -> None:
    """respect_retry_after=False: the backoff alone decides."""
    lib = harness.lib
    script = Script(lib, lib.Response(503, headers={"Retry-After": "3600"}), 200)
    policy = dataclasses.replace(FAST, respect_retry_after=False)
    transport, sleeps = make(harness, script, policy=policy)
    assert harness.send(transport, "GET", "http://test/").status_code == 200
    assert sleeps == [0.25]


def test_deadline_stops_before_a_sleep_that_would_pass_it(harness: Harness) -> None:
    """Sleeps of 1, 2, 4 s against a 5 s deadline: two sleeps, then the last response."""
    clock = FakeClock()
    script = Script(harness.lib, *([503] * 10))
    policy = RetryPolicy(
        attempts=10, backoff=tenacity.wait_exponential(multiplier=1, max=60), deadline=5.0
    )
    transport = clocked(harness, script, policy, clock)
    response = harness.send(transport, "GET", "http://test/", timeout=10.0)
    assert response.status_code == 503
    assert clock.sleeps == [1, 2]
    # Each attempt's timeouts were cut to the time left: 5 s, then 4 s, then 2 s.
    reads = [request.extensions["timeout"]["read"] for request in script.seen]
    assert reads == [5.0, 4.0, 2.0]


def test_deadline_cuts_missing_timeouts_too(harness: Harness) -> None:
    """A request with no timeout at all still gets the time left on each attempt."""
    clock = FakeClock()
    script = Script(harness.lib, 503, 200)
    policy = RetryPolicy(backoff=tenacity.wait_fixed(1), deadline=3.0)
    transport = clocked(harness, script, policy, clock)
    response = harness.send(transport, "GET", "http://test/", timeout=None)
    assert response.status_code == 200
    assert [r.extensions["timeout"] for r in script.seen] == [
        dict.fromkeys(("connect", "read", "write", "pool"), 3.0),
        dict.fromkeys(("connect", "read", "write", "pool"), 2.0),
    ]


def test_budget_refusal_gives_up_like_exhaustion(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A spent budget: the last response comes back, and the log says why."""
    budget = RetryBudget(capacity=1, ratio=0, per_second=0)
    budget.record_request()  # not the first request: that one may use all its attempts
    script = Script(harness.lib, *([503] * 10))
    transport, sleeps = make(harness, script, budget=budget)
    with caplog.at_level(logging.INFO, logger="httpx_retrying"):
        response = harness.send(transport, "GET", "http://test/")
    assert response.status_code == 503
    assert len(script.seen) == 2
    assert len(sleeps) == 1
    assert (budget.retries_allowed, budget.retries_refused) == (1, 1)
    assert "retry budget is spent" in caplog.text


def test_budget_refusal_of_an_error_notes_it(harness: Harness) -> None:
    """Refused before any retry: the error carries a note saying so."""
    budget = RetryBudget(capacity=1, ratio=0, per_second=0)
    budget.record_request()  # not the first request: that one may use all its attempts
    budget.try_acquire()
    error = harness.lib.ConnectError("down")
    transport, _ = make(harness, Script(harness.lib, error), budget=budget)
    raised = harness.send(transport, "GET", "http://test/")
    assert raised is error
    assert "retry budget is spent" in raised.__notes__[0]


def test_no_budget_means_no_limit(harness: Harness) -> None:
    """budget=None: every attempt the policy allows is made."""
    script = Script(harness.lib, *([503] * 20))
    policy = dataclasses.replace(FAST, attempts=20)
    transport, _ = make(harness, script, policy=policy, budget=None)
    assert transport.budget is None
    harness.send(transport, "GET", "http://test/")
    assert len(script.seen) == 20


def test_hooks_see_each_retry_and_a_failing_hook_does_not_stop_it(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Hooks get frozen events in order; one that raises is logged, the retry goes on."""
    events: list[RetryEvent] = []

    def broken(event: RetryEvent) -> None:
        raise RuntimeError("hook bug")

    lib = harness.lib
    script = Script(lib, 503, lib.ConnectError("x"), 200)
    transport, _ = make(harness, script, on_retry=[events.append, broken])
    with caplog.at_level(logging.ERROR, logger="httpx_retrying"):
        response = harness.send(transport, "GET", "http://test/")
    assert response.status_code == 200
    assert [(e.attempt, e.delay, e.reason) for e in events] == [
        (1, 0.25, "status 503"),
        (2, 0.25, "ConnectError"),
    ]
    assert events[0].response is not None
    assert events[0].response.is_closed
    assert events[1].response is None
    assert isinstance(events[1].exception, lib.ConnectError)
    with pytest.raises(dataclasses.FrozenInstanceError):
        events[0].attempt = 9  # type: ignore[misc]
    assert sum(r.levelno == logging.ERROR for r in caplog.records) == 2
    assert "hook bug" in caplog.text


def test_one_log_line_per_retry_without_secrets(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """INFO lines name method, URL without userinfo or query, attempt, reason and delay."""
    script = Script(harness.lib, 503, 200)
    transport, _ = make(harness, script)
    with caplog.at_level(logging.INFO, logger="httpx_retrying"):
        harness.send(
            transport,
            "GET",
            "http://user:hunter2@test/path?token=s3cret",
            headers={"Authorization": "Bearer s3cret", "Cookie": "id=s3cret"},
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx_retrying"]
    assert lines == [
        "Retrying GET http://test/path in 0.250 s: attempt 1 of 3 failed with status 503"
    ]
    assert "s3cret" not in caplog.text
    assert "hunter2" not in caplog.text


def test_opt_in_attempt_header_and_idempotency_key(harness: Harness) -> None:
    """The attempt number on every attempt; one key per logical request, kept across attempts."""
    script = Script(harness.lib, 503, 503, 200, 200)
    policy = dataclasses.replace(FAST, attempt_header="x-attempt", idempotency_key=True)
    transport, _ = make(harness, script, policy=policy)
    first, second = harness.send_all(
        transport,
        [("POST", "http://test/", {"content": b"x"}), ("GET", "http://test/", {})],
    )
    assert first.status_code == 200
    assert second.status_code == 200
    assert [r.headers["x-attempt"] for r in script.seen] == ["1", "2", "3", "1"]
    keys = [r.headers.get("idempotency-key") for r in script.seen]
    assert keys[0] is not None
    assert keys[0] == keys[1] == keys[2]
    assert keys[3] is None  # GET is idempotent already
    assert first.request.headers["idempotency-key"] == keys[0]


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_backoff_without_a_usable_delay_gives_up(harness: Harness, value: float) -> None:
    """A user backoff returning NaN or infinity ends the retries instead of sleeping forever."""
    script = Script(harness.lib, 503, 200)
    transport, sleeps = make(harness, script, policy=RetryPolicy(backoff=lambda state: value))
    assert harness.send(transport, "GET", "http://test/").status_code == 503
    assert sleeps == []


def test_a_negative_backoff_means_no_wait(harness: Harness) -> None:
    """A user backoff below zero is treated as zero: no sleep call at all."""
    script = Script(harness.lib, 503, 200)
    transport, sleeps = make(harness, script, policy=RetryPolicy(backoff=lambda state: -1.0))
    assert harness.send(transport, "GET", "http://test/").status_code == 200
    assert sleeps == []


def test_discarded_bodies_are_drained_only_up_to_a_limit(harness: Harness) -> None:
    """An unsized error body is read up to 64 KiB, then closed; a failing one is closed too."""
    lib = harness.lib
    reads: list[int] = []

    def endless() -> Any:
        for index in range(1000):
            reads.append(index)
            yield b"x" * 16384

    def broken() -> Any:
        yield b"partial"
        raise lib.ReadError("connection lost while draining")

    async def aendless() -> Any:
        for chunk in endless():
            yield chunk

    async def abroken() -> Any:
        for chunk in broken():
            yield chunk

    bodies = (aendless, abroken) if harness.is_async else (endless, broken)
    script = Script(
        lib, lib.Response(503, content=bodies[0]()), lib.Response(503, content=bodies[1]()), 200
    )
    transport, _ = make(harness, script)
    assert harness.send(transport, "GET", "http://test/").status_code == 200
    # 5 x 16 KiB > 64 KiB: sync stops there; async cancels at the next await, and an
    # in-memory stream that never awaits is cut at 4 x 64 KiB (17 chunks).
    assert len(reads) == (17 if harness.is_async else 5)


def test_strategies_that_read_the_outcome_see_it(harness: Harness) -> None:
    """A tenacity wait may read `outcome` (result or exception) and the timings, as in tenacity.

    (tenacity 9.0's `wait_combine` passes `retry_state=` by keyword, hence the name.)
    """
    lib = harness.lib
    seen: list[Any] = []

    def by_outcome(retry_state: tenacity.RetryCallState) -> float:
        assert retry_state.outcome is not None
        assert retry_state.outcome is retry_state.outcome  # built once
        seen.append(retry_state.outcome.exception() or retry_state.outcome.result().status_code)
        assert retry_state.seconds_since_start is not None
        return 0.125

    script = Script(lib, 503, lib.ConnectError("refused"), 200)

    def failed(retry_state: tenacity.RetryCallState) -> float:
        assert retry_state.outcome is not None
        return 1.0 if retry_state.outcome.failed else 0.0

    policy = RetryPolicy(backoff=tenacity.wait_combine(by_outcome, failed))
    transport, sleeps = make(harness, script, policy=policy)
    assert harness.send(transport, "GET", "http://test/").status_code == 200
    assert seen[0] == 503
    assert isinstance(seen[1], lib.ConnectError)
    assert sleeps == [0.125, 1.125]
