"""Retries for httpx, as a transport: correct on every path, near-free on success.

```python
import httpx
from httpx_retrying import RetryTransport

client = httpx.Client(transport=RetryTransport(httpx.HTTPTransport()))
```
"""

from __future__ import annotations

from typing import Any

from ._backoff import (
    backoff_decorrelated_jitter,
    backoff_equal_jitter,
    backoff_full_jitter,
    backoff_no_jitter,
)
from ._budget import RetryBudget
from ._events import RetryEvent
from ._httpx import RetryTransport, TokenAuth
from ._policy import RetryPolicy
from ._testing import set_testing, testing

__all__ = [
    "RetryBudget",
    "RetryEvent",
    "RetryPolicy",
    "RetryTransport",
    "TokenAuth",
    "backoff_decorrelated_jitter",
    "backoff_equal_jitter",
    "backoff_full_jitter",
    "backoff_no_jitter",
    "set_testing",
    "testing",
]

# Show the public path in reprs and docs (`httpx_retrying.RetryPolicy`), as httpx does.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        return version("httpx-retrying")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
