"""Success path at the transport: `transport.handle_request(request)`, first try, in memory.

The inner transport returns a prebuilt 200, so each configuration's added cost over
the bare inner call (A) is its own work. F, a do-nothing forwarding wrapper, is the
yardstick: about the least a transport layer written in Python costs. The added
cost R is judged against it, side by side with the peers in one interleaved run.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import peers
from ..fixtures import ForwardingTransport, NullTransport, new_request, sender
from ..goals import Goal, added_us, cost_ratio
from ..harness import HAS_TRIO, Built, Config, Group, control, sync_and_async
from ..loopback import LoopbackServer
from ..settings import Settings, Size

SYNC, ASYNC = "a-success-sync", "a-success-async"
#: Peers are slower: fewer logical requests per block keep the blocks comparable in time.
_SCALE = {"B": 0.25, "C": 0.025, "D": 0.02}


def build(async_: bool, peer_keys: str = "BCD") -> Callable[[], Built]:
    def bare(key: str, label: str) -> Config:
        return Config(key, label, sender(NullTransport(), async_), new_request())

    def peer(key: str) -> Config:
        if key == "B":
            call = sender(peers.httpx_retries_transport(NullTransport()), async_)
            label = "RetryTransport"
        else:
            call = peers.around(key, async_, sender(NullTransport(), async_))
            label = "around the call"
        label = f"{peers.NAMES[key]} {label}"
        return Config(key, label, call, new_request(), scale=_SCALE[key])

    def build() -> Built:
        forwarding = sender(ForwardingTransport(NullTransport()), async_)
        ours = sender(peers.ours(NullTransport(), retry_path=False), async_)
        configs = [
            *control(bare, "bare inner transport"),
            Config("F", "do-nothing forwarding wrapper", forwarding, new_request()),
            Config("R", "httpx_retrying.RetryTransport (default policy)", ours, new_request()),
        ]
        more, skipped = peers.collect(peer, peer_keys)
        return Built(configs + more, skipped)

    return build


def groups(settings: Settings, server: LoopbackServer) -> list[Group]:
    title = "(a) success path, {mode}: a direct transport call on an in-memory inner transport"
    found = sync_and_async("a-success", title, settings.success, build)
    if HAS_TRIO:
        size = Size(settings.success.n, max(1, settings.success.rounds // 2))
        title = "(a) success path, async under trio (no tenacity or stamina)"
        found.append(Group("a-success-trio", title, "trio", size, build(True, "B")))
    return found


GOALS = (
    Goal("Success path, sync: R's added cost per request", 0.15, "µs", added_us(SYNC)),
    Goal("Success path, async: R's added cost per request", 0.25, "µs", added_us(ASYNC)),
    Goal("Success path, sync: R's added cost / F's (forwarding)", 2.0, "", cost_ratio(SYNC, "F")),
    Goal("Success path, async: R's added cost / F's (forwarding)", 2.0, "", cost_ratio(ASYNC, "F")),
    Goal("Success path, sync: R's added cost / httpx-retries'", 0.25, "", cost_ratio(SYNC, "B")),
    Goal("Success path, async: R's added cost / httpx-retries'", 0.25, "", cost_ratio(ASYNC, "B")),
)
