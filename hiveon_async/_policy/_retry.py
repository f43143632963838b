"""Whether to retry a failed attempt, how long to wait first, and the client's retry budget.

The decision is one plain function of the error and the call's state
(:func:`decide`), tested on its own; the engine's retry loop only follows it.
The order of its checks: is the error retryable; are attempts left; does a
``Retry-After`` stay within ``max_retry_after``; does the wait end before the
call's deadline; is there budget. Only when all say yes is a token spent.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs

from .._config import RetryPolicy
from .._errors import APIConnectionError, APIStatusError, HiveonError

__all__ = ["GiveUp", "Retry", "RetryBudget", "backoff_delay", "decide", "describe", "is_retryable"]

#: Statuses worth another attempt: the server or a gateway failed, or throttled us.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


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


@attrs.frozen
class Retry:
    """Retry after ``delay`` seconds (a budget token has been spent)."""

    delay: float


@attrs.frozen
class GiveUp:
    """Do not retry; ``reason`` says why a retryable failure is not (None: it is not retryable)."""

    reason: str | None


def decide(
    error: HiveonError,
    *,
    attempts: int,
    policy: RetryPolicy,
    budget: RetryBudget | None,
    remaining: float | None,
    backoff: Callable[[int, RetryPolicy], float] = backoff_delay,
) -> Retry | GiveUp:
    """Decide what follows a failed attempt.

    Args:
        error: What the attempt raised.
        attempts: Attempts sent so far for the call, the failed one included.
        policy: The retry policy.
        budget: The client-wide retry budget, or None.
        remaining: Seconds left before the call's deadline, or None.
        backoff: The backoff for a retry number (full jitter by default).

    Returns:
        :class:`Retry` with the wait, or :class:`GiveUp` with the reason.
    """
    if not is_retryable(error):
        return GiveUp(None)
    if attempts >= policy.max_attempts:
        return GiveUp(f"no attempts left ({policy.max_attempts})")
    retry_after = error.retry_after if isinstance(error, APIStatusError) else None
    if retry_after is not None and retry_after > policy.max_retry_after:
        return GiveUp(
            f"Retry-After {retry_after:.0f}s is over max_retry_after {policy.max_retry_after:.0f}s"
        )
    delay = retry_after if retry_after is not None else backoff(attempts, policy)
    if remaining is not None and delay >= remaining:
        return GiveUp(f"the wait ({delay:.2f}s) would pass the call's deadline")
    if budget is not None and not budget.try_spend():
        return GiveUp("the client's retry budget is spent")
    return Retry(delay)


def describe(error: HiveonError) -> str:
    """A short name for a failure, for log lines: ``HTTP 503`` or the error's class."""
    if isinstance(error, APIStatusError):
        return f"HTTP {error.status_code}"
    return type(error).__name__
