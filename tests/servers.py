"""A real HTTP/1.1 server on 127.0.0.1, from raw sockets, whose every failure is on purpose.

Each request's fate is scripted per path (`server.script("/a", "reset_after_read", ok())`);
a path with no script left answers 200, or, after `server.flaky(fraction, *actions)`,
fails that fraction of such requests at random (seeded). Connection-level faults,
which strike before a request can be read, are queued with
`server.next_connections(...)`; `FaultServer(listening=False)` refuses every
connection until `start_listening()`. The server counts what it accepted and
what it fully read, and stops by itself (`with FaultServer() as server:`),
closing every connection it holds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import select
import socket
import struct
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterator
from typing import Any

__all__ = [
    "FaultServer",
    "Received",
    "chunked",
    "drip",
    "dripping",
    "ok",
    "refused_url",
    "slow",
    "status",
]


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b"ok"
    delay: float = 0.0  # seconds before answering
    drip: float = 0.0  # seconds between body bytes
    chunked: bool = False  # Transfer-Encoding: chunked (no length known in advance)


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


def chunked(code: int, body: bytes) -> Reply:
    """A response with `code` and a chunked body (16 KiB chunks): its length is not announced."""
    return Reply(code, (), body, chunked=True)


def dripping(code: int, interval: float, body: bytes) -> Reply:
    """A response with `code` whose body (Content-Length known) comes one byte per `interval`."""
    return Reply(code, (), body, drip=interval)


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
    "close_on_reuse",  # answer 200; drop the connection, unread, once the next request arrives
)
#: Faults acted on at accept(), before anything is read.
CONNECTION_FAULTS = ("reset_before_read", "close_before_read")

_OK_BYTES = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


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
    """See the module docstring.

    * `keepalive_timeout` closes idle connections like real servers.
    * `listening=False` binds the port but refuses connections until `start_listening()`.
    * `keep_requests=False` keeps only counts (no `received`, `arrived` or bodies),
      so that a long run's memory stays flat.
    """

    def __init__(
        self,
        *,
        keepalive_timeout: float = 5.0,
        listening: bool = True,
        keep_requests: bool = True,
    ) -> None:
        # Bound at once (the port is ours), listening only when asked: until then
        # the kernel answers every SYN with an RST, i.e. "connection refused".
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._listening = threading.Event()
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.keepalive_timeout = keepalive_timeout
        self.keep_requests = keep_requests
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Any]] = defaultdict(deque)
        self._connection_faults: deque[str] = deque()
        self._flaky: tuple[float, tuple[Reply | str, ...], random.Random] | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        self._counts: Counter[tuple[str, str]] = Counter()
        self.connections = 0
        self.received: list[Received] = []
        self.arrived: list[str] = []  # paths whose head was read, complete or not
        if listening:
            self.start_listening()

    # -- scripting ------------------------------------------------------------

    def script(self, path: str, *actions: Reply | str) -> None:
        with self._lock:
            self._scripts[path].extend(actions)

    def next_connections(self, *faults: str) -> None:
        for fault in faults:
            assert fault in CONNECTION_FAULTS, fault
        with self._lock:
            self._connection_faults.extend(faults)

    def flaky(self, fraction: float, *actions: Reply | str, seed: int = 0) -> None:
        """Unscripted requests fail with probability `fraction`, with one of `actions` (seeded)."""
        assert 0 <= fraction <= 1
        assert actions
        with self._lock:
            self._flaky = (fraction, actions, random.Random(seed))

    def start_listening(self) -> None:
        """Accept connections from now on (a no-op if already listening)."""
        with self._lock:
            if not self._listening.is_set():
                self._listener.listen(128)
                self._listening.set()

    def count(self, path: str | None = None, method: str | None = None) -> int:
        with self._lock:
            return sum(
                number
                for (seen_method, seen_path), number in self._counts.items()
                if (path is None or seen_path == path) and (method is None or seen_method == method)
            )

    def bodies(self, path: str) -> list[bytes]:
        with self._lock:
            return [seen.body for seen in self.received if seen.path == path]

    def thread_count(self) -> int:
        """Connection threads still alive (a long run should not pile them up)."""
        with self._lock:
            return sum(thread.is_alive() for thread in self._threads)

    # -- lifecycle ------------------------------------------------------------

    def __enter__(self) -> FaultServer:
        thread = threading.Thread(target=self._accept_loop, name="fault-server", daemon=True)
        thread.start()
        with self._lock:
            self._threads.append(thread)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._listening.is_set():
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() at once
        with self._lock:
            for sock in list(self._sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._listening.is_set():
            if self._stop.wait(0.01):
                return
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
                # Forget finished connection threads, so a long run does not pile them up.
                self._threads = [thread for thread in self._threads if thread.is_alive()]
            if fault is not None:
                with self._lock:
                    self._sockets.discard(sock)
                if fault == "reset_before_read":
                    _reset(sock)
                else:  # close_before_read
                    sock.close()
                continue
            thread = threading.Thread(target=self._serve, args=(sock, number), daemon=True)
            with self._lock:
                self._threads.append(thread)
            thread.start()

    # -- one connection -------------------------------------------------------

    def _next_action(self, path: str) -> Reply | str:
        """Under the lock: the scripted action, else a random fault when flaky, else 200."""
        script = self._scripts.get(path)
        if script:
            return script.popleft()  # type: ignore[no-any-return]
        if self._flaky is not None:
            fraction, actions, rng = self._flaky
            if rng.random() < fraction:
                return rng.choice(actions)
        return ok()

    def _serve(self, sock: socket.socket, number: int) -> None:
        reader = _Reader(sock, self._stop)
        try:
            while not self._stop.is_set():
                head = reader.head(self.keepalive_timeout)
                if head is None:
                    return
                method, path, headers = head
                with self._lock:
                    if self.keep_requests:
                        self.arrived.append(path)
                    action = self._next_action(path)
                body = reader.body(headers)
                if body is None:
                    return
                with self._lock:
                    self._counts[method, path] += 1
                    if self.keep_requests:
                        self.received.append(Received(method, path, headers, body, number))
                if isinstance(action, str):
                    self._fault(sock, action, reader)
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
        framing = (
            "Transfer-Encoding: chunked" if reply.chunked else f"Content-Length: {len(reply.body)}"
        )
        lines = [f"HTTP/1.1 {reply.status} X", framing]
        lines += [f"{name}: {value}" for name, value in reply.headers]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if reply.chunked:
            pieces = [reply.body[i : i + 16384] for i in range(0, len(reply.body), 16384)]
            sock.sendall(
                head + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
            )
            return
        if not reply.drip:
            sock.sendall(head + reply.body)
            return
        sock.sendall(head)
        for index in range(len(reply.body)):
            if self._stop.wait(reply.drip):
                return
            sock.sendall(reply.body[index : index + 1])

    def _fault(self, sock: socket.socket, fault: str, reader: _Reader) -> None:
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
            sock.sendall(_OK_BYTES)
            time.sleep(0.05)
            sock.shutdown(socket.SHUT_RDWR)
        elif fault == "close_on_reuse":
            # The keep-alive race without the timing: the connection looked idle
            # and alive when the client picked it, and dies under its next request,
            # which is never read (so never processed).
            sock.sendall(_OK_BYTES)
            if reader.wait_readable(self.keepalive_timeout):
                _reset(sock)
        else:  # pragma: no cover - a typo in a test
            raise AssertionError(f"unknown fault {fault!r}")


class _Reader:
    """Buffered reads of heads and bodies (Content-Length or chunked)."""

    def __init__(self, sock: socket.socket, stop: threading.Event) -> None:
        self.sock = sock
        self.stop = stop
        self.buffer = b""

    def wait_readable(self, limit: float) -> bool:
        """Whether bytes (or EOF) arrive within `limit` seconds; reads nothing."""
        if self.buffer:
            return True
        deadline = time.monotonic() + limit
        while not self.stop.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([self.sock], [], [], 0.05)
            if readable:
                return True
        return False

    def _fill(self, deadline: float) -> bool:
        while not self.stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(min(left, 0.1))
            try:
                chunk = self.sock.recv(16384)
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
        chunks: list[bytes] = []
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
