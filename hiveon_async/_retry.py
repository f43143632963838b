"""When to retry, how long to wait, and how many retries the client may spend.

The decision is a plain function of the error (:func:`is_retryable`); the
wait is full-jitter exponential backoff or the server's ``Retry-After``; the
client-wide :class:`RetryBudget` keeps a failing backend from being hammered.
tenacity runs the loop, but its types never leave this module.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import tenacity as _t

from ._config import RetryPolicy
from ._errors import APIConnectionError, APIStatusError, HiveonError

logger = logging.getLogger("hiveon_async")

#: Statuses worth another attempt: the server or a gateway failed, or throttled us.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

_testing = {"instant_waits": False}


def set_testing(instant_waits: bool) -> None:
    """Make every retry wait zero seconds (for test suites), or restore real waits.

    Args:
        instant_waits: True to skip backoff and ``Retry-After`` sleeps.
    """
    _testing["instant_waits"] = instant_waits


def is_testing() -> bool:
    """Return True while :func:`set_testing` has made retry waits instant."""
    return _testing["instant_waits"]


def is_retryable(error: BaseException) -> bool:
    """Return True when another attempt may succeed where this one failed.

    Retried: transport failures and timeouts (no response), and the statuses in
    :data:`RETRY_STATUSES`. Not retried: any other status, a malformed 2xx,
    invalid input, and anything that is not our error (cancellation included).

    Args:
        error: What the attempt raised.

    Returns:
        Whether the attempt should be retried (budget and deadline permitting).
    """
    if isinstance(error, APIConnectionError):
        return True
    return isinstance(error, APIStatusError) and error.status_code in RETRY_STATUSES


def backoff_delay(
    retry_number: int,
    policy: RetryPolicy,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """Return the wait before retry ``retry_number`` (1 for the first retry).

    Full jitter: uniform in ``[0, min(max_delay, initial_delay * 2**(n-1))]``.
    """
    ceiling = min(policy.max_delay, policy.initial_delay * 2 ** min(retry_number - 1, 62))
    return uniform(0.0, ceiling)


class RetryBudget:
    """A client-wide token bucket of retries: a failing backend sees few of them.

    Each retry takes one token. A call that succeeds after retrying gives its
    tokens back (those retries were worth it); a call that succeeds at once
    earns ``refill`` tokens. So random failures in a healthy fleet cost nothing
    in the long run, while a backend that fails everything sees at most
    ``capacity`` retries in all. This is botocore's retry quota (refund on
    success) with gRPC's token ratio (earn on plain success).

    Args:
        capacity: Tokens when full.
        refill: Tokens earned per first-attempt success.
    """

    def __init__(self, capacity: int, refill: float) -> None:
        self.capacity = float(capacity)
        self.refill = refill
        self.tokens = float(capacity)
        self.denied = 0

    def try_spend(self) -> bool:
        """Take a token for one retry; False (and counted) when there is none."""
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.denied += 1
        return False

    def on_success(self, retries: int) -> None:
        """Credit a call that succeeded after ``retries`` retries."""
        if self.tokens >= self.capacity:  # the usual case in a healthy fleet: nothing to add
            return
        earned = float(retries) if retries else self.refill
        # Rounded so that refills add up: ten refills of 0.1 make a whole token.
        self.tokens = min(self.capacity, round(self.tokens + earned, 9))

    def __repr__(self) -> str:
        return f"RetryBudget(tokens={self.tokens:.1f}, capacity={self.capacity:.0f})"


class CallClock:
    """The time one call has used, against its optional deadline."""

    __slots__ = ("deadline", "started")

    def __init__(self, deadline: float | None) -> None:
        self.started = time.monotonic()
        self.deadline = None if deadline is None else self.started + deadline

    def elapsed(self) -> float:
        """Seconds since the call started."""
        return time.monotonic() - self.started

    def remaining(self) -> float | None:
        """Seconds left before the deadline, or None when there is none."""
        return None if self.deadline is None else self.deadline - time.monotonic()


class _Decision:
    """What to do after a failed attempt; decided once, read by tenacity's hooks."""

    __slots__ = ("delay", "retry")

    def __init__(self) -> None:
        self.retry = False
        self.delay = 0.0


def retrying(
    policy: RetryPolicy,
    budget: RetryBudget | None,
    clock: CallClock,
    *,
    deployment_id: str,
    on_retry: Callable[[HiveonError, float], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> _t.AsyncRetrying:
    """Build the tenacity controller for one call.

    The order of checks after a failed attempt: is the error retryable; are
    attempts left; does ``Retry-After`` stay within ``max_retry_after``; does
    the wait end before the deadline; is there budget. Only then is a token
    spent and the wait slept.

    Args:
        policy: The retry policy.
        budget: The client-wide retry budget, or None.
        clock: The call's clock and deadline.
        deployment_id: For log messages.
        on_retry: Called with the error and the delay just before each wait.
        sleep: The sleep to use; None looks up ``anyio.sleep`` at each wait, so
            that tests can patch it (instant waits skip it).

    Returns:
        A fresh ``AsyncRetrying`` (never shared: tenacity keeps per-run state on it).
    """
    decision = _Decision()

    def should_retry(state: _t.RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome is not None else None
        decision.retry = False
        if not isinstance(error, HiveonError) or not is_retryable(error):
            return False
        why_not = _why_not_retry(error, state.attempt_number, policy, budget, clock, decision)
        if why_not is not None:
            logger.warning(
                "not retrying deployment %r after %s: %s",
                deployment_id,
                _describe(error),
                why_not,
            )
            return False
        decision.retry = True
        return True

    def stop(state: _t.RetryCallState) -> bool:
        return not decision.retry

    def wait(state: _t.RetryCallState) -> float:
        return decision.delay

    def before_sleep(state: _t.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        assert isinstance(error, HiveonError)
        logger.info(
            "retrying deployment %r in %.2fs after %s (attempt %d of %d)",
            deployment_id,
            decision.delay,
            _describe(error),
            state.attempt_number,
            policy.max_attempts,
        )
        if on_retry is not None:
            on_retry(error, decision.delay)

    async def do_sleep(seconds: float) -> None:
        if not _testing["instant_waits"]:
            await (anyio.sleep if sleep is None else sleep)(seconds)

    kwargs: dict[str, Any] = {
        "retry": should_retry,
        "stop": stop,
        "wait": wait,
        "before_sleep": before_sleep,
        "sleep": do_sleep,
        "reraise": True,
    }
    return _t.AsyncRetrying(**kwargs)


def _why_not_retry(
    error: HiveonError,
    attempt: int,
    policy: RetryPolicy,
    budget: RetryBudget | None,
    clock: CallClock,
    decision: _Decision,
) -> str | None:
    """Fill ``decision.delay`` and return None to retry, or the reason not to."""
    if attempt >= policy.max_attempts:
        return f"no attempts left ({policy.max_attempts})"
    retry_after = error.retry_after if isinstance(error, APIStatusError) else None
    if retry_after is not None and retry_after > policy.max_retry_after:
        return (
            f"Retry-After {retry_after:.0f}s is over max_retry_after {policy.max_retry_after:.0f}s"
        )
    delay = retry_after if retry_after is not None else backoff_delay(attempt, policy)
    remaining = clock.remaining()
    if remaining is not None and delay >= remaining:
        return f"the wait ({delay:.2f}s) would pass the call's deadline"
    if budget is not None and not budget.try_spend():
        return "the client's retry budget is spent"
    decision.delay = delay
    return None


def _describe(error: HiveonError) -> str:
    if isinstance(error, APIStatusError):
        return f"HTTP {error.status_code}"
    return type(error).__name__
