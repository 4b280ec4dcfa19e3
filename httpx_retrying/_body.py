"""Reading response bodies inside the transport: preloading, and releasing discarded responses.

Sync and async twins that differ only by `await`. The decisions (how much to
read, for how long) are plain functions here too, so that the decision core
can plan a deadline around them without doing any I/O.
"""

from __future__ import annotations

import time
from typing import Any

from ._flavour import Flavour
from ._ranges import content_length

__all__ = [
    "DRAIN_LIMIT",
    "DRAIN_SECONDS",
    "HTTP2_DRAIN_SECONDS",
    "aread_body",
    "arelease",
    "aunwind",
    "read_body",
    "release",
    "release_seconds",
]

#: A discarded HTTP/1.1 response with at most this many body bytes is read before
#: it is closed, so its connection goes back to the pool for keep-alive; a larger
#: one is closed unread (its connection is dropped).
DRAIN_LIMIT = 64 * 1024
#: A discarded body is read for at most this long: a server trickling its error
#: body cannot hold the retry back.
DRAIN_SECONDS = 0.1
#: Over HTTP/2 a discarded body is read to its end (within this time): closing a
#: stream early neither resets it nor acknowledges its data (httpcore), so every
#: abandoned body would shrink the connection's flow-control window for good.
HTTP2_DRAIN_SECONDS = 1.0
#: A body that never awaits (in memory) is cut at this many times the drain limit.
_IN_MEMORY_CUT = 4


def _is_http2(response: Any) -> bool:
    version: object = response.extensions.get("http_version")
    return version == b"HTTP/2"


def _drain_plan(response: Any, flavour: Flavour) -> tuple[int | None, float]:
    """(most bytes to read, None for all; most seconds), or (0, 0.0) to close it unread."""
    if _is_http2(response):
        return None, HTTP2_DRAIN_SECONDS
    length = content_length(response.headers.get("content-length"))
    if length is not None and length > DRAIN_LIMIT:
        return 0, 0.0
    return DRAIN_LIMIT, DRAIN_SECONDS


def release_seconds(response: Any, flavour: Flavour) -> float:
    """The most time releasing `response` can take: what a deadline must leave room for.

    A sync read blocks for up to the read timeout `release` sets (the drain's
    time), and may start just before the drain's time is up: twice the drain.
    """
    if isinstance(response.stream, flavour.byte_stream):
        return 0.0
    return 2 * _drain_plan(response, flavour)[1]


def _keep(response: Any, flavour: Flavour, chunks: list[bytes]) -> None:
    """Give a fully read response an in-memory body: readable again, like an unread one.

    The chunks are kept as they came: joining them would hold the body twice.
    """
    response.stream = flavour.buffered_stream(chunks)


def _close(chunk_iterator: Any) -> None:
    """Close a generator left mid-way (a plain iterator has nothing to close)."""
    close = getattr(chunk_iterator, "close", None)
    if close is not None:
        close()


async def _aclose(chunk_iterator: Any) -> None:
    aclose = getattr(chunk_iterator, "aclose", None)
    if aclose is not None:
        await aclose()


def _preloaded(
    response: Any,
    flavour: Flavour,
    chunks: list[bytes],
    received: int,
    length: int,
    error: Exception | None,
) -> tuple[Exception | None, str]:
    """A preload's outcome: a short body is a break too; a whole one is kept in memory.

    A break comes with where it happened, for the retry's reason (`" at body byte 5 of 9"`).
    """
    if error is None and received < length:
        error = flavour.remote_protocol_error(f"the body ended at byte {received} of {length}")
    if error is None:
        _keep(response, flavour, chunks)
        return None, ""
    return error, f" at body byte {received} of {length}"


def release(response: Any, request: Any, flavour: Flavour) -> None:
    """Give a response we will not return back to the pool, keeping small ones alive.

    A body read to its end within the limits is kept in memory (the response
    stays readable, for hooks and for a late give-up); anything else is closed.
    Each read's timeout is cut to the drain's time while it runs, through the
    `timeout` extension that httpcore reads when a body read starts.
    """
    stream = response.stream
    if isinstance(stream, flavour.byte_stream):
        return  # already in memory (MockTransport, caches): nothing can stall or leak
    limit, seconds = _drain_plan(response, flavour)
    if limit == 0:
        response.close()
        return
    extensions = request.extensions
    saved = extensions.get("timeout")
    extensions["timeout"] = {**(saved or {}), "read": seconds}
    chunks: list[bytes] = []
    received, complete = 0, False
    chunk_iterator = iter(stream)
    try:
        give_up_at = time.monotonic() + seconds
        for chunk in chunk_iterator:
            received += len(chunk)
            if received <= DRAIN_LIMIT:
                chunks.append(chunk)
            if (limit is not None and received > limit) or time.monotonic() > give_up_at:
                break
        else:
            complete = received <= DRAIN_LIMIT
    except flavour.transport_error:
        pass  # a broken connection: closing discards it
    finally:
        if saved is None:
            del extensions["timeout"]
        else:
            extensions["timeout"] = saved
        try:
            _close(chunk_iterator)
        finally:
            if complete:
                stream.close()
                _keep(response, flavour, chunks)
            else:
                response.close()


async def arelease(response: Any, request: Any, flavour: Flavour) -> None:
    """`release` for async responses: reads are bounded by cancellation instead of timeouts.

    The close is left to the inner transport, which shields its own (httpcore does).
    """
    stream = response.stream
    if isinstance(stream, flavour.byte_stream):
        return
    limit, seconds = _drain_plan(response, flavour)
    if limit == 0:
        await response.aclose()
        return
    import anyio

    chunks: list[bytes] = []
    received, complete = 0, False
    chunk_iterator = aiter(stream)
    try:
        # Stopped by cancelling, not by `break`: the cancellation is raised inside
        # httpcore's nested body generators at their next read and unwinds them; a
        # `break` leaves them to the garbage collector (trio warns). A stream that
        # never awaits (in memory) is cut at a multiple of the limit.
        with anyio.move_on_after(seconds) as scope:
            async for chunk in chunk_iterator:
                received += len(chunk)
                if received <= DRAIN_LIMIT:
                    chunks.append(chunk)
                if limit is not None and received > limit:
                    scope.cancel()
                    if received > _IN_MEMORY_CUT * limit:
                        break
            else:
                complete = received <= DRAIN_LIMIT
    except flavour.transport_error:
        pass
    finally:
        try:
            await _aclose(chunk_iterator)
        finally:
            if complete:
                await stream.aclose()
                _keep(response, flavour, chunks)
            else:
                await response.aclose()


def _overlong(flavour: Flavour, length: int) -> Exception:
    return flavour.remote_protocol_error(f"the body is longer than its Content-Length ({length})")


def read_body(response: Any, length: int, flavour: Flavour) -> tuple[Exception | None, str]:
    """Preload: read a body of `length` raw bytes into memory; (the error that broke it, where).

    On success the response gets an in-memory body and is as unread as before:
    `read()`, `iter_bytes()` and `iter_raw()` all work. On failure it is closed.
    """
    stream = response.stream
    chunks: list[bytes] = []
    received = 0
    error: Exception | None = None
    chunk_iterator = iter(stream)
    try:
        for chunk in chunk_iterator:
            received += len(chunk)
            if received > length:
                error = _overlong(flavour, length)
                break
            chunks.append(chunk)
    except flavour.transport_error as exc:
        error = exc
    finally:
        try:
            _close(chunk_iterator)
        finally:
            stream.close()
    return _preloaded(response, flavour, chunks, received, length, error)


async def aread_body(response: Any, length: int, flavour: Flavour) -> tuple[Exception | None, str]:
    """`read_body` for async responses."""
    stream = response.stream
    chunks: list[bytes] = []
    received = 0
    error: Exception | None = None
    chunk_iterator = aiter(stream)
    try:
        async for chunk in chunk_iterator:
            received += len(chunk)
            if received > length:
                error = _overlong(flavour, length)
                await aunwind(chunk_iterator, flavour)
                break
            chunks.append(chunk)
    except flavour.transport_error as exc:
        error = exc
    finally:
        try:
            await _aclose(chunk_iterator)
        finally:
            await stream.aclose()
    return _preloaded(response, flavour, chunks, received, length, error)


async def aunwind(chunk_iterator: Any, flavour: Flavour) -> None:
    """Stop an async body iterator left mid-way, unwinding the generators beneath it.

    Its next read is cancelled, which raises inside httpcore's nested generators
    and finishes them (closing only the outer one would leave the inner ones to
    the garbage collector, and trio warns). Chunks already buffered are skipped.
    """
    import anyio

    with anyio.CancelScope() as scope:
        scope.cancel()
        try:
            for _ in range(_IN_MEMORY_CUT * 16):
                await chunk_iterator.__anext__()
        except (StopAsyncIteration, flavour.transport_error):
            pass
