"""Retry path at the transport: 503, 503, 200 (or two refused connections, then 200).

Zero backoff everywhere, so that what is timed is the retry machinery and not a
sleep. The baseline A is three bare attempts per logical request; every
configuration is checked to make exactly three inner calls per logical request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import peers
from ..fixtures import FlakyTransport, RefusingTransport, SleepCounter, new_request, sender
from ..goals import Goal, added_us, counter
from ..harness import BenchmarkError, Built, Config, Group, control, sync_and_async
from ..loopback import LoopbackServer
from ..settings import Settings

SYNC, ASYNC = "a-retry-sync", "a-retry-async"
#: Peers' sync paths call `time.sleep(0)` (about 100 µs here): far fewer requests per block.
_SCALE = {False: {"B": 0.02, "C": 0.02, "D": 0.02}, True: {"B": 0.1, "C": 0.05, "D": 0.04}}
_PEER_LABEL = {
    "B": "RetryTransport, backoff_factor=0",
    "C": "wait_none (does not release retried responses)",
    "D": "retry_context, zero wait (does not release responses)",
}
Inner = FlakyTransport | RefusingTransport
Send = Callable[[Any], Any]


def three_calls(inner: Inner, key: str) -> Callable[[], dict[str, float]]:
    """After the rounds: every logical request made exactly three inner calls."""

    def check() -> dict[str, float]:
        if inner.calls % 3 or inner.step != 0:
            raise BenchmarkError(f"{key}: {inner.calls} inner calls, not 3 per request")
        return {"inner calls per request": 3}

    return check


def build(async_: bool, refused: bool) -> Callable[[], Built]:
    inner_class = RefusingTransport if refused else FlakyTransport
    three = peers.bare_three_for(async_, refused)

    def config(key: str, label: str, inner: Inner, call: Send, scale: float = 1.0) -> Config:
        return Config(key, label, call, new_request(), scale, check=three_calls(inner, key))

    def bare(key: str, label: str) -> Config:
        inner = inner_class()
        return config(key, label, inner, three(sender(inner, async_)))

    def peer(key: str) -> Config:
        inner = inner_class()
        if key == "B":
            call = sender(peers.httpx_retries_transport(inner), async_)
        else:
            call = peers.around(key, async_, sender(inner, async_))
        label = f"{peers.NAMES[key]} {_PEER_LABEL[key]}"
        return config(key, label, inner, call, _SCALE[async_][key])

    def build() -> Built:
        inner, sleeps = inner_class(), SleepCounter()
        transport = peers.ours(inner, retry_path=True, sleeps=sleeps)
        label = "httpx_retrying.RetryTransport, zero backoff, RetryBudget(ratio=2.0)"
        ours = config("R", label, inner, sender(transport, async_))
        calls = ours.check
        assert calls is not None
        ours.check = lambda: {**calls(), **peers.retry_counters(transport, sleeps)}
        more, skipped = peers.collect(peer)
        return Built([*control(bare, "3 bare attempts"), ours, *more], skipped)

    return build


def groups(settings: Settings, server: LoopbackServer) -> list[Group]:
    def builder(refused: bool) -> Callable[[bool], Callable[[], Built]]:
        return lambda async_: build(async_, refused)

    retry = "(a) retry path, {mode}: 503, 503, 200 per logical request, zero backoff"
    refused = "(a) connection errors retried, {mode}: ConnectError, ConnectError, 200"
    return [
        *sync_and_async("a-retry", retry, settings.retry, builder(False), retries=2),
        *sync_and_async("a-refused", refused, settings.retry, builder(True), retries=2),
    ]


SLEEPS = "sleep calls"
GOALS = (
    Goal("Retry path, sync: R's added cost per retry", 3.0, "µs", added_us(SYNC, per=2)),
    Goal("Retry path, async: R's added cost per retry", 3.0, "µs", added_us(ASYNC, per=2)),
    Goal("Retry path, sync: sleep calls for a zero delay", 0, "", counter(SYNC, "R", SLEEPS)),
    Goal("Retry path, async: sleep calls for a zero delay", 0, "", counter(ASYNC, "R", SLEEPS)),
)
