"""Bring your own httpx.AsyncClient: its transport, proxies, TLS and headers are used."""

import anyio
import httpx

from hiveon_async import AsyncVendorClient


async def main() -> None:
    # Size the pool for max_concurrency yourself: the client only sizes pools it builds.
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        limits=limits, timeout=httpx.Timeout(5.0), headers={"X-Team": "platform"}
    ) as http:
        async with AsyncVendorClient(http_client=http, max_concurrency=64) as client:
            result = await client.stop_deployment("dep-1")
            print(f"stopped {result.deployment_id}")
        print(f"still yours: closed={http.is_closed}")  # AsyncVendorClient never closes it


if __name__ == "__main__":
    anyio.run(main)
