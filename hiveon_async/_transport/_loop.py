"""The event loop a pool belongs to, and letting go of a pool whose loop is gone.

A connection belongs to the event loop that opened it: asyncio's transports
call back into their loop, trio's sockets are known to their run. A client
used from one loop after another (``asyncio.run`` twice, a test framework's
loop per test, asyncio and then trio) must not touch the old loop's
connections, and cannot close them the usual way either: their close is a
coroutine, or a callback, for a loop that no longer runs.

:class:`LoopBoundTransport` notices the new loop at the next send, lets go of
the old transport (:meth:`~._base.Transport.abandon`: the sockets of a pool of
ours are closed at once, without their loop) and opens a fresh one on the new
loop. A user's own client or transport is never ours to close or rebuild.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from .._clock import current_loop
from .._errors import ClientClosedError
from ._base import Answer, StopRequest, Transport

__all__ = ["LoopBoundTransport", "close_asyncio_transport", "close_network_streams"]


class LoopBoundTransport:
    """The transport of the running event loop: opened anew on each loop the client meets.

    Args:
        open_transport: Opens a transport on the running loop.
    """

    def __init__(self, open_transport: Callable[[], Transport]) -> None:
        self._open = open_transport
        self._loop = current_loop()
        self._transport = open_transport()
        self._closed = False

    @property
    def pool(self) -> str:
        """Which pool sends on the current loop (see :class:`~._base.Transport`)."""
        return self._transport.pool

    def send(self, request: StopRequest) -> Coroutine[Any, Any, Answer]:
        """Send through the running loop's transport, opening it if the loop is new.

        Returns the transport's own coroutine: no frame of ours on every send.
        """
        loop = current_loop()
        if loop is not self._loop:
            self._move_to(loop)
        return self._transport.send(request)

    def _move_to(self, loop: object | None) -> None:
        if self._closed:
            raise ClientClosedError()
        old, self._loop = self._transport, loop
        old.abandon()
        self._transport = self._open()

    def abandon(self) -> None:
        """Let go of the current transport now (see :meth:`~._base.Transport.abandon`)."""
        self._closed = True
        self._transport.abandon()

    async def aclose(self) -> None:
        """Close the transport; on another loop than its own, let go of what is ours first.

        What is ours belongs to a loop that is gone (or elsewhere): nothing of
        it may be awaited here. A user's ``transport=`` is closed as always.
        """
        self._closed = True
        if current_loop() is not self._loop:
            self._transport.abandon()
        await self._transport.aclose()


# -- closing sockets without their event loop ------------------------------------------
#
# What follows reaches into the private parts of asyncio's transports, anyio's and
# trio's streams and httpcore's connections: none offers a synchronous close. Each
# step is guarded, so a library that changed leaves a socket to the garbage collector
# (as before) rather than failing the call.


def close_asyncio_transport(transport: asyncio.BaseTransport) -> None:
    """Close an asyncio transport whose event loop no longer runs here, socket included.

    On a loop that runs (in another thread), it is aborted there. A closed
    loop cannot run the callback that finishes a close (it raises "Event loop
    is closed"): the transport is aborted, then finished here, which closes
    its socket, so it does not warn when collected. A loop that is neither
    (stopped, not closed) finishes the close if it ever runs again.
    """
    loop = getattr(transport, "_loop", None)
    if isinstance(loop, asyncio.AbstractEventLoop) and loop.is_running():
        with contextlib.suppress(RuntimeError):  # closed meanwhile
            loop.call_soon_threadsafe(transport.abort)  # type: ignore[attr-defined]
        return
    # asyncio's TLS transport sits over the socket's own transport.
    under = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None) or transport
    with contextlib.suppress(RuntimeError):  # a closed loop refuses the final callback
        transport.abort()  # type: ignore[attr-defined]
    if not (isinstance(loop, asyncio.AbstractEventLoop) and loop.is_closed()):
        return
    for part in (under, transport):
        finish = getattr(part, "_call_connection_lost", None)
        if finish is not None and getattr(part, "_sock", None) is not None:
            with contextlib.suppress(Exception):  # the protocol may call its dead loop too
                finish(None)


def _close_trio_socket(sock: object) -> None:
    """Close a trio socket, from inside a trio run or not."""
    try:
        sock.close()  # type: ignore[attr-defined]
    except RuntimeError:  # outside trio: it cannot tell trio it closes, so give up its fd
        with contextlib.suppress(OSError, AttributeError):
            fd = sock.detach()  # type: ignore[attr-defined]
            if fd >= 0:
                os.close(fd)


def _close_stream(stream: object) -> None:
    """Close the socket under one of httpcore's network streams (anyio's or trio's)."""
    inner = getattr(stream, "_stream", stream)  # httpcore's stream wraps the library's
    inner = getattr(inner, "transport_stream", inner)  # a TLS stream wraps the socket's
    transport = getattr(inner, "_transport", None)  # anyio's stream on asyncio
    if isinstance(transport, asyncio.BaseTransport):
        close_asyncio_transport(transport)
        return
    sock = getattr(inner, "socket", None)  # trio's SocketStream
    if sock is not None and hasattr(sock, "detach"):
        _close_trio_socket(sock)


def _network_stream(connection: object) -> object | None:
    """The network stream under one of httpcore's connections (a proxied one nests), or None."""
    for _ in range(4):
        stream: object = getattr(connection, "_network_stream", None)
        if stream is not None:
            return stream
        connection = getattr(connection, "_connection", None)
        if connection is None:
            return None
    return None


def close_network_streams(connections: Iterable[object]) -> None:
    """Close the sockets of httpcore connections now, without their event loop."""
    for connection in connections:
        stream = _network_stream(connection)
        if stream is not None:
            _close_stream(stream)
