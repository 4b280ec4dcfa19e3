"""The configurations under comparison: this package (R), its peers (B, C, D), bare baselines.

* R `httpx_retrying.RetryTransport`: defaults on the success path; on the retry path
  zero backoff and `RetryBudget(ratio=2.0)` (each request earns the two tokens its two
  retries spend), with a counting `sleep` that a zero delay must never reach.
* B httpx-retries `RetryTransport(retry=Retry(total=3, backoff_factor=0))`.
* C tenacity `Retrying` / `AsyncRetrying`: `stop_after_attempt(4)`, `wait_none()`, retry on a
  status in {429, 502, 503, 504} or a `TransportError`; built once, called per request.
* D stamina `retry_context(on=(TransportError, RetryableStatusError), attempts=4,
  wait_initial=0, wait_jitter=0)`, built per request, instrumentation hooks off.

B and D come with the `bench` extra; a group leaves a missing one out with a note.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import tenacity

from httpx_retrying import RetryBudget, RetryPolicy, RetryTransport

from .fixtures import RETRY_STATUSES, SleepCounter
from .harness import BenchmarkError

try:
    import httpx_retries
except ImportError:  # the optional `bench` extra is not installed
    httpx_retries = None  # type: ignore[assignment]
try:
    import stamina
except ImportError:
    stamina = None  # type: ignore[assignment]

Send = Callable[[Any], Any]
T = TypeVar("T")
NAMES = {"B": "httpx-retries", "C": "tenacity", "D": "stamina"}
_INSTALLED = {"B": httpx_retries is not None, "C": True, "D": stamina is not None}


class RetryableStatusError(Exception):
    """Raised inside a stamina attempt for a retryable status (stamina retries on exceptions)."""


def quiet() -> None:
    """Turn stamina's instrumentation off (its default logging hook costs tens of µs)."""
    if stamina is not None:
        stamina.instrumentation.set_on_retry_hooks([])


def ours(inner: Any, *, retry_path: bool, sleeps: SleepCounter | None = None) -> RetryTransport:
    if not retry_path:
        return RetryTransport(inner)
    sleeps = sleeps or SleepCounter()
    return RetryTransport(
        inner,
        policy=RetryPolicy(backoff=tenacity.wait_none()),
        budget=RetryBudget(ratio=2.0),
        sleep=sleeps.sleep,
        async_sleep=sleeps.async_sleep,
    )


def retry_counters(transport: RetryTransport, sleeps: SleepCounter) -> dict[str, float]:
    """R's counters after the rounds; a refused retry would mean a different path was timed."""
    budget = transport.budget
    assert budget is not None
    if budget.retries_refused:
        raise BenchmarkError(f"R: the budget refused {budget.retries_refused} retries")
    return {"sleep calls": sleeps.calls, "retries": budget.retries_allowed}


def httpx_retries_transport(inner: Any) -> Any:
    return httpx_retries.RetryTransport(inner, retry=httpx_retries.Retry(total=3, backoff_factor=0))


def _is_retryable(response: httpx.Response) -> bool:
    return response.status_code in RETRY_STATUSES


def _tenacity_kwargs() -> dict[str, Any]:
    return {
        "stop": tenacity.stop_after_attempt(4),
        "wait": tenacity.wait_none(),
        "retry": tenacity.retry_if_result(_is_retryable)
        | tenacity.retry_if_exception_type(httpx.TransportError),
        "reraise": True,
    }


_STAMINA_ON = (httpx.TransportError, RetryableStatusError)


def _stamina(send: Send) -> Send:
    def call(arg: Any) -> Any:
        for attempt in stamina.retry_context(
            on=_STAMINA_ON, attempts=4, wait_initial=0, wait_jitter=0
        ):
            with attempt:
                response = send(arg)
                if response.status_code in RETRY_STATUSES:
                    raise RetryableStatusError
        return response

    return call


def _stamina_async(send: Callable[[Any], Awaitable[Any]]) -> Send:
    async def call(arg: Any) -> Any:
        async for attempt in stamina.retry_context(
            on=_STAMINA_ON, attempts=4, wait_initial=0, wait_jitter=0
        ):
            with attempt:
                response = await send(arg)
                if response.status_code in RETRY_STATUSES:
                    raise RetryableStatusError
        return response

    return call


def around(key: str, async_: bool, send: Send) -> Send:
    """Peer C (tenacity) or D (stamina) retrying around a `send(arg)` callable."""
    if key == "C":
        retrying = tenacity.AsyncRetrying if async_ else tenacity.Retrying
        return functools.partial(retrying(**_tenacity_kwargs()), send)
    return (_stamina_async if async_ else _stamina)(send)


def collect(make: Callable[[str], T], keys: str = "BCD") -> tuple[list[T], list[str]]:
    """`make(key)` for every installed peer in `keys`, and a skip note for every missing one."""
    configs: list[T] = []
    skipped: list[str] = []
    for key in keys:
        if _INSTALLED[key]:
            configs.append(make(key))
        else:
            skipped.append(f"{key} {NAMES[key]}: not importable (install the `bench` extra)")
    return configs, skipped


def bare_three(send: Send) -> Send:
    """Three bare attempts per logical request: the retry path's baseline."""

    def call(arg: Any) -> Any:
        send(arg)
        send(arg)
        return send(arg)

    return call


def bare_three_async(send: Callable[[Any], Awaitable[Any]]) -> Send:
    async def call(arg: Any) -> Any:
        await send(arg)
        await send(arg)
        return await send(arg)

    return call


def bare_three_refused(send: Send) -> Send:
    """Three bare attempts, the first two raising `ConnectError` (caught, as a retry would)."""

    def call(arg: Any) -> Any:
        try:  # noqa: SIM105 (a suppress() object per call would cost more)
            send(arg)
        except httpx.ConnectError:
            pass
        try:  # noqa: SIM105
            send(arg)
        except httpx.ConnectError:
            pass
        return send(arg)

    return call


def bare_three_refused_async(send: Callable[[Any], Awaitable[Any]]) -> Send:
    async def call(arg: Any) -> Any:
        try:  # noqa: SIM105
            await send(arg)
        except httpx.ConnectError:
            pass
        try:  # noqa: SIM105
            await send(arg)
        except httpx.ConnectError:
            pass
        return await send(arg)

    return call


def bare_three_for(async_: bool, refused: bool) -> Callable[[Any], Send]:
    if refused:
        return bare_three_refused_async if async_ else bare_three_refused
    return bare_three_async if async_ else bare_three
