"""A real HTTP/1.1 server on 127.0.0.1, from raw sockets, whose every failure is on purpose.

Each request's fate is scripted per path (`server.script("/a", "reset_after_read", ok())`);
a path with no script left answers 200, or, after `server.flaky(fraction, *actions)`,
fails that fraction of such requests at random (seeded). Connection-level faults,
which strike before a request can be read, are queued with
`server.next_connections(...)`; `FaultServer(listening=False)` refuses every
connection until `start_listening()`. The server counts what it accepted and
what it fully read, and stops by itself (`with FaultServer() as server:`),
closing every connection it holds.

Body faults are fields of a `Reply` (any status, Content-Length or chunked):
`cut(...)` closes after N body bytes (or resets), `stalled(...)` goes silent
after N, `dripping(...)` sends them slowly. `server.resource(path, body, ...)`
serves a representation with RFC 9110 Range/If-Range support
(`tests.representation`); `Serve(...)` entries scripted on its path pick each
answer's failure mode (`server.script("/f", Serve(cut_after=1000), Serve())`).
"""

from __future__ import annotations

import dataclasses
import random
import select
import socket
import struct
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterator

from tests.listener import ThreadedServer, tally
from tests.representation import Representation, Serve, answer

__all__ = [
    "FaultServer",
    "Received",
    "Reply",
    "Representation",
    "Serve",
    "chunked",
    "cut",
    "drip",
    "dripping",
    "ok",
    "refused_url",
    "slow",
    "stalled",
    "status",
]

#: How long a stalled response or a "silent" fault stays silent at most.
SILENCE_LIMIT = 30.0


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | memoryview = b"ok"
    delay: float = 0.0  # seconds before answering
    drip: float = 0.0  # seconds between body pieces
    chunked: bool = False  # Transfer-Encoding: chunked (no length known in advance)
    drip_size: int = 1  # bytes per piece when dripping
    chunk_size: int = 16384  # payload bytes per chunk when chunked
    cut_after: int | None = None  # body bytes sent, then the connection is closed
    reset: bool = False  # ... with an RST instead of a FIN
    stall_after: int | None = None  # body bytes sent, then silence until the client hangs up
    content_length: int | None = None  # announced instead of len(body) (not when chunked)


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


def dripping(
    code: int, interval: float, body: bytes, *, size: int = 1, chunked: bool = False
) -> Reply:
    """A response with `code` whose body comes `size` bytes per `interval`."""
    return Reply(code, (), body, drip=interval, drip_size=size, chunked=chunked)


def cut(
    code: int,
    body: bytes,
    after: int,
    *,
    reset: bool = False,
    chunked: bool = False,
    **headers: str,
) -> Reply:
    """`code` announcing all of `body`, then the connection closes after `after` body bytes.

    `reset=True` closes with an RST (the `after` bytes still reach the client first);
    `chunked=True` frames it chunked, so the client sees an incomplete chunked read.
    """
    return dataclasses.replace(
        status(code, body, **headers), cut_after=after, reset=reset, chunked=chunked
    )


def stalled(code: int, body: bytes, after: int, *, chunked: bool = False, **headers: str) -> Reply:
    """`code` announcing all of `body`, sending `after` bytes, then nothing.

    The connection stays open and silent until the client closes it or the server stops
    (at most `SILENCE_LIMIT` seconds), so the client's read timeout fires mid-body.
    """
    return dataclasses.replace(status(code, body, **headers), stall_after=after, chunked=chunked)


@dataclasses.dataclass(frozen=True)
class Received:
    """A request the server read completely (it may or may not have answered)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int


#: What a scripted request gets: a reply, a named fault, or (on a resource) how to serve it.
Action = Reply | str | Serve

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


def reset_connection(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()


def _unacknowledged(sock: socket.socket) -> int:
    """Bytes still in the kernel's send queue (Linux); 0 where that cannot be asked."""
    try:
        import fcntl
        import termios

        queued = fcntl.ioctl(sock, termios.TIOCOUTQ, b"\0\0\0\0")
    except (ImportError, AttributeError, OSError):
        return 0
    return int(struct.unpack("i", queued)[0])


def wait_until_delivered(sock: socket.socket, stop: threading.Event, limit: float = 5.0) -> None:
    """Wait (bounded) until the peer acknowledged everything sent.

    An RST discards whatever is still queued, so a "cut after N bytes" must let
    the N bytes arrive before it resets.
    """
    deadline = time.monotonic() + limit
    while _unacknowledged(sock) and time.monotonic() < deadline and not stop.wait(0.001):
        pass


def wait_for_hang_up(sock: socket.socket, stop: threading.Event, limit: float) -> None:
    """Stay silent until the peer closes, the server stops, or `limit` seconds pass."""
    deadline = time.monotonic() + limit
    while not stop.is_set() and time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.05)
        if readable and not sock.recv(65536):
            return


#: Pieces of a body at most this large are gathered into one send.
_GATHER = 65536
#: Large slices are sent in pieces this large, so that a stop is seen between them.
_SEND_PIECE = 1 << 20


def _wire(
    body: memoryview, chunked: bool, chunk_size: int, limit: int | None
) -> Iterator[tuple[bytes | memoryview, bool]]:
    """The body as (piece, is_payload) on the wire, ending after `limit` payload bytes.

    A chunked body cut short ends inside (or right after) a chunk, never with the
    last-chunk marker, so the client sees an incomplete chunked read.
    """
    if not chunked:
        yield body[:limit], True
        return
    sent = 0
    for start in range(0, len(body), chunk_size):
        chunk = body[start : start + chunk_size]
        take = len(chunk) if limit is None else min(len(chunk), limit - sent)
        if take <= 0:
            return
        yield b"%x\r\n" % len(chunk), False
        yield chunk[:take], True
        sent += take
        if take < len(chunk):
            return
        yield b"\r\n", False
    if limit is None:
        yield b"0\r\n\r\n", False


class FaultServer(ThreadedServer):
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
        super().__init__(listening=listening)
        self.keepalive_timeout = keepalive_timeout
        self.keep_requests = keep_requests
        self._scripts: dict[str, deque[Action]] = defaultdict(deque)
        self._resources: dict[str, Representation] = {}
        self._connection_faults: deque[str] = deque()
        self._flaky: tuple[float, tuple[Reply | str, ...], random.Random] | None = None
        self._counts: Counter[tuple[str, str]] = Counter()
        self.received: list[Received] = []
        self.arrived: list[str] = []  # paths whose head was read, complete or not

    # -- scripting ------------------------------------------------------------

    def script(self, path: str, *actions: Action) -> None:
        with self._lock:
            self._scripts[path].extend(actions)

    def resource(
        self,
        path: str,
        body: bytes,
        *,
        etag: str | None = '"v1"',
        last_modified: str | None = None,
        date: str | None = None,
        content_encoding: str | None = None,
        content_type: str = "application/octet-stream",
        chunked: bool = False,
    ) -> Representation:
        """Serve `body` at `path` with Range support; calling it again replaces it (a new version).

        With `content_encoding`, `body` is the already-encoded bytes, served raw. Requests
        with no script left are answered correctly; script `Serve(...)` (or any `Reply` or
        fault) on the path to choose how the next ones are answered.
        """
        representation = Representation(
            body, etag, last_modified, date, content_encoding, content_type, chunked
        )
        with self._lock:
            self._resources[path] = representation
        return representation

    def request_headers(self, path: str, name: str) -> list[str | None]:
        """The value of header `name` in each request read for `path`, in order (None: absent)."""
        with self._lock:
            return [seen.headers.get(name.lower()) for seen in self.received if seen.path == path]

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

    def count(self, path: str | None = None, method: str | None = None) -> int:
        with self._lock:
            return tally(self._counts, method, path)

    def bodies(self, path: str) -> list[bytes]:
        with self._lock:
            return [seen.body for seen in self.received if seen.path == path]

    def _accepted(self, sock: socket.socket, number: int) -> bool:
        """Connection faults strike here, before anything is read."""
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            fault = self._connection_faults.popleft() if self._connection_faults else None
        if fault is None:
            return True
        self.untrack(sock)
        if fault == "reset_before_read":
            reset_connection(sock)
        else:  # close_before_read
            sock.close()
        return False

    # -- one connection -------------------------------------------------------

    def _next_action(self, path: str) -> Action:
        """Under the lock: the scripted action, else a random fault when flaky, else 200."""
        script = self._scripts.get(path)
        if script:
            return script.popleft()
        if path in self._resources:
            return Serve()
        if self._flaky is not None:
            fraction, actions, rng = self._flaky
            if rng.random() < fraction:
                return rng.choice(actions)
        return ok()

    def _serve(self, sock: socket.socket, number: int) -> None:
        reader = _Reader(sock, self._stop)
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
            if isinstance(action, Serve):
                action = self._served(path, method, headers, action)
            if not self._reply(sock, action):
                return

    def _served(self, path: str, method: str, headers: dict[str, str], serve: Serve) -> Reply:
        with self._lock:
            representation = self._resources.get(path)
        assert representation is not None, f"Serve(...) scripted on {path}, which is no resource"
        status_code, fields, body, is_chunked, length = answer(
            representation, method, headers, serve
        )
        return Reply(
            status_code,
            tuple(fields),
            body,
            chunked=is_chunked,
            chunk_size=representation.chunk_size,
            content_length=length,
            cut_after=serve.cut_after,
            reset=serve.reset,
            stall_after=serve.stall_after,
            drip=serve.drip,
            drip_size=serve.drip_size,
        )

    def _reply(self, sock: socket.socket, reply: Reply) -> bool:
        """Write `reply`; False when the connection must end (a stop, a cut, a stall)."""
        if reply.delay and self._stop.wait(reply.delay):
            return False
        length = len(reply.body) if reply.content_length is None else reply.content_length
        framing = "Transfer-Encoding: chunked" if reply.chunked else f"Content-Length: {length}"
        lines = [f"HTTP/1.1 {reply.status} X", framing]
        lines += [f"{name}: {value}" for name, value in reply.headers]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        limit = reply.cut_after if reply.cut_after is not None else reply.stall_after
        pieces = _wire(memoryview(reply.body), reply.chunked, reply.chunk_size, limit)
        if not (
            self._drip(sock, head, pieces, reply) if reply.drip else self._pour(sock, head, pieces)
        ):
            return False
        if reply.cut_after is not None:
            wait_until_delivered(sock, self._stop)
            if reply.reset:
                reset_connection(sock)
            return False
        if reply.stall_after is not None:
            wait_for_hang_up(sock, self._stop, SILENCE_LIMIT)
            return False
        return True

    def _pour(
        self, sock: socket.socket, head: bytes, pieces: Iterator[tuple[bytes | memoryview, bool]]
    ) -> bool:
        """Send at full speed: small pieces gathered, large slices sent without a copy."""
        gathered: list[bytes | memoryview] = [head]
        for piece, _ in pieces:
            if len(piece) <= _GATHER:
                gathered.append(piece)
                if sum(map(len, gathered)) < _GATHER:
                    continue
            sock.sendall(b"".join(gathered))
            gathered = []
            if len(piece) > _GATHER:
                for start in range(0, len(piece), _SEND_PIECE):
                    if self._stop.is_set():
                        return False
                    sock.sendall(piece[start : start + _SEND_PIECE])
        if gathered:
            sock.sendall(b"".join(gathered))
        return True

    def _drip(
        self,
        sock: socket.socket,
        head: bytes,
        pieces: Iterator[tuple[bytes | memoryview, bool]],
        reply: Reply,
    ) -> bool:
        sock.sendall(head)
        for piece, is_payload in pieces:
            if not is_payload:
                sock.sendall(piece)
                continue
            for start in range(0, len(piece), reply.drip_size):
                if self._stop.wait(reply.drip):
                    return False
                sock.sendall(piece[start : start + reply.drip_size])
        return True

    def _fault(self, sock: socket.socket, fault: str, reader: _Reader) -> None:
        if fault == "close_after_read":
            sock.close()
        elif fault == "reset_after_read":
            reset_connection(sock)
        elif fault == "silent":
            self._stop.wait(SILENCE_LIMIT)
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
                reset_connection(sock)
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
