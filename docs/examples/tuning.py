"""A client tuned for a vendor quota of 20 requests per second with bursts of 10."""

import logging

import anyio

from hiveon_async import AsyncVendorClient, RateLimit, RetryPolicy

#: A little under the quota: the vendor's clock and ours never agree exactly.
QUOTA = RateLimit(per_second=18, burst=5)

POLICY = RetryPolicy(
    max_attempts=5,  # the first attempt and up to 4 retries
    max_retry_after=30.0,  # a longer Retry-After fails the call instead of waiting
    deadline=60.0,  # one call, all attempts and waits included
)


async def main() -> None:
    ids = [f"dep-{n}" for n in range(1, 21)]
    async with AsyncVendorClient(
        rate_limit=QUOTA,
        retry=POLICY,
        max_concurrency=8,  # the rate limit, not concurrency, sets the pace here
        timeout=5.0,  # per attempt
    ) as client:
        report = await client.stop_deployments(ids)
    print(f"{len(report.stopped)} of {len(report)} stopped")


if __name__ == "__main__":
    # Retry decisions are logged at WARNING (a retry) and INFO (a retry refused);
    # every attempt at DEBUG. Headers and bodies are never logged.
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("hiveon_async").setLevel(logging.INFO)
    anyio.run(main)
