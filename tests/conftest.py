"""Shared fixtures: one behavioural test runs for both flavours and all three modes.

`harness` is parametrised by flavour (httpx, httpx2) and mode (sync, asyncio,
trio); tests build transports with `harness.lib` / `harness.RetryTransport` and
send with `harness.send_all`, so no expectation is written twice.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

import anyio
import pytest

from tests.servers import FaultServer

FLAVOURS = {"httpx": "httpx_retrying", "httpx2": "httpx_retrying.httpx2"}
MODES = ("sync", "asyncio", "trio")
#: One SSL context for every test transport: building one (loading the CA bundle)
#: costs 20-90 ms, more than most tests, and the servers here speak plain HTTP.
SSL_CONTEXT = ssl.create_default_context()


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxies from the environment must not redirect test traffic."""
    for name in list(os.environ):
        if name.lower() in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}:
            monkeypatch.delenv(name)


Outcome = Any  # a response, or the exception a request raised


@dataclasses.dataclass
class Harness:
    """Sends requests through a transport in one flavour and one mode."""

    flavour: str
    mode: str

    @property
    def lib(self) -> ModuleType:
        return importlib.import_module(self.flavour)

    @property
    def package(self) -> ModuleType:
        return importlib.import_module(FLAVOURS[self.flavour])

    @property
    def RetryTransport(self) -> Any:
        return self.package.RetryTransport

    @property
    def is_async(self) -> bool:
        return self.mode != "sync"

    def http_transport(self, **kwargs: Any) -> Any:
        """The library's real transport for this mode (with the shared SSL context)."""
        lib = self.lib
        kwargs.setdefault("verify", SSL_CONTEXT)
        return lib.AsyncHTTPTransport(**kwargs) if self.is_async else lib.HTTPTransport(**kwargs)

    def spy(
        self,
        inner: Any,
        *,
        before: Callable[[Any], object] | None = None,
        after: Callable[[Any, Any], object] | None = None,
    ) -> Any:
        """`inner` behind a `ForwardingSpy` of this flavour."""
        return forwarding_spy(self.lib, inner, before=before, after=after)

    def send_all(
        self,
        transport: Any,
        requests: Sequence[tuple[str, str, dict[str, Any]]],
        *,
        between: Callable[[], None] | None = None,
    ) -> list[Outcome]:
        """Send each (method, url, kwargs) in order through one client; collect outcomes.

        The client, and so the transport, is closed at the end. `between` runs
        after each request (sync code, e.g. a short sleep).
        """
        lib = self.lib
        outcomes: list[Outcome] = []
        if not self.is_async:
            with lib.Client(transport=transport) as client:
                for method, url, kwargs in requests:
                    try:
                        outcomes.append(client.request(method, url, **kwargs))
                    except Exception as exc:
                        outcomes.append(exc)
                    if between:
                        between()
            return outcomes

        async def main() -> None:
            async with lib.AsyncClient(transport=transport) as client:
                for method, url, kwargs in requests:
                    if callable(kwargs.get("content")):  # an async body factory
                        kwargs = {**kwargs, "content": kwargs["content"]()}
                    try:
                        outcomes.append(await client.request(method, url, **kwargs))
                    except Exception as exc:
                        outcomes.append(exc)
                    if between:
                        between()

        anyio.run(main, backend=self.mode)
        return outcomes

    def send(self, transport: Any, method: str, url: str, **kwargs: Any) -> Outcome:
        return self.send_all(transport, [(method, url, kwargs)])[0]

    def run(self, fn: Callable[[], Any]) -> Any:
        """Run an async function under this mode's backend (async modes only)."""
        assert self.is_async
        return anyio.run(fn, backend=self.mode)


class ForwardingSpy:
    """A transport that forwards to `inner` (sync and async), calling hooks around each attempt.

    `before(request)` runs first: it may record the request, change its extensions,
    or raise as a failing transport would. `after(request, response)` runs once the
    inner transport returned a response (its head; the body is still to be read).
    Build one with `forwarding_spy(lib, ...)` (or `harness.spy(...)`): it must
    subclass the library's base transports for `RetryTransport` to accept it.
    """

    def __init__(
        self,
        inner: Any,
        before: Callable[[Any], object] | None,
        after: Callable[[Any, Any], object] | None,
    ) -> None:
        self.inner = inner
        self.before = before
        self.after = after

    def handle_request(self, request: Any) -> Any:
        if self.before is not None:
            self.before(request)
        response = self.inner.handle_request(request)
        if self.after is not None:
            self.after(request, response)
        return response

    async def handle_async_request(self, request: Any) -> Any:
        if self.before is not None:
            self.before(request)
        response = await self.inner.handle_async_request(request)
        if self.after is not None:
            self.after(request, response)
        return response

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()


@functools.cache
def _spy_class(lib: ModuleType) -> type[ForwardingSpy]:
    bases = (ForwardingSpy, lib.BaseTransport, lib.AsyncBaseTransport)
    return type(f"{lib.__name__}ForwardingSpy", bases, {})


def forwarding_spy(
    lib: ModuleType,
    inner: Any,
    *,
    before: Callable[[Any], object] | None = None,
    after: Callable[[Any, Any], object] | None = None,
) -> ForwardingSpy:
    """`inner` behind a `ForwardingSpy` that is a transport of `lib` (httpx or httpx2)."""
    return _spy_class(lib)(inner, before, after)


class FakeClock:
    """Monotonic time that advances only when the transport sleeps (or a test moves it)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture(params=[(f, m) for f in FLAVOURS for m in MODES], ids=lambda p: f"{p[0]}-{p[1]}")
def harness(request: pytest.FixtureRequest) -> Harness:
    flavour, mode = request.param
    return Harness(flavour, mode)


@pytest.fixture(params=MODES)
def mode_harness(request: pytest.FixtureRequest) -> Harness:
    """The httpx flavour in each mode: for tests where the flavour cannot matter."""
    return Harness("httpx", request.param)


def settled_count(server: FaultServer, path: str, at_least: int, method: str | None = None) -> int:
    """Requests to `path` the server read in full, once it read `at_least` or 2 s passed.

    A client that timed out on a silent server may have given up before the
    server's thread got to count the request it had been sent.
    """
    give_up_at = time.monotonic() + 2.0
    while server.count(path, method) < at_least and time.monotonic() < give_up_at:
        time.sleep(0.005)
    return server.count(path, method)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running
