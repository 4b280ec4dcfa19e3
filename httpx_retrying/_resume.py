"""Response streams that resume a download which breaks mid-body, byte-exact.

The transport hands the caller a response whose stream is one of these. It
passes the inner stream's raw bytes through, counting them in a `Splice`; when
the inner stream breaks (or ends short), it asks the transport to retry with a
`Range` continuation, checks that the answer continues the same body, and goes
on splicing from it. Whatever cannot be continued raises the break itself,
with the story as a note. Sync and async twins; the arithmetic is in `_ranges`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from ._body import aunwind
from ._call import RetryCall
from ._flavour import Flavour
from ._ranges import Splice

if TYPE_CHECKING:  # pragma: no cover
    from ._transport import RetryTransportBase

__all__ = ["AsyncResumingStream", "ResumingStream", "resuming_streams"]


class _Resuming:
    """What both twins hold: the call, the splice, and the inner stream now read."""

    __slots__ = ("_call", "_chunks", "_mark", "_splice", "_stream", "_transport")

    def __init__(
        self,
        transport: RetryTransportBase[Any, Any, Any, Any],
        call: RetryCall,
        splice: Splice,
        stream: Any,
    ) -> None:
        self._transport = transport
        self._call = call
        self._splice = splice
        self._stream: Any = stream  # None once the body is complete or closed
        self._chunks: Any = None  # the inner stream's iterator, once reading started
        self._mark = 0  # bytes delivered when the current inner stream started

    def _progressed(self) -> bool:
        """Whether the inner stream that just broke delivered new bytes (resetting `_mark`)."""
        delivered = self._splice.delivered
        progressed, self._mark = delivered > self._mark, delivered
        return progressed

    def _short(self) -> Exception | None:
        why = self._splice.shortfall()
        return None if why is None else self._call.env.flavour.remote_protocol_error(why)


class ResumingStream(_Resuming):
    """The sync twin: an httpx `SyncByteStream`."""

    __slots__ = ()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        splice = self._splice
        transport_error = self._call.env.flavour.transport_error
        while self._stream is not None:
            if self._chunks is None:
                self._chunks = iter(self._stream)
            try:
                chunk = next(self._chunks)
            except StopIteration:
                error = self._short()
                if error is None:
                    self.close()
                    break
            except transport_error as exc:
                if splice.satisfied:  # every byte owed arrived: a break after them is not ours
                    self.close()
                    break
                error = exc
            except BaseException:
                self.close()
                raise
            else:
                piece = splice.take(chunk)
                if piece:
                    return piece
                if splice.satisfied:  # bytes beyond the body we want: stop reading them
                    self.close()
                continue
            self._continue(error)
        raise StopIteration

    def _continue(self, error: Exception) -> None:
        self._close_inner()
        response = self._transport._resume(self._call, self._splice, error, self._progressed())
        self._stream, self._chunks = response.stream, None

    def _close_inner(self) -> None:
        stream, chunks = self._stream, self._chunks
        self._stream = self._chunks = None
        try:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        finally:
            if stream is not None:
                stream.close()

    def close(self) -> None:
        self._close_inner()


class AsyncResumingStream(_Resuming):
    """The async twin: an httpx `AsyncByteStream` (asyncio and trio)."""

    __slots__ = ()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        splice = self._splice
        transport_error = self._call.env.flavour.transport_error
        while self._stream is not None:
            if self._chunks is None:
                self._chunks = aiter(self._stream)
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                error = self._short()
                if error is None:
                    await self.aclose()
                    break
            except transport_error as exc:
                if splice.satisfied:
                    await self.aclose()
                    break
                error = exc
            except BaseException:
                await self.aclose()
                raise
            else:
                piece = splice.take(chunk)
                if piece:
                    return piece
                if splice.satisfied:
                    await self.aclose()
                continue
            await self._acontinue(error)
        raise StopAsyncIteration

    async def _acontinue(self, error: Exception) -> None:
        await self._aclose_inner(unwind=False)
        response = await self._transport._aresume(
            self._call, self._splice, error, self._progressed()
        )
        self._stream, self._chunks = response.stream, None

    async def _aclose_inner(self, *, unwind: bool) -> None:
        """Close the inner stream; `unwind` first stops an iterator left mid-way (`aunwind`)."""
        stream, chunks = self._stream, self._chunks
        self._stream = self._chunks = None
        try:
            if chunks is not None:
                if unwind:
                    await aunwind(chunks, self._call.env.flavour)
                aclose = getattr(chunks, "aclose", None)
                if aclose is not None:
                    await aclose()
        finally:
            if stream is not None:
                await stream.aclose()

    async def aclose(self) -> None:
        await self._aclose_inner(unwind=True)


_stream_classes: dict[str, tuple[type[ResumingStream], type[AsyncResumingStream]]] = {}


def resuming_streams(flavour: Flavour) -> tuple[type[ResumingStream], type[AsyncResumingStream]]:
    """The two streams as subclasses of the library's own stream classes (clients check them)."""
    classes = _stream_classes.get(flavour.name)
    if classes is None:
        classes = _stream_classes[flavour.name] = (
            type("ResumingStream", (ResumingStream, flavour.sync_stream), {"__slots__": ()}),
            type(
                "AsyncResumingStream",
                (AsyncResumingStream, flavour.async_stream),
                {"__slots__": ()},
            ),
        )
    return classes
