"""The pytest plugin and the one-line client (testing/_plugin.py, FakeVendorAPI.client)."""

from __future__ import annotations

import time

import pytest

from hiveon_async import AsyncVendorClient, RetryPolicy, ServerError, _clock
from hiveon_async.testing import FakeVendorAPI


def test_fixture_is_a_fresh_fake_with_instant_waits(fake_vendor_api: FakeVendorAPI) -> None:
    """The fixture is an unused FakeVendorAPI, and retry waits are instant meanwhile."""
    assert isinstance(fake_vendor_api, FakeVendorAPI)
    assert fake_vendor_api.request_count == 0
    assert _clock.is_testing()


def test_fixture_restores_the_previous_setting(pytester: pytest.Pytester) -> None:
    """In a user's suite the fixture turns instant waits on for its test only."""
    pytester.makepyfile(
        """
        from hiveon_async import _clock

        def test_with_fixture(fake_vendor_api):
            assert _clock.is_testing()

        def test_after(fake_vendor_api):
            assert fake_vendor_api.request_count == 0

        def test_without_fixture():
            assert not _clock.is_testing()
        """
    )
    before = _clock.is_testing()
    result = pytester.runpytest("-W", "error")
    result.assert_outcomes(passed=3)
    assert _clock.is_testing() is before


@pytest.mark.anyio
async def test_client_is_wired_to_the_fake(fake_vendor_api: FakeVendorAPI) -> None:
    """``client()`` sends the fake's keys through its in-process transport."""
    async with fake_vendor_api.client() as client:
        assert isinstance(client, AsyncVendorClient)
        result = await client.stop_deployment("dep-1")
    assert result.deployment_id == "dep-1"
    assert fake_vendor_api.requests[0].answer == 200


@pytest.mark.anyio
async def test_retries_do_not_wait(fake_vendor_api: FakeVendorAPI) -> None:
    """Transient faults are retried at once while the fixture is active."""
    fake_vendor_api.script("dep-1", [503, "reset", "drop", 500])
    started = time.monotonic()
    async with fake_vendor_api.client(retry=RetryPolicy(max_attempts=5)) as client:
        await client.stop_deployment("dep-1")
    assert time.monotonic() - started < 0.5
    assert fake_vendor_api.attempts["dep-1"] == 5


@pytest.mark.anyio
async def test_client_overrides(fake_vendor_api: FakeVendorAPI) -> None:
    """Any AsyncVendorClient argument can be overridden."""
    fake_vendor_api.script("dep-1", [503])
    async with fake_vendor_api.client(retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(ServerError):
            await client.stop_deployment("dep-1")


@pytest.mark.anyio
async def test_client_over_the_socket(fake_vendor_api: FakeVendorAPI) -> None:
    """With a base URL and ``transport=None`` the client talks HTTP to ``serve()``."""
    async with (
        fake_vendor_api.serve() as base_url,
        fake_vendor_api.client(base_url=base_url, transport=None) as client,
    ):
        await client.stop_deployment("dep-1")
    assert fake_vendor_api.requests[0].headers["x-api-key"] == "[redacted]"
    assert fake_vendor_api.open_connections == 0
