"""A TCP proxy on 127.0.0.1 that cuts connections on purpose, in front of servers we did not write.

    with CuttingProxy(upstream_url) as proxy:
        proxy.cut_next(after_body_bytes=65536)  # the next connection dies mid-body
        httpx.get(proxy.url + "/file")          # RemoteProtocolError at byte 65536

Bytes are forwarded unchanged both ways. Each `cut_next(...)` applies to one
connection accepted later, in order; connections without one are never cut.
A cut forwards exactly the allowed bytes of the response direction (server to
client), lets them arrive, then closes the client side (a FIN, or an RST with
`reset=True`) and the upstream side. `after_body_bytes` counts from the end of
the first response head (`\\r\\n\\r\\n`), so it means "body bytes" for an HTTP/1.1
response; `after_bytes` counts every byte (any protocol, HTTP/2 included).
"""

from __future__ import annotations

import dataclasses
import select
import socket
from collections import deque
from urllib.parse import urlsplit

from tests.listener import ThreadedServer
from tests.servers import reset_connection, wait_until_delivered

__all__ = ["Cut", "CuttingProxy"]

_HEAD_END = b"\r\n\r\n"


@dataclasses.dataclass(frozen=True)
class Cut:
    after: int
    from_body: bool = False
    reset: bool = False


class _ResponseLimit:
    """How many more response bytes may pass, finding the head's end when counting body bytes."""

    def __init__(self, cut: Cut | None) -> None:
        self.cut = cut
        self.passed = 0
        self.limit: int | None = None if cut is None or cut.from_body else cut.after
        self.tail = b""  # the last bytes seen, for a head end split across reads

    def allowed(self, data: bytes) -> int:
        """How many bytes of `data` may pass (all of it unless a cut is due)."""
        if self.cut is not None and self.limit is None:
            window = self.tail + data
            end = window.find(_HEAD_END)
            if end >= 0:
                self.limit = self.passed - len(self.tail) + end + len(_HEAD_END) + self.cut.after
            self.tail = window[-(len(_HEAD_END) - 1) :]
        if self.limit is None:
            return len(data)
        return max(0, min(len(data), self.limit - self.passed))

    @property
    def reached(self) -> bool:
        return self.limit is not None and self.passed >= self.limit


class CuttingProxy(ThreadedServer):
    """See the module docstring. `delivered` lists the response bytes each connection passed."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream needs a host and a port: {upstream!r}")
        super().__init__()
        self.upstream = (parts.hostname, parts.port)
        self._cuts: deque[Cut] = deque()
        self._plans: dict[int, Cut | None] = {}  # connection number -> its cut
        self.delivered: list[int] = []

    def cut_next(
        self,
        after_bytes: int | None = None,
        *,
        after_body_bytes: int | None = None,
        reset: bool = False,
    ) -> None:
        """Cut the next connection not yet scheduled: give exactly one of the two counts."""
        after = after_bytes if after_bytes is not None else after_body_bytes
        if (after_bytes is None) == (after_body_bytes is None) or after is None or after < 0:
            raise ValueError("give exactly one count, >= 0: after_bytes or after_body_bytes")
        with self._lock:
            self._cuts.append(Cut(after, from_body=after_body_bytes is not None, reset=reset))

    def _accepted(self, sock: socket.socket, number: int) -> bool:
        with self._lock:
            self._plans[number] = self._cuts.popleft() if self._cuts else None
            self.delivered.append(0)
        return True

    def _serve(self, sock: socket.socket, number: int) -> None:
        with self._lock:
            cut = self._plans.pop(number)
        with socket.create_connection(self.upstream, timeout=5) as upstream:
            self.track(upstream)
            try:
                self._pump(sock, upstream, number - 1, _ResponseLimit(cut))
            finally:
                self.untrack(upstream)

    def _pump(
        self, client: socket.socket, upstream: socket.socket, index: int, limit: _ResponseLimit
    ) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([client, upstream], [], [], 0.05)
            if client in readable:
                data = client.recv(65536)
                if not data:
                    return
                upstream.sendall(data)
            if upstream in readable:
                data = upstream.recv(65536)
                if not data:
                    return
                allowed = limit.allowed(data)
                client.sendall(data[:allowed])
                limit.passed += allowed
                with self._lock:
                    self.delivered[index] += allowed
                if limit.reached:
                    assert limit.cut is not None
                    wait_until_delivered(client, self._stop)
                    if limit.cut.reset:
                        reset_connection(client)
                    return
