"""Reading a response within the rules: a head within its cap, never more body than the cap.

A hostile or broken server cannot make a transport hold an unbounded body: the
read stops after :data:`~hiveon_async._config.MAX_RESPONSE_BYTES`, also after
gzip or deflate decoding, so a small gzip bomb cannot expand in memory. A body
that breaks the rules becomes an :class:`~._base.Answer` with a ``problem``;
what that means for the call is decided elsewhere.

The head (status line and header fields) is held to :data:`MAX_HEAD_BYTES` on
every pool alike (:func:`check_head`), below the point where any pool's own
parser refuses one, so that a response is accepted or refused the same way
whichever pool read it: one header of 10 KiB, or 200 headers, are fine; a head
over the cap is a protocol error (``httpx.RemoteProtocolError``), as a parser's
refusal of a head is.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Protocol

import anyio
import httpx

from .._config import MAX_RESPONSE_BYTES
from ._base import Answer

__all__ = [
    "MAX_HEAD_BYTES",
    "BodyTooLargeError",
    "HeadTooLargeError",
    "UndecodableBodyError",
    "UnreadableBodyError",
    "check_declared_length",
    "check_head",
    "close_iterator",
    "read_body",
    "read_capped",
    "read_httpx_answer",
]

#: The modules of httpx's and httpx2's pool transports, whose bodies are sockets'.
_HTTPX_POOLS = frozenset({"httpx._transports.default", "httpx2._transports.default"})

#: Reads allowed to drain a refused body after its connection was closed.
_DRAIN_LIMIT = 1024

TOO_LARGE = f"the body is over the {MAX_RESPONSE_BYTES // 1024} KiB cap"

#: The largest response head accepted: the status line and every header field, each
#: counted as on the wire (``name: value`` and a line break). httpcore's parser (h11)
#: refuses a head only past 100 KiB; aiohttp's is set to refuse none this cap allows.
MAX_HEAD_BYTES = 64 * 1024
#: The status line's bytes besides the reason: ``HTTP/1.1 200 `` and its line break, and
#: the empty line that ends the head.
_HEAD_FRAME = len(b"HTTP/1.1 200 \r\n\r\n")
#: A header field's bytes besides its name and value: ``: `` and its line break.
_FIELD_FRAME = len(b": \r\n")


class HeadTooLargeError(httpx.RemoteProtocolError):
    """The response head is over :data:`MAX_HEAD_BYTES` (on every pool alike)."""


def check_head(reason: bytes | str, headers: Iterable[tuple[bytes, bytes]]) -> None:
    """Refuse a response head over :data:`MAX_HEAD_BYTES`.

    Args:
        reason: The status line's reason phrase.
        headers: The raw header fields, as parsed.

    Raises:
        HeadTooLargeError: The head is over the cap.
    """
    size = _HEAD_FRAME + len(reason)
    for name, value in headers:
        size += len(name) + len(value) + _FIELD_FRAME
    if size > MAX_HEAD_BYTES:
        raise HeadTooLargeError(
            f"the response head is over the {MAX_HEAD_BYTES // 1024} KiB cap ({size} bytes)"
        )


class UnreadableBodyError(Exception):
    """The body could not be read within the rules."""

    head = b""

    @property
    def problem(self) -> str:
        """Why the body is unusable, for the error the call ends with."""
        return f"the body cannot be decoded ({self})"


class BodyTooLargeError(UnreadableBodyError):
    """The body passed the cap; carries what was read so far."""

    def __init__(self, head: bytes) -> None:
        super().__init__("response body over the size cap")
        self.head = head

    @property
    def problem(self) -> str:
        """Why the body is unusable."""
        return TOO_LARGE


class UndecodableBodyError(UnreadableBodyError):
    """The body uses a content encoding we do not decode, or is corrupt."""


class _Decoder(Protocol):
    """The part of a ``zlib.decompressobj`` the reader uses."""

    @property
    def unconsumed_tail(self) -> bytes: ...
    @property
    def eof(self) -> bool: ...
    def decompress(self, data: bytes, max_length: int = ..., /) -> bytes: ...


def _decompressor(encoding: str) -> _Decoder | None:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise UndecodableBodyError(f"unsupported content-encoding {encoding!r}")


async def close_iterator(iterator: AsyncIterator[bytes]) -> None:
    """Close an async generator left part-way (a no-op for other iterators)."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


def check_declared_length(content_length: str | None, limit: int = MAX_RESPONSE_BYTES) -> None:
    """Refuse a body whose Content-Length is over ``limit`` before reading any of it."""
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise BodyTooLargeError(b"")


async def read_capped(
    chunks: AsyncIterator[bytes],
    *,
    content_length: str | None,
    content_encoding: str | None,
    limit: int = MAX_RESPONSE_BYTES,
) -> bytes:
    """Read raw body chunks, decoding them, never holding more than ``limit`` bytes.

    Args:
        chunks: The body as it arrives (still content-encoded).
        content_length: The Content-Length header, if any.
        content_encoding: The Content-Encoding header, if any.
        limit: The most bytes to accept.

    Returns:
        The decoded body.

    Raises:
        BodyTooLargeError: The body is larger than ``limit`` (by its
            Content-Length or as it streamed).
        UndecodableBodyError: Unknown content encoding or corrupt compression.
    """
    check_declared_length(content_length, limit)
    decoder = _decompressor(content_encoding) if content_encoding else None
    parts: list[bytes] = []
    size = 0
    async for raw in chunks:
        if decoder is None:
            chunk = raw
        else:
            try:
                chunk = decoder.decompress(raw, limit + 1 - size)
            except zlib.error as exc:
                raise UndecodableBodyError("corrupt compressed body") from exc
        parts.append(chunk)
        size += len(chunk)
        if size > limit or (decoder is not None and decoder.unconsumed_tail):
            raise BodyTooLargeError(b"".join(parts)[:limit])
    if decoder is not None and not decoder.eof:
        raise UndecodableBodyError("truncated compressed body")
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def read_body(response: httpx.Response, *, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """Read a streamed ``httpx.Response``'s body, never holding more than ``limit`` bytes.

    Raises:
        BodyTooLargeError: The body is larger than ``limit``.
        UndecodableBodyError: Unknown content encoding or corrupt compression.
    """
    headers = response.headers
    if response.is_stream_consumed:  # a transport that hands over read responses (mocks)
        check_declared_length(headers.get("content-length"), limit)
        if len(response.content) > limit:
            raise BodyTooLargeError(response.content[:limit])
        return response.content
    stream = response.stream
    # A response of an async transport (httpx's AsyncByteStream, or httpx2's).
    assert isinstance(stream, AsyncIterable)
    raws = stream.__aiter__()
    try:
        return await read_capped(
            raws,
            content_length=headers.get("content-length"),
            content_encoding=headers.get("content-encoding"),
            limit=limit,
        )
    except UnreadableBodyError:
        if _over_httpx_pool(stream):
            await _abandon(response, raws)
        else:
            await close_iterator(raws)
        raise
    except BaseException:
        # Leaving early (an error, a cancellation) must close the body's generators
        # now, not at GC. Read to the end, they have finished by themselves.
        await close_iterator(raws)
        raise


def _over_httpx_pool(stream: AsyncIterable[bytes]) -> bool:
    """True for a body from httpx's (or httpx2's) own pool (a user's ``http_client``): a socket's.

    Its generators nest (httpx's over httpcore's), so it is abandoned with
    :func:`_abandon`. Any other body (a transport's, a mock's, the lean pool's,
    which closes its own) is closed as it is, and never read further.
    """
    inner = getattr(stream, "_stream", stream)  # httpx's client wraps its transport's stream
    return type(inner).__module__ in _HTTPX_POOLS


async def _abandon(response: httpx.Response, raws: AsyncIterator[bytes]) -> None:
    """Give up on a body we refused: close its connection, then let its generators end.

    An httpx body is a generator over a generator (over httpcore's). Closing the
    outer one leaves the inner ones suspended, for the garbage collector (a
    ResourceWarning on trio), and a connection half-read. Closing the response
    first closes the connection; reading on then fails at once (past what was
    already buffered) and every generator ends with that error.
    """
    with anyio.CancelScope(shield=True):
        await response.aclose()
    try:
        for _ in range(_DRAIN_LIMIT):
            await raws.__anext__()
    except Exception:  # the read failed on the closed connection, or the body ended
        return
    finally:
        await close_iterator(raws)


async def read_httpx_answer(response: httpx.Response) -> Answer:
    """Read a streamed ``httpx.Response`` into an :class:`Answer`, then close it.

    Raises:
        HeadTooLargeError: The head is over the cap; nothing of the body is read.
    """
    try:
        check_head(response.extensions.get("reason_phrase", b""), response.headers.raw)
        body = await read_body(response)
    except UnreadableBodyError as exc:
        return Answer(response.status_code, exc.head, response=response, problem=exc.problem)
    finally:
        await response.aclose()
    return Answer(response.status_code, body, response=response)
