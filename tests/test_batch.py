"""The bounded batch: one outcome per id, bounded load, fleet-wide signals, time, cancellation."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import pytest

from hiveon_async import (
    APITimeoutError,
    AuthenticationError,
    BatchFailedError,
    BatchProgress,
    HiveonError,
    InvalidRequestError,
    NotFoundError,
    OutcomeStatus,
    RetryPolicy,
    ServerError,
    StopOutcome,
)

from ._mock_vendor import MockVendor, flaky, ok

pytestmark = pytest.mark.anyio

#: MockVendor's client key (built at run time so that no traceback's source line shows it).
API_KEY = "-".join(["test", "api", "key"])

STOPPED, FAILED, SKIPPED = OutcomeStatus.STOPPED, OutcomeStatus.FAILED, OutcomeStatus.SKIPPED


def ids(n: int, prefix: str = "dep") -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


async def agen(items: list[str]) -> AsyncIterator[str]:
    for item in items:
        await anyio.lowlevel.checkpoint()
        yield item


async def test_report_has_one_outcome_per_unique_id_in_input_order() -> None:
    """Every unique id ends with exactly one outcome, in first-seen input order."""
    vendor = MockVendor(delay=0.001)
    wanted = ids(50)
    async with vendor.client() as client:
        report = await client.stop_deployments(reversed(wanted), concurrency=8)
    assert [outcome.deployment_id for outcome in report] == list(reversed(wanted))
    assert len(report) == 50
    assert report.ok
    assert all(outcome.status is STOPPED and outcome.attempts == 1 for outcome in report)
    assert report["dep-7"].result is not None
    assert report["dep-7"].result.deployment_id == "dep-7"
    assert "dep-7" in report
    assert "nope" not in report


async def test_duplicates_are_sent_once_and_counted() -> None:
    """A repeated id is stopped once and counted in report.duplicates."""
    vendor = MockVendor()
    async with vendor.client() as client:
        report = await client.stop_deployments(["a", "b", "a", "c", "b", "a"])
    assert [outcome.deployment_id for outcome in report] == ["a", "b", "c"]
    assert report.duplicates == 3
    assert vendor.per_id == {"a": 1, "b": 1, "c": 1}


async def test_invalid_ids_fail_without_io() -> None:
    """An invalid id is a failed outcome with InvalidRequestError, and nothing is sent for it."""
    vendor = MockVendor()
    async with vendor.client() as client:
        report = await client.stop_deployments(["good", "../admin", "", 5, "also-good"])  # type: ignore[list-item]
    assert [outcome.status for outcome in report] == [STOPPED, FAILED, FAILED, FAILED, STOPPED]
    assert all(isinstance(outcome.error, InvalidRequestError) for outcome in report.failed)
    assert report["5"].attempts == 0
    assert sorted(vendor.requests) == ["also-good", "good"]


async def test_one_failure_neither_raises_nor_cancels_siblings() -> None:
    """A 404 for one id leaves the others stopped and the batch returns normally."""
    vendor = MockVendor(
        lambda deployment_id, attempt: (
            httpx.Response(404) if deployment_id == "dep-3" else ok(deployment_id)
        ),
        delay=0.002,
    )
    async with vendor.client() as client:
        report = await client.stop_deployments(ids(20), concurrency=4)
    assert [outcome.deployment_id for outcome in report.failed] == ["dep-3"]
    assert isinstance(report["dep-3"].error, NotFoundError)
    assert len(report.stopped) == 19
    assert not report.ok


@pytest.mark.parametrize("concurrency", [1, 4, 16])
async def test_requests_in_flight_never_exceed_concurrency(concurrency: int) -> None:
    """At most `concurrency` requests are in flight at the server, and the bound is used."""
    vendor = MockVendor(delay=0.002)
    async with vendor.client() as client:
        report = await client.stop_deployments(ids(100), concurrency=concurrency)
    assert report.ok
    assert min(concurrency, 2) <= vendor.peak <= concurrency


async def test_default_concurrency_is_the_clients_max_concurrency() -> None:
    """Without `concurrency`, a batch runs up to the client's max_concurrency at once."""
    vendor = MockVendor(delay=0.002)
    async with vendor.client(max_concurrency=6) as client:
        await client.stop_deployments(ids(60))
    assert vendor.peak <= 6


async def test_ids_are_pulled_lazily() -> None:
    """The input is consumed as workers free up, never materialised up front."""
    pulled = 0
    pulled_at_first_outcome: list[int] = []

    def source() -> Iterator[str]:
        nonlocal pulled
        for deployment_id in ids(1000):
            pulled += 1
            yield deployment_id

    def on_outcome(outcome: StopOutcome) -> None:
        if not pulled_at_first_outcome:
            pulled_at_first_outcome.append(pulled)

    vendor = MockVendor(delay=0.001)
    async with vendor.client() as client:
        report = await client.stop_deployments(source(), concurrency=4, on_outcome=on_outcome)
    assert len(report) == 1000
    assert pulled_at_first_outcome[0] <= 5


async def test_async_generator_of_ten_thousand_ids() -> None:
    """A 10,000-id async generator: all stopped, in order, duplicates dropped, bound kept."""
    vendor = MockVendor()
    wanted = ids(10_000)
    async with vendor.client() as client:
        report = await client.stop_deployments(agen([*wanted, "dep-0", "dep-1"]), concurrency=32)
    assert report.ok
    assert len(report) == 10_000
    assert report.duplicates == 2
    assert [outcome.deployment_id for outcome in report] == wanted
    assert vendor.peak <= 32
    assert len(vendor.requests) == 10_000


async def test_unauthorized_aborts_the_batch() -> None:
    """A 401 stops all sending; the rest are skipped, each carrying the cause."""
    vendor = MockVendor(lambda deployment_id, attempt: httpx.Response(401), delay=0.002)
    async with vendor.client() as client:
        report = await client.stop_deployments(ids(200), concurrency=4)
    assert len(report) == 200
    assert len(vendor.requests) <= 4 + 1
    assert {outcome.status for outcome in report.failed} == {FAILED}
    assert len(report.failed) == len(vendor.requests)
    assert len(report.skipped) == 200 - len(vendor.requests)
    assert all(isinstance(outcome.error, AuthenticationError) for outcome in report)
    assert all(outcome.attempts == 0 for outcome in report.skipped)


async def test_retry_after_pauses_every_worker() -> None:
    """A 429 with Retry-After holds all of the client's sending, not just the worker that got it."""
    arrivals: list[float] = []
    answered_429: list[float] = []

    def answer(deployment_id: str, attempt: int) -> httpx.Response:
        now = anyio.current_time()
        arrivals.append(now)
        if not answered_429 and len(arrivals) == 5:
            answered_429.append(now)
            return httpx.Response(429, headers={"Retry-After": "0.3"})
        return ok(deployment_id)

    vendor = MockVendor(answer, delay=0.001)
    async with vendor.client(retry=RetryPolicy(adaptive=False)) as client:
        report = await client.stop_deployments(ids(40), concurrency=8)
    assert report.ok
    paused_from = answered_429[0]
    later = [t for t in arrivals if t > paused_from + 0.01]
    assert later
    assert min(later) >= paused_from + 0.29


async def test_maybe_applied_marks_a_404_after_a_timeout() -> None:
    """A 404 that follows a timed-out attempt is recognisable: maybe_applied is set."""

    def answer(deployment_id: str, attempt: int) -> httpx.Response:
        if attempt == 1:
            raise httpx.ReadTimeout("timed out")
        return httpx.Response(404, json={"error": "no such deployment"})

    vendor = MockVendor(answer)
    async with vendor.client() as client:
        report = await client.stop_deployments(["dep-1"])
    outcome = report["dep-1"]
    assert outcome.status is FAILED
    assert isinstance(outcome.error, NotFoundError)
    assert outcome.maybe_applied
    assert outcome.error.maybe_applied
    assert outcome.attempts == 2


async def test_maybe_applied_is_false_when_nothing_reached_the_server() -> None:
    """Connection refused then 404: no attempt reached the server, so maybe_applied is False."""

    def answer(deployment_id: str, attempt: int) -> httpx.Response:
        if attempt == 1:
            raise httpx.ConnectError("refused")
        return httpx.Response(404)

    vendor = MockVendor(answer)
    async with vendor.client() as client:
        report = await client.stop_deployments(["dep-1"])
    assert not report["dep-1"].maybe_applied


async def test_deadline_cancels_in_flight_and_skips_the_rest() -> None:
    """At the deadline no request starts, in-flight calls are cut short and the rest skipped."""

    async def answer(deployment_id: str, attempt: int) -> httpx.Response:
        if deployment_id != "dep-0":
            await anyio.sleep(30)
        return ok(deployment_id)

    vendor = MockVendor(answer)
    async with vendor.client() as client:
        with anyio.fail_after(10):
            report = await client.stop_deployments(ids(100), concurrency=4, deadline=0.3)
    assert len(report) == 100
    assert report["dep-0"].status is STOPPED
    cut = report.failed
    assert len(cut) == 4
    assert all(
        isinstance(outcome.error, APITimeoutError) and outcome.maybe_applied for outcome in cut
    )
    assert len(report.skipped) == 100 - 1 - len(cut)
    assert all(isinstance(outcome.error, APITimeoutError) for outcome in report.skipped)
    assert len(vendor.requests) == 1 + len(cut)


async def test_cancelling_the_caller_is_prompt_and_leaves_the_client_usable() -> None:
    """Cancelling a batch is prompt, raises no ExceptionGroup, and the next stop works."""
    vendor = MockVendor(delay=5.0)
    async with vendor.client() as client:
        started = anyio.current_time()
        with anyio.move_on_after(0.05):
            await client.stop_deployments(ids(100), concurrency=8)
        assert anyio.current_time() - started < 1.0
        vendor.delay = 0.0
        with anyio.fail_after(2):
            assert (await client.stop_deployment("after")).deployment_id == "after"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_cancelling_the_asyncio_task_raises_cancelled_error() -> None:
    """Cancelling the asyncio task of a batch raises CancelledError, not an ExceptionGroup."""
    vendor = MockVendor(delay=5.0)
    async with vendor.client() as client:
        task = asyncio.ensure_future(client.stop_deployments(ids(50), concurrency=8))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_breaking_out_of_the_stream_stops_sending() -> None:
    """Leaving the stream early cancels the batch: no more requests go out."""
    vendor = MockVendor(delay=0.005)
    async with vendor.client() as client:
        async with client.stream_stop_deployments(ids(1000), concurrency=4) as outcomes:
            async for _ in outcomes:
                break
        sent = len(vendor.requests)
        await anyio.sleep(0.05)
    assert sent <= 4 * 3
    assert len(vendor.requests) == sent


async def test_stream_yields_every_outcome_as_it_completes() -> None:
    """The stream yields one outcome per id, fastest first, with live progress."""

    async def answer(deployment_id: str, attempt: int) -> httpx.Response:
        await anyio.sleep(0.05 if deployment_id == "slow" else 0.0)
        return ok(deployment_id)

    vendor = MockVendor(answer)
    async with (
        vendor.client() as client,
        client.stream_stop_deployments(["slow", "a", "b", "c"], concurrency=4) as outcomes,
    ):
        seen = [outcome.deployment_id async for outcome in outcomes]
        assert outcomes.progress.done == 4
    assert seen[-1] == "slow"
    assert sorted(seen) == ["a", "b", "c", "slow"]


async def test_on_outcome_and_progress_count_every_outcome() -> None:
    """on_outcome (sync or async) runs once per outcome; the counters agree with the report."""
    calls: list[str] = []

    async def on_outcome(outcome: StopOutcome) -> None:
        calls.append(outcome.deployment_id)

    progress = BatchProgress()
    vendor = MockVendor(flaky(0.3, seed=4, dead=frozenset({"dep-1"})))
    async with vendor.client() as client:
        report = await client.stop_deployments(
            [*ids(30), "../bad", "dep-2"], on_outcome=on_outcome, progress=progress
        )
    assert sorted(calls) == sorted(outcome.deployment_id for outcome in report)
    assert progress.done == len(report) == 31
    assert progress.stopped == len(report.stopped)
    assert progress.failed == len(report.failed) == 2
    assert progress.duplicates == 1
    assert progress.in_flight == 0
    assert progress.retries == sum(outcome.attempts - 1 for outcome in report if outcome.attempts)


async def test_an_exception_in_on_outcome_propagates_as_itself() -> None:
    """A caller's own exception leaves the batch unwrapped (no ExceptionGroup)."""

    def on_outcome(outcome: StopOutcome) -> None:
        raise KeyError(outcome.deployment_id)

    async with MockVendor().client() as client:
        with pytest.raises(KeyError):
            await client.stop_deployments(ids(10), on_outcome=on_outcome)


async def test_an_exception_in_the_stream_body_propagates_as_itself() -> None:
    """An exception raised while consuming the stream reaches the caller unwrapped."""
    async with MockVendor().client() as client:
        with pytest.raises(ValueError, match="stop here"):  # noqa: PT012 - the body is the point
            async with client.stream_stop_deployments(ids(100), concurrency=4) as outcomes:
                async for _ in outcomes:
                    raise ValueError("stop here")


async def test_raise_for_failures() -> None:
    """raise_for_failures is silent when all stopped and raises BatchFailedError otherwise."""
    vendor = MockVendor(flaky(1.0, seed=0))
    async with vendor.client(retry=RetryPolicy(max_attempts=1)) as client:
        report = await client.stop_deployments(["x", "y"])
    with pytest.raises(BatchFailedError, match="2 of 2") as raised:
        report.raise_for_failures()
    assert raised.value.report is report
    assert isinstance(report["x"].error, ServerError)
    async with MockVendor().client() as client:
        (await client.stop_deployments(["x"])).raise_for_failures()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"concurrency": 0},
        {"concurrency": 33},
        {"concurrency": True},
        {"deadline": 0},
        {"deadline": float("nan")},
    ],
)
async def test_bad_batch_arguments_raise_before_io(kwargs: dict[str, object]) -> None:
    """Bad concurrency or deadline is an InvalidRequestError and nothing is sent."""
    vendor = MockVendor()
    async with vendor.client(max_concurrency=32) as client:
        with pytest.raises(InvalidRequestError):
            await client.stop_deployments(["a"], **kwargs)  # type: ignore[arg-type]
    assert vendor.requests == []


@pytest.mark.parametrize("bad", ["dep-1", b"dep-1", 42])
async def test_ids_must_be_an_iterable_of_ids(bad: object) -> None:
    """A single string, bytes or a non-iterable is refused before any I/O."""
    async with MockVendor().client() as client:
        with pytest.raises(InvalidRequestError, match="iterable"):
            await client.stop_deployments(bad)  # type: ignore[arg-type]


class TestRetryBudget:
    """The client-wide retry budget: bounded retries against a dead backend, none starved."""

    async def test_dead_backend_sees_few_retries(self) -> None:
        """1,000 ids against all-500 with max_attempts=4: at most 1,300 requests, not 4,000."""
        vendor = MockVendor(flaky(1.0, seed=1))
        async with vendor.client(retry=RetryPolicy(max_attempts=4, initial_delay=0.0)) as client:
            report = await client.stop_deployments(ids(1000))
        assert len(report.failed) == 1000
        assert len(vendor.requests) <= 1300

    async def test_random_failures_all_end_stopped(self) -> None:
        """1,000 ids with 20% random 500s and max_attempts=8: all end stopped."""
        vendor = MockVendor(flaky(0.2, seed=2))
        async with vendor.client(retry=RetryPolicy(max_attempts=8, initial_delay=0.0)) as client:
            report = await client.stop_deployments(ids(1000))
        assert len(report.stopped) == 1000

    async def test_dead_ids_do_not_starve_the_healthy_fleet(self) -> None:
        """20 always-failing ids among 1,000 with 20% random 500s: the 980 others all stop."""
        dead = frozenset(ids(20))  # first in line: the worst case for a draining budget
        vendor = MockVendor(flaky(0.2, seed=3, dead=dead))
        async with vendor.client(retry=RetryPolicy(max_attempts=8, initial_delay=0.0)) as client:
            report = await client.stop_deployments(ids(1000))
        assert {outcome.deployment_id for outcome in report.failed} == dead
        assert len(report.stopped) == 980


class ServerRateLimit:
    """A server-side token bucket: `per_second` with `burst`, answering 429 with Retry-After."""

    def __init__(self, per_second: float, burst: int) -> None:
        self.per_second, self.burst = per_second, burst
        self.tokens = float(burst)
        self.last = time.monotonic()

    def answer(self, deployment_id: str, attempt: int) -> httpx.Response:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.per_second)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return ok(deployment_id)
        wait = (1 - self.tokens) / self.per_second
        return httpx.Response(429, headers={"Retry-After": str(math.ceil(wait))})


@pytest.mark.slow
async def test_pacing_recovers_from_a_server_rate_limit() -> None:
    """Against 100 req/s (burst 10), 600 ids at concurrency 32 all stop with <= 15% answered 429."""
    vendor = MockVendor(ServerRateLimit(100, 10).answer, delay=0.005)
    retry = RetryPolicy(max_attempts=8)
    async with vendor.client(retry=retry, max_concurrency=32) as client:
        report = await client.stop_deployments(ids(600), concurrency=32)
    assert len(report.stopped) == 600
    assert vendor.statuses[429] <= 0.15 * len(vendor.requests)


async def test_progress_counts_requests_and_429s_as_they_happen() -> None:
    """BatchProgress counts every request sent and every 429 answered, live."""

    def answer(deployment_id: str, attempt: int) -> httpx.Response:
        if attempt == 1 and deployment_id in {"dep-1", "dep-2"}:
            return httpx.Response(429, headers={"Retry-After": "0"})
        return ok(deployment_id)

    vendor = MockVendor(answer)
    progress = BatchProgress()
    async with vendor.client() as client:
        await client.stop_deployments(ids(10), progress=progress)
    assert progress.requests == len(vendor.requests) == 12
    assert progress.throttled == 2


async def test_cancelling_waits_for_no_slow_async_input() -> None:
    """Leaving a batch whose async input is slow to produce is prompt, not held by the input."""

    async def slow_ids() -> AsyncIterator[str]:
        yield "dep-0"
        await anyio.sleep(30)
        yield "dep-1"

    async with MockVendor().client() as client:
        with anyio.fail_after(5):
            async with client.stream_stop_deployments(slow_ids()) as outcomes:
                async for outcome in outcomes:
                    assert outcome.deployment_id == "dep-0"
                    break


async def test_a_closed_client_refuses_a_batch() -> None:
    """A batch on a closed client raises RuntimeError at once (not an ExceptionGroup)."""
    client = MockVendor().client()
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await client.stop_deployments(["dep-1"])


async def test_a_foreign_exception_fails_only_its_id_and_logs_no_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception that is not ours fails that id only; its log record hides the key."""

    def answer(deployment_id: str, attempt: int) -> httpx.Response:
        if deployment_id == "dep-1":
            raise RuntimeError(f"transport broke while sending X-API-Key: {API_KEY}")
        return ok(deployment_id)

    caplog.set_level(logging.DEBUG, logger="hiveon_async")
    async with MockVendor(answer).client() as client:
        report = await client.stop_deployments(ids(3))
    assert [outcome.status for outcome in report] == [STOPPED, FAILED, STOPPED]
    assert type(report["dep-1"].error) is HiveonError
    assert "unexpected error" in caplog.text
    assert API_KEY not in caplog.text
