"""aiohttp's connection pool (the ``speedups`` extra; asyncio only).

httpcore's pool walks every connection for every request, so its cost per
request grows with concurrency; aiohttp's does not, and its HTTP parser is
written in C. This module sends an attempt through aiohttp and makes it look,
to the rest of the client, exactly like httpcore: the same per-phase timeouts,
no redirects, no decompression by the pool (the body cap decodes), and every
failure raised as the httpx exception httpcore raises for the same event, so
that retry decisions and ``maybe_applied`` do not depend on the pool.
"""

from __future__ import annotations

import ssl

import aiohttp
import httpx

from .._errors import ClientClosedError
from ._base import Answer, StopRequest
from ._body import UnreadableBodyError, check_declared_length, read_capped

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
                timeout=self._timeout,
            ) as response:
                headers = response.raw_headers
                status = response.status
                reason = response.reason or ""

                def make(body: bytes = b"") -> httpx.Response:
                    return httpx.Response(
                        status,
                        headers=headers,
                        content=body,
                        request=request.httpx_request,
                        extensions={"reason_phrase": reason.encode(), "http_version": b"HTTP/1.1"},
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
            raise as_httpx_error(exc, self._attempt_limit) from exc
        return Answer(status, body, make=lambda: make(body))

    async def aclose(self) -> None:
        """Close the session and its connections, those in use included; refuse to send after."""
        self._closed = True
        if self._session is not None:
            await self._session.close()
