"""The socket runner's own behaviour: connections, real resets, raw HTTP (testing/_server.py)."""

from __future__ import annotations

import json
import socket
import struct

import anyio
import httpx
import pytest
from anyio.abc import SocketAttribute, SocketStream

from hiveon_async.testing import FakeVendorAPI, Fault, FaultPlan

pytestmark = [pytest.mark.anyio, pytest.mark.socket]

ROUTE = "/vendors/v1/machines/deployments/{}/stop"
BODY = json.dumps({"metadata": {"CLORE_API_KEY": "clore"}}).encode()


def raw_request(deployment_id: str = "dep-1", *, extra: bytes = b"") -> bytes:
    """A stop request as bytes on the wire."""
    return (
        (
            f"POST {ROUTE.format(deployment_id)} HTTP/1.1\r\nHost: fake\r\n"
            f"X-API-Key: test-api-key\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(BODY)}\r\n"
        ).encode()
        + extra
        + b"\r\n"
        + BODY
    )


async def connect(base_url: str) -> SocketStream:
    """Open a raw TCP connection to the fake."""
    return await anyio.connect_tcp("127.0.0.1", httpx.URL(base_url).port or 80)


async def read_all(stream: SocketStream) -> bytes:
    """Read until the server closes the connection."""
    data = b""
    with anyio.fail_after(1):
        try:
            while True:
                data += await stream.receive()
        except anyio.EndOfStream:
            return data


async def wait_for_no_connections(fake: FakeVendorAPI) -> None:
    """Wait (at most a second) until the server has closed every connection."""
    with anyio.fail_after(1):
        while fake.open_connections:  # noqa: ASYNC110 - a counter, with no event to wait on
            await anyio.sleep(0.005)


async def test_keep_alive_survives_errors() -> None:
    """One connection carries successes and error statuses alike, and is closed by the client."""
    fake = FakeVendorAPI()
    fake.script("dep-1", [500, 429])
    async with fake.serve() as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            statuses = []
            for _ in range(3):
                response = await client.post(
                    ROUTE.format("dep-1"), content=BODY, headers=dict(raw_headers())
                )
                statuses.append(response.status_code)
            assert fake.open_connections == 1
        await wait_for_no_connections(fake)
    assert statuses == [500, 429, 200]


def raw_headers() -> list[tuple[str, str]]:
    """The headers of a well-formed stop."""
    return [("X-API-Key", "test-api-key"), ("Content-Type", "application/json")]


async def test_reset_is_a_tcp_reset() -> None:
    """A reset fault sends RST: the peer's read fails instead of seeing an orderly EOF."""
    fake = FakeVendorAPI()
    fake.script("dep-1", ["reset"])
    async with fake.serve() as base_url, await connect(base_url) as stream:
        await stream.send(raw_request())
        with anyio.fail_after(1), pytest.raises(anyio.BrokenResourceError):
            await stream.receive()
    assert fake.open_connections == 0


async def test_drop_closes_without_an_answer() -> None:
    """A drop reads the request and closes the connection in an orderly way, unanswered."""
    fake = FakeVendorAPI()
    fake.script("dep-1", ["drop"])
    async with fake.serve() as base_url, await connect(base_url) as stream:
        await stream.send(raw_request())
        assert await read_all(stream) == b""
    assert fake.attempts == {"dep-1": 1}


async def test_a_client_that_vanishes_mid_answer() -> None:
    """A client that resets while its answer is delayed costs the server nothing."""
    fake = FakeVendorAPI(faults=FaultPlan(latency=0.05))
    async with fake.serve() as base_url:
        stream = await connect(base_url)
        await stream.send(raw_request())
        raw_socket = stream.extra(SocketAttribute.raw_socket)
        raw_socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()
        await wait_for_no_connections(fake)
        async with httpx.AsyncClient(base_url=base_url) as client:
            response = await client.post(ROUTE.format("dep-2"), content=BODY, headers=raw_headers())
    assert response.status_code == 200
    assert fake.in_flight == 0


async def test_pipelined_requests_are_answered_in_order() -> None:
    """Two requests in one write get two answers on the same connection."""
    fake = FakeVendorAPI()
    async with fake.serve() as base_url, await connect(base_url) as stream:
        await stream.send(
            raw_request("dep-1") + raw_request("dep-2", extra=b"Connection: close\r\n")
        )
        data = await read_all(stream)
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert data.index(b'"dep-1"') < data.index(b'"dep-2"')


async def test_connection_close_is_honoured() -> None:
    """``Connection: close`` gets the answer, then an orderly close."""
    fake = FakeVendorAPI()
    async with fake.serve() as base_url, await connect(base_url) as stream:
        await stream.send(raw_request(extra=b"Connection: close\r\n"))
        data = await read_all(stream)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b'{"deployment_id": "dep-1"}')


async def test_malformed_http_gets_400_and_a_close() -> None:
    """Bytes that are not HTTP get a 400 (with a request id) and the connection closed."""
    fake = FakeVendorAPI()
    async with fake.serve() as base_url, await connect(base_url) as stream:
        await stream.send(b"NOT HTTP AT ALL\r\n\r\n")
        data = await read_all(stream)
    assert data.startswith(b"HTTP/1.1 400 ")
    assert b"x-request-id: req-1" in data


async def test_expect_100_continue() -> None:
    """A client that waits for ``100 Continue`` gets it, then the answer."""
    fake = FakeVendorAPI()
    async with fake.serve() as base_url, await connect(base_url) as stream:
        request = raw_request(extra=b"Expect: 100-continue\r\nConnection: close\r\n")
        await stream.send(request[: -len(BODY)])
        with anyio.fail_after(1):
            interim = await stream.receive()
        await stream.send(BODY)
        final = await read_all(stream)
    assert interim.startswith(b"HTTP/1.1 100 ")
    assert final.startswith(b"HTTP/1.1 200 OK")


async def test_leaving_serve_closes_connections_and_stalls() -> None:
    """Leaving ``serve()`` closes idle and stalled connections alike."""
    fake = FakeVendorAPI()
    fake.script("dep-2", [Fault.stall()])
    async with fake.serve() as base_url:
        idle = await connect(base_url)
        stalled = await connect(base_url)
        await stalled.send(raw_request("dep-2"))
        with anyio.fail_after(1):
            while fake.in_flight == 0 or fake.open_connections < 2:  # noqa: ASYNC110
                await anyio.sleep(0.005)
    assert (fake.open_connections, fake.in_flight) == (0, 0)
    await idle.aclose()
    await stalled.aclose()


def test_serve_in_thread_answers_sync_clients() -> None:
    """``serve_in_thread`` runs the server on its own loop for synchronous code."""
    fake = FakeVendorAPI()
    with fake.serve_in_thread() as base_url, httpx.Client(base_url=base_url) as client:
        response = client.post(ROUTE.format("dep-1"), content=BODY, headers=raw_headers())
    assert response.json() == {"deployment_id": "dep-1"}
    assert fake.open_connections == 0


async def test_base_url_names_host_and_port() -> None:
    """The base URL is ``http://host:port`` with the port actually bound."""
    async with FakeVendorAPI().serve(host="127.0.0.1", port=0) as base_url:
        url = httpx.URL(base_url)
    assert url.scheme == "http"
    assert url.host == "127.0.0.1"
    assert url.port


async def test_an_error_in_the_block_propagates_as_is() -> None:
    """An exception raised inside ``serve()`` reaches the caller unwrapped, and nothing leaks."""
    fake = FakeVendorAPI()
    with pytest.raises(LookupError, match="boom"):
        async with fake.serve() as base_url, await connect(base_url):
            raise LookupError("boom")
    assert fake.open_connections == 0
