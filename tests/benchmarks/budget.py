"""The retry-budget and 429 figures, in-process: ``python -m tests.benchmarks.budget``.

The same cases as the assertions in tests/test_batch.py (TestRetryBudget and
test_pacing_recovers_from_a_server_rate_limit), printed with their counts:
requests sent, 500s and 429s answered, elapsed, on asyncio and trio.
"""

from __future__ import annotations

import time

import anyio

from hiveon_async import RetryPolicy
from hiveon_async._config import DEFAULT_INITIAL_DELAY
from tests._mock_vendor import Answer, MockVendor, flaky
from tests.test_batch import ServerRateLimit, ids


async def case(name: str, answer: Answer, *, n: int, attempts: int, delay: float = 0.0) -> None:
    """Run one batch of ``n`` ids against ``answer`` and print what happened."""
    vendor = MockVendor(answer, delay=delay)
    # Retries of 500s wait nothing; the 429 case keeps the default backoff and Retry-After.
    initial_delay = DEFAULT_INITIAL_DELAY if delay else 0.0
    retry = RetryPolicy(max_attempts=attempts, initial_delay=initial_delay)
    started = time.monotonic()
    async with vendor.client(retry=retry, max_concurrency=32) as client:
        report = await client.stop_deployments(ids(n), concurrency=32)
    print(
        f"{name}: stopped={len(report.stopped)} failed={len(report.failed)} "
        f"requests={len(vendor.requests)} 500s={vendor.statuses[500]} "
        f"429s={vendor.statuses[429]} elapsed={time.monotonic() - started:.2f}s"
    )


async def main() -> None:
    """The four cases."""
    await case("all 500, max_attempts=4", flaky(1.0, seed=1), n=1000, attempts=4)
    await case("20% random 500, max_attempts=8", flaky(0.2, seed=2), n=1000, attempts=8)
    dead = frozenset(ids(20))
    await case(
        "20 dead + 20% random, max_attempts=8", flaky(0.2, seed=3, dead=dead), n=1000, attempts=8
    )
    limit = ServerRateLimit(100, 10).answer
    await case("server 100/s burst 10, c=32", limit, n=600, attempts=8, delay=0.005)


if __name__ == "__main__":
    for backend in ("asyncio", "trio"):
        print(backend)
        anyio.run(main, backend=backend)
