"""The bounded batch: one outcome per id, bounded load, fleet-wide signals, time, cancellation."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections.abc import AsyncIterator, Iterable, Iterator

import anyio
import httpx
import pytest
import respx

from hiveon_async import (
    APITimeoutError,
    AsyncVendorClient,
    AuthenticationError,
    BatchFailedError,
    BatchProgress,
    HiveonError,
    InvalidRequestError,
    NotFoundError,
    OutcomeStatus,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    StopOutcome,
)
from hiveon_async._config import DEFAULT_MAX_ATTEMPTS
from hiveon_async.testing import FakeVendorAPI, Fault, FaultPlan
from tests.doubles import ANY_STOP, STOP_PATH, fake_client, sent_ids

pytestmark = pytest.mark.anyio

STOPPED, FAILED, SKIPPED = OutcomeStatus.STOPPED, OutcomeStatus.FAILED, OutcomeStatus.SKIPPED
#: Latency that makes every answer yield to other tasks, as a socket read would, so that
#: a batch's requests overlap at the fake.
BRIEF_LATENCY = 0.0001


def ids(n: int, prefix: str = "dep") -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


def always_500(fake: FakeVendorAPI, dead: Iterable[str], attempts: int) -> None:
    """Script 500 for each of ``attempts`` requests for each id in ``dead``."""
    for deployment_id in dead:
        fake.script(deployment_id, [500] * attempts)


def stalls(fake: FakeVendorAPI, wanted: Iterable[str], seconds: float) -> None:
    """Script each id in ``wanted`` to go unanswered for ``seconds`` (its first request)."""
    for deployment_id in wanted:
        fake.script(deployment_id, [Fault.stall(seconds=seconds)])


async def agen(items: list[str]) -> AsyncIterator[str]:
    for item in items:
        await anyio.lowlevel.checkpoint()
        yield item


async def test_report_has_one_outcome_per_unique_id_in_input_order() -> None:
    """Every unique id ends with exactly one outcome, in first-seen input order."""
    fake = FakeVendorAPI(faults=FaultPlan(latency=0.001))
    wanted = ids(50)
    async with fake_client(fake) as client:
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
    fake = FakeVendorAPI()
    async with fake_client(fake) as client:
        report = await client.stop_deployments(["a", "b", "a", "c", "b", "a"])
    assert [outcome.deployment_id for outcome in report] == ["a", "b", "c"]
    assert report.duplicates == 3
    assert fake.attempts == {"a": 1, "b": 1, "c": 1}


async def test_invalid_ids_fail_without_io() -> None:
    """An invalid id is a failed outcome with InvalidRequestError, and nothing is sent for it."""
    fake = FakeVendorAPI()
    async with fake_client(fake) as client:
        report = await client.stop_deployments(["good", "../admin", "", 5, "also-good"])  # type: ignore[list-item]
    assert [outcome.status for outcome in report] == [STOPPED, FAILED, FAILED, FAILED, STOPPED]
    assert all(isinstance(outcome.error, InvalidRequestError) for outcome in report.failed)
    assert report["5"].attempts == 0
    assert sorted(sent_ids(fake)) == ["also-good", "good"]  # type: ignore[type-var]


async def test_one_failure_neither_raises_nor_cancels_siblings() -> None:
    """A 404 for one id leaves the others stopped and the batch returns normally."""
    fake = FakeVendorAPI(faults=FaultPlan(latency=0.002))
    fake.script("dep-3", [404])
    async with fake_client(fake) as client:
        report = await client.stop_deployments(ids(20), concurrency=4)
    assert [outcome.deployment_id for outcome in report.failed] == ["dep-3"]
    assert isinstance(report["dep-3"].error, NotFoundError)
    assert len(report.stopped) == 19
    assert not report.ok


@pytest.mark.parametrize("concurrency", [1, 4, 16])
async def test_requests_in_flight_never_exceed_concurrency(concurrency: int) -> None:
    """At most `concurrency` requests are in flight at the server, and the bound is used."""
    fake = FakeVendorAPI(faults=FaultPlan(latency=0.002))
    async with fake_client(fake) as client:
        report = await client.stop_deployments(ids(100), concurrency=concurrency)
    assert report.ok
    assert min(concurrency, 2) <= fake.peak_in_flight <= concurrency


async def test_a_batch_may_ask_for_more_than_max_concurrency() -> None:
    """The client's slots grow for the batch, to its concurrency, and shrink back after."""
    fake = FakeVendorAPI(faults=FaultPlan(latency=0.005))
    async with fake_client(fake, max_concurrency=4) as client:
        report = await client.stop_deployments(ids(200), concurrency=16)
        assert report.ok
        assert 4 < fake.peak_in_flight <= 16
        fake.peak_in_flight = 0

        async with anyio.create_task_group() as tg:  # single calls: the bound is 4 again
            for deployment_id in ids(20, prefix="single"):
                tg.start_soon(client.stop_deployment, deployment_id)
    assert fake.peak_in_flight <= 4


async def test_default_concurrency_is_the_clients_max_concurrency() -> None:
    """Without `concurrency`, a batch runs up to the client's max_concurrency at once."""
    fake = FakeVendorAPI(faults=FaultPlan(latency=0.002))
    async with fake_client(fake, max_concurrency=6) as client:
        await client.stop_deployments(ids(60))
    assert fake.peak_in_flight <= 6


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

    fake = FakeVendorAPI(faults=FaultPlan(latency=0.001))
    async with fake_client(fake) as client:
        report = await client.stop_deployments(source(), concurrency=4, on_outcome=on_outcome)
    assert len(report) == 1000
    assert pulled_at_first_outcome[0] <= 5


async def test_async_generator_of_ten_thousand_ids() -> None:
    """A 10,000-id async generator: all stopped, in order, duplicates dropped, bound kept."""
    fake = FakeVendorAPI(faults=FaultPlan(latency=BRIEF_LATENCY), record=False)
    wanted = ids(10_000)
    async with fake_client(fake) as client:
        report = await client.stop_deployments(agen([*wanted, "dep-0", "dep-1"]), concurrency=32)
    assert report.ok
    assert len(report) == 10_000
    assert report.duplicates == 2
    assert [outcome.deployment_id for outcome in report] == wanted
    assert fake.peak_in_flight <= 32
    assert fake.request_count == 10_000


async def test_unauthorized_aborts_the_batch() -> None:
    """A 401 stops all sending; the rest are skipped, each carrying the cause."""
    fake = FakeVendorAPI(faults=FaultPlan(latency=0.002))
    async with fake_client(fake, api_key="not-a-key-the-fake-knows") as client:
        report = await client.stop_deployments(ids(200), concurrency=4)
    assert len(report) == 200
    assert fake.status_counts == {401: fake.request_count}
    assert fake.request_count <= 4 + 1
    assert {outcome.status for outcome in report.failed} == {FAILED}
    assert len(report.failed) == fake.request_count
    assert len(report.skipped) == 200 - fake.request_count
    assert all(isinstance(outcome.error, AuthenticationError) for outcome in report)
    assert all(outcome.attempts == 0 for outcome in report.skipped)


@pytest.mark.slow
async def test_a_503_retry_after_pauses_every_worker() -> None:
    """A 503 with Retry-After (overloaded) holds all the client's sending, not just that worker."""
    fake = FakeVendorAPI(faults=FaultPlan(latency=0.001))
    fake.script("dep-4", [Fault.status(503, retry_after=1)])  # in the first wave of 8
    async with fake_client(fake, retry=RetryPolicy(adaptive=False)) as client:
        report = await client.stop_deployments(ids(40), concurrency=8)
    assert report.ok
    assert report.paused >= 0.99
    [paused_from] = [request.arrived_at for request in fake.requests if request.answer == 503]
    later = sorted(
        request.arrived_at for request in fake.requests if request.arrived_at > paused_from
    )
    # Requests already past the gate before the 503 came back still arrive (on a loaded
    # machine, some milliseconds later); then nothing, until the hold ends.
    gaps = [(b - a, i) for i, (a, b) in enumerate(itertools.pairwise([paused_from, *later]))]
    gap, sent_before_hold = max(gaps)
    assert gap >= 0.9, later
    assert sent_before_hold <= 2 * 8, later
    assert later[sent_before_hold] >= paused_from + 0.99, later
    assert len(later) - sent_before_hold >= 40 - 8 - 2 * 8, later


@pytest.mark.slow
async def test_a_429_retry_after_holds_only_the_refused_call() -> None:
    """A lone 429's Retry-After delays that call's retry; the other workers go on meanwhile."""
    fake = FakeVendorAPI(faults=FaultPlan(latency=0.001))
    fake.script("dep-4", [Fault.status(429, retry_after=1)])
    async with fake_client(fake, retry=RetryPolicy(adaptive=False)) as client:
        report = await client.stop_deployments(ids(40), concurrency=8)
    assert report.ok
    assert report.throttled == 1
    assert report.paused == 0
    [refused_at] = [request.arrived_at for request in fake.requests if request.answer == 429]
    [retried_at] = [
        request.arrived_at
        for request in fake.requests
        if request.deployment_id == "dep-4" and request.answer == 200
    ]
    assert retried_at >= refused_at + 0.99
    others = [r.arrived_at for r in fake.requests if r.deployment_id != "dep-4"]
    assert sum(refused_at < t < refused_at + 0.9 for t in others) > 0


async def test_maybe_applied_marks_a_404_after_a_timeout() -> None:
    """A 404 that follows a timed-out attempt is recognisable: maybe_applied is set."""
    fake = FakeVendorAPI()
    fake.script("dep-1", ["stall", 404])  # the first answer outlasts the read timeout
    async with fake_client(fake, timeout=0.2) as client:
        report = await client.stop_deployments(["dep-1"])
    outcome = report["dep-1"]
    assert outcome.status is FAILED
    assert isinstance(outcome.error, NotFoundError)
    assert outcome.maybe_applied
    assert outcome.error.maybe_applied
    assert outcome.attempts == 2


async def test_maybe_applied_is_false_when_nothing_reached_the_server(
    vendor: respx.Router, client: AsyncVendorClient
) -> None:
    """Connection refused then 404: no attempt reached the server, so maybe_applied is False."""
    route = vendor.post(STOP_PATH.format("dep-1")).mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(404)]
    )
    report = await client.stop_deployments(["dep-1"])
    assert route.call_count == 2
    assert not report["dep-1"].maybe_applied


async def test_deadline_cancels_in_flight_and_skips_the_rest() -> None:
    """At the deadline no request starts, in-flight calls are cut short and the rest skipped."""
    fake = FakeVendorAPI()
    stalls(fake, ids(100)[1:], seconds=30)
    async with fake_client(fake) as client:
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
    assert fake.request_count == 1 + len(cut)


async def test_cancelling_the_caller_is_prompt_and_leaves_the_client_usable() -> None:
    """Cancelling a batch is prompt, raises no ExceptionGroup, and the next stop works."""
    fake = FakeVendorAPI()
    stalls(fake, ids(100), seconds=5.0)  # "after" is answered at once
    async with fake_client(fake) as client:
        started = anyio.current_time()
        with anyio.move_on_after(0.05):
            await client.stop_deployments(ids(100), concurrency=8)
        assert anyio.current_time() - started < 1.0
        with anyio.fail_after(2):
            assert (await client.stop_deployment("after")).deployment_id == "after"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_cancelling_the_asyncio_task_raises_cancelled_error() -> None:
    """Cancelling the asyncio task of a batch raises CancelledError, not an ExceptionGroup."""
    fake = FakeVendorAPI()
    stalls(fake, ids(50), seconds=5.0)
    async with fake_client(fake) as client:
        task = asyncio.ensure_future(client.stop_deployments(ids(50), concurrency=8))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_breaking_out_of_the_stream_stops_sending() -> None:
    """Leaving the stream early cancels the batch: no more requests go out."""
    fake = FakeVendorAPI(faults=FaultPlan(latency=0.005))
    async with fake_client(fake) as client:
        async with client.stream_stop_deployments(ids(1000), concurrency=4) as outcomes:
            async for _ in outcomes:
                break
        sent = fake.request_count
        await anyio.sleep(0.05)
    assert sent <= 4 * 3
    assert fake.request_count == sent


async def test_stream_yields_every_outcome_as_it_completes() -> None:
    """The stream yields one outcome per id, fastest first, with live progress."""
    fake = FakeVendorAPI()
    fake.script("slow", [Fault.trickle(interval=0.002)])  # 25 bytes: 50 ms
    async with (
        fake_client(fake) as client,
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
    fake = FakeVendorAPI(faults=FaultPlan(seed=4, rates={500: 0.3}, latency=BRIEF_LATENCY))
    always_500(fake, ["dep-1"], attempts=DEFAULT_MAX_ATTEMPTS)
    async with fake_client(fake) as client:
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

    async with fake_client(FakeVendorAPI()) as client:
        with pytest.raises(KeyError):
            await client.stop_deployments(ids(10), on_outcome=on_outcome)


async def test_an_exception_in_the_stream_body_propagates_as_itself() -> None:
    """An exception raised while consuming the stream reaches the caller unwrapped."""
    async with fake_client(FakeVendorAPI()) as client:
        with pytest.raises(ValueError, match="stop here"):  # noqa: PT012 - the body is the point
            async with client.stream_stop_deployments(ids(100), concurrency=4) as outcomes:
                async for _ in outcomes:
                    raise ValueError("stop here")


async def test_raise_for_failures() -> None:
    """raise_for_failures is silent when all stopped and raises BatchFailedError otherwise."""
    fake = FakeVendorAPI(faults=FaultPlan(rates={500: 1.0}))
    async with fake_client(fake, retry=RetryPolicy(max_attempts=1)) as client:
        report = await client.stop_deployments(["x", "y"])
    with pytest.raises(BatchFailedError, match="2 of 2") as raised:
        report.raise_for_failures()
    assert raised.value.report is report
    assert isinstance(report["x"].error, ServerError)
    async with fake_client(FakeVendorAPI()) as client:
        (await client.stop_deployments(["x"])).raise_for_failures()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"concurrency": 0},
        {"concurrency": True},
        {"deadline": 0},
        {"deadline": float("nan")},
    ],
)
async def test_bad_batch_arguments_raise_before_io(kwargs: dict[str, object]) -> None:
    """Bad concurrency or deadline is an InvalidRequestError and nothing is sent."""
    fake = FakeVendorAPI()
    async with fake_client(fake, max_concurrency=32) as client:
        with pytest.raises(InvalidRequestError):
            await client.stop_deployments(["a"], **kwargs)  # type: ignore[arg-type]
    assert fake.requests == []


@pytest.mark.parametrize("bad", ["dep-1", b"dep-1", 42])
async def test_ids_must_be_an_iterable_of_ids(bad: object) -> None:
    """A single string, bytes or a non-iterable is refused before any I/O."""
    async with fake_client(FakeVendorAPI()) as client:
        with pytest.raises(InvalidRequestError, match="iterable"):
            await client.stop_deployments(bad)  # type: ignore[arg-type]


class TestRetryBudget:
    """The client-wide retry budget: bounded retries against a dead backend, none starved."""

    async def test_dead_backend_sees_few_retries(self) -> None:
        """1,000 ids against all-500 with max_attempts=4: at most 1,300 requests, not 4,000."""
        fake = FakeVendorAPI(
            faults=FaultPlan(seed=1, rates={500: 1.0}, latency=BRIEF_LATENCY), record=False
        )
        async with fake_client(
            fake, retry=RetryPolicy(max_attempts=4, initial_delay=0.0)
        ) as client:
            report = await client.stop_deployments(ids(1000))
        assert len(report.failed) == 1000
        assert fake.request_count <= 1300

    async def test_random_failures_all_end_stopped(self) -> None:
        """1,000 ids with 20% random 500s and max_attempts=8: all end stopped."""
        fake = FakeVendorAPI(
            faults=FaultPlan(seed=2, rates={500: 0.2}, latency=BRIEF_LATENCY), record=False
        )
        async with fake_client(
            fake, retry=RetryPolicy(max_attempts=8, initial_delay=0.0)
        ) as client:
            report = await client.stop_deployments(ids(1000))
        assert len(report.stopped) == 1000

    async def test_dead_ids_do_not_starve_the_healthy_fleet(self) -> None:
        """20 always-failing ids among 1,000 with 20% random 500s: the 980 others all stop."""
        dead = frozenset(ids(20))  # first in line: the worst case for a draining budget
        fake = FakeVendorAPI(
            faults=FaultPlan(seed=3, rates={500: 0.2}, latency=BRIEF_LATENCY), record=False
        )
        always_500(fake, dead, attempts=8)
        async with fake_client(
            fake, retry=RetryPolicy(max_attempts=8, initial_delay=0.0)
        ) as client:
            report = await client.stop_deployments(ids(1000))
        assert {outcome.deployment_id for outcome in report.failed} == dead
        assert len(report.stopped) == 980


class ServerRateLimit:
    """A server-side token bucket: `per_second` with `burst`, answering 429 with Retry-After.

    No test here uses it: the tests meet the same bucket in ``FakeVendorAPI(rate_limit=...)``.
    It stays, with ``ids``, because ``tests/benchmarks/budget.py`` imports both from here.
    """

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
            return httpx.Response(200, json={"deployment_id": deployment_id})
        wait = (1 - self.tokens) / self.per_second
        return httpx.Response(429, headers={"Retry-After": str(math.ceil(wait))})


@pytest.mark.slow
async def test_pacing_recovers_from_a_server_rate_limit() -> None:
    """Against 100 req/s (burst 10), 600 ids at concurrency 32 all stop with <= 15% answered 429."""
    fake = FakeVendorAPI(rate_limit=(100, 10), faults=FaultPlan(latency=0.005), record=False)
    retry = RetryPolicy(max_attempts=8)
    async with fake_client(fake, retry=retry, max_concurrency=32) as client:
        report = await client.stop_deployments(ids(600), concurrency=32)
    assert len(report.stopped) == 600
    assert fake.status_counts[429] <= 0.15 * fake.request_count


async def test_progress_counts_requests_and_429s_as_they_happen() -> None:
    """BatchProgress counts every request sent and every 429 answered, live."""
    fake = FakeVendorAPI(faults=FaultPlan(latency=BRIEF_LATENCY))
    for deployment_id in ("dep-1", "dep-2"):
        fake.script(deployment_id, [Fault.status(429, retry_after=0)])
    progress = BatchProgress()
    async with fake_client(fake) as client:
        await client.stop_deployments(ids(10), progress=progress)
    assert progress.requests == fake.request_count == 12
    assert progress.throttled == 2


async def test_cancelling_waits_for_no_slow_async_input() -> None:
    """Leaving a batch whose async input is slow to produce is prompt, not held by the input."""

    async def slow_ids() -> AsyncIterator[str]:
        yield "dep-0"
        await anyio.sleep(30)
        yield "dep-1"

    async with fake_client(FakeVendorAPI()) as client:
        with anyio.fail_after(5):
            async with client.stream_stop_deployments(slow_ids()) as outcomes:
                async for outcome in outcomes:
                    assert outcome.deployment_id == "dep-0"
                    break


async def test_a_closed_client_refuses_a_batch() -> None:
    """A batch on a closed client raises RuntimeError at once (not an ExceptionGroup)."""
    client = fake_client(FakeVendorAPI())
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await client.stop_deployments(["dep-1"])


async def test_a_foreign_exception_fails_only_its_id_and_logs_no_secret(
    vendor: respx.Router,
    client: AsyncVendorClient,
    api_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception that is not ours fails that id only; its log record hides the key."""

    def answer(request: httpx.Request, deployment_id: str) -> httpx.Response:
        if deployment_id == "dep-1":
            raise RuntimeError(f"transport broke while sending X-API-Key: {api_key}")
        return httpx.Response(200, json={"deployment_id": deployment_id})

    vendor.post(path__regex=ANY_STOP).mock(side_effect=answer)
    caplog.set_level(logging.DEBUG, logger="hiveon_async")
    report = await client.stop_deployments(ids(3))
    assert [outcome.status for outcome in report] == [STOPPED, FAILED, STOPPED]
    assert type(report["dep-1"].error) is HiveonError
    assert "unexpected error" in caplog.text
    assert api_key not in caplog.text


# -- a failing input, a cancelled stream: no account of what was done is lost ------------


class InputBroke(Exception):
    """What the caller's id source raises midway."""


def breaking_ids(good: int) -> Iterator[str]:
    """``good`` ids, then the source raises."""
    yield from ids(good)
    raise InputBroke("the file went away")


async def breaking_async_ids(good: int) -> AsyncIterator[str]:
    """``good`` ids, asynchronously, then the source raises."""
    for item in ids(good):
        await anyio.lowlevel.checkpoint()
        yield item
    raise InputBroke("the socket went away")


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_an_input_that_raises_midway_keeps_the_report_of_what_was_sent(kind: str) -> None:
    """Each id read before the failure gets its outcome via on_outcome and on the error's report."""
    fake = FakeVendorAPI(faults=FaultPlan(latency=BRIEF_LATENCY))
    given: list[str] = []
    source = breaking_ids(7) if kind == "sync" else breaking_async_ids(7)
    async with fake_client(fake) as client:
        with pytest.raises(BatchFailedError) as caught:
            await client.stop_deployments(
                source, concurrency=3, on_outcome=lambda o: given.append(o.deployment_id)
            )
    report = caught.value.report
    assert isinstance(caught.value.__cause__, InputBroke)
    assert "InputBroke" in str(caught.value)
    assert [outcome.deployment_id for outcome in report] == ids(7)
    assert all(outcome.ok for outcome in report)
    assert sorted(given) == sorted(ids(7))
    assert sorted(fake.stopped) == sorted(ids(7))


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_stream_whose_input_raises_yields_every_outcome_then_the_error(kind: str) -> None:
    """The stream hands over every outcome of the ids read, then raises the input's exception."""
    fake = FakeVendorAPI(faults=FaultPlan(latency=BRIEF_LATENCY))
    source = breaking_ids(9) if kind == "sync" else breaking_async_ids(9)
    seen: list[str] = []
    async with fake_client(fake) as client:

        async def read_all() -> None:
            async with client.stream_stop_deployments(source, concurrency=4) as outcomes:
                async for outcome in outcomes:
                    seen.append(outcome.deployment_id)

        with pytest.raises(InputBroke):
            await read_all()
    assert sorted(seen) == sorted(ids(9))


async def test_a_cancelled_stream_counts_every_completed_outcome() -> None:
    """Outcomes done but not handed over when the stream is cancelled still reach on_outcome.

    The reader stops reading (as the command line does on Ctrl-C, its cancel
    scope around the stream): workers whose outcome waits for a reader are
    cancelled mid-hand-over. Each such outcome is complete, so on_outcome and
    the progress counters still get it.
    """
    fake = FakeVendorAPI()
    given: list[str] = []
    progress = BatchProgress()
    async with fake_client(fake) as client:
        with anyio.CancelScope() as scope:
            async with client.stream_stop_deployments(
                ids(20),
                concurrency=4,
                on_outcome=lambda o: given.append(o.deployment_id),
                progress=progress,
            ) as outcomes:
                await outcomes.__anext__()  # one read; the rest complete and queue up
                # The buffer (4) full, and 4 workers waiting to hand theirs over.
                while fake.request_count < 4 + 4 + 1:  # noqa: ASYNC110 - a counter, no event
                    await anyio.sleep(0.001)
                scope.cancel()
                await anyio.sleep_forever()
    assert fake.request_count == 9
    assert sorted(given) == sorted(set(sent_ids(fake)))  # type: ignore[type-var]
    assert progress.done == len(given) == 9


# -- failed outcomes are cheap ----------------------------------------------------------


async def test_a_failed_outcome_keeps_no_frames_and_costs_under_2_kib() -> None:
    """A 404 outcome keeps type, message, status, request id and response, not the frames."""
    import gc
    import tracemalloc

    def not_found(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": "no"}, headers={"X-Request-Id": "req-1"})

    n = 500
    async with AsyncVendorClient(
        api_key="key-123456",
        base_url="https://api.hiveon.test",
        metadata={"CLORE_API_KEY": "clore-123456"},
        retry=RetryPolicy(max_attempts=1),
        transport=httpx.MockTransport(not_found),
    ) as client:
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            report = await client.stop_deployments(ids(n))
            gc.collect()
            cost = (tracemalloc.get_traced_memory()[0] - before) / n
        finally:
            tracemalloc.stop()
    error = report["dep-0"].error
    assert isinstance(error, NotFoundError)
    assert error.__traceback__ is None
    assert error.status_code == 404
    assert error.request_id == "req-1"
    assert error.response.status_code == 404
    assert error.response.json() == {"error": "no"}
    assert error.response.request.headers["x-api-key"] == "[redacted]"
    assert cost < 2048, f"{cost:.0f} bytes per failed outcome"


async def test_a_used_up_quota_stops_the_batch_and_says_until_when(
    vendor: respx.Router, client: AsyncVendorClient
) -> None:
    """A 429 with Retry-After beyond max_retry_after: nothing more is sent, the rest skipped.

    Before, every id went on knocking (one refused request each) for as long as the
    quota stayed gone; a server counting refusals, or banning keys that keep knocking,
    saw the worst client possible.
    """
    route = vendor.post(path__regex=ANY_STOP).respond(429, headers={"Retry-After": "3600"})
    before = time.time()

    report = await client.stop_deployments(ids(200), concurrency=8)

    assert len(report) == 200
    assert route.call_count <= 2 * 8
    assert len(report.failed) == route.call_count  # those already sent when it came
    assert len(report.skipped) == 200 - route.call_count
    assert all(isinstance(outcome.error, RateLimitedError) for outcome in report)
    assert report.quota_resets_at is not None
    assert before + 3600 <= report.quota_resets_at <= time.time() + 3600
    assert report.throttled == route.call_count


@pytest.mark.parametrize(
    "headers",
    [
        {"X-RateLimit-Limit": "3600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "3600"},
        {"RateLimit-Policy": '"hour";q=3600;w=3600', "RateLimit": '"hour";r=0;t=3600'},
    ],
    ids=["x-ratelimit", "ietf"],
)
async def test_nothing_remaining_until_a_far_reset_stops_the_batch_too(
    vendor: respx.Router, client: AsyncVendorClient, headers: dict[str, str]
) -> None:
    """No Retry-After, but Remaining 0 and a reset an hour off: the same as Retry-After: 3600.

    Before, the gate held every call for the hour (the credit was spent until the
    reset) and the batch did not return.
    """
    route = vendor.post(path__regex=ANY_STOP).respond(429, headers=headers)

    with anyio.fail_after(10):
        report = await client.stop_deployments(ids(200), concurrency=8)

    assert route.call_count <= 2 * 8
    assert len(report.skipped) == 200 - route.call_count
    error = report["dep-0"].error
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 3600
    assert report.quota_resets_at is not None


async def test_a_retry_after_within_the_cap_does_not_stop_the_batch(
    vendor: respx.Router, client: AsyncVendorClient
) -> None:
    """A Retry-After the client may wait is waited (instantly in tests): every id is stopped."""
    answers = [httpx.Response(429, headers={"Retry-After": "30"})] + [
        httpx.Response(200, json={"deployment_id": f"dep-{n}"}) for n in range(1, 6)
    ]

    def answer(request: httpx.Request, deployment_id: str) -> httpx.Response:
        if deployment_id == "dep-0" and answers[0].status_code == 429:
            return answers.pop(0)
        return httpx.Response(200, json={"deployment_id": deployment_id})

    vendor.post(path__regex=ANY_STOP).mock(side_effect=answer)

    report = await client.stop_deployments(ids(6))

    assert report.ok
    assert report.quota_resets_at is None
