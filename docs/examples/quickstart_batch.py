"""Stop a batch of deployments, at most 16 requests at a time."""

import anyio

from hiveon_async import AsyncVendorClient


async def main() -> None:
    ids = ["dep-1", "dep-2", "dep-3", "dep-2"]  # any iterable or async iterable of str
    async with AsyncVendorClient() as client:
        report = await client.stop_deployments(ids, concurrency=16)
    print(f"all stopped: {report.ok}, duplicates: {report.duplicates}")
    for outcome in report:  # one per unique id, in input order
        print(outcome.deployment_id, outcome.status, f"attempts={outcome.attempts}")


if __name__ == "__main__":
    anyio.run(main)
