"""What a connection failure says, whatever the pool."""

from __future__ import annotations

import socket

import pytest

from hiveon_async import APIConnectionError, AsyncVendorClient, RetryPolicy

pytestmark = pytest.mark.anyio


def refused_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_refused_connection_names_host_and_port(pool: str) -> None:
    """On every pool: the host and port, and no "ssl:default" for a plain http URL."""
    port = refused_port()
    async with AsyncVendorClient(
        api_key="key-for-the-message-test",
        metadata={"CLORE_API_KEY": "clore-for-the-message-test"},
        base_url=f"http://127.0.0.1:{port}",
        retry=RetryPolicy(max_attempts=1),
        speedups=pool == "aiohttp",
    ) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.stop_deployment("dep-1")

    message = str(caught.value)
    assert "ssl:default" not in message
    if pool == "aiohttp":
        assert f"cannot connect to 127.0.0.1:{port}" in message
