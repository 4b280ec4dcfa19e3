"""Servers this project did not write, run in-process on 127.0.0.1: uvicorn and hypercorn.

* `uvicorn_server(app)` / `static_file(body)`: uvicorn (h11) in a thread, port 0;
  `static_file` serves a temp file through Starlette's `StaticFiles` (FileResponse:
  Range, If-Range, a strong ETag, Last-Modified), optionally behind `GZipMiddleware`.
* `HypercornServer(app)`: hypercorn (HTTP/1.1 and HTTP/2 cleartext with prior
  knowledge) in a thread on a fixed port that survives `restart()`.
* `ScriptedApp`: an ASGI app answering per path with `tests.servers.Reply`
  (status, headers, body, delay, drip, chunked, cut/stall), counting what it processed.
* `h2_abandoned_bodies_stall(...)`: the HTTP/2 flow-control stall, reproduced.

Every server stops by itself when its `with` block ends.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import gzip
import os
import socket
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from tests.conftest import SSL_CONTEXT
from tests.servers import Reply, ok

__all__ = [
    "HypercornServer",
    "ScriptedApp",
    "h2_abandoned_bodies_stall",
    "h2_client",
    "static_body",
    "static_file",
    "uvicorn_server",
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: How long a stalled reply waits for the client to hang up, at most.
STALL_LIMIT = 30.0


def _listening_socket(port: int = 0) -> socket.socket:
    """Bound and listening at once: clients may connect before the server loop accepts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock


# -- uvicorn ------------------------------------------------------------------


@contextlib.contextmanager
def uvicorn_server(app: ASGIApp, **options: Any) -> Iterator[str]:
    """Run `app` under uvicorn (h11 unless `http=` says otherwise) in a thread; yield its URL."""
    import uvicorn

    sock = _listening_socket()
    config = uvicorn.Config(
        app,
        **{
            "http": "h11",
            "lifespan": "off",
            "log_level": "warning",
            "timeout_graceful_shutdown": 1,
            **options,
        },
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def static_files_app(directory: Path, *, gzip_minimum_size: int | None = None) -> ASGIApp:
    """Starlette's StaticFiles for `directory`; with `gzip_minimum_size`, behind GZipMiddleware."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.gzip import GZipMiddleware
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    middleware = (
        [Middleware(GZipMiddleware, minimum_size=gzip_minimum_size)]
        if gzip_minimum_size is not None
        else []
    )
    return Starlette(routes=[Mount("/", StaticFiles(directory=directory))], middleware=middleware)


#: The static file's modification time: well before any Date, so Last-Modified is a strong
#: validator (RFC 9110 §8.8.2.2), and with it Starlette's ETag (md5 of mtime and size) is stable.
STATIC_MTIME = 1_600_000_000


@contextlib.contextmanager
def static_file(
    body: bytes, *, name: str = "data.bin", gzip_minimum_size: int | None = None
) -> Iterator[str]:
    """A temp file holding `body`, served by Starlette's StaticFiles under uvicorn: its URL.

    `name`'s suffix sets the media type (`.bin`: application/octet-stream, which
    GZipMiddleware compresses; `.gz` is excluded from compression).
    """
    with tempfile.TemporaryDirectory(prefix="static-") as directory:
        path = Path(directory) / name
        path.write_bytes(body)
        os.utime(path, (STATIC_MTIME, STATIC_MTIME))
        app = static_files_app(Path(directory), gzip_minimum_size=gzip_minimum_size)
        with uvicorn_server(app) as url:
            yield f"{url}/{name}"


# -- a scriptable ASGI app ----------------------------------------------------


class ScriptedApp:
    """ASGI: each request to a path takes the next scripted `Reply` (else `always`, else 200 ok).

    `Reply` fields map to ASGI: `delay` before answering; `chunked` sends no
    Content-Length; `drip`/`drip_size` send pieces slowly; `stall_after` sends that
    many body bytes and waits for the client to go away; `cut_after` sends that many
    and raises (what the server does then is its business: uvicorn closes the
    connection; hypercorn over HTTP/2 leaves the stream open and silent).
    `processed(...)` counts requests whose body was read to the end.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._always: dict[str, Reply] = {}
        self._processed: Counter[tuple[str, str]] = Counter()
        self.in_flight = 0

    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts[path].extend(replies)

    def always(self, path: str, reply: Reply) -> None:
        """Answer every unscripted request to `path` with `reply`."""
        with self._lock:
            self._always[path] = reply

    def processed(self, method: str | None = None, path: str | None = None) -> int:
        with self._lock:
            return sum(
                number
                for (seen_method, seen_path), number in self._processed.items()
                if (method is None or seen_method == method) and (path is None or seen_path == path)
            )

    def _next(self, path: str) -> Reply:
        with self._lock:
            script = self._scripts.get(path)
            if script:
                return script.popleft()
            return self._always.get(path, ok())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan and websockets: nothing to do
            return
        while (await receive()).get("more_body"):
            pass
        method, path = scope["method"], scope["path"]
        reply = self._next(path)
        with self._lock:
            self._processed[method, path] += 1
            self.in_flight += 1
        try:
            await self._answer(reply, receive, send)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _answer(self, reply: Reply, receive: Receive, send: Send) -> None:
        if reply.delay:
            await asyncio.sleep(reply.delay)
        headers = [(name.lower().encode(), value.encode()) for name, value in reply.headers]
        if not reply.chunked:
            length = len(reply.body) if reply.content_length is None else reply.content_length
            headers.append((b"content-length", str(length).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        body = memoryview(reply.body)
        limit = reply.cut_after if reply.cut_after is not None else reply.stall_after
        body = body[:limit]
        step = reply.drip_size if reply.drip else max(len(body), 1)
        for start in range(0, len(body), step):
            if reply.drip:
                await asyncio.sleep(reply.drip)
            await send(
                {
                    "type": "http.response.body",
                    "body": bytes(body[start : start + step]),
                    "more_body": True,
                }
            )
        if reply.cut_after is not None:
            raise ConnectionAbortedError(f"scripted cut after {reply.cut_after} body bytes")
        if reply.stall_after is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STALL_LIMIT):
                    while (await receive())["type"] != "http.disconnect":
                        pass
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


# -- hypercorn ----------------------------------------------------------------


def _quiet_about_cancelled_connections(
    loop: asyncio.AbstractEventLoop, context: dict[str, Any]
) -> None:
    """Connections still open when the graceful timeout ends are cancelled: not an error."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


class HypercornServer:
    """Hypercorn serving `app` in a thread on one port, HTTP/1.1 and h2c (prior knowledge).

    `stop()` shuts down gracefully (GOAWAY to HTTP/2 clients, in-flight requests
    get `graceful_timeout` seconds); `start()` serves again on the same port, so
    `restart()` is a server restart as clients see it. `keep_alive_max_requests`
    makes hypercorn send GOAWAY after that many requests on a connection.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        graceful_timeout: float = 1.0,
        keep_alive_max_requests: int | None = None,
    ) -> None:
        self.app = app
        self.graceful_timeout = graceful_timeout
        self.keep_alive_max_requests = keep_alive_max_requests
        self._socket: socket.socket | None = _listening_socket()
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shutdown: asyncio.Event | None = None
        self._ready = threading.Event()
        self.errors: list[Exception] = []  # what made hypercorn's serve() itself fail

    def start(self) -> None:
        assert self._thread is None, "already running"
        from hypercorn.config import Config

        sock = self._socket or _listening_socket(self.port)
        self._socket = None
        config = Config()
        config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns (and closes) it now
        config.graceful_timeout = self.graceful_timeout
        config.accesslog = None
        config.errorlog = None
        if self.keep_alive_max_requests is not None:
            config.keep_alive_max_requests = self.keep_alive_max_requests
        self._ready.clear()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(config),), name="hypercorn", daemon=True
        )
        self._thread.start()
        assert self._ready.wait(10), "hypercorn did not start"

    async def _serve(self, config: Any) -> None:
        from hypercorn.asyncio import serve

        self._loop = asyncio.get_running_loop()
        self._loop.set_exception_handler(_quiet_about_cancelled_connections)
        self._shutdown = asyncio.Event()
        self._ready.set()
        serving = asyncio.ensure_future(
            serve(self.app, config, shutdown_trigger=self._shutdown.wait)  # type: ignore[arg-type]
        )
        stopping = asyncio.ensure_future(self._shutdown.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        # From Python 3.12 on, hypercorn's shutdown waits until every connection has closed,
        # and a connection stalled on HTTP/2 flow control never does: cut it short.
        await asyncio.wait({serving}, timeout=self.graceful_timeout + 2)
        if not serving.done():
            serving.cancel()
        try:
            await serving
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # kept for the test to look at, not lost in a thread
            self.errors.append(exc)

    def stop(self) -> None:
        if self._thread is None:
            return
        assert self._loop is not None
        assert self._shutdown is not None
        with contextlib.suppress(RuntimeError):  # the loop already ended
            self._loop.call_soon_threadsafe(self._shutdown.set)
        self._thread.join(timeout=self.graceful_timeout + 10)
        assert not self._thread.is_alive(), "hypercorn did not stop"
        self._thread = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> HypercornServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        if self._socket is not None:
            self._socket.close()


# -- the HTTP/2 flow-control stall --------------------------------------------

#: The error body size of the known stall (1 MiB).
LARGE_ERROR_BODY = 1 << 20


def h2_client(lib: ModuleType = httpx, **options: Any) -> Any:
    """A plain client (`lib`: httpx or httpx2) speaking h2 with prior knowledge, one connection."""
    limits = lib.Limits(max_connections=1)
    transport = lib.HTTPTransport(http1=False, http2=True, limits=limits, verify=SSL_CONTEXT)
    return lib.Client(transport=transport, **options)


def h2_abandoned_bodies_stall(
    client: Any,
    busy_url: str,
    ok_url: str,
    *,
    rounds: int = 40,
    read_bodies: bool = False,
) -> list[int]:
    """The rounds (1-based) whose 200 hit ReadTimeout after abandoning 503 bodies unread.

    Each round streams a GET of `busy_url` (a large 503), closes it without reading
    (`read_bodies=True`: reads it), then GETs `ok_url` and reads it. httpcore neither
    resets an abandoned HTTP/2 stream nor acknowledges its data, so every abandoned
    body eats the connection's flow-control window until a later response cannot be
    sent at all. Give `client` (httpx or httpx2) a short read timeout.
    """
    read_timeout = sys.modules[type(client).__module__.partition(".")[0]].ReadTimeout
    stalled: list[int] = []
    for round_number in range(1, rounds + 1):
        with client.stream("GET", busy_url) as response:
            assert response.status_code == 503, response.status_code
            if read_bodies:
                response.read()
        try:
            client.get(ok_url).raise_for_status()
        except read_timeout:
            stalled.append(round_number)
    return stalled


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip (mtime 0), so a representation's bytes are the same every time."""
    return gzip.compress(data, mtime=0)


def static_body(size: int = 1 << 20) -> bytes:
    """Bytes whose every offset is recognisable (a splice at a wrong offset cannot pass)."""
    return array.array("I", range(size // 4)).tobytes()
