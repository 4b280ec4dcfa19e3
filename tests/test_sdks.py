"""The real openai, anthropic and replicate SDKs on top of RetryTransport, against a local fake API.

Each test points an SDK at a `FaultServer` on 127.0.0.1 that fails a scripted
number of times and then answers with JSON the SDK can parse. The SDK's own
retries are off (`max_retries=0`) unless a test is about them. Our policy does
not back off (`tenacity.wait_none()`), and the servers send `Retry-After: 0`,
so no test sleeps for long. The last tests run the examples of docs/sdks.md.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import anyio
import httpx
import httpx2
import openai
import pytest
import replicate
import replicate.exceptions
import tenacity

import httpx_retrying
import httpx_retrying.httpx2
from tests.conftest import SSL_CONTEXT, settled_count
from tests.fake_api import (
    ANTHROPIC_MESSAGE,
    ANTHROPIC_MODELS,
    OPENAI_EMBEDDINGS,
    OPENAI_MODELS,
    REPLICATE_MODEL,
    REPLICATE_MODELS,
    busy,
    json_ok,
)
from tests.markdown_blocks import SDK_PAGE, Block, python_blocks
from tests.servers import FaultServer, refused_url

FAST = httpx_retrying.RetryPolicy(backoff=tenacity.wait_none())
KEY = "sk-test"
#: Seconds: the SDK's timeout when the server stays silent (it never answers, so
#: a short timeout is as sure to expire as a long one). Answers get 5 s.
SILENT_TIMEOUT = 0.02
NOTE = "httpx_retrying: gave up after 3 attempt(s)"


# -- building clients ---------------------------------------------------------


# kind -> (client class, RetryTransport flavour, inner transport class)
CLIENTS: dict[str, tuple[Any, Any, Any]] = {
    "httpx.Client": (httpx.Client, httpx_retrying.RetryTransport, httpx.HTTPTransport),
    "httpx.AsyncClient": (
        httpx.AsyncClient,
        httpx_retrying.RetryTransport,
        httpx.AsyncHTTPTransport,
    ),
    "httpx2.Client": (httpx2.Client, httpx_retrying.httpx2.RetryTransport, httpx2.HTTPTransport),
    "httpx2.AsyncClient": (
        httpx2.AsyncClient,
        httpx_retrying.httpx2.RetryTransport,
        httpx2.AsyncHTTPTransport,
    ),
    "openai.DefaultHttpxClient": (
        openai.DefaultHttpxClient,
        httpx_retrying.httpx2.RetryTransport,
        httpx2.HTTPTransport,
    ),
    "anthropic.DefaultHttpxClient": (
        anthropic.DefaultHttpxClient,
        httpx_retrying.httpx2.RetryTransport,
        httpx2.HTTPTransport,
    ),
    "anthropic.DefaultAsyncHttpxClient": (
        anthropic.DefaultAsyncHttpxClient,
        httpx_retrying.httpx2.RetryTransport,
        httpx2.AsyncHTTPTransport,
    ),
}


def make_http_client(kind: str, policy: httpx_retrying.RetryPolicy = FAST, **options: Any) -> Any:
    """An HTTP client of `kind` (sync or async) whose transport is the matching RetryTransport."""
    client, retry_transport, inner = CLIENTS[kind]
    return client(transport=retry_transport(inner(verify=SSL_CONTEXT), policy=policy, **options))


OPENAI_KINDS = ("httpx.Client", "httpx2.Client", "openai.DefaultHttpxClient")
ANTHROPIC_KINDS = ("httpx2.Client", "anthropic.DefaultHttpxClient")
#: (SDK module, client kind): every sync combination under test.
SYNC_CLIENTS = [(openai, kind) for kind in OPENAI_KINDS] + [
    (anthropic, kind) for kind in ANTHROPIC_KINDS
]
SYNC_IDS = [f"{sdk.__name__}-{kind}" for sdk, kind in SYNC_CLIENTS]


@contextlib.contextmanager
def sdk_client(
    sdk: Any,
    base: str,
    kind: str,
    *,
    policy: httpx_retrying.RetryPolicy = FAST,
    max_retries: int = 0,
    timeout: float = 5.0,
    **options: Any,
) -> Iterator[Any]:
    """An `openai.OpenAI` or `anthropic.Anthropic` on `base`; closing it closes the HTTP client."""
    http_client = make_http_client(kind, policy, **options)
    if sdk is openai:
        client: Any = openai.OpenAI(
            api_key=KEY,
            base_url=f"{base}/v1",
            http_client=http_client,
            max_retries=max_retries,
            timeout=timeout,
        )
    else:
        client = anthropic.Anthropic(
            api_key=KEY,
            base_url=base,
            http_client=http_client,
            max_retries=max_retries,
            timeout=timeout,
        )
    with client:
        yield client
    assert http_client.is_closed


def models_body(sdk: Any) -> bytes:
    return OPENAI_MODELS if sdk is openai else ANTHROPIC_MODELS


def post(sdk: Any, client: Any) -> Any:
    """One non-idempotent call: openai embeddings, anthropic messages."""
    if sdk is openai:
        return client.embeddings.create(model="m", input="x", encoding_format="float")
    return client.messages.create(
        model="m", max_tokens=1, messages=[{"role": "user", "content": "hi"}]
    )


def post_path_and_body(sdk: Any) -> tuple[str, bytes]:
    if sdk is openai:
        return "/v1/embeddings", OPENAI_EMBEDDINGS
    return "/v1/messages", ANTHROPIC_MESSAGE


def library_of(kind: str) -> Any:
    return httpx if kind.startswith("httpx.") else httpx2


# -- openai and anthropic, sync -------------------------------------------------


@pytest.mark.parametrize(("sdk", "kind"), SYNC_CLIENTS, ids=SYNC_IDS)
@pytest.mark.parametrize("code", [503, 429])
def test_get_succeeds_after_failures(sdk: Any, kind: str, code: int, server: FaultServer) -> None:
    server.script("/v1/models", *busy(code, 2), json_ok(models_body(sdk)))
    with sdk_client(sdk, server.url, kind) as client:
        raw = client.models.with_raw_response.list()
        page = raw.parse()
    assert [model.id for model in page.data] == ["m"]
    assert server.count("/v1/models") == 3
    # The SDK's response object is ours: it carries the retry history.
    history = raw.http_response.extensions["retry_history"]
    assert [event.reason for event in history] == [f"status {code}"] * 2


@pytest.mark.parametrize(("sdk", "kind"), SYNC_CLIENTS, ids=SYNC_IDS)
def test_retry_after_is_honoured(sdk: Any, kind: str, server: FaultServer) -> None:
    server.script("/v1/models", *busy(503, 2, retry_after_ms="20"), json_ok(models_body(sdk)))
    with sdk_client(sdk, server.url, kind) as client:
        started = time.monotonic()
        client.models.list()
        elapsed = time.monotonic() - started
    assert server.count("/v1/models") == 3
    assert 0.04 <= elapsed < 2.0  # two waits of 20..30 ms (not 20 s)


#: fault: (how to script GET /v1/models to fail 3 times, the SDK's exception class name).
EXHAUSTION: dict[str, tuple[Callable[[FaultServer], None], str]] = {
    "503": (lambda server: server.script("/v1/models", *busy(503, 3)), "InternalServerError"),
    "429": (lambda server: server.script("/v1/models", *busy(429, 3)), "RateLimitError"),
    "silent": (lambda server: server.script("/v1/models", *["silent"] * 3), "APITimeoutError"),
}


@pytest.mark.parametrize(("sdk", "kind"), SYNC_CLIENTS, ids=SYNC_IDS)
@pytest.mark.parametrize("fault", list(EXHAUSTION))
def test_exhaustion_raises_the_sdk_error(
    sdk: Any, kind: str, fault: str, server: FaultServer
) -> None:
    script, error_name = EXHAUSTION[fault]
    script(server)
    timeout = SILENT_TIMEOUT if fault == "silent" else 5.0
    with (
        sdk_client(sdk, server.url, kind, timeout=timeout) as client,
        pytest.raises(getattr(sdk, error_name)) as caught,
    ):
        client.models.list()
    assert settled_count(server, "/v1/models", 3) == 3
    error = caught.value
    if fault == "silent":
        # The SDK wraps our re-raised ReadTimeout, which tells the story in a note.
        assert isinstance(error.__cause__, library_of(kind).ReadTimeout)
        assert any(NOTE in note for note in error.__cause__.__notes__)
    else:
        assert error.status_code == int(fault)
        assert len(error.response.extensions["retry_history"]) == 2


@pytest.mark.parametrize(("sdk", "kind"), SYNC_CLIENTS, ids=SYNC_IDS)
def test_refused_connection_raises_api_connection_error(sdk: Any, kind: str) -> None:
    with (
        sdk_client(sdk, refused_url(), kind) as client,
        pytest.raises(sdk.APIConnectionError) as caught,
    ):
        client.models.list()
    cause = caught.value.__cause__
    assert isinstance(cause, library_of(kind).ConnectError)
    assert any(NOTE in note for note in cause.__notes__)


@pytest.mark.parametrize(("sdk", "kind"), SYNC_CLIENTS, ids=SYNC_IDS)
def test_post_is_not_retried_by_default(sdk: Any, kind: str, server: FaultServer) -> None:
    path, body = post_path_and_body(sdk)
    server.script(path, *busy(503, 1), json_ok(body))
    with (
        sdk_client(sdk, server.url, kind) as client,
        pytest.raises(sdk.InternalServerError),
    ):
        post(sdk, client)
    assert server.count(path) == 1
    # Neither SDK sends an idempotency key that would make the POST retryable.
    assert not {"idempotency-key", "x-idempotency-key"} & set(server.received[0].headers)


@pytest.mark.parametrize(("sdk", "kind"), SYNC_CLIENTS, ids=SYNC_IDS)
def test_post_is_retried_when_the_server_says_so(sdk: Any, kind: str, server: FaultServer) -> None:
    path, body = post_path_and_body(sdk)
    server.script(path, *busy(503, 1, x_should_retry="true"), json_ok(body))
    with sdk_client(sdk, server.url, kind) as client:
        result = post(sdk, client)
    assert result.model == "m"
    assert server.count(path) == 2
    first, second = server.bodies(path)
    assert first == second
    assert first  # the JSON body was sent again, not an empty one


@pytest.mark.parametrize(
    ("sdk", "kind"),
    [(openai, "httpx.Client"), (anthropic, "httpx2.Client")],
    ids=["openai", "anthropic"],
)
def test_sdk_retries_multiply_with_ours(sdk: Any, kind: str, server: FaultServer) -> None:
    """Why docs/sdks.md says max_retries=0: 3 SDK attempts x 3 of ours; the count header lies."""
    server.script("/v1/models", *busy(503, 9, retry_after_ms="1"))
    with (  # 6 retries of ours in a fresh transport: more than its budget's grant
        sdk_client(sdk, server.url, kind, max_retries=2, budget=None) as client,
        pytest.raises(sdk.InternalServerError),
    ):
        client.models.list()
    assert server.count("/v1/models") == 9
    counts = [seen.headers["x-stainless-retry-count"] for seen in server.received]
    assert counts == ["0", "0", "0", "1", "1", "1", "2", "2", "2"]


# -- anthropic specifics --------------------------------------------------------


def test_anthropic_rejects_the_httpx_flavour() -> None:
    transport = httpx_retrying.RetryTransport(httpx.HTTPTransport())
    with pytest.raises(TypeError, match=r"`httpx\.BaseTransport` is from the `httpx` package"):
        anthropic.DefaultHttpxClient(transport=transport)
    with (
        httpx.Client(transport=transport) as http_client,
        pytest.raises(TypeError, match=r"`httpx\.Client` is from the `httpx` package"),
    ):
        anthropic.Anthropic(api_key=KEY, http_client=http_client)
    # The httpx2 flavour is accepted (the sync tests above make real calls through it).
    transport2 = httpx_retrying.httpx2.RetryTransport(httpx2.HTTPTransport())
    with (
        anthropic.DefaultHttpxClient(transport=transport2) as http_client2,
        anthropic.Anthropic(api_key=KEY, http_client=http_client2),
    ):
        pass


def test_httpx_flavour_inside_an_httpx2_client_fails_only_at_the_first_request(
    server: FaultServer,
) -> None:
    """anthropic does not look inside an httpx2.Client: the mismatch surfaces later.

    httpx's HTTPTransport asserts that the request stream is an httpx stream, and
    anthropic turns that AssertionError into an APIConnectionError. Nothing is sent.
    """
    transport = httpx_retrying.RetryTransport(httpx.HTTPTransport())
    with (
        httpx2.Client(transport=transport) as http_client,  # type: ignore[arg-type]
        anthropic.Anthropic(
            api_key=KEY, base_url=server.url, http_client=http_client, max_retries=0
        ) as client,
        pytest.raises(anthropic.APIConnectionError) as caught,
    ):
        client.models.list()
    assert isinstance(caught.value.__cause__, (AssertionError, TypeError))
    assert server.count() == 0


def test_anthropic_overloaded_529_needs_adding_to_the_policy(server: FaultServer) -> None:
    """Anthropic's 529 is not in the default statuses; the SDK would retry it, we do not."""
    server.script("/v1/models", *busy(529, 1))
    with (
        sdk_client(anthropic, server.url, "httpx2.Client") as client,
        pytest.raises(anthropic.OverloadedError),
    ):
        client.models.list()
    assert server.count("/v1/models") == 1

    policy = httpx_retrying.RetryPolicy(
        statuses=httpx_retrying.RetryPolicy().statuses | {529}, backoff=tenacity.wait_none()
    )
    server.script("/v1/models", *busy(529, 1), json_ok(ANTHROPIC_MODELS))
    with sdk_client(anthropic, server.url, "httpx2.Client", policy=policy) as client:
        assert client.models.list().data[0].id == "m"
    assert server.count("/v1/models") == 3  # 1 above, then the 529 and its retry


# -- async: AsyncOpenAI and AsyncAnthropic under asyncio and trio -------------


ASYNC_CLIENTS = [
    (openai, "httpx.AsyncClient"),
    (openai, "httpx2.AsyncClient"),
    (anthropic, "httpx2.AsyncClient"),
    (anthropic, "anthropic.DefaultAsyncHttpxClient"),
]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize(
    ("sdk", "kind"), ASYNC_CLIENTS, ids=[f"{sdk.__name__}-{kind}" for sdk, kind in ASYNC_CLIENTS]
)
def test_async_sdks(sdk: Any, kind: str, backend: str, server: FaultServer) -> None:
    server.script("/v1/models", *busy(503, 2), json_ok(models_body(sdk)))
    server.script("/v1/models", *busy(429, 3))
    server.script("/v1/models", *["silent"] * 3)
    http_client = make_http_client(kind, budget=None)  # 6 retries: more than a fresh grant

    async def main() -> None:
        if sdk is openai:
            client: Any = openai.AsyncOpenAI(
                api_key=KEY,
                base_url=f"{server.url}/v1",
                http_client=http_client,
                max_retries=0,
                timeout=5.0,
            )
        else:
            client = anthropic.AsyncAnthropic(
                api_key=KEY,
                base_url=server.url,
                http_client=http_client,
                max_retries=0,
                timeout=5.0,
            )
        async with client:
            page = await client.models.list()
            assert [model.id for model in page.data] == ["m"]
            assert server.count("/v1/models") == 3
            with pytest.raises(sdk.RateLimitError):
                await client.models.list()
            assert server.count("/v1/models") == 6
            with pytest.raises(sdk.APITimeoutError) as caught:
                await client.models.list(timeout=SILENT_TIMEOUT)
            assert settled_count(server, "/v1/models", 9) == 9
            assert any(NOTE in note for note in caught.value.__cause__.__notes__)

    anyio.run(main, backend=backend)
    assert http_client.is_closed


# -- replicate: its retry layer always sits on top of ours -----------------------


def _replicate(server: FaultServer, transport: Any) -> replicate.Client:
    return replicate.Client(api_token="r8-test", base_url=server.url, transport=transport)


def test_replicate_wraps_our_transport_and_attempts_multiply(server: FaultServer) -> None:
    """replicate's 10 attempts on 503, each one our 3: 30 requests for one call."""
    server.script("/v1/models/a/b", *busy(503, 30))
    with httpx_retrying.RetryTransport(policy=FAST, budget=None) as transport:
        client = _replicate(server, transport)
        started = time.monotonic()
        with pytest.raises(replicate.exceptions.ReplicateError) as caught:
            client.models.get("a/b")
        elapsed = time.monotonic() - started
        # Our transport is inside replicate's, not replacing it.
        wrapper = client._client._transport
        assert type(wrapper).__module__ == "replicate.client"
        assert wrapper._wrapped_transport is transport
    assert caught.value.status == 503
    assert server.count("/v1/models/a/b") == 30
    assert elapsed < 2.0  # Retry-After: 0 holds both layers' waits at zero


def test_replicate_multiplication_is_bounded_by_the_retry_budget(server: FaultServer) -> None:
    """The default budget: its grant of 2, then 0.1 token per request (clock frozen)."""
    server.script("/v1/models/a/b", *busy(503, 31))
    budget = httpx_retrying.RetryBudget(clock=lambda: 0.0)
    with httpx_retrying.RetryTransport(policy=FAST, budget=budget) as transport:
        client = _replicate(server, transport)
        with pytest.raises(replicate.exceptions.ReplicateError):
            client.models.get("a/b")
        # 10 replicate attempts + our 2 retries of the first (the grant) + 1 earned by 10 requests
        assert server.count() == 13
        with pytest.raises(replicate.exceptions.ReplicateError):
            client.models.get("a/b")
        assert server.count() == 24  # 10 + the 1 retry earned by 10 more requests


def test_replicate_with_disjoint_statuses(server: FaultServer) -> None:
    """docs/sdks.md's advice: we retry what replicate does not (408, 502, errors), it does 503."""
    policy = httpx_retrying.RetryPolicy(statuses={408, 502}, backoff=tenacity.wait_none())
    with httpx_retrying.RetryTransport(policy=policy) as transport:
        client = _replicate(server, transport)

        server.script("/v1/models/a/b", *busy(503, 10))
        with pytest.raises(replicate.exceptions.ReplicateError):
            client.models.get("a/b")
        assert server.count() == 10  # replicate's attempts only

        server.script("/v1/models/a/b", *busy(502, 2), json_ok(REPLICATE_MODEL))
        assert client.models.get("a/b").name == "b"
        assert server.count() == 13  # our 3 attempts; replicate ignores 502

        server.script("/v1/models/a/b", "close_after_read", json_ok(REPLICATE_MODEL))
        assert client.models.get("a/b").name == "b"
        assert server.count() == 15  # a dropped connection: ours retried it


def test_replicate_does_not_retry_exceptions(server: FaultServer) -> None:
    server.script("/v1/models/a/b", "close_after_read", json_ok(REPLICATE_MODEL))
    no_retries = httpx_retrying.RetryPolicy(attempts=1)
    with httpx_retrying.RetryTransport(policy=no_retries) as transport:
        client = _replicate(server, transport)
        with pytest.raises(httpx.RemoteProtocolError):
            client.models.get("a/b")
    assert server.count() == 1


def test_replicate_shares_one_transport_between_sync_and_async(server: FaultServer) -> None:
    """replicate hands the same transport to httpx.Client and httpx.AsyncClient."""
    server.script("/v1/models/a/b", *busy(503, 1), json_ok(REPLICATE_MODEL))
    server.script("/v1/models/a/b", *busy(502, 1), json_ok(REPLICATE_MODEL))
    transport = httpx_retrying.RetryTransport(policy=FAST)  # makes its inner transports per mode
    client = _replicate(server, transport)
    assert client.models.get("a/b").name == "b"

    async def main() -> None:
        try:
            model = await client.models.async_get("a/b")
            assert model.name == "b"
        finally:
            await transport.aclose()

    try:
        anyio.run(main, backend="asyncio")  # replicate sleeps with asyncio.sleep
    finally:
        transport.close()
    assert server.count() == 4

    # A transport that wraps a sync transport cannot serve replicate's async client.
    sync_only = httpx_retrying.RetryTransport(httpx.HTTPTransport(), policy=FAST)
    client = _replicate(server, sync_only)

    async def fails() -> None:
        with pytest.raises(TypeError, match="has no async interface"):
            await client.models.async_get("a/b")

    with sync_only:
        anyio.run(fails, backend="asyncio")
    assert server.count() == 4


# -- the SDK page's examples -----------------------------------------------------


EXAMPLES = python_blocks(SDK_PAGE)


def _example_sdk(code: str) -> str:
    (name,) = {name for name in ("openai", "anthropic", "replicate") if f"import {name}" in code}
    return name


def test_the_sdk_page_has_its_examples() -> None:
    assert sorted(_example_sdk(block.code) for block in EXAMPLES) == [
        "anthropic",
        "anthropic",
        "openai",
        "openai",
        "replicate",
    ]


@pytest.mark.parametrize(
    "block", EXAMPLES, ids=[f"{block.name}-{_example_sdk(block.code)}" for block in EXAMPLES]
)
def test_sdk_page_example_runs(
    block: Block,
    server: FaultServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each example, configured only by the environment, survives one failure and prints."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8-test")
    monkeypatch.setenv("REPLICATE_BASE_URL", server.url)
    for name in ("OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)

    code = block.code
    sdk = _example_sdk(code)
    if sdk == "replicate":
        # replicate retries 503 itself; a 502 is retried only by our transport.
        fault, body, printed = busy(502, 1), REPLICATE_MODELS, "['b']"
    else:
        status_code = 529 if "529" in code else 503
        body = OPENAI_MODELS if sdk == "openai" else ANTHROPIC_MODELS
        fault, printed = busy(status_code, 1), "['m']"
    server.script("/v1/models", *fault, json_ok(body))

    with httpx_retrying.testing():  # the backoff is computed but not slept: it is not the point
        exec(compile(code, block.name, "exec"), {"__name__": "docs_example"})

    assert capsys.readouterr().out.strip() == printed
    assert server.count("/v1/models") == 2  # the failure was retried by our transport
