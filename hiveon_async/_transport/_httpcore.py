"""A lean connection pool on httpcore's connections: constant cost per request.

httpcore's own pool re-examines every connection and every queued request
each time a request starts or ends, so its cost per request grows with the
number of connections (measured here: 0.5 ms CPU per request with one
connection, 3 ms with 64). This client needs far less from a pool: one origin,
HTTP/1.1, and never more requests in flight than connections (the client's
slots see to that). So this pool keeps idle connections in a stack and takes
the most recently used one that is still healthy: O(1) per request.

The HTTP work itself (connecting, TLS, h11, timeouts) is still httpcore's
``AsyncHTTPConnection``, on asyncio and trio alike, and its failures are raised
as httpx's exceptions, exactly as ``httpx.AsyncHTTPTransport`` raises them: the
mapping is :meth:`~hiveon_async._http_library.HttpLibrary.core_error`. The pool
is itself an httpx transport; :class:`~._httpx.HttpxTransport` sends through it.

For a client that speaks httpx2, the same pool runs on httpcore2's connections
and answers with httpx2's responses and exceptions (it is given httpx2's
:class:`~hiveon_async._http_library.HttpLibrary`).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterable, AsyncIterator

import anyio
import httpcore
import httpx

from .._errors import ClientClosedError
from .._http_library import HTTPX, HttpLibrary
from ._body import close_iterator
from ._loop import close_network_streams

__all__ = ["LeanPool"]

#: Reads allowed to drain what a connection closed mid-body had already buffered.
_DRAIN_LIMIT = 1024


def as_httpx_error(exc: Exception) -> Exception | None:
    """Return httpx's exception for httpcore's ``exc``, or None when it is not httpcore's."""
    return HTTPX.core_error(exc)


class _Body:
    """A response body that hands its connection back to the pool when closed.

    Made a subclass of the library's ``AsyncByteStream`` by the pool (a
    response's ``aclose`` insists on one).
    """

    def __init__(
        self,
        pool: LeanPool,
        origin: httpcore.Origin,
        connection: httpcore.AsyncHTTPConnection,
        response: httpcore.Response,
    ) -> None:
        self._pool = pool
        self._library = pool.library
        self._origin = origin
        self._connection = connection
        self._response = response
        # True once the body was read to its end: only then may the connection serve again.
        self._complete = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        stream = self._response.stream
        assert isinstance(stream, AsyncIterable)  # an async connection's body
        chunks = stream.__aiter__()
        finished = False
        try:
            async for chunk in chunks:
                yield chunk
            finished = self._complete = True
        except GeneratorExit:
            raise  # our reader stopped early: httpcore's generators are still suspended
        except BaseException as exc:
            finished = True  # httpcore's generators ended with the error
            mapped = self._library.core_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            if not finished:
                await self._finish_early(chunks)
            await close_iterator(chunks)  # httpcore's generator, when we stop early

    async def _finish_early(self, chunks: AsyncIterator[bytes]) -> None:
        """Run httpcore's body generators to their end when we stop reading early.

        Closing its outer generator would leave the one inside it suspended, for
        the garbage collector (a ResourceWarning on trio). Instead the connection
        is closed (it is not reusable anyway), then the generators read on: past
        anything already buffered, the read fails on the closed socket, and both
        end with that error.
        """
        with anyio.CancelScope(shield=True):
            await self._connection.aclose()
            for _ in range(_DRAIN_LIMIT):
                try:
                    await chunks.__anext__()
                except Exception:  # the read failed, or the body ended: either way, done
                    return

    async def aclose(self) -> None:
        try:
            # Shielded: cut short by a cancellation, the close would leave the connection
            # neither idle nor closed, and its socket to the garbage collector.
            with anyio.CancelScope(shield=True):
                await self._response.aclose()
                if not self._complete:  # never reused: close it now, whatever httpcore thinks
                    await self._connection.aclose()
        finally:
            self._pool.check_in(self._origin, self._connection, reusable=self._complete)


class _RequestBody:
    """A request body httpcore iterates without an async generator.

    httpx's byte stream is an async generator; a request cancelled while its
    body is being sent would leave it suspended, for the garbage collector (a
    ResourceWarning on trio).
    """

    __slots__ = ("_chunk",)

    def __init__(self, body: bytes) -> None:
        self._chunk: bytes | None = body

    def __aiter__(self) -> _RequestBody:
        return self

    async def __anext__(self) -> bytes:
        chunk, self._chunk = self._chunk, None
        if chunk is None:
            raise StopAsyncIteration
        return chunk


class LeanPool(httpx.AsyncBaseTransport):
    """An httpx transport over a stack of httpcore connections.

    Args:
        limits: ``keepalive_expiry`` is honoured; the number of connections is
            bounded by the caller (never more requests in flight than
            ``max_connections``).
        ssl_context: The TLS context of every connection; None makes the library's.
        library: httpx's (requests, responses and errors of httpx, connections
            of httpcore) or httpx2's (of httpx2, on httpcore2).
    """

    def __init__(
        self,
        limits: httpx.Limits,
        ssl_context: ssl.SSLContext | None = None,
        *,
        library: HttpLibrary = HTTPX,
    ) -> None:
        self.library = library
        self._core = library.core
        self._body = library.flavour(_Body, "AsyncByteStream")
        self._keepalive_expiry = limits.keepalive_expiry
        # The library's own context by default: the same certificate checks as httpx.
        self._ssl_context = ssl_context or library.http.create_ssl_context()
        self._idle: dict[_Key, list[httpcore.AsyncHTTPConnection]] = {}
        self._all: set[httpcore.AsyncHTTPConnection] = set()
        self._closed = False

    async def _check_out(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection:
        idle = self._idle.setdefault(_key(origin), [])
        while idle:
            connection = idle.pop()
            if connection.is_available() and not connection.has_expired():
                return connection
            # Closed by the server, or stale: close our end too (else the socket is
            # left for the garbage collector to find).
            self._all.discard(connection)
            await connection.aclose()
        # httpcore2's for httpx2: the same class under the fork's name.
        new: httpcore.AsyncHTTPConnection = self._core.AsyncHTTPConnection(
            origin,
            ssl_context=self._ssl_context,
            keepalive_expiry=self._keepalive_expiry,
        )
        self._all.add(new)
        return new

    def check_in(
        self,
        origin: httpcore.Origin,
        connection: httpcore.AsyncHTTPConnection,
        *,
        reusable: bool,
    ) -> None:
        """Take a connection back after its response is closed (or failed).

        Only a connection whose last body was read to its end (``reusable``)
        goes back on the idle stack. One closed part-way through a body can
        still look idle to httpcore: draining its buffered rest after the close
        completes the exchange, which resets httpcore's state to idle over a
        closed socket.
        """
        if reusable and not self._closed and connection.is_idle() and not connection.is_closed():
            self._idle[_key(origin)].append(connection)
        else:
            self._all.discard(connection)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on an idle connection (or a new one); the body streams.

        Raises:
            ClientClosedError: The pool is closed: nothing is sent.
        """
        if self._closed:
            raise ClientClosedError()
        url = request.url
        core = self._core
        origin = core.Origin(url.raw_scheme, url.raw_host, url.port or _default_port(url))
        core_request = core.Request(
            method=request.method,
            url=core.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=_RequestBody(request.content),
            extensions=request.extensions,
        )
        connection = await self._check_out(origin)
        try:
            response = await connection.handle_async_request(core_request)
        except Exception as exc:
            await connection.aclose()
            self.check_in(origin, connection, reusable=False)
            mapped = self.library.core_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        except BaseException:
            # Cancelled: httpcore has usually closed a connection caught mid-exchange already.
            with anyio.CancelScope(shield=True):
                await connection.aclose()
            self.check_in(origin, connection, reusable=False)
            raise
        answer: httpx.Response = self.library.http.Response(
            status_code=response.status,
            headers=response.headers,
            stream=self._body(self, origin, connection, response),
            extensions=response.extensions,
        )
        return answer

    async def aclose(self) -> None:
        """Close every connection, those in use included; refuse to open any from now on."""
        self._closed = True
        connections, self._all = self._all, set()
        self._idle.clear()
        for connection in connections:
            await connection.aclose()

    def abandon(self) -> None:
        """Close every connection's socket now, without its event loop (which is gone).

        For a pool left behind by a client that moved to another event loop:
        awaiting a close there is impossible. Refuses to open any from now on.
        """
        self._closed = True
        connections, self._all = self._all, set()
        self._idle.clear()
        close_network_streams(connections)


_Key = tuple[bytes, bytes, int]


def _key(origin: httpcore.Origin) -> _Key:
    return (origin.scheme, origin.host, origin.port)  # Origin itself is not hashable


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80
