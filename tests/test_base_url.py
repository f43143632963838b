"""Where the client sends: $HIVEON_BASE_URL, and the hint when every id answers 404."""

from __future__ import annotations

import logging

import pytest

from hiveon_async import AsyncVendorClient, BatchFailedError, InvalidRequestError
from hiveon_async.testing import FakeVendorAPI
from tests.doubles import fake_client

pytestmark = pytest.mark.anyio


def test_base_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without base_url, $HIVEON_BASE_URL is used; an explicit base_url wins over it."""
    monkeypatch.setenv("HIVEON_API_KEY", "key-from-env")
    monkeypatch.setenv("CLORE_API_KEY", "clore-from-env")
    monkeypatch.setenv("HIVEON_BASE_URL", "http://127.0.0.1:8000/")

    assert AsyncVendorClient().base_url == "http://127.0.0.1:8000"
    assert AsyncVendorClient(base_url="https://api.example.test").base_url == (
        "https://api.example.test"
    )


def test_without_the_variable_the_production_api_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """No base_url and no $HIVEON_BASE_URL: https://api.hiveon.ai."""
    monkeypatch.setenv("HIVEON_API_KEY", "key-from-env")
    monkeypatch.delenv("HIVEON_BASE_URL", raising=False)

    assert AsyncVendorClient().base_url == "https://api.hiveon.ai"


def test_a_bad_variable_is_named_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused $HIVEON_BASE_URL says it came from the variable."""
    monkeypatch.setenv("HIVEON_API_KEY", "key-from-env")
    monkeypatch.setenv("HIVEON_BASE_URL", "http://vendor.example.test")

    with pytest.raises(InvalidRequestError, match=r"^\$HIVEON_BASE_URL: base_url must use https"):
        AsyncVendorClient()


async def test_a_batch_of_404s_warns_about_the_base_url(caplog: pytest.LogCaptureFixture) -> None:
    """20 404s in a row from a batch's start log one warning to check the base URL."""
    fake = FakeVendorAPI(deployments=["known"])
    with caplog.at_level(logging.WARNING, logger="hiveon_async"):
        async with fake_client(fake) as client:
            report = await client.stop_deployments([f"dep-{n}" for n in range(30)])

    hints = [record for record in caplog.records if "check the base URL" in record.getMessage()]
    assert len(hints) == 1
    with pytest.raises(BatchFailedError, match="check the base URL"):
        report.raise_for_failures()


async def test_one_stopped_id_means_no_hint(caplog: pytest.LogCaptureFixture) -> None:
    """When an id stops, 404s are missing deployments, not a wrong base URL."""
    fake = FakeVendorAPI(deployments=["known"])
    with caplog.at_level(logging.WARNING, logger="hiveon_async"):
        async with fake_client(fake) as client:
            report = await client.stop_deployments(["known", "gone"], concurrency=1)

    assert not [record for record in caplog.records if "base URL" in record.getMessage()]
    with pytest.raises(BatchFailedError) as caught:
        report.raise_for_failures()
    assert "base URL" not in str(caught.value)
