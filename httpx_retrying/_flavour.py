"""What differs between httpx and httpx2: classes, and nothing else.

httpx2 is a continuation of httpx with the same API under another import name,
so one `Flavour` built from either module gives the retry core everything it
needs to know about the library it serves.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any

__all__ = ["Flavour"]


@dataclasses.dataclass(frozen=True, slots=True)
class Flavour:
    """The library-specific classes the retry core works with."""

    name: str
    sync_base: type[Any]
    async_base: type[Any]
    sync_default: type[Any]
    async_default: type[Any]
    request: type[Any]
    byte_stream: type[Any]
    transport_error: type[Exception]
    #: Nothing was sent: safe to resend for any method and any body.
    never_sent: tuple[type[Exception], ...]
    #: The request may have reached the server: resend only if idempotent and replayable.
    maybe_sent: tuple[type[Exception], ...]

    @classmethod
    def of(cls, module: ModuleType) -> Flavour:
        """Build the flavour of `httpx` or `httpx2` (the same names in both)."""
        return cls(
            name=module.__name__,
            sync_base=module.BaseTransport,
            async_base=module.AsyncBaseTransport,
            sync_default=module.HTTPTransport,
            async_default=module.AsyncHTTPTransport,
            request=module.Request,
            byte_stream=module.ByteStream,
            transport_error=module.TransportError,
            never_sent=(module.ConnectError, module.ConnectTimeout, module.PoolTimeout),
            maybe_sent=(
                module.ReadTimeout,
                module.ReadError,
                module.WriteTimeout,
                module.WriteError,
                module.RemoteProtocolError,
            ),
        )
