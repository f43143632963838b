"""The retry decision, the backoff, the retry budget and the tenacity loop behind them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import anyio
import httpx
import pytest
import tenacity

from hiveon_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    HiveonError,
    InvalidRequestError,
    RateLimitedError,
    ResponseValidationError,
    RetryPolicy,
    ServerError,
)
from hiveon_async._retry import (
    CallClock,
    RetryBudget,
    backoff_delay,
    is_retryable,
    is_testing,
    retrying,
    set_testing,
)

Build = Callable[..., tenacity.AsyncRetrying]


def status_error(status: int, retry_after: float | None = None) -> APIStatusError:
    cls = ServerError if status >= 500 else RateLimitedError
    response = httpx.Response(status)
    return cls("x", response=response, body="", request_id=None, retry_after=retry_after)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (APIConnectionError("refused"), True),
        (APITimeoutError("slow"), True),
        *[(status_error(status), True) for status in (429, 500, 502, 503, 504)],
        *[(status_error(status), False) for status in (400, 401, 403, 404, 409, 307, 501, 505)],
        (ResponseValidationError("bad body"), False),
        (InvalidRequestError("bad id"), False),
        (ValueError("not ours"), False),
        (asyncio.CancelledError(), False),
        (KeyboardInterrupt(), False),
    ],
    ids=repr,
)
def test_is_retryable(error: BaseException, expected: bool) -> None:
    """Transport failures, timeouts, 429 and 500/502/503/504 are retried; nothing else is."""
    assert is_retryable(error) is expected


@pytest.mark.parametrize(
    ("initial", "maximum", "retry_number", "ceiling"),
    [
        (0.5, 8.0, 1, 0.5),
        (0.5, 8.0, 2, 1.0),
        (0.5, 8.0, 3, 2.0),
        (0.5, 8.0, 4, 4.0),
        (0.5, 8.0, 5, 8.0),
        (0.5, 8.0, 6, 8.0),
        (0.5, 8.0, 10_000, 8.0),
        (1.0, 3.0, 2, 2.0),
        (1.0, 3.0, 3, 3.0),
        (0.0, 8.0, 5, 0.0),
    ],
)
def test_backoff_is_full_jitter_up_to_the_capped_exponential(
    initial: float, maximum: float, retry_number: int, ceiling: float
) -> None:
    """The n-th wait is drawn from [0, min(max_delay, initial_delay * 2**(n-1))]."""
    drawn: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        drawn.append((low, high))
        return high

    policy = RetryPolicy(initial_delay=initial, max_delay=maximum)

    assert backoff_delay(retry_number, policy, uniform) == ceiling
    assert drawn == [(0.0, ceiling)]


def test_backoff_default_draws_within_the_bounds() -> None:
    """With the real random source every draw stays within its bounds."""
    policy = RetryPolicy(initial_delay=1.0, max_delay=4.0)

    for _ in range(200):
        assert 0.0 <= backoff_delay(2, policy) <= 2.0


def test_budget_drains_then_denies() -> None:
    """Each retry takes a token; with none left the retry is denied and counted."""
    budget = RetryBudget(3, 0.1)

    assert [budget.try_spend() for _ in range(5)] == [True, True, True, False, False]
    assert budget.denied == 2


def test_budget_refunds_retries_that_ended_in_success() -> None:
    """A call that succeeded after retrying gives its tokens back."""
    budget = RetryBudget(3, 0.1)
    for _ in range(3):
        budget.try_spend()

    budget.on_success(2)

    assert budget.tokens == 2.0


def test_budget_earns_refill_on_first_attempt_success() -> None:
    """Ten first-attempt successes at refill 0.1 earn one retry back."""
    budget = RetryBudget(2, 0.1)
    budget.try_spend()
    budget.try_spend()
    assert not budget.try_spend()

    for _ in range(10):
        budget.on_success(0)

    assert budget.try_spend()


def test_budget_is_capped_at_capacity() -> None:
    """Refunds and refills never take the budget over its capacity."""
    budget = RetryBudget(3, 0.5)

    budget.on_success(5)
    budget.on_success(0)

    assert budget.tokens == 3.0
    assert repr(budget) == "RetryBudget(tokens=3.0, capacity=3)"


class Flaky:
    """An attempt function that raises the given errors in turn, then returns "done"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


class Sleeps(list[float]):
    """An injected sleep that records the seconds asked for and returns at once."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def controller(sleeps: Sleeps) -> Build:
    """Build a retry loop with an injected sleep; keyword overrides for its parts."""

    def build(
        policy: RetryPolicy | None = None,
        budget: RetryBudget | None = None,
        deadline: float | None = None,
        on_retry: Callable[[HiveonError, float], None] | None = None,
    ) -> tenacity.AsyncRetrying:
        return retrying(
            policy or RetryPolicy(),
            budget,
            CallClock(deadline),
            deployment_id="dep-1",
            on_retry=on_retry,
            sleep=sleeps,
        )

    return build


@pytest.fixture
def real_waits() -> Iterator[None]:
    """Make sure set_testing is off for the test, whatever ran before."""
    previous = is_testing()
    set_testing(False)
    yield
    set_testing(previous)


pytestmark = pytest.mark.usefixtures("real_waits")


@pytest.mark.anyio
async def test_loop_retries_then_returns(controller: Build, sleeps: Sleeps) -> None:
    """Two retryable failures, then success: the result, after two backoff waits."""
    attempt = Flaky(APIConnectionError("a"), status_error(503))

    assert await controller()(attempt) == "done"

    assert attempt.calls == 3
    assert len(sleeps) == 2
    assert 0.0 <= sleeps[0] <= 0.5
    assert 0.0 <= sleeps[1] <= 1.0


@pytest.mark.anyio
async def test_loop_reports_each_retry(controller: Build) -> None:
    """on_retry sees each error and the delay about to be waited."""
    seen: list[tuple[HiveonError, float]] = []
    error = status_error(429, retry_after=2.0)

    await controller(on_retry=lambda e, d: seen.append((e, d)))(Flaky(error))

    assert seen == [(error, 2.0)]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "error",
    [InvalidRequestError("bad"), status_error(404), ResponseValidationError("x"), KeyError("k")],
    ids=repr,
)
async def test_loop_raises_final_errors_at_once(
    controller: Build, sleeps: Sleeps, error: BaseException
) -> None:
    """A failure that is not retryable is raised as it is, after one attempt and no wait."""
    attempt = Flaky(error)

    with pytest.raises(type(error)) as caught:
        await controller()(attempt)

    assert caught.value is error
    assert attempt.calls == 1
    assert sleeps == []


@pytest.mark.anyio
async def test_loop_raises_the_last_error_when_attempts_run_out(
    controller: Build, sleeps: Sleeps
) -> None:
    """After max_attempts the last error itself is raised, never a tenacity type."""
    errors = [status_error(500) for _ in range(3)]
    attempt = Flaky(*errors)

    with pytest.raises(ServerError) as caught:
        await controller(RetryPolicy(max_attempts=3))(attempt)

    assert caught.value is errors[-1]
    assert len(sleeps) == 2


@pytest.mark.anyio
async def test_loop_skips_a_wait_that_would_pass_the_deadline(
    controller: Build, sleeps: Sleeps
) -> None:
    """A wait ending after the deadline is not slept; the error is raised now."""
    attempt = Flaky(status_error(503, retry_after=5.0))

    with pytest.raises(ServerError):
        await controller(deadline=4.0)(attempt)

    assert attempt.calls == 1
    assert sleeps == []


@pytest.mark.anyio
async def test_loop_stops_when_the_budget_is_spent(controller: Build, sleeps: Sleeps) -> None:
    """An empty retry budget turns a retryable failure into the final answer."""
    budget = RetryBudget(1, 0.1)
    attempt = Flaky(*[APIConnectionError("down") for _ in range(3)])

    with pytest.raises(APIConnectionError):
        await controller(budget=budget)(attempt)

    assert attempt.calls == 2
    assert budget.denied == 1


@pytest.mark.anyio
async def test_set_testing_makes_waits_instant(controller: Build, sleeps: Sleeps) -> None:
    """With set_testing(True) the loop retries without calling the sleep at all."""
    set_testing(True)
    assert is_testing()

    await controller()(Flaky(APIConnectionError("a")))

    assert sleeps == []


@pytest.mark.anyio
async def test_loop_does_not_retry_cancellation(controller: Build) -> None:
    """A cancelled attempt is not retried; the cancellation goes through."""
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        await anyio.sleep_forever()

    with anyio.move_on_after(0.01):
        await controller()(attempt)

    assert calls == 1


def test_call_clock_measures_against_its_deadline() -> None:
    """CallClock knows the time used and the time left, if there is a deadline."""
    clock = CallClock(10.0)

    remaining = clock.remaining()
    assert remaining is not None
    assert 9.0 < remaining <= 10.0
    assert 0.0 <= clock.elapsed() < 1.0
    assert CallClock(None).remaining() is None
