"""The lean httpcore pool and the client-wide slots: reuse, stale connections, cancellation.

The pool tests run on the library under test (``$HIVEON_TESTS_HTTP``): httpx's
requests over httpcore, or httpx2's over httpcore2.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType

import anyio
import httpx
import pytest

from hiveon_async._http_library import HttpLibrary, named
from hiveon_async._policy._slots import Slots
from hiveon_async._transport._httpcore import LeanPool, as_httpx_error
from hiveon_async.testing import FakeVendorAPI
from tests.doubles import HTTP_LIBRARY

pytestmark = pytest.mark.anyio

LIMITS = httpx.Limits(max_connections=8, max_keepalive_connections=8, keepalive_expiry=15.0)
LIBRARY = named(HTTP_LIBRARY)
HTTP = LIBRARY.http


def new_pool() -> LeanPool:
    """A lean pool of the library under test."""
    return LeanPool(LIMITS, library=LIBRARY)


def stop_request(base_url: str, deployment_id: str = "dep-1") -> httpx.Request:
    return HTTP.Request(  # type: ignore[no-any-return]
        "POST",
        f"{base_url}/vendors/v1/machines/deployments/{deployment_id}/stop",
        headers={"X-API-Key": "test-api-key", "Content-Type": "application/json"},
        content=b'{"metadata":{"CLORE_API_KEY":"c"}}',
        extensions={"timeout": HTTP.Timeout(5.0).as_dict()},
    )


async def roundtrip(pool: LeanPool, request: httpx.Request) -> httpx.Response:
    response = await pool.handle_async_request(request)
    try:
        await response.aread()
    finally:
        await response.aclose()
    return response


async def test_sequential_requests_reuse_one_connection() -> None:
    """Keep-alive: ten requests in a row open one connection."""
    fake = FakeVendorAPI()
    pool = new_pool()
    async with fake.serve() as base_url:
        for index in range(10):
            response = await roundtrip(pool, stop_request(base_url, f"dep-{index}"))
            assert response.status_code == 200
        assert fake.open_connections == 1
        await pool.aclose()
        await anyio.sleep(0.05)
        assert fake.open_connections == 0


async def test_concurrent_requests_open_one_connection_each() -> None:
    """Requests in flight together each get a connection; afterwards all are idle and reused."""
    fake = FakeVendorAPI()
    pool = new_pool()
    async with fake.serve() as base_url:
        async with anyio.create_task_group() as group:
            for index in range(4):
                group.start_soon(roundtrip, pool, stop_request(base_url, f"dep-{index}"))
        assert fake.open_connections == 4
        await roundtrip(pool, stop_request(base_url))
        assert fake.open_connections == 4
        await pool.aclose()


async def test_a_connection_the_server_closed_is_not_reused() -> None:
    """An idle connection the server dropped is discarded, and the next request still succeeds."""
    fake = FakeVendorAPI()
    fake.script("dep-2", ["drop"])
    pool = new_pool()
    async with fake.serve() as base_url:
        await roundtrip(pool, stop_request(base_url, "dep-1"))
        with pytest.raises(HTTP.RemoteProtocolError):
            await roundtrip(pool, stop_request(base_url, "dep-2"))
        response = await roundtrip(pool, stop_request(base_url, "dep-3"))
        assert response.status_code == 200
        await pool.aclose()


async def test_connection_refused_is_httpx_connect_error() -> None:
    """A refused connection raises ConnectError, as httpx's (httpx2's) own transport does."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    pool = new_pool()
    with pytest.raises(HTTP.ConnectError):
        await roundtrip(pool, stop_request(f"http://127.0.0.1:{port}"))
    await pool.aclose()


async def test_cancelled_request_leaves_no_connection_behind() -> None:
    """Cancelling a request mid-exchange closes its connection; the next request works."""
    fake = FakeVendorAPI()
    fake.script("slow", ["stall"])
    pool = new_pool()
    async with fake.serve() as base_url:
        with anyio.move_on_after(0.1):
            await roundtrip(pool, stop_request(base_url, "slow"))
        response = await roundtrip(pool, stop_request(base_url, "fast"))
        assert response.status_code == 200
        await pool.aclose()
        await anyio.sleep(0.05)
        assert fake.open_connections <= 1  # the stalled one closes when serve() ends


@pytest.mark.parametrize(
    "name",
    [
        "ConnectError",
        "ConnectTimeout",
        "ReadTimeout",
        "WriteTimeout",
        "PoolTimeout",
        "ReadError",
        "WriteError",
        "RemoteProtocolError",
        "LocalProtocolError",
        "UnsupportedProtocol",
    ],
)
def test_httpcore_errors_become_the_same_httpx_errors(
    name: str, http: ModuleType, httpcore_module: ModuleType
) -> None:
    """Each httpcore (httpcore2) failure maps to httpx's (httpx2's) exception of the same name."""
    library: HttpLibrary = LIBRARY
    mapped = library.core_error(getattr(httpcore_module, name)("x"))
    assert type(mapped) is getattr(http, name)


def test_other_errors_are_not_mapped() -> None:
    """An exception that is not httpcore's is left alone."""
    assert as_httpx_error(ValueError("x")) is None


@asynccontextmanager
async def held(slots: Slots) -> AsyncIterator[None]:
    """Hold a slot the way the client's attempt does."""
    if not slots.try_take():
        await slots.take()
    try:
        yield
    finally:
        slots.release()


@pytest.mark.parametrize("total", [1, 2, 3])
async def test_slots_bound_concurrency_and_serve_in_order(total: int) -> None:
    """At most `total` holders at once; with one slot, waiters are served in arrival order."""
    slots = Slots(total)
    arrived: list[int] = []
    order: list[int] = []
    holding = 0
    peak = 0

    async def hold(index: int) -> None:
        nonlocal holding, peak
        arrived.append(index)
        async with held(slots):
            order.append(index)
            holding += 1
            peak = max(peak, holding)
            await anyio.sleep(0.01)
            holding -= 1

    async with anyio.create_task_group() as group:
        for index in range(8):
            group.start_soon(hold, index)
    assert peak == total
    if total == 1:  # one release wakes one waiter: the resume order is the grant order
        assert order == arrived


async def test_a_cancelled_waiter_does_not_lose_a_slot() -> None:
    """A waiter cancelled in line leaves the slot count intact."""
    slots = Slots(1)
    async with held(slots):
        with anyio.move_on_after(0.01):
            async with held(slots):
                pytest.fail("the only slot is taken")
    with anyio.fail_after(1):
        async with held(slots):
            pass


async def test_the_client_uses_the_lean_pool_by_default() -> None:
    """A client we build without transport or speedups sends through the lean pool."""
    fake = FakeVendorAPI()
    async with fake.serve() as base_url:
        async with fake.client(base_url=base_url, transport=None, speedups=False) as client:
            await client.stop_deployments([f"dep-{i}" for i in range(20)], concurrency=4)
            assert client._engine.pool == "httpcore"
        assert fake.open_connections <= 4
