"""Observability: the hooks, and OpenTelemetry spans, metrics and trace-context propagation."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from hiveon_async import (
    APIConnectionError,
    AsyncVendorClient,
    AttemptInfo,
    InvalidRequestError,
    NotFoundError,
    RetryInfo,
    RetryPolicy,
)
from hiveon_async.testing import FakeVendorAPI, Fault
from tests._otel import reset_otel_globals
from tests.doubles import WireFake, fake_client

pytestmark = pytest.mark.anyio


class Telemetry:
    """The SDK, set globally for one test: spans in memory, metrics in a reader."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[self.reader]))

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        """The finished spans, in order of ending, of one name or all."""
        return [s for s in self.exporter.get_finished_spans() if name in (None, s.name)]

    def points(self, metric: str) -> list[Any]:
        """The data points of one metric."""
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for found in scope.metrics
            if found.name == metric
            for point in found.data.data_points
        ]

    def total(self, metric: str) -> int:
        """The sum of a counter over all its attribute sets."""
        return sum(point.value for point in self.points(metric))


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    """OpenTelemetry's SDK with in-memory export, for this test only."""
    reset_otel_globals()
    yield Telemetry()
    reset_otel_globals()


# -- spans --------------------------------------------------------------------------


async def test_a_stop_is_a_span_with_a_child_span_per_attempt(
    otel: Telemetry, instant_retries: None
) -> None:
    """A retried stop: one hiveon.stop_deployment span, an HTTP client span per attempt."""
    fake = FakeVendorAPI()
    fake.script("dep-1", [503])
    async with fake.client() as client:
        await client.stop_deployment("dep-1")

    [call] = otel.spans("hiveon.stop_deployment")
    attempts = otel.spans("POST")
    assert call.attributes == {
        "hiveon.deployment_id": "dep-1",
        "hiveon.attempts": 2,
        "hiveon.outcome": "stopped",
        "hiveon.maybe_applied": True,  # a 503 may have been applied
    }
    assert call.status.status_code is StatusCode.UNSET
    assert [span.attributes["http.response.status_code"] for span in attempts] == [503, 200]
    for span in attempts:
        assert span.kind is SpanKind.CLIENT
        assert span.parent is not None
        assert span.parent.span_id == call.context.span_id
        assert span.attributes["http.request.method"] == "POST"
        assert span.attributes["url.full"].endswith("/vendors/v1/machines/deployments/dep-1/stop")
        assert span.attributes["server.address"]
        assert isinstance(span.attributes["server.port"], int)
    assert attempts[0].attributes["error.type"] == "503"
    assert "error.type" not in attempts[1].attributes
    assert attempts[1].attributes["http.request.resend_count"] == 1
    [event] = call.events
    assert event.name == "hiveon.retry"
    assert event.attributes is not None
    assert event.attributes["hiveon.attempt"] == 1
    assert event.attributes["hiveon.retry.cause"] == "HTTP 503"
    assert event.attributes["hiveon.retry.wait"] >= 0


async def test_a_failed_stop_is_an_error_span(otel: Telemetry) -> None:
    """A 404 ends the call's span in error, with error.type 404 and outcome failed."""
    fake = FakeVendorAPI(deployments=["known"])
    async with fake.client() as client:
        with pytest.raises(NotFoundError):
            await client.stop_deployment("unknown")

    [call] = otel.spans("hiveon.stop_deployment")
    assert call.status.status_code is StatusCode.ERROR
    assert call.attributes["hiveon.outcome"] == "failed"
    assert call.attributes["error.type"] == "404"
    [attempt] = otel.spans("POST")
    assert attempt.status.status_code is StatusCode.ERROR


async def test_a_cancelled_stop_ends_its_spans(otel: Telemetry) -> None:
    """A stop cancelled mid-request ends its span as cancelled, maybe applied."""
    fake = FakeVendorAPI()
    fake.script("dep-1", [Fault.stall(seconds=30)])
    async with fake.client() as client:
        with anyio.move_on_after(0.1):
            await client.stop_deployment("dep-1")

    [call] = otel.spans("hiveon.stop_deployment")
    assert call.attributes is not None
    assert call.attributes["hiveon.outcome"] == "cancelled"
    assert call.attributes["hiveon.maybe_applied"] is True
    [attempt] = otel.spans("POST")
    assert attempt.status.status_code is StatusCode.ERROR


async def test_a_retry_wait_is_a_span_event(otel: Telemetry) -> None:
    """Each retry's wait, in seconds, is an event on the call's span."""
    fake = FakeVendorAPI()
    fake.script("dep-1", [500, 500])
    async with fake_client(fake, retry=RetryPolicy(initial_delay=0.0, max_delay=0.0)) as client:
        await client.stop_deployment("dep-1")

    [call] = otel.spans("hiveon.stop_deployment")
    assert [(e.name, e.attributes["hiveon.attempt"]) for e in call.events] == [
        ("hiveon.retry", 1),
        ("hiveon.retry", 2),
    ]
    assert all(e.attributes["hiveon.retry.wait"] == 0.0 for e in call.events)


async def test_a_batch_is_the_parent_span_of_its_calls(otel: Telemetry) -> None:
    """stop_deployments is one hiveon.stop_deployments span holding each call's, with counts."""
    fake = FakeVendorAPI(deployments=["a", "b", "c"])
    async with fake.client() as client:
        await client.stop_deployments(["a", "b", "c", "x", "a"], concurrency=2)

    [batch] = otel.spans("hiveon.stop_deployments")
    calls = otel.spans("hiveon.stop_deployment")
    assert len(calls) == 4
    assert all(c.parent is not None and c.parent.span_id == batch.context.span_id for c in calls)
    assert all(c.context.trace_id == batch.context.trace_id for c in calls)
    attributes = batch.attributes
    assert attributes is not None
    assert attributes["hiveon.batch.stopped"] == 3
    assert attributes["hiveon.batch.failed"] == 1
    assert attributes["hiveon.batch.duplicates"] == 1
    assert attributes["hiveon.batch.requests"] == 4


async def test_a_streamed_batch_is_a_parent_span_too(otel: Telemetry) -> None:
    """stream_stop_deployments records its batch span, parent of its calls."""
    fake = FakeVendorAPI()
    async with fake.client() as client, client.stream_stop_deployments(["a", "b"]) as outcomes:
        assert len([outcome async for outcome in outcomes]) == 2

    [batch] = otel.spans("hiveon.stop_deployments")
    calls = otel.spans("hiveon.stop_deployment")
    assert len(calls) == 2
    assert all(c.parent is not None and c.parent.span_id == batch.context.span_id for c in calls)
    assert batch.attributes is not None
    assert batch.attributes["hiveon.batch.stopped"] == 2


async def test_no_span_without_a_tracer_provider(
    anyio_backend: str, api_key: str, clore_key: str
) -> None:
    """With OpenTelemetry installed but no provider set, no traceparent is sent."""
    reset_otel_globals()
    fake = FakeVendorAPI(api_keys=[api_key], clore_api_key=clore_key)
    seen: list[httpx.Request] = []
    inner = fake.transport()

    async def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return await inner.handle_async_request(request)

    async with AsyncVendorClient(
        api_key=api_key,
        metadata={"CLORE_API_KEY": clore_key},
        base_url="http://127.0.0.1:9",
        transport=httpx.MockTransport(record),
    ) as client:
        await client.stop_deployment("dep-1")

    assert "traceparent" not in seen[0].headers


async def test_a_provider_set_after_the_client_is_built_is_used(anyio_backend: str) -> None:
    """A client built before the application sets up OpenTelemetry still records spans."""
    reset_otel_globals()
    fake = FakeVendorAPI()
    try:
        async with fake.client() as client:
            telemetry = Telemetry()
            await client.stop_deployment("dep-1")
        assert len(telemetry.spans("hiveon.stop_deployment")) == 1
        assert telemetry.total("hiveon.requests") == 1
    finally:
        reset_otel_globals()


# -- metrics --------------------------------------------------------------------------


async def test_metrics_count_requests_retries_and_429s(otel: Telemetry) -> None:
    """Counters of requests, retries and 429s, and a histogram of attempt durations."""
    fake = FakeVendorAPI()
    fake.script("dep-1", [Fault.status(429, retry_after=0), 500])
    async with fake_client(fake, retry=RetryPolicy(initial_delay=0.0, max_delay=0.0)) as client:
        await client.stop_deployment("dep-1")

    assert otel.total("hiveon.requests") == 3
    assert otel.total("hiveon.retries") == 2
    assert otel.total("hiveon.throttled") == 1
    durations = otel.points("http.client.request.duration")
    assert sum(point.count for point in durations) == 3
    statuses = {point.attributes.get("http.response.status_code") for point in durations}
    assert statuses == {429, 500, 200}


# -- traceparent on the wire ---------------------------------------------------------


@pytest.fixture(params=["httpcore", "aiohttp", "http_client", "transport"])
def any_pool(request: pytest.FixtureRequest, anyio_backend: str) -> str:
    """Every way a request can travel: our two pools, a user's client, a user's transport."""
    if request.param == "aiohttp" and anyio_backend != "asyncio":
        pytest.skip("aiohttp's pool runs on asyncio only")
    return str(request.param)


@pytest.fixture
async def served(anyio_backend: str, api_key: str) -> AsyncIterator[tuple[WireFake, str]]:
    """A fake on a loopback socket that keeps the headers it receives; and its base URL."""
    fake = WireFake(api_keys=[api_key])
    async with fake.serve() as base_url:
        yield fake, base_url


@pytest.mark.socket
async def test_traceparent_reaches_the_server_on_every_pool(
    otel: Telemetry,
    served: tuple[WireFake, str],
    any_pool: str,
    api_key: str,
    clore_key: str,
    instant_retries: None,
) -> None:
    """Each attempt carries the traceparent of its own span, whichever pool sends it."""
    fake, url = served
    fake.script("dep-1", [503])
    options: dict[str, Any] = {"speedups": any_pool == "aiohttp"}
    user_client = httpx.AsyncClient() if any_pool == "http_client" else None
    if user_client is not None:
        options = {"http_client": user_client}
    elif any_pool == "transport":
        options = {"transport": httpx.AsyncHTTPTransport()}
    try:
        async with AsyncVendorClient(
            api_key=api_key, base_url=url, metadata={"CLORE_API_KEY": clore_key}, **options
        ) as client:
            await client.stop_deployment("dep-1")
            assert client._engine.pool == any_pool
    finally:
        if user_client is not None:
            await user_client.aclose()

    attempts = otel.spans("POST")
    assert len(attempts) == len(fake.wire) == 2
    for span, (headers, _) in zip(attempts, fake.wire, strict=True):
        context = span.get_span_context()
        expected = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
        assert headers["traceparent"] == expected


# -- secrets ----------------------------------------------------------------------------


async def test_no_secret_in_spans_or_metrics(
    otel: Telemetry, api_key: str, clore_key: str, instant_retries: None
) -> None:
    """Neither X-API-Key nor CLORE_API_KEY is ever a span attribute, event or metric attribute."""
    fake = FakeVendorAPI(api_keys=[api_key], clore_api_key=clore_key, deployments=["a", "b"])
    fake.script("a", [500, Fault.status(429, retry_after=0)])
    async with fake.client(api_key=api_key, metadata={"CLORE_API_KEY": clore_key}) as client:
        await client.stop_deployments(["a", "b", "c"])
        with pytest.raises(NotFoundError):
            await client.stop_deployment("c")

    recorded = [span.to_json() for span in otel.spans()]
    recorded.append(json.dumps(otel.reader.get_metrics_data().to_json()))  # type: ignore[union-attr]
    assert len(recorded) > 5
    for text in recorded:
        assert api_key not in text
        assert clore_key not in text


# -- hooks ------------------------------------------------------------------------------


async def test_hooks_see_every_attempt_and_retry(instant_retries: None) -> None:
    """on_attempt gets each attempt's status and error; on_retry each retry's wait and cause."""
    attempts: list[AttemptInfo] = []
    retries: list[RetryInfo] = []
    fake = FakeVendorAPI()
    fake.script("dep-1", [503])
    async with fake.client(on_attempt=attempts.append, on_retry=retries.append) as client:
        await client.stop_deployment("dep-1")

    assert [(a.deployment_id, a.attempt, a.status, a.error_type) for a in attempts] == [
        ("dep-1", 1, 503, "ServerError"),
        ("dep-1", 2, 200, None),
    ]
    assert all(a.elapsed >= 0 for a in attempts)
    assert [a.maybe_applied for a in attempts] == [True, True]  # a 503 may have been applied
    [retry] = retries
    assert (retry.deployment_id, retry.attempt, retry.cause) == ("dep-1", 1, "HTTP 503")
    assert retry.wait >= 0


async def test_hooks_and_spans_work_together(otel: Telemetry) -> None:
    """With a hook and a tracer provider, both see every attempt."""
    attempts: list[AttemptInfo] = []
    fake = FakeVendorAPI()
    async with fake.client(on_attempt=attempts.append) as client:
        await client.stop_deployment("dep-1")

    assert len(attempts) == 1
    assert len(otel.spans("POST")) == 1
    assert otel.total("hiveon.requests") == 1


async def test_a_connection_failure_reaches_on_attempt(
    anyio_backend: str, api_key: str, clore_key: str
) -> None:
    """An attempt with no response is reported with no status and its error's class."""
    attempts: list[AttemptInfo] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with AsyncVendorClient(
        api_key=api_key,
        metadata={"CLORE_API_KEY": clore_key},
        transport=httpx.MockTransport(refuse),
        retry=RetryPolicy(max_attempts=1),
        on_attempt=attempts.append,
    ) as client:
        with pytest.raises(APIConnectionError):
            await client.stop_deployment("dep-1")

    [attempt] = attempts
    assert attempt.status is None
    assert attempt.error_type == "APIConnectionError"


async def test_a_raising_hook_never_breaks_the_call(
    caplog: pytest.LogCaptureFixture, api_key: str, clore_key: str, instant_retries: None
) -> None:
    """A hook that raises is ignored; the first failure is logged once, without secrets."""

    def broken(info: object) -> None:
        raise RuntimeError(f"hook broke with {api_key} and {clore_key}")

    fake = FakeVendorAPI(api_keys=[api_key], clore_api_key=clore_key)
    fake.script("dep-1", [503])
    with caplog.at_level(logging.WARNING, logger="hiveon_async"):
        async with fake.client(
            api_key=api_key, metadata={}, on_attempt=broken, on_retry=broken
        ) as client:
            # The CLORE_API_KEY comes with the call, not the client: redacted all the same.
            result = await client.stop_deployment("dep-1", metadata={"CLORE_API_KEY": clore_key})
            await client.stop_deployment("dep-2", metadata={"CLORE_API_KEY": clore_key})

    assert result.deployment_id == "dep-1"
    messages = [r.getMessage() for r in caplog.records if "hook raised" in r.getMessage()]
    assert len(messages) == 2  # once for on_attempt, once for on_retry
    assert all("RuntimeError" in m and "[redacted]" in m for m in messages)
    assert all(api_key not in m and clore_key not in m for m in messages)
    assert all(r.exc_info is None for r in caplog.records)


@pytest.mark.parametrize("name", ["on_attempt", "on_retry"])
def test_a_hook_that_is_not_callable_is_refused(name: str, api_key: str) -> None:
    """A hook that is not callable is a clear InvalidRequestError at construction."""
    with pytest.raises(InvalidRequestError, match=name):
        AsyncVendorClient(api_key=api_key, **{name: "print"})  # type: ignore[arg-type]


# -- zero cost without OpenTelemetry ----------------------------------------------------

_WITHOUT_OTEL = """
import sys

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ImportError(name)

sys.meta_path.insert(0, Absent())
import anyio
from hiveon_async.testing import FakeVendorAPI

async def main():
    async with FakeVendorAPI().client() as client:
        assert client._engine.observer is None
        print((await client.stop_deployment("dep-1")).deployment_id)

anyio.run(main)
assert not any(name.startswith("opentelemetry") for name in sys.modules)
"""


def test_the_client_works_without_opentelemetry() -> None:
    """Without opentelemetry-api, calls work and nothing of it is imported or observed."""
    run = subprocess.run(
        [sys.executable, "-c", _WITHOUT_OTEL], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "dep-1"


def test_import_does_not_import_opentelemetry() -> None:
    """``import hiveon_async`` leaves opentelemetry unimported, even when it is installed."""
    code = (
        "import sys, hiveon_async, hiveon_async.testing; "
        "print(any(n.startswith('opentelemetry') for n in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"


async def test_a_derived_client_shares_the_hooks(instant_retries: None) -> None:
    """A client from with_options() reports to the hooks of the client it came from."""
    attempts: list[AttemptInfo] = []
    fake = FakeVendorAPI()
    async with fake.client(on_attempt=attempts.append) as client:
        await client.with_options(retry=RetryPolicy(max_attempts=2)).stop_deployment("dep-1")

    assert [attempt.deployment_id for attempt in attempts] == ["dep-1"]
