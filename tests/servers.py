"""A real HTTP/1.1 server on 127.0.0.1, from raw sockets, whose every failure is on purpose.

Each request's fate is scripted per path (`server.script("/a", "reset_after_read", ok())`);
a path with no script left answers 200. Connection-level faults, which strike
before a request can be read, are queued with `server.next_connections(...)`.
The server counts what it accepted and what it fully read, and stops by itself
(`with FaultServer() as server:`), closing every connection it holds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import struct
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from typing import Any

__all__ = ["FaultServer", "Received", "drip", "ok", "refused_url", "slow", "status"]


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b"ok"
    delay: float = 0.0  # seconds before answering
    drip: float = 0.0  # seconds between body bytes


def ok(body: bytes = b"ok") -> Reply:
    return Reply(200, (), body)


def status(code: int, body: bytes = b"", **headers: str) -> Reply:
    """A response with `code`; keyword headers use `_` for `-` (`retry_after="1"`)."""
    return Reply(
        code, tuple((name.replace("_", "-"), value) for name, value in headers.items()), body
    )


def slow(seconds: float, body: bytes = b"ok") -> Reply:
    return Reply(200, (), body, delay=seconds)


def drip(interval: float, body: bytes = b"0123456789") -> Reply:
    return Reply(200, (), body, drip=interval)


@dataclasses.dataclass(frozen=True)
class Received:
    """A request the server read completely (it may or may not have answered)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int


#: Faults acted on after the request was fully read.
REQUEST_FAULTS = (
    "close_after_read",  # read it, close without a word
    "reset_after_read",  # read it, then RST
    "silent",  # read it, never answer (the client times out)
    "partial_headers",  # half a status line and headers, then close
    "garbage",  # not HTTP at all
    "truncated_body",  # Content-Length 100, 10 bytes, close
    "close_idle_after",  # answer 200, then close the idle connection 50 ms later
)
#: Faults acted on at accept(), before anything is read.
CONNECTION_FAULTS = ("reset_before_read", "close_before_read")


def refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting fails with ECONNREFUSED."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()


class FaultServer:
    """See the module docstring. `keepalive_timeout` closes idle connections like real servers."""

    def __init__(self, *, keepalive_timeout: float = 5.0) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.keepalive_timeout = keepalive_timeout
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Any]] = defaultdict(deque)
        self._connection_faults: deque[str] = deque()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        self.connections = 0
        self.received: list[Received] = []
        self.arrived: list[str] = []  # paths whose head was read, complete or not

    # -- scripting ------------------------------------------------------------

    def script(self, path: str, *actions: Reply | str) -> None:
        with self._lock:
            self._scripts[path].extend(actions)

    def next_connections(self, *faults: str) -> None:
        for fault in faults:
            assert fault in CONNECTION_FAULTS, fault
        with self._lock:
            self._connection_faults.extend(faults)

    def count(self, path: str | None = None, method: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for seen in self.received
                if (path is None or seen.path == path) and (method is None or seen.method == method)
            )

    def bodies(self, path: str) -> list[bytes]:
        with self._lock:
            return [seen.body for seen in self.received if seen.path == path]

    # -- lifecycle ------------------------------------------------------------

    def __enter__(self) -> FaultServer:
        thread = threading.Thread(target=self._accept_loop, name="fault-server", daemon=True)
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
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # pragma: no cover - listener closed
                return
            with self._lock:
                self.connections += 1
                number = self.connections
                fault = self._connection_faults.popleft() if self._connection_faults else None
                self._sockets.add(sock)
            if fault == "reset_before_read":
                _reset(sock)
                continue
            if fault == "close_before_read":
                sock.close()
                continue
            thread = threading.Thread(target=self._serve, args=(sock, number), daemon=True)
            thread.start()
            self._threads.append(thread)

    # -- one connection -------------------------------------------------------

    def _serve(self, sock: socket.socket, number: int) -> None:
        reader = _Reader(sock, self._stop)
        try:
            while not self._stop.is_set():
                head = reader.head(self.keepalive_timeout)
                if head is None:
                    return
                method, path, headers = head
                with self._lock:
                    self.arrived.append(path)
                    script = self._scripts.get(path)
                    action: Reply | str = script.popleft() if script else ok()
                body = reader.body(headers)
                if body is None:
                    return
                with self._lock:
                    self.received.append(Received(method, path, headers, body, number))
                if isinstance(action, str):
                    self._fault(sock, action)
                    if action != "close_idle_after":
                        return
                    continue
                self._reply(sock, action)
        except OSError:
            return
        finally:
            with self._lock:
                self._sockets.discard(sock)
            sock.close()

    def _reply(self, sock: socket.socket, reply: Reply) -> None:
        if reply.delay and self._stop.wait(reply.delay):
            return
        lines = [f"HTTP/1.1 {reply.status} X", f"Content-Length: {len(reply.body)}"]
        lines += [f"{name}: {value}" for name, value in reply.headers]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if not reply.drip:
            sock.sendall(head + reply.body)
            return
        sock.sendall(head)
        for index in range(len(reply.body)):
            if self._stop.wait(reply.drip):
                return
            sock.sendall(reply.body[index : index + 1])

    def _fault(self, sock: socket.socket, fault: str) -> None:
        if fault == "close_after_read":
            sock.close()
        elif fault == "reset_after_read":
            _reset(sock)
        elif fault == "silent":
            self._stop.wait(30)
        elif fault == "partial_headers":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Le")
            sock.close()
        elif fault == "garbage":
            sock.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
            sock.close()
        elif fault == "truncated_body":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
            sock.close()
        elif fault == "close_idle_after":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            time.sleep(0.05)
            sock.shutdown(socket.SHUT_RDWR)
        else:  # pragma: no cover - a typo in a test
            raise AssertionError(f"unknown fault {fault!r}")


class _Reader:
    """Buffered reads of heads and bodies (Content-Length or chunked)."""

    def __init__(self, sock: socket.socket, stop: threading.Event) -> None:
        self.sock = sock
        self.stop = stop
        self.buffer = b""

    def _fill(self, deadline: float) -> bool:
        while not self.stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(min(left, 0.1))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return False
            self.buffer += chunk
            return True
        return False

    def _until(self, marker: bytes, deadline: float) -> bytes | None:
        while marker not in self.buffer:
            if not self._fill(deadline):
                return None
        data, _, self.buffer = self.buffer.partition(marker)
        return data

    def _exactly(self, size: int, deadline: float) -> bytes | None:
        while len(self.buffer) < size:
            if not self._fill(deadline):
                return None
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def head(self, idle: float) -> tuple[str, str, dict[str, str]] | None:
        raw = self._until(b"\r\n\r\n", time.monotonic() + idle)
        if raw is None:
            return None
        request_line, *header_lines = raw.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return method, target.split("?", 1)[0], headers

    def body(self, headers: dict[str, str]) -> bytes | None:
        deadline = time.monotonic() + 10
        if "content-length" in headers:
            return self._exactly(int(headers["content-length"]), deadline)
        if headers.get("transfer-encoding", "").lower() != "chunked":
            return b""
        chunks = []
        while True:
            size_line = self._until(b"\r\n", deadline)
            if size_line is None:
                return None
            size = int(size_line.split(b";")[0], 16)
            chunk = self._exactly(size + 2, deadline)
            if chunk is None:
                return None
            if size == 0:
                return b"".join(chunks)
            chunks.append(chunk[:-2])


def iter_chunks(*chunks: bytes) -> Iterator[bytes]:
    """A generator body: can be sent once."""
    yield from chunks
