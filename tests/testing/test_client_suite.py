"""The real client against every fault, in-process and over a socket: the same answer both ways."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from hiveon_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncVendorClient,
    AuthenticationError,
    HiveonError,
    NotFoundError,
    RateLimitedError,
    ResponseValidationError,
    RetryPolicy,
    ServerError,
)
from hiveon_async.testing import FakeVendorAPI, Fault, ScriptEntry

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["in-process", "socket-httpcore", "socket-aiohttp"])
def runner(request: pytest.FixtureRequest, anyio_backend: str) -> str:
    """Each way to reach the fake: in-process, and over a socket through each pool."""
    if request.param == "socket-aiohttp" and anyio_backend != "asyncio":
        pytest.skip("aiohttp's pool runs on asyncio only")
    return str(request.param)


@asynccontextmanager
async def vendor_client(
    fake: FakeVendorAPI, runner: str, **options: Any
) -> AsyncIterator[AsyncVendorClient]:
    """A client wired to ``fake`` in-process, or through its own transport to ``fake.serve()``."""
    if runner == "in-process":
        async with fake.client(**options) as client:
            yield client
    else:
        async with (
            fake.serve() as base_url,
            fake.client(
                base_url=base_url,
                transport=None,
                speedups=runner == "socket-aiohttp",
                **options,
            ) as client,
        ):
            yield client


RECOVERED = [
    pytest.param([503, 200], 2, id="503"),
    pytest.param([500, 502, 504], 4, id="5xx"),
    pytest.param([Fault.status(429, retry_after=1)], 2, id="429-retry-after-seconds"),
    pytest.param(
        [Fault.status(503, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")], 2, id="503-http-date"
    ),
    pytest.param(["reset"], 2, id="reset"),
    pytest.param(["drop"], 2, id="drop"),
    pytest.param(["stall"], 2, id="stall"),
    pytest.param([Fault.trickle(interval=0.001)], 1, id="trickle"),
]


@pytest.mark.parametrize(("script", "attempts"), RECOVERED)
async def test_transient_faults_are_retried(
    instant_retries: None, runner: str, script: list[ScriptEntry], attempts: int
) -> None:
    """Transient faults cost attempts, then the stop succeeds."""
    fake = FakeVendorAPI()
    fake.script("dep-1", script)
    async with vendor_client(fake, runner, timeout=0.2) as client:
        result = await client.stop_deployment("dep-1")
    assert result.deployment_id == "dep-1"
    assert fake.stopped == {"dep-1"}
    assert fake.attempts["dep-1"] == attempts


FAILED = [
    pytest.param([500] * 2, ServerError, id="5xx-exhausted"),
    pytest.param([429] * 2, RateLimitedError, id="429-exhausted"),
    pytest.param(["reset"] * 2, APIConnectionError, id="reset-exhausted"),
    pytest.param(["drop"] * 2, APIConnectionError, id="drop-exhausted"),
    pytest.param(["stall"] * 2, APITimeoutError, id="stall-exhausted"),
    pytest.param(["garbage"], ResponseValidationError, id="garbage"),
    pytest.param(["mismatch"], ResponseValidationError, id="mismatch"),
    pytest.param(["huge"], ResponseValidationError, id="huge"),
    pytest.param([Fault.huge(chunked=True)], ResponseValidationError, id="huge-chunked"),
    pytest.param(["redirect"], APIStatusError, id="redirect"),
    pytest.param([401], AuthenticationError, id="401"),
    pytest.param([404], NotFoundError, id="404"),
]


@pytest.mark.parametrize(("script", "error"), FAILED)
async def test_failures_raise_the_documented_error(
    instant_retries: None, runner: str, script: list[ScriptEntry], error: type[HiveonError]
) -> None:
    """Each fault that outlasts the retries, or is not worth one, raises its typed error."""
    fake = FakeVendorAPI()
    fake.script("dep-1", script)
    options: dict[str, Any] = {"timeout": 0.2, "retry": RetryPolicy(max_attempts=2)}
    async with vendor_client(fake, runner, **options) as client:
        with pytest.raises(error) as info:
            await client.stop_deployment("dep-1")
    assert type(info.value) is error
    assert fake.attempts["dep-1"] == len(script)
    assert fake.stopped == set()


async def test_lost_answer_then_404_is_maybe_applied(instant_retries: None, runner: str) -> None:
    """A stop applied but unanswered, then a 404 on retry, is reported as maybe applied."""
    fake = FakeVendorAPI(idempotent=False)
    fake.script("dep-1", [Fault.reset(applied=True)])
    async with vendor_client(fake, runner) as client:
        with pytest.raises(NotFoundError) as info:
            await client.stop_deployment("dep-1")
    assert info.value.maybe_applied
    assert fake.stopped == {"dep-1"}


async def test_server_rate_limit_is_honoured(instant_retries: None, runner: str) -> None:
    """The fake's per-key 429s carry Retry-After, and the client retries through them."""
    # Each request moves the fake's clock 10 ms: half a token at 50/s, so every other is a 429.
    fake = FakeVendorAPI(rate_limit=(50, 1), clock=itertools.count(0, 0.01).__next__)
    async with vendor_client(fake, runner) as client:
        for index in range(3):
            await client.stop_deployment(f"dep-{index}")
    assert len(fake.stopped) == 3
    assert fake.status_counts[429] >= 2
