"""Never run: exercises the public API under ``mypy --strict``.

Every line must type-check as written; a change to a public signature that
breaks callers shows up here first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import httpx

from hiveon_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncVendorClient,
    AttemptInfo,
    AuthenticationError,
    BadRequestError,
    BatchFailedError,
    BatchProgress,
    BatchReport,
    HiveonError,
    InvalidRequestError,
    NotFoundError,
    OutcomeStatus,
    PermissionDeniedError,
    QuotaPolicy,
    RateLimit,
    RateLimitedError,
    RateLimitState,
    ResponseValidationError,
    RetryInfo,
    RetryPolicy,
    ServerError,
    StopOutcome,
    StopResult,
    __version__,
)


def every_keyword(http_client: httpx.AsyncClient) -> list[AsyncVendorClient]:
    """Construct clients with every keyword, in each accepted form."""
    policy = RetryPolicy(
        max_attempts=6,
        initial_delay=0.25,
        max_delay=4.0,
        max_retry_after=30.0,
        deadline=20.0,
        budget=None,
        budget_refill=0.2,
        adaptive=False,
    )
    limit = RateLimit(per_second=50.0, burst=10)
    attempts: int = policy.max_attempts
    deadline: float | None = policy.deadline
    per_second: float = limit.per_second
    burst: int = limit.burst
    del attempts, deadline, per_second, burst
    return [
        AsyncVendorClient(),
        AsyncVendorClient(
            api_key="key",
            base_url="https://api.hiveon.ai",
            metadata={"CLORE_API_KEY": "clore", "extra": "value"},
            timeout=5.0,
            retry=policy,
            rate_limit=limit,
            max_concurrency=64,
            transport=httpx.MockTransport(lambda request: httpx.Response(200)),
        ),
        AsyncVendorClient(
            timeout=httpx.Timeout(5.0, connect=1.0), rate_limit=None, http_client=http_client
        ),
        AsyncVendorClient(rate_limit=limit, redis_url="rediss://:password@redis.internal:6380/0"),
        AsyncVendorClient(rate_limit=limit, redis_url=None),
    ]


def hooks() -> AsyncVendorClient:
    """The observability hooks: callables of AttemptInfo and RetryInfo; any return is ignored."""
    seen: list[AttemptInfo] = []

    def on_retry(info: RetryInfo) -> None:
        cause: str = info.cause
        wait: float = info.wait
        attempt: int = info.attempt
        deployment_id: str = info.deployment_id
        del cause, wait, attempt, deployment_id

    info = seen[0] if seen else None
    if info is not None:
        status: int | None = info.status
        elapsed: float = info.elapsed
        error_type: str | None = info.error_type
        maybe_applied: bool = info.maybe_applied
        del status, elapsed, error_type, maybe_applied
    return AsyncVendorClient(on_attempt=seen.append, on_retry=on_retry)


async def ids() -> AsyncIterator[str]:
    yield "dep-1"


async def one_call(client: AsyncVendorClient) -> str:
    """Stop one deployment and read the result."""
    async with client:
        result: StopResult = await client.stop_deployment("dep-1")
        await client.stop_deployment("dep-2", metadata={"CLORE_API_KEY": "other"})
    await client.aclose()
    base_url: str = client.base_url
    concurrency: int = client.max_concurrency
    return f"{result.deployment_id} {base_url} {concurrency} {__version__}"


async def derived_clients(client: AsyncVendorClient) -> None:
    """with_options returns a client of the same type; each option in each accepted form."""
    urgent: AsyncVendorClient = client.with_options(retry=RetryPolicy(deadline=2.0))
    client.with_options(timeout=1.5)
    client.with_options(timeout=httpx.Timeout(1.0, connect=0.5), metadata={"team": "b"})
    await urgent.stop_deployment("dep-1")
    await urgent.aclose()


def read_result(result: StopResult) -> tuple[object, ...]:
    """Every attribute of a successful stop, and the rate-limit state it may carry."""
    request_id: str | None = result.request_id
    attempts: int = result.attempts
    elapsed: float = result.elapsed
    headers: Mapping[str, str] = result.headers
    state: RateLimitState | None = result.rate_limit
    if state is not None:
        remaining: int | None = state.remaining
        reset: float | None = state.reset
        policies: tuple[QuotaPolicy, ...] = state.policies
        rate: float | None = state.rate()
        del remaining, reset, policies, rate
    return (request_id, attempts, elapsed, headers, state)


def read_error_facts(error: APIStatusError) -> tuple[object, ...]:
    """An error carries the same facts as a result."""
    state: RateLimitState | None = error.rate_limit
    headers: Mapping[str, str] = error.headers
    elapsed: float = error.elapsed
    return (state, headers, elapsed, error.request_id, error.attempts)


def read_outcome(outcome: StopOutcome) -> tuple[object, ...]:
    """Every attribute of one id's outcome."""
    status: OutcomeStatus = outcome.status
    result: StopResult | None = outcome.result
    error: HiveonError | None = outcome.error
    attempts: int = outcome.attempts
    elapsed: float = outcome.elapsed
    maybe_applied: bool = outcome.maybe_applied
    ok: bool = outcome.ok
    deployment_id: str = outcome.deployment_id
    return (status, result, error, attempts, elapsed, maybe_applied, ok, deployment_id)


async def batches(client: AsyncVendorClient) -> None:
    """Both batch forms, with every keyword, and the report's views."""
    progress = BatchProgress()
    report: BatchReport = await client.stop_deployments(
        ["dep-1", "dep-2"],
        metadata={"CLORE_API_KEY": "clore"},
        concurrency=8,
        deadline=60.0,
        on_outcome=read_outcome,
        progress=progress,
        wait_for_quota=True,
    )
    await client.stop_deployments(ids())
    stopped: list[StopOutcome] = report.stopped
    failed: list[StopOutcome] = report.failed
    skipped: list[StopOutcome] = report.skipped
    everything_ok: bool = report.ok
    duplicates: int = report.duplicates
    elapsed: float = report.elapsed
    one: StopOutcome = report["dep-1"]
    present: bool = "dep-1" in report
    total: int = len(report)
    del stopped, failed, skipped, everything_ok, duplicates, elapsed, present, total
    read_outcome(one)
    for outcome in report:
        read_outcome(outcome)
    report.raise_for_failures()
    done: int = progress.done + progress.seen + progress.in_flight + progress.retries
    del done

    async with client.stream_stop_deployments(
        ids(), metadata=None, concurrency=4, deadline=None, on_outcome=None
    ) as outcomes:
        seen: int = outcomes.progress.seen
        del seen
        async for outcome in outcomes:
            read_outcome(outcome)


async def errors(client: AsyncVendorClient) -> list[object]:
    """Catch each error class and read what it carries."""
    found: list[object] = []
    try:
        await client.stop_deployment("dep-1")
    except InvalidRequestError as error:
        value_error: ValueError = error
        found.append(value_error)
    except APITimeoutError as error:
        found.append(error.request)
    except APIConnectionError as error:
        request: httpx.Request | None = error.request
        found.append(request)
    except RateLimitedError as error:
        retry_after: float | None = error.retry_after
        found.append(retry_after)
    except (
        BadRequestError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        ServerError,
    ) as error:
        found.append(error.status_code)
    except APIStatusError as error:
        status_code: int = error.status_code
        response: httpx.Response = error.response
        body: str = error.body
        request_id: str | None = error.request_id
        found.extend([status_code, response, body, request_id, error.retry_after])
    except ResponseValidationError as error:
        found.extend([error.response, error.request_id])
    except BatchFailedError as error:
        report: BatchReport = error.report
        found.append(report)
    except HiveonError as error:
        message: str = error.message
        deployment_id: str | None = error.deployment_id
        attempts: int = error.attempts
        maybe_applied: bool = error.maybe_applied
        found.extend([message, deployment_id, attempts, maybe_applied])
    return found
