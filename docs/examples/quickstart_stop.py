"""Stop one deployment. Needs $HIVEON_API_KEY and $CLORE_API_KEY."""

import anyio

from hiveon_async import AsyncVendorClient


async def main() -> None:
    async with AsyncVendorClient() as client:
        result = await client.stop_deployment("a1b2c3d4-5678-90ef-ghij-klmnopqrstuv")
        print(f"stopped {result.deployment_id}")


if __name__ == "__main__":
    anyio.run(main)  # or asyncio.run(main()), or anyio.run(main, backend="trio")
