"""AsyncVendorClient: the wire request, its lifecycle, a user's own httpx client, logging."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

import anyio
import httpx
import pytest
import respx

from hiveon_async import APIStatusError, AsyncVendorClient, RetryPolicy, StopResult
from tests.conftest import Waits, stop_error
from tests.doubles import VENDOR_URL

pytestmark = pytest.mark.anyio

MakeClient = Callable[..., AsyncVendorClient]


class ClosableTransport(httpx.MockTransport):
    """A mock transport that remembers being closed."""

    closed = False

    async def aclose(self) -> None:
        self.closed = True


async def test_success_sends_the_documented_request(
    make_client: MakeClient,
    stop_route: respx.Route,
    deployment_id: str,
    api_key: str,
    clore_key: str,
) -> None:
    """One POST to the documented path, X-API-Key, JSON, call metadata merged over the default."""
    client = make_client(metadata={"CLORE_API_KEY": clore_key, "region": "eu", "team": "a"})

    result = await client.stop_deployment(deployment_id, metadata={"team": "b"})

    assert isinstance(result, StopResult)
    assert result.deployment_id == deployment_id
    request = stop_route.calls.last.request
    assert request.method == "POST"
    assert str(request.url) == (
        f"{VENDOR_URL}/vendors/v1/machines/deployments/{deployment_id}/stop"
    )
    assert request.headers["X-API-Key"] == api_key
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "metadata": {"CLORE_API_KEY": clore_key, "region": "eu", "team": "b"}
    }


async def test_call_metadata_may_bring_its_own_clore_key(
    make_client: MakeClient, stop_route: respx.Route, deployment_id: str
) -> None:
    """A call's CLORE_API_KEY wins over the client's default one."""
    client = make_client()

    await client.stop_deployment(deployment_id, metadata={"CLORE_API_KEY": "per-call"})

    body = json.loads(stop_route.calls.last.request.content)
    assert body == {"metadata": {"CLORE_API_KEY": "per-call"}}


async def test_base_url_path_prefix_is_kept(
    make_client: MakeClient, vendor: respx.Router, deployment_id: str
) -> None:
    """A base URL with a path (and a trailing slash) prefixes the documented path once."""
    route = vendor.post(
        f"{VENDOR_URL}/proxy/vendors/v1/machines/deployments/{deployment_id}/stop"
    ).respond(json={"deployment_id": deployment_id})
    client = make_client(base_url=f"{VENDOR_URL}/proxy/")

    await client.stop_deployment(deployment_id)

    assert route.call_count == 1


async def test_user_http_client_is_used_and_not_closed(
    make_client: MakeClient, vendor: respx.Router, stop_route: respx.Route, deployment_id: str
) -> None:
    """A user's httpx.AsyncClient sends the request through its own transport and stays open."""
    transport = ClosableTransport(vendor.async_handler)
    async with httpx.AsyncClient(transport=transport) as own:
        client = make_client(http_client=own, transport=None)

        await client.stop_deployment(deployment_id)
        await client.aclose()

        assert stop_route.call_count == 1
        assert not own.is_closed
        assert not transport.closed


async def test_own_http_client_is_closed_by_aclose(
    make_client: MakeClient, vendor: respx.Router
) -> None:
    """The connection pool the client built is closed by aclose(), which is idempotent."""
    transport = ClosableTransport(vendor.async_handler)
    client = make_client(transport=transport)

    await client.aclose()
    await client.aclose()

    assert transport.closed


async def test_async_with_closes_the_client(
    make_client: MakeClient, vendor: respx.Router, stop_route: respx.Route, deployment_id: str
) -> None:
    """``async with`` returns the client and closes it on the way out."""
    transport = ClosableTransport(vendor.async_handler)

    async with make_client(transport=transport) as client:
        await client.stop_deployment(deployment_id)

    assert transport.closed


async def test_a_closed_client_refuses_calls(
    client: AsyncVendorClient, stop_route: respx.Route, deployment_id: str
) -> None:
    """After aclose() a call fails at once instead of sending."""
    await client.aclose()

    with pytest.raises(RuntimeError, match="closed"):
        await client.stop_deployment(deployment_id)
    assert not stop_route.called


@pytest.mark.parametrize("follow_redirects", [False, True])
async def test_redirect_to_another_host_is_not_followed(
    make_client: MakeClient,
    vendor: respx.Router,
    stop_route: respx.Route,
    deployment_id: str,
    *,
    follow_redirects: bool,
) -> None:
    """A 307 elsewhere is an APIStatusError and the other host receives nothing."""
    elsewhere = vendor.route(host="elsewhere.test").respond(json={"deployment_id": deployment_id})
    stop_route.respond(307, headers={"Location": "https://elsewhere.test/steal"})
    own = httpx.AsyncClient(
        transport=httpx.MockTransport(vendor.async_handler), follow_redirects=follow_redirects
    )
    client = make_client(http_client=own, transport=None)

    raised = await stop_error(client, deployment_id, APIStatusError)

    await own.aclose()
    assert type(raised) is APIStatusError
    assert raised.status_code == 307
    assert stop_route.call_count == 1
    assert not elsewhere.called


async def test_max_concurrency_bounds_requests_in_flight(
    make_client: MakeClient, vendor: respx.Router, deployment_id: str
) -> None:
    """No more than ``max_concurrency`` requests are in flight at once, client-wide."""
    in_flight = peak = 0

    async def slow_success(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await anyio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json={"deployment_id": deployment_id})

    vendor.post(path__regex=r"/stop$").mock(side_effect=slow_success)
    client = make_client(max_concurrency=2)

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(client.stop_deployment, deployment_id)

    assert peak == 2


async def test_timeouts_switched_off_leave_attempts_unbounded(
    make_client: MakeClient, stop_route: respx.Route, deployment_id: str
) -> None:
    """An httpx.Timeout(None) is accepted: no per-attempt bound at all."""
    client = make_client(timeout=httpx.Timeout(None))

    await client.stop_deployment(deployment_id)

    assert stop_route.calls.last.request.extensions["timeout"]["read"] is None


def test_repr_shows_settings() -> None:
    """repr(client) names the base URL and the policies."""
    client = AsyncVendorClient(api_key="k", base_url="https://api.example.test")

    text = repr(client)

    assert text.startswith("AsyncVendorClient(base_url='https://api.example.test'")
    assert "RetryPolicy(" in text
    assert client.base_url == "https://api.example.test"
    assert client.max_concurrency == 32


async def test_each_attempt_is_logged_at_debug(
    client: AsyncVendorClient,
    stop_route: respx.Route,
    deployment_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """DEBUG per attempt: method, path, status, attempt number and elapsed seconds."""
    caplog.set_level(logging.DEBUG, logger="hiveon_async")
    stop_route.side_effect = [httpx.Response(500), stop_route.return_value]

    await client.stop_deployment(deployment_id)

    path = re.escape(stop_route.calls.last.request.url.path)
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(debug) == 2
    assert re.fullmatch(rf"POST {path} -> 500 \(attempt 1, \d+\.\d{{3}}s\)", debug[0])
    assert re.fullmatch(rf"POST {path} -> 200 \(attempt 2, \d+\.\d{{3}}s\)", debug[1])


async def test_each_retry_is_logged_with_its_delay(
    make_client: MakeClient,
    stop_route: respx.Route,
    deployment_id: str,
    waits: Waits,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """INFO per retry, naming the failure and the delay actually waited."""
    caplog.set_level(logging.DEBUG, logger="hiveon_async")
    stop_route.side_effect = [httpx.Response(503), httpx.Response(500), stop_route.return_value]
    client = make_client(retry=RetryPolicy(initial_delay=1.0))

    await client.stop_deployment(deployment_id)

    retries = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(retries) == len(waits.retries) == 2
    for message, delay, status in zip(retries, waits.retries, ["503", "500"], strict=True):
        assert f"in {delay:.2f}s after HTTP {status}" in message


async def test_a_refused_retry_is_logged_as_a_warning_with_its_reason(
    make_client: MakeClient,
    stop_route: respx.Route,
    deployment_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """WARNING when a retryable failure is not retried, saying why."""
    caplog.set_level(logging.DEBUG, logger="hiveon_async")
    stop_route.respond(503, headers={"Retry-After": "600"})
    client = make_client()

    with pytest.raises(APIStatusError):
        await client.stop_deployment(deployment_id)

    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "after HTTP 503: Retry-After 600s is over max_retry_after 60s" in warning
