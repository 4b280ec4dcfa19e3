"""A bearer token fetched on first use and refreshed once when the server answers 401.

`TokenAuthBase` holds all of it and no httpx class; each flavour
(`httpx_retrying.TokenAuth`, `httpx_retrying.httpx2.TokenAuth`) only mixes it
with its library's `Auth` and names its `Flavour`, as the transports do.

Single flight: requests that meet a 401 together share one refresh, whether
they run in threads, in asyncio or trio tasks, or both at once. The state sits
behind a `threading.Lock` that is held only to read or swap it, never across a
fetch or an `await`. The first request that needs a new token leads: it calls
`fetch_token` with no lock held; the others wait for its result on a
`threading.Event` (sync) or on an event of their own loop, which the leader
sets from whatever thread it runs in. A request that got its 401 with a token
already replaced just resends with the newer one.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import re
import threading
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
    MutableMapping,
)
from typing import TYPE_CHECKING, ClassVar, Generic, Protocol, TypeVar

from ._flavour import Flavour

__all__ = ["TokenAuthBase"]

#: What `fetch_token` may be: a plain function or a coroutine function giving the token.
TokenFetcher = Callable[[], "str | Awaitable[str]"]

#: The token caches whose `fetch_token` is running in this context (re-entry would deadlock).
_FETCHING: contextvars.ContextVar[tuple[_TokenCache, ...]] = contextvars.ContextVar(
    "httpx_retrying_fetching", default=()
)
#: RFC 9110 `token`: what an auth-scheme may be.
_SCHEME = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"


class _Flight:
    """One `fetch_token` call in progress, and who waits for it."""

    __slots__ = ("done", "error", "thread", "token", "wakers")

    def __init__(self) -> None:
        self.thread = threading.get_ident()  # the leader's
        self.done = threading.Event()
        self.token: str | None = None
        self.error: Exception | None = None
        self.wakers: list[Callable[[], object]] = []  # async waiters' loop callbacks

    def outcome(self) -> str | None:
        """The token fetched; None if the leader was cancelled (fetch again); or its error."""
        if self.error is not None:
            raise self.error
        return self.token


def _checked(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"TokenAuth: fetch_token must return the token as a str, got {value!r}")
    return value


def _loop_waiter() -> tuple[Callable[[], Awaitable[object]], Callable[[], object]]:
    """An event of the running loop: its `wait`, and a wake-up callable from any thread."""
    import asyncio  # here, not at the top: `import httpx_retrying` would take ~20 ms more

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio, so trio (the other loop httpx supports)
        import trio

        trio_event = trio.Event()
        trio_token = trio.lowlevel.current_trio_token()
        return trio_event.wait, functools.partial(trio_token.run_sync_soon, trio_event.set)
    event = asyncio.Event()
    return event.wait, functools.partial(loop.call_soon_threadsafe, event.set)


class _TokenCache:
    """The current token, and single-flight fetches of the next one."""

    def __init__(self, fetch_token: TokenFetcher) -> None:
        self._fetch_token = fetch_token
        self._mutex = threading.Lock()
        self._token: str | None = None
        self._flight: _Flight | None = None

    def _claim(self, stale: str | None) -> str | tuple[_Flight, bool]:
        """A usable token, or (the flight to wait for, False), or (a new one to lead, True).

        A fetch in progress is joined even by a request holding a usable-looking
        token: someone has just been refused it.
        """
        if self in _FETCHING.get():
            raise RuntimeError(
                "TokenAuth: fetch_token sent a request through the TokenAuth it serves; "
                "fetch the token with a client that does not use this TokenAuth"
            )
        with self._mutex:
            if self._flight is not None:
                return self._flight, False
            if self._token is not None and self._token != stale:
                return self._token
            self._flight = _Flight()
            return self._flight, True

    def _land(self, flight: _Flight, token: str | None, error: Exception | None) -> None:
        """Publish a flight's result (no token and no error: abandoned) and wake its waiters."""
        with self._mutex:
            if token is not None:
                self._token = token
            self._flight = None
            flight.token, flight.error = token, error
            flight.done.set()
            wakers, flight.wakers = flight.wakers, []
        for wake in wakers:
            with contextlib.suppress(RuntimeError):  # that waiter's loop has ended
                wake()

    @contextlib.contextmanager
    def _leading(self, flight: _Flight) -> Iterator[None]:
        """Around the leader's fetch: on failure, land the flight so that no one waits forever."""
        fetching = _FETCHING.set((*_FETCHING.get(), self))
        try:
            yield
        except Exception as exc:
            self._land(flight, None, exc)  # the waiters raise it too
            raise
        except BaseException:
            self._land(flight, None, None)  # cancelled: a waiter fetches instead
            raise
        finally:
            _FETCHING.reset(fetching)

    def get(self, stale: str | None) -> str:
        """A token other than `stale` (None: any), fetching it if needed: sync clients."""
        while True:  # repeats only after a leader was cancelled
            claim = self._claim(stale)
            if isinstance(claim, str):
                return claim
            flight, leads = claim
            if leads:
                with self._leading(flight):
                    value = self._fetch_token()
                    if inspect.isawaitable(value):
                        if inspect.iscoroutine(value):
                            value.close()  # never awaited: no warning
                        raise TypeError(
                            "TokenAuth: fetch_token returned an awaitable; "
                            "a coroutine function needs an AsyncClient"
                        )
                    self._land(flight, _checked(value), None)
            elif flight.thread == threading.get_ident():
                raise RuntimeError(
                    "TokenAuth: a sync request waits for a token that an async request "
                    "on its own thread is fetching; it would block that event loop forever"
                )
            else:
                flight.done.wait()
            if (token := flight.outcome()) is not None:
                return token

    async def aget(self, stale: str | None) -> str:
        """`get` for async clients: asyncio or trio, sharing flights with threads."""
        while True:  # repeats only after a leader was cancelled
            claim = self._claim(stale)
            if isinstance(claim, str):
                return claim
            flight, leads = claim
            if leads:
                with self._leading(flight):
                    value = self._fetch_token()
                    if inspect.isawaitable(value):
                        value = await value
                    self._land(flight, _checked(value), None)
            else:
                await self._wait(flight)
            if (token := flight.outcome()) is not None:
                return token

    async def _wait(self, flight: _Flight) -> None:
        wait, wake = _loop_waiter()
        with self._mutex:
            if flight.done.is_set():
                return
            flight.wakers.append(wake)
        try:
            await wait()
        finally:
            with self._mutex:
                if wake in flight.wakers:  # cancelled before the flight landed
                    flight.wakers.remove(wake)


if TYPE_CHECKING:

    class _RequestLike(Protocol):
        @property
        def headers(self) -> MutableMapping[str, str]: ...

        @property
        def stream(self) -> object: ...

    class _ResponseLike(Protocol):
        @property
        def status_code(self) -> int: ...


RequestT = TypeVar("RequestT", bound="_RequestLike")
ResponseT = TypeVar("ResponseT", bound="_ResponseLike")


class TokenAuthBase(Generic[RequestT, ResponseT]):
    """A bearer token from `fetch_token`, refreshed once on a 401; see the flavour classes.

    Generic only for typing: the flavour classes bind the library's request and
    response classes, so that their signatures match the library's `Auth`.
    """

    _flavour: ClassVar[Flavour]

    def __init__(self, fetch_token: TokenFetcher, *, scheme: str = "Bearer") -> None:
        if not callable(fetch_token):
            raise TypeError(f"TokenAuth: fetch_token must be callable, got {fetch_token!r}")
        if not isinstance(scheme, str):
            raise TypeError(f"TokenAuth: scheme must be a str, got {scheme!r}")
        if scheme and not re.fullmatch(_SCHEME, scheme):
            raise ValueError(f"TokenAuth: scheme must be one word such as 'Bearer', got {scheme!r}")
        self._fetch_token = fetch_token
        self._scheme = scheme
        self._tokens = _TokenCache(fetch_token)

    def __repr__(self) -> str:
        # Never the token: reprs end up in logs.
        return f"{type(self).__name__}({self._fetch_token!r}, scheme={self._scheme!r})"

    def _authorized(self, request: RequestT, token: str) -> RequestT:
        request.headers["Authorization"] = f"{self._scheme} {token}" if self._scheme else token
        return request

    def _replayable(self, request: RequestT) -> bool:
        """After a 401 (the token is refreshed anyway): can the request go again?

        Only with its body in memory: a streamed upload is not buffered just in
        case, so its 401 is returned to the caller (with the next token ready).
        """
        return isinstance(request.stream, self._flavour.byte_stream)

    def sync_auth_flow(self, request: RequestT) -> Generator[RequestT, ResponseT, None]:
        """What `Client` runs: authorize, and on a 401 refresh once and resend."""
        token = self._tokens.get(None)
        response = yield self._authorized(request, token)
        if response.status_code == 401:
            token = self._tokens.get(token)
            if self._replayable(request):
                yield self._authorized(request, token)

    async def async_auth_flow(self, request: RequestT) -> AsyncGenerator[RequestT, ResponseT]:
        """What `AsyncClient` runs: authorize, and on a 401 refresh once and resend."""
        token = await self._tokens.aget(None)
        response = yield self._authorized(request, token)
        if response.status_code == 401:
            token = await self._tokens.aget(token)
            if self._replayable(request):
                yield self._authorized(request, token)
