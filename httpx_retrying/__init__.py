"""Retries for httpx, as a transport: correct on every path, near-free on success.

```python
import httpx
from httpx_retrying import RetryTransport

client = httpx.Client(transport=RetryTransport(httpx.HTTPTransport()))
```
"""

from __future__ import annotations

from typing import Any

from ._exports import *  # noqa: F403 - the shared names are listed once, in _exports
from ._exports import __all__ as _shared
from ._httpx import RetryTransport as RetryTransport
from ._httpx import TokenAuth as TokenAuth

__all__ = sorted(["RetryTransport", "TokenAuth", *_shared])  # the shared names, and our own

# Show the public path in reprs and docs (`httpx_retrying.RetryPolicy`), as httpx does.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        return version("httpx-retrying")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
