"""The fake's own accounting: a stall the client gave up on, and Fault keys in a plan."""

from __future__ import annotations

import anyio
import httpx
import pytest

from hiveon_async.testing import FakeVendorAPI, Fault, FaultPlan

pytestmark = pytest.mark.anyio

ROUTE = "/vendors/v1/machines/deployments/{}/stop"
HEADERS = {"X-API-Key": "test-api-key"}
BODY = {"metadata": {"CLORE_API_KEY": "clore"}}


async def test_a_stall_the_client_left_is_no_longer_in_flight() -> None:
    """Once the client gives up on a stalled request, the fake stops counting it (and its socket).

    On the socket runner; in-process, a stall runs in the client's own task and ends with it.
    """
    fake = FakeVendorAPI()
    fake.script("dep-1", [Fault.stall(seconds=60)])
    async with fake.serve() as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=0.2) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post(ROUTE.format("dep-1"), json=BODY, headers=HEADERS)
        with anyio.fail_after(5):
            while fake.in_flight or fake.open_connections:  # noqa: ASYNC110 - a counter, no event
                await anyio.sleep(0.01)
    assert fake.peak_in_flight == 1


async def test_a_plan_takes_faults_as_keys() -> None:
    """FaultPlan.rates accepts a Fault as a key, as scripts do; the fake rolls it."""
    plan = FaultPlan(seed=1, rates={Fault.status(502): 1.0})
    fake = FakeVendorAPI(faults=plan)
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://fake") as client:
        response = await client.post(ROUTE.format("dep-1"), json=BODY, headers=HEADERS)
    assert response.status_code == 502
