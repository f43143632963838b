"""Resource hygiene under cancellation: nothing leaks, whatever moment a batch is cut off.

Two hundred batches (and streams) are started and cancelled at a random, seeded
moment: waiting for a rate-limit turn, a connection slot, a connection, an
answer, a retry's backoff. After each one a plain stop must go through at
once (no slot, turn or pause left behind); after the client closes, the fake
must see no connection left open and no request in flight, and no task of
ours may be left running.
"""

from __future__ import annotations

import gc
import random
import time
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

from hiveon_async import AsyncVendorClient, RateLimit, RetryPolicy
from hiveon_async.testing import FakeVendorAPI, Fault, FaultPlan
from tests.doubles import RawServer, response_head

pytestmark = [pytest.mark.anyio, pytest.mark.socket]

CYCLES = 200
SEED = 20240607
#: A cancelled batch must leave the client able to stop at once: this is "at once", generously.
AT_ONCE = 1.0
CONCURRENCY = 8
PLAN = FaultPlan(
    seed=SEED,
    rates={500: 0.15, 503: 0.03, "reset": 0.03, "drop": 0.03},
    retry_after="0.001",
    latency=0.001,
    jitter=0.003,
)


@pytest.fixture(params=["in-process", "httpcore", "aiohttp"])
def runner(request: pytest.FixtureRequest, anyio_backend: str) -> str:
    """The fake in-process, or over a socket through each pool."""
    if request.param == "aiohttp" and anyio_backend != "asyncio":
        pytest.skip("aiohttp's pool runs on asyncio only")
    return str(request.param)


def raw_client(base_url: str, *, speedups: bool) -> AsyncVendorClient:
    """A plain client of a RawServer (which checks no key)."""
    return AsyncVendorClient(
        api_key="key-123456",
        base_url=base_url,
        metadata={"CLORE_API_KEY": "clore-123456"},
        speedups=speedups,
    )


@asynccontextmanager
async def client_of(fake: FakeVendorAPI, runner: str) -> AsyncIterator[AsyncVendorClient]:
    """A client of ``fake`` with retries, a rate limit and short timeouts; closed after."""
    options = {
        "timeout": 1.0,
        "max_concurrency": CONCURRENCY,
        "rate_limit": RateLimit(per_second=2000, burst=4),
        "retry": RetryPolicy(max_attempts=4, initial_delay=0.002, max_delay=0.01),
    }
    if runner == "in-process":
        async with fake.client(**options) as client:
            yield client
        return
    async with fake.serve() as base_url:
        client = fake.client(
            base_url=base_url, transport=None, speedups=runner == "aiohttp", **options
        )
        async with client:
            yield client
        # Closed: the fake sees every connection go (it notices when its task next runs).
        with anyio.fail_after(10):
            while fake.open_connections or fake.in_flight:  # noqa: ASYNC110 - a counter, no event
                await anyio.sleep(0.01)


async def cancelled_batch(client: AsyncVendorClient, cycle: int, delay: float) -> None:
    """Start a batch (or a stream, every other cycle) and cancel it after ``delay`` seconds."""
    ids = [f"c{cycle}-{index}" for index in range(3 * CONCURRENCY)]
    with anyio.move_on_after(delay):
        if cycle % 2:
            async with client.stream_stop_deployments(ids, concurrency=CONCURRENCY) as outcomes:
                async for _ in outcomes:
                    pass
        else:
            await client.stop_deployments(ids, concurrency=CONCURRENCY)


async def test_cancelling_batches_at_random_moments_leaks_nothing(runner: str) -> None:
    """200 batches cut off at random: each time a plain stop goes through at once; no leaks."""
    moments = random.Random(SEED)
    fake = FakeVendorAPI(faults=PLAN, record=False)
    tasks_before = len(anyio.get_running_tasks())
    with anyio.fail_after(120):
        async with client_of(fake, runner) as client:
            for cycle in range(CYCLES):
                # Mostly within 8 ms (waiting for a slot, a turn, a connection); every
                # tenth within 48 ms, so that some batches are cut off with requests out
                # even on a slow machine (coverage on a loaded CI box).
                stretch = 1 if cycle % 10 else 6
                await cancelled_batch(client, cycle, moments.uniform(0.0, 0.008) * stretch)

                # Nothing held: every connection slot is free and nobody waits for one.
                assert client._engine.slots._free == CONCURRENCY, cycle
                assert not client._engine.slots._waiters, cycle
                probe = f"probe-{cycle}"
                fake.script(probe, [200])  # the probe itself meets no fault
                started = time.monotonic()
                result = await client.stop_deployment(probe)
                assert result.deployment_id == probe
                assert time.monotonic() - started < AT_ONCE, cycle
                assert probe in fake.stopped

    assert fake.in_flight == 0
    assert fake.open_connections == 0
    assert len(anyio.get_running_tasks()) == tasks_before
    assert fake.request_count > CYCLES  # the batches did send before they were cut off


@pytest.mark.parametrize("pool", ["httpcore", "aiohttp"])
async def test_a_connection_the_server_closed_is_closed_here_too(
    anyio_backend: str, pool: str
) -> None:
    """A keep-alive connection the server closed is closed by the pool, not left to the GC.

    The lean pool used to drop such a connection from its stack without closing
    it: its socket stayed open until the garbage collector found it (a
    ResourceWarning, and a file descriptor held meanwhile). The server is raw:
    it answers as if the connection stayed open, then closes it, which the
    fake never does.
    """
    if pool == "aiohttp" and anyio_backend != "asyncio":
        pytest.skip("aiohttp's pool runs on asyncio only")
    body = b'{"deployment_id": "dep-1"}'

    async def answer_then_close(stream: anyio.abc.SocketStream) -> None:
        # Keep-alive by the headers, then closed anyway: the next request needs a new one.
        await stream.send(response_head(200, f"Content-Length: {len(body)}") + body)

    server = RawServer(answer_then_close)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        async with server.serve() as base_url:
            client = raw_client(base_url, speedups=pool == "aiohttp")
            async with client:
                for _ in range(3):
                    await client.stop_deployment("dep-1")
                    with anyio.fail_after(5):
                        while server.open_connections:  # noqa: ASYNC110 - a counter, no event
                            await anyio.sleep(0.005)
                    await anyio.sleep(0.01)  # let the client's side see the close too
        gc.collect()

    assert server.connections == 3
    leaked = [str(warning.message) for warning in caught if warning.category is ResourceWarning]
    assert not leaked


async def test_cancelling_a_call_mid_body_closes_its_connection(anyio_backend: str) -> None:
    """A call cancelled while the body trickles in leaves no connection and no warning behind."""
    fake = FakeVendorAPI()
    fake.script("dep-1", [Fault.trickle(interval=0.04)])  # 25 bytes: a second in all
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        async with fake.serve() as base_url:
            client = fake.client(base_url=base_url, transport=None, speedups=False)
            async with client:
                with anyio.move_on_after(0.1):
                    await client.stop_deployment("dep-1")
            with anyio.fail_after(5):
                while fake.open_connections:  # noqa: ASYNC110 - a counter, no event
                    await anyio.sleep(0.005)
        gc.collect()

    assert not [warning for warning in caught if warning.category is ResourceWarning]
    assert client._engine.pool == "httpcore"
