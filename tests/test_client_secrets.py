"""Neither credential ever shows: not in reprs, errors, tracebacks, kept requests or logs."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from hiveon_async import AsyncVendorClient, HiveonError, StopResult
from tests.conftest import stop_error

pytestmark = pytest.mark.anyio

Effect = Callable[[httpx.Request], httpx.Response] | Exception


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"deployment_id": request.url.path.split("/")[-2]})


def echo(status: int) -> Callable[[httpx.Request], httpx.Response]:
    """An answer that repeats the whole request back, credentials included, as some servers do."""

    def answer(request: httpx.Request) -> httpx.Response:
        text = f"you sent {request.headers.raw!r} with {request.content.decode()}"
        return httpx.Response(status, text=text, headers={"X-Request-Id": "req-1"})

    return answer


#: name -> (what the server does on each attempt, the call's overrides)
SCENARIOS: dict[str, tuple[list[Effect], dict[str, object]]] = {
    "success": ([ok], {}),
    "retry then success": ([echo(503), echo(500), ok], {}),
    "4xx echoing the request": ([echo(400)], {}),
    "5xx echoing the request until attempts run out": ([echo(500)] * 4, {}),
    "2xx echoing the request": ([echo(200)], {}),
    "transport error": ([httpx.ConnectError("connection refused")] * 4, {}),
    "timeout": ([httpx.ReadTimeout("timed out")] * 4, {}),
    "invalid metadata": ([], {"metadata": {"extra": 5}}),
    "invalid id": ([], {"deployment_id": "../admin"}),
}


def exposed(client: AsyncVendorClient, outcome: StopResult | HiveonError) -> list[str]:
    """Everything a person could be shown about the client and the call's outcome."""
    texts = [repr(client), str(outcome), repr(outcome)]
    if isinstance(outcome, HiveonError):
        texts.append("".join(traceback.format_exception(outcome)))
        texts.append(repr(vars(outcome)))
        requests = [getattr(outcome, "request", None), getattr(outcome.__cause__, "request", None)]
        response = getattr(outcome, "response", None)
        if response is not None:
            requests.append(response.request)
            texts.extend([response.text, repr(response.headers.raw)])
        for request in filter(None, requests):
            texts.extend([repr(request.headers.raw), request.content.decode()])
    return texts


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_no_secret_is_ever_shown(
    client: AsyncVendorClient,
    stop_route: respx.Route,
    deployment_id: str,
    api_key: str,
    clore_key: str,
    caplog: pytest.LogCaptureFixture,
    scenario: str,
) -> None:
    """Scan every surface of a call's outcome and every DEBUG log record for both keys."""
    caplog.set_level(logging.DEBUG)
    effects, overrides = SCENARIOS[scenario]
    stop_route.side_effect = effects
    call_id = str(overrides.get("deployment_id", deployment_id))
    metadata = overrides.get("metadata")

    try:
        outcome: StopResult | HiveonError = await client.stop_deployment(
            call_id,
            metadata=metadata,  # type: ignore[arg-type]
        )
    except HiveonError as error:
        outcome = error

    texts = [*exposed(client, outcome), caplog.text]
    texts += [record.getMessage() for record in caplog.records]
    for text in texts:
        assert api_key not in text
        assert clore_key not in text


#: name -> (what the server does on each attempt, where the error keeps the request)
KEPT_REQUESTS: dict[str, tuple[list[Effect], Callable[[Any], httpx.Request]]] = {
    "status error": ([echo(401)], lambda error: error.response.request),
    "validation error": ([echo(200)], lambda error: error.response.request),
    "transport error": ([httpx.ConnectError("refused")] * 4, lambda error: error.request),
}


@pytest.mark.parametrize("kind", KEPT_REQUESTS)
async def test_kept_requests_hide_the_key_header_and_drop_the_body(
    client: AsyncVendorClient, stop_route: respx.Route, deployment_id: str, kind: str
) -> None:
    """The request kept on an error has X-API-Key redacted and no body at all."""
    effects, kept_request = KEPT_REQUESTS[kind]
    stop_route.side_effect = effects

    raised = await stop_error(client, deployment_id, HiveonError)

    kept = kept_request(raised)
    assert kept.headers["X-API-Key"] == "[redacted]"
    assert kept.content == b""
    assert kept.url == f"{client.base_url}/vendors/v1/machines/deployments/{deployment_id}/stop"


async def test_httpx_log_records_are_scanned_too(
    make_client: Callable[..., AsyncVendorClient],
    vendor: respx.Router,
    stop_route: respx.Route,
    deployment_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The secret scan above sees httpx's own records (a user's http_client logs them) and ours."""
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient(transport=httpx.MockTransport(vendor.async_handler)) as own:
        client = make_client(transport=None, http_client=own)
        await client.stop_deployment(deployment_id)

    assert {"httpx", "hiveon_async"} <= {record.name for record in caplog.records}
