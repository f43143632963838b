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

from hiveon_async import AsyncVendorClient, HiveonError, _retry
from hiveon_async._ratelimit import SendGate
from hiveon_async.testing import FakeVendorAPI

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
    previous = _retry.is_testing()
    _retry.set_testing(True)
    yield
    _retry.set_testing(previous)


class Waits:
    """What a client would have slept: retry waits and the client-wide pauses it asked for."""

    def __init__(self) -> None:
        self.retries: list[float] = []
        self.pauses: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.retries.append(seconds)
        await anyio.lowlevel.checkpoint()

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


@pytest.fixture
def waits(instant_retries: None, monkeypatch: pytest.MonkeyPatch) -> Waits:
    """Record retry waits and Retry-After pauses instead of sleeping through them.

    The retry loop looks ``anyio.sleep`` up at each wait, so this patches it for
    the test: a test using this fixture must not sleep for real itself.
    """
    recorded = Waits()
    _retry.set_testing(False)
    monkeypatch.setattr("hiveon_async._retry.anyio.sleep", recorded.sleep)
    monkeypatch.setattr(SendGate, "pause", lambda gate, seconds: recorded.pause(seconds))
    return recorded


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
    anyio_backend: str, instant_retries: None, vendor: respx.Router, api_key: str, clore_key: str
) -> AsyncIterator[Callable[..., AsyncVendorClient]]:
    """Build AsyncVendorClients wired to ``vendor`` (keyword overrides allowed); closed after."""
    clients: list[AsyncVendorClient] = []

    def make(**options: Any) -> AsyncVendorClient:
        defaults: dict[str, Any] = {
            "api_key": api_key,
            "base_url": VENDOR_URL,
            "metadata": {"CLORE_API_KEY": clore_key},
            "transport": httpx.MockTransport(vendor.async_handler),
        }
        client = AsyncVendorClient(**{**defaults, **options})
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
