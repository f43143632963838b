"""What a successful stop tells besides the id, and that errors tell the same things alike."""

from __future__ import annotations

import httpx
import pytest
from anyio.abc import SocketStream

from hiveon_async import (
    AsyncVendorClient,
    NotFoundError,
    RateLimitState,
    StopOutcome,
    StopResult,
)
from hiveon_async.testing import FakeVendorAPI, Fault
from tests.doubles import RawServer, fake_client, read_request, response_head

pytestmark = pytest.mark.anyio

API_KEY = "key-5f2e9c1d7a"
CLORE_KEY = "clore-8b3a6d0e4f"
DEPLOYMENT = "dep-1"
BODY = b'{"deployment_id": "dep-1"}'
#: A success whose headers announce a rate limit, and echo both credentials back.
HEADERS = (
    "Content-Type: application/json",
    f"Content-Length: {len(BODY)}",
    "X-Request-Id: req-77",
    "X-RateLimit-Limit: 100",
    "X-RateLimit-Remaining: 42",
    "X-RateLimit-Reset: 30",
    f"X-Echo: you sent {API_KEY}",
    f"X-API-Key: {API_KEY}",
    f"X-Echo: and {CLORE_KEY}",
)
POOLS = ["httpcore", "aiohttp", "http_client"]


@pytest.fixture(params=POOLS)
def any_pool(request: pytest.FixtureRequest, anyio_backend: str) -> str:
    """Every way the client sends: the lean pool, aiohttp's (asyncio only), a user's client."""
    if request.param == "aiohttp" and anyio_backend != "asyncio":
        pytest.skip("aiohttp's pool runs on asyncio only")
    return str(request.param)


async def answer_with_headers(stream: SocketStream) -> None:
    """Answer every request on the connection with the success above."""
    while True:
        await stream.send(response_head(200, *HEADERS) + BODY)
        if await read_request(stream) is None:
            return


async def test_a_result_carries_the_answers_metadata_on_every_pool(any_pool: str) -> None:
    """request_id, attempts, elapsed, the parsed rate limit and redacted headers, whatever sends."""
    server = RawServer(answer_with_headers)
    own = httpx.AsyncClient() if any_pool == "http_client" else None
    async with (
        server.serve() as base_url,
        AsyncVendorClient(
            api_key=API_KEY,
            base_url=base_url,
            metadata={"CLORE_API_KEY": CLORE_KEY},
            speedups=any_pool == "aiohttp",
            http_client=own,
        ) as client,
    ):
        result = await client.stop_deployment(DEPLOYMENT)
    if own is not None:
        await own.aclose()

    assert result.deployment_id == DEPLOYMENT
    assert result.request_id == "req-77"
    assert result.attempts == 1
    assert result.elapsed > 0
    assert result.rate_limit == RateLimitState(
        source="x-ratelimit", limit=100, remaining=42, reset=30.0
    )
    assert result.headers["content-type"] == "application/json"
    assert result.headers["x-ratelimit-remaining"] == "42"
    assert result.headers["x-api-key"] == "[redacted]"
    assert result.headers["x-echo"] == "you sent [redacted], and [redacted]"
    shown = f"{result!r} {dict(result.headers)}"
    assert API_KEY not in shown
    assert CLORE_KEY not in shown


async def test_attempts_and_elapsed_count_the_retries() -> None:
    """After two 503s, the result says three attempts and the time they took."""
    fake = FakeVendorAPI()
    fake.script(DEPLOYMENT, [Fault.status(503), Fault.status(503)])
    async with fake_client(fake) as client:
        result = await client.stop_deployment(DEPLOYMENT)

    assert result.attempts == 3
    assert result.request_id == fake.requests[-1].request_id
    assert result.rate_limit is None
    assert result.elapsed > 0


async def test_headers_are_read_only() -> None:
    """A result is a frozen value: its headers cannot be changed behind its back."""
    fake = FakeVendorAPI()
    async with fake_client(fake) as client:
        result = await client.stop_deployment(DEPLOYMENT)

    with pytest.raises(TypeError):
        result.headers["x-request-id"] = "forged"  # type: ignore[index]


async def test_an_error_carries_the_same_facts_as_a_result() -> None:
    """A 404's request_id, attempts, elapsed, rate_limit and headers read as a result's do."""
    fake = FakeVendorAPI()
    fake.script("dep-missing", [Fault.status(404)])
    async with fake_client(fake) as client:
        with pytest.raises(NotFoundError) as caught:
            await client.stop_deployment("dep-missing")
        result = await client.stop_deployment(DEPLOYMENT)

    error = caught.value
    assert error.request_id == fake.requests[0].request_id
    assert error.attempts == 1
    assert error.elapsed > 0
    assert error.rate_limit is None
    assert error.headers["x-request-id"] == error.request_id
    assert set(result.headers) >= {"content-type", "x-request-id"}
    assert set(error.headers) >= {"content-type", "x-request-id"}


async def test_a_batch_report_keeps_results_without_their_headers() -> None:
    """on_outcome sees each result whole; the report keeps the rest but not the headers."""
    fake = FakeVendorAPI()
    seen: list[StopOutcome] = []
    async with fake_client(fake) as client:
        report = await client.stop_deployments(["dep-1", "dep-2"], on_outcome=seen.append)

    assert [outcome.result.headers["x-request-id"] for outcome in seen if outcome.result]
    for outcome in report:
        result = outcome.result
        assert isinstance(result, StopResult)
        assert result.request_id is not None
        assert result.attempts == 1
        assert result.elapsed > 0
        assert dict(result.headers) == {}
