"""Success path at the transport over `httpx.MockTransport`: a realistic in-memory inner call.

MockTransport builds a fresh response per call (about 10 µs), so the wrappers' added
cost is read against a cost of the order of a real transport's Python work.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import peers
from ..fixtures import new_request, ok_mock, sender
from ..goals import Goal
from ..harness import Built, Config, Group, control, sync_and_async
from ..loopback import LoopbackServer
from ..settings import Settings


def build(async_: bool) -> Callable[[], Built]:
    def bare(key: str, label: str) -> Config:
        return Config(key, label, sender(ok_mock(), async_), new_request())

    def peer(key: str) -> Config:
        transport = peers.httpx_retries_transport(ok_mock())
        label = "httpx-retries RetryTransport(MockTransport)"
        return Config(key, label, sender(transport, async_), new_request())

    def build() -> Built:
        ours = sender(peers.ours(ok_mock(), retry_path=False), async_)
        configs = [
            *control(bare, "MockTransport"),
            Config("R", "httpx_retrying.RetryTransport(MockTransport)", ours, new_request()),
        ]
        more, skipped = peers.collect(peer, "B")
        return Built(configs + more, skipped)

    return build


def groups(settings: Settings, server: LoopbackServer) -> list[Group]:
    title = "(a) success path, {mode}, over `httpx.MockTransport`"
    return sync_and_async("a-mock", title, settings.mock, build)


GOALS: tuple[Goal, ...] = ()
