"""The retry decision, the backoff, the retry budget, and the test mode of the clock."""

from __future__ import annotations

import asyncio

import anyio
import httpx
import pytest

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
from hiveon_async._clock import Clock, is_testing, set_testing
from hiveon_async._policy._retry import (
    GiveUp,
    Retry,
    RetryBudget,
    backoff_delay,
    decide,
    is_retryable,
)


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


def decision(
    error: HiveonError,
    *,
    attempts: int = 1,
    policy: RetryPolicy | None = None,
    budget: RetryBudget | None = None,
    remaining: float | None = None,
) -> Retry | GiveUp:
    return decide(
        error,
        attempts=attempts,
        policy=policy or RetryPolicy(),
        budget=budget,
        remaining=remaining,
    )


def test_decide_retries_with_full_jitter_backoff() -> None:
    """A retryable failure is retried after a backoff within the full-jitter bounds."""
    first = decision(APIConnectionError("a"), attempts=1)
    second = decision(status_error(503), attempts=2)

    assert isinstance(first, Retry)
    assert 0.0 <= first.delay <= 0.5
    assert isinstance(second, Retry)
    assert 0.0 <= second.delay <= 1.0


def test_decide_waits_the_retry_after_it_was_given() -> None:
    """A Retry-After within max_retry_after is the wait."""
    assert decision(status_error(429, retry_after=2.0)) == Retry(2.0)


@pytest.mark.parametrize(
    "error",
    [InvalidRequestError("bad"), status_error(404), ResponseValidationError("x")],
    ids=repr,
)
def test_decide_gives_up_silently_on_final_errors(error: HiveonError) -> None:
    """A failure that is not retryable is given up with no reason to log."""
    assert decision(error) == GiveUp(None)


def test_decide_gives_up_when_attempts_run_out() -> None:
    """After max_attempts there is no retry, whatever the error."""
    verdict = decision(status_error(500), attempts=3, policy=RetryPolicy(max_attempts=3))

    assert verdict == GiveUp("no attempts left (3)")


def test_decide_gives_up_on_a_retry_after_over_the_cap() -> None:
    """A Retry-After over max_retry_after is not waited: the error is final."""
    verdict = decision(status_error(429, retry_after=61.0))

    assert verdict == GiveUp("Retry-After 61s is over max_retry_after 60s")


def test_decide_skips_a_wait_that_would_pass_the_deadline() -> None:
    """A wait ending after the deadline is not slept; the error is final."""
    verdict = decision(status_error(503, retry_after=5.0), remaining=4.0)

    assert verdict == GiveUp("the wait (5.00s) would pass the call's deadline")


def test_decide_stops_when_the_budget_is_spent() -> None:
    """An empty retry budget turns a retryable failure into the final answer."""
    budget = RetryBudget(1, 0.1)

    assert isinstance(decision(APIConnectionError("down"), budget=budget), Retry)
    verdict = decision(APIConnectionError("down"), budget=budget)

    assert verdict == GiveUp("the client's retry budget is spent")
    assert budget.denied == 1


def test_decide_spends_no_token_on_a_retry_it_refuses() -> None:
    """The budget is the last check: a refusal for any other reason costs no token."""
    budget = RetryBudget(1, 0.1)

    decision(status_error(500), attempts=4, budget=budget)
    decision(status_error(429, retry_after=600.0), budget=budget)

    assert budget.tokens == 1.0


@pytest.mark.anyio
async def test_set_testing_skips_backoff_and_holds_but_not_spacing() -> None:
    """In test mode the clock skips backoff and pauses; the rate limit's spacing stays real."""
    clock = Clock()
    with set_testing(True):
        assert clock.testing
        with anyio.fail_after(1):
            await clock.backoff(3600)
            await clock.hold(3600)
        with anyio.move_on_after(0.05) as spaced:
            await clock.space(3600)
        assert spaced.cancelled_caught


def test_set_testing_restores_the_previous_mode() -> None:
    """set_testing works as a context manager that restores what was in force before."""
    with set_testing(True):
        with set_testing(False):
            assert not is_testing()
        assert is_testing()
    assert not is_testing()
