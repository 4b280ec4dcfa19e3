"""The transport: a near-free success path, and thin sync and async retry loops.

`RetryTransportBase` holds all of it and no httpx class; each flavour
(`httpx_retrying.RetryTransport`, `httpx_retrying.httpx2.RetryTransport`)
only mixes it with its library's base classes and names its `Flavour`.
"""

from __future__ import annotations

import itertools
import random as _random
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, Self, TypeVar

from ._budget import RetryBudget
from ._call import DRAIN_LIMIT, Environment, RetryCall
from ._events import RetryHook, normalize_hooks
from ._flavour import Flavour
from ._policy import RetryPolicy

__all__ = ["DRAIN_LIMIT", "DRAIN_SECONDS", "RetryTransportBase"]

_NO_RETRY = RetryPolicy(attempts=1)


class _Default:
    def __repr__(self) -> str:
        return "<default>"


_DEFAULT: Any = _Default()


#: A discarded body is read for at most this long: a server trickling its error
#: body cannot hold the retry back (a stalled one costs at most one read timeout).
DRAIN_SECONDS = 0.1


def _release(response: Any, flavour: Flavour, drain: bool) -> None:
    """Give a response we will not return back to the pool, keeping small ones alive."""
    if drain and isinstance(response.stream, flavour.byte_stream):
        response.close()  # already in memory: no connection to keep
        return
    transport_error = flavour.transport_error
    chunks = iter(response.stream) if drain else None
    try:
        received = 0
        give_up_at = time.monotonic() + DRAIN_SECONDS
        for chunk in chunks or ():
            received += len(chunk)
            if received > DRAIN_LIMIT or time.monotonic() > give_up_at:
                break
    except transport_error:
        pass  # a broken connection: close() below discards it
    finally:
        try:
            close = getattr(chunks, "close", None)  # a generator left mid-way
            if close is not None:
                close()
        finally:
            response.close()


async def _arelease(response: Any, flavour: Flavour, drain: bool) -> None:
    """`_release` for async responses; the close runs even if we are cancelled."""
    if drain and isinstance(response.stream, flavour.byte_stream):
        # Already in memory (MockTransport, caches): nothing can stall or leak.
        await response.aclose()
        return
    transport_error = flavour.transport_error
    chunks = aiter(response.stream) if drain else None
    try:
        if chunks is not None:
            import anyio

            # Stopped by cancelling, not by `break`: the cancellation is raised inside
            # httpcore's nested body generators at their next read and unwinds them; a
            # `break` leaves them to the garbage collector (trio warns). A stream that
            # never awaits (in memory) is cut at 4 x the limit.
            with anyio.move_on_after(DRAIN_SECONDS) as scope:
                received = 0
                async for chunk in chunks:
                    received += len(chunk)
                    if received > DRAIN_LIMIT:
                        scope.cancel()
                    if received > 4 * DRAIN_LIMIT:
                        break
    except transport_error:
        pass
    finally:
        try:
            aclose = getattr(chunks, "aclose", None)  # an async generator left mid-way
            if aclose is not None:
                await aclose()
        finally:
            await response.aclose()


if TYPE_CHECKING:

    class _RequestLike(Protocol):
        @property
        def extensions(self) -> Mapping[str, Any]: ...

    class _ResponseLike(Protocol):
        @property
        def status_code(self) -> int: ...


SyncT = TypeVar("SyncT")
AsyncT = TypeVar("AsyncT")
RequestT = TypeVar("RequestT", bound="_RequestLike")
ResponseT = TypeVar("ResponseT", bound="_ResponseLike")


class RetryTransportBase(Generic[SyncT, AsyncT, RequestT, ResponseT]):
    """Retries for any httpx-style transport; see the flavour classes for the API.

    Generic only for typing: the flavour classes bind the library's transport,
    request and response classes, so that their signatures match the library.
    """

    _flavour: ClassVar[Flavour]

    def __init__(
        self,
        transport: SyncT | AsyncT | None = None,
        *,
        policy: RetryPolicy | None = None,
        budget: RetryBudget | None = _DEFAULT,
        on_retry: RetryHook | Sequence[RetryHook] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = time.sleep,
        async_sleep: Callable[[float], Awaitable[object]] | None = None,
        random: Callable[[], float] = _random.random,
    ) -> None:
        flavour = self._flavour
        if policy is None:
            policy = RetryPolicy()
        elif not isinstance(policy, RetryPolicy):
            raise TypeError(f"policy must be a RetryPolicy, got {policy!r}")
        if budget is _DEFAULT:
            budget = RetryBudget(clock=clock)
        elif budget is not None and not isinstance(budget, RetryBudget):
            raise TypeError(f"budget must be a RetryBudget or None, got {budget!r}")

        is_sync = isinstance(transport, flavour.sync_base)
        is_async = isinstance(transport, flavour.async_base)
        if transport is not None and not (is_sync or is_async):
            raise TypeError(
                f"{type(self).__module__}.RetryTransport wraps {flavour.name} transports; "
                f"got {transport!r}. Pass e.g. {flavour.name}.HTTPTransport() "
                f"or {flavour.name}.AsyncHTTPTransport()"
                + (
                    ", or use httpx_retrying.httpx2.RetryTransport for httpx2 transports"
                    if flavour.name == "httpx" and type(transport).__module__.startswith("httpx2")
                    else ""
                )
            )
        inner: Any = transport
        self._transport = transport
        self._sync: Any = inner if is_sync else None
        self._async: Any = inner if is_async else None
        self._policy = policy
        self._budget = budget
        self._record_request: Callable[[], object] = (
            budget.record_request if budget is not None else itertools.count().__next__
        )
        self._env = Environment(
            flavour=flavour,
            budget=budget,
            hooks=normalize_hooks(on_retry),
            clock=clock,
            wall_clock=wall_clock,
            random=random,
        )
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._transport_error = flavour.transport_error
        self._lock = threading.Lock()
        self._closed_sync = False
        self._closed_async = False
        # The first request in each mode checks the setup, then swaps in the inner
        # transport's bound method: from then on the success path makes one call.
        self._send: Callable[[RequestT], ResponseT] = self._first_sync_send
        self._asend: Callable[[RequestT], Awaitable[ResponseT]] = self._first_async_send

    @property
    def policy(self) -> RetryPolicy:
        """The policy for requests that do not carry their own."""
        return self._policy

    @property
    def budget(self) -> RetryBudget | None:
        """The retry budget this transport draws on (None: unlimited)."""
        return self._budget

    def __repr__(self) -> str:
        return (
            f"{type(self).__module__}.RetryTransport({self._transport!r}, policy={self._policy!r})"
        )

    # -- choosing the inner transport ---------------------------------------

    def _wrong_mode(self, mode: str) -> TypeError:
        name = self._flavour.name
        wanted = f"{name}.HTTPTransport()" if mode == "sync" else f"{name}.AsyncHTTPTransport()"
        client = f"{name}.Client" if mode == "sync" else f"{name}.AsyncClient"
        return TypeError(
            f"RetryTransport wraps {self._transport!r}, which has no {mode} interface, so it "
            f"cannot serve {client}; pass a {mode} transport such as {wanted}, or "
            "RetryTransport() with no argument to get a default one"
        )

    def _check_first(self, request: object, mode: str) -> None:
        flavour = self._flavour
        if not isinstance(request, flavour.request):
            other = type(request).__module__.partition(".")[0]
            fix = (
                "httpx_retrying.httpx2.RetryTransport(httpx2.HTTPTransport())"
                if other == "httpx2"
                else "httpx_retrying.RetryTransport(httpx.HTTPTransport())"
            )
            raise TypeError(
                f"this RetryTransport serves {flavour.name} clients but was sent a "
                f"{type(request).__module__}.{type(request).__qualname__}; use {fix} instead"
            )
        if self._transport is not None and (self._sync if mode == "sync" else self._async) is None:
            raise self._wrong_mode(mode)

    def _first_sync_send(self, request: RequestT) -> ResponseT:
        self._check_first(request, "sync")
        with self._lock:
            if self._sync is None:
                self._sync = self._flavour.sync_default()
            self._send = self._sync.handle_request
        return self._send(request)

    async def _first_async_send(self, request: RequestT) -> ResponseT:
        self._check_first(request, "async")
        with self._lock:
            if self._async is None:
                self._async = self._flavour.async_default()
            self._asend = self._async.handle_async_request
        return await self._asend(request)

    def _policy_for(self, choice: object) -> RetryPolicy:
        if isinstance(choice, RetryPolicy):
            return choice
        if choice is False:
            return _NO_RETRY
        if choice is True:
            return self._policy
        raise TypeError(f'extensions["retry"] must be a RetryPolicy, True or False, got {choice!r}')

    # -- sync -----------------------------------------------------------------

    def handle_request(self, request: RequestT) -> ResponseT:
        choice = request.extensions.get("retry")
        policy = self._policy if choice is None else self._policy_for(choice)
        self._record_request()
        if policy._prepares_requests:
            call = RetryCall(self._env, policy, request, started=self._env.clock())
            return self._retry(call, send=call.first_request())
        try:
            response = self._send(request)
        except self._transport_error as exc:
            error = exc
        else:
            if response.status_code < policy._status_floor:
                return response
            return self._retry(RetryCall(self._env, policy, request, started=None), response)
        return self._retry(RetryCall(self._env, policy, request, started=None), None, error)

    def _retry(
        self,
        call: RetryCall,
        response: ResponseT | None = None,
        error: BaseException | None = None,
        *,
        send: RequestT | None = None,
    ) -> ResponseT:
        """The slow path, from a failed first attempt (or a prepared one still to `send`).

        Each failure's response is released before the hooks and the sleep.
        """
        request = send
        while True:
            if request is not None:
                try:
                    response, error = self._send(request), None
                except self._transport_error as exc:
                    response, error = None, exc
            try:
                delay = call.next_delay(response, error)
            except BaseException:  # e.g. a user backoff that raised: free the connection
                if response is not None:
                    _release(response, self._flavour, call.drain)
                raise
            if delay is None:
                return call.finish(response, error)
            if response is not None:
                _release(response, self._flavour, call.drain)
            call.announce()
            if delay > 0:
                self._sleep(delay)
            request = call.next_request()

    # -- async ----------------------------------------------------------------

    async def handle_async_request(self, request: RequestT) -> ResponseT:
        choice = request.extensions.get("retry")
        policy = self._policy if choice is None else self._policy_for(choice)
        self._record_request()
        if policy._prepares_requests:
            call = RetryCall(self._env, policy, request, started=self._env.clock())
            return await self._aretry(call, send=call.first_request())
        try:
            response = await self._asend(request)
        except self._transport_error as exc:
            error = exc
        else:
            if response.status_code < policy._status_floor:
                return response
            return await self._aretry(RetryCall(self._env, policy, request, started=None), response)
        return await self._aretry(RetryCall(self._env, policy, request, started=None), None, error)

    async def _aretry(
        self,
        call: RetryCall,
        response: ResponseT | None = None,
        error: BaseException | None = None,
        *,
        send: RequestT | None = None,
    ) -> ResponseT:
        """`_retry` for async transports; sleeps with anyio (asyncio and trio)."""
        request = send
        while True:
            if request is not None:
                try:
                    response, error = await self._asend(request), None
                except self._transport_error as exc:
                    response, error = None, exc
            try:
                delay = call.next_delay(response, error)
            except BaseException:
                if response is not None:
                    await _arelease(response, self._flavour, call.drain)
                raise
            if delay is None:
                return call.finish(response, error)
            if response is not None:
                await _arelease(response, self._flavour, call.drain)
            call.announce()
            if delay > 0:
                sleep = self._async_sleep
                if sleep is None:
                    import anyio

                    sleep = self._async_sleep = anyio.sleep
                await sleep(delay)
            request = call.next_request()

    # -- lifecycle ------------------------------------------------------------

    def close(self) -> None:
        if self._sync is not None and not self._closed_sync:
            self._closed_sync = True
            self._sync.close()

    async def aclose(self) -> None:
        if self._async is not None and not self._closed_async:
            self._closed_async = True
            await self._async.aclose()

    def __enter__(self) -> Self:
        if self._sync is not None:
            self._sync.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        if self._sync is not None and not self._closed_sync:
            self._closed_sync = True
            self._sync.__exit__(exc_type, exc_value, traceback)

    async def __aenter__(self) -> Self:
        if self._async is not None:
            await self._async.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        if self._async is not None and not self._closed_async:
            self._closed_async = True
            await self._async.__aexit__(exc_type, exc_value, traceback)
