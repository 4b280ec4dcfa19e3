"""TokenAuth: fetched on first use, cached, refreshed once on a 401, one refresh per crowd.

Behaviour runs for both flavours and the three modes against a real server on
127.0.0.1: `TokenServer` (below) accepts one bearer token at a time, and can
hold its first refusals until a whole crowd of requests has arrived, so that
they meet their 401 together. Edge cases that involve no socket (re-entry,
cancellation, validation) drive the auth flow with a MockTransport.
"""

from __future__ import annotations

import gc
import http.server
import threading
import time
from collections.abc import Callable
from typing import Any

import anthropic
import anyio
import httpx
import httpx2
import pytest
import tenacity

import httpx_retrying
import httpx_retrying.httpx2
from tests.conftest import FLAVOURS, MODES, Harness
from tests.fake_api import ANTHROPIC_MODELS, json_ok
from tests.servers import FaultServer, iter_chunks, ok, status

FAST = httpx_retrying.RetryPolicy(backoff=tenacity.wait_none())
CROWD = 8  # requests meeting one 401 together


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # the default 5 drops a crowd's SYNs: 1 s retransmits


class TokenServer:
    """Answers 200 to `Authorization: Bearer <valid>`, 401 to anything else.

    `hold=N`: the first N refusals wait (10 s at most) until N have arrived.
    `seen` lists the Authorization header of every request, in arrival order.
    """

    def __init__(self, valid: str, *, hold: int = 0) -> None:
        self.valid = valid
        self.seen: list[str | None] = []
        self._lock = threading.Lock()
        self._held = 0
        self._barrier = threading.Barrier(hold, timeout=10) if hold else None
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 5  # an idle keep-alive connection's thread ends by itself
            disable_nagle_algorithm = True  # head and body go in two writes

            def do_GET(self) -> None:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        self.rfile.read(size + 2)
                    self.rfile.readline()  # the empty line after the last chunk
                else:
                    self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.answer(server.decide(self.headers.get("Authorization")))

            def do_POST(self) -> None:
                self.do_GET()

            def answer(self, code: int) -> None:
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok" if code == 200 else b"no")

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        # shutdown() waits for the next poll: every 5 ms, not the default 0.5 s.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.005}, daemon=True
        )

    def decide(self, authorization: str | None) -> int:
        with self._lock:
            self.seen.append(authorization)
            if authorization == f"Bearer {self.valid}":
                return 200
            held = self._barrier is not None and self._held < self._barrier.parties
            self._held += held
        if held:
            assert self._barrier is not None
            self._barrier.wait()
        return 401

    def __enter__(self) -> TokenServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class Fetcher:
    """A `fetch_token` handing out `tokens` in turn and counting its calls.

    `coroutine=True` makes it a coroutine function; `delay` makes each fetch
    take that long (sleeping in the caller's mode), so that a crowd piles up.
    """

    def __init__(self, *tokens: str, coroutine: bool = False, delay: float = 0.0) -> None:
        self.tokens = list(tokens)
        self.calls = 0
        self.delay = delay
        self.fetch: Callable[[], Any] = self._async_fetch if coroutine else self._sync_fetch

    def _next(self) -> str:
        self.calls += 1
        return self.tokens[min(self.calls, len(self.tokens)) - 1]

    def _sync_fetch(self) -> str:
        time.sleep(self.delay)
        return self._next()

    async def _async_fetch(self) -> str:
        await anyio.sleep(self.delay)
        return self._next()


def token_auth(harness: Harness, fetcher: Fetcher, **kwargs: Any) -> Any:
    return harness.package.TokenAuth(fetcher.fetch, **kwargs)


def send_all(
    harness: Harness,
    auth: Any,
    requests: list[tuple[str, str, dict[str, Any]]],
    *,
    transport: Any = None,
    concurrently: bool = False,
) -> list[Any]:
    """Send (method, url, kwargs) through one client with `auth`: in turn, or all at once.

    Concurrently means one thread per request (sync) or one task per request.
    Outcomes are responses, or the exceptions raised, in request order.
    """
    lib = harness.lib
    outcomes: list[Any] = [None] * len(requests)
    if transport is None:  # the library's own, with the shared SSL context (loading one: ~50 ms)
        transport = harness.http_transport()
    if not harness.is_async:
        with lib.Client(auth=auth, transport=transport) as client:

            def one(index: int) -> None:
                method, url, kwargs = requests[index]
                try:
                    outcomes[index] = client.request(method, url, **kwargs)
                except Exception as exc:
                    outcomes[index] = exc

            if not concurrently:
                for index in range(len(requests)):
                    one(index)
                return outcomes
            threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=20)
            assert not any(thread.is_alive() for thread in threads)
            return outcomes

    async def main() -> None:
        async with lib.AsyncClient(auth=auth, transport=transport) as client:

            async def one(index: int) -> None:
                method, url, kwargs = requests[index]
                try:
                    outcomes[index] = await client.request(method, url, **kwargs)
                except Exception as exc:
                    outcomes[index] = exc

            with anyio.fail_after(20):
                if not concurrently:
                    for index in range(len(requests)):
                        await one(index)
                    return
                async with anyio.create_task_group() as group:
                    for index in range(len(requests)):
                        group.start_soon(one, index)

    harness.run(main)
    return outcomes


def codes(outcomes: list[Any]) -> list[Any]:
    return [getattr(outcome, "status_code", outcome) for outcome in outcomes]


#: (flavour, mode, how fetch_token is written): a coroutine function only for async
#: clients (a sync client refuses one: tested below).
WRITTEN_AS = [
    pytest.param(Harness(flavour, mode), kind, id=f"{flavour}-{mode}-{kind}")
    for flavour in FLAVOURS
    for mode in MODES
    for kind in ("function", "coroutine")
    if mode != "sync" or kind == "function"
]


# -- the contract, in every flavour and mode -------------------------------------


@pytest.mark.parametrize(("harness", "written_as"), WRITTEN_AS)
def test_fetches_on_first_use_and_reuses_the_token(harness: Harness, written_as: str) -> None:
    fetcher = Fetcher("t1", coroutine=written_as == "coroutine")
    with TokenServer("t1") as server:
        outcomes = send_all(harness, token_auth(harness, fetcher), [("GET", server.url, {})] * 3)
    assert codes(outcomes) == [200, 200, 200]
    assert fetcher.calls == 1
    assert server.seen == ["Bearer t1"] * 3


@pytest.mark.parametrize(("harness", "written_as"), WRITTEN_AS)
def test_a_401_refreshes_once_and_resends(harness: Harness, written_as: str) -> None:
    fetcher = Fetcher("expired", "fresh", coroutine=written_as == "coroutine")
    with TokenServer("fresh") as server:
        outcomes = send_all(
            harness,
            token_auth(harness, fetcher),
            [("POST", server.url, {"content": b"payload"}), ("GET", server.url, {})],
        )
    assert codes(outcomes) == [200, 200]
    assert fetcher.calls == 2
    assert server.seen == ["Bearer expired", "Bearer fresh", "Bearer fresh"]
    # The 401 is in the history, as with httpx's own auth classes.
    assert [response.status_code for response in outcomes[0].history] == [401]


def test_a_second_401_is_returned(harness: Harness) -> None:
    fetcher = Fetcher("t1", "t2", "t3")
    with TokenServer("never") as server:
        outcomes = send_all(harness, token_auth(harness, fetcher), [("GET", server.url, {})])
    assert codes(outcomes) == [401]
    assert fetcher.calls == 2
    assert server.seen == ["Bearer t1", "Bearer t2"]


def test_a_streamed_body_is_not_resent_but_the_token_is_refreshed(harness: Harness) -> None:
    """No buffering just in case: the 401 comes back, and the next request has the new token."""
    fetcher = Fetcher("expired", "fresh")
    if harness.is_async:

        async def chunks() -> Any:
            yield b"pay"
            yield b"load"

        body: Any = chunks()
    else:
        body = iter_chunks(b"pay", b"load")
    with TokenServer("fresh") as server:
        outcomes = send_all(
            harness,
            token_auth(harness, fetcher),
            [("POST", server.url, {"content": body}), ("GET", server.url, {})],
        )
    assert codes(outcomes) == [401, 200]
    assert fetcher.calls == 2
    assert server.seen == ["Bearer expired", "Bearer fresh"]


def test_the_resent_request_goes_through_the_retry_transport(harness: Harness) -> None:
    """401, then the refreshed request meets a 503: the transport retries it like any other."""
    fetcher = Fetcher("expired", "fresh")
    with FaultServer() as server:
        server.script("/a", status(401), status(503), ok(b"done"))
        transport = harness.RetryTransport(harness.http_transport(), policy=FAST, budget=None)
        outcomes = send_all(
            harness,
            token_auth(harness, fetcher),
            [("GET", f"{server.url}/a", {})],
            transport=transport,
        )
        seen = [request.headers.get("authorization") for request in server.received]
    assert codes(outcomes) == [200]
    assert outcomes[0].content == b"done"
    assert seen == ["Bearer expired", "Bearer fresh", "Bearer fresh"]
    assert fetcher.calls == 2


def test_a_crowd_meeting_a_401_shares_one_refresh(harness: Harness) -> None:
    """N threads or tasks get their 401 at the same moment: fetch_token runs once more."""
    fetcher = Fetcher("expired", "fresh", coroutine=harness.is_async, delay=0.2)
    with TokenServer("fresh", hold=CROWD) as server:
        auth = token_auth(harness, fetcher)
        outcomes = send_all(harness, auth, [("GET", server.url, {})] * CROWD, concurrently=True)
    assert codes(outcomes) == [200] * CROWD
    assert fetcher.calls == 2  # the first use (shared too), then one refresh
    assert sorted(server.seen) == ["Bearer expired"] * CROWD + ["Bearer fresh"] * CROWD


def test_exceptions_from_fetch_token_propagate(harness: Harness) -> None:
    class DownError(Exception):
        pass

    def fetch() -> str:
        raise DownError("token endpoint down")

    with TokenServer("t") as server:
        (outcome,) = send_all(harness, harness.package.TokenAuth(fetch), [("GET", server.url, {})])
    assert isinstance(outcome, DownError)
    assert server.seen == []  # nothing was sent without a token


def test_a_failed_refresh_fails_the_whole_crowd_once(harness: Harness) -> None:
    """The requests waiting for a fetch that fails raise its error; the endpoint is asked once."""

    class DownError(Exception):
        pass

    calls = 0

    def fetch() -> str:
        nonlocal calls
        calls += 1
        time.sleep(0.2)  # the other threads pile up behind it
        raise DownError("token endpoint down")

    async def async_fetch() -> str:
        nonlocal calls
        calls += 1
        await anyio.sleep(0.2)  # the other tasks pile up behind it
        raise DownError("token endpoint down")

    with TokenServer("t") as server:
        outcomes = send_all(
            harness,
            harness.package.TokenAuth(async_fetch if harness.is_async else fetch),
            [("GET", server.url, {})] * CROWD,
            concurrently=True,
        )
    assert all(isinstance(outcome, DownError) for outcome in outcomes)
    assert calls == 1
    assert server.seen == []


class _Awaitable:
    def __await__(self) -> Any:
        yield from ()
        return "t"


@pytest.mark.parametrize("token", [b"bytes", None, 42])
def test_a_token_that_is_not_a_str_is_a_type_error(harness: Harness, token: Any) -> None:
    with TokenServer("t") as server:
        (outcome,) = send_all(
            harness, harness.package.TokenAuth(lambda: token), [("GET", server.url, {})]
        )
    assert isinstance(outcome, TypeError)
    assert "must return the token as a str" in str(outcome)
    assert server.seen == []


@pytest.mark.parametrize("flavour", ["httpx", "httpx2"])
def test_a_coroutine_fetch_token_in_a_sync_client_is_a_type_error(flavour: str) -> None:
    """Refused with a clear message, and the coroutine is closed (no 'never awaited')."""
    harness = Harness(flavour, "sync")

    async def fetch() -> str:
        return "t"

    with TokenServer("t") as server:
        for fetch_token in (fetch, _Awaitable):  # a coroutine, or any other awaitable
            (outcome,) = send_all(
                harness, harness.package.TokenAuth(fetch_token), [("GET", server.url, {})]
            )
            gc.collect()  # a coroutine left unclosed would warn now, and warnings are errors
            assert isinstance(outcome, TypeError)
            assert "needs an AsyncClient" in str(outcome)
        assert server.seen == []


# -- single flight across threads and loops, and its failure modes ---------------


def _mock(lib: Any, valid: str) -> Any:
    def handler(request: Any) -> Any:
        ok = request.headers.get("authorization") == f"Bearer {valid}"
        return lib.Response(200 if ok else 401)

    return lib.MockTransport(handler)


def test_a_request_refused_a_replaced_token_resends_without_fetching() -> None:
    """Sent with t1, refused after another request already moved to t2: resent with t2."""
    fetcher = Fetcher("t1", "t2")
    auth = httpx_retrying.TokenAuth(fetcher.fetch)
    first = auth.sync_auth_flow(httpx.Request("GET", "http://test/"))
    second = auth.sync_auth_flow(httpx.Request("GET", "http://test/"))
    assert next(first).headers["authorization"] == "Bearer t1"
    assert next(second).headers["authorization"] == "Bearer t1"
    assert first.send(httpx.Response(401)).headers["authorization"] == "Bearer t2"
    assert second.send(httpx.Response(401)).headers["authorization"] == "Bearer t2"
    assert fetcher.calls == 2
    for flow in (first, second):
        with pytest.raises(StopIteration):
            flow.send(httpx.Response(200))


def _waiting(auth: Any) -> int:
    """How many async requests wait on the fetch in flight (test-only peek)."""
    flight = auth._tokens._flight
    return 0 if flight is None else len(flight.wakers)


async def until(condition: Callable[[], bool]) -> None:
    """Poll what another thread or task makes true (bounded by the caller's `fail_after`)."""
    while not condition():  # noqa: ASYNC110 - no event to share: it is the code under test
        await anyio.sleep(0.01)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_requests_share_a_refresh_led_by_a_thread(backend: str) -> None:
    """A sync client's thread is refreshing; an async request arriving waits for it, woken by it."""
    release = threading.Event()
    calls: list[str] = []

    def fetch() -> str:
        calls.append(threading.current_thread().name)
        if len(calls) == 2:  # the refresh: held until the async request waits for it
            assert release.wait(timeout=10)
        return f"t{len(calls)}"

    auth = httpx_retrying.TokenAuth(fetch)
    with httpx.Client(auth=auth, transport=_mock(httpx, "t1")) as client:
        assert client.get("http://test/").status_code == 200  # t1 cached
    outcomes: list[int] = []

    def sync_refresh() -> None:
        with httpx.Client(auth=auth, transport=_mock(httpx, "t2")) as client:
            outcomes.append(client.get("http://test/").status_code)

    async def main() -> None:
        thread = threading.Thread(target=sync_refresh, name="leader")
        thread.start()
        with anyio.fail_after(10):
            await until(lambda: len(calls) == 2)  # the thread is inside the refresh
            async with (
                httpx.AsyncClient(auth=auth, transport=_mock(httpx, "t2")) as client,
                anyio.create_task_group() as group,
            ):
                group.start_soon(_get, client, outcomes)
                await until(lambda: _waiting(auth) == 1)
                release.set()
        await anyio.to_thread.run_sync(thread.join, 10)

    anyio.run(main, backend=backend)
    assert sorted(outcomes) == [200, 200]
    assert calls == ["MainThread", "leader"]  # no third fetch: the async request joined


async def _get(client: Any, outcomes: list[int]) -> None:
    outcomes.append((await client.get("http://test/")).status_code)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_cancelled_leader_hands_the_fetch_to_a_waiter(backend: str) -> None:
    """The task fetching is cancelled: a task waiting for it fetches instead, nobody hangs."""
    calls = 0

    async def main() -> list[int]:
        started = anyio.Event()
        outcomes: list[int] = []

        async def fetch() -> str:
            nonlocal calls
            calls += 1
            if calls == 1:
                started.set()
                await anyio.sleep(30)  # cancelled long before
            return "t"

        auth = httpx_retrying.TokenAuth(fetch)
        async with httpx.AsyncClient(auth=auth, transport=_mock(httpx, "t")) as client:
            with anyio.fail_after(10):
                async with anyio.create_task_group() as group:
                    leader = anyio.CancelScope()

                    async def lead() -> None:
                        with leader:
                            await _get(client, outcomes)

                    group.start_soon(lead)
                    await started.wait()
                    group.start_soon(_get, client, outcomes)
                    await until(lambda: _waiting(auth) == 1)
                    leader.cancel()
        return outcomes

    assert anyio.run(main, backend=backend) == [200]
    assert calls == 2


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_cancelled_waiter_leaves_the_fetch_alone(backend: str) -> None:
    """A task waiting for the fetch is cancelled: it stops waiting, the fetch goes on."""

    async def main() -> list[int]:
        release = anyio.Event()
        outcomes: list[int] = []

        async def fetch() -> str:
            await release.wait()
            return "t"

        auth = httpx_retrying.TokenAuth(fetch)
        async with httpx.AsyncClient(auth=auth, transport=_mock(httpx, "t")) as client:
            with anyio.fail_after(10):
                async with anyio.create_task_group() as group:
                    group.start_soon(_get, client, outcomes)  # leads: fetches
                    waiter = anyio.CancelScope()

                    async def wait() -> None:
                        with waiter:
                            await _get(client, outcomes)

                    group.start_soon(wait)
                    await until(lambda: _waiting(auth) == 1)
                    waiter.cancel()
                    await until(lambda: _waiting(auth) == 0)  # it left the flight
                    release.set()
        return outcomes

    assert anyio.run(main, backend=backend) == [200]


def test_a_thread_waiting_for_an_interrupted_fetch_fetches_itself() -> None:
    """The fetching thread is interrupted (a BaseException): a waiting thread fetches instead."""

    class InterruptedError_(BaseException):  # noqa: N801 - named after what it stands for
        pass

    entered, go = threading.Event(), threading.Event()
    calls = 0

    def fetch() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            entered.set()
            assert go.wait(timeout=10)
            raise InterruptedError_
        return "t"

    auth = httpx_retrying.TokenAuth(fetch)
    outcomes: list[Any] = []

    def get() -> None:
        with httpx.Client(auth=auth, transport=_mock(httpx, "t")) as client:
            try:
                outcomes.append(client.get("http://test/").status_code)
            except BaseException as exc:  # the interrupted leader
                outcomes.append(type(exc).__name__)

    leader = threading.Thread(target=get)
    leader.start()
    assert entered.wait(timeout=10)
    follower = threading.Thread(target=get)
    follower.start()
    time.sleep(0.2)  # the follower joins the flight (a sync wait cannot be observed)
    go.set()
    for thread in (leader, follower):
        thread.join(timeout=10)
    assert sorted(map(str, outcomes)) == ["200", "InterruptedError_"]
    assert calls == 2


def test_fetch_token_using_its_own_auth_is_an_error_not_a_deadlock() -> None:
    auth: Any = None

    def fetch() -> str:
        with httpx.Client(auth=auth, transport=_mock(httpx, "t")) as inner:
            return inner.get("http://test/token").text

    auth = httpx_retrying.TokenAuth(fetch)
    with (
        httpx.Client(auth=auth, transport=_mock(httpx, "t")) as client,
        pytest.raises(RuntimeError, match="fetch_token sent a request through the TokenAuth"),
    ):
        client.get("http://test/")


def test_a_sync_request_inside_the_fetching_loop_is_an_error_not_a_deadlock() -> None:
    """An async task is fetching; blocking the same loop's thread on it could never end."""

    async def main() -> None:
        entered = anyio.Event()
        release = anyio.Event()

        async def fetch() -> str:
            entered.set()
            await release.wait()
            return "t"

        auth = httpx_retrying.TokenAuth(fetch)
        async with (
            anyio.create_task_group() as group,
            httpx.AsyncClient(auth=auth, transport=_mock(httpx, "t")) as client,
        ):
            group.start_soon(client.get, "http://test/")
            await entered.wait()
            with (
                httpx.Client(auth=auth, transport=_mock(httpx, "t")) as sync_client,
                pytest.raises(RuntimeError, match="block that event loop forever"),
            ):
                sync_client.get("http://test/")  # noqa: ASYNC212 - the mistake under test
            release.set()

    anyio.run(main)


# -- construction, flavours and SDKs ----------------------------------------------


def test_construction_is_checked_and_the_repr_hides_the_token() -> None:
    with pytest.raises(TypeError, match="fetch_token must be callable"):
        httpx_retrying.TokenAuth("not-a-function")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="scheme must be a str"):
        httpx_retrying.TokenAuth(lambda: "t", scheme=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scheme must be one word"):
        httpx_retrying.TokenAuth(lambda: "t", scheme="Bearer x")
    auth = httpx_retrying.TokenAuth(lambda: "S3cret")
    with httpx.Client(auth=auth, transport=_mock(httpx, "S3cret")) as client:
        assert client.get("http://test/").status_code == 200
    assert "S3cret" not in repr(auth)
    assert repr(auth).startswith("TokenAuth(<function")


@pytest.mark.parametrize("flavour", ["httpx", "httpx2"])
def test_scheme_names_the_authorization_word(flavour: str) -> None:
    lib = httpx if flavour == "httpx" else httpx2
    package: Any = httpx_retrying if flavour == "httpx" else httpx_retrying.httpx2
    for scheme, header in (("Token", "Token abc"), ("", "abc")):
        request = lib.Request("GET", "http://test/")
        flow = package.TokenAuth(lambda: "abc", scheme=scheme).sync_auth_flow(request)
        assert next(flow).headers["authorization"] == header


def test_each_flavour_is_accepted_by_its_own_client_only() -> None:
    """httpx2.Client takes only httpx2.Auth; anthropic refuses any class from `httpx`."""
    flavour2 = httpx_retrying.httpx2.TokenAuth
    assert issubclass(flavour2, httpx2.Auth)
    assert "httpx" not in {klass.__module__.partition(".")[0] for klass in flavour2.__mro__}
    assert issubclass(httpx_retrying.TokenAuth, httpx.Auth)
    with pytest.raises(TypeError, match='Invalid "auth" argument'):
        httpx2.Client(auth=httpx_retrying.TokenAuth(lambda: "t"))
    with pytest.raises(TypeError, match='Invalid "auth" argument'):
        httpx.Client(auth=flavour2(lambda: "t"))


def test_under_the_anthropic_sdk_a_401_refreshes_and_the_call_succeeds() -> None:
    fetcher = Fetcher("expired", "fresh")
    with FaultServer() as server:
        server.script("/v1/models", status(401), json_ok(ANTHROPIC_MODELS))
        transport = httpx_retrying.httpx2.RetryTransport(httpx2.HTTPTransport(), policy=FAST)
        http_client = anthropic.DefaultHttpxClient(
            auth=httpx_retrying.httpx2.TokenAuth(fetcher.fetch), transport=transport
        )
        with (
            http_client,
            anthropic.Anthropic(
                api_key="sk-test", base_url=server.url, http_client=http_client, max_retries=0
            ) as client,
        ):
            assert client.models.list().data[0].id == "m"
        seen = [request.headers.get("authorization") for request in server.received]
    assert seen == ["Bearer expired", "Bearer fresh"]
    assert fetcher.calls == 2
