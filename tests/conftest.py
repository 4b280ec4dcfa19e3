"""Shared fixtures: one behavioural test runs for both flavours and all three modes.

`harness` is parametrised by flavour (httpx, httpx2) and mode (sync, asyncio,
trio); tests build transports with `harness.lib` / `harness.RetryTransport` and
send with `harness.send_all`, so no expectation is written twice.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

import anyio
import pytest

from tests.servers import FaultServer

FLAVOURS = {"httpx": "httpx_retrying", "httpx2": "httpx_retrying.httpx2"}
MODES = ("sync", "asyncio", "trio")


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
        lib = self.lib
        return lib.AsyncHTTPTransport(**kwargs) if self.is_async else lib.HTTPTransport(**kwargs)

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


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running
