"""client.with_options(): other options per call site, one pool, one limiter, one budget."""

from __future__ import annotations

import anyio
import pytest

from hiveon_async import (
    APITimeoutError,
    AsyncVendorClient,
    InvalidRequestError,
    RateLimit,
    RetryPolicy,
    ServerError,
)
from hiveon_async.testing import FakeVendorAPI, Fault
from tests.doubles import fake_client

pytestmark = pytest.mark.anyio

POOLS = ["httpcore", "aiohttp"]


@pytest.fixture(params=POOLS)
def socket_pool(request: pytest.FixtureRequest, anyio_backend: str) -> str:
    """Each pool of ours over a real socket (aiohttp's on asyncio only)."""
    if request.param == "aiohttp" and anyio_backend != "asyncio":
        pytest.skip("aiohttp's pool runs on asyncio only")
    return str(request.param)


def socket_client(
    fake: FakeVendorAPI, base_url: str, pool: str, **options: object
) -> AsyncVendorClient:
    return AsyncVendorClient(
        api_key=fake.api_key,
        base_url=base_url,
        metadata={"CLORE_API_KEY": fake.clore_api_key},
        speedups=pool == "aiohttp",
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.socket
async def test_a_derived_client_sends_through_the_same_connections(socket_pool: str) -> None:
    """Calls of the original and of the derived client reuse one kept-alive connection."""
    fake = FakeVendorAPI()
    async with fake.serve() as base_url, socket_client(fake, base_url, socket_pool) as client:
        derived = client.with_options(timeout=5.0, retry=RetryPolicy(max_attempts=1))
        for deployment_id in ("dep-1", "dep-2", "dep-3"):
            await client.stop_deployment(deployment_id)
            await derived.stop_deployment(deployment_id + "-b")
        assert client._engine.pool == derived._engine.pool == socket_pool
        assert fake.open_connections == 1
    assert fake.request_count == 6


@pytest.mark.socket
async def test_a_derived_timeout_bounds_its_attempts_only(socket_pool: str) -> None:
    """A stalled answer times out under the derived client's 0.3 s; the original's 30 s stays."""
    fake = FakeVendorAPI()
    fake.script("dep-slow", [Fault.stall(seconds=3.0)])
    one_try = RetryPolicy(max_attempts=1)
    async with (
        fake.serve() as base_url,
        socket_client(fake, base_url, socket_pool, timeout=30.0, retry=one_try) as client,
    ):
        derived = client.with_options(timeout=0.3)
        with anyio.fail_after(10), pytest.raises(APITimeoutError):
            await derived.stop_deployment("dep-slow")
        result = await client.stop_deployment("dep-2")
    assert result.deployment_id == "dep-2"


async def test_a_derived_timeout_is_the_requests_timeout_on_a_transport() -> None:
    """Through a transport (the fake's), the derived timeout is the one each request carries."""
    fake = FakeVendorAPI()
    fake.script("dep-slow", [Fault.stall(seconds=3.0)])
    async with fake_client(fake, timeout=30.0, retry=RetryPolicy(max_attempts=1)) as client:
        derived = client.with_options(timeout=0.3)
        with anyio.fail_after(10), pytest.raises(APITimeoutError):
            await derived.stop_deployment("dep-slow")
        assert (await client.stop_deployment("dep-2")).deployment_id == "dep-2"


async def test_a_derived_retry_policy_applies_to_its_calls_only() -> None:
    """After a 503 the derived client (one attempt) gives up; the original retries and succeeds."""
    fake = FakeVendorAPI()
    fake.script("dep-1", [Fault.status(503)])
    fake.script("dep-2", [Fault.status(503)])
    async with fake_client(fake) as client:
        derived = client.with_options(retry=RetryPolicy(max_attempts=1))
        with pytest.raises(ServerError) as caught:
            await derived.stop_deployment("dep-1")
        result = await client.stop_deployment("dep-2")
    assert caught.value.attempts == 1
    assert result.attempts == 2


async def test_derived_metadata_is_merged_over_the_originals() -> None:
    """The derived client sends the original's CLORE_API_KEY plus its own fields."""
    fake = FakeVendorAPI()
    async with fake_client(
        fake, metadata={"CLORE_API_KEY": fake.clore_api_key, "team": "a"}
    ) as client:
        derived = client.with_options(metadata={"team": "b", "reason": "urgent"})
        await derived.stop_deployment("dep-1")
        await client.stop_deployment("dep-2")
    first, second = (request.body for request in fake.requests)
    assert isinstance(first, dict)
    assert isinstance(second, dict)
    assert first["metadata"]["team"] == "b"
    assert first["metadata"]["reason"] == "urgent"
    assert first["metadata"]["CLORE_API_KEY"] == second["metadata"]["CLORE_API_KEY"]
    assert second["metadata"]["team"] == "a"
    assert "reason" not in second["metadata"]


async def test_a_derived_client_shares_the_limiter_slots_and_budget() -> None:
    """One rate gate, one set of slots and one retry budget for both."""
    fake = FakeVendorAPI()
    async with fake_client(fake, rate_limit=RateLimit(per_second=50)) as client:
        derived = client.with_options(retry=RetryPolicy(max_attempts=2))
        assert derived._engine.gate is client._engine.gate
        assert derived._engine.slots is client._engine.slots
        assert derived._engine.budget is client._engine.budget
        assert derived.max_concurrency == client.max_concurrency


async def test_closing_a_derived_client_leaves_the_pool_open() -> None:
    """The derived client refuses calls once closed; the original goes on."""
    fake = FakeVendorAPI()
    async with fake_client(fake) as client:
        derived = client.with_options(retry=RetryPolicy(max_attempts=1))
        await derived.stop_deployment("dep-1")
        await derived.aclose()
        assert derived.closed
        assert not client.closed
        with pytest.raises(RuntimeError, match="closed"):
            await derived.stop_deployment("dep-2")
        assert (await client.stop_deployment("dep-3")).deployment_id == "dep-3"


async def test_closing_the_original_closes_every_derived_client() -> None:
    """After the original's aclose(), derived clients refuse calls and nothing more is sent."""
    fake = FakeVendorAPI()
    async with fake_client(fake) as client:
        derived = client.with_options(timeout=2.0)
    assert derived.closed
    with pytest.raises(RuntimeError, match="closed"):
        await derived.stop_deployment("dep-1")
    with pytest.raises(RuntimeError, match="closed"):
        client.with_options(timeout=1.0)
    assert fake.request_count == 0


async def test_bad_options_raise_before_any_io() -> None:
    """A wrong retry, timeout or metadata is an InvalidRequestError; no secret is in it."""
    fake = FakeVendorAPI()
    async with fake_client(fake) as client:
        with pytest.raises(InvalidRequestError, match="RetryPolicy"):
            client.with_options(retry="twice")  # type: ignore[arg-type]
        with pytest.raises(InvalidRequestError, match="timeout"):
            client.with_options(timeout=-1)
        with pytest.raises(InvalidRequestError) as caught:
            client.with_options(metadata={"CLORE_API_KEY": 12345})  # type: ignore[dict-item]
    assert "CLORE_API_KEY" in str(caught.value)
    assert fake.request_count == 0
