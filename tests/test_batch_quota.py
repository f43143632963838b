"""A batch and a used-up quota: stop and say until when, or, when asked, wait for the reset."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import respx

from hiveon_async import (
    AsyncVendorClient,
    BatchProgress,
    InvalidRequestError,
    RateLimitedError,
)
from tests.conftest import Waits
from tests.doubles import ANY_STOP

pytestmark = pytest.mark.anyio

RESET = 3600.0  # the quota comes back an hour after it ran out


class ProgressWaits(Waits):
    """Waits that also note what the batch's progress said while all sending was held."""

    def __init__(self) -> None:
        super().__init__()
        self.progress = BatchProgress()
        self.waiting_during_holds: list[float | None] = []

    async def hold(self, seconds: float) -> None:
        self.waiting_during_holds.append(self.progress.waiting_until)
        await super().hold(seconds)


@pytest.fixture
def waits() -> ProgressWaits:
    """The client's clock: holds are recorded and pass at once."""
    return ProgressWaits()


def used_up_for_an_hour(waits: Waits) -> Callable[[httpx.Request, str], httpx.Response]:
    """A vendor whose quota is gone until the client's clock reaches the reset."""

    def answer(request: httpx.Request, deployment_id: str) -> httpx.Response:
        if waits.time < RESET:
            left = RESET - waits.time
            return httpx.Response(429, headers={"Retry-After": str(int(left))})
        return httpx.Response(200, json={"deployment_id": deployment_id})

    return answer


def ids(n: int) -> list[str]:
    return [f"dep-{number}" for number in range(n)]


async def test_wait_for_quota_holds_all_sending_until_the_reset_then_finishes(
    vendor: respx.Router, make_client: Callable[..., AsyncVendorClient], waits: ProgressWaits
) -> None:
    """One hold until the reset, no knocking meanwhile, every id stopped, refused ones resent."""
    route = vendor.post(path__regex=ANY_STOP).mock(side_effect=used_up_for_an_hour(waits))
    client = make_client()

    report = await client.stop_deployments(
        ids(50), concurrency=8, wait_for_quota=True, progress=waits.progress
    )

    assert report.ok
    refused = [call for call in route.calls if call.response.status_code == 429]
    assert 1 <= len(refused) <= 2 * 8  # only those already in flight when the first came
    assert route.call_count == 50 + len(refused)
    assert sum(outcome.attempts for outcome in report) == route.call_count
    assert max(waits.pauses) >= RESET - 1
    assert report.paused >= RESET - 1
    assert report.quota_resets_at is None
    assert {until for until in waits.waiting_during_holds if until is not None} == {
        waits.wall_time + RESET
    }
    assert waits.progress.waiting_until is None  # sending again: no longer waiting


async def test_wait_for_quota_stops_at_once_when_the_reset_comes_after_the_deadline(
    vendor: respx.Router, make_client: Callable[..., AsyncVendorClient], waits: ProgressWaits
) -> None:
    """A reset past the batch's deadline cannot be waited for: the batch stops as without it."""
    route = vendor.post(path__regex=ANY_STOP).mock(side_effect=used_up_for_an_hour(waits))
    client = make_client()

    report = await client.stop_deployments(
        ids(50), concurrency=8, wait_for_quota=True, deadline=600
    )

    assert route.call_count <= 2 * 8
    assert len(report.skipped) == 50 - route.call_count
    assert all(isinstance(outcome.error, RateLimitedError) for outcome in report)
    assert report.quota_resets_at is not None
    assert waits.pauses == []


async def test_wait_for_quota_applies_to_the_stream_too(
    vendor: respx.Router, make_client: Callable[..., AsyncVendorClient], waits: ProgressWaits
) -> None:
    """stream_stop_deployments(wait_for_quota=True) waits and stops every id."""
    vendor.post(path__regex=ANY_STOP).mock(side_effect=used_up_for_an_hour(waits))
    client = make_client()

    async with client.stream_stop_deployments(ids(20), wait_for_quota=True) as outcomes:
        stopped = [outcome.deployment_id async for outcome in outcomes if outcome.ok]

    assert sorted(stopped) == sorted(ids(20))


async def test_wait_for_quota_must_be_a_bool(client: AsyncVendorClient) -> None:
    """A truthy string is refused before any I/O, not read as yes."""
    with pytest.raises(InvalidRequestError, match="wait_for_quota"):
        await client.stop_deployments(["dep-1"], wait_for_quota="no")  # type: ignore[arg-type]
