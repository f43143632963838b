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

Each attempt is also bounded in wall-clock time (:mod:`._timer`), past which
the library's ``ReadTimeout`` is raised. httpx (or httpx2, for a client that
speaks it: the same interface) raises its own exceptions, so there is no
mapping to do here, but for one: a user's client or transport bound to an event
loop that is gone fails with a bare ``RuntimeError`` ("Event loop is closed"),
which becomes :class:`EventLoopError`, saying what to do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import httpx

from .._errors import ClientClosedError
from .._http_library import HTTPX, HttpLibrary
from ._base import Answer, StopRequest
from ._body import read_httpx_answer
from ._loop import close_network_streams
from ._timer import AttemptTimer

__all__ = ["EventLoopError", "HttpxTransport", "via_client", "via_transport"]

#: Sends an ``httpx.Request``; returns the response with its body still streaming.
Opener = Callable[[httpx.Request], Awaitable[httpx.Response]]

#: What the ``RuntimeError`` of a client used on the wrong event loop says (asyncio, trio).
_LOOP_WORDS = ("loop", "async context")


class EventLoopError(httpx.TransportError):
    """A user's client or transport holds connections of another event loop, which is gone.

    The request may have been sent. The call ends in ``APIConnectionError``
    (retried like one: the connection that failed is dropped by its pool),
    whose message says what to do.
    """


def _loop_error(pool: str, exc: RuntimeError) -> EventLoopError:
    what = "http_client" if pool == "http_client" else "transport"
    return EventLoopError(
        f"the {what} you passed holds connections of another event loop, which is gone "
        f"(RuntimeError: {exc}). An httpx client belongs to the event loop that first "
        f"used it: create it inside the event loop that uses it (one per loop, e.g. in "
        f"the function asyncio.run runs, or in a fixture of the test's loop), or pass no "
        f"{what}: the client's own pool is rebuilt on each event loop"
    )


class HttpxTransport:
    """Sends through an httpx opener and reads the body within the cap.

    Args:
        open_response: Sends a request, returns the streamed response.
        pool: The name :attr:`pool` reports.
        timer: The attempt's wall-clock bound, or None for none.
        close: Closes what we opened, or None when there is nothing of ours.
        abandon: Closes the sockets of what we opened at once, without their
            event loop (see :meth:`abandon`), or None when there is nothing of ours.
        library: The HTTP library the opener speaks (httpx or httpx2).
    """

    def __init__(
        self,
        open_response: Opener,
        *,
        pool: str,
        timer: AttemptTimer | None,
        close: Callable[[], Awaitable[None]] | None,
        abandon: Callable[[], None] | None = None,
        library: HttpLibrary = HTTPX,
    ) -> None:
        self._open = open_response
        self._timeout_error: type[Exception] = library.http.ReadTimeout
        self._pool = pool
        self._timer = timer
        self._close = close
        self._abandon = abandon
        self._closed = False

    @property
    def pool(self) -> str:
        """Which pool sends: ``httpcore``, ``transport`` or ``http_client``."""
        return self._pool

    async def send(self, request: StopRequest) -> Answer:
        """Send once; read the body within the cap. See :class:`~._base.Transport`."""
        if self._closed:
            raise ClientClosedError()
        if request.timeout is not None:  # with_options(timeout=): the shared timer has one limit
            return await self._exchange_within(request, request.timeout.limit)
        timer = self._timer
        if timer is None:
            return await self._exchange(request.httpx_request)
        attempt = timer.attempt()
        with attempt:
            return await self._exchange(request.httpx_request)
        raise self._timeout_error(f"no complete response within {timer.limit}s")

    async def _exchange_within(self, request: StopRequest, limit: float | None) -> Answer:
        """Send with an attempt bound of the request's own, in a cancel scope of its own."""
        if limit is None:
            return await self._exchange(request.httpx_request)
        with anyio.move_on_after(limit):
            return await self._exchange(request.httpx_request)
        raise self._timeout_error(f"no complete response within {limit}s")

    async def _exchange(self, request: httpx.Request) -> Answer:
        try:
            response = await self._open(request)
        except RuntimeError as exc:
            # Only a user's client or transport (nothing of ours to abandon) can be
            # bound to another loop: ours are rebuilt on each loop. httpx's own
            # RuntimeErrors (a closed client, its stream errors) are subclasses or
            # say nothing of loops.
            if self._abandon is None and type(exc) is RuntimeError and _mentions_loop(str(exc)):
                raise _loop_error(self._pool, exc) from exc
            raise
        response.request = request
        return await read_httpx_answer(response)

    async def aclose(self) -> None:
        """Refuse to send from now on; close what is ours (never a user's client)."""
        self._closed = True
        if self._close is not None:
            await self._close()

    def abandon(self) -> None:
        """Refuse to send from now on; close the sockets of what is ours now, without awaiting."""
        self._closed = True
        if self._abandon is not None:
            self._abandon()


def _mentions_loop(text: str) -> bool:
    return any(word in text for word in _LOOP_WORDS)


def via_client(
    client: httpx.AsyncClient,
    *,
    owned: bool,
    timer: AttemptTimer | None,
    library: HttpLibrary = HTTPX,
) -> HttpxTransport:
    """Send through an ``httpx.AsyncClient`` (or httpx2's): the user's (``owned=False``) or ours."""

    async def open_response(request: httpx.Request) -> httpx.Response:
        return await client.send(request, stream=True, follow_redirects=False)

    return HttpxTransport(
        open_response,
        pool="transport" if owned else "http_client",
        timer=timer,
        close=client.aclose if owned else None,
        abandon=(lambda: close_network_streams(_connections_of(client))) if owned else None,
        library=library,
    )


def via_transport(
    transport: httpx.AsyncBaseTransport,
    *,
    pool: str,
    timer: AttemptTimer | None,
    abandon: Callable[[], None] | None = None,
    library: HttpLibrary = HTTPX,
) -> HttpxTransport:
    """Send straight to an httpx transport's ``handle_async_request``; closed with the client.

    ``abandon`` closes its sockets at once when it is ours (the lean pool); a
    user's transport has none.
    """
    return HttpxTransport(
        transport.handle_async_request,
        pool=pool,
        timer=timer,
        close=transport.aclose,
        abandon=abandon,
        library=library,
    )


def _connections_of(client: httpx.AsyncClient) -> list[object]:
    """The httpcore connections of an httpx client of ours (a proxy's), as far as can be seen."""
    mounts = getattr(client, "_mounts", {})
    transports = [getattr(client, "_transport", None), *mounts.values()]
    connections: list[object] = []
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        connections.extend(getattr(pool, "connections", ()))
    return connections
