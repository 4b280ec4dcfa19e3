"""A real server: `Client.get` to a keep-alive HTTP/1.1 server on 127.0.0.1 in another process.

The server (`loopback_server.py`) counts requests and connections: each block must
make exactly N x (1 or 3) requests, and the report gives the new TCP connections
per logical request (a retry that closes instead of draining opens a new one).
Retry path: each logical request goes to a fresh `/flaky/<id>`, which answers 503
twice, then 200; the baseline A is three bare `client.get` of that URL.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import httpx

from .. import peers
from ..fixtures import Clients, SleepCounter
from ..goals import Goal, max_new_connections, ratio_to_bare
from ..harness import Built, Config, Group, control, sync_and_async
from ..loopback import LoopbackServer
from ..settings import Settings


def build(async_: bool, retry_path: bool, server: LoopbackServer) -> Callable[[], Built]:
    transport_class: Any = httpx.AsyncHTTPTransport if async_ else httpx.HTTPTransport
    ids = itertools.count()
    base = server.base

    def config(key: str, label: str, get: Callable[[Any], Any], **more: Any) -> Config:
        if not retry_path:
            return Config(key, label, get, f"{base}/ok", **more)
        fresh = lambda _: get(f"{base}/flaky/{next(ids)}")  # noqa: E731 (a coroutine in async mode)
        return Config(key, label, fresh, requests=3, **more)

    def build() -> Built:
        clients = Clients(async_)

        def bare(key: str, label: str) -> Config:
            get = clients.get(transport_class())
            if retry_path:
                return config(key, f"3 {label}", peers.bare_three_for(async_, refused=False)(get))
            return config(key, label, get)

        def peer(key: str) -> Config:
            if key == "B":
                get = clients.get(peers.httpx_retries_transport(transport_class()))
                return config(key, "httpx-retries RetryTransport", get)
            call = peers.around(key, async_, clients.get(transport_class()))
            return config(key, f"{peers.NAMES[key]} around client.get", call)

        sleeps = SleepCounter()
        transport = peers.ours(transport_class(), retry_path=retry_path, sleeps=sleeps)
        ours = clients.get(transport)
        if retry_path:
            label = "httpx_retrying.RetryTransport, zero backoff, RetryBudget(ratio=2.0)"
            check = lambda: peers.retry_counters(transport, sleeps)  # noqa: E731
            ours_config = config("R", label, ours, check=check)
        else:
            ours_config = config("R", "httpx_retrying.RetryTransport (default policy)", ours)
        more, skipped = peers.collect(peer)
        configs = [*control(bare, "bare client.get"), ours_config, *more]
        return Built(configs, skipped, clients.close)

    return build


def groups(settings: Settings, server: LoopbackServer) -> list[Group]:
    def builder(retry_path: bool) -> Callable[[bool], Callable[[], Built]]:
        return lambda async_: build(async_, retry_path, server)

    success = "(c) success path, {mode}: `Client.get` to the loopback server"
    retry = "(c) retry path, {mode}: `/flaky/<id>` (503, 503, 200), baseline 3 bare `client.get`"
    return [
        *sync_and_async("c-success", success, settings.loopback, builder(False), server=server),
        *sync_and_async(
            "c-retry", retry, settings.loopback_retry, builder(True), server=server, retries=2
        ),
    ]


SYNC, ASYNC = "c-retry-sync", "c-retry-async"
GOALS = (
    Goal("Loopback retry path, sync: ratio to 3 bare requests", 1.1, "", ratio_to_bare(SYNC)),
    Goal("Loopback retry path, async: ratio to 3 bare requests", 1.1, "", ratio_to_bare(ASYNC)),
    Goal(
        "Loopback retry path, sync: new connections per request", 0, "", max_new_connections(SYNC)
    ),
    Goal(
        "Loopback retry path, async: new connections per request", 0, "", max_new_connections(ASYNC)
    ),
)
