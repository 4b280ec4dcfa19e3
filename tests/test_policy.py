"""RetryPolicy: immutable, validated at construction, with documented defaults."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
import tenacity

from httpx_retrying import RetryPolicy, backoff_full_jitter


def test_defaults() -> None:
    """The defaults the README justifies."""
    policy = RetryPolicy()
    assert policy.attempts == 3
    assert policy.methods == {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}
    assert policy.statuses == {408, 429, 502, 503, 504}
    assert policy.backoff == backoff_full_jitter(initial=0.5, cap=8.0)
    assert policy.deadline is None
    assert policy.respect_retry_after is True
    assert policy.max_retry_after == 60.0
    assert policy.retry_after_spread == 0.5
    assert policy.attempt_header is None
    assert policy.idempotency_key is False


def test_immutable_keyword_only_and_replaceable() -> None:
    """Frozen; positional arguments refused; dataclasses.replace derives variants."""
    policy = RetryPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.attempts = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        RetryPolicy(5)  # type: ignore[misc]
    five = dataclasses.replace(policy, attempts=5)
    assert (five.attempts, policy.attempts) == (5, 3)
    assert five == RetryPolicy(attempts=5)


def test_methods_are_case_insensitive_and_collections_are_frozen() -> None:
    """Methods are upper-cased; both collections become frozensets; empty means none."""
    policy = RetryPolicy(
        methods=["get", "Propfind"], statuses=[503, 523], backoff=tenacity.wait_none()
    )
    assert policy.methods == frozenset({"GET", "PROPFIND"})
    assert policy.statuses == frozenset({503, 523})
    assert RetryPolicy(methods=(), statuses=()).methods == frozenset()


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"attempts": 0}, ValueError, "attempts"),
        ({"attempts": -3}, ValueError, "attempts"),
        ({"attempts": 2.0}, TypeError, "attempts"),
        ({"attempts": True}, TypeError, "attempts"),
        ({"methods": "GET"}, TypeError, "methods"),
        ({"methods": ["GET", "NOT A METHOD"]}, ValueError, "methods"),
        ({"methods": [7]}, ValueError, "methods"),
        ({"statuses": [503, 600]}, ValueError, "statuses"),
        ({"statuses": [99]}, ValueError, "statuses"),
        ({"statuses": ["503"]}, TypeError, "statuses"),
        ({"statuses": 503}, TypeError, "statuses"),
        ({"backoff": 0.5}, TypeError, "backoff"),
        ({"deadline": -1}, ValueError, "deadline"),
        ({"deadline": 0}, ValueError, "deadline"),
        ({"deadline": math.nan}, ValueError, "deadline"),
        ({"deadline": "10"}, TypeError, "deadline"),
        ({"max_retry_after": math.inf}, ValueError, "max_retry_after"),
        ({"max_retry_after": -1}, ValueError, "max_retry_after"),
        ({"respect_retry_after": 1}, TypeError, "respect_retry_after"),
        ({"retry_after_spread": -0.1}, ValueError, "retry_after_spread"),
        ({"attempt_header": "bad header"}, ValueError, "attempt_header"),
        ({"idempotency_key": "yes"}, TypeError, "idempotency_key"),
    ],
)
def test_invalid_values_name_the_field(kwargs: dict[str, Any], error: type, field: str) -> None:
    """Bad input fails at construction with the field's name in the message."""
    with pytest.raises(error, match=field):
        RetryPolicy(**kwargs)


def test_a_strategy_class_instead_of_an_instance_is_refused() -> None:
    with pytest.raises(TypeError, match="RetryPolicy backoff"):
        RetryPolicy(backoff=backoff_full_jitter)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["max_retry_after", "deadline", "retry_after_spread"])
def test_an_int_too_large_for_a_float_names_the_field(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**{field: 10**400})
    with pytest.raises(ValueError, match="cap"):
        backoff_full_jitter(cap=10**400)
