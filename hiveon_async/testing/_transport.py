"""The in-process runner: an httpx transport that answers from a FakeVendorAPI.

No socket is opened. Faults raise the httpx exception types that httpcore
raises for them on a real socket (checked on asyncio and trio: a reset is a
ReadError, a drop a RemoteProtocolError with httpcore's message, silence past
the request's read timeout a ReadTimeout), and the read timeout is honoured
wherever a socket read would wait.

It speaks httpx, or httpx2 when made for it (``fake.transport(library="httpx2")``):
then it is an ``httpx2.AsyncBaseTransport`` and answers with httpx2's responses
and exceptions, for an ``httpx2.AsyncClient`` (or a client on httpx2) to use.
"""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import anyio
import httpx

from .._http_library import HTTPX, HttpLibrary
from ._reply import BODY_FAULTS, Backend

if TYPE_CHECKING:
    from ._faults import Fault
    from ._reply import Reply

__all__ = ["FakeTransport", "fake_transport"]

#: Bytes per chunk of a chunked body.
CHUNK_BYTES = 16 * 1024
_DISCONNECTED = "Server disconnected without sending a response."


def _read_timeout(request: httpx.Request) -> float | None:
    timeout = request.extensions.get("timeout")
    return None if timeout is None else timeout.get("read")


async def _wait(
    seconds: float, read_timeout: float | None, request: httpx.Request, library: HttpLibrary
) -> None:
    # A socket read gives up after read_timeout; so does this wait.
    if read_timeout is not None and read_timeout < seconds:
        await anyio.sleep(read_timeout)
        raise library.http.ReadTimeout("timed out", request=request)
    await anyio.sleep(seconds)


class _PiecewiseStream:
    """A body that arrives ``size`` bytes at a time.

    Given the ``request``, each piece waits ``interval`` seconds first, cut off
    at the request's read timeout as a socket read would be: a trickle is one
    byte at a time so. Without it the pieces come at once (a chunked body).

    An iterator object, not an async generator: a client that stops reading
    early leaves no suspended generator behind to be finalized by the GC. Made
    an ``AsyncByteStream`` of the transport's library by :func:`_piecewise`.
    """

    def __init__(
        self,
        body: bytes,
        size: int,
        *,
        interval: float = 0.0,
        request: httpx.Request | None = None,
        library: HttpLibrary = HTTPX,
    ) -> None:
        self._library = library
        self._body = body
        self._size = size
        self._interval = interval
        self._request = request
        self._offset = 0

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self._offset >= len(self._body):
            raise StopAsyncIteration
        if self._request is not None:
            await _wait(self._interval, _read_timeout(self._request), self._request, self._library)
        start = self._offset
        self._offset += self._size
        return self._body[start : self._offset]


def _piecewise(library: HttpLibrary) -> type[_PiecewiseStream]:
    return library.flavour(_PiecewiseStream, "AsyncByteStream")


class FakeTransport:
    """An httpx transport backed by a :class:`FakeVendorAPI` (see ``FakeVendorAPI.transport``).

    Made by :func:`fake_transport`, as a subclass of the library's ``AsyncBaseTransport``.

    Args:
        fake: The fake that answers.
        library: The HTTP library it speaks (httpx or httpx2).
    """

    def __init__(self, fake: Backend, library: HttpLibrary = HTTPX) -> None:
        self._fake = fake
        self._library = library

    def __repr__(self) -> str:
        return f"FakeTransport({self._fake!r})"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer one request from the fake, or raise the fault's httpx error.

        Args:
            request: The request httpx is sending.

        Returns:
            The fake's response.

        Raises:
            httpx.ReadError: For a reset.
            httpx.RemoteProtocolError: For a drop, or a stall that outlasts a missing read timeout.
            httpx.ReadTimeout: When the answer takes longer than the read timeout.
        """
        body = await request.aread()
        headers = request.headers
        fake = self._fake
        reply = fake._receive(
            request.method,
            request.url.raw_path.decode("ascii"),
            headers.get("x-api-key"),
            headers.get("content-type"),
            body,
            # Copying the headers costs; only a recording fake reads them.
            headers.raw if fake.record else (),
        )
        try:
            if reply.delay:
                await _wait(reply.delay, _read_timeout(request), request, self._library)
            head_only = request.method == "HEAD"
            if reply.fault is None or (head_only and reply.fault.kind in BODY_FAULTS):
                # A server sends no body in answer to HEAD; httpx then reads none.
                stream = self._library.http.ByteStream(b"" if head_only else reply.body)
                return self._response(reply, stream)
            return await self._carry_out(reply.fault, reply, request)
        finally:
            fake._finish()

    async def _carry_out(
        self, fault: Fault, reply: Reply, request: httpx.Request
    ) -> httpx.Response:
        kind = fault.kind
        http = self._library.http
        if kind == "reset":
            # httpcore wraps the socket's ECONNRESET the same way (as trio words it).
            cause = ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
            raise http.ReadError(
                f"[Errno {errno.ECONNRESET}] Connection reset by peer", request=request
            ) from cause
        if kind == "stall":
            await _wait(fault.seconds, _read_timeout(request), request, self._library)
        if kind in ("stall", "drop"):
            raise http.RemoteProtocolError(_DISCONNECTED, request=request)
        piecewise = _piecewise(self._library)
        if kind == "trickle":
            trickle = piecewise(
                reply.body, 1, interval=fault.interval, request=request, library=self._library
            )
            return self._response(reply, trickle)
        return self._response(reply, piecewise(reply.body, CHUNK_BYTES))

    def _response(self, reply: Reply, stream: object) -> httpx.Response:
        response: httpx.Response = self._library.http.Response(
            reply.status,
            headers=reply.headers,
            stream=stream,
            extensions={"http_version": b"HTTP/1.1"},
        )
        return response


def fake_transport(fake: Backend, library: HttpLibrary = HTTPX) -> httpx.AsyncBaseTransport:
    """A :class:`FakeTransport` for ``fake`` that is ``library``'s ``AsyncBaseTransport``."""
    return library.flavour(FakeTransport, "AsyncBaseTransport")(fake, library)  # type: ignore[return-value]
