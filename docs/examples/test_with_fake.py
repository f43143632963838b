"""Test code that stops deployments, against the fake vendor API: no network, no waiting."""

import pytest

from hiveon_async import AsyncVendorClient, NotFoundError
from hiveon_async.testing import FakeVendorAPI, Fault


# The code under test: a piece of your application.
async def retire_worker(client: AsyncVendorClient, deployment_id: str) -> str:
    result = await client.stop_deployment(deployment_id)
    return f"stopped {result.deployment_id}"


@pytest.mark.anyio
async def test_retire_worker(fake_vendor_api: FakeVendorAPI) -> None:
    async with fake_vendor_api.client() as client:
        assert await retire_worker(client, "dep-1") == "stopped dep-1"
    assert fake_vendor_api.stopped == {"dep-1"}


@pytest.mark.anyio
async def test_retire_worker_survives_flaky_vendor(fake_vendor_api: FakeVendorAPI) -> None:
    # The next three requests for dep-1: a 503, a reset connection, a 429.
    fake_vendor_api.script("dep-1", [503, "reset", Fault.status(429, retry_after=30)])
    async with fake_vendor_api.client() as client:
        assert await retire_worker(client, "dep-1") == "stopped dep-1"
    # Four attempts, and no time spent waiting: the fixture makes retry waits instant.
    assert fake_vendor_api.attempts["dep-1"] == 4


@pytest.mark.anyio
async def test_retire_unknown_worker() -> None:
    fake = FakeVendorAPI(deployments=["dep-1"])  # a registry: other ids answer 404
    async with fake.client() as client:
        with pytest.raises(NotFoundError):
            await retire_worker(client, "dep-2")


@pytest.mark.anyio
async def test_retire_worker_over_a_real_socket(fake_vendor_api: FakeVendorAPI) -> None:
    # transport=None: the client's own httpx transport, talking HTTP to 127.0.0.1.
    async with (
        fake_vendor_api.serve() as base_url,
        fake_vendor_api.client(base_url=base_url, transport=None) as client,
    ):
        assert await retire_worker(client, "dep-1") == "stopped dep-1"
    assert [request.answer for request in fake_vendor_api.requests] == [200]
