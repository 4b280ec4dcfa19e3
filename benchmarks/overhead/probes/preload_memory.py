"""Memory: what preloading holds per response, against the loopback server.

A response to a GET is read inside the transport when its Content-Length is at
most `preload_limit`: the body is then held in memory until the caller reads
it, and never more than that. Measured with tracemalloc while the response is
open and unread (`client.stream()` returned, the body not yet consumed): the
traced bytes above the state before the request. What preloading holds for a
body at the limit is the difference with a preloaded 10-byte body (the same
objects, no body to speak of): the body, in the chunks it arrived in, with their
object headers. A body one byte over the limit is streamed: only what the
connection has buffered is held.
"""

from __future__ import annotations

import gc
import tracemalloc

import httpx

from httpx_retrying import RetryPolicy, RetryTransport

from .. import loopback
from ..goals import Goal, Measured
from ..settings import Settings
from ..stats import Results
from . import Probe

LIMIT = RetryPolicy().preload_limit


def _held(client: httpx.Client, url: str) -> tuple[int, int]:
    """(traced bytes held while the response is open and unread, the peak during the call)."""
    gc.collect()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    with client.stream("GET", url) as response:
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
        peak = tracemalloc.get_traced_memory()[1] - base
        if response.status_code != 200:
            raise RuntimeError(f"preload memory: {response.status_code}")
    return held, peak


def measure(settings: Settings) -> dict[str, tuple[int, int]]:
    rows: dict[str, tuple[int, int]] = {}
    with (
        loopback.running(None) as server,
        httpx.Client(transport=RetryTransport(httpx.HTTPTransport()), trust_env=False) as client,
    ):
        sizes = {"10 bytes": 10, "at the limit": LIMIT, "one byte over": LIMIT + 1}
        for size in sizes.values():  # warm-up: the server builds its bodies, lazy imports
            client.get(f"{server.base}/bytes/{size}")
        tracemalloc.start()
        try:
            for name, size in sizes.items():
                rows[name] = _held(client, f"{server.base}/bytes/{size}")
        finally:
            tracemalloc.stop()
    return rows


def section(settings: Settings, rows: dict[str, tuple[int, int]]) -> list[str]:
    lines = [
        f"### Preloading memory (`preload_limit` = {LIMIT:,} B)",
        "",
        "A GET through `RetryTransport` (default policy) over `Client.stream()`, measured with "
        "tracemalloc while the response is open and unread, against the state before the call:",
        "",
        "| body | held while unread | peak during the call |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {held:,} B | {peak:,} B |" for name, (held, peak) in rows.items()]
    return [*lines, ""]


def _preload_measure(results: Results) -> Measured | None:
    rows = results.probes.get("preload-memory")
    if rows is None:
        return None
    held = rows["at the limit"][0] - rows["10 bytes"][0]
    share = held / LIMIT
    return Measured(share, f"{share:.4f} ({held:,} B for a {LIMIT:,} B body)")


PROBES = (Probe("preload-memory", measure, section),)
#: The body itself, plus the headers of the chunk objects it is kept in (~33 B per 64 KiB).
GOALS = (
    Goal(
        "Preloading: bytes held for a body at the limit, share of preload_limit",
        1.01,
        "",
        _preload_measure,
    ),
)
