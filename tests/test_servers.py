"""The test servers themselves, proven with a plain httpx client (no RetryTransport).

What a body-phase retry or a Range resume is tested against must itself be
right: the fault server's body faults and representations, the cutting proxy,
the h2 server's "not processed" signals, and what uvicorn/Starlette and
hypercorn really do. Each test documents what a plain client sees.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any, NamedTuple

import anyio
import h2.events
import httpcore
import httpcore2
import httpx
import httpx2
import pytest
from h2.errors import ErrorCodes

from tests.conftest import SSL_CONTEXT
from tests.h2_server import H2Server, Reset, goaway, refuse
from tests.proxy import CuttingProxy
from tests.real_servers import (
    LARGE_ERROR_BODY,
    STATIC_MTIME,
    HypercornServer,
    ScriptedApp,
    gzip_bytes,
    h2_abandoned_bodies_stall,
    h2_client,
    static_body,
    static_file,
    uvicorn_server,
)
from tests.representation import (
    UNSATISFIABLE,
    Representation,
    Serve,
    answer,
    changed,
    http_date,
    if_range_holds,
    parse_range,
)
from tests.servers import FaultServer, Reply, cut, dripping, slow, stalled, status

BODY = bytes(range(256)) * 256  # 64 KiB, every offset recognisable modulo 256
SHORT = httpx.Timeout(2.0, read=0.2)


class Raw(NamedTuple):
    """What a streamed GET delivered before content decoding, and what ended it."""

    body: bytes
    error: Exception | None
    response: httpx.Response | None


def read_raw(client: httpx.Client, url: str, **kwargs: Any) -> Raw:
    received = bytearray()
    response = None
    try:
        with client.stream("GET", url, **kwargs) as response:
            for piece in response.iter_raw():
                received += piece
    except httpx.HTTPError as exc:
        return Raw(bytes(received), exc, response)
    return Raw(bytes(received), None, response)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=SHORT, verify=SSL_CONTEXT) as plain:
        yield plain


@pytest.fixture
def static_file_url() -> Iterator[str]:
    """A 1 MiB file of known bytes (`static_body()`) served by Starlette/uvicorn: its URL."""
    with static_file(static_body()) as url:
        yield url


@pytest.fixture
def hypercorn() -> Iterator[tuple[HypercornServer, ScriptedApp]]:
    """Hypercorn serving a fresh `ScriptedApp`: (server, app).

    A short grace: connections a test leaves stalled are cancelled 0.25 s into the stop."""
    app = ScriptedApp()
    with HypercornServer(app, graceful_timeout=0.25) as server:
        yield server, app


# -- FaultServer: body faults -------------------------------------------------


@pytest.mark.parametrize("code", [200, 503])
@pytest.mark.parametrize(
    ("chunked", "reset", "error", "message"),
    [
        (False, False, httpx.RemoteProtocolError, "received 1000 bytes, expected 65536"),
        (True, False, httpx.RemoteProtocolError, "incomplete chunked read"),
        (False, True, httpx.ReadError, "reset by peer"),
        (True, True, httpx.ReadError, "reset by peer"),
    ],
)
def test_cut_delivers_exactly_n_body_bytes(
    server: FaultServer,
    client: httpx.Client,
    code: int,
    chunked: bool,
    reset: bool,
    error: type[Exception],
    message: str,
) -> None:
    server.script("/c", cut(code, BODY, 1000, reset=reset, chunked=chunked))
    raw = read_raw(client, f"{server.url}/c")
    assert raw.body == BODY[:1000]
    assert isinstance(raw.error, error)
    assert message in str(raw.error)


@pytest.mark.parametrize("after", [0, 16384])
def test_chunked_cut_at_a_chunk_boundary_is_still_incomplete(
    server: FaultServer, client: httpx.Client, after: int
) -> None:
    """Cut before any body byte, or right after a whole 16 KiB chunk: no last-chunk marker."""
    server.script("/c", cut(200, BODY, after, chunked=True))
    raw = read_raw(client, f"{server.url}/c")
    assert raw.body == BODY[:after]
    assert isinstance(raw.error, httpx.RemoteProtocolError)


@pytest.mark.parametrize("chunked", [False, True])
def test_stall_times_out_mid_body_and_ends_when_the_client_leaves(
    server: FaultServer, client: httpx.Client, chunked: bool
) -> None:
    server.script("/s", stalled(200, BODY, 5000, chunked=chunked))
    started = time.monotonic()
    raw = read_raw(client, f"{server.url}/s")
    assert raw.body == BODY[:5000]
    assert isinstance(raw.error, httpx.ReadTimeout)
    assert time.monotonic() - started >= 0.2
    deadline = time.monotonic() + 2
    while server.thread_count() > 1 and time.monotonic() < deadline:  # the accept loop stays
        time.sleep(0.01)
    assert server.thread_count() == 1


@pytest.mark.parametrize("chunked", [False, True])
def test_drip_sends_pieces_slowly(server: FaultServer, client: httpx.Client, chunked: bool) -> None:
    server.script("/d", dripping(200, 0.03, b"0123456789ab", size=4, chunked=chunked))
    arrivals: list[tuple[float, bytes]] = []
    with client.stream("GET", f"{server.url}/d") as response:
        for piece in response.iter_raw():
            arrivals.append((time.monotonic(), piece))
    assert b"".join(piece for _, piece in arrivals) == b"0123456789ab"
    assert len(arrivals) >= 2  # the first piece came before the rest was sent
    assert arrivals[-1][0] - arrivals[0][0] >= 0.03


def test_body_faults_keep_the_connection_alive_only_when_whole(
    server: FaultServer, client: httpx.Client
) -> None:
    """A cut ends its connection; a whole reply (even dripped) keeps it for the next request."""
    server.script("/k", dripping(200, 0.001, b"abc"), cut(200, BODY, 10), Reply())
    assert client.get(f"{server.url}/k").content == b"abc"
    assert read_raw(client, f"{server.url}/k").body == BODY[:10]
    assert client.get(f"{server.url}/k").content == b"ok"
    assert server.connections == 2


# -- representations: pure range logic ---------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bytes=0-", (0, 99)),
        ("bytes=10-19", (10, 19)),
        ("bytes=90-500", (90, 99)),
        ("bytes=-5", (95, 99)),
        ("bytes=-500", (0, 99)),
        ("BYTES = 3-4", (3, 4)),
        ("bytes=100-", UNSATISFIABLE),
        ("bytes=-0", UNSATISFIABLE),
        ("bytes=5-2", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=a-", None),
        ("bytes=-", None),
        ("bytes", None),
    ],
)
def test_parse_range(value: str, expected: object) -> None:
    assert parse_range(value, 100) == expected


@pytest.mark.parametrize(
    ("if_range", "etag", "last_modified", "holds"),
    [
        (None, '"v1"', None, True),
        ('"v1"', '"v1"', None, True),
        ('"v1"', '"v2"', None, False),
        ('"v1"', 'W/"v1"', None, False),  # strong comparison: a weak tag never matches
        ('W/"v1"', 'W/"v1"', None, False),
        ('"v1"', None, None, False),
        ("Sun, 06 Nov 1994 08:49:37 GMT", None, "Sun, 06 Nov 1994 08:49:37 GMT", True),
        ("Sun, 06 Nov 1994 08:49:38 GMT", None, "Sun, 06 Nov 1994 08:49:37 GMT", False),
        ("Sun, 06 Nov 1994 08:49:37 GMT", '"v1"', None, False),
    ],
)
def test_if_range(
    if_range: str | None, etag: str | None, last_modified: str | None, holds: bool
) -> None:
    assert if_range_holds(if_range, etag, last_modified) is holds


def test_answers_slice_the_representation_without_copying() -> None:
    representation = Representation(BODY)
    full = answer(representation, "GET", {}, Serve())
    part = answer(representation, "GET", {"range": "bytes=100-"}, Serve())
    assert (full.status, part.status) == (200, 206)
    assert full.body.obj is BODY
    assert part.body.obj is BODY
    assert bytes(part.body) == BODY[100:]


def test_head_announces_the_length_without_a_body() -> None:
    head = answer(Representation(BODY), "HEAD", {"range": "bytes=1-"}, Serve())
    assert (head.status, len(head.body), head.content_length) == (200, 0, len(BODY))


# -- representations over sockets ---------------------------------------------


def test_full_response_carries_validators(server: FaultServer, client: httpx.Client) -> None:
    modified = http_date(1_600_000_000)
    server.resource("/f", BODY, last_modified=modified, content_type="application/x-test")
    response = client.get(f"{server.url}/f")
    assert response.status_code == 200
    assert response.content == BODY
    headers = response.headers
    assert headers["etag"] == '"v1"'
    assert headers["last-modified"] == modified
    assert headers["accept-ranges"] == "bytes"
    assert headers["content-type"] == "application/x-test"
    assert headers["content-length"] == str(len(BODY))
    assert "date" in headers
    assert "content-range" not in headers


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize(
    ("request_headers", "code", "content_range", "part"),
    [
        ({"Range": "bytes=1000-"}, 206, "bytes 1000-65535/65536", slice(1000, None)),
        ({"Range": "bytes=10-19"}, 206, "bytes 10-19/65536", slice(10, 20)),
        ({"Range": "bytes=-6"}, 206, "bytes 65530-65535/65536", slice(65530, None)),
        ({"Range": "bytes=7-", "If-Range": '"v1"'}, 206, "bytes 7-65535/65536", slice(7, None)),
        ({"Range": "bytes=7-", "If-Range": '"v0"'}, 200, None, slice(None)),
        ({"Range": "bytes=7-", "If-Range": 'W/"v1"'}, 200, None, slice(None)),
        ({"Range": "bytes=0-1,4-5"}, 200, None, slice(None)),
        ({"Range": "bytes=65536-"}, 416, "bytes */65536", slice(0)),
    ],
)
def test_range_requests(
    server: FaultServer,
    client: httpx.Client,
    chunked: bool,
    request_headers: dict[str, str],
    code: int,
    content_range: str | None,
    part: slice,
) -> None:
    server.resource("/f", BODY, chunked=chunked)
    response = client.get(f"{server.url}/f", headers=request_headers)
    assert response.status_code == code
    assert response.headers.get("content-range") == content_range
    assert response.content == BODY[part]
    assert response.headers["etag"] == '"v1"'


def test_if_range_with_a_date(server: FaultServer, client: httpx.Client) -> None:
    """With no ETag, a Last-Modified date validates a range when it matches exactly."""
    modified = http_date(1_600_000_000)
    server.resource("/f", BODY, etag=None, last_modified=modified, date=http_date(1_700_000_000))
    matched = client.get(f"{server.url}/f", headers={"Range": "bytes=5-", "If-Range": modified})
    other = client.get(
        f"{server.url}/f", headers={"Range": "bytes=5-", "If-Range": http_date(1_600_000_001)}
    )
    assert (matched.status_code, matched.content) == (206, BODY[5:])
    assert (other.status_code, other.content) == (200, BODY)
    assert matched.headers["date"] == http_date(1_700_000_000)
    assert "etag" not in matched.headers


def test_requests_are_recorded(server: FaultServer, client: httpx.Client) -> None:
    server.resource("/f", BODY)
    client.get(f"{server.url}/f")
    client.get(
        f"{server.url}/f",
        headers={"Range": "bytes=9-", "If-Range": '"v1"', "Accept-Encoding": "gzip"},
    )
    assert server.request_headers("/f", "Range") == [None, "bytes=9-"]
    assert server.request_headers("/f", "if-range") == [None, '"v1"']
    assert server.request_headers("/f", "accept-encoding")[1] == "gzip"


def test_a_new_version_replaces_the_resource(server: FaultServer, client: httpx.Client) -> None:
    server.resource("/f", b"version one", etag='"v1"')
    server.resource("/f", b"version two", etag='"v2"')
    response = client.get(f"{server.url}/f", headers={"Range": "bytes=3-", "If-Range": '"v1"'})
    assert (response.status_code, response.content) == (200, b"version two")


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("reset", [False, True])
def test_cut_of_a_partial_response(
    server: FaultServer, client: httpx.Client, chunked: bool, reset: bool
) -> None:
    """Faults count bytes of the response actually sent: here 300 bytes of a 206 from 1000."""
    server.resource("/f", BODY, chunked=chunked)
    server.script("/f", Serve(cut_after=300, reset=reset))
    raw = read_raw(client, f"{server.url}/f", headers={"Range": "bytes=1000-"})
    assert raw.body == BODY[1000:1300]
    assert isinstance(raw.error, httpx.ReadError if reset else httpx.RemoteProtocolError)


def test_stall_and_drip_of_a_resource(server: FaultServer, client: httpx.Client) -> None:
    server.resource("/f", BODY)
    server.script("/f", Serve(stall_after=10), Serve(drip=0.01, drip_size=16384))
    raw = read_raw(client, f"{server.url}/f")
    assert (raw.body, type(raw.error)) == (BODY[:10], httpx.ReadTimeout)
    assert client.get(f"{server.url}/f", headers={"Range": "bytes=32768-"}).content == BODY[32768:]


def test_scripted_failure_modes(server: FaultServer, client: httpx.Client) -> None:
    """Each mode a resuming client must refuse, as a plain client sees it."""
    server.resource("/f", BODY)
    new_body = BODY[::-1]
    server.script(
        "/f",
        Serve(ignore_range=True),
        changed(new_body),
        changed(new_body),
        Serve(range_shift=-100),
        Serve(reported_total=99),
        Serve(etag='W/"v1"'),
        Serve(content_encoding="gzip"),
        Serve(unsatisfiable=True),
        status(503, b"busy"),
    )
    ranged = {"Range": "bytes=1000-", "If-Range": '"v1"'}
    url = f"{server.url}/f"

    ignored = client.get(url, headers=ranged)
    assert (ignored.status_code, ignored.content, ignored.headers["etag"]) == (200, BODY, '"v1"')

    replaced = client.get(url, headers=ranged)  # If-Range fails: the whole new representation
    assert (replaced.status_code, replaced.content) == (200, new_body)
    assert replaced.headers["etag"] == '"v2"'

    # Without If-Range a 206 of the *new* bytes comes back: splicing it would corrupt.
    foreign = client.get(url, headers={"Range": "bytes=1000-"})
    assert (foreign.status_code, foreign.content) == (206, new_body[1000:])

    shifted = client.get(url, headers=ranged)
    assert shifted.headers["content-range"] == "bytes 900-65535/65536"
    assert shifted.content == BODY[900:]

    wrong_total = client.get(url, headers=ranged)
    assert wrong_total.headers["content-range"] == "bytes 1000-65535/99"

    weak = client.get(url, headers=ranged)  # strong comparison fails against W/"v1"
    assert (weak.status_code, weak.headers["etag"], weak.content) == (200, 'W/"v1"', BODY)

    recoded = read_raw(client, url, headers=ranged).response
    assert recoded is not None
    assert (recoded.status_code, recoded.headers["content-encoding"]) == (206, "gzip")

    refused = client.get(url, headers=ranged)
    assert (refused.status_code, refused.headers["content-range"]) == (416, "bytes */65536")

    busy = client.get(url, headers=ranged)
    assert (busy.status_code, busy.content) == (503, b"busy")


@pytest.mark.parametrize("chunked", [False, True])
def test_gzip_representation_resumes_at_a_raw_offset(
    server: FaultServer, client: httpx.Client, chunked: bool
) -> None:
    """Ranges index the encoded bytes: raw prefix + raw 206 decode to the original."""
    original = b"".join(b"line %d\n" % i for i in range(20000))
    encoded = gzip_bytes(original)
    server.resource("/z", encoded, content_encoding="gzip", chunked=chunked)
    cut_at = len(encoded) // 3
    server.script("/z", Serve(cut_after=cut_at), Serve())
    prefix = read_raw(client, f"{server.url}/z")
    assert len(prefix.body) == cut_at
    assert prefix.error is not None
    rest = read_raw(
        client, f"{server.url}/z", headers={"Range": f"bytes={cut_at}-", "If-Range": '"v1"'}
    )
    assert rest.response is not None
    assert rest.response.status_code == 206
    assert rest.response.headers["content-encoding"] == "gzip"
    total = len(encoded)
    assert rest.response.headers["content-range"] == f"bytes {cut_at}-{total - 1}/{total}"
    assert gzip.decompress(prefix.body + rest.body) == original
    assert client.get(f"{server.url}/z").content == original  # the client decodes a 200


def test_large_representation_streams(server: FaultServer, client: httpx.Client) -> None:
    body = static_body(8 << 20)
    server.resource("/big", body)
    raw = read_raw(client, f"{server.url}/big", headers={"Range": "bytes=1-"})
    assert raw.error is None
    assert raw.body == body[1:]


def test_serve_on_a_path_with_no_resource_is_a_test_bug(server: FaultServer) -> None:
    server.script("/nothing", Serve())
    with pytest.raises(AssertionError, match="no resource"):
        server._served("/nothing", "GET", {}, Serve())


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_clients_see_the_same_cut(server: FaultServer, backend: str) -> None:
    server.resource("/f", BODY)
    server.script("/f", Serve(cut_after=700))

    async def main() -> tuple[bytes, Exception | None]:
        received = bytearray()
        async with httpx.AsyncClient(timeout=SHORT, verify=SSL_CONTEXT) as async_client:
            try:
                async with async_client.stream("GET", f"{server.url}/f") as response:
                    async for piece in response.aiter_raw():
                        received += piece
            except httpx.HTTPError as exc:
                return bytes(received), exc
        return bytes(received), None

    received, exc = anyio.run(main, backend=backend)
    assert received == BODY[:700]
    assert isinstance(exc, httpx.RemoteProtocolError)


# -- the cutting proxy --------------------------------------------------------


def test_proxy_cuts_after_body_bytes_once(server: FaultServer, client: httpx.Client) -> None:
    server.resource("/f", BODY)
    with CuttingProxy(server.url) as proxy:
        proxy.cut_next(after_body_bytes=4096)
        raw = read_raw(client, f"{proxy.url}/f")
        assert raw.body == BODY[:4096]
        assert isinstance(raw.error, httpx.RemoteProtocolError)
        assert client.get(f"{proxy.url}/f").content == BODY  # the next connection is whole
        assert proxy.connections == 2
        assert proxy.delivered[0] > 4096  # the head, then 4096 body bytes


def test_proxy_cuts_after_any_bytes_with_a_reset(server: FaultServer, client: httpx.Client) -> None:
    server.resource("/f", BODY)
    with CuttingProxy(server.url) as proxy:
        proxy.cut_next(after_bytes=10, reset=True)
        with pytest.raises(httpx.ReadError):  # 10 bytes of a status line, then ECONNRESET
            client.get(f"{proxy.url}/f")
        assert proxy.delivered == [10]


# -- uvicorn + Starlette StaticFiles ------------------------------------------


def test_starlette_static_files_honour_range_and_if_range(
    static_file_url: str, client: httpx.Client
) -> None:
    """FileResponse: a strong ETag (md5 of mtime and size), Range, If-Range (ETag or date)."""
    body = static_body()
    first = client.get(static_file_url)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert (first.status_code, first.content) == (200, body)
    assert etag.startswith('"')
    assert first.headers["accept-ranges"] == "bytes"
    assert modified == http_date(STATIC_MTIME)  # strong: a second or more before Date

    def ranged(**headers: str) -> httpx.Response:
        return client.get(static_file_url, headers={"Range": "bytes=100-", **headers})

    assert (
        ranged(**{"If-Range": etag}).headers["content-range"]
        == f"bytes 100-{len(body) - 1}/{len(body)}"
    )
    assert ranged(**{"If-Range": modified}).status_code == 206
    assert ranged(**{"If-Range": f"W/{etag}"}).status_code == 200
    assert ranged(**{"If-Range": '"other"'}).status_code == 200
    unsatisfiable = client.get(static_file_url, headers={"Range": f"bytes={len(body)}-"})
    assert (unsatisfiable.status_code, unsatisfiable.headers["content-range"]) == (
        416,
        f"bytes */{len(body)}",
    )
    # Deviations worth knowing: an unknown unit or a reversed range is a 400 (RFC 9110
    # says ignore), and a multi-range request gets multipart/byteranges.
    assert client.get(static_file_url, headers={"Range": "items=0-1"}).status_code == 400
    multi = client.get(static_file_url, headers={"Range": "bytes=0-1,4-5"})
    assert multi.headers["content-type"].startswith("multipart/byteranges")


def test_resume_through_the_proxy_against_uvicorn(
    static_file_url: str, client: httpx.Client
) -> None:
    body = static_body()
    origin, _, name = static_file_url.rpartition("/")
    with CuttingProxy(origin) as proxy:
        proxy.cut_next(after_body_bytes=65536)
        prefix = read_raw(client, f"{proxy.url}/{name}")
        assert len(prefix.body) == 65536
        assert isinstance(prefix.error, httpx.RemoteProtocolError)
        etag = client.head(f"{proxy.url}/{name}").headers["etag"]
        rest = client.get(
            f"{proxy.url}/{name}", headers={"Range": "bytes=65536-", "If-Range": etag}
        )
    assert rest.status_code == 206
    assert prefix.body + rest.content == body


def test_starlette_gzip_keeps_the_strong_etag_but_ranges_come_uncompressed(
    client: httpx.Client,
) -> None:
    """GZipMiddleware compresses a 200 on the fly under the file's strong ETag, and passes a
    206 through uncompressed: same ETag, another Content-Encoding. Only a Content-Encoding
    check stops a resume from splicing identity bytes into a gzip stream."""
    body = static_body(1 << 16)
    with static_file(body, gzip_minimum_size=500) as url:
        whole = client.get(url)
        assert whole.headers["content-encoding"] == "gzip"
        assert "content-length" not in whole.headers  # chunked: the length is unknown
        part = client.get(url, headers={"Range": "bytes=100-", "If-Range": whole.headers["etag"]})
    assert whole.content == body
    assert part.status_code == 206
    assert part.headers["etag"] == whole.headers["etag"]
    assert "content-encoding" not in part.headers
    assert part.content == body[100:]


# -- the h2 server: "not processed" signals -----------------------------------


@pytest.fixture
def h2_server() -> Iterator[H2Server]:
    with H2Server() as running:
        yield running


FLAVOURS = {"httpx": (httpx, httpcore), "httpx2": (httpx2, httpcore2)}


def h2_transport(lib: Any) -> Any:
    return lib.HTTPTransport(http1=False, http2=True, verify=SSL_CONTEXT)


NOT_PROCESSED = {
    "REFUSED_STREAM": (refuse(), h2.events.StreamReset, "error_code", ErrorCodes.REFUSED_STREAM),
    "GOAWAY(0)": (goaway(0), h2.events.ConnectionTerminated, "last_stream_id", 0),
}


@pytest.mark.parametrize("signal", NOT_PROCESSED)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_not_processed_signals_are_remote_protocol_errors_caused_by_the_h2_event(
    h2_server: H2Server, flavour: str, signal: str
) -> None:
    """`exc.__cause__` is httpcore's (httpcore2's) RemoteProtocolError; its args[0] the h2 event."""
    lib, core = FLAVOURS[flavour]
    action, event_type, field, value = NOT_PROCESSED[signal]
    h2_server.script("/p", action)
    with lib.Client(transport=h2_transport(lib)) as plain:
        with pytest.raises(lib.RemoteProtocolError) as caught:
            plain.post(f"{h2_server.url}/p", content=b"order")
        follow = plain.post(f"{h2_server.url}/p", content=b"order")
    cause = caught.value.__cause__
    assert isinstance(cause, core.RemoteProtocolError)
    event = cause.args[0]
    assert isinstance(event, event_type)
    assert getattr(event, field) == value
    assert (follow.status_code, follow.http_version) == (200, "HTTP/2")
    assert h2_server.processed("POST") == 1  # only the follow-up
    assert h2_server.refused == 1


def test_goaway_below_the_stream_is_retried_by_httpcore_itself(h2_server: H2Server) -> None:
    """The second request (stream 3) meets GOAWAY(1): httpcore resends it on a new connection."""
    h2_server.script("/p", Reply(), goaway(1), Reply(201, (), b"made"))
    with httpx.Client(transport=h2_transport(httpx)) as plain:
        first = plain.post(f"{h2_server.url}/p", content=b"1")
        second = plain.post(f"{h2_server.url}/p", content=b"2")
    assert (first.status_code, second.status_code) == (200, 201)
    assert h2_server.connections == 2
    assert h2_server.processed("POST") == 2


def test_reset_after_processing_and_flow_controlled_bodies(h2_server: H2Server) -> None:
    """A reset after 100 body bytes (the request was processed), then a body above 64 KiB."""
    big = static_body(300_000)
    h2_server.script("/r", Reset(ErrorCodes.INTERNAL_ERROR, after=100), Reply(200, (), big))
    with httpx.Client(transport=h2_transport(httpx), timeout=SHORT) as plain:
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            plain.get(f"{h2_server.url}/r")
        whole = plain.get(f"{h2_server.url}/r")
    assert caught.value.__cause__.args[0].error_code == ErrorCodes.INTERNAL_ERROR  # type: ignore[union-attr]
    assert whole.content == big
    assert h2_server.processed("GET") == 2


# -- hypercorn ----------------------------------------------------------------


def test_hypercorn_serves_h2_with_prior_knowledge(
    hypercorn: tuple[HypercornServer, ScriptedApp],
) -> None:
    server, app = hypercorn
    app.script("/a", status(503, b"x" * 100_000, retry_after="1"), Reply(201, (), b"made"))
    with h2_client(timeout=SHORT) as plain:
        busy = plain.get(f"{server.url}/a")
        made = plain.post(f"{server.url}/a", content=b"body")
        other = plain.get(f"{server.url}/other")
    assert (busy.status_code, len(busy.content), busy.headers["retry-after"]) == (503, 100_000, "1")
    assert (made.status_code, made.content, made.http_version) == (201, b"made", "HTTP/2")
    assert other.content == b"ok"
    assert (app.processed("GET", "/a"), app.processed("POST"), app.processed()) == (1, 1, 3)


@pytest.mark.parametrize(
    ("flavour", "read_bodies", "stalled"),
    [("httpx", False, [17]), ("httpx2", False, [17]), ("httpx", True, [])],
)
def test_hypercorn_h2_flow_control_stall_with_a_plain_client(
    hypercorn: tuple[HypercornServer, ScriptedApp],
    flavour: str,
    read_bodies: bool,
    stalled: list[int],
) -> None:
    """16 abandoned 1 MiB bodies fill the 16 MiB connection window: the 17th round's 200
    stalls. A client that reads its 503s never stalls."""
    server, app = hypercorn
    app.always("/busy", status(503, b"x" * LARGE_ERROR_BODY))
    lib = FLAVOURS[flavour][0]
    with h2_client(lib, timeout=lib.Timeout(5.0, read=0.3)) as plain:
        stalled_rounds = h2_abandoned_bodies_stall(
            plain, f"{server.url}/busy", f"{server.url}/ok", rounds=17, read_bodies=read_bodies
        )
    assert stalled_rounds == stalled


def test_hypercorn_goaway_after_max_requests_fails_a_processed_request() -> None:
    """keep_alive_max_requests=2: the 3rd request on a connection is processed by the app,
    then hypercorn sends GOAWAY(last_stream_id=5) and can no longer answer it."""
    app = ScriptedApp()
    with (
        HypercornServer(app, keep_alive_max_requests=2) as server,
        h2_client(timeout=SHORT) as plain,
    ):
        outcomes: list[object] = []
        for _ in range(4):
            try:
                outcomes.append(plain.get(f"{server.url}/g").status_code)
            except httpx.RemoteProtocolError as exc:
                outcomes.append(exc.__cause__.args[0])  # type: ignore[union-attr]
    assert outcomes[:2] == [200, 200]
    assert outcomes[3] == 200
    assert isinstance(outcomes[2], h2.events.ConnectionTerminated)
    assert outcomes[2].last_stream_id == 5
    assert app.processed() == 4


def test_hypercorn_restart_on_the_same_port(
    hypercorn: tuple[HypercornServer, ScriptedApp],
) -> None:
    """httpcore does not check a pooled HTTP/2 connection for EOF before reusing it: the
    first request after the stop fails on the dead connection, the next cannot connect."""
    server, app = hypercorn
    with h2_client(timeout=SHORT) as plain:
        assert plain.get(f"{server.url}/a").status_code == 200
        server.stop()
        with pytest.raises(httpx.RemoteProtocolError, match="Server disconnected"):
            plain.get(f"{server.url}/a")
        with pytest.raises(httpx.ConnectError):
            plain.get(f"{server.url}/a")
        server.start()
        assert plain.get(f"{server.url}/a").http_version == "HTTP/2"
    assert app.processed() == 2
    assert server.errors == []


def test_hypercorn_h2_app_failure_mid_body_leaves_the_stream_silent(
    hypercorn: tuple[HypercornServer, ScriptedApp],
) -> None:
    """No RST_STREAM follows an app error after the response started: the client times out."""
    server, app = hypercorn
    app.script("/c", cut(200, b"x" * 1000, 10))
    with (
        h2_client(timeout=SHORT) as plain,
        plain.stream("GET", f"{server.url}/c") as response,
        pytest.raises(httpx.ReadTimeout),
    ):
        response.read()


def test_hypercorn_h2_connection_reset_through_the_proxy(
    hypercorn: tuple[HypercornServer, ScriptedApp],
) -> None:
    server, app = hypercorn
    app.always("/big", Reply(200, (), b"y" * 200_000))
    with CuttingProxy(server.url) as proxy, h2_client(timeout=SHORT) as plain:
        proxy.cut_next(after_bytes=50_000, reset=True)
        # An RST met while httpcore sends a WINDOW_UPDATE is a WriteError instead.
        with pytest.raises((httpx.ReadError, httpx.WriteError)):
            plain.get(f"{proxy.url}/big")
        assert len(plain.get(f"{proxy.url}/big").content) == 200_000


def test_hypercorn_graceful_stop_refuses_new_streams_without_saying_so() -> None:
    """During the grace period an in-flight request completes; a new stream on the same
    connection is reset with NO_ERROR (0), not REFUSED_STREAM, and is not processed. When
    httpcore reads the closing GOAWAY first, the client sees that instead, and its
    last_stream_id counts the refused stream: neither signal proves "not processed"."""
    app = ScriptedApp()
    app.always("/slow", slow(0.4))
    with HypercornServer(app, graceful_timeout=2.0) as server, h2_client(timeout=2.0) as plain:
        plain.get(f"{server.url}/warm")
        outcome: dict[str, int] = {}

        def in_flight() -> None:
            outcome["slow"] = plain.get(f"{server.url}/slow").status_code

        threads = [threading.Thread(target=in_flight), threading.Thread(target=server.stop)]
        for thread in threads:
            thread.start()
            time.sleep(0.1)
        try:
            with pytest.raises(httpx.RemoteProtocolError) as caught:
                plain.get(f"{server.url}/late")
        finally:
            for thread in threads:
                thread.join(timeout=5)
    event = caught.value.__cause__.args[0]  # type: ignore[union-attr]
    if isinstance(event, h2.events.StreamReset):
        assert event.error_code == ErrorCodes.NO_ERROR
    else:
        assert isinstance(event, h2.events.ConnectionTerminated)
        assert event.last_stream_id == 5  # /late's own stream (1: /warm, 3: /slow)
    assert outcome == {"slow": 200}
    assert app.processed(path="/late") == 0


def test_uvicorn_closes_the_connection_when_the_app_fails_mid_body(client: httpx.Client) -> None:
    app = ScriptedApp()
    app.script("/c", cut(200, BODY, 100))
    with uvicorn_server(app) as url:
        raw = read_raw(client, f"{url}/c")
    assert raw.body == BODY[:100]
    assert isinstance(raw.error, httpx.RemoteProtocolError)


def test_gzip_bytes_are_deterministic() -> None:
    """gzip_bytes is deterministic (mtime 0), so a representation's bytes never drift."""
    assert gzip_bytes(b"abc") == gzip_bytes(b"abc")
    assert zlib.decompress(gzip_bytes(b"abc"), 31) == b"abc"
