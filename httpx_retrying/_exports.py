"""The names both flavours export: everything that does not depend on the HTTP library."""

from __future__ import annotations

from ._backoff import (
    backoff_decorrelated_jitter,
    backoff_equal_jitter,
    backoff_full_jitter,
    backoff_no_jitter,
)
from ._budget import RetryBudget
from ._events import RetryEvent
from ._policy import RetryPolicy
from ._testing import set_testing, testing

__all__ = [
    "RetryBudget",
    "RetryEvent",
    "RetryPolicy",
    "backoff_decorrelated_jitter",
    "backoff_equal_jitter",
    "backoff_full_jitter",
    "backoff_no_jitter",
    "set_testing",
    "testing",
]
