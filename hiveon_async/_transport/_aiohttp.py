"""aiohttp's connection pool (the ``speedups`` extra; asyncio only).

httpcore's pool walks every connection for every request, so its cost per
request grows with concurrency; aiohttp's does not, and its HTTP parser is
written in C. This module sends an attempt through aiohttp and makes it look,
to the rest of the client, exactly like httpcore: the same per-phase timeouts,
no redirects, no decompression by the pool (the body cap decodes), and every
failure raised as the httpx exception httpcore raises for the same event, so
that retry decisions and ``maybe_applied`` do not depend on the pool.

The same goes for what is accepted: aiohttp's parser is given httpcore's limits
(by default it refuses a header line over 8 KiB, or 128 headers, which
httpcore's accepts), the head is held to :data:`~._body.MAX_HEAD_BYTES` as on
every pool, and what httpcore's parser (h11) refuses but aiohttp's lets through
(a status below 100 or a 1xx as the final answer, a transfer coding other than
chunked) is refused here with the error h11 raises for it. One difference
remains: bytes that arrive with a response but after its end (past its
Content-Length, after a 204) make aiohttp's parser refuse the response, where
h11 leaves them unread; no setting of aiohttp's relaxes that.
"""

from __future__ import annotations

import contextlib
import inspect
import ssl

import aiohttp
import httpx

from .._errors import ClientClosedError
from ._base import Answer, StopRequest
from ._body import (
    UnreadableBodyError,
    check_declared_length,
    check_head,
    read_capped,
)
from ._loop import close_asyncio_transport

__all__ = ["AiohttpTransport", "as_httpx_error"]

# Most specific first: the first matching aiohttp class decides.
_EQUIVALENTS: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientOSError, httpx.ReadError),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.ClientError, httpx.NetworkError),
)


#: httpcore's parser (h11) refuses a head, or a trailer section, still incomplete past
#: 100 KiB: aiohttp's refuses no line below that (its default is 8 KiB). A head is held
#: to MAX_HEAD_BYTES on every pool by the client itself.
_LINE_LIMIT = 100 * 1024
#: The most fields such a section holds (each takes 4 bytes at least). aiohttp takes
#: ``max_headers`` since 3.13.4 (128 by default); older versions allow 32768.
_MAX_HEADERS = _LINE_LIMIT // 4
_TAKES_MAX_HEADERS = "max_headers" in inspect.signature(aiohttp.ClientSession).parameters


def as_httpx_error(exc: BaseException, attempt_limit: float | None = None) -> httpx.TransportError:
    """Return the httpx error that httpcore raises for the event behind aiohttp's ``exc``."""
    if type(exc) is TimeoutError:  # aiohttp's total timeout: the attempt's wall-clock bound
        return httpx.ReadTimeout(f"no complete response within {attempt_limit}s")
    for source, target in _EQUIVALENTS:
        if isinstance(exc, source):
            return target(_message(exc))
    raise TypeError(f"not a transport failure: {exc!r}")  # pragma: no cover - callers filter


def _message(exc: BaseException) -> str:
    """The message of aiohttp's error, without "ssl:default" (which reads as TLS on plain http)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or str(exc.os_error) or type(exc.os_error).__name__
        return f"cannot connect to {exc.host}:{exc.port}: {reason}"
    return str(exc) or type(exc).__name__


def check_like_h11(response: aiohttp.ClientResponse) -> None:
    """Refuse what httpcore's parser (h11) refuses in a response head and aiohttp's accepts.

    Raises:
        httpx.RemoteProtocolError: What h11 raises for it (through httpcore and httpx).
    """
    status = response.status
    if status < 100:
        raise httpx.RemoteProtocolError(f"status code {status} is not in the range [100, 1000)")
    if status < 200:  # h11 skips informational answers and waits for the final one
        raise httpx.RemoteProtocolError(f"status {status} is informational, not a final answer")
    codings = [
        coding.strip().lower()
        for value in response.headers.getall("Transfer-Encoding", ())
        for coding in value.split(",")
    ]
    if codings and codings != ["chunked"]:
        raise httpx.RemoteProtocolError("Only Transfer-Encoding: chunked is supported")


def _discard_connection(response: aiohttp.ClientResponse) -> None:
    """Close the connection of a refused response, as httpcore does, so it serves no other.

    aiohttp hands a connection back to its pool the moment a body is complete,
    which may be before the response is returned: then only the response's
    protocol (private) still leads to it.
    """
    connection = response.connection
    if connection is not None:
        connection.close()
        return
    protocol = getattr(response, "_protocol", None)
    if protocol is not None:
        protocol.close()


def _own_timeout(request: StopRequest) -> aiohttp.ClientTimeout:
    """The timeout of a request that brings its own (a client made by ``with_options``)."""
    assert request.timeout is not None
    return _client_timeout(request.timeout.timeout, request.timeout.limit)


def _client_timeout(timeout: httpx.Timeout, attempt_limit: float | None) -> aiohttp.ClientTimeout:
    """The same bounds as on httpcore: a connection, connecting, each read, the whole attempt."""
    pool_and_connect = (
        None if timeout.pool is None or timeout.connect is None else timeout.pool + timeout.connect
    )
    return aiohttp.ClientTimeout(
        total=attempt_limit,
        connect=pool_and_connect,
        sock_connect=timeout.connect,
        sock_read=timeout.read,
    )


class AiohttpTransport:
    """Sends attempts through one aiohttp session, created inside the running loop.

    Args:
        limits: The pool size and keep-alive expiry.
        timeout: The per-attempt httpx timeout, applied phase by phase.
        attempt_limit: The wall-clock bound on a whole attempt, or None.
    """

    def __init__(
        self,
        limits: httpx.Limits,
        timeout: httpx.Timeout,
        attempt_limit: float | None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._limits = limits
        # httpx's own context by default: the same certificate checks as httpx.
        self._ssl_context = ssl_context or httpx.create_ssl_context()
        self._attempt_limit = attempt_limit
        self._timeout = _client_timeout(timeout, attempt_limit)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=0,  # the client's slots bound the requests in flight, batches included
            keepalive_timeout=self._limits.keepalive_expiry or 0,
            ssl=self._ssl_context,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            max_line_size=_LINE_LIMIT,
            max_field_size=_LINE_LIMIT,
            **({"max_headers": _MAX_HEADERS} if _TAKES_MAX_HEADERS else {}),  # type: ignore[arg-type]
        )
        return self._session

    @property
    def pool(self) -> str:
        """Always ``aiohttp``."""
        return "aiohttp"

    async def send(self, request: StopRequest) -> Answer:
        """Send one attempt; return its status and capped body.

        Raises:
            httpx.TransportError: No (complete) response, as httpcore would say it.
        """
        if self._closed:
            raise ClientClosedError()
        session = self._session or self._open()
        try:
            async with session.post(
                request.url,
                data=request.body,
                headers=request.headers,
                allow_redirects=False,
                timeout=self._timeout if request.timeout is None else _own_timeout(request),
            ) as response:
                headers = response.raw_headers
                status = response.status
                # The bytes sent: aiohttp decodes them with surrogateescape.
                reason = (response.reason or "").encode("utf-8", "surrogateescape")
                try:
                    check_head(reason, headers)
                    check_like_h11(response)
                except httpx.RemoteProtocolError:
                    _discard_connection(response)
                    raise

                def make(body: bytes = b"") -> httpx.Response:
                    return httpx.Response(
                        status,
                        headers=headers,
                        content=body,
                        request=request.httpx_request,
                        extensions={"reason_phrase": reason, "http_version": b"HTTP/1.1"},
                    )

                length = response.headers.get("Content-Length")
                encoding = response.headers.get("Content-Encoding")
                try:
                    if encoding is None and length is not None and length.isdigit():
                        # The common case, a small plain body of known length: one read.
                        check_declared_length(length)
                        body = await response.read()
                    else:
                        body = await read_capped(
                            response.content.iter_any(),
                            content_length=length,
                            content_encoding=encoding,
                        )
                except UnreadableBodyError as exc:
                    # The response kept on the error has no body: what was read is still encoded.
                    return Answer(status, exc.head, make=make, problem=exc.problem)
        except (aiohttp.ClientError, TimeoutError) as exc:
            limit = self._attempt_limit if request.timeout is None else request.timeout.limit
            raise as_httpx_error(exc, limit) from exc
        return Answer(status, body, make=lambda: make(body), raw_headers=response.raw_headers)

    async def aclose(self) -> None:
        """Close the session and its connections, those in use included; refuse to send after."""
        self._closed = True
        if self._session is not None:
            await self._session.close()

    def abandon(self) -> None:
        """Close the session's sockets now, without its event loop (which is gone).

        aiohttp closes a session with a coroutine of its loop; a client that
        moved to another loop closes the sockets itself, then marks the session
        and its connector closed (else each warns when collected).
        """
        self._closed = True
        session, self._session = self._session, None
        if session is None:
            return
        connector = session.connector
        if connector is not None:
            # aiohttp's own records of its connections, idle and in use: no public view.
            idle = getattr(connector, "_conns", {})
            protocols = [protocol for held in idle.values() for protocol, _ in held]
            protocols.extend(getattr(connector, "_acquired", ()))
            for protocol in protocols:
                transport = protocol.transport
                if transport is not None:
                    close_asyncio_transport(transport)
            with contextlib.suppress(Exception):  # its close may reach for the dead loop
                connector._close()
        session.detach()
