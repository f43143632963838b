"""The socket runner: HTTP/1.1 on 127.0.0.1 with h11, on asyncio or trio.

h11 (already installed with httpcore) parses; anyio owns the sockets, so the
faults are real: a reset is a TCP RST (``SO_LINGER`` 0, then close), a drop
closes the socket after reading the request, a stall keeps it silent.
Keep-alive connections stay open until the client or a fault closes them.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import h11
from anyio.abc import SocketAttribute, SocketStream

from ._reply import BODY_FAULTS, Backend, Reply, reason_phrase
from ._transport import CHUNK_BYTES

__all__ = ["serve_fake"]

#: Bytes asked of the socket per read.
RECEIVE_BYTES = 65536
#: Seconds to wait for the client to close after we said we would (so it reads our answer).
LINGER_SECONDS = 1.0
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)
# What a connection's task expects when the client goes away mid-exchange.
# OSError too: shutting down a socket whose peer is already gone raises ENOTCONN.
_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError)


@asynccontextmanager
async def serve_fake(fake: Backend, *, host: str, port: int) -> AsyncIterator[str]:
    """Listen on ``host:port`` and answer from ``fake`` until the block is left.

    Args:
        fake: The fake that answers.
        host: The address to listen on.
        port: The port; 0 picks a free one.

    Yields:
        The base URL.
    """
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    bound_port = listener.extra(SocketAttribute.local_port)  # noqa: S610 - anyio, not Django
    url_host = f"[{host}]" if ":" in host else host

    async def handle(stream: SocketStream) -> None:
        await _serve_connection(fake, stream)

    failure: Exception | None = None
    async with listener, anyio.create_task_group() as task_group:
        task_group.start_soon(listener.serve, handle)
        try:
            yield f"http://{url_host}:{bound_port}"
        except Exception as exc:
            # Raised from here, the caller's error would come out wrapped in an ExceptionGroup.
            failure = exc
        finally:
            task_group.cancel_scope.cancel()
    if failure is not None:
        raise failure


async def _serve_connection(fake: Backend, stream: SocketStream) -> None:
    fake.open_connections += 1
    connection = h11.Connection(h11.SERVER)
    try:
        while await _exchange(fake, connection, stream):
            connection.start_next_cycle()
    except _GONE:
        pass
    finally:
        # Shielded: the listener's cancellation must not skip the close or the count.
        with anyio.CancelScope(shield=True):
            await stream.aclose()
        fake.open_connections -= 1


async def _exchange(fake: Backend, connection: h11.Connection, stream: SocketStream) -> bool:
    """Read one request and answer it; return whether the connection stays open."""
    try:
        received = await _read_request(connection, stream)
    except h11.RemoteProtocolError as exc:
        await _answer_bad_http(fake, connection, stream, exc)
        return False
    if received is None:
        return False
    request, body = received
    api_key = content_type = None
    for name, value in request.headers:
        if name == b"x-api-key":
            api_key = value.decode("latin-1")
        elif name == b"content-type":
            content_type = value.decode("latin-1")
    reply = fake._receive(
        request.method.decode("ascii"),
        request.target.decode("ascii"),
        api_key,
        content_type,
        body,
        request.headers,
    )
    head_only = request.method == b"HEAD"
    try:
        if reply.delay:
            await anyio.sleep(reply.delay)
        if reply.fault is None or (head_only and reply.fault.kind in BODY_FAULTS):
            await stream.send(_encode(connection, reply, head_only=head_only))
        elif not await _carry_out(connection, stream, reply):
            return False
    finally:
        fake._finish()
    if connection.our_state is h11.MUST_CLOSE:
        await _close_gracefully(stream)
        return False
    return True


async def _read_request(
    connection: h11.Connection, stream: SocketStream
) -> tuple[h11.Request, bytes] | None:
    """Return the next request and its body, or None when the client closed the connection."""
    request: h11.Request | None = None
    chunks: list[bytes] = []
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            if connection.they_are_waiting_for_100_continue:
                interim = h11.InformationalResponse(status_code=100, headers=[])
                await stream.send(connection.send(interim) or b"")
            try:
                data = await stream.receive(RECEIVE_BYTES)
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                data = b""
            connection.receive_data(data)
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            chunks.append(event.data)
        elif isinstance(event, h11.EndOfMessage):
            assert request is not None
            return request, b"".join(chunks)
        else:
            return None


def _encode(connection: h11.Connection, reply: Reply, *, head_only: bool) -> bytes:
    parts = [_head(connection, reply)]
    if not head_only:
        parts.append(_data(connection, reply.body))
    parts.append(_end(connection))
    # One write per answer: a response split over several sends costs syscalls.
    return b"".join(parts)


async def _carry_out(connection: h11.Connection, stream: SocketStream, reply: Reply) -> bool:
    """Carry out a fault on the wire; return whether the connection may stay open."""
    fault = reply.fault
    assert fault is not None
    if fault.kind == "reset":
        raw_socket = stream.extra(SocketAttribute.raw_socket)  # noqa: S610 - anyio, not Django
        # Linger 0: closing sends RST instead of FIN, and the client reads ECONNRESET.
        raw_socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
        return False
    if fault.kind == "stall":
        await _stall(stream, fault.seconds)
    if fault.kind in ("stall", "drop"):
        return False
    await stream.send(_head(connection, reply))
    if fault.kind == "trickle":
        for index in range(len(reply.body)):
            await anyio.sleep(fault.interval)
            await stream.send(_data(connection, reply.body[index : index + 1]))
    else:  # a chunked huge body
        for start in range(0, len(reply.body), CHUNK_BYTES):
            await stream.send(_data(connection, reply.body[start : start + CHUNK_BYTES]))
    await stream.send(_end(connection))
    return True


async def _stall(stream: SocketStream, seconds: float) -> None:
    """Say nothing for ``seconds``, or until the client leaves: a stall then ends at once.

    A client that gave up on a stalled request is no longer waiting for it:
    counting it in flight (and keeping its socket) until the stall ran out
    made ``in_flight`` and ``open_connections`` lie.
    """
    with anyio.move_on_after(seconds):
        try:
            while True:
                await stream.receive(RECEIVE_BYTES)  # anything more is ignored, until EOF
        except _GONE:
            return


def _head(connection: h11.Connection, reply: Reply) -> bytes:
    event = h11.Response(
        status_code=reply.status, headers=reply.headers, reason=reason_phrase(reply.status)
    )
    return connection.send(event) or b""


def _data(connection: h11.Connection, data: bytes) -> bytes:
    return connection.send(h11.Data(data=data)) or b""


def _end(connection: h11.Connection) -> bytes:
    return connection.send(h11.EndOfMessage()) or b""


async def _answer_bad_http(
    fake: Backend,
    connection: h11.Connection,
    stream: SocketStream,
    exc: h11.RemoteProtocolError,
) -> None:
    # h11 still lets us answer: we only read a request before answering anything.
    body = b'{"error": "malformed HTTP request"}'
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", fake._next_request_id().encode()),
        (b"connection", b"close"),
    ]
    head = h11.Response(status_code=exc.error_status_hint, headers=headers)
    await stream.send((connection.send(head) or b"") + _data(connection, body) + _end(connection))
    await _close_gracefully(stream)


async def _close_gracefully(stream: SocketStream) -> None:
    # Half-close, then wait for the client to close: closing at once could discard
    # an answer it has not read yet (and on Linux, turn the close into a reset).
    try:
        await stream.send_eof()
    except _GONE:
        return
    with anyio.move_on_after(LINGER_SECONDS):
        try:
            while True:
                await stream.receive(RECEIVE_BYTES)
        except _GONE:
            pass
