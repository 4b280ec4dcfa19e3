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

from . import _testing
from ._backoff import _CappedExponential
from ._body import aread_body, arelease, read_body, release
from ._budget import RetryBudget
from ._call import Environment, Retry, RetryCall, preload_length, resume_splice
from ._events import RetryHook, adispatch, dispatch, is_async_hook, normalize_hooks
from ._flavour import Flavour
from ._policy import RetryPolicy, policy_with
from ._ranges import Splice
from ._resume import resuming_streams

__all__ = ["RetryTransportBase"]


class _OwnBudget:
    def __repr__(self) -> str:
        return "<a RetryBudget of its own>"


#: The `budget=` default: each transport makes its own `RetryBudget()`.
OWN_BUDGET: Any = _OwnBudget()
#: Per-request policies remembered per transport (a cache, not a registry: cleared when full).
_PLAN_CACHE_SIZE = 256


class _Plan:
    """What the transport does for requests under one policy, worked out once per policy.

    * `floor`: responses below this status are returned without another look
      (one comparison on the success path); 400 and up may carry
      `x-should-retry`; with a predicate every response is looked at; with one
      attempt none is.
    * `streams_pass`: a response streamed from the network needs no look either:
      no body of it will be preloaded or resumed. (A body in memory never does.)
    * `starts_call`: the first attempt needs a `RetryCall`: a deadline, an attempt
      header or an idempotency key prepares it, and a backoff that is not one of
      the package's own may read the time since it started.
    """

    __slots__ = ("floor", "policy", "starts_call", "streams_pass")

    def __init__(self, policy: RetryPolicy) -> None:
        retries = policy.attempts > 1
        self.policy = policy
        if not retries:
            self.floor = 1000
        elif policy.should_retry is not None:
            self.floor = 0
        else:
            self.floor = min([400, *policy.statuses])
        self.streams_pass = not (retries and (policy.preload_limit > 0 or policy.resume))
        self.starts_call = (
            policy.deadline is not None
            or policy.attempt_header is not None
            or policy.idempotency_key
            or not isinstance(policy.backoff, _CappedExponential)
        )


_NO_RETRY = _Plan(RetryPolicy(attempts=1))


class _FirstUse:
    """Stands in for the inner transport until a mode's first request has checked the setup."""

    __slots__ = ("_owner",)

    def __init__(self, owner: RetryTransportBase[Any, Any, Any, Any]) -> None:
        self._owner = owner

    def handle_request(self, request: Any) -> Any:
        return self._owner._first_sync_send(request)

    async def handle_async_request(self, request: Any) -> Any:
        return await self._owner._first_async_send(request)


_SYNC, _ASYNC = 0, 1  # which of `resuming_streams()` a mode's responses get


def _frozen(value: Any) -> Any:
    """A hashable stand-in for an override's value (sets and lists included), for the cache key."""
    if isinstance(value, (set, frozenset)):
        return type(value), frozenset(_frozen(item) for item in value)
    if isinstance(value, (list, tuple)):
        return type(value), tuple(_frozen(item) for item in value)
    return type(value), value


if TYPE_CHECKING:

    class _RequestLike(Protocol):
        @property
        def extensions(self) -> Mapping[str, Any]: ...

    class _ResponseLike(Protocol):
        @property
        def status_code(self) -> int: ...
        @property
        def stream(self) -> object: ...


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
        budget: RetryBudget | None = OWN_BUDGET,
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
        if budget is OWN_BUDGET:
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
        hooks = normalize_hooks(on_retry)
        if is_sync and not is_async:
            self._refuse_async_hooks(hooks)
        inner: Any = transport
        self._transport = transport
        self._sync: Any = inner if is_sync else None
        self._async: Any = inner if is_async else None
        self._policy = policy
        self._plan = _Plan(policy)
        self._plans: dict[Any, _Plan] = {}  # per-request policies and overrides
        self._budget = budget
        # `next()` on it is the success path's counter tick (`budget.record_request()`).
        self._requests = budget.request_counter if budget is not None else itertools.count()
        self._env = Environment(
            flavour=flavour,
            budget=budget,
            hooks=hooks,
            clock=clock,
            wall_clock=wall_clock,
            random=random,
        )
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._transport_error = flavour.transport_error
        self._in_memory = flavour.byte_stream
        self._lock = threading.Lock()
        self._closed_sync = False
        self._closed_async = False
        # The first request in each mode checks the setup, then swaps in the inner
        # transport itself: from then on the success path makes one method call
        # (`self._sender.handle_request(...)`, cheaper than a stored bound method).
        first_use = _FirstUse(self)
        self._sender: Any = first_use
        self._asender: Any = first_use

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
            f"{type(self).__module__}.{type(self).__qualname__}"
            f"({self._transport!r}, policy={self._policy!r})"
        )

    # -- choosing the inner transport ---------------------------------------

    @staticmethod
    def _refuse_async_hooks(hooks: tuple[RetryHook, ...]) -> None:
        for hook in hooks:
            if is_async_hook(hook):
                raise TypeError(
                    f"on_retry hook {hook!r} is async: only an async client can await it; "
                    "pass a plain function for sync clients"
                )

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
        if mode == "sync":
            self._refuse_async_hooks(self._env.hooks)

    def _first_sync_send(self, request: RequestT) -> ResponseT:
        self._check_first(request, "sync")
        with self._lock:
            if self._sync is None:
                self._sync = self._flavour.sync_default()
            self._sender = self._sync
        return self._sender.handle_request(request)  # type: ignore[no-any-return]

    async def _first_async_send(self, request: RequestT) -> ResponseT:
        self._check_first(request, "async")
        with self._lock:
            if self._async is None:
                self._async = self._flavour.async_default()
            self._asender = self._async
        return await self._asender.handle_async_request(request)  # type: ignore[no-any-return]

    # -- choosing the policy --------------------------------------------------

    def _plan_for(self, choice: object) -> _Plan:
        """The plan for `extensions["retry"]`: a policy, True, False, or a dict of fields."""
        if choice is True or choice is None:
            return self._plan
        if choice is False:
            return _NO_RETRY
        if isinstance(choice, RetryPolicy):
            key: Any = id(choice)  # the plan keeps the policy alive, so the id stays its own
        elif isinstance(choice, Mapping):
            try:
                key = tuple((name, _frozen(choice[name])) for name in sorted(choice))
                hash(key)
            except TypeError:  # an unhashable value, or a non-string field name
                return _Plan(policy_with(self._policy, choice))
        else:
            raise TypeError(
                'extensions["retry"] must be a RetryPolicy, True, False or a dict of '
                f"RetryPolicy fields, got {choice!r}"
            )
        plan = self._plans.get(key)
        if plan is None:
            policy = (
                choice if isinstance(choice, RetryPolicy) else policy_with(self._policy, choice)
            )
            if len(self._plans) >= _PLAN_CACHE_SIZE:
                self._plans.clear()
            plan = self._plans[key] = _Plan(policy)
        return plan

    def _call(self, plan: _Plan, request: RequestT, started: float | None) -> RetryCall:
        return RetryCall(self._env, plan.policy, request, started=started)

    @staticmethod
    def _decided(
        call: RetryCall, response: Any, error: BaseException | None, detail: str
    ) -> Retry | None:
        try:
            return call.decide(response, error, detail)
        except BaseException:  # a backoff or a predicate that raised: free the connection
            if response is not None:
                response.close()
            raise

    @staticmethod
    async def _adecided(
        call: RetryCall, response: Any, error: BaseException | None, detail: str
    ) -> Retry | None:
        try:
            return call.decide(response, error, detail)
        except BaseException:
            if response is not None:
                await response.aclose()
            raise

    def _pause(self) -> bool:
        """Whether to really sleep (the testing mode computes delays but never waits)."""
        return not _testing.current()[0]

    # -- sync -----------------------------------------------------------------

    def handle_request(self, request: RequestT) -> ResponseT:
        extensions = request.extensions
        plan = self._plan if "retry" not in extensions else self._plan_for(extensions["retry"])
        next(self._requests)
        if plan.starts_call:
            if type(self._sender) is _FirstUse:  # check before a request is built from it
                self._check_first(request, "sync")
            call = self._call(plan, request, self._env.clock())
            return self._retry(call, *self._attempt(call.first_request()))
        try:
            response: ResponseT = self._sender.handle_request(request)
        except self._transport_error as exc:
            return self._retry(self._call(plan, request, None), None, exc)
        if response.status_code < plan.floor:
            if plan.streams_pass or type(response.stream) is self._in_memory:
                return response
            return self._streamed_success(plan, request, response)
        return self._retry(self._call(plan, request, None), response, None)

    def _streamed_success(self, plan: _Plan, request: RequestT, response: ResponseT) -> ResponseT:
        """A first attempt's success streamed from the network: preloaded, or resumable.

        What `_retry` would do with it, minus the decision (a success is final): a
        `RetryCall` is made only to retry a body that breaks, or to resume one.
        """
        length = preload_length(plan.policy, request, response, self._flavour)
        if length is None:
            splice = resume_splice(plan.policy, request, response, self._flavour)
            if splice is None:
                return response  # it streams as it came: nothing to read, nothing to resume
            return self._resumable(self._call(plan, request, None), response, splice, _SYNC)
        error, where = read_body(response, length, self._flavour)
        if error is None:
            return response
        return self._retry(self._call(plan, request, None), None, error, where)

    def _attempt(self, request: RequestT) -> tuple[ResponseT | None, Exception | None]:
        try:
            return self._sender.handle_request(request), None
        except self._transport_error as exc:
            return None, exc

    def _retry(
        self,
        call: RetryCall,
        response: ResponseT | None,
        error: Exception | None,
        detail: str = "",
    ) -> ResponseT:
        """From an attempt's outcome to the final one: read, decide, release, wait, resend.

        `detail` says where the body broke, when the outcome is a resumed body's break.
        """
        while True:
            if response is not None and not call.retry_candidate(response):
                response, error, detail = self._preloaded(call, response, error, detail)
            retry = self._decided(call, response, error, detail)
            if retry is None and response is not None and call.preload_length(response):
                # A retry candidate given up on is returned, read like any other; if
                # its body breaks, the break is the outcome: the reasons to stop hold.
                response, error, detail = self._preloaded(call, response, error, detail)
                if error is not None:
                    call.body_broke(error, detail)
            if retry is None:
                return self._finish(call, response, error, _SYNC)
            if response is not None:
                release(response, call.sent, self._flavour)
            dispatch(retry.event, self._env.hooks, retry.attempts)
            if not call.still_fits(retry.delay):
                return call.finish(response, error)
            if retry.delay > 0 and self._pause():
                self._sleep(retry.delay)
            request = call.next_request()
            if request is None:
                return call.finish(response, error)
            (response, error), detail = self._attempt(request), ""

    def _preloaded(
        self, call: RetryCall, response: ResponseT, error: Exception | None, detail: str
    ) -> tuple[ResponseT | None, Exception | None, str]:
        """The outcome once a body that should be preloaded is read: the response, or its break."""
        length = call.preload_length(response)
        if length is None:
            return response, error, detail
        body_error, where = read_body(response, length, self._flavour)
        if body_error is None:
            return response, error, detail
        return None, body_error, where

    def _finish(
        self, call: RetryCall, response: ResponseT | None, error: Exception | None, mode: int
    ) -> ResponseT:
        """The final outcome; a body that may be resumed gets the mode's resuming stream."""
        final = call.finish(response, error)
        if call.resume_error is None:
            splice = resume_splice(call.policy, call.sent, final, self._flavour)
            if splice is not None:
                return self._resumable(call, final, splice, mode)
        return final

    def _resumable(
        self, call: RetryCall, response: ResponseT, splice: Splice, mode: int
    ) -> ResponseT:
        """`response` with the mode's resuming stream: a break in its body continues it."""
        call.publish(response)
        response_any: Any = response
        stream_class = resuming_streams(self._flavour)[mode]
        response_any.stream = stream_class(self, call, splice, response_any.stream)
        return response

    def _resume(self, call: RetryCall, splice: Splice, error: Exception, progressed: bool) -> Any:
        """A continuation of a broken body (called by `ResumingStream`), or the break raised."""
        detail = call.begin_resume(splice, error, progressed)
        response: Any = self._retry(call, None, error, detail)
        why = splice.accept(response.headers, response.status_code)
        if why is not None:
            response.close()
            raise call.cannot_resume(why)
        return response

    # -- async ----------------------------------------------------------------

    async def handle_async_request(self, request: RequestT) -> ResponseT:
        extensions = request.extensions
        plan = self._plan if "retry" not in extensions else self._plan_for(extensions["retry"])
        next(self._requests)
        if plan.starts_call:
            if type(self._asender) is _FirstUse:
                self._check_first(request, "async")
            call = self._call(plan, request, self._env.clock())
            return await self._aretry(call, *await self._aattempt(call.first_request()))
        try:
            response: ResponseT = await self._asender.handle_async_request(request)
        except self._transport_error as exc:
            return await self._aretry(self._call(plan, request, None), None, exc)
        if response.status_code < plan.floor:
            if plan.streams_pass or type(response.stream) is self._in_memory:
                return response
            return await self._astreamed_success(plan, request, response)
        return await self._aretry(self._call(plan, request, None), response, None)

    async def _astreamed_success(
        self, plan: _Plan, request: RequestT, response: ResponseT
    ) -> ResponseT:
        """`_streamed_success` for async transports."""
        length = preload_length(plan.policy, request, response, self._flavour)
        if length is None:
            splice = resume_splice(plan.policy, request, response, self._flavour)
            if splice is None:
                return response
            return self._resumable(self._call(plan, request, None), response, splice, _ASYNC)
        error, where = await aread_body(response, length, self._flavour)
        if error is None:
            return response
        return await self._aretry(self._call(plan, request, None), None, error, where)

    async def _aattempt(self, request: RequestT) -> tuple[ResponseT | None, Exception | None]:
        try:
            return await self._asender.handle_async_request(request), None
        except self._transport_error as exc:
            return None, exc

    async def _aretry(
        self,
        call: RetryCall,
        response: ResponseT | None,
        error: Exception | None,
        detail: str = "",
    ) -> ResponseT:
        """`_retry` for async transports; sleeps with anyio (asyncio and trio)."""
        while True:
            if response is not None and not call.retry_candidate(response):
                response, error, detail = await self._apreloaded(call, response, error, detail)
            retry = await self._adecided(call, response, error, detail)
            if retry is None and response is not None and call.preload_length(response):
                response, error, detail = await self._apreloaded(call, response, error, detail)
                if error is not None:
                    call.body_broke(error, detail)
            if retry is None:
                return self._finish(call, response, error, _ASYNC)
            if response is not None:
                await arelease(response, call.sent, self._flavour)
            await adispatch(retry.event, self._env.hooks, retry.attempts)
            if not call.still_fits(retry.delay):
                return call.finish(response, error)
            if retry.delay > 0 and self._pause():
                sleep = self._async_sleep
                if sleep is None:
                    import anyio

                    sleep = self._async_sleep = anyio.sleep
                await sleep(retry.delay)
            request = call.next_request()
            if request is None:
                return call.finish(response, error)
            (response, error), detail = await self._aattempt(request), ""

    async def _apreloaded(
        self, call: RetryCall, response: ResponseT, error: Exception | None, detail: str
    ) -> tuple[ResponseT | None, Exception | None, str]:
        """`_preloaded` for async responses."""
        length = call.preload_length(response)
        if length is None:
            return response, error, detail
        body_error, where = await aread_body(response, length, self._flavour)
        if body_error is None:
            return response, error, detail
        return None, body_error, where

    async def _aresume(
        self, call: RetryCall, splice: Splice, error: Exception, progressed: bool
    ) -> Any:
        """`_resume` for async transports."""
        detail = call.begin_resume(splice, error, progressed)
        response: Any = await self._aretry(call, None, error, detail)
        why = splice.accept(response.headers, response.status_code)
        if why is not None:
            await response.aclose()
            raise call.cannot_resume(why)
        return response

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
