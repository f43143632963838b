"""Fixtures shared by the test suite."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import httpx
import pytest
import respx

from hiveon_async import AsyncVendorClient, HiveonError
from hiveon_async._clock import Clock
from hiveon_async.testing import FakeVendorAPI, set_testing

pytest_plugins = ["pytester"]

RUNNERS = ["in-process", "socket"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every ``@pytest.mark.anyio`` test on asyncio and on trio."""
    return str(request.param)


class FakeRunner:
    """Connects an ``httpx.AsyncClient`` to a FakeVendorAPI, in-process or over a socket.

    Args:
        name: ``"in-process"`` (the fake's transport) or ``"socket"`` (``fake.serve()``).
    """

    def __init__(self, name: str) -> None:
        self.name = name

    @asynccontextmanager
    async def http_client(
        self, fake: FakeVendorAPI, **options: Any
    ) -> AsyncIterator[httpx.AsyncClient]:
        """Yield a raw httpx client whose base URL is the fake."""
        if self.name == "in-process":
            async with httpx.AsyncClient(
                transport=fake.transport(), base_url="http://127.0.0.1", **options
            ) as client:
                yield client
        else:
            async with (
                fake.serve() as base_url,
                httpx.AsyncClient(base_url=base_url, **options) as client,
            ):
                yield client


@pytest.fixture(params=RUNNERS)
def fake_runner(request: pytest.FixtureRequest) -> FakeRunner:
    """Each FakeVendorAPI runner in turn: in-process, then a real socket."""
    return FakeRunner(str(request.param))


# -- the core client's tests: a respx vendor, clients wired to it, recorded retry waits --

VENDOR_URL = "https://api.hiveon.test"


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
def vendor() -> respx.Router:
    """A respx router standing in for the vendor API at ``VENDOR_URL``."""
    return respx.Router(base_url=VENDOR_URL)


@pytest.fixture
def stop_route(vendor: respx.Router, deployment_id: str) -> respx.Route:
    """The stop route of ``deployment_id``; answers the documented success until re-mocked."""
    return vendor.post(f"/vendors/v1/machines/deployments/{deployment_id}/stop").respond(
        200, json={"deployment_id": deployment_id}
    )


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


@pytest.fixture
async def make_client(
    request: pytest.FixtureRequest,
    anyio_backend: str,
    instant_retries: None,
    vendor: respx.Router,
    api_key: str,
    clore_key: str,
) -> AsyncIterator[Callable[..., AsyncVendorClient]]:
    """Build AsyncVendorClients wired to ``vendor`` (keyword overrides allowed); closed after.

    A test that asks for ``waits`` gets clients whose waits are recorded there.
    """
    clients: list[AsyncVendorClient] = []
    clock = request.getfixturevalue("waits") if "waits" in request.fixturenames else None

    def make(**options: Any) -> AsyncVendorClient:
        defaults: dict[str, Any] = {
            "api_key": api_key,
            "base_url": VENDOR_URL,
            "metadata": {"CLORE_API_KEY": clore_key},
            "transport": httpx.MockTransport(vendor.async_handler),
        }
        client = AsyncVendorClient(**{**defaults, **options})
        if clock is not None:
            client._engine.use_clock(clock)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def client(make_client: Callable[..., AsyncVendorClient]) -> AsyncVendorClient:
    """A client with the default settings, wired to ``vendor``."""
    return make_client()


@pytest.fixture(params=["httpcore", "aiohttp"])
def pool(request: pytest.FixtureRequest, anyio_backend: str) -> str:
    """Each connection pool the client can use: httpcore's, and aiohttp's (asyncio only)."""
    if request.param == "aiohttp" and anyio_backend != "asyncio":
        pytest.skip("aiohttp's pool runs on asyncio only")
    return str(request.param)
