"""One client, other options for some calls: with_options shares the pool and the limits."""

import anyio

from hiveon_async import AsyncVendorClient, RetryPolicy


async def main() -> None:
    async with AsyncVendorClient() as client:
        # A call site that must answer within 2 s and never retry; same pool, same limits.
        urgent = client.with_options(timeout=2.0, retry=RetryPolicy(max_attempts=1, deadline=2.0))
        # A team's own metadata, merged over the client's (CLORE_API_KEY stays the client's).
        team = client.with_options(metadata={"team": "platform"})
        for caller, deployment_id in ((urgent, "dep-1"), (team, "dep-2"), (client, "dep-3")):
            result = await caller.stop_deployment(deployment_id)
            print(
                f"stopped {result.deployment_id}: request {result.request_id}, "
                f"{result.attempts} attempt(s)"
            )
    print(f"closed with the client: {urgent.closed}, {team.closed}")


if __name__ == "__main__":
    anyio.run(main)
