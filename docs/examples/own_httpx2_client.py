"""Bring your own httpx2.AsyncClient (the httpx2 extra): the client then speaks httpx2."""

import anyio
import httpx2

from hiveon_async import APIConnectionError, AsyncVendorClient


async def main() -> None:
    limits = httpx2.Limits(max_connections=64, max_keepalive_connections=64)
    async with (
        httpx2.AsyncClient(limits=limits, timeout=httpx2.Timeout(5.0)) as http,
        AsyncVendorClient(http_client=http, max_concurrency=64) as client,
    ):
        result = await client.stop_deployment("dep-1")
        print(f"stopped {result.deployment_id}")
        try:
            await client.stop_deployment("dep-2")
        except APIConnectionError as error:
            # The same typed error as on httpx, raised from httpx2's own exception.
            print(f"{type(error).__name__} from {type(error.__cause__).__module__}")


if __name__ == "__main__":
    anyio.run(main)
