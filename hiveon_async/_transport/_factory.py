"""Choosing the transport: the one place that decides how a client's requests travel.

In order:

1. your own ``http_client``: always used as it is;
2. ``transport=``: requests go straight to it;
3. a proxy in the environment (``HTTPS_PROXY``, ``ALL_PROXY``...): a client of
   our own, which applies it (and ``NO_PROXY``) exactly as httpx does;
4. otherwise a pool of our own: aiohttp's on asyncio when the ``speedups``
   extra is installed (unless ``speedups=False``), else the lean httpcore pool.

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

import httpx

from .._errors import InvalidRequestError
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

    Raises:
        InvalidRequestError: ``speedups=True`` without the extra installed.
    """

    def __init__(
        self,
        *,
        http_client: httpx.AsyncClient | None,
        transport: httpx.AsyncBaseTransport | None,
        timeout: httpx.Timeout,
        max_concurrency: int,
        base_url: httpx.URL,
        speedups: bool | None,
    ) -> None:
        if speedups and not speedups_available():
            raise InvalidRequestError(
                "speedups=True needs the speedups extra: pip install 'hiveon-async[speedups]'"
            )
        self._http_client = http_client
        self._transport = transport
        self._timeout = timeout
        self._attempt_limit = attempt_limit(timeout)
        self._limits = httpx.Limits(
            max_connections=max_concurrency,
            max_keepalive_connections=max_concurrency,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        )
        self._proxied = (
            http_client is None and transport is None and _proxy_in_environment(base_url.scheme)
        )
        ours = http_client is None and transport is None and not self._proxied
        self._may_speed_up = ours and (speedups_available() if speedups is None else speedups)
        if self._may_speed_up:
            # Imported now, not on the first request: importing aiohttp blocks for a while.
            from . import _aiohttp  # noqa: F401
        self.build_request = self.request_builder(timeout)

    def request_builder(self, timeout: httpx.Timeout) -> RequestBuilder:
        """Return what builds this client's requests with ``timeout`` (no I/O)."""
        client = self._http_client
        return _ClientRequests(client, timeout) if client else _PlainRequests(timeout)

    @staticmethod
    def attempt_timeout(timeout: httpx.Timeout) -> AttemptTimeout:
        """The timeout a derived client's requests carry (see :class:`~._base.AttemptTimeout`)."""
        return AttemptTimeout(timeout, attempt_limit(timeout))

    def open(self) -> Transport:
        """Make the transport (call once, on the running event loop).

        It sends through a pool of the running loop: on another loop, the
        pool of the old one is let go of and a new one opened.
        """
        return LoopBoundTransport(self._open_here)

    def _open_here(self) -> Transport:
        """Make the transport of the running event loop."""
        timer = None if self._attempt_limit is None else AttemptTimer(self._attempt_limit)
        if self._http_client is not None:
            return via_client(self._http_client, owned=False, timer=timer)
        if self._transport is not None:
            return via_transport(self._transport, pool="transport", timer=timer)
        # One TLS context for the pool (each costs tens of milliseconds to make).
        ssl_context = httpx.create_ssl_context()
        if self._proxied:
            client = httpx.AsyncClient(
                timeout=self._timeout, limits=self._limits, verify=ssl_context
            )
            return via_client(client, owned=True, timer=timer)
        if self._may_speed_up and running_loop() is not None:
            from ._aiohttp import AiohttpTransport  # only with the speedups extra

            return AiohttpTransport(self._limits, self._timeout, self._attempt_limit, ssl_context)
        pool = LeanPool(self._limits, ssl_context)
        return via_transport(pool, pool="httpcore", timer=timer, abandon=pool.abandon)

    async def aclose_unopened(self) -> None:
        """Close a ``transport=`` that no request ever opened (it is closed with the client)."""
        if self._transport is not None:
            await self._transport.aclose()


class _PlainRequests:
    """Builds requests for a client we own; the client's one header dict is normalised once."""

    def __init__(self, timeout: httpx.Timeout) -> None:
        self._extensions = {"timeout": timeout.as_dict()}
        self._source: Mapping[str, str] | None = None
        self._headers = httpx.Headers()

    def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> httpx.Request:
        if headers is not self._source:
            self._source, self._headers = headers, httpx.Headers(headers)
        return httpx.Request(
            "POST", url, headers=self._headers, content=body, extensions=self._extensions
        )


class _ClientRequests:
    """Builds requests with the user's client, so its default headers, auth and cookies apply."""

    def __init__(self, client: httpx.AsyncClient, timeout: httpx.Timeout) -> None:
        self._client = client
        self._timeout = timeout

    def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> httpx.Request:
        return self._client.build_request(
            "POST", url, headers=headers, content=body, timeout=self._timeout
        )
