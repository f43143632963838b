"""Choosing the transport: the one place that decides how a client's requests travel.

In order:

1. your own ``http_client``: always used as it is;
2. ``transport=``: requests go straight to it;
3. a proxy in the environment (``HTTPS_PROXY``, ``ALL_PROXY``...): a client of
   our own, which applies it (and ``NO_PROXY``) exactly as httpx does;
4. otherwise a pool of our own: aiohttp's on asyncio when the ``speedups``
   extra is installed (unless ``speedups=False``), else the lean httpcore pool.

Whichever it is speaks one HTTP library, httpx or httpx2
(:mod:`hiveon_async._http_library`), chosen by the client from what the user
passed: an httpx2 client's requests are ``httpx2.Request`` objects, a proxy's
client is an ``httpx2.AsyncClient``, the lean pool runs on httpcore2. aiohttp's
pool speaks httpx only, so a client on httpx2 uses the lean pool.

Everything but the last choice is settled when the client is made. Between
aiohttp and httpcore, the running event loop decides (aiohttp runs on asyncio
only), so :meth:`TransportFactory.open` is called by the first request, and
the transport it returns opens its pool again on each new event loop the
client is used from (:mod:`._loop`).
"""

from __future__ import annotations

import importlib.util
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

import httpx

from .._errors import InvalidRequestError
from .._http_library import HTTPX, HttpLibrary

if TYPE_CHECKING:
    import ssl

    from .._http_library import AnyAsyncClient, AnyTimeout, AnyTransport
from ._base import AttemptTimeout, RequestBuilder, Transport
from ._httpcore import LeanPool
from ._httpx import via_client, via_transport
from ._loop import LoopBoundTransport
from ._timer import AttemptTimer, attempt_limit, running_loop

__all__ = ["KEEPALIVE_EXPIRY", "TransportFactory", "speedups_available"]

#: Seconds an idle keep-alive connection is kept.
KEEPALIVE_EXPIRY = 15.0


def speedups_available() -> bool:
    """True when the ``speedups`` extra (aiohttp) is installed and importable."""
    try:
        return importlib.util.find_spec("aiohttp") is not None
    except ValueError:  # blocked: set to None in sys.modules
        return False


def _proxy_in_environment(scheme: str) -> bool:
    proxies = urllib.request.getproxies()
    return scheme in proxies or "all" in proxies


class TransportFactory:
    """Settles how requests travel; :meth:`open` makes the transport.

    Args:
        http_client: The user's client, or None.
        transport: A transport for the client we build (tests, fakes), or None.
        timeout: The per-attempt httpx timeout.
        max_concurrency: The size of the connection pool we build.
        base_url: The API root (its scheme picks a proxy from the environment).
        speedups: Use aiohttp's pool on asyncio; None means "when installed".
        library: The HTTP library the client speaks (httpx or httpx2).

    Raises:
        InvalidRequestError: ``speedups=True`` without the extra installed, or
            with httpx2 (aiohttp's pool speaks httpx only).
    """

    def __init__(
        self,
        *,
        http_client: AnyAsyncClient | None,
        transport: AnyTransport | None,
        timeout: AnyTimeout,
        max_concurrency: int,
        base_url: httpx.URL,
        speedups: bool | None,
        library: HttpLibrary = HTTPX,
    ) -> None:
        if speedups and not speedups_available():
            raise InvalidRequestError(
                "speedups=True needs the speedups extra: pip install 'hiveon-async[speedups]'"
            )
        if speedups and library is not HTTPX:
            raise InvalidRequestError(
                f"speedups=True: aiohttp's pool speaks httpx, and this client speaks "
                f"{library.name} (from the timeout, http_client or transport you passed)"
            )
        self.library = library
        # Typed as httpx's from here on: httpx2's have the same interface, and
        # self.library keeps the two apart where it matters (requests, errors, pool).
        self._http_client = cast("httpx.AsyncClient | None", http_client)
        self._transport = cast("httpx.AsyncBaseTransport | None", transport)
        self._timeout = timeout = cast("httpx.Timeout", timeout)
        self._attempt_limit = attempt_limit(timeout)
        self._limits = library.http.Limits(
            max_connections=max_concurrency,
            max_keepalive_connections=max_concurrency,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        )
        self._proxied = (
            http_client is None and transport is None and _proxy_in_environment(base_url.scheme)
        )
        ours = http_client is None and transport is None and not self._proxied
        self._may_speed_up = (
            ours and library is HTTPX and (speedups_available() if speedups is None else speedups)
        )
        self._ssl_context: ssl.SSLContext | None = None  # made with the first pool of ours
        if self._may_speed_up:
            # Imported now, not on the first request: importing aiohttp blocks for a while.
            from . import _aiohttp  # noqa: F401
        self.build_request = self.request_builder(timeout)

    def request_builder(self, timeout: AnyTimeout) -> RequestBuilder:
        """Return what builds this client's requests with ``timeout`` (no I/O)."""
        client = self._http_client
        same = cast("httpx.Timeout", timeout)  # httpx2's has httpx's shape
        return _ClientRequests(client, same) if client else _PlainRequests(same, self.library)

    @staticmethod
    def attempt_timeout(timeout: AnyTimeout) -> AttemptTimeout:
        """The timeout a derived client's requests carry (see :class:`~._base.AttemptTimeout`)."""
        same = cast("httpx.Timeout", timeout)
        return AttemptTimeout(same, attempt_limit(same))

    def open(self) -> Transport:
        """Make the transport (call once, on the running event loop).

        It sends through a pool of the running loop: on another loop, the
        pool of the old one is let go of and a new one opened.
        """
        return LoopBoundTransport(self._open_here)

    def _open_here(self) -> Transport:
        """Make the transport of the running event loop."""
        timer = None if self._attempt_limit is None else AttemptTimer(self._attempt_limit)
        library = self.library
        if self._http_client is not None:
            return via_client(self._http_client, owned=False, timer=timer, library=library)
        if self._transport is not None:
            return via_transport(self._transport, pool="transport", timer=timer, library=library)
        http = library.http
        ssl_context = self._ssl_context
        if ssl_context is None:
            # One TLS context for every pool, made on the first loop: each costs tens of
            # milliseconds (the CA store), and a pool opened on a later loop is made inside
            # a send, after the gate's turn: that late, the request bunched with the next.
            ssl_context = self._ssl_context = http.create_ssl_context()
        if self._proxied:
            client = http.AsyncClient(
                timeout=self._timeout, limits=self._limits, verify=ssl_context
            )
            return via_client(client, owned=True, timer=timer, library=library)
        if self._may_speed_up and running_loop() is not None:
            from ._aiohttp import AiohttpTransport  # only with the speedups extra

            return AiohttpTransport(self._limits, self._timeout, self._attempt_limit, ssl_context)
        pool = LeanPool(self._limits, ssl_context, library=library)
        return via_transport(
            pool, pool="httpcore", timer=timer, abandon=pool.abandon, library=library
        )

    async def aclose_unopened(self) -> None:
        """Close a ``transport=`` that no request ever opened (it is closed with the client)."""
        if self._transport is not None:
            await self._transport.aclose()


class _PlainRequests:
    """Builds requests for a client we own; the client's one header dict is normalised once."""

    def __init__(self, timeout: httpx.Timeout, library: HttpLibrary = HTTPX) -> None:
        self._extensions = {"timeout": timeout.as_dict()}
        self._http = library.http
        self._source: Mapping[str, str] | None = None
        self._headers = self._http.Headers()

    def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> httpx.Request:
        if headers is not self._source:
            self._source, self._headers = headers, self._http.Headers(headers)
        request: httpx.Request = self._http.Request(
            "POST", url, headers=self._headers, content=body, extensions=self._extensions
        )
        return request


class _ClientRequests:
    """Builds requests with the user's client, so its default headers, auth and cookies apply."""

    def __init__(self, client: httpx.AsyncClient, timeout: httpx.Timeout) -> None:
        self._client = client
        self._timeout = timeout

    def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> httpx.Request:
        return self._client.build_request(
            "POST", url, headers=headers, content=body, timeout=self._timeout
        )
