"""Making retries visible: the frozen event, the log line, hooks and OpenTelemetry."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

__all__ = [
    "RetryEvent",
    "RetryHook",
    "adispatch",
    "dispatch",
    "is_async_hook",
    "logger",
    "normalize_hooks",
    "redacted_url",
]

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")

logger = logging.getLogger("httpx_retrying")


@dataclasses.dataclass(frozen=True, slots=True)
class RetryEvent(Generic[RequestT, ResponseT]):
    """One retry about to happen: attempt `attempt` failed and `delay` seconds will pass.

    `request` is the request as sent for that attempt; `response` (already
    released: headers readable; a small body stays readable, a larger one is
    gone) or `exception` says how it failed; `reason` says it in words
    (`"status 503"`, `"ConnectError"`, `"RemoteProtocolError at byte 65536, resumed"`).
    Typed `RetryEvent[httpx.Request, httpx.Response]` (or httpx2's classes).
    """

    attempt: int
    delay: float
    reason: str
    request: RequestT
    response: ResponseT | None
    exception: BaseException | None

    def __repr__(self) -> str:
        # The request's own repr shows userinfo and query; show the URL as the log line does.
        sent: Any = self.request
        request = f"<{type(sent).__name__}({sent.method!r}, {redacted_url(sent.url)!r})>"
        return (
            f"RetryEvent(attempt={self.attempt!r}, delay={self.delay!r}, reason={self.reason!r}, "
            f"request={request}, response={self.response!r}, exception={self.exception!r})"
        )


#: A hook: called with each `RetryEvent`; an `async def` hook is awaited (async clients only).
RetryHook = Callable[[RetryEvent[Any, Any]], object]


def normalize_hooks(on_retry: RetryHook | Sequence[RetryHook] | None) -> tuple[RetryHook, ...]:
    """Accept one callable, a sequence of them, or None; reject anything else now."""
    if on_retry is None:
        return ()
    hooks: tuple[Any, ...] = (on_retry,)
    if isinstance(on_retry, Iterable) and not callable(on_retry):
        hooks = tuple(on_retry)
    for hook in hooks:
        if not callable(hook):
            raise TypeError(f"on_retry must be a callable or a sequence of callables, got {hook!r}")
    return hooks


def is_async_hook(hook: RetryHook) -> bool:
    """An `async def` function, or an object whose `__call__` is one."""
    return inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(
        getattr(hook, "__call__", None)  # noqa: B004 - the method itself, not callable()
    )


def redacted_url(url: Any) -> str:
    """The URL without userinfo, query or fragment: safe for logs and traces."""
    return str(url.copy_with(username=None, password=None, query=None, fragment=None))


_opentelemetry_trace: Any = None
_opentelemetry_checked = False


def _current_span() -> Any:
    global _opentelemetry_trace, _opentelemetry_checked
    if not _opentelemetry_checked:
        # Look before importing: nothing is imported when it is not installed.
        if importlib.util.find_spec("opentelemetry") is not None:
            try:
                from opentelemetry import trace as _opentelemetry_trace
            except ImportError:  # pragma: no cover - a broken install
                _opentelemetry_trace = None
        _opentelemetry_checked = True
    if _opentelemetry_trace is None:
        return None
    return _opentelemetry_trace.get_current_span()


def _record(event: RetryEvent[Any, Any], attempts: int) -> None:
    """The log line and the span event: the same for every hook and both modes."""
    request: Any = event.request
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "Retrying %s %s in %.3f s: attempt %d of %d failed with %s",
            request.method,
            redacted_url(request.url),
            event.delay,
            event.attempt,
            attempts,
            event.reason,
        )
    span = _current_span()
    if span is not None:
        span.add_event(
            "httpx_retrying.retry",
            {
                "http.request.resend_count": event.attempt,
                "httpx_retrying.delay": event.delay,
                "httpx_retrying.reason": event.reason,
            },
        )


def _hook_failed(hook: RetryHook) -> None:
    logger.exception("on_retry hook %r raised; the retry goes on", hook)


def dispatch(event: RetryEvent[Any, Any], hooks: tuple[RetryHook, ...], attempts: int) -> None:
    """Log the retry, record it on the current span, and run the user's hooks.

    A hook that raises is logged with its traceback and does not stop the
    retry: observability must not change what happens to traffic. (Its
    response was released before the hooks run, so nothing leaks either way.)
    Async hooks are refused before a sync request is sent; one that still
    returns an awaitable here is closed unawaited and logged.
    """
    _record(event, attempts)
    for hook in hooks:
        try:
            result = hook(event)
        except Exception:
            _hook_failed(hook)
            continue
        if inspect.isawaitable(result):
            close = getattr(result, "close", None)
            if close is not None:
                close()
            logger.error("on_retry hook %r returned an awaitable in a sync client", hook)


async def adispatch(
    event: RetryEvent[Any, Any], hooks: tuple[RetryHook, ...], attempts: int
) -> None:
    """`dispatch` for async clients: a hook's awaitable result is awaited."""
    _record(event, attempts)
    for hook in hooks:
        try:
            result = hook(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            _hook_failed(hook)
