"""The fault soak: many ids through ``stop_deployments`` against a faulty fake; every invariant.

Shared by the short soak in the normal run (``tests/test_soak.py``) and the long
one (``nox -s soak``, ``tests/soak/long_soak.py``). The invariants are checked
from both sides, the client's report and the fake's own counters:

- exactly one outcome per unique id (none lost, none twice), duplicates counted;
- each id's attempts as the client counted them are the requests the fake got for it
  (less only by attempts that failed on the way, such as a connect timeout);
- every id the fake stopped is reported ``stopped`` (or ``failed`` with
  ``maybe_applied``), and every id reported ``stopped`` was stopped at the fake;
- requests in flight at the fake never exceeded the batch's concurrency;
- the rate the fake saw never exceeded the client's ``RateLimit`` plus its burst;
- retries stayed within the retry budget;
- afterwards: nothing in flight, no connection open at the fake, no task left running.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any

import anyio
import attrs
import sniffio

from hiveon_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncVendorClient,
    BatchProgress,
    InvalidRequestError,
    OutcomeStatus,
    RateLimit,
    RetryPolicy,
    StopOutcome,
)
from hiveon_async.testing import FakeVendorAPI, Fault, FaultPlan
from tests.doubles import TrackingFake

__all__ = ["RUNNERS", "SoakFigures", "SoakSettings", "busiest_excess", "run_soak"]

#: How the client reaches the fake: its in-process transport, or a real socket through a pool.
RUNNERS = ("in-process", "httpcore", "aiohttp")

#: Seconds a request may take from the client's send to the fake's parse over a socket.
DELIVERY_ALLOWANCE = 0.1


@attrs.frozen(kw_only=True)
class SoakSettings:
    """One soak run: how many ids, which runner, the faults and the client's limits.

    The fault mix is the one the issue names: 10% 500, 2% 503 and 1% 429 (both
    with a fractional ``Retry-After``), 1% resets, 1% connections dropped
    without an answer (half of them after the fake stopped the deployment),
    0.5% stalls past the timeout, plus latency jitter.
    """

    ids: int
    runner: str = "in-process"
    seed: int = 20240607
    concurrency: int = 32
    per_second: float = 600.0
    burst: int = 16
    timeout: float = 0.25
    #: A stall outlasts the timeout, then the fake drops the connection (so it closes).
    stall: float = 0.4
    retry_after: str = "0.01"
    latency: float = 0.0002
    jitter: float = 0.002
    max_attempts: int = 4
    #: Every n-th input id repeats an earlier one (and must not be sent again).
    duplicate_every: int = 97
    #: Every n-th input id is invalid (and must fail without I/O).
    invalid_every: int = 499
    #: Sample RSS every this many outcomes.
    sample_every: int = 1000

    def rates(self) -> dict[Any, float]:
        """The fault plan's rates (a Fault key gives the stall its short duration)."""
        return {
            500: 0.10,
            503: 0.02,
            429: 0.01,
            "reset": 0.01,
            "drop": 0.005,
            # The nastiest drop: the fake stopped the deployment, then lost the answer.
            Fault.drop(applied=True): 0.005,
            Fault.stall(seconds=self.stall): 0.005,
        }


@attrs.define(kw_only=True)
class SoakFigures:
    """What one soak run did and measured."""

    backend: str
    runner: str
    ids: int
    unique: int
    duplicates: int
    requests: int
    faults: dict[str, int]
    stopped: int
    failed: int
    skipped: int
    retries: int
    timeouts: int
    lost_on_the_way: int
    elapsed: float
    peak_in_flight: int
    peak_answering: int
    max_loop_lag: float
    peak_window_rate: float
    rate_excess: float
    rss_start_mb: float
    rss_end_mb: float
    peak_rss_mb: float
    rss_samples_mb: list[float] = attrs.field(factory=list, repr=False)

    def summary(self) -> str:
        """One line per figure, for a person."""
        faults = ", ".join(f"{name}={count}" for name, count in self.faults.items())
        return "\n".join(
            [
                f"soak {self.backend}/{self.runner}:",
                f"  ids {self.ids} ({self.unique} unique, {self.duplicates} duplicates)",
                f"  requests {self.requests}; outcomes stopped={self.stopped} "
                f"failed={self.failed} skipped={self.skipped}",
                f"  answers by kind: {faults}",
                f"  retries {self.retries} (timeouts seen by the client {self.timeouts}; "
                f"attempts that never reached the fake {self.lost_on_the_way})",
                f"  elapsed {self.elapsed:.1f}s ({self.requests / self.elapsed:.0f} requests/s); "
                f"busiest 1s at the fake {self.peak_window_rate:.0f} requests "
                f"({self.rate_excess:.1f} ahead of the rate at most)",
                f"  peak in flight at the fake {self.peak_in_flight} "
                f"({self.peak_answering} excluding stalls); max loop lag {self.max_loop_lag:.3f}s",
                f"  RSS start {self.rss_start_mb:.1f} MB, end {self.rss_end_mb:.1f} MB, "
                f"peak {self.peak_rss_mb:.1f} MB",
            ]
        )


def input_ids(
    settings: SoakSettings,
) -> tuple[Callable[[], Iterator[str]], set[str], set[str], int]:
    """Return a generator factory of input ids, the valid and invalid unique ids, and duplicates."""
    valid: set[str] = set()
    invalid: set[str] = set()
    duplicates = 0
    order: list[str] = []
    for index in range(settings.ids):
        if index and index % settings.duplicate_every == 0:
            order.append(order[index // 2])
            duplicates += 1
        elif index and index % settings.invalid_every == 0:
            bad = f"bad/{index}"
            invalid.add(bad)
            order.append(bad)
        else:
            good = f"dep-{settings.seed}-{index:06d}"
            valid.add(good)
            order.append(good)

    def generate() -> Iterator[str]:
        yield from order

    return generate, valid, invalid, duplicates


def rss_mb() -> float:
    """The process's resident set size now, in MB (Linux), else its peak so far."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """The process's peak resident set size so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def busiest_excess(arrivals: Iterable[float], per_second: float) -> tuple[float, float]:
    """Return how far arrivals ran ahead of ``per_second``, and the busiest 1 s window.

    The first value is the largest ``count(i..j) - per_second * (t_j - t_i)`` over
    every run of consecutive arrivals: a token bucket of ``per_second`` and
    burst ``b`` keeps it at most ``b``.
    """
    times = sorted(arrivals)
    worst = 0.0
    lowest = math.inf
    busiest = 0
    start = 0
    for index, at in enumerate(times):
        score = index - per_second * at
        lowest = min(lowest, score - 1)  # the run may start here: it then counts this arrival
        worst = max(worst, score - lowest)
        while at - times[start] > 1.0:
            start += 1
        busiest = max(busiest, index - start + 1)
    return worst, float(busiest)


class LagMonitor:
    """Measures how late the event loop wakes a sleeper: the scheduling noise of this run."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.worst = 0.0

    async def run(self) -> None:
        """Sleep in a loop, keeping the worst oversleep; cancel to stop."""
        while True:
            started = time.monotonic()
            await anyio.sleep(self.interval)
            self.worst = max(self.worst, time.monotonic() - started - self.interval)


class _RetryLog(logging.Handler):
    """Keeps why each retried id was retried (from the client's INFO records)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.timeouts = 0
        self.reasons: dict[str, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if not record.msg.startswith("retrying") or not isinstance(record.args, tuple):
            return
        deployment_id, _, reason = record.args[:3]
        self.reasons.setdefault(str(deployment_id), []).append(str(reason))
        if reason == "APITimeoutError":
            self.timeouts += 1


@contextmanager
def counting_timeouts() -> Iterator[_RetryLog]:
    """Attach a :class:`_RetryLog` to the client's logger for the duration."""
    logger = logging.getLogger("hiveon_async")
    counter = _RetryLog()
    previous = logger.level
    logger.addHandler(counter)
    if not logger.isEnabledFor(logging.INFO):
        logger.setLevel(logging.INFO)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(previous)


def client_for(
    fake: FakeVendorAPI, settings: SoakSettings
) -> AbstractAsyncContextManager[AsyncVendorClient]:
    """A client of ``fake`` over the runner's path, with the soak's limits."""
    options: dict[str, Any] = {
        "timeout": settings.timeout,
        "retry": RetryPolicy(
            max_attempts=settings.max_attempts,
            initial_delay=0.005,
            max_delay=0.05,
            max_retry_after=1.0,
            # Random 429s are noise, not a real limit; adaptive pacing would make the
            # soak a test of its CUBIC curve (tested on its own) instead of the RateLimit.
            adaptive=False,
        ),
        "rate_limit": RateLimit(per_second=settings.per_second, burst=settings.burst),
        "max_concurrency": settings.concurrency,
    }

    if settings.runner == "aiohttp":
        import hiveon_async._transport._aiohttp  # noqa: F401 - importing blocks the loop ~0.3 s

    @asynccontextmanager
    async def connect() -> Any:
        if settings.runner == "in-process":
            async with fake.client(**options) as client:
                yield client
                assert client._engine.pool == "transport"
            return
        async with (
            fake.serve() as base_url,
            fake.client(
                base_url=base_url,
                transport=None,
                speedups=settings.runner == "aiohttp",
                **options,
            ) as client,
        ):
            yield client
            assert client._engine.pool == settings.runner
            await client.aclose()
            # The fake notices each close when its connection task next runs.
            with anyio.fail_after(10):
                while fake.open_connections:  # noqa: ASYNC110 - a counter, no event
                    await anyio.sleep(0.01)

    return connect()


async def run_soak(settings: SoakSettings) -> SoakFigures:
    """Run one soak and check every invariant; return its figures.

    Raises:
        AssertionError: An invariant does not hold (the message says which).
    """
    if settings.runner not in RUNNERS:
        raise ValueError(f"runner must be one of {RUNNERS}, got {settings.runner!r}")
    tasks_before = len(anyio.get_running_tasks())
    generate, valid, invalid, duplicates = input_ids(settings)
    plan = FaultPlan(
        seed=settings.seed,
        rates=settings.rates(),
        retry_after=settings.retry_after,
        latency=settings.latency,
        jitter=settings.jitter,
    )
    # Not idempotent: a retry after an applied drop meets 404, as against a real fleet.
    fake = TrackingFake(faults=plan, record=False, idempotent=False)
    seen: Counter[str] = Counter()
    samples: list[float] = []
    progress = BatchProgress()

    def on_outcome(outcome: StopOutcome) -> None:
        seen[outcome.deployment_id] += 1
        if progress.done % settings.sample_every == 0:
            samples.append(rss_mb())

    gc.collect()
    rss_start = rss_mb()
    monitor = LagMonitor()
    started = time.monotonic()
    with counting_timeouts() as timeouts:
        async with client_for(fake, settings) as client:
            async with anyio.create_task_group() as group:
                group.start_soon(monitor.run)
                report = await client.stop_deployments(
                    generate(),
                    concurrency=settings.concurrency,
                    on_outcome=on_outcome,
                    progress=progress,
                )
                group.cancel_scope.cancel()
            budget = client._engine.budget
    elapsed = time.monotonic() - started
    rss_end = rss_mb()

    # -- one outcome per unique id ----------------------------------------------------
    unique = valid | invalid
    assert len(report) == len(unique), (len(report), len(unique))
    assert {outcome.deployment_id for outcome in report} == unique
    doubled = [key for key, count in seen.items() if count != 1]
    assert not doubled, f"ids reported more than once: {doubled[:5]}"
    assert set(seen) == unique
    assert report.duplicates == duplicates
    assert progress.done == len(unique)
    for bad in invalid:
        outcome = report[bad]
        assert outcome.status is OutcomeStatus.FAILED
        assert isinstance(outcome.error, InvalidRequestError)
        assert outcome.attempts == 0
        assert bad not in fake.attempts

    # -- both sides agree ---------------------------------------------------------------
    # Each attempt the client counted reached the fake, except one that failed on the
    # way (a connect timeout on a loaded machine, say): never more, and never fewer
    # without a transport failure to show for it.
    unexplained = []
    missing = 0
    for key in valid:
        outcome, received = report[key], fake.attempts[key]
        failures = sum(
            reason in ("APITimeoutError", "APIConnectionError")
            for reason in timeouts.reasons.get(key, [])
        ) + isinstance(outcome.error, APIConnectionError)
        if not outcome.attempts - failures <= received <= outcome.attempts:
            unexplained.append(_explain(outcome, received, timeouts.reasons.get(key)))
        missing += outcome.attempts - received
    assert not unexplained, unexplained[:5]
    attempts_sent = sum(outcome.attempts for outcome in report)
    assert fake.request_count == attempts_sent - missing, (fake.request_count, attempts_sent)
    reported = {outcome.deployment_id for outcome in report.stopped}
    assert reported <= fake.stopped, sorted(reported - fake.stopped)[:5]
    maybe = {outcome.deployment_id for outcome in report.failed if outcome.maybe_applied}
    unreported = fake.stopped - reported
    assert unreported <= maybe, sorted(unreported - maybe)[:5]
    for outcome in report.stopped:
        assert outcome.result is not None
        assert outcome.result.deployment_id == outcome.deployment_id
    assert not report.skipped

    # -- load on the vendor ---------------------------------------------------------------
    # The client's own timeouts beyond the injected stalls (scheduling noise on a loaded
    # machine): a request it gave up on may still be in flight at the fake.
    stalls = fake.status_counts["stall"]
    final_timeouts = sum(isinstance(outcome.error, APITimeoutError) for outcome in report.failed)
    spurious = max(0, timeouts.timeouts + final_timeouts - stalls)
    assert fake.peak_answering <= settings.concurrency + spurious, (
        fake.peak_answering,
        settings.concurrency,
        spurious,
    )
    if settings.runner == "in-process":
        # No socket: a stall ends exactly when the client's read timeout fires.
        assert fake.peak_in_flight <= settings.concurrency
    excess, busiest = busiest_excess(fake.arrivals, settings.per_second)
    # A sender the loop wakes late sends late, bunching with the next one: allow the
    # loop's lateness (the lag monitor measured it) and a few milliseconds of work.
    late = monitor.worst + 0.005
    if settings.runner != "in-process":
        # Over a socket a request arrives when the fake's connection task next runs
        # (after an accept, for a new connection): allow for that delivery too.
        late += DELIVERY_ALLOWANCE
    slack = settings.per_second * late
    assert excess <= settings.burst + slack, (
        f"the fake saw {excess:.1f} requests beyond {settings.per_second}/s "
        f"(burst {settings.burst}, allowance {slack:.1f})"
    )

    # -- retries within the budget ---------------------------------------------------------
    retries = sum(max(outcome.attempts - 1, 0) for outcome in report)
    assert progress.retries == retries
    assert fake.request_count == len(valid) + retries - missing
    unrefunded = sum(max(outcome.attempts - 1, 0) for outcome in report if not outcome.ok)
    first_time = sum(1 for outcome in report if outcome.ok and outcome.attempts == 1)
    assert budget is not None
    assert unrefunded <= budget.capacity + budget.refill * first_time
    assert budget.tokens >= 0

    # -- afterwards ---------------------------------------------------------------------------
    assert fake.in_flight == 0
    assert fake.open_connections == 0
    leftover = len(anyio.get_running_tasks()) - tasks_before
    assert leftover == 0, [task.name for task in anyio.get_running_tasks()]

    faults = {str(name): count for name, count in sorted(fake.status_counts.items(), key=str)}
    return SoakFigures(
        backend=sniffio.current_async_library(),
        runner=settings.runner,
        ids=settings.ids,
        unique=len(unique),
        duplicates=duplicates,
        requests=fake.request_count,
        faults=faults,
        stopped=len(report.stopped),
        failed=len(report.failed),
        skipped=len(report.skipped),
        retries=retries,
        timeouts=timeouts.timeouts + final_timeouts,
        lost_on_the_way=missing,
        elapsed=elapsed,
        peak_in_flight=fake.peak_in_flight,
        peak_answering=fake.peak_answering,
        max_loop_lag=monitor.worst,
        peak_window_rate=busiest,
        rate_excess=excess,
        rss_start_mb=rss_start,
        rss_end_mb=rss_end,
        peak_rss_mb=peak_rss_mb(),
        rss_samples_mb=samples,
    )


def _explain(outcome: StopOutcome, received: int, retried_after: list[str] | None) -> str:
    """Say what the client and the fake each saw of one id (for a failed check)."""
    cause = outcome.error.__cause__ if outcome.error is not None else None
    return (
        f"{outcome.deployment_id}: the fake got {received} requests, the client counted "
        f"{outcome.attempts} (retried after {retried_after}); {outcome.status} "
        f"maybe_applied={outcome.maybe_applied} error={outcome.error!r} cause={cause!r}"
    )


async def run_memory_soak(settings: SoakSettings, *, repeat: int = 500) -> list[float]:
    """Stream ``settings.ids`` stops over ``repeat`` distinct ids and return RSS samples (MB).

    Nothing here keeps state per id beyond ``repeat`` ids (the stream keeps no
    report, the fake is idempotent and does not record), so after warming up
    the resident set must stay flat: growth would be a leak per request.
    """
    plan = FaultPlan(
        seed=settings.seed,
        rates=settings.rates(),
        retry_after=settings.retry_after,
        latency=settings.latency,
        jitter=settings.jitter,
    )
    fake = FakeVendorAPI(faults=plan, record=False)
    samples: list[float] = []
    done = 0

    def ids() -> Iterator[str]:
        for index in range(settings.ids):
            yield f"mem-{index % repeat}"

    async with (
        client_for(fake, settings) as client,
        client.stream_stop_deployments(ids(), concurrency=settings.concurrency) as outcomes,
    ):
        async for _ in outcomes:
            done += 1
            if done % settings.sample_every == 0:
                samples.append(rss_mb())
    assert done == settings.ids
    return samples
