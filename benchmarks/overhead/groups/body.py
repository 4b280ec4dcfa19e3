"""Body-phase retries on the success path: what preloading and resumable streams cost.

`Client.get` of a 10 KiB body from the loopback server: RetryTransport reads it
inside the transport (preloading, on by default for GET), the bare client reads it
in `Client.send`. And a 100 MB download streamed with `iter_raw()`: RetryTransport
hands back a resumable stream (the body carries a strong ETag), which counts and
passes every chunk through. Both are compared with the same bare httpx client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from .. import peers
from ..fixtures import Clients
from ..goals import Goal, ratio_to_bare
from ..harness import Built, Config, Group, control, sync_and_async
from ..loopback import LoopbackServer
from ..settings import Settings

BODY_BYTES = 10 * 1024
DOWNLOAD_BYTES = 100_000_000


def _streamer(client: Any, async_: bool) -> Callable[[str], Any]:
    """One logical request: stream the whole body raw, checking its length."""
    if async_:

        async def astream(url: str) -> Any:
            async with client.stream("GET", url) as response:
                size = 0
                async for chunk in response.aiter_raw():
                    size += len(chunk)
            _check(response, size)
            return response

        return astream

    def stream(url: str) -> Any:
        with client.stream("GET", url) as response:
            size = sum(len(chunk) for chunk in response.iter_raw())
        _check(response, size)
        return response

    return stream


def _check(response: Any, size: int) -> None:
    if response.status_code != 200 or size != DOWNLOAD_BYTES:
        raise RuntimeError(f"download: {response.status_code}, {size} bytes")


def build(async_: bool, download: bool, server: LoopbackServer) -> Callable[[], Built]:
    transport_class: Any = httpx.AsyncHTTPTransport if async_ else httpx.HTTPTransport
    path = f"/blob/{DOWNLOAD_BYTES}" if download else f"/bytes/{BODY_BYTES}"
    url = f"{server.base}{path}"

    def build() -> Built:
        clients = Clients(async_)

        def call(transport: Any) -> Callable[[Any], Any]:
            if download:
                return _streamer(clients.client(transport), async_)
            return clients.get(transport)

        def bare(key: str, label: str) -> Config:
            return Config(key, label, call(transport_class()), url)

        what = "resumable stream" if download else "preloading on"
        ours = call(peers.ours(transport_class(), retry_path=False))
        label = f"httpx_retrying.RetryTransport (default policy: {what})"
        configs = [*control(bare, "bare client"), Config("R", label, ours, url)]
        return Built(configs, cleanup=clients.close)

    return build


def groups(settings: Settings, server: LoopbackServer) -> list[Group]:
    def builder(download: bool) -> Callable[[bool], Callable[[], Built]]:
        return lambda async_: build(async_, download, server)

    body = "(d) body phase, {mode}: `Client.get` of a 10 KiB body (preloaded by R)"
    download = "(d) body phase, {mode}: a 100 MB download streamed with iter_raw (resumable for R)"
    return [
        *sync_and_async("d-body", body, settings.body, builder(False), server=server),
        *sync_and_async(
            "d-download",
            download,
            settings.download,
            builder(True),
            server=server,
            unit="100 MB download",
        ),
    ]


GOALS = (
    Goal(
        "Body phase, sync: 10 KiB Client.get, ratio to bare", 1.05, "", ratio_to_bare("d-body-sync")
    ),
    Goal(
        "Body phase, async: 10 KiB Client.get, ratio to bare",
        1.05,
        "",
        ratio_to_bare("d-body-async"),
    ),
    Goal(
        "Body phase, sync: 100 MB download, ratio to bare",
        1.02,
        "",
        ratio_to_bare("d-download-sync"),
    ),
    Goal(
        "Body phase, async: 100 MB download, ratio to bare",
        1.02,
        "",
        ratio_to_bare("d-download-async"),
    ),
)
