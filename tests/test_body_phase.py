"""Body-phase retries on real sockets: preloaded bodies retried whole, large downloads resumed.

Every test runs for both flavours in sync, asyncio and trio unless it says
otherwise, against the raw-socket fault server (which can cut, stall and drip a
body, and serve resources with Range, If-Range and validators), and, for the
resume, against Starlette's FileResponse under uvicorn behind a cutting proxy.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import random
import warnings
from collections.abc import Callable
from typing import Any

import anyio
import pytest
import tenacity
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from httpx_retrying import RetryPolicy, testing
from tests.conftest import Harness
from tests.proxy import CuttingProxy
from tests.real_servers import static_body, static_file
from tests.representation import Serve, changed
from tests.servers import FaultServer, Reply, cut, ok, stalled, status

QUICK = RetryPolicy(backoff=tenacity.wait_none())
JSON = json.dumps(
    {"data": [{"id": index, "name": f"model-{index}"} for index in range(40)]}
).encode()


def one_connection(harness: Harness) -> Any:
    return harness.http_transport(limits=harness.lib.Limits(max_connections=1))


def timeouts(harness: Harness, read: float = 2.0) -> Any:
    """A short pool timeout turns a leaked connection into a PoolTimeout on the next request."""
    return harness.lib.Timeout(5.0, read=read, pool=0.5)


class Download:
    """What a streamed GET gave: the bytes that reached the caller, and how it ended."""

    @property
    def data(self) -> bytes:
        return bytes(self.received)

    def __init__(self) -> None:
        self.received = bytearray()
        self.error: BaseException | None = None
        self.response: Any = None


def download(
    harness: Harness,
    transport: Any,
    url: str,
    *,
    decoded: bool = False,
    follow_up: str | None = None,
    on_chunk: Callable[[Download], None] | None = None,
    **kwargs: Any,
) -> Download:
    """Stream `url` through `transport` (raw bytes, or decoded ones), then GET `follow_up`."""
    lib, result = harness.lib, Download()
    kwargs.setdefault("timeout", timeouts(harness))

    def keep(chunk: bytes) -> None:
        result.received += chunk
        if on_chunk is not None:
            on_chunk(result)

    if not harness.is_async:
        with lib.Client(transport=transport) as client:
            try:
                with client.stream("GET", url, **kwargs) as response:
                    result.response = response
                    for chunk in response.iter_bytes() if decoded else response.iter_raw():
                        keep(chunk)
            except lib.HTTPError as exc:
                result.error = exc
            if follow_up is not None:
                assert client.get(follow_up, timeout=timeouts(harness)).status_code == 200
        return result

    async def main() -> None:
        async with lib.AsyncClient(transport=transport) as client:
            try:
                async with client.stream("GET", url, **kwargs) as response:
                    result.response = response
                    chunks = response.aiter_bytes() if decoded else response.aiter_raw()
                    async for chunk in chunks:
                        keep(chunk)
            except lib.HTTPError as exc:
                result.error = exc
            if follow_up is not None:
                response = await client.get(follow_up, timeout=timeouts(harness))
                assert response.status_code == 200

    harness.run(main)
    return result


# -- preloading: small bodies are read inside the transport ----------------------------


def test_a_cut_json_body_is_retried_and_arrives_whole(harness: Harness) -> None:
    """Cut, reset or stalled mid-body: the GET is retried; the caller reads the exact body."""
    with FaultServer() as server:
        server.script(
            "/models",
            cut(200, JSON, 100),
            cut(200, JSON, 0, reset=True),
            stalled(200, JSON, 50),
            ok(JSON),
        )
        server.script("/after", ok())
        transport = harness.RetryTransport(
            one_connection(harness), policy=RetryPolicy(attempts=4, backoff=tenacity.wait_none())
        )
        got, after = harness.send_all(
            transport,
            [
                ("GET", f"{server.url}/models", {"timeout": timeouts(harness, read=0.3)}),
                ("GET", f"{server.url}/after", {"timeout": timeouts(harness)}),
            ],
        )
        assert server.count("/models") == 4
    assert got.json() == json.loads(JSON)
    assert after.status_code == 200  # the pool of one was never leaked
    reasons = [event.reason for event in got.extensions["retry_history"]]
    assert reasons[0] == f"RemoteProtocolError at body byte 100 of {len(JSON)}"
    assert reasons[1].startswith("ReadError at body byte 0 of")
    assert reasons[2] == f"ReadTimeout at body byte 50 of {len(JSON)}"


@pytest.mark.parametrize("fault", ["body cut", "connection reset"])
def test_a_first_attempt_that_fails_is_retried_under_the_default_policy(
    harness: Harness, fault: str
) -> None:
    """The package's own backoff: the transport makes no RetryCall for a first attempt up
    front (a success is read straight away), yet its failure, in the body or before the
    answer, is retried."""
    with FaultServer() as server, testing():  # the backoff is computed, not slept
        if fault == "body cut":
            server.script("/models", cut(200, JSON, 100), ok(JSON))
        else:
            server.next_connections("reset_before_read")
            server.script("/models", ok(JSON))
        transport = harness.RetryTransport(one_connection(harness))
        (got,) = harness.send_all(transport, [("GET", f"{server.url}/models", {})])
        requests_read = server.count("/models")
    assert got.json() == json.loads(JSON)
    (event,) = got.extensions["retry_history"]
    assert isinstance(event.exception, harness.lib.TransportError)
    if fault == "body cut":
        assert requests_read == 2
        assert event.reason == f"RemoteProtocolError at body byte 100 of {len(JSON)}"
    else:
        assert requests_read == 1  # the reset came before the first request was read
        assert "body" not in event.reason


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(position=st.integers(min_value=0, max_value=len(JSON) - 1), reset=st.booleans())
def test_a_body_cut_at_any_position_is_retried(position: int, reset: bool) -> None:
    """Hypothesis: a JSON body cut (closed or reset) anywhere; the retry's body is exact."""
    import httpx

    from httpx_retrying import RetryTransport

    with FaultServer() as server:
        server.script("/j", cut(200, JSON, position, reset=reset), ok(JSON))
        transport = RetryTransport(httpx.HTTPTransport(), policy=QUICK)
        with httpx.Client(transport=transport) as client:
            response = client.get(f"{server.url}/j")
        assert server.count("/j") == 2
    assert response.content == JSON


def test_non_idempotent_bodies_break_as_they_would_without_retries(harness: Harness) -> None:
    """A POST whose body breaks raises after one try; with an Idempotency-Key it is retried."""
    lib = harness.lib
    with FaultServer() as server:
        server.script("/p", cut(200, JSON, 10), cut(200, JSON, 10), ok(JSON))
        transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)
        plain, keyed = harness.send_all(
            transport,
            [
                ("POST", f"{server.url}/p", {"content": b"{}"}),
                (
                    "POST",
                    f"{server.url}/p",
                    {"content": b"{}", "headers": {"Idempotency-Key": "k"}},
                ),
            ],
        )
        assert server.count("/p") == 3
    assert isinstance(plain, lib.RemoteProtocolError)
    assert not getattr(plain, "__notes__", None)  # exactly what a plain client would raise
    assert keyed.content == JSON


def test_a_body_that_breaks_on_the_last_attempt_carries_the_story(harness: Harness) -> None:
    """Every attempt's body breaks: the last break is raised with the PEP 678 note."""
    lib = harness.lib
    with FaultServer() as server:
        server.script("/x", cut(200, JSON, 5), cut(200, JSON, 6), cut(200, JSON, 7))
        transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)
        outcome = harness.send(transport, "GET", f"{server.url}/x")
    assert isinstance(outcome, lib.RemoteProtocolError)
    (note,) = outcome.__notes__
    assert "gave up after 3 attempt(s)" in note
    assert "attempt 1: RemoteProtocolError at body byte 5" in note
    assert "attempt 3: RemoteProtocolError at body byte 7" in note


def test_a_preloaded_response_is_as_unread_as_a_streamed_one(harness: Harness) -> None:
    """Same status, headers and extensions; read(), iter_bytes() and iter_raw() all work."""
    lib = harness.lib
    body = gzip.compress(JSON, mtime=0)
    reply = status(200, body, content_encoding="gzip", x_custom="kept")
    with FaultServer() as server:
        server.script("/z", reply, reply, reply)
        transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)
        if harness.is_async:

            async def main() -> list[Any]:
                async with lib.AsyncClient(transport=transport) as client:
                    read = await client.get(f"{server.url}/z")
                    async with client.stream("GET", f"{server.url}/z") as streamed:
                        decoded = b"".join([c async for c in streamed.aiter_bytes()])
                    async with client.stream("GET", f"{server.url}/z") as raw:
                        encoded = b"".join([c async for c in raw.aiter_raw()])
                    return [read, decoded, raw, encoded]

            read, decoded, raw, encoded = harness.run(main)
        else:
            with lib.Client(transport=transport) as client:
                read = client.get(f"{server.url}/z")
                with client.stream("GET", f"{server.url}/z") as streamed:
                    decoded = b"".join(streamed.iter_bytes())
                with client.stream("GET", f"{server.url}/z") as raw:
                    encoded = b"".join(raw.iter_raw())
    assert read.content == decoded == JSON
    assert encoded == body
    assert read.headers["x-custom"] == "kept"
    assert read.extensions["http_version"] == b"HTTP/1.1"
    assert "retry_history" not in read.extensions


def first_bytes(harness: Harness, transport: Any, url: str, size: int) -> tuple[bytes, int]:
    """The first `size` raw bytes of a streamed GET (and its status); then it is closed."""
    lib, received = harness.lib, bytearray()
    timeout = timeouts(harness, read=1.0)
    if not harness.is_async:
        with (
            lib.Client(transport=transport) as client,
            client.stream("GET", url, timeout=timeout) as response,
        ):
            for piece in response.iter_raw():
                received += piece
                if len(received) >= size:
                    break
            return bytes(received), response.status_code

    async def main() -> tuple[bytes, int]:
        async with (
            lib.AsyncClient(transport=transport) as client,
            client.stream("GET", url, timeout=timeout) as response,
        ):
            # Cancelled in the next read, not left by `break`: the stream's async
            # generators end there, rather than being collected unfinished (a warning).
            with anyio.CancelScope() as enough:
                async for piece in response.aiter_raw():
                    received.extend(piece)
                    if len(received) >= size:
                        enough.cancel()
            return bytes(received), response.status_code

    return harness.run(main)


@pytest.mark.parametrize("kind", ["above the limit", "unknown length", "event stream"])
def test_streaming_stays_streaming(harness: Harness, kind: str) -> None:
    """The first piece reaches the caller while the server still holds back the rest.

    The server sends the first event and then nothing. Streamed, the caller has
    the event at once (and closes the response). A preloading transport would sit
    on the 1 s read timeout, retry, and hand over the second answer instead.
    """
    first = b"data: first\n\n"
    body = first + b"x" * 5000
    event_stream = "Text/Event-Stream; charset=utf-8"
    replies = {
        "above the limit": stalled(200, body, len(first)),
        "unknown length": stalled(200, body, len(first), chunked=True),
        "event stream": stalled(200, body, len(first), content_type=event_stream),
    }
    policy = RetryPolicy(preload_limit=1000 if kind == "above the limit" else 1 << 20)
    with FaultServer() as server:
        server.script("/s", replies[kind], ok(b"a second answer"))
        transport = harness.RetryTransport(harness.http_transport(), policy=policy)
        received, status_code = first_bytes(harness, transport, f"{server.url}/s", len(first))
        assert server.count("/s") == 1
    assert (received, status_code) == (first, 200)


def test_a_predicate_reads_the_preloaded_body(harness: Harness) -> None:
    """A 200 carrying an error document is retried: should_retry can read its body."""
    error_document = b'{"error": {"type": "overloaded"}}'

    paths: list[str] = []

    def should_retry(response: Any, exception: Exception | None) -> bool | None:
        paths.append(response.request.url.path)
        return (response is not None and b'"error"' in response.content) or None

    with FaultServer() as server:
        server.script("/e", ok(error_document), ok(JSON))
        transport = harness.RetryTransport(
            harness.http_transport(),
            policy=RetryPolicy(should_retry=should_retry, backoff=tenacity.wait_none()),
        )
        response = harness.send(transport, "GET", f"{server.url}/e")
    assert response.content == JSON
    assert paths == ["/e", "/e"]  # each response it judged knew its request


def test_preloading_off_leaves_the_break_to_the_caller(harness: Harness) -> None:
    """preload_limit=0: the client reads the body after the transport returned, as 0.1 did."""
    with FaultServer() as server:
        server.script("/x", cut(200, JSON, 10), ok(JSON))
        transport = harness.RetryTransport(
            harness.http_transport(), policy=RetryPolicy(preload_limit=0, resume=False)
        )
        outcome = harness.send(transport, "GET", f"{server.url}/x")
        assert server.count("/x") == 1
    assert isinstance(outcome, harness.lib.RemoteProtocolError)


@pytest.mark.parametrize("value", [True, -1, 1.5, "1"])
def test_preload_limit_is_validated(value: Any) -> None:
    """A bool, a negative or a non-int raises, naming the field."""
    with pytest.raises((TypeError, ValueError), match="preload_limit"):
        RetryPolicy(preload_limit=value)


# -- resuming: large downloads continue with Range ---------------------------------------

BIG = static_body(3 << 20)  # every offset recognisable
BIG_SHA = hashlib.sha256(BIG).hexdigest()


def test_a_download_cut_several_times_is_resumed_byte_exact(harness: Harness) -> None:
    """Cut three times (more than `attempts`): each try brought bytes, so none used an attempt."""
    with FaultServer() as server:
        server.resource("/big", BIG)
        cuts = sorted(random.Random(7).sample(range(1, len(BIG) // 4), 3))
        server.script(
            "/big", Serve(cut_after=cuts[0]), Serve(cut_after=cuts[1]), Serve(cut_after=cuts[2])
        )
        transport = harness.RetryTransport(one_connection(harness), policy=QUICK)
        result = download(harness, transport, f"{server.url}/big", follow_up=f"{server.url}/after")
        ranges = server.request_headers("/big", "range")
        if_ranges = server.request_headers("/big", "if-range")
    assert result.error is None
    assert hashlib.sha256(result.data).hexdigest() == BIG_SHA
    offsets = [cuts[0], cuts[0] + cuts[1], cuts[0] + cuts[1] + cuts[2]]
    assert ranges == [None, *(f"bytes={offset}-{len(BIG) - 1}" for offset in offsets)]
    assert if_ranges == [None, '"v1"', '"v1"', '"v1"']
    history = result.response.extensions["retry_history"]
    assert [event.reason for event in history] == [
        f"RemoteProtocolError at byte {offset}, resumed" for offset in offsets
    ]


def test_a_gzip_representation_is_spliced_raw_and_decodes_exactly(harness: Harness) -> None:
    """Ranges index the encoded bytes: the client's decoder runs over the spliced stream."""
    original = static_body(1 << 20)
    encoded = gzip.compress(original, mtime=0)
    with FaultServer() as server:
        server.resource("/gz", encoded, content_encoding="gzip", etag='"gz1"')
        server.script(
            "/gz",
            Serve(cut_after=len(encoded) // 3),
            Serve(reset=True, cut_after=len(encoded) // 3),
        )
        transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)
        result = download(harness, transport, f"{server.url}/gz", decoded=True)
        encodings = server.request_headers("/gz", "accept-encoding")
    assert result.error is None
    assert result.data == original
    assert len(set(encodings)) == 1  # the continuation kept the request's Accept-Encoding


def test_a_stalled_download_is_resumed(harness: Harness) -> None:
    """A body that goes silent past the read timeout continues from where it stopped."""
    with FaultServer() as server:
        server.resource("/big", BIG)
        server.script("/big", Serve(stall_after=100_000))
        transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)
        result = download(
            harness, transport, f"{server.url}/big", timeout=timeouts(harness, read=0.3)
        )
    assert result.error is None
    assert result.data == BIG
    (event,) = result.response.extensions["retry_history"]
    assert event.reason == "ReadTimeout at byte 100000, resumed"


def test_a_first_download_is_resumed_under_the_default_policy(harness: Harness) -> None:
    """The package's own backoff: a resumable first answer gets its RetryCall only as it is
    handed back, and a cut in its body is still resumed."""
    with FaultServer() as server, testing():  # the backoff is computed, not slept
        server.resource("/big", BIG)
        server.script("/big", Serve(cut_after=100_000))
        transport = harness.RetryTransport(harness.http_transport())
        result = download(harness, transport, f"{server.url}/big")
    assert result.error is None
    assert result.data == BIG
    (event,) = result.response.extensions["retry_history"]
    assert event.reason == "RemoteProtocolError at byte 100000, resumed"


def test_a_server_ignoring_range_with_the_same_validator_is_skipped_to_the_position(
    harness: Harness,
) -> None:
    """200 with the identical strong ETag: the bytes already delivered are skipped (wget)."""
    with FaultServer() as server:
        server.resource("/big", BIG)
        server.script("/big", Serve(cut_after=500_000), Serve(ignore_range=True))
        transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)
        result = download(harness, transport, f"{server.url}/big")
    assert result.error is None
    assert result.data == BIG


def test_a_break_after_every_owed_byte_is_not_resumed(harness: Harness) -> None:
    """The caller's range is complete: a later break is not theirs (no `Range: bytes=10-9`).

    The 206 for bytes 0-9 breaks after 5; the server ignores the continuation's range
    and sends the whole body, which breaks just after byte 10. The caller already
    has the ten bytes it asked for: it gets them, with no error and no third request.
    """
    with FaultServer() as server:
        server.resource("/r", BIG)
        server.script("/r", Serve(cut_after=5), Serve(ignore_range=True, cut_after=11))
        policy = RetryPolicy(backoff=tenacity.wait_none(), preload_limit=0)
        transport = harness.RetryTransport(harness.http_transport(), policy=policy)
        result = download(harness, transport, f"{server.url}/r", headers={"Range": "bytes=0-9"})
        assert server.count("/r") == 2
    assert result.error is None
    assert result.data == BIG[:10]


def test_an_event_stream_is_never_resumed(harness: Harness) -> None:
    """An event stream with a strong ETag breaks: the break reaches the caller, no `Range` is sent.

    Events resume with `Last-Event-ID`, which only the application knows, not with bytes.
    """
    with FaultServer() as server:
        server.resource("/events", BIG, content_type="text/event-stream")
        server.script("/events", Serve(cut_after=50))
        policy = RetryPolicy(backoff=tenacity.wait_none(), preload_limit=0)
        transport = harness.RetryTransport(harness.http_transport(), policy=policy)
        result = download(harness, transport, f"{server.url}/events")
        assert server.count("/events") == 1
    assert isinstance(result.error, harness.lib.RemoteProtocolError)
    assert result.data == BIG[:50]


@pytest.mark.parametrize(
    ("method", "reply"),
    [
        ("HEAD", Reply(200, (), b"", content_length=11)),
        ("HEAD", Reply(503, (("x-should-retry", "false"),), b"", content_length=11)),
        ("GET", Reply(304, (("etag", '"v1"'),), b"", content_length=100)),
        ("GET", Reply(204, (), b"", content_length=0)),
    ],
)
def test_responses_without_a_body_are_not_preloaded(
    harness: Harness, method: str, reply: Reply
) -> None:
    """A HEAD answer or a 304 announces a length but has no body (RFC 9110 8.6): no read."""
    with FaultServer() as server:
        server.script("/h", reply, reply, reply)
        transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)
        (outcome,) = harness.send_all(transport, [(method, f"{server.url}/h", {})])
        assert server.count("/h") == 1
    assert not isinstance(outcome, Exception), outcome
    assert outcome.status_code == reply.status
    assert outcome.content == b""


@pytest.mark.parametrize("hint", [{"x_should_retry": "false"}, {"retry_after": "120"}])
def test_a_response_given_up_on_stays_given_up_when_its_body_breaks(
    harness: Harness, hint: dict[str, str]
) -> None:
    """The server said not to retry (or not before 120 s): its broken body is raised, once."""
    lib = harness.lib
    with FaultServer() as server:
        server.script("/g", *[cut(503, b"x" * 100, 50, **hint)] * 3)
        transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)
        (outcome,) = harness.send_all(transport, [("GET", f"{server.url}/g", {})])
        assert server.count("/g") == 1
    assert isinstance(outcome, lib.RemoteProtocolError)
    (note,) = outcome.__notes__
    assert "gave up after 1 attempt(s)" in note
    assert "its body broke (RemoteProtocolError at body byte 50 of 100)" in note


@pytest.mark.parametrize(
    ("second", "why"),
    [
        (changed(b"a new version"), "another validator"),
        (Serve(range_shift=10), "starts at byte"),
        (Serve(reported_total=len(BIG) + 1), "whole is"),
        (Serve(unsatisfiable=True), "answered 416"),
        (Serve(content_encoding="gzip"), "Content-Encoding"),
    ],
    ids=["changed", "wrong-start", "wrong-total", "416", "other-encoding"],
)
def test_a_continuation_that_does_not_continue_ends_in_the_original_break(
    harness: Harness, second: Serve, why: str
) -> None:
    """Never a spliced foreign byte: the caller gets the break, a correct prefix, and the story."""
    lib = harness.lib
    with FaultServer() as server:
        server.resource("/big", BIG)
        server.script("/big", Serve(cut_after=200_000), second)
        transport = harness.RetryTransport(one_connection(harness), policy=QUICK)
        result = download(harness, transport, f"{server.url}/big", follow_up=f"{server.url}/after")
    assert isinstance(result.error, lib.RemoteProtocolError)
    assert result.data == BIG[:200_000]
    (note,) = result.error.__notes__
    assert f"cannot resume: {why}" in note or why in note
    assert "RemoteProtocolError at byte 200000, resumed" in note


@pytest.mark.parametrize("validator", ["weak", "none"])
def test_without_a_strong_validator_nothing_is_resumed(harness: Harness, validator: str) -> None:
    """A weak ETag (or none at all) rules the resume out: one request, the break as it was."""
    lib = harness.lib
    with FaultServer() as server:
        server.resource("/big", BIG, etag='W/"v1"' if validator == "weak" else None)
        server.script("/big", Serve(cut_after=300_000))
        transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)
        result = download(harness, transport, f"{server.url}/big")
        assert server.count("/big") == 1
    assert isinstance(result.error, lib.RemoteProtocolError)
    assert result.data == BIG[:300_000]


def test_a_strong_last_modified_is_a_validator(harness: Harness) -> None:
    """No ETag, a Last-Modified a minute before Date: resumed with If-Range: <date>."""
    from tests.representation import http_date

    with FaultServer() as server:
        modified = http_date(1_700_000_000)
        server.resource(
            "/big", BIG, etag=None, last_modified=modified, date=http_date(1_700_000_060)
        )
        server.script("/big", Serve(cut_after=100_000))
        transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)
        result = download(harness, transport, f"{server.url}/big")
        if_ranges = server.request_headers("/big", "if-range")
    assert result.data == BIG
    assert if_ranges == [None, modified]


def test_the_callers_own_range_is_resumed_within_it(harness: Harness) -> None:
    """A 206 to bytes=1000-2000999 cut at 50000: the continuation asks for bytes=51000-2000999."""
    with FaultServer() as server:
        server.resource("/big", BIG)
        server.script("/big", Serve(cut_after=50_000))
        transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)
        result = download(
            harness, transport, f"{server.url}/big", headers={"Range": "bytes=1000-2000999"}
        )
        ranges = server.request_headers("/big", "range")
    assert result.data == BIG[1000:2001000]
    assert ranges == ["bytes=1000-2000999", "bytes=51000-2000999"]


def test_tries_without_progress_are_bounded_by_attempts(harness: Harness) -> None:
    """Continuations that bring no byte use attempts up: with 3, the third gives up."""
    lib = harness.lib
    with FaultServer() as server:
        server.resource("/big", BIG)
        server.script(
            "/big",
            Serve(cut_after=100_000),
            Serve(cut_after=0),
            Serve(cut_after=0),
            Serve(cut_after=0),
        )
        transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)
        result = download(harness, transport, f"{server.url}/big")
        assert server.count("/big") == 4  # the first try, then three that brought nothing
    assert isinstance(result.error, lib.RemoteProtocolError)
    assert result.data == BIG[:100_000]
    assert "all 3 attempts used" in result.error.__notes__[0]


def test_resume_is_off_where_a_get_is_not_retried(harness: Harness) -> None:
    """extensions={"retry": False}, or resume=False: the break reaches the caller untouched."""
    lib = harness.lib
    for extensions in ({"retry": False}, {"retry": RetryPolicy(resume=False)}):
        with FaultServer() as server:
            server.resource("/big", BIG)
            server.script("/big", Serve(cut_after=100_000))
            transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)
            result = download(harness, transport, f"{server.url}/big", extensions=extensions)
            assert server.count("/big") == 1
        assert isinstance(result.error, lib.RemoteProtocolError)


def test_hooks_and_history_grow_while_the_body_streams(harness: Harness) -> None:
    """No history at the first chunk; one event after the break, and the hook ran."""
    events: list[Any] = []
    seen_history: list[int] = []
    with FaultServer() as server:
        server.resource("/big", BIG)
        server.script("/big", Serve(cut_after=1_000_000))
        transport = harness.RetryTransport(
            harness.http_transport(), policy=QUICK, on_retry=events.append
        )

        def look(result: Download) -> None:
            seen_history.append(len(result.response.extensions.get("retry_history", ())))

        result = download(harness, transport, f"{server.url}/big", on_chunk=look)
    assert result.data == BIG
    assert seen_history[0] == 0
    assert seen_history[-1] == 1
    assert [event.reason for event in events] == ["RemoteProtocolError at byte 1000000, resumed"]


@pytest.mark.parametrize("mode", ["asyncio", "trio"])
@pytest.mark.parametrize("flavour", ["httpx", "httpx2"])
def test_cancelling_a_resume_takes_effect_at_once_and_leaks_nothing(
    mode: str, flavour: str
) -> None:
    """Cancelled during a resume's backoff: it ends at once; the pool of one still serves.

    The `on_retry` hook cancels the caller's scope just before the 30 s backoff.
    """
    harness = Harness(flavour, mode)
    lib = harness.lib
    scopes: list[anyio.CancelScope] = []
    cancelled_at: list[float] = []

    def cancel(event: Any) -> None:
        cancelled_at.append(anyio.current_time())
        scopes[0].cancel()

    with FaultServer() as server:
        server.resource("/big", BIG)
        server.script("/big", Serve(cut_after=100_000))
        transport = harness.RetryTransport(
            one_connection(harness),
            policy=RetryPolicy(backoff=tenacity.wait_fixed(30)),
            on_retry=cancel,
        )

        async def main() -> tuple[float, float]:
            async with lib.AsyncClient(transport=transport) as client:
                with anyio.fail_after(10), anyio.CancelScope() as scope:
                    scopes.append(scope)
                    async with client.stream(
                        "GET", f"{server.url}/big", timeout=timeouts(harness)
                    ) as response:
                        async for _ in response.aiter_raw():
                            pass
                assert scope.cancelled_caught
                ended = anyio.current_time() - cancelled_at[0]
                started = anyio.current_time()
                after = await client.get(f"{server.url}/after", timeout=timeouts(harness))
                assert after.status_code == 200
                return ended, anyio.current_time() - started

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ended, follow_up = harness.run(main)
        assert server.count("/big") == 1  # cancelled before the continuation was sent
    assert ended < 1.0
    assert follow_up < 1.0


def test_openai_recovers_a_truncated_response_body() -> None:
    """Under the openai SDK with max_retries=0, a body cut mid-way is retried by the transport."""
    import httpx
    import openai

    from httpx_retrying import RetryTransport

    models = json.dumps(
        {"object": "list", "data": [{"id": "m1", "object": "model", "created": 0, "owned_by": "x"}]}
    ).encode()
    with FaultServer() as server:
        server.script(
            "/v1/models", cut(200, models, 20, content_type="application/json"), ok(models)
        )
        http_client = httpx.Client(transport=RetryTransport(httpx.HTTPTransport(), policy=QUICK))
        with openai.OpenAI(
            api_key="test", base_url=f"{server.url}/v1", http_client=http_client, max_retries=0
        ) as client:
            assert [model.id for model in client.models.list().data] == ["m1"]
        assert server.count("/v1/models") == 2


# -- a server this project did not write: Starlette's FileResponse under uvicorn -------------


@pytest.mark.parametrize("mode", ["sync", "asyncio", "trio"])
def test_resume_against_starlette_behind_a_cutting_proxy(mode: str) -> None:
    """uvicorn serves a static file (strong ETag, Range, If-Range); a proxy cuts the transfer."""
    harness = Harness("httpx", mode)
    body = static_body(2 << 20)
    with static_file(body) as url, CuttingProxy(url.rsplit("/", 1)[0]) as proxy:
        proxy.cut_next(after_body_bytes=300_000)
        proxy.cut_next(after_body_bytes=700_000)
        transport = harness.RetryTransport(harness.http_transport(), policy=QUICK)
        path = url.rsplit("/", 1)[1]
        result = download(harness, transport, f"{proxy.url}/{path}")
    assert result.error is None
    assert hashlib.sha256(result.data).hexdigest() == hashlib.sha256(body).hexdigest()
    assert len(result.response.extensions["retry_history"]) == 2


FIFTY_MB = static_body(50 * 1000 * 1000)
FIFTY_MB_SHA = hashlib.sha256(FIFTY_MB).digest()


@functools.cache
def fifty_mb_gzipped() -> bytes:
    return gzip.compress(FIFTY_MB, 1, mtime=0)


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_a_50_mb_download_cut_at_random_positions_arrives_byte_exact(
    harness: Harness, encoding: str
) -> None:
    """50 MB cut four times at random raw offsets (closes and resets): byte-exact, decoded too."""
    served = FIFTY_MB if encoding == "identity" else fifty_mb_gzipped()
    rng = random.Random(f"{harness.flavour}-{harness.mode}-{encoding}")
    with FaultServer() as server:
        server.resource("/50", served, content_encoding=None if encoding == "identity" else "gzip")
        server.script(
            "/50",
            *(
                Serve(cut_after=rng.randrange(1, len(served) // 5), reset=bool(n % 2))
                for n in range(4)
            ),
        )
        transport = harness.RetryTransport(one_connection(harness), policy=QUICK)
        result = download(
            harness,
            transport,
            f"{server.url}/50",
            decoded=encoding == "gzip",
            follow_up=f"{server.url}/after",
        )
        assert server.count("/50") == 5
    assert result.error is None
    assert hashlib.sha256(result.received).digest() == FIFTY_MB_SHA


def test_closing_a_resumable_download_half_read_releases_its_connection(harness: Harness) -> None:
    """The caller stops after the first chunk: the stream closes, and a pool of one still serves.

    Straight through the transport (a client's own body generators are not ours to close).
    """
    lib = harness.lib
    with FaultServer() as server:
        server.resource("/big", BIG)
        transport = harness.RetryTransport(one_connection(harness), policy=QUICK)
        extensions = {"timeout": {"connect": 5.0, "read": 2.0, "write": 5.0, "pool": 0.5}}

        def request(path: str) -> Any:
            return lib.Request("GET", f"{server.url}{path}", extensions=extensions)

        if harness.is_async:

            async def main() -> int:
                response = await transport.handle_async_request(request("/big"))
                assert len(await anext(aiter(response.stream))) > 0  # one chunk, then leave
                await response.aclose()
                after = await transport.handle_async_request(request("/after"))
                await after.aread()
                await transport.aclose()
                return int(after.status_code)

            status_after = harness.run(main)
        else:
            response = transport.handle_request(request("/big"))
            assert len(next(iter(response.stream))) > 0
            response.close()
            after = transport.handle_request(request("/after"))
            after.read()
            transport.close()
            status_after = after.status_code
    assert status_after == 200
