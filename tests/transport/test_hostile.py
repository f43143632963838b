"""Hostile servers over a real socket, through each pool: a typed error, quickly, in little memory.

The server here speaks raw bytes (``RawServer`` of ``tests/doubles.py``), so
it can send what no well-behaved server would: a redirect of any kind
elsewhere, bodies that never end (by Content-Length and chunked), a gzip bomb,
absurd JSON, bytes that are not UTF-8, a status line of garbage, a header
block that never ends.
"""

from __future__ import annotations

import functools
import json
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest
from anyio.abc import SocketStream

from hiveon_async import (
    APIConnectionError,
    APIStatusError,
    AsyncVendorClient,
    HiveonError,
    ResponseValidationError,
    RetryPolicy,
    ServerError,
    StopResult,
)
from hiveon_async.testing import FakeVendorAPI, Fault
from tests.doubles import RawServer, endless, response_head

pytestmark = [pytest.mark.anyio, pytest.mark.socket, pytest.mark.usefixtures("instant_retries")]

#: Each hostile exchange must end within this many seconds (generous: a loaded machine).
QUICKLY = 15.0
#: Memory the client may allocate (Python's allocator, tracemalloc) to refuse one.
LITTLE_MEMORY = 20 * 2**20
#: Seconds per phase of an attempt; the attempt as a whole is bounded by their sum.
TIMEOUT = 0.5
DEPLOYMENT = "dep-1"
SUCCESS = json.dumps({"deployment_id": DEPLOYMENT}).encode()

Handler = Callable[[SocketStream], Awaitable[None]]


@functools.cache
def gzip_bomb(*, wbits: int = 16 + zlib.MAX_WBITS) -> bytes:
    """64 MiB of zeros, compressed about a thousand times (gzip, or raw zlib for deflate)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    zeros = bytes(2**20)
    return b"".join([*(compressor.compress(zeros) for _ in range(64)), compressor.flush()])


def sends(*parts: bytes) -> Handler:
    """A handler that writes ``parts`` and closes."""

    async def handler(stream: SocketStream) -> None:
        await stream.send(b"".join(parts))

    return handler


def sends_forever(head: bytes, chunk: bytes, pause: float = 0.0) -> Handler:
    """A handler that writes ``head``, then ``chunk`` until the client leaves."""

    async def handler(stream: SocketStream) -> None:
        await stream.send(head)
        await endless(stream, chunk, pause=pause)

    return handler


def with_length(body: bytes, status: int = 200, *headers: str) -> Handler:
    """A complete response with Content-Length (and ``headers``); the connection then closes."""
    head = response_head(status, f"Content-Length: {len(body)}", "Connection: close", *headers)
    return sends(head, body)


CHUNK = b"x" * 16384
#: name -> (what the server does, the error the call must end in)
HOSTILE: dict[str, tuple[Handler, type[HiveonError]]] = {
    "body over the cap by content-length": (
        sends_forever(response_head(200, "Content-Length: 1000000000000"), CHUNK),
        ResponseValidationError,
    ),
    "body over the cap, chunked, never ending": (
        sends_forever(
            response_head(200, "Transfer-Encoding: chunked"), b"4000\r\n" + CHUNK + b"\r\n"
        ),
        ResponseValidationError,
    ),
    "body over the cap, no length, until close": (
        sends_forever(response_head(200, "Connection: close"), CHUNK),
        ResponseValidationError,
    ),
    "error body that never ends": (
        sends_forever(
            response_head(503, "Transfer-Encoding: chunked"), b"4000\r\n" + CHUNK + b"\r\n"
        ),
        ServerError,
    ),
    "json nested 100,000 deep (over the cap)": (
        with_length(b"[" * 100_000 + b"]" * 100_000),
        ResponseValidationError,
    ),
    "json nested 30,000 deep (within the cap)": (
        with_length(b"[" * 30_000 + b"]" * 30_000),
        ResponseValidationError,
    ),
    "json object nested 20,000 deep": (
        with_length(b'{"a":' * 20_000 + b"1" + b"}" * 20_000),
        ResponseValidationError,
    ),
    "a 5,000-digit number": (
        with_length(b'{"deployment_id": "dep-1", "n": 1' + b"0" * 5000 + b"}"),
        ResponseValidationError,
    ),
    "a 5,000-digit number as the id": (
        with_length(b'{"deployment_id": 1' + b"0" * 5000 + b"}"),
        ResponseValidationError,
    ),
    "invalid utf-8 in the body": (
        with_length(b'{"deployment_id": "dep-1\xff\xfe"}'),
        ResponseValidationError,
    ),
    "invalid utf-8 in an error body": (
        with_length(b"\xff\xfe\xfd not text \xc3\x28", 400),
        APIStatusError,
    ),
    "status line of garbage": (sends(b"\x00\xff GARBAGE \x01\r\n\r\n"), APIConnectionError),
    "status line without a status": (sends(b"HTTP/1.1 OK\r\n\r\n"), APIConnectionError),
    "status code of twenty digits": (
        sends(b"HTTP/1.1 20000000000000000000 OK\r\nContent-Length: 0\r\n\r\n"),
        APIConnectionError,
    ),
    "status line that never ends": (
        sends_forever(b"HTTP/1.1 200 ", b"a" * 1024),
        APIConnectionError,
    ),
    "header block that never ends": (
        sends_forever(b"HTTP/1.1 200 OK\r\n", b"X-Pad: " + b"a" * 90 + b"\r\n"),
        APIConnectionError,
    ),
    "header line that never ends": (
        sends_forever(b"HTTP/1.1 200 OK\r\nX-Pad: ", b"a" * 1024),
        APIConnectionError,
    ),
    "closed mid-body": (
        sends(response_head(200, "Content-Length: 100"), b'{"deployment_id": '),
        APIConnectionError,
    ),
    "error with headers that are not ascii": (
        with_length(b"oops", 503, "X-Note: caf\u00e9 \u2603", "Server: \u00fcber"),
        ServerError,
    ),
    "unknown content-encoding": (
        with_length(SUCCESS, 200, "Content-Encoding: br"),
        ResponseValidationError,
    ),
    "corrupt gzip": (
        with_length(b"\x1f\x8b\x08\x00garbage-not-deflate", 200, "Content-Encoding: gzip"),
        ResponseValidationError,
    ),
}


@pytest.fixture
def connect(api_key: str, clore_key: str, pool: str) -> Callable[[str], AsyncVendorClient]:
    """Build a client of a base URL through the pool under test, with short timeouts."""

    def build(base_url: str) -> AsyncVendorClient:
        return AsyncVendorClient(
            api_key=api_key,
            base_url=base_url,
            metadata={"CLORE_API_KEY": clore_key},
            timeout=TIMEOUT,
            retry=RetryPolicy(max_attempts=2),
            speedups=pool == "aiohttp",
        )

    return build


@asynccontextmanager
async def little_memory() -> AsyncIterator[None]:
    """Fail unless the block allocates (at its peak) less than :data:`LITTLE_MEMORY`."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < LITTLE_MEMORY, f"peak {peak / 2**20:.1f} MiB"


async def stop_against(
    handler: Handler, connect: Callable[[str], AsyncVendorClient]
) -> tuple[StopResult | HiveonError, RawServer]:
    """Stop one deployment against a raw server running ``handler``; return what came of it."""
    server = RawServer(handler)
    outcome: StopResult | HiveonError
    async with server.serve() as base_url, connect(base_url) as client:
        with anyio.fail_after(QUICKLY):
            try:
                outcome = await client.stop_deployment(DEPLOYMENT)
            except HiveonError as error:
                outcome = error
    return outcome, server


@pytest.mark.parametrize("case", HOSTILE)
async def test_hostile_response_ends_in_a_typed_error(
    connect: Callable[[str], AsyncVendorClient], case: str
) -> None:
    """Each hostile answer ends in the expected HiveonError, quickly, in bounded memory."""
    handler, expected = HOSTILE[case]

    async with little_memory():
        outcome, server = await stop_against(handler, connect)

    assert isinstance(outcome, expected), repr(outcome)
    assert 1 <= len(server.requests) <= 2  # never more than the attempts allowed
    assert server.open_connections == 0


async def test_a_header_block_trickling_forever_is_cut_off_by_the_attempt_bound(
    api_key: str, clore_key: str, pool: str
) -> None:
    """Bytes keep coming, so no read times out: the attempt's own bound ends it."""
    handler = sends_forever(b"HTTP/1.1 200 OK\r\n", b"X-Slow: 1\r\n", pause=0.01)

    def connect(base_url: str) -> AsyncVendorClient:
        return AsyncVendorClient(
            api_key=api_key,
            base_url=base_url,
            metadata={"CLORE_API_KEY": clore_key},
            timeout=0.25,  # each phase; the attempt as a whole gets their sum, 1 s
            retry=RetryPolicy(max_attempts=1),
            speedups=pool == "aiohttp",
        )

    async with little_memory():
        outcome, server = await stop_against(handler, connect)

    assert isinstance(outcome, APIConnectionError), repr(outcome)
    assert server.open_connections == 0


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_compression_bomb_is_cut_off_at_the_cap(
    connect: Callable[[str], AsyncVendorClient], encoding: str
) -> None:
    """A small body that inflates to 64 MiB is refused after 64 KiB, in bounded memory."""
    bomb = gzip_bomb() if encoding == "gzip" else gzip_bomb(wbits=zlib.MAX_WBITS)
    assert len(bomb) < 2**20 // 8  # small on the wire
    handler = with_length(bomb, 200, f"Content-Encoding: {encoding}")

    async with little_memory():
        outcome, _ = await stop_against(handler, connect)

    assert isinstance(outcome, ResponseValidationError), repr(outcome)
    assert "cap" in str(outcome)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect_to_another_host_sends_it_nothing(
    connect: Callable[[str], AsyncVendorClient], status: int
) -> None:
    """A redirect is an error naming the status; the host it points at receives nothing."""
    elsewhere = RawServer(with_length(SUCCESS))
    async with elsewhere.serve() as target:
        location = f"Location: {target}/vendors/v1/machines/deployments/{DEPLOYMENT}/stop"
        outcome, server = await stop_against(with_length(b"", status, location), connect)

    assert isinstance(outcome, APIStatusError), repr(outcome)
    assert outcome.status_code == status
    assert "redirects are never followed" in str(outcome)
    assert len(server.requests) == 1
    assert elsewhere.connections == 0


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(
            b"HTTP/1.1 200 \xff\xfe\r\nX-Request-Id: \xc3\x28\xff", id="reason-and-header"
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\nX-Request-Id: " + b"r" * 7000, id="long-header"),
        pytest.param(b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 90, id="many-headers"),
        pytest.param(b"HTTP/9.9 200 OK", id="unknown-version"),
        pytest.param(b"HTTP/1.0 200 OK", id="http-1.0"),
    ],
)
async def test_odd_but_parseable_heads_never_escape_as_other_errors(
    connect: Callable[[str], AsyncVendorClient], head: bytes
) -> None:
    """Bytes that are not UTF-8, or a lot of header, around a good body: a result or our error."""
    handler = sends(
        head.rstrip(b"\r\n") + b"\r\nContent-Length: %d\r\n\r\n" % len(SUCCESS), SUCCESS
    )

    outcome, _ = await stop_against(handler, connect)

    assert isinstance(outcome, (StopResult, HiveonError)), repr(outcome)
    if isinstance(outcome, StopResult):
        assert outcome.deployment_id == DEPLOYMENT


@pytest.mark.parametrize("kind", ["garbage", "mismatch", "huge"])
async def test_a_2xx_that_cannot_be_read_may_have_been_applied(
    instant_retries: None, kind: str
) -> None:
    """A 2xx is the server saying it acted: if its body is unusable, maybe_applied is set.

    The fake here really stops the deployment, then answers with a broken body;
    an error saying maybe_applied=False would tell the operator nothing happened.
    """
    fake = FakeVendorAPI()
    fake.script(DEPLOYMENT, [Fault(kind=kind, applied=True)])  # type: ignore[arg-type]
    async with fake.client() as client:
        with pytest.raises(ResponseValidationError) as caught:
            await client.stop_deployment(DEPLOYMENT)

    assert DEPLOYMENT in fake.stopped
    assert caught.value.maybe_applied


async def test_an_error_keeps_request_headers_that_are_not_ascii(
    anyio_backend: str, instant_retries: None
) -> None:
    """A borrowed http_client's non-ASCII default header survives into the kept request.

    The request kept on an error is rebuilt from the headers sent; rebuilt from
    their decoded text, a value that is not ASCII made httpx raise
    UnicodeEncodeError instead of our error.
    """
    fake = FakeVendorAPI()
    fake.script(DEPLOYMENT, [503])
    async with (
        fake.serve() as base_url,
        httpx.AsyncClient(headers=[(b"X-Team", "équipe ☃".encode())]) as own,
    ):
        client = fake.client(base_url=base_url, http_client=own, retry=RetryPolicy(max_attempts=1))
        with pytest.raises(ServerError) as caught:
            await client.stop_deployment(DEPLOYMENT)

    kept = caught.value.response.request
    assert dict(kept.headers.raw)[b"X-Team"] == "équipe ☃".encode()
    assert dict(kept.headers.raw)[b"X-API-Key"] == b"[redacted]"
