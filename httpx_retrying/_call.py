"""The decision core: one logical request's retries, with no I/O of its own.

A `RetryCall` exists only once a first attempt has failed (or when the policy
must prepare the first attempt, e.g. for a deadline); a first-try success
never builds one. The sync and async loops in `_transport` feed it outcomes
and do what it says. Clock, wall clock and randomness come from `Environment`,
so every decision can be replayed in tests without sockets or sleeping.
"""

from __future__ import annotations

import logging
import math
import ssl
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ._budget import RetryBudget
from ._events import RetryEvent, RetryHook, dispatch, logger, redacted_url
from ._flavour import Flavour
from ._policy import RetryPolicy
from ._retry_after import requested_delay, wait_with_retry_after

__all__ = ["DRAIN_LIMIT", "Environment", "RetryCall"]

_R = TypeVar("_R")

#: A discarded response with at most this many body bytes is read before it is
#: closed, so its connection goes back to the pool for keep-alive; a larger one
#: is closed unread (its connection is dropped, its pool slot freed).
DRAIN_LIMIT = 64 * 1024

# The headers retry decisions read. Collected in one pass: each `headers.get`
# scans every header, and a retry would otherwise make four such scans.
_HINTS = frozenset({"x-should-retry", "retry-after-ms", "retry-after", "content-length"})
_TIMEOUT_KEYS = ("connect", "read", "write", "pool")
#: The least time an attempt is given once the deadline is (nearly) spent: a 0 s
#: timeout would make a sync socket non-blocking (spurious EAGAIN ReadErrors).
_MIN_ATTEMPT_TIMEOUT = 0.001


class Environment:
    """Everything a transport lends to its calls; shared, so never mutated."""

    __slots__ = ("budget", "clock", "flavour", "hooks", "random", "wall_clock")

    def __init__(
        self,
        *,
        flavour: Flavour,
        budget: RetryBudget | None,
        hooks: tuple[RetryHook, ...],
        clock: Callable[[], float],  # monotonic seconds: deadlines
        wall_clock: Callable[[], float],  # Unix seconds: Retry-After dates
        random: Callable[[], float],  # uniform [0, 1): Retry-After spread
    ) -> None:
        self.flavour = flavour
        self.budget = budget
        self.hooks = hooks
        self.clock = clock
        self.wall_clock = wall_clock
        self.random = random


_state_class: Any = None


def _new_state() -> Any:
    """A tenacity `RetryCallState` that builds its outcome `Future` only when read.

    Strategies get the real class (and every attribute tenacity documents), but
    the common ones never read `outcome`, and building a Future (it allocates a
    `threading.Condition`) was the largest single cost of a retry.
    """
    global _state_class
    if _state_class is None:
        import tenacity  # only on the failure path: it costs ~8 ms to import

        class LazyOutcomeState(tenacity.RetryCallState):
            _staged: tuple[Any, BaseException | None] | None = None
            _future: Any = None

            @property
            def outcome(self) -> Any:
                staged = self._staged
                if staged is not None:
                    self._staged = None
                    response, error = staged
                    future = tenacity.Future(self.attempt_number)
                    if error is None:
                        future.set_result(response)
                    else:
                        future.set_exception(error)
                    self._future = future
                return self._future

            @outcome.setter
            def outcome(self, value: Any) -> None:
                self._staged = None
                self._future = value

            def stage(self, response: Any, error: BaseException | None) -> None:
                self._staged = (response, error)
                self._future = None
                self.outcome_timestamp = time.monotonic()

        _state_class = LazyOutcomeState
    return _state_class(None, None, (), {})


def _is_idempotent(policy: RetryPolicy, request: Any) -> bool:
    headers = request.headers
    return (
        request.method in policy.methods
        or "idempotency-key" in headers
        or "x-idempotency-key" in headers
    )


def _certificate_failure(error: BaseException) -> bool:
    """A ConnectError caused by a failed certificate check will fail the same way again."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _may_still_be_served(error: BaseException | None) -> bool:
    """A read or write timeout: the server may still be working on the attempt."""
    return error is not None and any(
        cls.__name__ in ("ReadTimeout", "WriteTimeout") for cls in type(error).__mro__
    )


class RetryCall:
    """Retry bookkeeping for one logical request: attempts, history, deadline."""

    __slots__ = (
        "_base_timeouts",
        "_hints",
        "_paid",
        "_state",
        "attempt",
        "drain",
        "env",
        "history",
        "policy",
        "request",
        "sent",
        "started",
        "stop_reason",
        "wanted_retry",
    )

    def __init__(
        self, env: Environment, policy: RetryPolicy, request: Any, *, started: float | None
    ) -> None:
        self.env = env
        self.policy = policy
        self.request = request  # the caller's request
        self.sent = request  # the request as sent for the current attempt
        self.started = started  # None unless the deadline needs it
        self.attempt = 1
        self.history: list[RetryEvent] = []
        self.stop_reason = ""
        self.wanted_retry = False  # a retry was due but refused (budget, deadline, ...)
        self.drain = True  # read the discarded response's body before closing it?
        self._hints: dict[str, str] = {}
        self._state: Any = None  # tenacity.RetryCallState, built on the first backoff
        self._base_timeouts: dict[str, float | None] | None = None
        self._paid = 0.0  # budget tokens paid for the retry attempt in flight (0: none)

    # -- deciding -----------------------------------------------------------

    def _retryable(self, response: Any, error: BaseException | None) -> str | None:
        """Why this outcome deserves another attempt, or None (recording why not)."""
        policy, flavour, request = self.policy, self.env.flavour, self.sent
        if error is not None:
            name = type(error).__name__
            if isinstance(error, flavour.never_sent):
                if _certificate_failure(error):
                    self.stop_reason = f"{name}: certificate verification failed"
                    return None
                return name
            if not isinstance(error, flavour.maybe_sent):
                self.stop_reason = f"{name} is never retried"
                return None
            server_vouches = False
            reason = name
        else:
            status = response.status_code
            hints = self._hints = {
                name: value for name, value in response.headers.multi_items() if name in _HINTS
            }
            length = hints.get("content-length")
            self.drain = length is None or (length.isdigit() and int(length) <= DRAIN_LIMIT)
            hint = hints.get("x-should-retry", "").strip().lower()
            if hint == "false":
                self.stop_reason = f"status {status} with x-should-retry: false"
                return None
            server_vouches = hint == "true"
            if status not in policy.statuses and not (server_vouches and status >= 400):
                self.stop_reason = f"status {status} is not retried"
                return None
            reason = f"status {status}"
        if not (server_vouches or _is_idempotent(policy, request)):
            self.stop_reason = f"{reason} on {request.method}, which is not idempotent"
            return None
        if not isinstance(request.stream, flavour.byte_stream):
            self.stop_reason = f"{reason}, and the request body cannot be sent again"
            return None
        return reason

    def _backoff(self, error: BaseException | None, response: Any) -> float:
        state = self._state
        if state is None:
            state = self._state = _new_state()
        state.attempt_number = self.attempt
        state.stage(response, error)
        return float(self.policy.backoff(state))

    def next_delay(self, response: Any, error: BaseException | None) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now."""
        if error is None and response.status_code < self.policy._status_floor:
            self._settle_retry(True)
            return None  # a success (or a status nobody retries)
        reason = self._retryable(response, error)
        self._settle_retry(error is None and reason is None)
        if reason is None:
            return None
        policy = self.policy
        if self.attempt >= policy.attempts:
            self.stop_reason = f"{reason}; all {policy.attempts} attempts used"
            return None
        self.wanted_retry = True

        delay = self._backoff(error, response)
        if math.isnan(delay) or delay == math.inf:
            self.stop_reason = f"{reason}; the backoff returned {delay!r} s"
            return None
        delay = max(0.0, delay)
        if response is not None and policy.respect_retry_after:
            asked = requested_delay(self._hints.get, self.env.wall_clock())
            if asked is not None:
                combined = wait_with_retry_after(
                    delay,
                    asked,
                    spread=policy.retry_after_spread,
                    uniform=self.env.random(),
                    max_retry_after=policy.max_retry_after,
                )
                if combined is None:
                    self.stop_reason = (
                        f"{reason}; the server asked for a {asked:g} s wait, "
                        f"more than max_retry_after ({policy.max_retry_after:g} s)"
                    )
                    return None
                delay = combined

        if policy.deadline is not None and self.started is not None:
            elapsed = self.env.clock() - self.started
            if elapsed + delay >= policy.deadline:
                self.stop_reason = (
                    f"{reason}; waiting {delay:.3f} s would pass the {policy.deadline:g} s deadline"
                )
                return None
        budget = self.env.budget
        if budget is not None:
            cost = budget.timeout_cost if _may_still_be_served(error) else 1.0
            if not budget.try_acquire(cost):
                self.stop_reason = f"{reason}; the retry budget is spent"
                return None
            self._paid = cost
        self._record(reason, delay, response, error)
        return delay

    # -- budget outcome (retry path only) ------------------------------------

    def _settle_retry(self, succeeded: bool) -> None:
        """Tell the budget how the retry attempt it paid for ended (refund on success)."""
        cost = self._paid
        if cost:
            self._paid = 0.0
            budget: Any = self.env.budget
            budget.record_retry_outcome(succeeded, cost)

    def _record(
        self, reason: str, delay: float, response: Any, error: BaseException | None
    ) -> None:
        state = self._state
        state.idle_for += delay
        state.upcoming_sleep = delay
        self.history.append(RetryEvent(self.attempt, delay, reason, self.sent, response, error))

    def announce(self) -> None:
        """Tell the world about the retry just decided; call after releasing its response."""
        dispatch(self.history[-1], self.env.hooks, self.policy.attempts)

    # -- preparing attempts -------------------------------------------------

    def first_request(self) -> Any:
        """The first attempt's request, when the policy needs to prepare it."""
        policy, request = self.policy, self.request
        if policy.idempotency_key and not _is_idempotent(policy, request):
            # Part of the logical request: set on the caller's request, so
            # every attempt and `response.request` carry the same key.
            import uuid  # rare: only for policies that add keys

            request.headers["Idempotency-Key"] = str(uuid.uuid4())
        self.sent = self._prepared(request)
        return self.sent

    def next_request(self) -> Any:
        """The request for the next attempt (call after sleeping)."""
        self.attempt += 1
        self.sent = self._prepared(self.request)
        return self.sent

    def _prepared(self, request: Any) -> Any:
        policy = self.policy
        if policy.attempt_header is None and policy.deadline is None:
            return request
        headers = request.headers
        if policy.attempt_header is not None:
            headers = headers.copy()
            headers[policy.attempt_header] = str(self.attempt)
        extensions = request.extensions
        if policy.deadline is not None and self.started is not None:
            left = max(_MIN_ATTEMPT_TIMEOUT, policy.deadline - (self.env.clock() - self.started))
            if self._base_timeouts is None:
                given = extensions.get("timeout") or {}
                self._base_timeouts = {key: given.get(key) for key in _TIMEOUT_KEYS}
            timeouts = {
                key: left if value is None else min(value, left)
                for key, value in self._base_timeouts.items()
            }
            extensions = {**extensions, "timeout": timeouts}
        # A per-attempt copy: the caller's request is left as it was.
        return self.env.flavour.request(
            request.method,
            request.url,
            headers=headers,
            stream=request.stream,
            extensions=extensions,
        )

    # -- giving up or finishing ---------------------------------------------

    def finish(self, response: _R | None, error: BaseException | None) -> _R:
        """Return the final response or raise the final error, telling what happened."""
        history = self.history
        told = bool(history) or self.wanted_retry
        if history and error is None:
            extensions: Any = getattr(response, "extensions", None)
            if isinstance(extensions, dict):
                extensions["retry_history"] = tuple(history)
        if told and error is not None:
            steps = "".join(
                f"attempt {event.attempt}: {event.reason}, retried after {event.delay:.3f} s; "
                for event in history
            )
            error.add_note(
                f"httpx_retrying: gave up after {self.attempt} attempt(s) ({steps}"
                f"attempt {self.attempt}: {self.stop_reason or type(error).__name__})"
            )
        if told and self.stop_reason and logger.isEnabledFor(logging.INFO):
            logger.info(
                "Giving up on %s %s after %d attempt(s): %s",
                self.request.method,
                redacted_url(self.request.url),
                self.attempt,
                self.stop_reason,
            )
        if error is not None:
            raise error
        assert response is not None
        return response
