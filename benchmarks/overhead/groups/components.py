"""Single operations a retry can involve, each timed alone, outside the package.

Read with the cProfile of the retry path (`probes/profile.py`): the profile says which
of these the package calls and how often per logical request; this group says what
each one costs on its own. Δ vs A is the cost of one operation.
"""

from __future__ import annotations

from typing import Any, cast

import httpx
import tenacity

from httpx_retrying import RetryBudget, RetryEvent

from ..fixtures import UNAVAILABLE_BODY, new_request
from ..goals import Goal
from ..harness import Built, Config, Group
from ..loopback import LoopbackServer
from ..settings import Settings


def build() -> Built:
    ok = httpx.Response(200, content=b"ok")
    unavailable = httpx.Response(503, content=UNAVAILABLE_BODY)
    stream = cast(httpx.SyncByteStream, unavailable.stream)
    request = new_request()
    state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
    budget = RetryBudget(ratio=2.0)
    record = budget.record_request

    def noop(_: Any) -> httpx.Response:
        return ok

    def header_lookups(_: Any) -> httpx.Response:
        get = unavailable.headers.get
        get("x-should-retry")
        get("content-length")
        get("retry-after-ms")
        get("retry-after")
        return ok

    def header_pass(_: Any) -> httpx.Response:
        dict(unavailable.headers.multi_items())
        return ok

    def outcome(_: Any) -> httpx.Response:
        state.set_result(unavailable)
        return ok

    def budget_ops(_: Any) -> httpx.Response:
        record()
        budget.try_acquire()
        return ok

    def event(_: Any) -> httpx.Response:
        RetryEvent(1, 0.0, "status 503", request, unavailable, None)
        return ok

    def drain_and_close(_: Any) -> httpx.Response:
        for _chunk in stream:
            pass
        unavailable.is_closed = False
        unavailable.close()
        return ok

    def close_stream_only(_: Any) -> httpx.Response:
        unavailable.is_closed = True
        stream.close()
        return ok

    configs = [
        Config("A", "a call that does nothing", noop),
        Config("A0", "a call that does nothing, again (A/A)", noop),
        Config(
            "H4",
            "4 `response.headers.get(...)` lookups (x-should-retry, content-length, "
            "retry-after-ms, retry-after)",
            header_lookups,
        ),
        Config("H1", "one pass over the headers: `dict(headers.multi_items())`", header_pass),
        Config(
            "T",
            "`tenacity.RetryCallState.set_result(response)` (a concurrent.futures Future; "
            "avoided when the outcome is built lazily)",
            outcome,
        ),
        Config("B", "`RetryBudget`: `record_request()` + `try_acquire()`", budget_ops),
        Config("E", "`RetryEvent(...)` construction", event),
        Config(
            "C",
            "drain the 11-byte body + `response.close()` (with httpx's `request_context`)",
            drain_and_close,
        ),
        Config(
            "Cs", "`response.stream.close()` without httpx's `request_context`", close_stream_only
        ),
    ]
    skipped = []
    try:
        from opentelemetry import trace
    except ImportError:
        skipped.append("O `opentelemetry.trace.get_current_span()`: opentelemetry not installed")
    else:

        def span(_: Any) -> httpx.Response:
            trace.get_current_span()
            return ok

        configs.append(Config("O", "`opentelemetry.trace.get_current_span()`", span))
    return Built(configs, skipped)


def groups(settings: Settings, server: LoopbackServer) -> list[Group]:
    title = "Retry path components: single operations a retry can involve, each timed alone"
    size = settings.components
    return [Group("retry-components", title, "sync", size, build, analysis=True, unit="operation")]


GOALS: tuple[Goal, ...] = ()
