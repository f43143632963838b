"""Sending through httpx's interface: your own client, an httpx transport, a proxy's, our pool.

One class, :class:`HttpxTransport`, sends through anything that turns an
``httpx.Request`` into a streamed ``httpx.Response``:

- **your own** ``http_client``: its ``send``, so its transport, proxies, TLS
  settings, default headers, auth and hooks all apply. Redirects are never
  followed, whatever the client says. It is never closed by us;
- **an httpx transport** (``transport=``, such as ``FakeVendorAPI().transport()``):
  its ``handle_async_request``;
- **a proxy from the environment** (``HTTPS_PROXY``...): a client of our own,
  which picks the proxy exactly as httpx does;
- **the lean pool** (:mod:`._httpcore`), an httpx transport itself.

Each attempt is also bounded in wall-clock time (:mod:`._timer`). httpx
raises its own exceptions, so there is no mapping to do here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from .._errors import ClientClosedError
from ._base import Answer, StopRequest
from ._body import read_httpx_answer
from ._timer import AttemptTimer

__all__ = ["HttpxTransport", "via_client", "via_transport"]

#: Sends an ``httpx.Request``; returns the response with its body still streaming.
Opener = Callable[[httpx.Request], Awaitable[httpx.Response]]


class HttpxTransport:
    """Sends through an httpx opener and reads the body within the cap.

    Args:
        open_response: Sends a request, returns the streamed response.
        pool: The name :attr:`pool` reports.
        timer: The attempt's wall-clock bound, or None for none.
        close: Closes what we opened, or None when there is nothing of ours.
    """

    def __init__(
        self,
        open_response: Opener,
        *,
        pool: str,
        timer: AttemptTimer | None,
        close: Callable[[], Awaitable[None]] | None,
    ) -> None:
        self._open = open_response
        self._pool = pool
        self._timer = timer
        self._close = close
        self._closed = False

    @property
    def pool(self) -> str:
        """Which pool sends: ``httpcore``, ``transport`` or ``http_client``."""
        return self._pool

    async def send(self, request: StopRequest) -> Answer:
        """Send once; read the body within the cap. See :class:`~._base.Transport`."""
        if self._closed:
            raise ClientClosedError()
        timer = self._timer
        if timer is None:
            return await self._exchange(request.httpx_request)
        attempt = timer.attempt()
        with attempt:
            return await self._exchange(request.httpx_request)
        raise httpx.ReadTimeout(f"no complete response within {timer.limit}s")

    async def _exchange(self, request: httpx.Request) -> Answer:
        response = await self._open(request)
        response.request = request
        return await read_httpx_answer(response)

    async def aclose(self) -> None:
        """Refuse to send from now on; close what is ours (never a user's client)."""
        self._closed = True
        if self._close is not None:
            await self._close()


def via_client(
    client: httpx.AsyncClient, *, owned: bool, timer: AttemptTimer | None
) -> HttpxTransport:
    """Send through an ``httpx.AsyncClient``: the user's (``owned=False``) or ours."""

    async def open_response(request: httpx.Request) -> httpx.Response:
        return await client.send(request, stream=True, follow_redirects=False)

    return HttpxTransport(
        open_response,
        pool="transport" if owned else "http_client",
        timer=timer,
        close=client.aclose if owned else None,
    )


def via_transport(
    transport: httpx.AsyncBaseTransport, *, pool: str, timer: AttemptTimer | None
) -> HttpxTransport:
    """Send straight to an httpx transport's ``handle_async_request``; closed with the client."""
    return HttpxTransport(
        transport.handle_async_request, pool=pool, timer=timer, close=transport.aclose
    )
