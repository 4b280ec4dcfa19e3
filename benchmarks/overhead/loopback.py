"""The loopback server as the benchmark sees it: a child process and its request counters."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .harness import BenchmarkError

SERVER_SCRIPT = Path(__file__).resolve().parent / "loopback_server.py"


class LoopbackServer:
    """`loopback_server.py` in a child process; it stops when we close its stdin."""

    def __init__(self, cpu: int | None) -> None:
        command = [sys.executable, str(SERVER_SCRIPT), "--max-seconds", "1800"]
        if cpu is not None:
            command += ["--cpu", str(cpu)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith("PORT "):
            self.close()
            raise BenchmarkError(f"loopback server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base = f"http://127.0.0.1:{self.port}"

    def stats(self) -> tuple[int, int]:
        """(connections, requests) counted so far, read over a separate, uncounted connection."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(b"GET /_stats HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        connections, requests = data.split(b"\r\n\r\n", 1)[1].split()
        return int(connections), int(requests)

    def close(self) -> None:
        process = self._process
        if process.poll() is None:
            assert process.stdin is not None
            process.stdin.close()  # the server's signal to stop
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if process.stdout is not None:
            process.stdout.close()


@contextmanager
def running(cpu: int | None) -> Iterator[LoopbackServer]:
    server = LoopbackServer(cpu)
    try:
        yield server
    finally:
        server.close()
