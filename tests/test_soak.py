"""The short fault soak: hundreds of ids through every fault, every invariant, every path.

The long soak (``nox -s soak``) runs the same checks on 50,000 ids and also
checks that memory stays flat; see ``tests/_soak.py`` for the invariants.
"""

from __future__ import annotations

import contextlib
import math

import anyio
import attrs
import pytest

from hiveon_async import AsyncVendorClient, HiveonError, RateLimit, RetryPolicy
from hiveon_async.testing import Fault
from tests._soak import RUNNERS, LagMonitor, SoakSettings, busiest_excess, run_soak
from tests.doubles import TrackingFake

pytestmark = pytest.mark.anyio

#: Few enough ids to take about a second per path, enough to meet every fault several times.
SHORT = SoakSettings(ids=600, max_attempts=3)
ONE_ATTEMPT = RetryPolicy(max_attempts=1)


@pytest.mark.slow
@pytest.mark.socket
@pytest.mark.parametrize("runner", RUNNERS)
async def test_short_fault_soak(anyio_backend: str, runner: str) -> None:
    """Every id accounted for once, both sides agree, load bounded, nothing left behind."""
    if runner == "aiohttp" and anyio_backend != "asyncio":
        pytest.skip("aiohttp's pool runs on asyncio only")

    figures = await run_soak(attrs.evolve(SHORT, runner=runner))

    # The fault plan did inject every kind (so every path above was walked).
    for kind in ("500", "503", "429", "reset", "drop", "stall", "404"):
        assert figures.faults.get(kind, 0) > 0, (kind, figures.faults)
    assert figures.retries > 0
    assert figures.failed > 0  # the invalid ids, and ids whose retries ran out


def test_busiest_excess_measures_a_token_bucket() -> None:
    """The rate check itself: a paced stream passes with its burst, an unpaced one does not."""
    paced = [index / 100 for index in range(300)]  # exactly 100/s
    excess, busiest = busiest_excess(paced, 100)
    assert excess == pytest.approx(1.0)
    assert busiest == 101  # both ends of a 1 s window

    burst_then_paced = [0.0] * 10 + [1 + index / 100 for index in range(100)]
    excess, _ = busiest_excess(burst_then_paced, 100)
    assert excess == pytest.approx(10.0)

    unpaced = [index / 200 for index in range(400)]  # twice the rate
    excess, _ = busiest_excess(unpaced, 100)
    assert excess > 100
    assert math.isfinite(excess)


async def test_rate_limit_holds_when_callers_outnumber_the_connection_slots() -> None:
    """More callers than max_concurrency: requests freed by slow ones still leave at the rate.

    A caller that took its rate-limit turn while waiting for a connection slot
    used to send the moment a slot freed, together with every other such
    caller: the vendor saw bursts of up to max_concurrency requests.
    """
    fake = TrackingFake(record=False)
    for index in range(4):
        # Silent for 0.3 s, then the connection drops: all four slots free at once.
        fake.script(f"slow-{index}", [Fault.stall(seconds=0.3)])
    limit = RateLimit(per_second=20, burst=1)
    monitor = LagMonitor()

    async def stop(client: AsyncVendorClient, deployment_id: str) -> None:
        with contextlib.suppress(HiveonError):
            await client.stop_deployment(deployment_id)

    async with (
        fake.client(timeout=5, max_concurrency=4, rate_limit=limit, retry=ONE_ATTEMPT) as client,
        anyio.create_task_group() as group,
    ):
        group.start_soon(monitor.run)
        with anyio.fail_after(20):
            async with anyio.create_task_group() as callers:
                for index in range(4):
                    callers.start_soon(stop, client, f"slow-{index}")
                for index in range(8):
                    callers.start_soon(stop, client, f"fast-{index}")
        group.cancel_scope.cancel()

    assert fake.request_count == 12
    excess, _ = busiest_excess(fake.arrivals, limit.per_second)
    assert excess <= limit.burst + limit.per_second * (monitor.worst + 0.005)
