"""In-memory inner transports and small helpers the measurement groups share.

Every inner transport returns prebuilt responses, so that what a configuration
costs beyond the bare inner call is the wrapper's own work.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

URL = "http://bench.local/ok"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
UNAVAILABLE_BODY = b"unavailable"  # 11 bytes, as the loopback server sends


def sender(transport: Any, async_: bool) -> Callable[[Any], Any]:
    """The transport's bound `handle_request`, or `handle_async_request`."""
    return transport.handle_async_request if async_ else transport.handle_request  # type: ignore[no-any-return]


def new_request() -> httpx.Request:
    """One request object per configuration: httpx-retries writes into its extensions."""
    return httpx.Request("GET", URL)


class NullTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The cheapest inner transport: returns one prebuilt 200 response."""

    def __init__(self) -> None:
        self._response = httpx.Response(200, content=b"ok")

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._response


class ForwardingTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """A do-nothing wrapper, written as anyone would: it only calls the inner transport.

    Its added cost is what any Python-level transport layer costs: the yardstick for
    the package's success path.
    """

    def __init__(self, transport: httpx.BaseTransport | httpx.AsyncBaseTransport) -> None:
        self._transport: Any = transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._transport.handle_request(request)  # type: ignore[no-any-return]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transport.handle_async_request(request)  # type: ignore[no-any-return]


class _ThreeStep(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Fails twice, then answers a prebuilt 200; repeats. Counts its calls."""

    def __init__(self) -> None:
        self._ok = httpx.Response(200, content=b"ok")
        self.step = 0  # 0 after every completed logical request
        self.calls = 0

    def _attempt(self, request: httpx.Request) -> httpx.Response:
        step = self.step
        self.step = 0 if step == 2 else step + 1
        self.calls += 1
        return self._ok if step == 2 else self._fail(step, request)

    def _fail(self, step: int, request: httpx.Request) -> httpx.Response:
        raise NotImplementedError

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._attempt(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._attempt(request)


class FlakyTransport(_ThreeStep):
    """Answers 503, 503, 200 from prebuilt responses.

    `is_closed` is reset on each use, so that a layer that releases a response pays
    for a real `close()`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._unavailable = [httpx.Response(503, content=UNAVAILABLE_BODY) for _ in range(2)]

    def _fail(self, step: int, request: httpx.Request) -> httpx.Response:
        response = self._unavailable[step]
        response.is_closed = False
        return response


class RefusingTransport(_ThreeStep):
    """Raises a fresh `httpx.ConnectError` twice, then answers 200."""

    def _fail(self, step: int, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


def ok_handler(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"ok")


def ok_mock() -> httpx.MockTransport:
    return httpx.MockTransport(ok_handler)


def flaky_mock() -> httpx.MockTransport:
    """MockTransport answering 503, 503, 200 with fresh responses (real streams to release)."""
    counter = itertools.count()

    def handler(request: httpx.Request) -> httpx.Response:
        if next(counter) % 3 < 2:
            return httpx.Response(503, content=UNAVAILABLE_BODY)
        return httpx.Response(200, content=b"ok")

    return httpx.MockTransport(handler)


class Clients:
    """The `Client`s (or `AsyncClient`s) a group opens, one per transport; `close` closes them."""

    def __init__(self, async_: bool) -> None:
        self._class: Any = httpx.AsyncClient if async_ else httpx.Client
        self._async = async_
        self._opened: list[Any] = []

    def client(self, transport: Any) -> Any:
        """A new client over `transport`, closed with the others."""
        self._opened.append(self._class(transport=transport, trust_env=False))
        return self._opened[-1]

    def get(self, transport: Any) -> Callable[[Any], Any]:
        """A new client's bound `get` over `transport`."""
        return self.client(transport).get  # type: ignore[no-any-return]

    def close(self) -> Awaitable[None] | None:
        if self._async:
            return self._aclose()
        for client in self._opened:
            client.close()
        return None

    async def _aclose(self) -> None:
        for client in self._opened:
            await client.aclose()


class SleepCounter:
    """Injected as `sleep=` / `async_sleep=`: a zero delay must never reach it."""

    def __init__(self) -> None:
        self.calls = 0

    def sleep(self, seconds: float) -> None:
        self.calls += 1
        time.sleep(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.calls += 1
        await asyncio.sleep(seconds)
