"""What differs between httpx and httpx2: classes, and nothing else.

httpx2 is a continuation of httpx with the same API under another import name,
so one `Flavour` built from either module gives the retry core everything it
needs to know about the library it serves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

__all__ = ["Flavour"]


class _Buffered:
    """A body read into memory, kept as the chunks it arrived in (never copied into one)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


class Flavour:
    """The library-specific classes the retry core works with."""

    __slots__ = (
        "async_base",
        "async_default",
        "async_stream",
        "buffered_stream",
        "byte_stream",
        "maybe_sent",
        "name",
        "never_sent",
        "remote_protocol_error",
        "request",
        "response",
        "sync_base",
        "sync_default",
        "sync_stream",
        "timeout",
        "transport_error",
    )

    def __init__(self, module: ModuleType) -> None:
        """Read the classes of `httpx` or `httpx2` (the same names in both)."""
        self.name: str = module.__name__
        self.sync_base: type[Any] = module.BaseTransport
        self.async_base: type[Any] = module.AsyncBaseTransport
        self.sync_default: type[Any] = module.HTTPTransport
        self.async_default: type[Any] = module.AsyncHTTPTransport
        self.request: type[Any] = module.Request
        self.response: type[Any] = module.Response
        self.byte_stream: type[Any] = module.ByteStream
        #: An in-memory body (a `ByteStream`, so clients and the retry rules treat it as one).
        self.buffered_stream: type[Any] = type(
            "BufferedStream", (_Buffered, module.ByteStream), {"__module__": __name__}
        )
        self.sync_stream: type[Any] = module.SyncByteStream
        self.async_stream: type[Any] = module.AsyncByteStream
        self.transport_error: type[Exception] = module.TransportError
        self.remote_protocol_error: type[Exception] = module.RemoteProtocolError
        self.timeout: type[Exception] = module.TimeoutException
        #: Nothing was sent: safe to resend for any method and any body.
        self.never_sent: tuple[type[Exception], ...] = (
            module.ConnectError,
            module.ConnectTimeout,
            module.PoolTimeout,
        )
        #: The request may have reached the server: resend only if idempotent and replayable.
        #: Bare and unknown subclasses count too (mock, cache and wrapper transports raise them).
        #: Everything else (`LocalProtocolError`, `UnsupportedProtocol`, `ProxyError`) is never
        #: retried: it fails the same way again.
        self.maybe_sent: tuple[type[Exception], ...] = (
            module.TimeoutException,
            module.NetworkError,
            module.RemoteProtocolError,
        )
