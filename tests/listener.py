"""What every raw-socket test server shares: a listener on 127.0.0.1, a thread per
connection, and a stop that closes everything it holds (so no test leaves a thread behind)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import Counter
from typing import Self

__all__ = ["ThreadedServer", "tally"]


def tally(counts: Counter[tuple[str, str]], method: str | None, path: str | None) -> int:
    """How many (method, path) entries match; None matches anything."""
    return sum(
        number
        for (seen_method, seen_path), number in counts.items()
        if (method is None or seen_method == method) and (path is None or seen_path == path)
    )


class ThreadedServer:
    """A TCP listener on 127.0.0.1 (port 0) serving each connection in its own thread.

    Subclasses implement `_serve(sock, number)`; the socket is closed once it
    returns or the server stops. `_accepted(sock, number)` may deal with a
    connection itself and return False to serve no thread for it. With
    `listening=False` the port is bound (ours) but refuses connections until
    `start_listening()`: until then the kernel answers every SYN with an RST.
    """

    def __init__(self, *, listening: bool = True) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._listening = threading.Event()
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        self.connections = 0
        if listening:
            self.start_listening()

    def start_listening(self) -> None:
        """Accept connections from now on (a no-op if already listening)."""
        with self._lock:
            if not self._listening.is_set():
                self._listener.listen(128)
                self._listening.set()

    def thread_count(self) -> int:
        """Threads still alive, the accept loop's included (a long run should not pile them up)."""
        with self._lock:
            return sum(thread.is_alive() for thread in self._threads)

    def __enter__(self) -> Self:
        self._spawn(self._accept_loop)
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

    def track(self, sock: socket.socket) -> None:
        """Shut `sock` down when the server stops (until `untrack`)."""
        with self._lock:
            self._sockets.add(sock)

    def untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            # Forget finished threads, so a long run does not pile them up.
            self._threads = [alive for alive in self._threads if alive.is_alive()]
            self._threads.append(thread)
        thread.start()

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
            self.track(sock)
            if self._accepted(sock, number):
                self._spawn(self._serve_then_close, sock, number)

    def _accepted(self, sock: socket.socket, number: int) -> bool:
        return True

    def _serve_then_close(self, sock: socket.socket, number: int) -> None:
        try:
            self._serve(sock, number)
        except OSError:
            return
        finally:
            self.untrack(sock)
            sock.close()

    def _serve(self, sock: socket.socket, number: int) -> None:
        raise NotImplementedError
