"""What the fake records and counts, with secrets kept out (testing/_records.py, _throttle.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import httpx
import pytest

from hiveon_async.testing import FakeVendorAPI, FaultPlan, ReceivedRequest

if TYPE_CHECKING:
    from tests.doubles import FakeRunner

pytestmark = pytest.mark.anyio

ROUTE = "/vendors/v1/machines/deployments/{}/stop"
VENDOR_KEY = "vendor-secret-0123456789"
CLORE_KEY = "clore-secret-9876543210"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def stop(
    client: httpx.AsyncClient, deployment_id: str = "dep-1", *, key: str = VENDOR_KEY
) -> httpx.Response:
    """Send a well-formed stop carrying both secrets."""
    body = {"metadata": {"CLORE_API_KEY": CLORE_KEY, "region": "eu"}}
    return await client.post(ROUTE.format(deployment_id), json=body, headers={"X-API-Key": key})


async def test_a_record_per_request(fake_runner: FakeRunner) -> None:
    """Each request is recorded with its id, attempt, arrival time, headers, body and answer."""
    clock = FakeClock()
    fake = FakeVendorAPI(api_keys=[VENDOR_KEY], clock=clock)
    fake.script("dep-1", [503])
    async with fake_runner.http_client(fake) as client:
        await stop(client)
        clock.now = 101.5
        await stop(client)
        await client.get("/health")
    first, second, other = fake.requests
    assert first == ReceivedRequest(
        request_id="req-1",
        method="POST",
        path=ROUTE.format("dep-1"),
        deployment_id="dep-1",
        attempt=1,
        arrived_at=100.0,
        headers=first.headers,
        body={"metadata": {"CLORE_API_KEY": "[redacted]", "region": "eu"}},
        answer=503,
    )
    assert first.headers["x-api-key"] == "[redacted]"
    assert first.headers["content-type"] == "application/json"
    assert (second.attempt, second.arrived_at, second.answer) == (2, 101.5, 200)
    assert (other.deployment_id, other.attempt, other.body, other.answer) == (None, None, None, 404)


async def test_counters(fake_runner: FakeRunner) -> None:
    """Requests, attempts per id, answers per status or fault, and stopped ids are counted."""
    fake = FakeVendorAPI(api_keys=[VENDOR_KEY])
    fake.script("dep-1", [500, "drop"])
    async with fake_runner.http_client(fake) as client:
        await stop(client)
        with pytest.raises(httpx.RemoteProtocolError):
            await stop(client)
        await stop(client)
        await stop(client, "dep-2", key="wrong")
    assert fake.request_count == 4
    assert fake.attempts == {"dep-1": 3, "dep-2": 1}
    assert fake.status_counts == {500: 1, "drop": 1, 200: 1, 401: 1}
    assert fake.stopped == {"dep-1"}
    assert fake.in_flight == 0


async def test_secrets_never_show(fake_runner: FakeRunner) -> None:
    """Neither credential appears in the records, the reprs or the answers."""
    fake = FakeVendorAPI(api_keys=[VENDOR_KEY], clore_api_key=CLORE_KEY, rate_limit=(10, 10))
    async with fake_runner.http_client(fake) as client:
        response = await stop(client)
        wrong = await stop(client, key=VENDOR_KEY + "x")
        bad = await client.post(
            ROUTE.format("dep-1"),
            json={"CLORE_API_KEY": CLORE_KEY, "metadata": [{"CLORE_API_KEY": CLORE_KEY}]},
            headers={"X-API-Key": VENDOR_KEY, "Authorization": f"Bearer {VENDOR_KEY}"},
        )
    shown = " ".join(
        [repr(fake), repr(fake.transport()), repr(fake.requests), repr(fake._throttle)]
        + [r.text for r in (response, wrong, bad)]
    )
    assert VENDOR_KEY not in shown
    assert CLORE_KEY not in shown
    assert fake.requests[2].headers["authorization"] == "[redacted]"


async def test_recording_off_keeps_only_counters() -> None:
    """``record=False`` stores no per-request objects; the counters stay exact."""
    fake = FakeVendorAPI(api_keys=[VENDOR_KEY], record=False)
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://127.0.0.1") as client:
        for index in range(50):
            await stop(client, f"dep-{index % 10}")
    assert fake.requests == []
    assert fake.request_count == 50
    assert fake.status_counts == {200: 50}
    assert len(fake.attempts) == len(fake.stopped) == 10


async def test_peak_in_flight(fake_runner: FakeRunner) -> None:
    """Concurrent requests are counted in flight, and the peak is kept."""
    fake = FakeVendorAPI(api_keys=[VENDOR_KEY], faults=FaultPlan(latency=0.25))
    async with fake_runner.http_client(fake) as client, anyio.create_task_group() as group:
        for index in range(5):
            group.start_soon(stop, client, f"dep-{index}")
    assert fake.peak_in_flight == 5
    assert fake.in_flight == 0


async def test_rate_limit_is_a_bucket_per_key(fake_runner: FakeRunner) -> None:
    """Past its burst a key gets 429 with Retry-After; tokens come back; keys are apart."""
    clock = FakeClock()
    fake = FakeVendorAPI(api_keys=[VENDOR_KEY, "other"], rate_limit=(0.5, 2), clock=clock)
    async with fake_runner.http_client(fake) as client:
        burst = [(await stop(client)).status_code for _ in range(2)]
        throttled = await stop(client)
        other_key = await stop(client, key="other")
        clock.now += 2.0
        refilled = await stop(client)
    assert burst == [200, 200]
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "2"
    assert other_key.status_code == 200
    assert refilled.status_code == 200


async def test_unauthenticated_requests_spend_no_tokens() -> None:
    """The rate limit counts authenticated requests only: a wrong key gets 401, not 429."""
    fake = FakeVendorAPI(api_keys=[VENDOR_KEY], rate_limit=(1, 1), clock=FakeClock())
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://127.0.0.1") as client:
        statuses = [(await stop(client, key="wrong")).status_code for _ in range(3)]
        statuses.append((await stop(client)).status_code)
    assert statuses == [401, 401, 401, 200]
