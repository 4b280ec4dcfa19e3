"""A small HTTP/2 server (cleartext, prior knowledge) on 127.0.0.1, written with `h2`.

It exists to send the two signals RFC 9113 §8.7 defines as "not processed":
RST_STREAM(REFUSED_STREAM) and GOAWAY whose last-stream-id is below the stream.
Each request's fate is scripted per path, like `tests.servers.FaultServer`:

    with H2Server() as server:
        server.script("/p", refuse(), goaway(0), Reply(201, (), b"made"))
        ...  # httpx.Client(transport=httpx.HTTPTransport(http1=False, http2=True))
        assert server.processed("POST") == 1

A refused stream and a stream above a GOAWAY's last-stream-id are answered as
soon as their HEADERS arrive and never count as processed; a request counts as
processed once its whole body has been read. Unscripted paths answer 200 `ok`.
`Reset(code, after=N)` resets a stream the server did process, after N body bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import select
import socket
import time
from collections import Counter, defaultdict, deque
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from h2.errors import ErrorCodes

from tests.listener import ThreadedServer, tally
from tests.servers import Reply, ok, wait_for_hang_up, wait_until_delivered

__all__ = ["GoAway", "H2Server", "Reset", "goaway", "refuse"]


@dataclasses.dataclass(frozen=True)
class Reset:
    """RST_STREAM with `error_code`: on HEADERS (not processed), or after `after` body bytes."""

    error_code: int = ErrorCodes.REFUSED_STREAM
    after: int | None = None


@dataclasses.dataclass(frozen=True)
class GoAway:
    """GOAWAY(`last_stream_id`, `error_code`) on HEADERS; closed once the client hangs up (2 s).

    Streams above `last_stream_id` were not processed (0: none was).
    """

    last_stream_id: int = 0
    error_code: int = ErrorCodes.NO_ERROR


def refuse() -> Reset:
    return Reset(ErrorCodes.REFUSED_STREAM)


def goaway(last_stream_id: int = 0) -> GoAway:
    return GoAway(last_stream_id)


Action = Reply | Reset | GoAway


class H2Server(ThreadedServer):
    """See the module docstring. Counts: `processed(...)`, `refused`, `connections`."""

    def __init__(self) -> None:
        super().__init__()
        self._scripts: dict[str, deque[Action]] = defaultdict(deque)
        self._processed: Counter[tuple[str, str]] = Counter()
        self.refused = 0  # streams answered with a signal that says "not processed"

    def script(self, path: str, *actions: Action) -> None:
        with self._lock:
            self._scripts[path].extend(actions)

    def processed(self, method: str | None = None, path: str | None = None) -> int:
        """Requests read to the end of their body (refused or GOAWAYed ones never are)."""
        with self._lock:
            return tally(self._processed, method, path)

    def _next_action(self, path: str) -> Action:
        with self._lock:
            script = self._scripts.get(path)
            return script.popleft() if script else ok()

    def _serve(self, sock: socket.socket, number: int) -> None:
        with contextlib.suppress(h2.exceptions.ProtocolError):
            _Connection(self, sock).run()


@dataclasses.dataclass
class _Stream:
    method: str
    path: str
    action: Action
    outgoing: memoryview | None = None  # body bytes not yet sent (flow control)
    reset_code: int | None = None  # reset once `outgoing` is sent
    answer_at: float = 0.0  # monotonic time the answer may start (a Reply's delay)


class _Connection:
    """One HTTP/2 connection: h2's state machine driven by a blocking socket."""

    def __init__(self, server: H2Server, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self.streams: dict[int, _Stream] = {}
        self.closing = False

    def run(self) -> None:
        self.h2.initiate_connection()
        self.flush()
        while not self.server._stop.is_set() and not self.closing:
            waiting = [s.answer_at for s in self.streams.values() if s.answer_at]
            timeout = 0.05 if not waiting else max(0.0, min(min(waiting) - time.monotonic(), 0.05))
            readable, _, _ = select.select([self.sock], [], [], timeout)
            if readable:
                data = self.sock.recv(65536)
                if not data:
                    return
                for event in self.h2.receive_data(data):
                    self.handle(event)
            self.answer_due()
            self.send_pending()
            self.flush()
        if self.closing:
            # Like a real server after GOAWAY: read (and drop) what the client still sends
            # until it hangs up, so it reads the GOAWAY rather than a reset on its write.
            wait_until_delivered(self.sock, self.server._stop)
            wait_for_hang_up(self.sock, self.server._stop, limit=2.0)

    def flush(self) -> None:
        outgoing = self.h2.data_to_send()
        if outgoing:
            self.sock.sendall(outgoing)

    def handle(self, event: Any) -> None:
        if isinstance(event, h2.events.RequestReceived):
            headers: dict[Any, Any] = dict(event.headers)  # str: header_encoding is set
            method, path = str(headers[":method"]), str(headers[":path"]).split("?", 1)[0]
            action = self.server._next_action(path)
            if isinstance(action, GoAway):
                self.count_refused()
                self.h2.close_connection(action.error_code, last_stream_id=action.last_stream_id)
                self.closing = True
            elif isinstance(action, Reset) and action.after is None:
                self.count_refused()
                self.h2.reset_stream(event.stream_id, action.error_code)
            else:
                self.streams[event.stream_id] = _Stream(method, path, action)
        elif isinstance(event, h2.events.DataReceived):
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):  # also sent for a body-less request
            if event.stream_id in self.streams:
                self.processed(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self.streams.pop(event.stream_id, None)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.closing = True

    def count_refused(self) -> None:
        with self.server._lock:
            self.server.refused += 1

    def processed(self, stream_id: int) -> None:
        stream = self.streams[stream_id]
        with self.server._lock:
            self.server._processed[stream.method, stream.path] += 1
        delay = stream.action.delay if isinstance(stream.action, Reply) else 0.0
        stream.answer_at = time.monotonic() + delay

    def answer_due(self) -> None:
        now = time.monotonic()
        for stream_id, stream in list(self.streams.items()):
            if not stream.answer_at or stream.answer_at > now:
                continue
            stream.answer_at = 0.0
            action = stream.action
            if isinstance(action, Reset):
                body = memoryview(b"x" * (action.after or 0))
                headers = [(":status", "200")]
                stream.reset_code = action.error_code
            else:
                assert isinstance(action, Reply), action
                body = memoryview(action.body)
                headers = [(":status", str(action.status)), ("content-length", str(len(body)))]
                headers += [(name.lower(), value) for name, value in action.headers]
            if not body and stream.reset_code is None:
                self.h2.send_headers(stream_id, headers, end_stream=True)
                del self.streams[stream_id]
                continue
            self.h2.send_headers(stream_id, headers)
            stream.outgoing = body

    def send_pending(self) -> None:
        """Send what flow control allows; end (or reset) streams whose body is all sent."""
        for stream_id, stream in list(self.streams.items()):
            if stream.outgoing is None:
                continue
            while stream.outgoing:
                size = min(
                    self.h2.local_flow_control_window(stream_id),
                    self.h2.max_outbound_frame_size,
                    len(stream.outgoing),
                )
                if size <= 0:
                    break
                self.h2.send_data(stream_id, stream.outgoing[:size])
                stream.outgoing = stream.outgoing[size:]
            if stream.outgoing:
                continue
            if stream.reset_code is not None:
                self.h2.reset_stream(stream_id, stream.reset_code)
            else:
                self.h2.end_stream(stream_id)
            del self.streams[stream_id]
