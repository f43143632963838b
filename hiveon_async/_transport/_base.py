"""The transport interface: send one prepared stop request, return its answer.

A transport sends a :class:`StopRequest` and returns an :class:`Answer`: the
status, the headers and the body, read within the size cap. When there is no
(complete) response it raises the ``httpx.TransportError`` subclass that names
what happened (``ConnectError``, ``ReadTimeout``, ``RemoteProtocolError``...),
whatever library did the sending, so that what follows does not depend on the
transport; for a client on httpx2, httpx2's class of the same name. It knows
nothing of retries, rate limits or batches.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import httpx

__all__ = ["Answer", "AttemptTimeout", "RequestBuilder", "StopRequest", "Transport"]

#: Builds the ``httpx.Request`` for a POST of a body to a URL with headers; no I/O.
RequestBuilder = Callable[[str, Mapping[str, str], bytes], httpx.Request]


class AttemptTimeout:
    """The timeout of a client derived with ``with_options(timeout=...)``.

    A transport is opened with its client's timeout (the phases, and the
    wall-clock bound on a whole attempt, :func:`~._timer.attempt_limit`); the
    requests of a derived client that shares the transport carry their own.

    Attributes:
        timeout: The per-phase timeouts.
        limit: The wall-clock bound on one attempt, or None for none.
    """

    __slots__ = ("limit", "timeout")

    def __init__(self, timeout: httpx.Timeout, limit: float | None) -> None:
        self.timeout = timeout
        self.limit = limit


class StopRequest:
    """One prepared POST, in the form every transport can send.

    The ``httpx.Request`` is built only when something needs it (an httpx
    transport, or an error that keeps it): aiohttp sends from the URL, headers
    and body directly. ``timeout`` is None to use the transport's own.
    """

    __slots__ = ("_build", "_request", "body", "headers", "path", "timeout", "url")

    def __init__(
        self,
        *,
        url: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        build: RequestBuilder,
        timeout: AttemptTimeout | None = None,
    ) -> None:
        self.url = url
        self.path = path
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self._build = build
        self._request: httpx.Request | None = None

    def with_headers(self, extra: Mapping[str, str]) -> StopRequest:
        """The same request with ``extra`` headers added or replaced (a trace context)."""
        # A copy, so that every other field (a later one too) carries over unchanged.
        request = copy.copy(self)
        request.headers = {**self.headers, **extra}
        request._request = None  # built again, with the new headers, when needed
        return request

    @property
    def httpx_request(self) -> httpx.Request:
        """The ``httpx.Request``, built once on first use."""
        if self._request is None:
            self._request = self._build(self.url, self.headers, self.body)
        return self._request


class Answer:
    """One attempt's response: status and body at once, the ``httpx.Response`` when needed.

    Success needs only the status and the body; errors keep a full
    ``httpx.Response``, which the aiohttp transport builds only then.

    Attributes:
        status: The HTTP status.
        body: The decoded body, or what was read of it when ``problem`` is set.
        problem: Why the body is unusable (over the cap, undecodable), or None.
    """

    __slots__ = ("_make", "_raw_headers", "_response", "body", "problem", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        *,
        response: httpx.Response | None = None,
        make: Callable[[], httpx.Response] | None = None,
        problem: str | None = None,
        raw_headers: Sequence[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.problem = problem
        self._response = response
        self._make = make
        self._raw_headers = raw_headers

    @property
    def raw_headers(self) -> Sequence[tuple[bytes, bytes]]:
        """The response's headers as received: (name, value) byte pairs, in order."""
        if self._raw_headers is not None:
            return self._raw_headers
        return self.response.headers.raw

    @property
    def response(self) -> httpx.Response:
        """The response as an ``httpx.Response`` (body already read)."""
        if self._response is None:
            assert self._make is not None
            self._response = self._make()
        return self._response


class Transport(Protocol):
    """Sends stop requests for one client.

    Implementations: :mod:`._httpx` (your own ``httpx.AsyncClient``, an httpx
    transport, or a proxy's), :mod:`._httpcore` (the lean pool) and
    :mod:`._aiohttp` (the ``speedups`` extra). :func:`~._factory.open_transport`
    picks one.
    """

    @property
    def pool(self) -> str:
        """Which pool sends: ``aiohttp``, ``httpcore``, ``transport`` or ``http_client``."""
        ...

    async def send(self, request: StopRequest) -> Answer:
        """Send ``request`` once and read its body within the cap.

        Raises:
            httpx.TransportError: No (complete) response; the subclass names the event.
        """
        ...

    async def aclose(self) -> None:
        """Close what the transport opened (never a user's own client)."""
        ...

    def abandon(self) -> None:
        """Let go of what the transport opened, now, without awaiting anything.

        For a transport whose event loop is gone (the client moved to another
        loop): the sockets of a pool of ours are closed at once; a user's own
        client or transport is left as it is. Nothing is sent after this.
        """
        ...
