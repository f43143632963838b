"""BatchProgress tells why a batch is slow: 429s, time paused, the paced rate."""

from __future__ import annotations

import pytest

from hiveon_async import BatchProgress, RetryPolicy
from hiveon_async.testing import FakeVendorAPI, Fault
from tests.doubles import fake_client

pytestmark = pytest.mark.anyio


async def test_a_server_pause_is_counted_in_the_progress() -> None:
    """A 503 with Retry-After holds every worker; progress.paused says for how long."""
    fake = FakeVendorAPI()
    fake.script("dep-0", [Fault.status(503, retry_after=1)])
    progress = BatchProgress()
    async with fake_client(fake, retry=RetryPolicy(adaptive=False)) as client:
        report = await client.stop_deployments(
            [f"dep-{n}" for n in range(4)], concurrency=1, progress=progress
        )

    assert report.ok
    assert progress.paused == pytest.approx(1.0, abs=0.05)
    assert progress.paced_rate is None  # no sustained 429s, so no pacing
