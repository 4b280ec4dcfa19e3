"""The httpx flavour: `httpx_retrying.RetryTransport` and `httpx_retrying.TokenAuth`."""

from __future__ import annotations

import httpx

from ._auth import TokenAuthBase
from ._flavour import Flavour
from ._transport import RetryTransportBase

__all__ = ["RetryTransport", "TokenAuth"]


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
      `proxy`) belong on this inner transport: a Client applies its own only to
      the default transport it builds, and a Client's `proxy=` bypasses this one.
    * `policy`: the `RetryPolicy` for every request (default `RetryPolicy()`).
      A request's `extensions["retry"]` changes it for that request: a dict of
      fields replaces those fields, a `RetryPolicy` replaces the whole policy,
      `False` turns retries off.
    * `budget`: a `RetryBudget`, shared or not; by default each transport has
      its own. `None` disables it.
    * `on_retry`: a callable, or a sequence of them, called with a `RetryEvent`
      after the failed response is released and before each backoff sleep. An
      `async def` hook is awaited by async clients; sync clients refuse it
      with a `TypeError`.
    * `clock`, `wall_clock`, `sleep`, `async_sleep`, `random`: injectable for
      tests and simulations (monotonic and Unix seconds, the sleeps, uniform
      [0, 1)). `async_sleep` defaults to `anyio.sleep`: asyncio and trio.
    """

    _flavour = Flavour(httpx)


class TokenAuth(TokenAuthBase[httpx.Request, httpx.Response], httpx.Auth):
    """A bearer token fetched on first use, cached, and refreshed once on a 401.

    ```python
    client = httpx.Client(auth=TokenAuth(fetch_token), transport=RetryTransport())
    ```

    Arguments:

    * `fetch_token`: called with no arguments, returns the token (a `str`). A
      plain function works with both clients (an `AsyncClient` calls it
      directly, blocking its loop while it runs); a coroutine function needs an
      `AsyncClient` (a `Client` raises `TypeError`). Its exceptions propagate.
    * `scheme`: the word before the token in `Authorization` (`""`: the token alone).

    The token is fetched on the first request and reused. When the server
    answers 401, the token is fetched again, once, and the request resent with
    it (through the client's transport, so its retries apply); a second 401 is
    returned. Requests that meet a 401 together, in threads or tasks, share one
    fetch, and a request refused a token already replaced resends with the new
    one. A request whose body is streamed (not in memory) is not resent: its
    401 is returned, with the new token ready for the next request.
    """

    _flavour = Flavour(httpx)
