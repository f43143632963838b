"""The client over a real socket on 127.0.0.1, through each connection pool it can use."""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import pytest

from hiveon_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncVendorClient,
    RateLimit,
    RetryPolicy,
)
from hiveon_async.testing import FakeVendorAPI, Fault
from tests.conftest import stop_error
from tests.doubles import STOP_PATH, WireFake

pytestmark = [pytest.mark.anyio, pytest.mark.socket, pytest.mark.usefixtures("instant_retries")]

HANG = 10.0


@pytest.fixture
def connect(api_key: str, clore_key: str, pool: str) -> Callable[..., AsyncVendorClient]:
    """Build a client for a base URL, with a real pool (each in turn) and the test's keys."""

    def build(base_url: str, **options: object) -> AsyncVendorClient:
        options.setdefault("speedups", pool == "aiohttp")
        return AsyncVendorClient(
            api_key=api_key,
            base_url=base_url,
            metadata={"CLORE_API_KEY": clore_key},
            **options,  # type: ignore[arg-type]
        )

    return build


@pytest.fixture
def fake(api_key: str) -> WireFake:
    """A fake that accepts the test's key and keeps the raw bytes of what it receives."""
    return WireFake(api_keys=[api_key])


@pytest.fixture
async def url(anyio_backend: str, fake: WireFake) -> AsyncIterator[str]:
    """``fake``, served on a free loopback port for the test; its base URL."""
    async with fake.serve() as base_url:
        yield base_url


async def test_success_on_the_wire(
    fake: WireFake,
    url: str,
    connect: Callable[..., AsyncVendorClient],
    deployment_id: str,
    api_key: str,
    clore_key: str,
) -> None:
    """The request a real server reads: POST, path, X-API-Key, JSON type and length, body."""
    async with connect(url) as client:
        result = await client.stop_deployment(deployment_id)

    assert result.deployment_id == deployment_id
    [request] = fake.requests
    [(headers, body)] = fake.wire
    assert request.method == "POST"
    assert request.path == STOP_PATH.format(deployment_id)
    assert headers["x-api-key"] == api_key
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    assert json.loads(body) == {"metadata": {"CLORE_API_KEY": clore_key}}


async def test_the_pool_is_made_before_the_first_turn(
    url: str,
    connect: Callable[..., AsyncVendorClient],
    monkeypatch: pytest.MonkeyPatch,
    deployment_id: str,
) -> None:
    """The pool's TLS context (about 20 ms to make) is made before the first turn is taken.

    Made after it, the first request reached the server that much later than
    its turn, bunched with the next: HAProxy's window, which opens at the first
    arrival, then held one request too many a second later, and refused it.
    """
    order: list[str] = []
    make_context = httpx.create_ssl_context

    def recorded(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        order.append("pool")
        return make_context(*args, **kwargs)

    monkeypatch.setattr(httpx, "create_ssl_context", recorded)
    async with connect(url, rate_limit=RateLimit(per_second=100)) as client:
        gate = client._engine.gate
        take_turn = gate.wait_turn

        async def turn() -> float:
            order.append("turn")
            return await take_turn()

        monkeypatch.setattr(gate, "wait_turn", turn)
        await client.stop_deployment(deployment_id)

    assert order == ["pool", "turn"]


async def test_connection_is_reused_across_calls(
    fake: WireFake, url: str, connect: Callable[..., AsyncVendorClient]
) -> None:
    """Sequential calls share one keep-alive connection."""
    async with connect(url) as client:
        for n in range(3):
            await client.stop_deployment(f"dep-{n}")

    assert fake.connections == 1
    assert fake.request_count == 3


async def test_redirect_to_another_server_is_not_followed(
    connect: Callable[..., AsyncVendorClient], deployment_id: str, anyio_backend: str
) -> None:
    """A 307 to another host is an APIStatusError; the other host sees no connection at all."""
    elsewhere = WireFake()
    redirecting = FakeVendorAPI()
    async with elsewhere.serve() as other_url:
        redirecting.script(
            deployment_id,
            [Fault.redirect(location=other_url + STOP_PATH.format(deployment_id))],
        )
        async with (
            redirecting.serve() as url,
            httpx.AsyncClient(follow_redirects=True) as own,
        ):
            client = connect(url, http_client=own)
            raised = await stop_error(client, deployment_id, APIStatusError)

    assert raised.status_code == 307
    assert elsewhere.connections == 0


async def test_server_closing_without_an_answer_is_retried(
    fake: WireFake,
    url: str,
    connect: Callable[..., AsyncVendorClient],
    deployment_id: str,
) -> None:
    """A server that disconnects without sending a response is a transient failure."""
    fake.script(deployment_id, ["drop"])
    async with connect(url) as client:
        result = await client.stop_deployment(deployment_id)

    assert result.deployment_id == deployment_id
    assert fake.request_count == 2


async def test_connection_refused_is_an_api_connection_error(
    connect: Callable[..., AsyncVendorClient], deployment_id: str, anyio_backend: str
) -> None:
    """Nobody listening: APIConnectionError after max_attempts, httpx.ConnectError as the cause."""
    async with FakeVendorAPI().serve() as url:
        pass  # the port is free again

    async with connect(url, retry=RetryPolicy(max_attempts=2)) as client:
        raised = await stop_error(client, deployment_id, APIConnectionError)

    assert isinstance(raised.__cause__, httpx.ConnectError)
    assert raised.attempts == 2
    assert not raised.maybe_applied


async def test_trickling_server_is_cut_off_at_the_deadline(
    fake: WireFake, url: str, connect: Callable[..., AsyncVendorClient], deployment_id: str
) -> None:
    """A body sent a byte every 20 ms (no read times out) cannot hold the call past its deadline."""
    fake.script(deployment_id, [Fault.trickle(interval=0.02)])  # about a second in all

    async with connect(url, retry=RetryPolicy(deadline=0.3)) as client:
        with anyio.fail_after(HANG), pytest.raises(APITimeoutError, match="deadline"):
            await client.stop_deployment(deployment_id)


async def test_transport_logs_carry_no_secret(
    url: str,
    connect: Callable[..., AsyncVendorClient],
    deployment_id: str,
    api_key: str,
    clore_key: str,
    caplog: pytest.LogCaptureFixture,
    pool: str,
) -> None:
    """The DEBUG records of the pool (httpcore logs; aiohttp does not) hold neither key."""
    caplog.set_level(logging.DEBUG)

    async with connect(url) as client:
        await client.stop_deployment(deployment_id)

    if pool == "httpcore":
        assert "httpcore.http11" in {record.name for record in caplog.records}
    assert api_key not in caplog.text
    assert clore_key not in caplog.text
