"""The client's retry loop: which answers are retried, how long it waits, deadline, budget, gate."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import anyio
import httpx
import pytest
import respx

from hiveon_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncVendorClient,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimit,
    RateLimitedError,
    RetryPolicy,
    ServerError,
)
from hiveon_async._policy._gate import HEADROOM
from tests.conftest import Waits, stop_error

pytestmark = pytest.mark.anyio

MakeClient = Callable[..., AsyncVendorClient]
#: Generous bound for calls that must end by themselves: the test fails instead of hanging.
HANG = 10.0


def fails(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, json={"error": "nope"})


def trickling(request: httpx.Request) -> httpx.Response:
    """A 200 whose body never ends: one byte every 20 ms, so no single read times out."""

    async def trickle() -> AsyncIterator[bytes]:
        while True:
            yield b" "
            await anyio.sleep(0.02)

    return httpx.Response(200, content=trickle())


async def test_500_three_times_then_200_succeeds_on_the_fourth_request(
    client: AsyncVendorClient, stop_route: respx.Route, deployment_id: str
) -> None:
    """Three 500s then a 200: success after exactly four requests."""
    stop_route.side_effect = [fails(500)] * 3 + [stop_route.return_value]

    result = await client.stop_deployment(deployment_id)

    assert result.deployment_id == deployment_id
    assert stop_route.call_count == 4


@pytest.mark.parametrize("max_attempts", [1, 2, 4, 7])
async def test_500_forever_sends_exactly_max_attempts(
    make_client: MakeClient, stop_route: respx.Route, deployment_id: str, max_attempts: int
) -> None:
    """A server that always fails gets max_attempts requests; the error counts them."""
    stop_route.respond(500)
    client = make_client(retry=RetryPolicy(max_attempts=max_attempts))

    raised = await stop_error(client, deployment_id, ServerError)

    assert stop_route.call_count == max_attempts
    assert raised.attempts == max_attempts
    assert raised.status_code == 500


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, APIStatusError),
        (301, APIStatusError),
        (302, APIStatusError),
        (307, APIStatusError),
        (501, ServerError),
    ],
)
async def test_final_statuses_send_one_request(
    client: AsyncVendorClient,
    stop_route: respx.Route,
    deployment_id: str,
    status: int,
    error: type[APIStatusError],
) -> None:
    """Other 4xx, 3xx and 501 are answered at once with their class, after one request."""
    stop_route.respond(status, headers={"Location": "/elsewhere"})

    raised = await stop_error(client, deployment_id, APIStatusError)

    assert type(raised) is error
    assert raised.status_code == status
    assert raised.attempts == 1
    assert stop_route.call_count == 1


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_transient_statuses_are_retried(
    client: AsyncVendorClient, stop_route: respx.Route, deployment_id: str, status: int
) -> None:
    """429, 500, 502, 503 and 504 are retried."""
    stop_route.side_effect = [fails(status), stop_route.return_value]

    await client.stop_deployment(deployment_id)

    assert stop_route.call_count == 2


async def test_429_carries_retry_after(
    make_client: MakeClient, stop_route: respx.Route, deployment_id: str
) -> None:
    """A 429 becomes RateLimitedError with the server's Retry-After in seconds."""
    stop_route.respond(429, headers={"Retry-After": "7"})
    client = make_client(retry=RetryPolicy(max_attempts=1))

    raised = await stop_error(client, deployment_id, RateLimitedError)

    assert raised.retry_after == 7.0


@pytest.mark.parametrize(
    ("exception", "error"),
    [
        (httpx.ConnectError, APIConnectionError),
        (httpx.ReadError, APIConnectionError),
        (httpx.WriteError, APIConnectionError),
        (httpx.RemoteProtocolError, APIConnectionError),
        (httpx.ReadTimeout, APITimeoutError),
        (httpx.ConnectTimeout, APITimeoutError),
    ],
)
async def test_transport_errors_are_retried_then_wrapped(
    client: AsyncVendorClient,
    stop_route: respx.Route,
    deployment_id: str,
    exception: type[httpx.TransportError],
    error: type[APIConnectionError],
) -> None:
    """No response: retried max_attempts times, then our error with httpx's as the cause."""
    stop_route.side_effect = exception

    raised = await stop_error(client, deployment_id, APIConnectionError)

    assert type(raised) is error
    assert isinstance(raised.__cause__, exception)
    assert raised.attempts == stop_route.call_count == 4


async def test_transport_error_then_success(
    client: AsyncVendorClient, stop_route: respx.Route, deployment_id: str
) -> None:
    """A dropped connection followed by an answer is a success."""
    stop_route.side_effect = [httpx.RemoteProtocolError("disconnected"), stop_route.return_value]

    await client.stop_deployment(deployment_id)

    assert stop_route.call_count == 2


async def test_cancellation_is_not_retried(
    client: AsyncVendorClient, vendor: respx.Router, deployment_id: str
) -> None:
    """Cancelling a call mid-request sends no further attempt."""
    requests: list[httpx.Request] = []
    started = anyio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        started.set()
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    vendor.post(path__regex=r"/stop$").mock(side_effect=hang)
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.stop_deployment, deployment_id)
        await started.wait()
        tg.cancel_scope.cancel()

    assert len(requests) == 1


@pytest.mark.parametrize(("status", "pauses"), [(429, []), (503, [3.0])])
async def test_retry_after_is_waited_and_a_503_pauses_the_client(
    make_client: MakeClient,
    stop_route: respx.Route,
    deployment_id: str,
    waits: Waits,
    status: int,
    pauses: list[float],
) -> None:
    """A Retry-After within max_retry_after is the wait; a 503's also holds all sending.

    A 429's holds only the refused call: the others go on at the learned pace.
    """
    stop_route.side_effect = [fails(status, **{"Retry-After": "3"}), stop_route.return_value]
    client = make_client(retry=RetryPolicy(max_retry_after=3.0, adaptive=False))

    await client.stop_deployment(deployment_id)

    assert waits.retries == [3.0]
    assert waits.pauses == pauses
    assert stop_route.call_count == 2


@pytest.mark.parametrize(("status", "error"), [(429, RateLimitedError), (503, ServerError)])
async def test_retry_after_beyond_the_cap_fails_at_once(
    make_client: MakeClient,
    stop_route: respx.Route,
    deployment_id: str,
    waits: Waits,
    status: int,
    error: type[APIStatusError],
) -> None:
    """A Retry-After over max_retry_after is not slept: one request, the error says how long."""
    stop_route.respond(status, headers={"Retry-After": "61"})
    client = make_client(retry=RetryPolicy(max_retry_after=60.0))

    raised = await stop_error(client, deployment_id, error)

    assert raised.retry_after == 61.0
    assert stop_route.call_count == 1
    assert waits.retries == []


@pytest.mark.parametrize("retry_after", ["soon", "-1", "nan", "Wed, 21 Oct 2015 07:28:00 GMT"])
async def test_unusable_retry_after_falls_back_to_backoff(
    make_client: MakeClient,
    stop_route: respx.Route,
    deployment_id: str,
    waits: Waits,
    retry_after: str,
) -> None:
    """Garbage, negative, nan or past Retry-After: the normal backoff is used."""
    stop_route.side_effect = [
        fails(429, **{"Retry-After": retry_after}),
        stop_route.return_value,
    ]
    client = make_client(retry=RetryPolicy(initial_delay=0.25, adaptive=False))

    await client.stop_deployment(deployment_id)

    assert len(waits.retries) == 1
    assert 0.0 <= waits.retries[0] <= 0.25


async def test_backoff_waits_stay_within_the_full_jitter_bounds(
    make_client: MakeClient, stop_route: respx.Route, deployment_id: str, waits: Waits
) -> None:
    """The n-th wait is within [0, min(max_delay, initial_delay * 2**(n-1))]."""
    stop_route.respond(500)
    client = make_client(retry=RetryPolicy(max_attempts=6, initial_delay=1.0, max_delay=3.0))

    with pytest.raises(ServerError):
        await client.stop_deployment(deployment_id)

    assert len(waits.retries) == 5
    for wait, ceiling in zip(waits.retries, [1.0, 2.0, 3.0, 3.0, 3.0], strict=True):
        assert 0.0 <= wait <= ceiling


async def test_wait_that_would_pass_the_deadline_is_not_slept(
    make_client: MakeClient, stop_route: respx.Route, deployment_id: str, waits: Waits
) -> None:
    """When the next wait ends after the deadline, the call fails now with the last error."""
    stop_route.respond(503, headers={"Retry-After": "10"})
    client = make_client(retry=RetryPolicy(deadline=5.0))

    raised = await stop_error(client, deployment_id, ServerError)

    assert raised.retry_after == 10.0
    assert waits.retries == []
    assert stop_route.call_count == 1


async def test_deadline_bounds_the_call_across_attempts(
    make_client: MakeClient, vendor: respx.Router, deployment_id: str
) -> None:
    """Slow failing attempts stop at the call's deadline with APITimeoutError."""

    async def slow_500(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(0.1)
        return httpx.Response(500)

    route = vendor.post(path__regex=r"/stop$").mock(side_effect=slow_500)
    client = make_client(
        retry=RetryPolicy(max_attempts=1000, initial_delay=0.0, max_delay=0.0, deadline=0.35)
    )
    started = time.monotonic()

    with anyio.fail_after(HANG), pytest.raises(APITimeoutError, match="deadline"):
        await client.stop_deployment(deployment_id)

    assert time.monotonic() - started >= 0.3
    assert route.call_count >= 2


async def test_trickling_server_cannot_hold_the_call_past_its_deadline(
    make_client: MakeClient, vendor: respx.Router, deployment_id: str
) -> None:
    """A body sent a byte at a time (no read ever times out) still ends at the deadline."""
    vendor.post(path__regex=r"/stop$").mock(side_effect=trickling)
    client = make_client(retry=RetryPolicy(deadline=0.3))

    with anyio.fail_after(HANG):
        raised = await stop_error(client, deployment_id, APITimeoutError)

    assert "deadline" in str(raised)
    assert raised.attempts == 1
    assert raised.maybe_applied


async def test_trickling_server_cannot_hold_an_attempt_past_its_timeout(
    make_client: MakeClient, vendor: respx.Router, deployment_id: str
) -> None:
    """Without a deadline, each attempt is bounded by the sum of its timeout phases."""
    route = vendor.post(path__regex=r"/stop$").mock(side_effect=trickling)
    client = make_client(timeout=0.05, retry=RetryPolicy(max_attempts=2))

    with anyio.fail_after(HANG), pytest.raises(APITimeoutError):
        await client.stop_deployment(deployment_id)

    assert route.call_count == 2


@pytest.mark.parametrize(("budget", "retries"), [(5, 5), (0, 0), (None, 5 * 3)])
async def test_retry_budget_caps_retries_across_calls(
    make_client: MakeClient,
    stop_route: respx.Route,
    deployment_id: str,
    budget: int | None,
    retries: int,
) -> None:
    """Against an always-500 server, budget=5 allows five retries in all; None, no cap."""
    stop_route.respond(500)
    client = make_client(retry=RetryPolicy(max_attempts=4, budget=budget))

    for _ in range(5):
        with pytest.raises(ServerError):
            await client.stop_deployment(deployment_id)

    assert stop_route.call_count == 5 + retries


async def test_every_attempt_passes_the_rate_limiter(
    make_client: MakeClient, stop_route: respx.Route, deployment_id: str, waits: Waits
) -> None:
    """Retries are not free: each attempt takes its turn at the gate, a second apart at 1/s.

    A second less 1%: the gate paces a configured rate at HEADROOM of it.
    """
    stop_route.side_effect = [fails(500), fails(429), stop_route.return_value]
    client = make_client(rate_limit=RateLimit(per_second=1.0), retry=RetryPolicy(adaptive=False))

    await client.stop_deployment(deployment_id)

    assert stop_route.call_count == 3
    assert waits.spacings == pytest.approx([1 / HEADROOM, 2 / HEADROOM])
