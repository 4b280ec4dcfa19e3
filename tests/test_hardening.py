"""Regressions from the outside review of 0.1: each test failed on 0.1.0 and passes now."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import tenacity

from httpx_retrying import RetryEvent, RetryPolicy
from tests.conftest import FakeClock, Harness
from tests.mocks import Script, clocked, make
from tests.servers import FaultServer, dripping, ok

# -- 1. a deadline is never overrun by the release of a stalled error body --------


@pytest.mark.parametrize("wait", [0.25, 1.2])
def test_a_stalled_error_body_cannot_push_a_retry_past_the_deadline(
    mode_harness: Harness, wait: float
) -> None:
    """503s whose body stalls, a 2 s deadline: every attempt starts in time, none after it.

    0.1.0 drained the stalled body until the read timeout (cut to the deadline),
    then slept and sent a doomed attempt with 1 ms timeouts. (One flavour: the
    release is the same code for both.)
    """
    harness = mode_harness
    lib = harness.lib
    policy = RetryPolicy(
        attempts=3, backoff=tenacity.wait_fixed(wait), deadline=2.0, preload_limit=0
    )
    stalled = dripping(503, 5.0, b"x" * 100)
    with FaultServer() as server:
        server.script("/busy", stalled, stalled, stalled)
        transport = harness.RetryTransport(harness.http_transport())
        started = time.monotonic()

        def check(response: Any) -> Any:
            return response.status_code, response.is_stream_consumed, time.monotonic() - started

        if harness.is_async:

            async def main() -> Any:
                async with (
                    lib.AsyncClient(transport=transport, timeout=5.0) as client,
                    client.stream(
                        "GET", f"{server.url}/busy", extensions={"retry": policy}
                    ) as response,
                ):
                    return check(response)

            status, consumed, elapsed = harness.run(main)
        else:
            with (
                lib.Client(transport=transport, timeout=5.0) as client,
                client.stream(
                    "GET", f"{server.url}/busy", extensions={"retry": policy}
                ) as response,
            ):
                status, consumed, elapsed = check(response)
        attempts = server.count("/busy")
    assert (status, consumed) == (503, False)  # the last 503, untouched and still readable
    assert elapsed < 2.0
    # 0.25 s waits: three attempts fit; 1.2 s: the second wait would leave too little.
    assert attempts == (3 if wait == 0.25 else 2)


def test_no_attempt_is_sent_once_the_deadline_is_spent(harness: Harness) -> None:
    """A slow hook eats the rest of the deadline: the next attempt is not sent at all."""
    clock = FakeClock()
    script = Script(harness.lib, 503, 200)
    policy = RetryPolicy(backoff=tenacity.wait_fixed(0.1), deadline=1.0)
    hook = lambda event: setattr(clock, "now", clock.now + 5)  # noqa: E731
    transport = clocked(harness, script, policy, clock, on_retry=hook)
    response = harness.send(transport, "GET", "http://test/")
    assert response.status_code == 503  # the answer the server really gave
    assert len(script.seen) == 1


def test_a_slow_hook_cannot_push_a_sleep_past_the_deadline(harness: Harness) -> None:
    """The wait fitted when it was decided; the hooks then took 0.8 s of the 1 s deadline.

    No sleep starts that would end past the deadline: the 503 is returned at once,
    and the budget gets back the token it had granted for the retry never sent.
    """
    from httpx_retrying import RetryBudget

    clock = FakeClock()
    budget = RetryBudget(clock=clock)
    script = Script(harness.lib, 503, 200)
    policy = RetryPolicy(backoff=tenacity.wait_fixed(0.5), deadline=1.0)
    hook = lambda event: setattr(clock, "now", clock.now + 0.8)  # noqa: E731
    transport = clocked(harness, script, policy, clock, budget=budget, on_retry=hook)
    response = harness.send(transport, "GET", "http://test/")
    assert response.status_code == 503
    assert clock.sleeps == []
    assert len(script.seen) == 1
    assert budget.retries_allowed == 1
    assert budget.balance > 2.0  # the grant and one request's deposit, the retry's token back


# -- 3. unknown timeouts and network errors may have reached the server --------------


@pytest.mark.parametrize("kind", ["TimeoutException", "NetworkError", "CloseError", "custom"])
def test_bare_and_unlisted_transport_errors_are_retried_when_safe(
    harness: Harness, kind: str
) -> None:
    """Bare TimeoutException/NetworkError, CloseError and a custom subclass: GET yes, POST no."""
    lib = harness.lib

    def error() -> Exception:
        if kind == "custom":
            return type("CacheTimeout", (lib.TimeoutException,), {})("cache timed out")
        return getattr(lib, kind)("failed")

    script = Script(lib, error(), 200)
    transport, _ = make(harness, script)
    assert harness.send(transport, "GET", "http://test/").status_code == 200
    script = Script(lib, error(), 200)
    transport, _ = make(harness, script)
    assert isinstance(harness.send(transport, "POST", "http://test/"), lib.TransportError)
    assert len(script.seen) == 1


def test_client_side_errors_stay_never_retried(harness: Harness) -> None:
    """LocalProtocolError, UnsupportedProtocol, ProxyError, a bare ProtocolError: raised at once."""
    lib = harness.lib
    for error in (
        lib.LocalProtocolError("x"),
        lib.UnsupportedProtocol("x"),
        lib.ProxyError("x"),
        lib.ProtocolError("x"),
    ):
        script = Script(lib, error, 200)
        transport, _ = make(harness, script)
        assert harness.send(transport, "GET", "http://test/") is error
        assert len(script.seen) == 1


# -- 5. async hooks are awaited, or refused where they cannot be --------------------


def test_async_hooks_are_awaited_by_async_clients(harness: Harness) -> None:
    """An async def on_retry runs to completion in asyncio and trio; sync clients refuse it."""
    import anyio.lowlevel

    seen: list[int] = []

    async def hook(event: RetryEvent[Any, Any]) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(event.attempt)

    if not harness.is_async:
        transport, _ = make(harness, Script(harness.lib, 503, 200), on_retry=hook)
        outcome = harness.send(transport, "GET", "http://test/")
        assert isinstance(outcome, TypeError)
        assert "async" in str(outcome)
        return
    transport, _ = make(harness, Script(harness.lib, 503, 503, 200), on_retry=[hook, seen.append])
    assert harness.send(transport, "GET", "http://test/").status_code == 200
    assert [item if isinstance(item, int) else item.attempt for item in seen] == [1, 1, 2, 2]


def test_an_async_hook_on_a_sync_only_transport_is_refused_at_construction() -> None:
    """Nothing could ever await it: a clear TypeError when the transport is built."""
    import httpx

    from httpx_retrying import RetryTransport

    async def hook(event: Any) -> None:
        pass

    class Callable:
        async def __call__(self, event: Any) -> None:
            pass

    for async_hook in (hook, Callable()):
        with pytest.raises(TypeError, match="async"):
            RetryTransport(httpx.HTTPTransport(), on_retry=async_hook)


# -- 7. a hostile Content-Length never escapes as ValueError -------------------------


@pytest.mark.parametrize("length", ["\u00b2", "9" * 5000, "-1", "1e3", " 12 "])
def test_a_hostile_content_length_is_ignored(harness: Harness, length: str) -> None:
    """'²' and 5000 digits (int() refuses both) through a transport that does not check."""
    lib = harness.lib

    class Streamed(lib.SyncByteStream, lib.AsyncByteStream):  # type: ignore[name-defined, misc]
        def __iter__(self) -> Iterator[bytes]:
            yield b"busy"

        async def __aiter__(self) -> Any:
            yield b"busy"

    def answer(request: Any) -> Any:
        raw = length.encode("latin-1")  # '²' is one latin-1 byte, as a server could send it
        return lib.Response(503, headers=[(b"content-length", raw)], stream=Streamed())

    script = Script(lib, answer(None), 200)
    transport, _ = make(harness, script)
    assert harness.send(transport, "GET", "http://test/").status_code == 200


# -- 8. backoffs see the time since the first attempt started, on the transport's clock --


def test_a_backoff_reading_the_elapsed_time_sees_the_whole_call(harness: Harness) -> None:
    """Attempts take 0.3 s each on the fake clock: the wait sees 0.3 s, then 0.3 + 1 + 0.3 s."""
    clock = FakeClock()
    seen: list[float] = []

    def elapsed_wait(retry_state: tenacity.RetryCallState) -> float:
        seen.append(retry_state.seconds_since_start or 0.0)
        return 1.0

    class Slow(Script):
        def __call__(self, request: Any) -> Any:
            clock.now += 0.3
            return super().__call__(request)

    script = Slow(harness.lib, 503, 503, 200)
    transport = clocked(harness, script, RetryPolicy(backoff=elapsed_wait), clock)
    assert harness.send(transport, "GET", "http://test/").status_code == 200
    assert seen == pytest.approx([0.3, 1.6])


# -- 4. the httpx2 flavour names its extra when httpx2 is missing ---------------------


def test_importing_the_httpx2_flavour_without_httpx2_names_the_extra() -> None:
    """0.1.0 put the guard in the docstring; the import failed with a bare ModuleNotFoundError."""
    code = 'import sys; sys.modules["httpx2"] = None; import httpx_retrying.httpx2'
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "pip install 'httpx-retrying[httpx2]'" in result.stderr


def test_flavours_export_the_same_names() -> None:
    """`httpx_retrying.httpx2` has every public name `httpx_retrying` has."""
    import httpx_retrying
    import httpx_retrying.httpx2

    assert set(httpx_retrying.__all__) == set(httpx_retrying.httpx2.__all__)


def test_repr_names_the_subclass(harness: Harness) -> None:
    """A subclass shows its own name, not RetryTransport."""

    class Mine(harness.RetryTransport):  # type: ignore[name-defined, misc]
        pass

    assert "Mine(" in repr(Mine())


def test_release_waits_for_nothing_already_in_memory(harness: Harness) -> None:
    """A discarded in-memory 503 stays readable: a hook can read the body it carried."""
    bodies: list[bytes] = []
    lib = harness.lib
    script = Script(lib, lib.Response(503, content=b"overloaded"), 200)
    transport, _ = make(
        harness, script, on_retry=lambda event: bodies.append(event.response.read())
    )
    assert harness.send(transport, "GET", "http://test/").status_code == 200
    assert bodies == [b"overloaded"]


def test_a_finished_release_keeps_a_small_body_for_the_hooks(harness: Harness) -> None:
    """Over a real server, a small 503 body is drained for keep-alive and stays readable."""
    bodies: list[bytes] = []
    with FaultServer() as server:
        from tests.servers import status

        server.script("/x", status(503, b"try later"), ok())
        transport = harness.RetryTransport(
            harness.http_transport(),
            policy=RetryPolicy(backoff=tenacity.wait_none(), preload_limit=0),
            on_retry=lambda event: bodies.append(event.response.read()),
        )
        assert harness.send(transport, "GET", f"{server.url}/x").status_code == 200
        assert server.connections == 1
    assert bodies == [b"try later"]


def test_a_foreign_backoff_is_capped_at_max_retry_after(harness: Harness) -> None:
    """A tenacity wait of an hour sleeps max_retry_after (60 s): no sleep is unbounded."""
    policy = RetryPolicy(backoff=tenacity.wait_fixed(3600))
    transport, sleeps = make(harness, Script(harness.lib, 503, 200), policy=policy)
    assert harness.send(transport, "GET", "http://test/").status_code == 200
    assert sleeps == [60.0]


def test_notes_do_not_pile_up_on_an_exception_raised_again(harness: Harness) -> None:
    """A transport raising the same instance every time: it carries one note, the latest."""
    error = harness.lib.ConnectError("refused")
    transport, _ = make(harness, Script(harness.lib, *([error] * 6)))
    first, second = harness.send_all(
        transport, [("GET", "http://t/", {}), ("GET", "http://t/", {})]
    )
    assert first is second is error
    assert len(error.__notes__) == 1


def test_a_sync_hook_returning_a_coroutine_is_closed_and_logged(
    mode_harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A plain function that returns a coroutine: a sync client closes it (no warning) and logs."""
    harness = mode_harness

    async def later(event: Any) -> None:
        pass

    transport, _ = make(harness, Script(harness.lib, 503, 200), on_retry=lambda event: later(event))
    with caplog.at_level("ERROR", logger="httpx_retrying"):
        assert harness.send(transport, "GET", "http://test/").status_code == 200
    assert ("returned an awaitable" in caplog.text) is (harness.mode == "sync")
