"""The wire: send one attempt and read its capped body. The only place that does I/O.

Three ways to send, one behaviour:

- **A client we built** (the default, or ``transport=``): requests are handed
  straight to the transport, skipping ``httpx.AsyncClient.send`` (auth flows,
  redirect handling, cookies, event hooks: none of which this client uses).
  Without ``transport=`` or a proxy, the pool is :mod:`hiveon_async._pool`, a
  lean stack of httpcore connections whose cost per request does not grow
  with concurrency.
- On asyncio, when the ``speedups`` extra (aiohttp) is installed, a client we
  built with neither ``transport=`` nor a proxy sends through aiohttp's pool
  (:mod:`hiveon_async._aiohttp`), whose cost per request stays flat as
  concurrency grows.
- **Your own** ``http_client``: requests are built and sent through it, so its
  transport, proxies, TLS settings, default headers, auth and hooks all apply;
  redirects are still never followed.

Whatever the pool, failures arrive as httpx's own exception types and bodies
pass the same size cap, so retry decisions and errors do not depend on it.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Mapping
from typing import TYPE_CHECKING

import httpx

from ._attempt_timer import AttemptTimer
from ._call import Answer, Call
from ._errors import InvalidRequestError
from ._pool import LeanPool
from ._response import UnreadableBodyError, read_body

if TYPE_CHECKING:
    from ._aiohttp import AiohttpWire

__all__ = ["Wire"]

#: Seconds an idle keep-alive connection is kept.
KEEPALIVE_EXPIRY = 15.0


def speedups_available() -> bool:
    """True when the ``speedups`` extra (aiohttp) is installed."""
    return importlib.util.find_spec("aiohttp") is not None


def attempt_limit(timeout: httpx.Timeout) -> float | None:
    """Wall-clock bound on one attempt: the sum of the phases' timeouts (None if any is off).

    httpx's timeouts bound each read; a server that trickles a byte at a time
    never trips them, so each attempt also gets a bound of its own.
    """
    phases = (timeout.connect, timeout.write, timeout.read, timeout.pool)
    if any(phase is None for phase in phases):
        return None
    return sum(phase for phase in phases if phase is not None)


def _on_asyncio() -> bool:
    # Under trio there is no running asyncio loop; this is the public way to tell.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class Wire:
    """Sends stop requests for one client.

    Args:
        http_client: The user's client, or None to build our own.
        transport: A transport for our own client (tests, fakes), or None.
        timeout: The per-attempt httpx timeout.
        max_concurrency: The size of the connection pool we build.
        base_url: The API root (to pick a proxy from the environment).
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
        speedups: bool | None = None,
    ) -> None:
        if speedups and not speedups_available():
            raise InvalidRequestError(
                "speedups=True needs the speedups extra: pip install 'hiveon-async[speedups]'"
            )
        self._timeout = timeout
        self._timeout_extension = timeout.as_dict()
        self._attempt_limit = attempt_limit(timeout)
        self._attempt_timer = (
            None if self._attempt_limit is None else AttemptTimer(self._attempt_limit)
        )
        self._headers_source: Mapping[str, str] | None = None
        self._headers = httpx.Headers()
        self._limits = httpx.Limits(
            max_connections=max_concurrency,
            max_keepalive_connections=max_concurrency,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        )
        self.borrowed = http_client is not None
        # One TLS context for every pool we build (each costs tens of milliseconds).
        self._ssl_context = None if self.borrowed else httpx.create_ssl_context()
        if http_client is None:
            # An AsyncClient of our own picks the transport: ours, or a proxy's from
            # the environment (HTTPS_PROXY, NO_PROXY), exactly as httpx would.
            http_client = httpx.AsyncClient(
                transport=transport,
                timeout=timeout,
                limits=self._limits,
                verify=self._ssl_context or True,
            )
        self._client = http_client
        self._transport = http_client._transport_for_url(base_url)
        # Our pools only replace httpcore's plain default pool: never a user's
        # client or transport, never a proxy's.
        plain = (
            not self.borrowed and transport is None and self._transport is http_client._transport
        )
        self._lean: LeanPool | None = None
        if plain:
            self._transport = self._lean = LeanPool(self._limits, self._ssl_context)
        self._may_speed_up = plain and (speedups_available() if speedups is None else speedups)
        self._fast: AiohttpWire | None = None
        if self._may_speed_up:
            # Imported now, not on the first request: importing aiohttp blocks for a while.
            from . import _aiohttp  # noqa: F401

    @property
    def pool(self) -> str:
        """Which pool sends: ``aiohttp``, ``httpcore``, ``transport`` or ``http_client``."""
        if self.borrowed:
            return "http_client"
        if self._fast is not None:
            return "aiohttp"
        if self._lean is not None:
            return "httpcore"
        return "transport"

    def build(self, url: str, headers: Mapping[str, str], body: bytes) -> httpx.Request:
        """Build the ``httpx.Request`` for a POST of ``body`` to ``url``; no I/O."""
        if self.borrowed:
            return self._client.build_request(
                "POST", url, headers=headers, content=body, timeout=self._timeout
            )
        if headers is not self._headers_source:  # the client's one dict: normalise it once
            self._headers_source, self._headers = headers, httpx.Headers(headers)
        return httpx.Request(
            "POST",
            url,
            headers=self._headers,
            content=body,
            extensions={"timeout": self._timeout_extension},
        )

    async def roundtrip(self, call: Call) -> Answer:
        """Send one attempt of ``call`` and read its body (capped); the connection is released.

        Raises:
            httpx.TransportError: No (complete) response.
            BodyTooLargeError: The body passed the cap (``.response`` is set).
            UndecodableBodyError: The body's encoding is unknown or corrupt.

        Each attempt is bounded in total by the sum of the timeout's phases.
        """
        fast = self._fast
        if self._may_speed_up:  # decided once, on the first request's event loop
            self._may_speed_up = False
            if _on_asyncio():
                from ._aiohttp import AiohttpWire  # only with the speedups extra

                fast = self._fast = AiohttpWire(
                    self._limits, self._timeout, self._attempt_limit, self._ssl_context
                )
        if fast is not None:
            return await fast.roundtrip(call)
        if self._attempt_timer is None:
            return await self._httpx_roundtrip(call)
        attempt = self._attempt_timer.attempt()
        with attempt:
            return await self._httpx_roundtrip(call)
        assert attempt.expired
        raise httpx.ReadTimeout(f"no complete response within {self._attempt_limit}s")

    async def _httpx_roundtrip(self, call: Call) -> Answer:
        request = call.request
        if self.borrowed:
            response = await self._client.send(request, stream=True, follow_redirects=False)
        else:
            response = await self._transport.handle_async_request(request)
            response.request = request
        try:
            body = await read_body(response)
        except UnreadableBodyError as exc:
            exc.response = response
            raise
        finally:
            await response.aclose()
        return Answer(response.status_code, body, response=response)

    async def aclose(self) -> None:
        """Close what we built (never a user's client)."""
        if self._fast is not None:
            await self._fast.aclose()
        if self._lean is not None:
            await self._lean.aclose()
        if not self.borrowed:
            await self._client.aclose()
