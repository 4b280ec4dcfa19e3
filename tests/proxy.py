"""A TCP proxy on 127.0.0.1 that cuts connections on purpose, for servers this project did not write.

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

import contextlib
import dataclasses
import select
import socket
import threading
from collections import deque
from urllib.parse import urlsplit

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


class CuttingProxy:
    """See the module docstring. `delivered` lists the response bytes each connection passed."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname is not None and parts.port is not None, upstream
        self.upstream = (parts.hostname, parts.port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._cuts: deque[Cut] = deque()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        self.connections = 0
        self.delivered: list[int] = []

    def cut_next(
        self,
        after_bytes: int | None = None,
        *,
        after_body_bytes: int | None = None,
        reset: bool = False,
    ) -> None:
        """Cut the next connection not yet scheduled: give exactly one of the two counts."""
        assert (after_bytes is None) != (after_body_bytes is None), "give one count"
        after = after_bytes if after_bytes is not None else after_body_bytes
        assert after is not None and after >= 0, after
        with self._lock:
            self._cuts.append(Cut(after, from_body=after_body_bytes is not None, reset=reset))

    def __enter__(self) -> CuttingProxy:
        thread = threading.Thread(target=self._accept_loop, name="cutting-proxy", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            for sock in list(self._sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # pragma: no cover - listener closed
                return
            with self._lock:
                self.connections += 1
                index = len(self.delivered)
                self.delivered.append(0)
                cut = self._cuts.popleft() if self._cuts else None
                self._sockets.add(client)
                self._threads = [thread for thread in self._threads if thread.is_alive()]
                thread = threading.Thread(
                    target=self._forward, args=(client, index, cut), daemon=True
                )
                self._threads.append(thread)
            thread.start()

    def _forward(self, client: socket.socket, index: int, cut: Cut | None) -> None:
        upstream: socket.socket | None = None
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
            with self._lock:
                self._sockets.add(upstream)
            self._pump(client, upstream, index, _ResponseLimit(cut))
        except OSError:
            return
        finally:
            with self._lock:
                self._sockets.discard(client)
                if upstream is not None:
                    self._sockets.discard(upstream)
            if upstream is not None:
                upstream.close()
            client.close()

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
