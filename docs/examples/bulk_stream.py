"""Stream outcomes as JSON Lines while the batch runs; give up after too many failures."""

import json
from collections.abc import AsyncIterator

import anyio

from hiveon_async import AsyncVendorClient


async def fleet() -> AsyncIterator[str]:
    """Stands in for your inventory: an async generator, pulled as workers free up."""
    for page in range(4):
        await anyio.sleep(0.01)  # stands in for fetching the next page of ids
        for n in range(50):
            yield f"dep-{page}-{n}"


async def main(max_failures: int = 10) -> None:
    async with (
        AsyncVendorClient() as client,
        client.stream_stop_deployments(fleet(), concurrency=32) as outcomes,
    ):
        failures = 0
        async for outcome in outcomes:  # in completion order
            error = None if outcome.error is None else type(outcome.error).__name__
            line = {"id": outcome.deployment_id, "status": str(outcome.status), "error": error}
            print(json.dumps(line))
            failures += not outcome.ok
            if failures >= max_failures:
                print(json.dumps({"gave_up_after": outcomes.progress.seen}))
                break  # leaving the block stops the batch: no new request starts


if __name__ == "__main__":
    anyio.run(main)
