"""Connection reuse after a refused body: a closed connection never goes back to the pool.

The server keeps its connections alive and answers the first request of the
test with a body the client must refuse (over the cap only once decoded, or a
chunked body that crosses the cap in its last read), then every later request
with the documented success. The refused call ends in ``ResponseValidationError``;
the next one must succeed, on a fresh connection (or the same one, when its
raw body was read to the end), on every pool.
"""

from __future__ import annotations

import gzip
import json

import anyio
import httpx
import pytest
from anyio.abc import SocketStream

from hiveon_async import AsyncVendorClient, ResponseValidationError, RetryPolicy
from tests.doubles import RawServer, read_request, response_head

pytestmark = [pytest.mark.anyio, pytest.mark.socket, pytest.mark.usefixtures("instant_retries")]

DEPLOYMENT = "dep-1"
SUCCESS = json.dumps({"deployment_id": DEPLOYMENT}).encode()
#: Decodes to 80 KiB, over the 64 KiB cap; a few hundred bytes on the wire.
GZIPPED = gzip.compress(b'{"deployment_id": "' + b"x" * 80 * 1024 + b'"}')
#: One chunk of 70 KiB and the end of the body, sent in one write: the cap falls in the last read.
CHUNKED = b"%x\r\n" % (70 * 1024) + b"y" * 70 * 1024 + b"\r\n0\r\n\r\n"

FIRST: dict[str, bytes] = {
    "gzip": response_head(200, f"Content-Length: {len(GZIPPED)}", "Content-Encoding: gzip")
    + GZIPPED,
    "chunked": response_head(200, "Transfer-Encoding: chunked") + CHUNKED,
}

POOLS = ["httpcore", "aiohttp", "http_client"]


class KeepAlive:
    """A raw server that keeps each connection open and answers request after request."""

    def __init__(self, first: bytes) -> None:
        self.first = first
        self.answered = 0
        self.server = RawServer(self.answer)

    async def answer(self, stream: SocketStream) -> None:
        while True:
            self.answered += 1
            if self.answered == 1:
                await stream.send(self.first)
            else:
                await stream.send(response_head(200, f"Content-Length: {len(SUCCESS)}") + SUCCESS)
            if await read_request(stream) is None:
                return
            self.server.requests.append(b"(kept alive)")


@pytest.fixture(params=POOLS)
def any_pool(request: pytest.FixtureRequest, anyio_backend: str) -> str:
    """Every way the client sends: the lean pool, aiohttp's (asyncio only), a user's client."""
    if request.param == "aiohttp" and anyio_backend != "asyncio":
        pytest.skip("aiohttp's pool runs on asyncio only")
    return str(request.param)


def build(base_url: str, pool: str, own: httpx.AsyncClient | None) -> AsyncVendorClient:
    return AsyncVendorClient(
        api_key="key-123456",
        base_url=base_url,
        metadata={"CLORE_API_KEY": "clore-123456"},
        retry=RetryPolicy(max_attempts=1),
        speedups=pool == "aiohttp",
        http_client=own,
    )


@pytest.mark.parametrize("first", FIRST)
async def test_the_call_after_a_refused_body_succeeds_on_a_fresh_connection(
    any_pool: str, first: str
) -> None:
    """The refused call fails typed; the next goes through on a new connection, not a dead one."""
    keep = KeepAlive(FIRST[first])
    own = httpx.AsyncClient() if any_pool == "http_client" else None
    async with keep.server.serve() as base_url, build(base_url, any_pool, own) as client:
        with anyio.fail_after(15):
            with pytest.raises(ResponseValidationError, match="cap"):
                await client.stop_deployment(DEPLOYMENT)
            for _ in range(3):
                result = await client.stop_deployment(DEPLOYMENT)
                assert result.deployment_id == DEPLOYMENT
    if own is not None:
        await own.aclose()
    # The refused one (closed, or reused when its raw body was read to the end),
    # then one kept alive for the rest.
    assert keep.server.connections <= 2
