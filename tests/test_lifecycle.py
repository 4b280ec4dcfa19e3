"""Construction, modes, lifecycle forwarding, packaging, and the optional integrations."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from typing import Any

import httpx
import httpx2
import pytest

import httpx_retrying
import httpx_retrying.httpx2
from httpx_retrying import RetryBudget, RetryPolicy, RetryTransport
from tests.conftest import Harness


class Spy:
    """Records lifecycle calls; sync, async, or both."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def handle_request(self, request: Any) -> Any:
        self.calls.append("handle_request")
        return httpx.Response(200)

    async def handle_async_request(self, request: Any) -> Any:
        self.calls.append("handle_async_request")
        return httpx.Response(200)

    def close(self) -> None:
        self.calls.append("close")

    async def aclose(self) -> None:
        self.calls.append("aclose")

    def __enter__(self) -> Spy:
        self.calls.append("enter")
        return self

    def __exit__(self, *args: object) -> None:
        self.calls.append("exit")

    async def __aenter__(self) -> Spy:
        self.calls.append("aenter")
        return self

    async def __aexit__(self, *args: object) -> None:
        self.calls.append("aexit")


class SyncSpy(Spy, httpx.BaseTransport):
    pass


class AsyncSpy(Spy, httpx.AsyncBaseTransport):
    pass


class BothSpy(Spy, httpx.BaseTransport, httpx.AsyncBaseTransport):
    pass


def test_sync_lifecycle_is_forwarded_once() -> None:
    """Client with-block: enter, request, exit; a second close is harmless."""
    spy = SyncSpy()
    transport = RetryTransport(spy)
    with httpx.Client(transport=transport) as client:
        client.get("http://test/")
    transport.close()
    assert spy.calls == ["enter", "handle_request", "exit"]


def test_async_lifecycle_is_forwarded_once() -> None:
    """AsyncClient async-with: aenter, request, aexit; aclose twice is harmless."""
    spy = AsyncSpy()
    transport = RetryTransport(spy)

    async def main() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get("http://test/")
        await transport.aclose()

    Harness("httpx", "asyncio").run(main)
    assert spy.calls == ["aenter", "handle_async_request", "aexit"]


def test_one_object_serving_both_modes() -> None:
    """A dual transport (like MockTransport) serves both; close and aclose each reach it."""
    spy = BothSpy()
    transport = RetryTransport(spy)
    assert transport.handle_request(httpx.Request("GET", "http://t/")).status_code == 200

    async def main() -> None:
        response = await transport.handle_async_request(httpx.Request("GET", "http://t/"))
        assert response.status_code == 200
        await transport.aclose()
        await transport.aclose()

    Harness("httpx", "trio").run(main)
    transport.close()
    transport.close()
    assert spy.calls == ["handle_request", "handle_async_request", "aclose", "close"]


def test_wrong_mode_says_what_to_pass() -> None:
    """A sync transport under AsyncClient (and vice versa) explains the fix."""
    sync_only = RetryTransport(SyncSpy())
    with pytest.raises(TypeError, match=r"no async interface.*httpx\.AsyncHTTPTransport\(\)"):
        Harness("httpx", "asyncio").run(
            lambda: sync_only.handle_async_request(httpx.Request("GET", "http://t/"))
        )
    async_only = RetryTransport(AsyncSpy())
    with pytest.raises(TypeError, match=r"no sync interface.*httpx\.HTTPTransport\(\)"):
        async_only.handle_request(httpx.Request("GET", "http://t/"))


def test_default_transports_are_made_lazily_and_closed() -> None:
    """No transport: nothing built until used; closing an unused one is a no-op."""
    transport = RetryTransport()
    assert transport._sync is None
    assert transport._async is None
    transport.close()
    with transport:
        pass

    async def main() -> None:
        async with transport:
            pass
        await transport.aclose()

    Harness("httpx", "asyncio").run(main)
    assert transport._sync is None  # closing built nothing
    assert transport._async is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"transport": httpx2.HTTPTransport()}, "httpx_retrying.httpx2.RetryTransport"),
        ({"transport": object()}, "wraps httpx transports"),
        ({"policy": {"attempts": 2}}, "policy must be a RetryPolicy"),
        ({"budget": 0.1}, "budget must be a RetryBudget"),
        ({"on_retry": [print, "not callable"]}, "on_retry"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    """Clear TypeErrors at construction, naming what to pass instead."""
    inner = kwargs.get("transport")
    try:
        with pytest.raises(TypeError, match=message):
            RetryTransport(**kwargs)
    finally:
        if isinstance(inner, httpx2.HTTPTransport):
            inner.close()


def test_properties_and_repr() -> None:
    """The policy and budget are readable; a shared budget is shared, not copied."""
    budget = RetryBudget()
    policy = RetryPolicy(attempts=2)
    first = RetryTransport(httpx.MockTransport(lambda r: httpx.Response(200)), budget=budget)
    second = RetryTransport(policy=policy, budget=budget)
    assert first.budget is budget
    assert second.budget is budget
    assert second.policy is policy
    assert first.policy == RetryPolicy()
    assert RetryTransport().budget is not RetryTransport().budget
    assert repr(second).startswith("httpx_retrying.RetryTransport(None, policy=RetryPolicy(")


def _top_level_packages(cls: type) -> set[str]:
    return {getattr(base, "__module__", "").partition(".")[0] for base in cls.__mro__}


def test_httpx2_flavour_has_no_httpx_class_in_its_hierarchy() -> None:
    """anthropic rejects any class whose top-level module is httpx; ours passes that check."""
    cls = httpx_retrying.httpx2.RetryTransport
    assert "httpx" not in _top_level_packages(cls)
    assert issubclass(cls, httpx2.BaseTransport)
    assert issubclass(cls, httpx2.AsyncBaseTransport)
    assert not issubclass(cls, httpx.BaseTransport)
    assert httpx_retrying.httpx2.RetryPolicy is RetryPolicy
    # The httpx flavour has httpx's base classes, which is what anthropic rejects.
    assert "httpx" in _top_level_packages(httpx_retrying.RetryTransport)


def run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.strip()


def test_importing_the_httpx_flavour_imports_neither_httpx2_nor_tenacity() -> None:
    """httpx2 only for its flavour; tenacity only on the first backoff (it costs ~8 ms);
    asyncio (~20 ms, which `import httpx` does not load) only when a token is awaited."""
    out = run_python(
        "import sys, httpx_retrying; "
        "print(*(name in sys.modules for name in ('httpx2', 'tenacity', 'anyio', 'asyncio')))"
    )
    assert out == "False False False False"


def test_public_names_and_version() -> None:
    """A short, sorted public surface; the version comes from the installed metadata."""
    assert httpx_retrying.__all__ == sorted(httpx_retrying.__all__)
    for name in httpx_retrying.__all__:
        assert getattr(httpx_retrying, name) is not None
    assert isinstance(httpx_retrying.__version__, str)
    with pytest.raises(AttributeError):
        _ = httpx_retrying.no_such_name  # type: ignore[attr-defined]


def test_one_transport_serves_many_threads() -> None:
    """32 threads share a transport; every request is answered, no state crosses over."""
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        key = request.url.path
        with lock:
            counts[key] = counts.get(key, 0) + 1
            seen = counts[key]
        return httpx.Response(503 if seen % 2 else 200)

    transport = RetryTransport(
        httpx.MockTransport(handler),
        policy=RetryPolicy(attempts=3, backoff=lambda state: 0.0),
        budget=None,
    )
    results: list[int] = []

    def worker(index: int) -> None:
        with httpx.Client(transport=transport) as client:
            for step in range(50):
                response = client.get(f"http://test/{index}/{step}")
                with lock:
                    results.append(response.status_code)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [200] * (32 * 50)
    assert sum(counts.values()) == 2 * 32 * 50


def test_opentelemetry_records_each_retry_on_the_current_span() -> None:
    """With opentelemetry installed, each retry is an event on the active span."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    answers = iter([503, 200])
    transport = RetryTransport(
        httpx.MockTransport(lambda r: httpx.Response(next(answers))),
        policy=RetryPolicy(backoff=lambda state: 0.0),
        sleep=lambda seconds: None,
    )
    with (
        provider.get_tracer("test").start_as_current_span("call"),
        httpx.Client(transport=transport) as client,
    ):
        assert client.get("http://test/").status_code == 200
    (span,) = exporter.get_finished_spans()
    (event,) = span.events
    assert event.name == "httpx_retrying.retry"
    assert event.attributes is not None
    assert dict(event.attributes) == {
        "http.request.resend_count": 1,
        "httpx_retrying.delay": 0.0,
        "httpx_retrying.reason": "status 503",
    }


def test_certificate_failures_are_not_retried() -> None:
    """A ConnectError caused by a failed certificate check will fail the same way again."""
    import ssl

    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        try:
            raise ssl.SSLCertVerificationError("certificate verify failed")
        except ssl.SSLCertVerificationError as cause:
            raise httpx.ConnectError("verify failed") from cause

    transport = RetryTransport(httpx.MockTransport(handler), budget=None)
    with pytest.raises(httpx.ConnectError), httpx.Client(transport=transport) as client:
        client.get("https://test/")
    assert len(calls) == 1


def test_the_demo_runs_and_shows_retries_winning(capsys: pytest.CaptureFixture[str]) -> None:
    """The demo with shorter waits: 1 of 7 plain successes, 6 of 7 with retries, as asked."""
    from httpx_retrying import demo

    # Waits that must happen are short; reads that must succeed keep a generous timeout.
    timings = demo.Timings(
        busy_retry_after=0.05,
        rate_limited_after_ms=20,
        slow_answer=1.0,
        read_timeout=0.3,
        backoff_initial=0.01,
        backoff_cap=0.02,
    )
    demo.main(timings)
    out = capsys.readouterr().out
    lines: dict[str, str] = {}  # the table's row for each path (not the legend's)
    for line in out.splitlines():
        if line.strip():
            lines.setdefault(line.split()[0], line)
    totals = lines["succeeded"].split()  # succeeded 1/7 in 0.56 s 6/7 in 0.80 s
    assert (totals[1], totals[5]) == ("1/7", "6/7")
    busy_waits = [
        float(wait) for wait in re.findall(r"status 503 -> waited ([\d.]+) s", lines["/busy"])
    ]
    assert len(busy_waits) == 2
    assert all(0.05 <= wait <= 0.08 for wait in busy_waits)  # Retry-After, spread by up to 50 %
    assert "status 429 -> waited 0.0" in lines["/rate-limited"]
    assert "ReadTimeout" in lines["/slow"]
    assert lines["/cut"].split()[1] == "RemoteProtocolError"  # the plain client's
    assert "RemoteProtocolError at body byte 17 of 35" in lines["/cut"]  # retried, read whole
    assert "3 attempt(s)" in lines["/down"]
    assert "503 + Retry-After: 0.05, twice, then 200" in out


def test_the_demo_keeps_its_slow_default_timings() -> None:
    """Without arguments the demo waits long enough to watch, as its table says."""
    from httpx_retrying import demo

    described = demo.scenarios(demo.DEFAULT_TIMINGS)
    assert described["/busy"] == "503 + Retry-After: 1, twice, then 200"
    assert described["/rate-limited"] == "429 + retry-after-ms: 300, then 200"
    assert described["/slow"] == "answers after 1.5 s (client timeout 0.5 s), then at once"


@pytest.mark.parametrize("prepares", [False, True], ids=["plain", "deadline"])
@pytest.mark.parametrize(
    ("transport_module", "client_module", "fix"),
    [
        ("httpx_retrying", "httpx2", "httpx_retrying.httpx2.RetryTransport"),
        ("httpx_retrying.httpx2", "httpx", "httpx_retrying.RetryTransport"),
    ],
)
def test_the_wrong_flavour_is_named_at_the_first_request(
    transport_module: str, client_module: str, fix: str, prepares: bool
) -> None:
    """An httpx RetryTransport under an httpx2 client (or the reverse) says which one to use,
    also when the policy prepares the first attempt's request (a deadline)."""
    import importlib

    package = importlib.import_module(transport_module)
    lib = importlib.import_module(client_module)
    policy = package.RetryPolicy(deadline=5.0) if prepares else None
    transport = package.RetryTransport(policy=policy)
    with pytest.raises(TypeError, match=fix.replace(".", r"\.")):
        transport.handle_request(lib.Request("GET", "http://test/"))
    with pytest.raises(TypeError, match="serves"):
        Harness("httpx", "asyncio").run(
            lambda: transport.handle_async_request(lib.Request("GET", "http://test/"))
        )
