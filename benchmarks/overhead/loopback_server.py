"""A minimal keep-alive HTTP/1.1 server on 127.0.0.1 for the loopback groups.

Started by `loopback.LoopbackServer` as a separate process, by path (it imports
nothing from the benchmark): `python loopback_server.py [--cpu N] [--max-seconds S]`.
It binds port 0, prints `PORT <n>` on stdout, and serves until its stdin is closed
(the parent exits or closes the pipe) or `--max-seconds` pass, so it never outlives
the benchmark. Routes (every response has a Content-Length, nothing is chunked):

* `GET /ok`: 200 with the 2-byte body `ok`.
* `GET /flaky/<id>`: 503 with the 11-byte body `unavailable` the first two times an
  id is seen, then 200 `ok` (and the id is forgotten).
* `GET /bytes/<n>`: 200 with an n-byte body (no validator: nothing to resume).
* `GET /blob/<n>`: 200 with an n-byte body and a strong `ETag` (a resumable download).
* `GET /_stats`: `<connections> <requests>` and the connection is closed. Only
  connections that carried at least one other request are counted, and `/_stats`
  requests are not, so the caller can read exact deltas around a timed block.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
_UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 11\r\n\r\nunavailable"
)
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
_FAILURES_PER_ID = 2
_bodies: dict[int, bytes] = {}  # n -> n bytes, built once


def _sized(target: bytes, prefix: bytes, etag: bool) -> bytes | None:
    """The response for `/bytes/<n>` or `/blob/<n>`, or None if `target` is neither."""
    if not target.startswith(prefix) or not target[len(prefix) :].isdigit():
        return None
    n = int(target[len(prefix) :])
    body = _bodies.get(n)
    if body is None:
        body = _bodies[n] = b"x" * n
    validator = b'ETag: "blob-%d"\r\n' % n if etag else b""
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n%sContent-Length: %d\r\n\r\n"
    )
    return head % (validator, n) + body


class _Stats:
    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0
        self.flaky: dict[bytes, int] = {}


class _Connection(asyncio.Protocol):
    def __init__(self, stats: _Stats) -> None:
        self._stats = stats
        self._buffer = b""
        self._counted = False
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self._buffer[:end]
            body_length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    body_length = int(value.strip())
            if len(self._buffer) < end + 4 + body_length:
                return  # wait for the request body
            self._buffer = self._buffer[end + 4 + body_length :]
            target = head.split(b" ", 2)[1]
            self._respond(target)

    def _respond(self, target: bytes) -> None:
        transport, stats = self._transport, self._stats
        assert transport is not None
        if target == b"/_stats":
            body = f"{stats.connections} {stats.requests}".encode()
            transport.write(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            transport.close()
            return
        if not self._counted:
            self._counted = True
            stats.connections += 1
        stats.requests += 1
        if target == b"/ok":
            transport.write(_OK)
        elif target.startswith(b"/flaky/"):
            seen = stats.flaky.get(target, 0)
            if seen < _FAILURES_PER_ID:
                stats.flaky[target] = seen + 1
                transport.write(_UNAVAILABLE)
            else:
                stats.flaky.pop(target, None)
                transport.write(_OK)
        else:
            sized = _sized(target, b"/bytes/", etag=False) or _sized(target, b"/blob/", etag=True)
            transport.write(_NOT_FOUND if sized is None else sized)


async def _serve(max_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    stats = _Stats()
    stop = asyncio.Event()

    def wait_for_stdin_eof() -> None:
        try:
            sys.stdin.buffer.read()  # returns when the parent closes the pipe or exits
        finally:
            loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait_for_stdin_eof, daemon=True).start()
    loop.call_later(max_seconds, stop.set)
    server = await loop.create_server(
        lambda: _Connection(stats), "127.0.0.1", 0, reuse_address=True, backlog=1024
    )
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    args = parser.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    asyncio.run(_serve(args.max_seconds))


if __name__ == "__main__":
    main()
