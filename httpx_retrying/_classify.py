"""Could the failed request have been processed? The question every retry rule starts from.

Pure functions over exception objects: no I/O, no imports of h2 or httpcore
(their events are recognised by class name, through the `__cause__` chain that
httpx keeps when it maps httpcore's exceptions).
"""

from __future__ import annotations

import enum
import ssl
from collections.abc import Iterator

from ._flavour import Flavour

__all__ = ["Sent", "classify"]

# RFC 9113 section 7: the stream was closed before any processing happened.
_REFUSED_STREAM = 0x7
# How far down a `__cause__`/`__context__` chain to look: exceptions chain a few levels deep.
_CHAIN_LIMIT = 8


class Sent(enum.Enum):
    """What an exception proves about the request."""

    NEVER = "never sent"  # nothing left the client: any method, any body
    NOT_PROCESSED = "not processed"  # the server says so (HTTP/2): any method, replayable body
    MAYBE = "maybe processed"  # idempotent (or vouched for) and replayable only
    CLIENT_SIDE = "client-side"  # fails the same way again: never retried


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen and len(seen) < _CHAIN_LIMIT:
        yield cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__


def _certificate_failure(error: BaseException) -> bool:
    """A ConnectError caused by a failed certificate check will fail the same way again."""
    return any(isinstance(cause, ssl.SSLCertVerificationError) for cause in _chain(error))


def _h2_not_processed(error: BaseException) -> bool:
    """REFUSED_STREAM, or GOAWAY with last-stream-id 0 (RFC 9113 section 8.7)."""
    for cause in _chain(error):
        for event in cause.args[:1]:
            kind = type(event).__name__
            if kind == "StreamReset" and getattr(event, "error_code", None) == _REFUSED_STREAM:
                return True
            if kind == "ConnectionTerminated" and getattr(event, "last_stream_id", None) == 0:
                return True
    return False


def classify(error: BaseException, flavour: Flavour) -> Sent:
    """Sort a transport error by what it proves about the request it failed."""
    if isinstance(error, flavour.never_sent):
        return Sent.CLIENT_SIDE if _certificate_failure(error) else Sent.NEVER
    if isinstance(error, flavour.remote_protocol_error) and _h2_not_processed(error):
        return Sent.NOT_PROCESSED
    if isinstance(error, flavour.maybe_sent):
        return Sent.MAYBE
    return Sent.CLIENT_SIDE
