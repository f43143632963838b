"""Stop a batch under one rate limit shared by every process on the key, through Redis."""

import anyio

from hiveon_async import AsyncVendorClient, RateLimit


async def main() -> None:
    ids = [f"dep-{number}" for number in range(20)]
    # The key's whole limit, not a share of it. $HIVEON_REDIS_URL names the Redis
    # (or pass redis_url="redis://:password@redis.internal:6379/0").
    async with AsyncVendorClient(rate_limit=RateLimit(per_second=200, burst=10)) as client:
        report = await client.stop_deployments(ids)
    print(f"stopped {len(report.stopped)} of {len(ids)}")


if __name__ == "__main__":
    anyio.run(main)  # asyncio: redis-py's asyncio client does not run on trio
