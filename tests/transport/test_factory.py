"""Choosing the transport: once, by the factory, from the client's settings and the event loop."""

from __future__ import annotations

import sys

import httpx
import pytest

from hiveon_async import InvalidRequestError
from hiveon_async._transport import TransportFactory
from hiveon_async._transport._factory import speedups_available

BASE_URL = httpx.URL("https://api.hiveon.test")

pytestmark = pytest.mark.anyio


def factory(**options: object) -> TransportFactory:
    settings: dict[str, object] = {
        "http_client": None,
        "transport": None,
        "timeout": httpx.Timeout(5.0),
        "max_concurrency": 4,
        "base_url": BASE_URL,
        "speedups": None,
    }
    settings.update(options)
    return TransportFactory(**settings)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy from the machine's environment unless a test sets one."""
    for name in (
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "ALL_PROXY",
        "https_proxy",
        "http_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)


async def test_our_pool_is_aiohttp_on_asyncio_and_httpcore_on_trio(anyio_backend: str) -> None:
    """With the speedups extra, asyncio sends through aiohttp; trio always through httpcore."""
    transport = factory().open()
    try:
        expected = "aiohttp" if anyio_backend == "asyncio" and speedups_available() else "httpcore"
        assert transport.pool == expected
    finally:
        await transport.aclose()


async def test_speedups_false_keeps_httpcore(anyio_backend: str) -> None:
    """``speedups=False`` keeps the lean httpcore pool on asyncio too."""
    transport = factory(speedups=False).open()
    try:
        assert transport.pool == "httpcore"
    finally:
        await transport.aclose()


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"])
async def test_a_proxy_in_the_environment_gets_an_httpx_client(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """A proxy variable for the base URL's scheme means a client of ours that applies it."""
    monkeypatch.setenv(variable, "http://127.0.0.1:9")

    transport = factory().open()
    try:
        assert transport.pool == "transport"
    finally:
        await transport.aclose()


async def test_a_proxy_for_another_scheme_is_ignored(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An HTTP_PROXY does not apply to an https base URL."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")

    transport = factory(speedups=False).open()
    try:
        assert transport.pool == "httpcore"
    finally:
        await transport.aclose()


async def test_the_users_client_and_transport_are_used_as_they_are(anyio_backend: str) -> None:
    """Your own client or transport always wins, proxy or not."""
    async with httpx.AsyncClient() as client:
        assert factory(http_client=client).open().pool == "http_client"
    mock = httpx.MockTransport(lambda request: httpx.Response(200))
    assert factory(transport=mock).open().pool == "transport"


def test_speedups_without_the_extra_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """``speedups=True`` without aiohttp importable is a clear error when the client is made."""
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # as if the extra were not installed

    with pytest.raises(InvalidRequestError, match="speedups extra"):
        factory(speedups=True)
