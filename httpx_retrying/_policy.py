"""`RetryPolicy`: what to retry and how long to wait, as one immutable value."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeAlias

from ._backoff import backoff_full_jitter
from ._validate import finite_number

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_METHODS",
    "DEFAULT_PRELOAD_LIMIT",
    "DEFAULT_STATUSES",
    "RetryPolicy",
    "ShouldRetry",
    "policy_with",
]

#: RFC 9110 section 9.2.2: PUT, DELETE and the safe methods are idempotent.
DEFAULT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
#: Statuses that say "try again later" without saying the request was wrong.
DEFAULT_STATUSES = frozenset({408, 429, 502, 503, 504})
#: Full jitter over 0.5 s, 1 s, 2 s, ... capped at 8 s (the openai SDK's curve).
DEFAULT_BACKOFF = backoff_full_jitter(initial=0.5, cap=8.0)
#: Bodies up to 1 MiB are read inside the transport, so a break while reading is retried.
DEFAULT_PRELOAD_LIMIT = 1_048_576

#: `should_retry(response, exception)`: True retries this outcome, False never, None: the rules.
#: The response is an `httpx.Response` (an `httpx2.Response` in the httpx2 flavour) or None.
ShouldRetry: TypeAlias = Callable[[Any, Exception | None], "bool | None"]

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # RFC 9110 token: methods, header names


def _collection(name: str, value: object) -> Collection[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Collection):
        raise TypeError(f"RetryPolicy {name} must be a collection (e.g. a set), got {value!r}")
    return value


def _methods(value: object) -> frozenset[str]:
    methods = _collection("methods", value)
    for method in methods:
        if not isinstance(method, str) or re.fullmatch(_TOKEN, method) is None:
            raise ValueError(f"RetryPolicy methods: {method!r} is not an HTTP method")
    return frozenset(method.upper() for method in methods)


def _statuses(value: object) -> frozenset[int]:
    statuses = _collection("statuses", value)
    for status in statuses:
        if isinstance(status, bool) or not isinstance(status, int):
            raise TypeError(f"RetryPolicy statuses: {status!r} is not an int")
        if not 100 <= status <= 599:
            raise ValueError(f"RetryPolicy statuses: {status!r} is outside 100..599")
    return frozenset(statuses)


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"RetryPolicy {name} must be a bool, got {value!r}")
    return value


def _callable(name: str, value: object, what: str) -> Any:
    if not callable(value) or isinstance(value, type):  # a class: `backoff_full_jitter`, not `()`
        raise TypeError(f"RetryPolicy {name} must be {what}, got {value!r}")
    return value


def _whole_number(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"RetryPolicy {name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"RetryPolicy {name} must be >= {minimum}, got {value!r}")
    return value


def _header_name(value: object) -> str | None:
    if value is not None and (not isinstance(value, str) or re.fullmatch(_TOKEN, value) is None):
        raise ValueError(f"RetryPolicy attempt_header must be a header name, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True, slots=True, init=False)
class RetryPolicy:
    """Which requests are retried, how often, and how long to wait in between.

    Immutable and safe to share: per-request state lives in the transport's
    loop. Derive variants with `dataclasses.replace(policy, attempts=5)`, or
    per request with `extensions={"retry": {"attempts": 5}}`.

    Arguments (all keyword-only):

    * `attempts`: total tries, the first included (`1` means no retries). For a
      resumed download it bounds the consecutive tries that brought no new byte.
    * `methods`: methods retried after a response in `statuses`, or after an
      error that may have reached the server (case-insensitive). Errors that
      prove nothing was processed (connect errors, pool timeouts, an HTTP/2
      refused stream) are retried for every method. A request carrying an
      `Idempotency-Key` or `X-Idempotency-Key` header counts as idempotent
      whatever its method.
    * `statuses`: response status codes that are retried.
    * `backoff`: seconds to wait before retry `n`: one of the package's
      strategies or any tenacity wait (a callable taking a
      `tenacity.RetryCallState`; its `retry_object` and `fn` are `None`).
    * `deadline`: seconds for the whole call (attempts and sleeps), or `None`.
      A retry starts only if its wait, the release of the failed response and
      a minimal attempt fit in what is left; no attempt is sent once it is
      spent, and each attempt's timeouts are cut to the time left.
    * `respect_retry_after`: honour `Retry-After` / `retry-after-ms`, and the
      rate-limit reset hints when those are absent.
    * `max_retry_after`: a server asking for a longer wait gets its response
      back at once instead of a retry. It also caps a backoff that is not one
      of the package's strategies (theirs are capped by their own `cap`).
    * `retry_after_spread`: a server-requested wait `RA` becomes a wait drawn
      from `[RA, RA * (1 + spread)]`, so clients told the same `Retry-After`
      do not all return at the same instant.
    * `attempt_header`: if set, a request header of this name carries the
      1-based attempt number on every attempt, so servers can see retries.
    * `idempotency_key`: if true, a request whose method is not idempotent and
      that has no `Idempotency-Key` gets one (a random UUID, the same on every
      attempt of that request), which makes it retryable. The key is written
      into the caller's `Request`, so sending that same object again reuses it.
    * `preload_limit`: a response to a retryable request whose `Content-Length`
      is at most this many bytes (and that is not an event stream) is read
      inside the transport, so a body that breaks is retried. `0` turns it off.
    * `resume`: continue a large `GET` download that breaks mid-way with a
      `Range` request, when the response carried a strong validator.
    * `should_retry`: `(response, exception) -> bool | None`, asked about every
      outcome a retry could follow (not on the last attempt): `True` retries it
      (even a non-idempotent method), `False` never, `None` lets the rules
      decide. It never overrides `x-should-retry: false` or the errors that
      fail the same way again, nor resends a body that cannot be replayed.
    """

    attempts: int
    methods: frozenset[str]
    statuses: frozenset[int]
    backoff: Callable[[Any], float]
    deadline: float | None
    respect_retry_after: bool
    max_retry_after: float
    retry_after_spread: float
    attempt_header: str | None
    idempotency_key: bool
    preload_limit: int
    resume: bool
    should_retry: ShouldRetry | None

    def __init__(
        self,
        *,
        attempts: int = 3,
        methods: Collection[str] = DEFAULT_METHODS,
        statuses: Collection[int] = DEFAULT_STATUSES,
        backoff: Callable[[Any], float] = DEFAULT_BACKOFF,
        deadline: float | None = None,
        respect_retry_after: bool = True,
        max_retry_after: float = 60.0,
        retry_after_spread: float = 0.5,
        attempt_header: str | None = None,
        idempotency_key: bool = False,
        preload_limit: int = DEFAULT_PRELOAD_LIMIT,
        resume: bool = True,
        should_retry: ShouldRetry | None = None,
    ) -> None:
        fields = {
            "attempts": _whole_number("attempts", attempts, 1),
            "methods": _methods(methods),
            "statuses": _statuses(statuses),
            "backoff": _callable(
                "backoff", backoff, "a wait strategy (a callable taking a RetryCallState)"
            ),
            "deadline": None
            if deadline is None
            else finite_number("RetryPolicy deadline", deadline, inclusive=False),
            "respect_retry_after": _flag("respect_retry_after", respect_retry_after),
            "max_retry_after": finite_number("RetryPolicy max_retry_after", max_retry_after),
            "retry_after_spread": finite_number(
                "RetryPolicy retry_after_spread", retry_after_spread
            ),
            "attempt_header": _header_name(attempt_header),
            "idempotency_key": _flag("idempotency_key", idempotency_key),
            "preload_limit": _whole_number("preload_limit", preload_limit, 0),
            "resume": _flag("resume", resume),
            "should_retry": None
            if should_retry is None
            else _callable(
                "should_retry", should_retry, "a callable (response, exception) -> bool | None"
            ),
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)


#: The names `extensions={"retry": {...}}` may override.
FIELDS = frozenset(field.name for field in dataclasses.fields(RetryPolicy))


def policy_with(base: RetryPolicy, changes: Mapping[str, Any]) -> RetryPolicy:
    """`base` with `changes` applied, as `dataclasses.replace` would, naming any bad field."""
    for name in changes:
        if name not in FIELDS:
            raise TypeError(
                f'extensions["retry"]: {name!r} is not a RetryPolicy field '
                f"(known: {', '.join(sorted(FIELDS))})"
            )
    return dataclasses.replace(base, **changes)
