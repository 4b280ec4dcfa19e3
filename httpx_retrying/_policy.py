"""`RetryPolicy`: what to retry and how long to wait, as one immutable value."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection
from typing import Any

from ._backoff import backoff_full_jitter
from ._validate import finite_number

__all__ = ["DEFAULT_BACKOFF", "DEFAULT_METHODS", "DEFAULT_STATUSES", "RetryPolicy"]

#: RFC 9110 section 9.2.2: PUT, DELETE and the safe methods are idempotent.
DEFAULT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
#: Statuses that say "try again later" without saying the request was wrong.
DEFAULT_STATUSES = frozenset({408, 429, 502, 503, 504})
#: Full jitter over 0.5 s, 1 s, 2 s, ... capped at 8 s (the openai SDK's curve).
DEFAULT_BACKOFF = backoff_full_jitter(initial=0.5, cap=8.0)

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # RFC 9110 token: methods, header names


def _collection(name: str, value: object) -> Collection[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Collection):
        raise TypeError(f"RetryPolicy {name} must be a collection (e.g. a set), got {value!r}")
    return value


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """Which requests are retried, how often, and how long to wait in between.

    Immutable and safe to share: per-request state lives in the transport's
    loop. Derive variants with `dataclasses.replace(policy, attempts=5)`.

    Arguments:

    * `attempts`: total tries, the first included (`1` means no retries).
    * `methods`: methods retried after a response in `statuses`, or after an
      error that may have reached the server (case-insensitive). Errors that
      prove nothing was sent (connect errors, pool timeouts) are retried for
      every method. A request carrying an `Idempotency-Key` header counts as
      idempotent whatever its method.
    * `statuses`: response status codes that are retried.
    * `backoff`: any tenacity wait strategy: a callable taking a
      `tenacity.RetryCallState` and returning seconds.
    * `deadline`: seconds for the whole call (attempts and sleeps), or `None`.
      No sleep starts that would end past it, and each attempt's timeouts are
      cut to the time left.
    * `respect_retry_after`: honour `Retry-After` / `retry-after-ms`.
    * `max_retry_after`: a server asking for a longer wait gets its response
      back at once instead of a retry.
    * `retry_after_spread`: a server-requested wait `RA` becomes a wait drawn
      from `[RA, RA * (1 + spread)]`, so clients told the same `Retry-After`
      do not all return at the same instant.
    * `attempt_header`: if set, a request header of this name carries the
      1-based attempt number on every attempt, so servers can see retries.
    * `idempotency_key`: if true, a request whose method is not idempotent and
      that has no `Idempotency-Key` gets one (a random UUID, the same on every
      attempt of that request), which makes it retryable.
    """

    attempts: int = 3
    methods: Collection[str] = DEFAULT_METHODS
    statuses: Collection[int] = DEFAULT_STATUSES
    backoff: Callable[[Any], float] = DEFAULT_BACKOFF
    deadline: float | None = None
    respect_retry_after: bool = True
    max_retry_after: float = 60.0
    retry_after_spread: float = 0.5
    attempt_header: str | None = None
    idempotency_key: bool = False

    # Derived once, read on every request.
    _status_floor: int = dataclasses.field(init=False, repr=False, compare=False)
    _prepares_requests: bool = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise TypeError(f"RetryPolicy attempts must be an int, got {self.attempts!r}")
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy attempts must be >= 1, got {self.attempts!r}")

        methods = _collection("methods", self.methods)
        for method in methods:
            if not isinstance(method, str) or re.fullmatch(_TOKEN, method) is None:
                raise ValueError(f"RetryPolicy methods: {method!r} is not an HTTP method")
        set_(self, "methods", frozenset(method.upper() for method in methods))

        statuses = _collection("statuses", self.statuses)
        for status in statuses:
            if isinstance(status, bool) or not isinstance(status, int):
                raise TypeError(f"RetryPolicy statuses: {status!r} is not an int")
            if not 100 <= status <= 599:
                raise ValueError(f"RetryPolicy statuses: {status!r} is outside 100..599")
        set_(self, "statuses", frozenset(statuses))

        if not callable(self.backoff):
            raise TypeError(
                "RetryPolicy backoff must be a tenacity wait strategy "
                f"(a callable taking a RetryCallState), got {self.backoff!r}"
            )
        if self.deadline is not None:
            set_(
                self,
                "deadline",
                finite_number("RetryPolicy deadline", self.deadline, inclusive=False),
            )
        if not isinstance(self.respect_retry_after, bool):
            raise TypeError(
                f"RetryPolicy respect_retry_after must be a bool, got {self.respect_retry_after!r}"
            )
        set_(
            self,
            "max_retry_after",
            finite_number("RetryPolicy max_retry_after", self.max_retry_after),
        )
        set_(
            self,
            "retry_after_spread",
            finite_number("RetryPolicy retry_after_spread", self.retry_after_spread),
        )
        if self.attempt_header is not None and (
            not isinstance(self.attempt_header, str)
            or re.fullmatch(_TOKEN, self.attempt_header) is None
        ):
            raise ValueError(
                f"RetryPolicy attempt_header must be a header name, got {self.attempt_header!r}"
            )
        if not isinstance(self.idempotency_key, bool):
            raise TypeError(
                f"RetryPolicy idempotency_key must be a bool, got {self.idempotency_key!r}"
            )

        # Responses below this status are returned without another look: one
        # comparison on the success path. 400 and up may carry `x-should-retry`.
        # With one attempt nothing is retried: every response goes straight back.
        floor = min([400, *self.statuses]) if self.attempts > 1 else 1000
        set_(self, "_status_floor", floor)
        set_(
            self,
            "_prepares_requests",
            self.deadline is not None or self.attempt_header is not None or self.idempotency_key,
        )
