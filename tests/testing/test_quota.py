"""The fake's windowed quota: so many requests per window per key, announced in headers."""

from __future__ import annotations

import pytest

from hiveon_async import RateLimitedError, RateLimitState, RetryPolicy
from hiveon_async.testing import FakeVendorAPI, Quota, QuotaHeaders
from tests.doubles import fake_client

pytestmark = pytest.mark.anyio


class Clock:
    """The fake's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ("x-ratelimit", {"source": "x-ratelimit", "limit": 5, "remaining": 4, "reset": 60.0}),
        (
            "draft",
            {"source": "draft", "limit": 5, "remaining": 4, "reset": 60.0, "window": 60.0},
        ),
        (
            "ietf",
            {
                "source": "ietf",
                "limit": 5,
                "remaining": 4,
                "reset": 60.0,
                "window": 60.0,
                "policy": "default",
            },
        ),
    ],
)
async def test_each_answer_announces_the_quota_in_the_chosen_headers(
    headers: QuotaHeaders, expected: dict[str, object]
) -> None:
    """The client reads what the fake announces, in each syntax, into the result's rate_limit."""
    clock = Clock()
    fake = FakeVendorAPI(quota=Quota(limit=5, window=60, headers=headers), clock=clock)
    async with fake_client(fake) as client:
        result = await client.stop_deployment("dep-1")

    state = result.rate_limit
    assert isinstance(state, RateLimitState)
    for name, value in expected.items():
        assert getattr(state, name) == value, name


async def test_past_the_limit_the_answer_is_429_until_the_window_ends() -> None:
    """Five go through; the sixth is refused with the seconds left; the next window allows five."""
    clock = Clock()
    fake = FakeVendorAPI(quota=Quota(limit=5, window=60), clock=clock)
    async with fake_client(fake, retry=RetryPolicy(max_attempts=1)) as client:
        for n in range(5):
            await client.stop_deployment(f"dep-{n}")
        clock.now += 20
        with pytest.raises(RateLimitedError) as caught:
            await client.stop_deployment("dep-5")
        clock.now += 40
        result = await client.stop_deployment("dep-5")

    assert caught.value.retry_after == 40
    assert caught.value.rate_limit is not None
    assert caught.value.rate_limit.remaining == 0
    assert result.rate_limit is not None
    assert result.rate_limit.remaining == 4


async def test_a_used_up_quota_stops_a_batch_that_the_user_can_test() -> None:
    """used=limit: a batch meets a quota gone for an hour, stops, and says when it comes back."""
    fake = FakeVendorAPI(quota=Quota(limit=3600, window=3600, used=3600))
    async with fake_client(fake) as client:
        report = await client.stop_deployments([f"dep-{n}" for n in range(100)], concurrency=4)

    assert fake.request_count <= 2 * 4
    assert len(report.skipped) == 100 - fake.request_count
    assert report.quota_resets_at is not None


async def test_an_epoch_reset_is_read_as_seconds_from_now() -> None:
    """X-RateLimit-Reset as a Unix time (GitHub's way) reads as the seconds left."""
    fake = FakeVendorAPI(quota=Quota(limit=5, window=60, headers="x-ratelimit-epoch"))
    async with fake_client(fake) as client:
        result = await client.stop_deployment("dep-1")

    assert result.rate_limit is not None
    assert result.rate_limit.reset is not None
    assert 58 <= result.rate_limit.reset <= 61


def test_a_bad_quota_is_refused() -> None:
    """Nonsense limits are a ValueError when the quota is made."""
    with pytest.raises(ValueError, match="limit"):
        Quota(limit=0, window=60)
    with pytest.raises(ValueError, match="window"):
        Quota(limit=5, window=-1)
    with pytest.raises(ValueError, match="used"):
        Quota(limit=5, window=60, used=6)
    with pytest.raises(ValueError, match="headers"):
        Quota(limit=5, window=60, headers="x-rate")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="quota"):
        FakeVendorAPI(quota=(5, 60))  # type: ignore[arg-type]
