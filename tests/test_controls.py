"""Controls users expect: a retry predicate, a testing mode, per-request field overrides.

Through MockTransport for both flavours, sync, asyncio and trio; the predicate's
view of a preloaded body is proved on a real server in test_body_phase.py.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import tenacity

from httpx_retrying import RetryPolicy, set_testing, testing
from tests.conftest import FakeClock, Harness
from tests.mocks import FAST, Script, clocked, make

# -- should_retry ------------------------------------------------------------


def test_predicate_retries_a_success_carrying_an_error_document(harness: Harness) -> None:
    """True retries even a 200; it is asked about every outcome but the last attempt's."""
    lib = harness.lib
    seen: list[Any] = []

    def should_retry(response: Any, exception: Exception | None) -> bool | None:
        seen.append((response.status_code, response.content, exception))
        return True if b"error" in response.content else None

    script = Script(
        lib, lib.Response(200, content=b'{"error": 1}'), lib.Response(200, content=b"{}")
    )
    transport, sleeps = make(harness, script, policy=RetryPolicy(should_retry=should_retry))
    response = harness.send(transport, "GET", "http://test/")
    assert (response.status_code, response.content) == (200, b"{}")
    assert seen == [(200, b'{"error": 1}', None), (200, b"{}", None)]
    assert len(sleeps) == 1
    assert response.extensions["retry_history"][0].reason == "status 200"


def test_predicate_is_not_asked_on_the_last_attempt(harness: Harness) -> None:
    """With attempts left it is asked; the last outcome is returned without asking."""
    asked: list[int] = []

    def should_retry(response: Any, exception: Exception | None) -> bool | None:
        asked.append(response.status_code)
        return True

    transport, _ = make(
        harness,
        Script(harness.lib, 500, 500, 500),
        policy=RetryPolicy(attempts=3, should_retry=should_retry, backoff=tenacity.wait_none()),
    )
    assert harness.send(transport, "GET", "http://test/").status_code == 500
    assert asked == [500, 500]


def failures(response: Any, exception: Exception | None) -> bool | None:
    """A predicate that vouches for every 5xx and leaves the rest to the rules."""
    return True if response is not None and response.status_code >= 500 else None


def test_predicate_true_vouches_for_a_post_but_never_overrides_the_server(harness: Harness) -> None:
    """True makes a POST retryable; x-should-retry: false still wins; False forbids a 503 retry."""
    lib = harness.lib
    always = RetryPolicy(should_retry=failures, backoff=tenacity.wait_none())
    script = Script(lib, 503, 200)
    transport, _ = make(harness, script, policy=always)
    assert harness.send(transport, "POST", "http://test/", content=b"x").status_code == 200
    assert len(script.seen) == 2

    refused = lib.Response(503, headers={"x-should-retry": "false"})
    script = Script(lib, refused, 200)
    transport, _ = make(harness, script, policy=always)
    assert harness.send(transport, "GET", "http://test/").status_code == 503
    assert len(script.seen) == 1

    never = RetryPolicy(should_retry=lambda response, exception: False)
    script = Script(lib, 503, 200)
    transport, _ = make(harness, script, policy=never)
    assert harness.send(transport, "GET", "http://test/").status_code == 503
    assert len(script.seen) == 1


def test_predicate_sees_errors_and_cannot_revive_client_side_ones(harness: Harness) -> None:
    """Errors reach the predicate; True retries a ReadError on POST, never a LocalProtocolError."""
    lib = harness.lib
    seen: list[str] = []

    def should_retry(response: Any, exception: Exception | None) -> bool | None:
        if exception is None:
            return None
        assert response is None
        seen.append(type(exception).__name__)
        return True

    policy = RetryPolicy(should_retry=should_retry, backoff=tenacity.wait_none())
    script = Script(lib, lib.ReadError("reset"), 200)
    transport, _ = make(harness, script, policy=policy)
    assert harness.send(transport, "POST", "http://test/", content=b"x").status_code == 200

    script = Script(lib, lib.LocalProtocolError("bad header"), 200)
    transport, _ = make(harness, script, policy=policy)
    outcome = harness.send(transport, "GET", "http://test/")
    assert isinstance(outcome, lib.LocalProtocolError)
    assert seen == ["ReadError", "LocalProtocolError"]
    assert len(script.seen) == 1


def test_predicate_errors_propagate_and_bad_verdicts_are_named(harness: Harness) -> None:
    """A raising predicate's exception reaches the caller; a non-bool verdict is a TypeError."""

    def broken(response: Any, exception: Exception | None) -> bool | None:
        raise LookupError("predicate bug")

    transport, _ = make(harness, Script(harness.lib, 503), policy=RetryPolicy(should_retry=broken))
    assert isinstance(harness.send(transport, "GET", "http://test/"), LookupError)

    vague = RetryPolicy(should_retry=lambda response, exception: "yes")  # type: ignore[arg-type, return-value]
    transport, _ = make(harness, Script(harness.lib, 503), policy=vague)
    outcome = harness.send(transport, "GET", "http://test/")
    assert isinstance(outcome, TypeError)
    assert "should_retry" in str(outcome)


def test_predicate_is_still_bounded_by_the_budget(harness: Harness) -> None:
    """True does not bypass the budget: an empty budget refuses the retry."""
    from httpx_retrying import RetryBudget

    budget = RetryBudget()
    for _ in range(2):  # past a fresh transport's first request, which may always retry
        budget.record_request()
    for _ in range(100):
        if not budget.try_acquire():
            break
    assert not budget.try_acquire()
    policy = RetryPolicy(should_retry=lambda response, exception: True)
    script = Script(harness.lib, 200, 200)
    transport, _ = make(harness, script, policy=policy, budget=budget)
    assert harness.send(transport, "GET", "http://test/").status_code == 200
    assert len(script.seen) == 1


def test_predicate_must_be_callable() -> None:
    """A non-callable is refused at construction, naming the field."""
    with pytest.raises(TypeError, match="should_retry"):
        RetryPolicy(should_retry=True)  # type: ignore[arg-type]


# -- testing mode --------------------------------------------------------------


def test_testing_mode_never_sleeps_but_reports_the_delays(harness: Harness) -> None:
    """Inside `testing()`, delays are computed and recorded, and no sleep is called."""
    script = Script(harness.lib, 503, 503, 200)
    transport, sleeps = make(harness, script)
    with testing():
        response = harness.send(transport, "GET", "http://test/")
    assert response.status_code == 200
    assert sleeps == []
    assert [event.delay for event in response.extensions["retry_history"]] == [0.25, 0.25]


def test_testing_mode_caps_attempts_and_nests(harness: Harness) -> None:
    """attempts=N caps every policy at N (fewer stays fewer); nested blocks restore the state."""
    lib = harness.lib
    with testing(attempts=2):
        with testing(attempts=1):
            script = Script(lib, 503, 503, 200)
            transport, _ = make(harness, script)
            assert harness.send(transport, "GET", "http://test/").status_code == 503
            assert len(script.seen) == 1
        script = Script(lib, 503, 503, 200)
        transport, _ = make(harness, script)
        assert harness.send(transport, "GET", "http://test/").status_code == 503
        assert len(script.seen) == 2
    script = Script(lib, 503, 503, 200)
    transport, sleeps = make(harness, script)
    assert harness.send(transport, "GET", "http://test/").status_code == 200
    assert sleeps == [0.25, 0.25]  # off again: really sleeps


def test_set_testing_is_process_wide_and_deadlines_still_apply(harness: Harness) -> None:
    """set_testing(True) is seen from another thread; a deadline still ends the call."""
    clock = FakeClock()
    policy = RetryPolicy(attempts=5, backoff=tenacity.wait_fixed(1.0), deadline=0.5)
    script = Script(harness.lib, 503, 503, 200)
    transport = clocked(harness, script, policy, clock)
    results: list[Any] = []
    set_testing(True, attempts=None)
    try:
        thread = threading.Thread(
            target=lambda: results.append(harness.send(transport, "GET", "http://test/"))
        )
        thread.start()
        thread.join(10)
    finally:
        set_testing(False)
    assert results[0].status_code == 503  # the 1 s wait would pass the 0.5 s deadline
    assert clock.sleeps == []


@pytest.mark.parametrize("attempts", [0, -1, 1.5, True, "2"])
def test_testing_rejects_bad_attempts(attempts: Any) -> None:
    """attempts must be None or an int >= 1."""
    with pytest.raises(ValueError, match="attempts"):
        set_testing(True, attempts=attempts)
    with pytest.raises(TypeError, match="bool"):
        set_testing("yes")  # type: ignore[arg-type]


# -- per-request field overrides --------------------------------------------------


def test_a_dict_overrides_named_fields_for_one_request(harness: Harness) -> None:
    """{"attempts": 5} changes that field only; other requests keep the transport's policy."""
    lib = harness.lib
    script = Script(lib, *([503] * 4), 200, *([503] * 4))
    transport, sleeps = make(harness, script, budget=None)
    five = harness.send(transport, "GET", "http://test/", extensions={"retry": {"attempts": 5}})
    default = harness.send(transport, "GET", "http://test/")
    assert (five.status_code, default.status_code) == (200, 503)
    assert len(script.seen) == 5 + 3
    assert set(sleeps) == {0.25}  # the backoff is still the transport's


def test_overrides_accept_sets_and_are_cached(harness: Harness) -> None:
    """Identical overrides (sets included) build one policy, reused per request."""
    script = Script(harness.lib, 418, 200, 418, 200)
    transport, _ = make(harness, script)
    override = {"statuses": {418}, "methods": ["GET"]}
    for _ in range(2):
        response = harness.send(
            transport, "GET", "http://test/", extensions={"retry": dict(override)}
        )
        assert response.status_code == 200
    assert len(transport._plans) == 1


@pytest.mark.parametrize(
    ("override", "error", "field"),
    [
        ({"atempts": 5}, TypeError, "atempts"),
        ({"attempts": 0}, ValueError, "attempts"),
        ({"attempts": True}, TypeError, "attempts"),
        ({"deadline": -1}, ValueError, "deadline"),
        ({"statuses": [700]}, ValueError, "statuses"),
        ("five", TypeError, "retry"),
    ],
)
def test_bad_overrides_are_named_before_anything_is_sent(
    harness: Harness, override: Any, error: type[Exception], field: str
) -> None:
    """An unknown field or a bad value raises, naming it; the server sees nothing."""
    script = Script(harness.lib, 200)
    transport, _ = make(harness, script)
    outcome = harness.send(transport, "GET", "http://test/", extensions={"retry": override})
    assert isinstance(outcome, error)
    assert field in str(outcome)
    assert script.seen == []


def test_a_valid_override_after_a_bad_one_of_equal_hash_is_still_checked(harness: Harness) -> None:
    """{"attempts": 1} is cached; {"attempts": True} (equal, same hash) still fails."""
    transport, _ = make(harness, Script(harness.lib, 200, 200))
    assert (
        harness.send(
            transport, "GET", "http://t/", extensions={"retry": {"attempts": 1}}
        ).status_code
        == 200
    )
    outcome = harness.send(transport, "GET", "http://t/", extensions={"retry": {"attempts": True}})
    assert isinstance(outcome, TypeError)


def test_override_with_an_unhashable_value_still_works(harness: Harness) -> None:
    """A value the cache cannot key (a dict) is checked and applied, just not cached."""
    script = Script(harness.lib, 503, 200)
    transport, _ = make(harness, script)
    outcome = harness.send(
        transport, "GET", "http://t/", extensions={"retry": {"statuses": {503: "x"}}}
    )
    assert outcome.status_code == 200
    assert transport._plans == {}


def test_a_policy_object_per_request_replaces_the_transports(harness: Harness) -> None:
    """extensions={"retry": RetryPolicy(...)} replaces the whole policy (not merged)."""
    script = Script(harness.lib, 503, 200)
    transport, _ = make(
        harness, script, policy=RetryPolicy(statuses={418}, backoff=tenacity.wait_none())
    )
    response = harness.send(transport, "GET", "http://t/", extensions={"retry": FAST})
    assert response.status_code == 200


# -- rate-limit hints ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "floor"),
    [
        ({"x-ratelimit-reset-requests": "1.5s", "x-ratelimit-remaining-requests": "0"}, 1.5),
        ({"ratelimit": '"default";r=0;t=3'}, 3.0),
        ({"x-ratelimit-reset": "4", "x-ratelimit-remaining": "0"}, 4.0),
    ],
)
def test_a_reset_hint_is_a_floor_like_retry_after(
    harness: Harness, hint: dict[str, str], floor: float
) -> None:
    """No Retry-After, a spent quota's reset: the wait is the hint spread by up to 50 %."""
    lib = harness.lib
    script = Script(lib, lib.Response(429, headers=hint), 200)
    transport, sleeps = make(harness, script, random=lambda: 1.0)
    assert harness.send(transport, "GET", "http://test/").status_code == 200
    assert sleeps == [pytest.approx(floor * 1.5)]


def test_retry_after_wins_over_hints_and_both_can_be_turned_off(harness: Harness) -> None:
    """Retry-After decides when present; respect_retry_after=False ignores hints too."""
    lib = harness.lib
    headers = {"retry-after": "1", "x-ratelimit-reset-tokens": "9s"}
    transport, sleeps = make(harness, Script(lib, lib.Response(429, headers=headers), 200))
    harness.send(transport, "GET", "http://test/")
    assert 1.0 <= sleeps[0] <= 1.5
    policy = RetryPolicy(backoff=tenacity.wait_fixed(0.25), respect_retry_after=False)
    hint = {"x-ratelimit-reset-tokens": "9s"}
    transport, sleeps = make(
        harness, Script(lib, lib.Response(429, headers=hint), 200), policy=policy
    )
    harness.send(transport, "GET", "http://test/")
    assert sleeps == [0.25]


def test_a_hint_beyond_max_retry_after_returns_the_response_at_once(harness: Harness) -> None:
    """A reset an hour away (GitHub's primary limit): the 429 comes back, nothing is slept."""
    lib = harness.lib
    hint = {"x-ratelimit-reset": "3600", "x-ratelimit-remaining": "0"}
    script = Script(lib, lib.Response(429, headers=hint), 200)
    transport, sleeps = make(harness, script)
    assert harness.send(transport, "GET", "http://test/").status_code == 429
    assert sleeps == []


def test_the_log_line_counts_the_attempts_the_testing_mode_allows(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """With testing(attempts=2), a retry is "attempt 1 of 2", not of the policy's 3."""
    transport, _ = make(harness, Script(harness.lib, 503, 200))
    with caplog.at_level("INFO", logger="httpx_retrying"), testing(attempts=2):
        harness.send(transport, "GET", "http://test/")
    assert "attempt 1 of 2 failed" in caplog.text


def test_a_cached_override_does_not_let_a_bad_set_element_through(harness: Harness) -> None:
    """{503.0} equals {503} as a set: the cache must still validate it as its own value."""
    transport, _ = make(harness, Script(harness.lib, 200, 200))
    harness.send(transport, "GET", "http://test/", extensions={"retry": {"statuses": {503}}})
    outcome = harness.send(
        transport, "GET", "http://test/", extensions={"retry": {"statuses": {503.0}}}
    )
    assert isinstance(outcome, TypeError)
    assert "statuses" in str(outcome)


def test_a_hook_that_is_neither_callable_nor_a_sequence_names_on_retry(harness: Harness) -> None:
    with pytest.raises(TypeError, match="on_retry"):
        harness.RetryTransport(on_retry=5)
