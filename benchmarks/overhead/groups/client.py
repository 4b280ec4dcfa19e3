"""Success path through a Client: `Client.get` / `AsyncClient.get` over MockTransport.

What a user sees: the Client's own pipeline (about 70 µs here) with the transports
underneath. F, a do-nothing forwarding wrapper, is what any extra transport layer
costs under a Client in this harness; R's own logic is what R adds beyond F.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import peers
from ..fixtures import URL, Clients, ForwardingTransport, ok_mock
from ..goals import Goal, ratio_to_bare
from ..harness import Built, Config, Group, control, sync_and_async
from ..loopback import LoopbackServer
from ..settings import Settings

_SCALE = {"B": 1.0, "C": 0.25, "D": 0.2}


def build(async_: bool) -> Callable[[], Built]:
    def build() -> Built:
        clients = Clients(async_)

        def bare(key: str, label: str) -> Config:
            return Config(key, label, clients.get(ok_mock()), URL)

        def peer(key: str) -> Config:
            if key == "B":
                get = clients.get(peers.httpx_retries_transport(ok_mock()))
                return Config(key, "httpx-retries RetryTransport", get, URL)
            call = peers.around(key, async_, clients.get(ok_mock()))
            label = f"{peers.NAMES[key]} around client.get"
            return Config(key, label, call, URL, scale=_SCALE[key])

        ours = clients.get(peers.ours(ok_mock(), retry_path=False))
        forwarding = clients.get(ForwardingTransport(ok_mock()))
        configs = [
            *control(bare, "bare client"),
            Config("R", "httpx_retrying.RetryTransport (default policy)", ours, URL),
            Config("F", "do-nothing forwarding wrapper", forwarding, URL),
        ]
        more, skipped = peers.collect(peer)
        return Built(configs + more, skipped, clients.close)

    return build


def groups(settings: Settings, server: LoopbackServer) -> list[Group]:
    title = "(b) success path, {mode}: `Client.get` over MockTransport"
    return sync_and_async("b-success", title, settings.client, build)


GOALS = (
    Goal("Client.get, sync: ratio to a bare client", 1.005, "", ratio_to_bare("b-success-sync")),
    Goal("Client.get, async: ratio to a bare client", 1.005, "", ratio_to_bare("b-success-async")),
)
