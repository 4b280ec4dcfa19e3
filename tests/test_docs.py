"""Every Python block of the README and of the documentation pages runs, against a local server.

The examples use real-looking URLs (`https://example.org/`, `https://api.example.com/...`). For
the duration of a block, every host name but localhost resolves to a `FaultServer` on 127.0.0.1,
whatever port is asked (`socket.getaddrinfo` answers with the server's address, and
`anyio.connect_tcp`, which connects to the port it was asked for, is pointed at it). The server
speaks TLS when the client starts a handshake, with a certificate for the example domains from a
throwaway CA (`trustme`) that the block's clients trust through `SSL_CERT_FILE` (httpx and httpx2
read it when they build their default SSL context). It answers 200 unless a `Scenario` below
scripts the failures a block's text talks about, and then checks that the retries happened.
Blocks of `docs/sdks.md` need the SDKs' fake API: they run in `tests/test_sdks.py`.

Also here: the README's blocks are all in the type-checked `tests/typecheck/readme_examples.py`,
every fenced block is Python, shell or text (nothing else hides from this runner), and the storm
plots the site shows are the benchmark's own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
import re
import socket
import ssl
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import trustme

from httpx_retrying import _testing
from tests.markdown_blocks import DOCS, README, ROOT, SDK_PAGE, Block, documents, python_blocks
from tests.servers import FaultServer, Serve, cut, ok, status

HOSTS = ("example.org", "*.example.org", "example.com", "*.example.com")
LOCAL = {"localhost", "127.0.0.1", "::1"}
TYPECHECKED = ROOT / "tests" / "typecheck" / "readme_examples.py"

#: The preloading example's document: 40 models, 1270 bytes.
MODELS = json.dumps(
    {"data": [{"id": index, "name": f"model-{index}"} for index in range(40)]}
).encode()
#: The resuming example's download, cut twice on its way.
DATASET = random.Random(12).randbytes(5_000_000)


class DocServer(FaultServer):
    """A `FaultServer` that answers TLS handshakes too (one port for http:// and https://)."""

    def __init__(self, tls: ssl.SSLContext) -> None:
        super().__init__()
        self._tls = tls

    def _serve(self, sock: socket.socket, number: int) -> None:
        sock.settimeout(5.0)
        if sock.recv(1, socket.MSG_PEEK) != b"\x16":  # not a TLS ClientHello: plain HTTP
            super()._serve(sock, number)
            return
        # The TLS socket takes over the descriptor: it is the one to shut down and close.
        self.untrack(sock)
        with self._tls.wrap_socket(sock, server_side=True) as tls:
            self.track(tls)
            try:
                super()._serve(tls, number)
            finally:
                self.untrack(tls)


@dataclasses.dataclass(frozen=True)
class Scenario:
    """What the server does for one block, and what must have happened after it ran.

    `needle` picks the block (it must occur in exactly one block of `document`).
    `printed`, if given, is what the block prints, and must also appear verbatim in the
    document (so the text the reader sees is what the code does).
    """

    document: Path
    needle: str
    script: Callable[[FaultServer], None]
    check: Callable[[FaultServer, str], None] = lambda server, out: None
    printed: str | None = None


def _requests(path: str, expected: int) -> Callable[[FaultServer, str], None]:
    def check(server: FaultServer, out: str) -> None:
        assert server.count(path) == expected, server.count(path)

    return check


def _resumed(server: FaultServer, out: str) -> None:
    digest, reasons = out.splitlines()
    assert digest == hashlib.sha256(DATASET).hexdigest()
    assert reasons == str(
        [
            "RemoteProtocolError at byte 2000000, resumed",
            "RemoteProtocolError at byte 4000000, resumed",
        ]
    )
    assert server.request_headers("/dataset.bin", "range") == [
        None,
        "bytes=2000000-4999999",
        "bytes=4000000-4999999",
    ]


SCENARIOS = [
    Scenario(
        README,
        'client.get("https://example.org/")  # 503s',
        lambda server: server.script("/", status(503, b"busy"), ok()),
        _requests("/", 2),
    ),
    Scenario(
        README,
        'extensions={"retry": False}',
        lambda server: server.script("/health", status(503, b"busy")),
        _requests("/health", 1),  # no retry: the 503 is the answer
    ),
    Scenario(
        DOCS / "index.md",
        'client.get("https://example.org/")  # 503s',
        lambda server: server.script("/", status(503, b"busy"), ok()),
        _requests("/", 2),
    ),
    Scenario(
        DOCS / "getting-started.md",
        "on_retry=show",
        lambda server: server.script("/flaky", status(503, b"busy"), ok()),
        _requests("/flaky", 2),
        printed="attempt 1 failed with status 503; next in 0.2 s\n200",
    ),
    Scenario(
        DOCS / "getting-started.md",
        'extensions={"retry": False}',
        lambda server: server.script("/health", status(503, b"busy")),
        _requests("/health", 1),
    ),
    Scenario(
        DOCS / "getting-started.md",
        "def refuse(",
        lambda server: None,
        printed=(
            "httpx_retrying: gave up after 3 attempt(s) (attempt 1: ConnectError, retried after "
            "0.000 s; attempt 2: ConnectError, retried after 0.000 s; attempt 3: ConnectError; "
            "all 3 attempts used)"
        ),
    ),
    Scenario(
        DOCS / "policy.md",
        '{"attempts": 0}',
        lambda server: None,
        printed="RetryPolicy attempts must be >= 1, got 0",
    ),
    Scenario(
        DOCS / "body-phase.md",
        "/v1/models",
        lambda server: server.script(
            "/v1/models", cut(200, MODELS, 10, content_type="application/json"), ok(MODELS)
        ),
        _requests("/v1/models", 2),
        printed="40\n['RemoteProtocolError at body byte 10 of 1270']",
    ),
    Scenario(
        DOCS / "body-phase.md",
        "/dataset.bin",
        lambda server: (
            server.resource("/dataset.bin", DATASET),
            server.script("/dataset.bin", Serve(cut_after=2_000_000), Serve(cut_after=2_000_000)),
        ),
        _resumed,
    ),
]


def _run_blocks() -> list[Block]:
    return [block for path in documents() if path != SDK_PAGE for block in python_blocks(path)]


BLOCKS = _run_blocks()


def _scenario_for(block: Block) -> Scenario | None:
    found = [s for s in SCENARIOS if s.document == block.path and s.needle in block.code]
    assert len(found) <= 1, [s.needle for s in found]
    return found[0] if found else None


# -- the environment a block runs in ------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    """A CA file for the clients, and the server's TLS context for the example domains."""
    authority = trustme.CA()
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(*HOSTS).configure_cert(server_context)
    return ca_file, server_context


@pytest.fixture
def doc_server(
    certificates: tuple[Path, ssl.SSLContext], monkeypatch: pytest.MonkeyPatch
) -> Iterator[DocServer]:
    """The server every non-local host name resolves to, trusted by the block's clients."""
    ca_file, server_context = certificates
    real_getaddrinfo = socket.getaddrinfo
    with DocServer(server_context) as server:

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else host
            if name is None or name in LOCAL:
                return real_getaddrinfo(host, port, *args, **kwargs)
            address = ("127.0.0.1", server.port)
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address)]

        real_connect_tcp = anyio.connect_tcp

        async def connect_tcp(remote_host: Any, remote_port: int, **kwargs: Any) -> Any:
            # anyio connects to the port asked for, not to the one getaddrinfo gave.
            if str(remote_host) not in LOCAL:
                remote_port = server.port
            return await real_connect_tcp(remote_host, remote_port, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(anyio, "connect_tcp", connect_tcp)
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        yield server


@pytest.fixture
def package_logger() -> Iterator[None]:
    """A block may turn the package's log lines on; put the level back afterwards."""
    logger = logging.getLogger("httpx_retrying")
    level = logger.level
    yield
    logger.setLevel(level)


# -- the tests ----------------------------------------------------------------------


def test_the_documents_have_python_blocks() -> None:
    """The runner finds the blocks (a changed fence syntax would silently run nothing)."""
    assert len(python_blocks(README)) >= 2
    assert len(BLOCKS) >= 30
    for scenario in SCENARIOS:  # each scenario still picks exactly one block
        assert (
            sum(
                scenario.document == block.path and scenario.needle in block.code
                for block in BLOCKS
            )
            == 1
        ), scenario.needle


@pytest.mark.usefixtures("package_logger")
@pytest.mark.parametrize("block", BLOCKS, ids=[block.name for block in BLOCKS])
def test_block_runs(
    block: Block, doc_server: DocServer, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = _scenario_for(block)
    if scenario is not None:
        scenario.script(doc_server)

    exec(compile(block.code, block.name, "exec"), {"__name__": "docs_example"})

    out = capsys.readouterr().out.strip()
    assert _testing.current() == (False, None), "the block left the testing mode on"
    if scenario is not None:
        scenario.check(doc_server, out)
        if scenario.printed is not None:
            assert out == scenario.printed
            assert scenario.printed in block.path.read_text(encoding="utf-8")


def test_every_readme_block_is_type_checked() -> None:
    """`mypy --strict tests/typecheck/readme_examples.py` checks them; here, that none is missing.

    Each block is there as it is, indented into a function of its own.
    """
    checked = TYPECHECKED.read_text(encoding="utf-8")
    for block in python_blocks(README):
        assert textwrap.indent(block.code, "    ") in checked, block.name


FENCE = re.compile(r"^```(\S*)", flags=re.MULTILINE)


@pytest.mark.parametrize("path", documents(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_fence_is_python_shell_or_text(path: Path) -> None:
    """A block this runner skips says what it is: shell commands or output, never unlabelled."""
    languages = FENCE.findall(path.read_text(encoding="utf-8"))
    openings = languages[::2]  # fences come in pairs: the opening one carries the language
    assert set(openings) <= {"python", "sh", "text"}, openings
    assert all(closing == "" for closing in languages[1::2])


@pytest.mark.parametrize("plot", sorted((DOCS / "assets").glob("storm_*.png")), ids=str)
def test_the_site_shows_the_benchmarks_own_plots(plot: Path) -> None:
    """docs/assets holds copies (MkDocs serves only docs/); rerunning the benchmark needs a copy.

    After `python -m benchmarks.storm`: `cp benchmarks/results/storm_*.png docs/assets/`.
    """
    assert plot.read_bytes() == (ROOT / "benchmarks" / "results" / plot.name).read_bytes()
