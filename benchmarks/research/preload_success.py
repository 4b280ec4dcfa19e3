"""Research, not run in CI: what a preloaded success costs through `Client.get`.

Question: how much longer does `httpx.Client.get` of a 10 KiB body take through
`RetryTransport` (default policy: the body is preloaded inside the transport) than
through the bare inner transport, when the inner transport streams the body as
the network does (a stream that is not in memory already)? No sockets, so the
difference is the package's own work (the loopback figure is group (d) of
`python -m benchmarks.overhead`).

    python -m benchmarks.research.preload_success [--rounds 40] [--per-block 500]

Each round times a block of the bare client, one of the retrying client, and one
of the bare client again, and compares the retrying block with the mean of the
two bare ones; the figures are medians over rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator

import httpx

from httpx_retrying import RetryTransport

BODY = b"x" * 10 * 1024
HEADERS = [
    (b"Content-Type", b"application/octet-stream"),
    (b"Content-Length", str(len(BODY)).encode()),
    (b"Date", b"Thu, 26 Nov 2026 19:00:00 GMT"),
]
URL = "http://127.0.0.1:1/bytes/10240"  # never connected to


class _NetworkLikeStream(httpx.SyncByteStream):
    """The body in one chunk, from a stream class that is not `httpx.ByteStream`."""

    def __iter__(self) -> Iterator[bytes]:
        yield BODY


class StreamingTransport(httpx.BaseTransport):
    """Answers every request with a 200 whose 10 KiB body streams as from the network."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers=HEADERS,
            stream=_NetworkLikeStream(),
            extensions={"http_version": b"HTTP/1.1"},
        )


def _block(client: httpx.Client, requests: int) -> float:
    """µs per `client.get`, over one tight loop of `requests` calls."""
    started = time.perf_counter()
    for _ in range(requests):
        response = client.get(URL)
    elapsed = time.perf_counter() - started
    if response.content != BODY:
        raise RuntimeError("the body did not arrive whole")
    return elapsed / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--per-block", type=int, default=500)
    args = parser.parse_args()
    bare = httpx.Client(transport=StreamingTransport())
    ours = httpx.Client(transport=RetryTransport(StreamingTransport()))
    for client in (bare, ours):  # warm-up, untimed
        _block(client, args.per_block)
    extra, ratio, baseline = [], [], []
    for _ in range(args.rounds):
        before, retrying, after = (
            _block(bare, args.per_block),
            _block(ours, args.per_block),
            _block(bare, args.per_block),
        )
        plain = (before + after) / 2
        baseline.append(plain)
        extra.append(retrying - plain)
        ratio.append(retrying / plain)
    print(
        f"bare Client.get: {statistics.median(baseline):.1f} µs; RetryTransport adds "
        f"{statistics.median(extra):+.2f} µs (ratio {statistics.median(ratio):.4f}), "
        f"medians of {args.rounds} rounds of {args.per_block} requests"
    )
    bare.close()
    ours.close()


if __name__ == "__main__":
    main()
