"""The decision core: one logical request's retries, with no I/O of its own.

A `RetryCall` is built once a first attempt needs a second look (a failure, a
body to preload or resume), or before it for a policy that prepares requests
(deadline, attempt header, idempotency key) or whose backoff may read the
elapsed time; otherwise a first-try success never builds one. The loops in `_transport`
and the resuming streams in `_resume` feed it outcomes and do what it returns:
`decide` gives a `Retry` (wait this long, then send `next_request()`) or None
(give up: `finish` returns the response or raises the error with its story).
Clock, wall clock and randomness come from `Environment`, so every decision
can be replayed in tests without sockets or sleeping.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, TypeVar

from . import _testing
from ._backoff import _CappedExponential
from ._body import release_seconds
from ._budget import RetryBudget
from ._classify import Sent, classify
from ._events import RetryEvent, RetryHook, logger, redacted_url
from ._flavour import Flavour
from ._policy import RetryPolicy
from ._ranges import Splice, content_length, media_type, splice_for
from ._rate_limit import RATE_LIMIT_HEADERS, rate_limit_delay
from ._retry_after import requested_delay, wait_with_retry_after

__all__ = ["Environment", "Retry", "RetryCall"]

_R = TypeVar("_R")

# The headers retry decisions read. Collected in one pass: each `headers.get`
# scans every header, and a retry would otherwise make a dozen such scans.
_HINTS = frozenset({"x-should-retry", "retry-after-ms", "retry-after", *RATE_LIMIT_HEADERS})
_TIMEOUT_KEYS = ("connect", "read", "write", "pool")
#: The least time an attempt is given: a 0 s timeout would make a sync socket
#: non-blocking (spurious EAGAIN ReadErrors).
_MIN_ATTEMPT_TIMEOUT = 0.001
#: An attempt is only worth sending with at least this share of the deadline left
#: (at most `_MIN_ATTEMPT_SECONDS`): a retry that would start later is not started.
_MIN_ATTEMPT_SHARE = 0.05
_MIN_ATTEMPT_SECONDS = 0.05
_NOTE_PREFIX = "httpx_retrying: gave up"


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


class Retry:
    """The decision to retry: sleep `delay` seconds, then send `RetryCall.next_request()`."""

    __slots__ = ("attempts", "delay", "event")

    def __init__(self, delay: float, event: RetryEvent[Any, Any], attempts: int) -> None:
        self.delay = delay
        self.event = event  # what the hooks, the log and the history are told
        self.attempts = attempts  # the attempts the call may make (the testing mode caps them)


_state_class: Any = None


def _new_state(start_time: float) -> Any:
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

            def stage(self, response: Any, error: BaseException | None, now: float) -> None:
                self._staged = (response, error)
                self._future = None
                self.outcome_timestamp = now

        _state_class = LazyOutcomeState
    state = _state_class(None, None, (), {})
    state.start_time = start_time
    return state


def _is_idempotent(policy: RetryPolicy, request: Any) -> bool:
    headers = request.headers
    return (
        request.method in policy.methods
        or "idempotency-key" in headers
        or "x-idempotency-key" in headers
    )


def retries_bodies(policy: RetryPolicy, request: Any, flavour: Flavour) -> bool:
    """Whether a body that breaks may be read again: an idempotent, replayable request."""
    return (
        policy.attempts > 1
        and isinstance(request.stream, flavour.byte_stream)
        and _is_idempotent(policy, request)
    )


def preload_length(
    policy: RetryPolicy, request: Any, response: Any, flavour: Flavour
) -> int | None:
    """The body length to read inside the transport, or None to leave the body streaming."""
    if isinstance(response.stream, flavour.byte_stream):
        return None  # already in memory: nothing can break
    status = response.status_code
    if request.method == "HEAD" or status < 200 or status in (204, 304):
        return None  # a length, but no body (RFC 9110 6.4.1, 8.6)
    if not retries_bodies(policy, request, flavour):
        return None
    length_field, type_field = _length_and_type(response.headers)
    length = content_length(length_field)
    if length is None or length > policy.preload_limit or _is_event_stream(type_field):
        return None
    return length


def resume_splice(
    policy: RetryPolicy, request: Any, response: Any, flavour: Flavour
) -> Splice | None:
    """How to resume a final response's body if it breaks, or None if it cannot be."""
    if (
        not policy.resume
        or request.method != "GET"
        or isinstance(response.stream, flavour.byte_stream)
        or not retries_bodies(policy, request, flavour)
        or _is_event_stream(response.headers.get("content-type"))
    ):
        return None
    return splice_for(request.headers, response.status_code, response.headers)


def _is_event_stream(content_type: str | None) -> bool:
    """Events are never preloaded (they need not end) nor resumed by bytes: they resume
    with `Last-Event-ID`, which only the application knows."""
    return media_type(content_type) == "text/event-stream"


def _length_and_type(headers: Any) -> tuple[str | None, str | None]:
    """`Content-Length` and `Content-Type` as `headers.get` gives them (repeats joined).

    One pass over the raw fields: `headers.get` first works out the encoding of
    every field, which costs more than the rest of a success's preload decision.
    """
    length = kind = None
    for name, value in headers.raw:
        name = name.lower()
        if name == b"content-length":
            length = value if length is None else length + b", " + value
        elif name == b"content-type":
            kind = value if kind is None else kind + b", " + value
    return (
        None if length is None else length.decode("latin-1"),
        None if kind is None else kind.decode("latin-1"),
    )


def _without_our_note(error: BaseException) -> None:
    notes = getattr(error, "__notes__", None)
    if notes:
        notes[:] = [note for note in notes if not note.startswith(_NOTE_PREFIX)]


class RetryCall:
    """Retry bookkeeping for one logical request: attempts, history, deadline, budget."""

    __slots__ = (
        "_base_timeouts",
        "_hints",
        "_paid",
        "_published",
        "_state",
        "attempt",
        "env",
        "history",
        "policy",
        "progress_mark",
        "request",
        "resume_error",
        "resume_headers",
        "retry_was_wanted",
        "sent",
        "started",
        "stop_reason",
    )

    def __init__(
        self, env: Environment, policy: RetryPolicy, request: Any, *, started: float | None
    ) -> None:
        self.env = env
        self.policy = policy
        self.request = request  # the caller's request
        self.sent = request  # the request as sent for the current attempt
        self.started = started  # None unless the deadline or a foreign backoff needs it
        self.attempt = 1
        self.progress_mark = 0  # attempts up to here delivered body bytes (resume)
        self.history: list[RetryEvent[Any, Any]] = []
        self.stop_reason = ""
        self.retry_was_wanted = False  # a retry was due but refused (budget, deadline, ...)
        self.resume_headers: dict[str, str] | None = None  # set while resuming a body
        self.resume_error: BaseException | None = None  # the break being resumed
        self._hints: dict[str, str] = {}
        self._paid: float | None = None  # the budget cost of the retry in flight
        self._published: dict[str, Any] | None = None  # the extensions the caller holds
        self._state: Any = None  # tenacity.RetryCallState, built on the first backoff
        self._base_timeouts: dict[str, float | None] | None = None

    # -- deciding -----------------------------------------------------------

    def _verdict(self, response: Any, error: BaseException | None) -> bool | None:
        predicate = self.policy.should_retry
        if predicate is None:
            return None
        flavour = self.env.flavour
        if response is not None and not isinstance(response.stream, flavour.byte_stream):
            response.request = self.sent  # as the client will set it (a streamed body: unread)
        elif response is not None:
            # A body in memory (preloaded): show it read (`.content`, `.json()`) on a copy,
            # so the response itself stays unread for the caller (`iter_raw()` still works).
            response = flavour.response(
                response.status_code,
                headers=response.headers,
                stream=response.stream,
                extensions=response.extensions,
                request=self.sent,
            )
            response.read()
        verdict = predicate(response, error if isinstance(error, Exception) else None)
        if verdict is not None and not isinstance(verdict, bool):
            raise TypeError(f"should_retry must return True, False or None, got {verdict!r}")
        return verdict

    def _retryable(
        self, response: Any, error: BaseException | None, detail: str, consult: bool
    ) -> str | None:
        """Why this outcome deserves another attempt, or None (recording why not)."""
        policy, flavour, request = self.policy, self.env.flavour, self.sent
        verdict = self._verdict(response, error) if consult else None
        if error is not None:
            name = type(error).__name__ + detail
            kind = classify(error, flavour)
            if kind is Sent.CLIENT_SIDE:
                self.stop_reason = (
                    f"{name}: certificate verification failed"
                    if isinstance(error, flavour.never_sent)
                    else f"{name} is never retried"
                )
                return None
            if verdict is False:
                self.stop_reason = f"{name}, and should_retry said no"
                return None
            if kind is Sent.NEVER:
                return name
            vouched = verdict is True or kind is Sent.NOT_PROCESSED
            reason = f"{name} (not processed)" if kind is Sent.NOT_PROCESSED else name
        else:
            status = response.status_code
            if status < 400 and status not in policy.statuses and verdict is None:
                self.stop_reason = ""  # a success: nothing to look for, nothing to tell
                return None
            hints = self._hints = {}
            for name, value in response.headers.multi_items():
                if name in _HINTS:
                    # A field sent twice is one list (RFC 9110 5.3): `RateLimit` may be split.
                    hints[name] = f"{hints[name]}, {value}" if name in hints else value
            hint = hints.get("x-should-retry", "").strip().lower()
            if hint == "false":
                self.stop_reason = f"status {status} with x-should-retry: false"
                return None
            if verdict is False:
                self.stop_reason = f"status {status}, and should_retry said no"
                return None
            server_vouches = hint == "true"
            vouched = server_vouches or verdict is True
            if (
                status not in policy.statuses
                and not (server_vouches and status >= 400)
                and verdict is not True
            ):
                self.stop_reason = f"status {status} is not retried"
                return None
            reason = f"status {status}"
        if not (vouched or _is_idempotent(policy, request)):
            self.stop_reason = f"{reason} on {request.method}, which is not idempotent"
            return None
        if not isinstance(request.stream, flavour.byte_stream):
            self.stop_reason = f"{reason}, and the request body cannot be sent again"
            return None
        return reason

    def _backoff(self, error: BaseException | None, response: Any) -> float:
        state = self._state
        if state is None:
            started = self.started
            state = self._state = _new_state(self.env.clock() if started is None else started)
        state.attempt_number = self.attempt
        state.stage(response, error, self.env.clock())
        return float(self.policy.backoff(state))

    def _settle_budget(self, succeeded: bool) -> None:
        """Tell the budget how the retry it paid for ended (retries only, never first attempts)."""
        paid = self._paid
        if paid is not None and self.env.budget is not None:
            self._paid = None
            self.env.budget.record_retry_outcome(succeeded, paid)

    def _server_delay(self) -> float | None:
        """The wait the server asked for: Retry-After, else a rate limiter's reset hint."""
        hints, now = self._hints, self.env.wall_clock()
        asked = requested_delay(hints.get, now)
        return rate_limit_delay(hints.get, now) if asked is None else asked

    def decide(self, response: Any, error: BaseException | None, detail: str = "") -> Retry | None:
        """What to do after this attempt: `Retry(delay)`, or None to give up (see `finish`).

        `detail` says where a body broke (`" at byte 65536"`), for the reason.
        """
        policy = self.policy
        cap = _testing.current()[1]
        limit = policy.attempts if cap is None else min(policy.attempts, cap)
        attempts_left = self.attempt - self.progress_mark < limit
        reason = self._retryable(response, error, detail, consult=attempts_left)
        self._settle_budget(error is None and reason is None)
        if reason is None:
            return None
        if self.resume_error is not None:
            reason += ", resumed"
        if not attempts_left:
            self.stop_reason = f"{reason}; all {limit} attempts used"
            self.retry_was_wanted = True
            return None
        self.retry_was_wanted = True
        delay = self._wait(reason, response, error)
        if (
            delay is None
            or not self._fits_deadline(reason, delay, response)
            or not self._paid_for(reason, error)
        ):
            return None
        state = self._state
        state.idle_for += delay
        state.upcoming_sleep = delay
        event: RetryEvent[Any, Any] = RetryEvent(
            self.attempt, delay, reason, self.sent, response, error
        )
        self.history.append(event)
        self._publish()
        return Retry(delay, event, limit)

    def _wait(self, reason: str, response: Any, error: BaseException | None) -> float | None:
        """The backoff, floored by what the server asked for; None (and why) to give up."""
        policy = self.policy
        delay = self._backoff(error, response)
        if math.isnan(delay) or delay == math.inf:
            self.stop_reason = f"{reason}; the backoff returned {delay!r} s"
            return None
        delay = max(0.0, delay)
        if not isinstance(policy.backoff, _CappedExponential):
            delay = min(delay, policy.max_retry_after)  # the package's own are capped already
        if response is None or not policy.respect_retry_after:
            return delay
        asked = self._server_delay()
        if asked is None:
            return delay
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
        return combined

    def _room_for(self, seconds: float) -> bool:
        """Whether `seconds` more, then a minimal attempt, fit in what is left of the deadline."""
        deadline = self.policy.deadline
        if deadline is None or self.started is None:
            return True
        least = min(_MIN_ATTEMPT_SECONDS, _MIN_ATTEMPT_SHARE * deadline)
        return self.env.clock() - self.started + seconds + least < deadline

    def _fits_deadline(self, reason: str, delay: float, response: Any) -> bool:
        """Whether releasing `response`, waiting and a minimal attempt fit in what is left."""
        if self.policy.deadline is None:
            return True
        releasing = 0.0 if response is None else release_seconds(response, self.env.flavour)
        if self._room_for(releasing + delay):
            return True
        self.stop_reason = (
            f"{reason}; waiting {delay:.3f} s would leave too little of the "
            f"{self.policy.deadline:g} s deadline"
        )
        return False

    def still_fits(self, delay: float) -> bool:
        """Whether the wait still fits once the response is released and the hooks have run.

        Hooks are the caller's code and may take any time. If the wait no longer
        fits, the retry is called off (see `next_request`).
        """
        if self._room_for(delay):
            return True
        self.stop_reason = (
            f"the {self.policy.deadline:g} s deadline left too little for the {delay:.3f} s "
            f"wait after attempt {self.attempt}"
        )
        self._call_off()
        return False

    def _call_off(self) -> None:
        """A granted retry will not be sent: the budget gets back what it paid."""
        paid, budget = self._paid, self.env.budget
        if paid is not None and budget is not None:
            self._paid = None
            budget.refund(paid)

    def body_broke(self, error: BaseException, detail: str) -> None:
        """A response given up on broke while it was read: the break is the outcome.

        What made us give up (the server's `x-should-retry: false`, a wait beyond
        `max_retry_after`, the budget, the deadline, the attempts) still holds.
        """
        self.retry_was_wanted = True
        self.stop_reason = (
            f"{self.stop_reason}; then its body broke ({type(error).__name__}{detail})"
        )

    def _paid_for(self, reason: str, error: BaseException | None) -> bool:
        """Whether the budget grants the retry (a timeout costs more: it may still be served)."""
        budget, flavour = self.env.budget, self.env.flavour
        if budget is None:
            return True
        timed_out = isinstance(error, flavour.timeout) and not isinstance(error, flavour.never_sent)
        cost = budget.timeout_cost if timed_out else 1.0
        if not budget.try_acquire(cost):
            self.stop_reason = f"{reason}; the retry budget is spent"
            return False
        self._paid = cost
        return True

    def _publish(self) -> None:
        """Show the history on the response the caller already holds (a resuming body)."""
        if self._published is not None:
            self._published["retry_history"] = tuple(self.history)

    # -- preparing attempts -------------------------------------------------

    def first_request(self) -> Any:
        """The first attempt's request, when the policy needs to prepare it."""
        policy, request = self.policy, self.request
        if policy.idempotency_key and not _is_idempotent(policy, request):
            # Part of the logical request: set on the caller's request, so
            # every attempt and `response.request` carry the same key.
            import uuid  # rare: only for policies that add keys

            request.headers["Idempotency-Key"] = str(uuid.uuid4())
        self.sent = self._prepared(request, self.policy.deadline)
        return self.sent

    def next_request(self) -> Any | None:
        """The next attempt's request (call after sleeping); None once the deadline is spent."""
        deadline = self.policy.deadline
        left = None
        if deadline is not None and self.started is not None:
            left = deadline - (self.env.clock() - self.started)
            if left <= 0:
                self.stop_reason = (
                    f"the {deadline:g} s deadline passed before attempt {self.attempt + 1}"
                )
                self._call_off()
                return None
        self.attempt += 1
        self.sent = self._prepared(self.request, left)
        return self.sent

    def _prepared(self, request: Any, left: float | None) -> Any:
        policy = self.policy
        resume_headers = self.resume_headers
        if policy.attempt_header is None and left is None and resume_headers is None:
            return request
        headers = request.headers
        if policy.attempt_header is not None or resume_headers is not None:
            headers = headers.copy()
            if policy.attempt_header is not None:
                headers[policy.attempt_header] = str(self.attempt)
            if resume_headers is not None:
                headers.update(resume_headers)
        extensions = request.extensions
        if left is not None:
            left = max(_MIN_ATTEMPT_TIMEOUT, left)
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

    # -- reading bodies -----------------------------------------------------

    def retry_candidate(self, response: Any) -> bool:
        """A response the rules may retry: decided on before its body is read (none is needed)."""
        return self.policy.should_retry is None and response.status_code in self.policy.statuses

    def preload_length(self, response: Any) -> int | None:
        """The body to read inside the transport for this attempt's response, if any."""
        if self.resume_error is not None:
            return None  # a continuation is spliced as it streams
        return preload_length(self.policy, self.sent, response, self.env.flavour)

    def publish(self, response: Any) -> None:
        """The caller holds `response`, whose body may be resumed: the history grows there."""
        self._published = response.extensions

    def begin_resume(self, splice: Splice, error: BaseException, progressed: bool) -> str:
        """Enter resume mode after a break; the detail for the reason (where it broke)."""
        if progressed:
            self.progress_mark = self.attempt  # a try that brought bytes used no attempt
        self.resume_error = error
        self.resume_headers = splice.continuation_headers()
        return f" at byte {splice.position}"

    def cannot_resume(self, why: str) -> BaseException:
        """The break's own error, with the story, for a continuation we may not splice."""
        self.stop_reason = f"cannot resume: {why}"
        error = self.resume_error
        assert error is not None
        return self._told(error)

    # -- giving up or finishing ---------------------------------------------

    def _told(self, error: BaseException) -> BaseException:
        history = self.history
        if history or self.retry_was_wanted:
            steps = "".join(
                f"attempt {event.attempt}: {event.reason}, retried after {event.delay:.3f} s; "
                for event in history
            )
            _without_our_note(error)
            error.add_note(
                f"{_NOTE_PREFIX} after {self.attempt} attempt(s) ({steps}"
                f"attempt {self.attempt}: {self.stop_reason or type(error).__name__})"
            )
            self._log()
        self._publish()
        return error

    def _log(self) -> None:
        if self.stop_reason and logger.isEnabledFor(logging.INFO):
            logger.info(
                "Giving up on %s %s after %d attempt(s): %s",
                self.request.method,
                redacted_url(self.request.url),
                self.attempt,
                self.stop_reason,
            )

    def finish(self, response: _R | None, error: BaseException | None) -> _R:
        """Return the final response or raise the final error, telling what happened.

        While resuming, a final error raises the break itself (the caller was
        reading that body), and a final response goes back to the resuming
        stream, which checks that it continues the body.
        """
        if error is not None:
            raise self._told(self.resume_error or error)
        assert response is not None
        if self.resume_error is None:
            if self.history:
                extensions: Any = getattr(response, "extensions", None)
                if isinstance(extensions, dict):
                    extensions["retry_history"] = tuple(self.history)
            if self.retry_was_wanted:
                self._log()
        return response
