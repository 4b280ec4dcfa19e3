"""`python -m httpx_retrying.demo`: a flaky server, a plain client, and a retrying one.

Starts an HTTP server on 127.0.0.1 (a free port) that fails on purpose: 503s
with Retry-After, a connection dropped without an answer, a body cut half-way,
a response slower than the client's timeout. The same requests go through a plain
`httpx.Client` and through `RetryTransport`; the demo prints what happened to
each and the totals side by side, then stops the server.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import http.server
import threading
import time
from collections.abc import Callable

import httpx

from . import RetryEvent, RetryPolicy, RetryTransport, backoff_full_jitter


@dataclasses.dataclass(frozen=True)
class Timings:
    """How long the server makes the clients wait: the defaults are slow enough to watch."""

    busy_retry_after: float = 1.0  # seconds, in /busy's Retry-After
    rate_limited_after_ms: int = 300  # /rate-limited's retry-after-ms
    slow_answer: float = 1.5  # seconds before /slow's first answer
    read_timeout: float = 0.5  # both clients' read timeout
    backoff_initial: float = 0.2  # the retrying client's full-jitter backoff
    backoff_cap: float = 2.0


DEFAULT_TIMINGS = Timings()


def scenarios(timings: Timings) -> dict[str, str]:
    """Each path the server fails on, and how."""
    return {
        "/healthy": "always 200",
        "/busy": f"503 + Retry-After: {timings.busy_retry_after:g}, twice, then 200",
        "/rate-limited": f"429 + retry-after-ms: {timings.rate_limited_after_ms}, then 200",
        "/drop": "closes the connection without answering, then 200",
        "/cut": "sends half of its body and closes the connection, then 200",
        "/slow": (
            f"answers after {timings.slow_answer:g} s "
            f"(client timeout {timings.read_timeout:g} s), then at once"
        ),
        "/down": "503 every time",
    }


class _FlakyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: collections.Counter[str]  # set per server
    lock: threading.Lock
    timings: Timings

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the demo's output to the table

    def _send(self, status: int, body: bytes = b"ok\n", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        with self.lock:
            self.seen[self.path] += 1
            count = self.seen[self.path]
        scenario = "/" + self.path.rsplit("/", 1)[-1]
        timings = self.timings
        if scenario == "/busy" and count <= 2:
            self._send(503, b"busy\n", retry_after=f"{timings.busy_retry_after:g}")
        elif scenario == "/rate-limited" and count == 1:
            self._send(429, b"slow down\n", retry_after_ms=str(timings.rate_limited_after_ms))
        elif scenario == "/drop" and count == 1:
            self.close_connection = True  # no answer at all
        elif scenario == "/cut" and count == 1:
            body = b'{"items": ["one", "two", "three"]}\n'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])  # then the connection goes away
            self.close_connection = True
        elif scenario == "/slow" and count == 1:
            time.sleep(timings.slow_answer)
            self._send(200)
        elif scenario == "/down":
            self._send(503, b"down\n")
        else:
            self._send(200)


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that timed out hangs up on the slow answer: expected here


def _start_server(
    timings: Timings,
) -> tuple[http.server.ThreadingHTTPServer, collections.Counter[str]]:
    seen: collections.Counter[str] = collections.Counter()
    handler = type(
        "Handler",
        (_FlakyHandler,),
        {"seen": seen, "lock": threading.Lock(), "timings": timings},
    )
    server = _QuietServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


def _outcome(send: Callable[[], httpx.Response]) -> tuple[str, bool, float]:
    started = time.monotonic()
    try:
        response = send()
    except httpx.HTTPError as exc:
        return type(exc).__name__, False, time.monotonic() - started
    return str(response.status_code), response.is_success, time.monotonic() - started


def main(timings: Timings = DEFAULT_TIMINGS) -> None:
    """Run the demo; tests pass shorter `timings`."""
    server, seen = _start_server(timings)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    events: list[RetryEvent[httpx.Request, httpx.Response]] = []
    backoff = backoff_full_jitter(initial=timings.backoff_initial, cap=timings.backoff_cap)
    policy = RetryPolicy(attempts=3, backoff=backoff)
    timeout = httpx.Timeout(5.0, read=timings.read_timeout)
    described = scenarios(timings)
    plain = httpx.Client(timeout=timeout)
    retrying = httpx.Client(
        timeout=timeout,
        # budget=None: this one-off script fails on purpose in 5 requests of 7, more than a
        # fresh default budget grants (docs/budget.md, "The retry budget").
        transport=RetryTransport(
            httpx.HTTPTransport(), policy=policy, budget=None, on_retry=events.append
        ),
    )
    print(
        f"Flaky server on {base}: plain httpx.Client vs RetryTransport ({policy.attempts} attempts)"
    )
    print()
    header = f"{'request':<15}{'plain client':<30}{'with RetryTransport':<34}what was retried"
    print(header)
    print("-" * len(header))
    totals = {"plain": [0, 0.0], "retry": [0, 0.0]}
    try:
        for path in described:
            plain_result = _outcome(functools.partial(plain.get, f"{base}/plain{path}"))
            events.clear()
            retry_result = _outcome(functools.partial(retrying.get, f"{base}/retry{path}"))
            attempts = seen[f"/retry{path}"]
            waits = ", ".join(f"{e.reason} -> waited {e.delay:.2f} s" for e in events) or "-"
            for key, (_, success, elapsed) in (("plain", plain_result), ("retry", retry_result)):
                totals[key][0] += success
                totals[key][1] += elapsed
            plain_text = f"{plain_result[0]} in {plain_result[2]:.2f} s"
            retry_text = f"{retry_result[0]} in {retry_result[2]:.2f} s, {attempts} attempt(s)"
            print(f"{path:<15}{plain_text:<30}{retry_text:<34}{waits}")
        print("-" * len(header))
        count = len(described)
        plain_total = f"{totals['plain'][0]}/{count} in {totals['plain'][1]:.2f} s"
        retry_total = f"{totals['retry'][0]}/{count} in {totals['retry'][1]:.2f} s"
        print(f"{'succeeded':<15}{plain_total:<30}{retry_total}")
        print()
        for path, description in described.items():
            print(f"  {path:<15}{description}")
        print()
        print("/down shows giving up: after 3 attempts the last 503 is returned, not an exception.")
    finally:
        plain.close()
        retrying.close()
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
