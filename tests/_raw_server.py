"""A raw-socket server on 127.0.0.1 (anyio): reads one request, then lets a handler write bytes.

The fake and ``tests/_servers.py`` speak valid HTTP through h11; a hostile
server does not, so this one hands the socket to the test, which writes
whatever it likes (a garbage status line, a header block that never ends, a
body that never ends). Every endless writer stops when the client goes away,
when the server is closed, or after :data:`MAX_BYTES`, whichever comes first.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
from anyio.abc import SocketAttribute, SocketStream

__all__ = ["MAX_BYTES", "RawServer", "endless", "response_head"]

#: The most bytes an endless writer sends on one connection (a bound on every loop).
MAX_BYTES = 512 * 2**20
#: Seconds a connection may take to deliver its request.
REQUEST_SECONDS = 10.0
_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError)

#: Writes the answer (or not) on a connection whose request has been read.
Handler = Callable[[SocketStream], Awaitable[None]]


class RawServer:
    """Serves ``handler`` on a free port; counts connections and keeps each request's bytes.

    Args:
        handler: Writes the answer on each connection after its request was read.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.open_connections = 0
        self.requests: list[bytes] = []
        self.url = ""

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        """Listen for the duration of the block; yield the base URL."""
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = listener.extra(SocketAttribute.local_port)
        self.url = f"http://127.0.0.1:{port}"
        async with listener, anyio.create_task_group() as group:
            group.start_soon(listener.serve, self._connection)
            try:
                yield self.url
            finally:
                group.cancel_scope.cancel()

    async def _connection(self, stream: SocketStream) -> None:
        self.connections += 1
        self.open_connections += 1
        try:
            with contextlib.suppress(*_GONE), anyio.move_on_after(REQUEST_SECONDS):
                request = await read_request(stream)
                if request is None:
                    return
                self.requests.append(request)
                await self.handler(stream)
        finally:
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            self.open_connections -= 1


async def read_request(stream: SocketStream) -> bytes | None:
    """Read one request (head and Content-Length body); None if the client left first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive()
        if not chunk:
            return None
        data += chunk
        if len(data) > 1 << 20:
            return None
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        body += await stream.receive()
    return head + b"\r\n\r\n" + body


def response_head(status: bytes | int = 200, *headers: bytes | str) -> bytes:
    """A status line and header block, ready to send (``headers`` are ``b"Name: value"``)."""
    line = status if isinstance(status, bytes) else b"HTTP/1.1 %d Whatever" % status
    lines = [line, *(h if isinstance(h, bytes) else h.encode() for h in headers)]
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def endless(
    stream: SocketStream, chunk: bytes, *, pause: float = 0.0, limit: int = MAX_BYTES
) -> None:
    """Send ``chunk`` again and again until the client leaves (or ``limit`` bytes)."""
    sent = 0
    while sent < limit:
        await stream.send(chunk)
        sent += len(chunk)
        if pause:
            await anyio.sleep(pause)
        else:
            await anyio.lowlevel.checkpoint()
