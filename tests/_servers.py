"""A tiny scripted HTTP/1.1 server on 127.0.0.1 (anyio + h11), for tests that need a socket.

respx and mock transports skip httpx's own checks (header encoding, connection
handling, redirects on the wire); these tests run the real transport against it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import attrs
import h11
from anyio.abc import SocketAttribute, SocketStream


@attrs.frozen(kw_only=True)
class Received:
    """One request as it arrived on the wire."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@attrs.frozen(kw_only=True)
class Reply:
    """What to answer: a status, headers and body; ``trickle`` sends the body a byte at a time."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    trickle: float = 0.0


#: A handler returns the reply for a request, or None to close the connection unanswered.
Handler = Callable[[Received], Awaitable[Reply | None]]


class LocalServer:
    """Serves ``handler`` on 127.0.0.1; records every request and counts connections.

    Args:
        handler: Decides each reply.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.received: list[Received] = []
        self.connections = 0
        self.url = ""

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        """Listen on a free port for the duration; yield the base URL (also ``self.url``)."""
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.url = f"http://127.0.0.1:{listener.extra(SocketAttribute.local_port)}"
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, self._connection)
            yield self.url
            tg.cancel_scope.cancel()

    async def _connection(self, stream: SocketStream) -> None:
        self.connections += 1
        connection = h11.Connection(h11.SERVER)
        async with stream:
            while (request := await _read_request(connection, stream)) is not None:
                self.received.append(request)
                reply = await self.handler(request)
                if reply is None:
                    return
                await _send_reply(connection, stream, reply)
                if connection.our_state is not h11.DONE:
                    return
                connection.start_next_cycle()


async def _read_request(connection: h11.Connection, stream: SocketStream) -> Received | None:
    head: h11.Request | None = None
    body = b""
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            try:
                connection.receive_data(await stream.receive())
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return None
        elif isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            headers = {name.decode(): value.decode() for name, value in head.headers}
            return Received(
                method=head.method.decode(), target=head.target.decode(), headers=headers, body=body
            )
        else:
            return None


async def _send_reply(connection: h11.Connection, stream: SocketStream, reply: Reply) -> None:
    headers = [*reply.headers, ("content-length", str(len(reply.body)))]
    await stream.send(connection.send(h11.Response(status_code=reply.status, headers=headers)))
    step = 1 if reply.trickle else max(len(reply.body), 1)
    chunks = [reply.body[i : i + step] for i in range(0, len(reply.body), step)]
    for chunk in chunks:
        await stream.send(connection.send(h11.Data(data=chunk)))
        await anyio.sleep(reply.trickle)
    await stream.send(connection.send(h11.EndOfMessage()))
