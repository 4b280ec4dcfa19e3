"""The httpx flavour: `httpx_retrying.RetryTransport`."""

from __future__ import annotations

import httpx

from ._flavour import Flavour
from ._transport import RetryTransportBase

__all__ = ["RetryTransport"]


class RetryTransport(
    RetryTransportBase[
        httpx.BaseTransport, httpx.AsyncBaseTransport, httpx.Request, httpx.Response
    ],
    httpx.BaseTransport,
    httpx.AsyncBaseTransport,
):
    """Retries for an httpx transport, sync or async: pass it as `transport=`.

    ```python
    client = httpx.Client(transport=RetryTransport(httpx.HTTPTransport()))
    ```

    Arguments:

    * `transport`: the transport to wrap: sync, async, or both (`MockTransport`).
      Default: an `httpx.HTTPTransport()` / `httpx.AsyncHTTPTransport()`, made on
      first use in that mode. Connection settings (`limits`, `verify`, `http2`,
      `proxy`) belong on this inner transport: a Client ignores its own once it
      is given a `transport=`.
    * `policy`: the `RetryPolicy` for requests that carry none in
      `extensions["retry"]` (a `RetryPolicy`, or `False` for no retries).
    * `budget`: a `RetryBudget`, shared or not; by default each transport has
      its own. `None` disables it.
    * `on_retry`: a callable, or a sequence of them, called with a `RetryEvent`
      before each backoff sleep.
    * `clock`, `wall_clock`, `sleep`, `async_sleep`, `random`: injectable for
      tests and simulations (monotonic and Unix seconds, the sleeps, uniform
      [0, 1)). `async_sleep` defaults to `anyio.sleep`: asyncio and trio.
    """

    _flavour = Flavour(httpx)
