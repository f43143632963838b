"""Fixtures shared by the test suite."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import TypeVar

import anyio
import pytest

from hiveon_async import AsyncVendorClient, HiveonError
from hiveon_async._clock import Clock
from hiveon_async.testing import set_testing

# The vendor doubles (respx, FakeVendorAPI, RawServer) and their fixtures live in one module.
pytest_plugins = ["pytester", "tests.doubles"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every ``@pytest.mark.anyio`` test on asyncio and on trio."""
    return str(request.param)


# -- ids, credentials, waits: shared by every folder --------------------------------


@pytest.fixture
def deployment_id() -> str:
    """The id the vendor's documentation uses as its example (not a real UUID)."""
    return "a1b2c3d4-5678-90ef-ghij-klmnopqrstuv"


@pytest.fixture
def api_key() -> str:
    """A distinctive vendor API key, new for every test, so that a leak can be searched for."""
    return f"hk{secrets.token_hex(12)}"


@pytest.fixture
def clore_key() -> str:
    """A distinctive CLORE_API_KEY, new for every test."""
    return f"ck{secrets.token_hex(12)}"


@pytest.fixture
def instant_retries() -> Iterator[None]:
    """Retry waits take no time (``set_testing(True)``) for the duration of a test."""
    with set_testing(True):
        yield


class Waits(Clock):
    """A client's clock that records the waits it would have slept, and sleeps none.

    Its time stands still but for the pauses it records, so the figures are
    exact. Test mode is off, so pacing is on.

    Attributes:
        retries: Backoff waits between a call's attempts.
        pauses: Waits for a client-wide pause (``Retry-After``) to end.
        spacings: Waits for a turn under the rate limit.
    """

    def __init__(self) -> None:
        self.retries: list[float] = []
        self.pauses: list[float] = []
        self.spacings: list[float] = []
        self.time = 0.0
        self.wall_time = 1_700_000_000.0

    def now(self) -> float:
        return self.time

    def wall(self) -> float:
        return self.wall_time

    @property
    def testing(self) -> bool:
        return False

    async def backoff(self, seconds: float) -> None:
        self.retries.append(seconds)
        await anyio.lowlevel.checkpoint()

    async def space(self, seconds: float) -> None:
        self.spacings.append(seconds)
        await anyio.lowlevel.checkpoint()

    async def hold(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.time += seconds
        await anyio.lowlevel.checkpoint()


@pytest.fixture
def waits() -> Waits:
    """Clients from ``make_client`` record retry waits and pauses here instead of sleeping."""
    return Waits()


HiveonErrorT = TypeVar("HiveonErrorT", bound=HiveonError)


async def stop_error(
    client: AsyncVendorClient, deployment_id: str, error: type[HiveonErrorT]
) -> HiveonErrorT:
    """Stop ``deployment_id`` expecting ``error`` (or a subclass); return the error raised."""
    with pytest.raises(error) as caught:
        await client.stop_deployment(deployment_id)
    return caught.value


@pytest.fixture(params=["httpcore", "aiohttp"])
def pool(request: pytest.FixtureRequest, anyio_backend: str) -> str:
    """Each connection pool the client can use: httpcore's, and aiohttp's (asyncio only)."""
    if request.param == "aiohttp" and anyio_backend != "asyncio":
        pytest.skip("aiohttp's pool runs on asyncio only")
    return str(request.param)
