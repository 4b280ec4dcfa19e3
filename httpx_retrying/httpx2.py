"""The httpx2 flavour: the same names, built on httpx2's classes.

```python
import httpx2
from httpx_retrying.httpx2 import RetryTransport, RetryPolicy, TokenAuth

client = httpx2.Client(transport=RetryTransport(httpx2.HTTPTransport()))
```

`RetryTransport` here subclasses `httpx2.BaseTransport` and
`httpx2.AsyncBaseTransport`, and `TokenAuth` subclasses `httpx2.Auth`, with
nothing from the `httpx` package, so SDKs that reject httpx objects
(anthropic 2.x) accept them. Requires the `httpx2` extra.
"""

from __future__ import annotations

try:
    import httpx2
except ImportError as exc:
    raise ImportError(
        "httpx_retrying.httpx2 needs the httpx2 package: pip install 'httpx-retrying[httpx2]'"
    ) from exc

from ._auth import TokenAuthBase
from ._exports import *  # noqa: F403 - the shared names are listed once, in _exports
from ._exports import __all__ as _shared
from ._flavour import Flavour
from ._transport import RetryTransportBase

__all__ = sorted(["RetryTransport", "TokenAuth", *_shared])  # the shared names, and our own


class RetryTransport(
    RetryTransportBase[
        httpx2.BaseTransport, httpx2.AsyncBaseTransport, httpx2.Request, httpx2.Response
    ],
    httpx2.BaseTransport,
    httpx2.AsyncBaseTransport,
):
    """Retries for an httpx2 transport; see `httpx_retrying.RetryTransport`."""

    _flavour = Flavour(httpx2)


class TokenAuth(TokenAuthBase[httpx2.Request, httpx2.Response], httpx2.Auth):
    """A token refreshed once on a 401, for httpx2 clients; see `httpx_retrying.TokenAuth`."""

    _flavour = Flavour(httpx2)
