"""MockTransport helpers: scripted answers, recorded sleeps, a clock that moves only when slept.

MockTransport buffers bodies and has no pool: good for policy logic, blind to
connection handling, which the real-server tests cover.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tenacity

from httpx_retrying import RetryPolicy
from tests.conftest import FakeClock, Harness

FAST = RetryPolicy(backoff=tenacity.wait_fixed(0.25))


class Script:
    """A MockTransport handler answering from a list; records what it saw."""

    def __init__(self, lib: Any, *answers: Any) -> None:
        self.lib = lib
        self.answers = list(answers)
        self.seen: list[Any] = []

    def __call__(self, request: Any) -> Any:
        self.seen.append(request)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, int):
            return self.lib.Response(answer, content=b"body")
        return answer


def make(harness: Harness, handler: Callable[[Any], Any], **kwargs: Any) -> tuple[Any, list[float]]:
    """A RetryTransport over MockTransport whose sleeps are recorded, not slept."""
    sleeps: list[float] = []

    async def async_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    kwargs.setdefault("policy", FAST)
    transport = harness.RetryTransport(
        harness.lib.MockTransport(handler), sleep=sleeps.append, async_sleep=async_sleep, **kwargs
    )
    return transport, sleeps


def clocked(
    harness: Harness, script: Script, policy: RetryPolicy, clock: FakeClock, **kwargs: Any
) -> Any:
    """A RetryTransport whose monotonic time moves only by its own sleeps (and its hooks)."""
    return harness.RetryTransport(
        harness.lib.MockTransport(script),
        policy=policy,
        clock=clock,
        sleep=clock.sleep,
        async_sleep=clock.async_sleep,
        **kwargs,
    )
