"""Configuration objects and the named defaults, in one place.

Every default the client uses lives here as a module constant, so the docs,
the tests and the code quote the same number.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._checks import check_count, check_seconds

__all__ = ["RateLimit", "RetryPolicy"]

#: The production API root, used when neither ``base_url`` nor ``$HIVEON_BASE_URL`` gives one.
DEFAULT_BASE_URL = "https://api.hiveon.ai"
#: Seconds allowed per attempt (connect, write, read and pool waits alike).
DEFAULT_TIMEOUT = 10.0
#: Requests in flight for a batch, and the size of the connection pool we build.
DEFAULT_MAX_CONCURRENCY = 32

DEFAULT_MAX_ATTEMPTS = 4
DEFAULT_INITIAL_DELAY = 0.5
DEFAULT_MAX_DELAY = 8.0
DEFAULT_MAX_RETRY_AFTER = 60.0
#: Retries the whole client may spend before successes earn more (see RetryPolicy.budget).
DEFAULT_RETRY_BUDGET = 200
#: Budget tokens earned by each call that succeeds at its first attempt.
DEFAULT_BUDGET_REFILL = 0.1

#: Bytes of a response body read at most; larger bodies are cut off while streaming.
MAX_RESPONSE_BYTES = 64 * 1024
#: Characters of an error body kept on an APIStatusError.
MAX_ERROR_BODY_CHARS = 2048


def _seconds(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    check_seconds(attribute.name, value, zero_ok=True)


def _optional_seconds(
    instance: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None:
        check_seconds(attribute.name, value)


def _rate(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    check_seconds(attribute.name, value)


def _count(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    check_count(attribute.name, value)


def _optional_count(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_count(attribute.name, value, minimum=0)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How a call retries: which attempts, how long to wait, and when to give up.

    Retried: 500, 502, 503, 504, 429 and transport failures (connection
    refused or reset, a server that closed without answering, timeouts).
    Never another 4xx, a malformed 2xx, or a cancellation.

    Args:
        max_attempts: Requests sent for one call at most, the first included.
            ``1`` disables retries.
        initial_delay: The backoff before the first retry, in seconds; each
            later retry doubles it. The actual wait is drawn uniformly from
            ``[0, backoff]`` ("full jitter") so that many clients spread out.
        max_delay: The cap on the backoff, in seconds.
        max_retry_after: The longest ``Retry-After`` the client will honour,
            in seconds. When the server asks for longer, the call fails at once
            with the error (its ``retry_after`` says how long) instead of
            sleeping.
        deadline: Seconds one call may take in all, attempts and waits
            included; ``None`` for no bound beyond the per-attempt timeout.
        budget: Retries the whole client may spend before successes earn more:
            a token bucket of this size, shared by every call. Each retry takes
            a token; a call that succeeds after retrying gives its tokens back,
            and a call that succeeds at once adds ``budget_refill``. A backend
            that fails everything therefore sees at most ``budget`` retries,
            not ``max_attempts`` times the traffic. The budget refills only
            through successes, never with time alone. ``None`` turns it off.
        budget_refill: Tokens added by each call that succeeds at its first attempt.
        adaptive: Pace sending after a 429 (lower the rate below what the
            server refused, then raise it again as requests succeed). On by
            default; a configured :class:`RateLimit` stays the ceiling.

    Example:
        >>> RetryPolicy(max_attempts=6, deadline=30.0)
        RetryPolicy(max_attempts=6, initial_delay=0.5, max_delay=8.0, ...)
    """

    max_attempts: int = attrs.field(default=DEFAULT_MAX_ATTEMPTS, validator=_count)
    initial_delay: float = attrs.field(default=DEFAULT_INITIAL_DELAY, validator=_seconds)
    max_delay: float = attrs.field(default=DEFAULT_MAX_DELAY, validator=_seconds)
    max_retry_after: float = attrs.field(default=DEFAULT_MAX_RETRY_AFTER, validator=_seconds)
    deadline: float | None = attrs.field(default=None, validator=_optional_seconds)
    budget: int | None = attrs.field(default=DEFAULT_RETRY_BUDGET, validator=_optional_count)
    budget_refill: float = attrs.field(default=DEFAULT_BUDGET_REFILL, validator=_seconds)
    adaptive: bool = True


@attrs.frozen(kw_only=True)
class RateLimit:
    """A client-wide ceiling on requests per second, shared by every attempt.

    Retries are not free: each attempt takes a token. Waiters are served first
    come, first served.

    Args:
        per_second: The sustained rate, requests per second.
        burst: Requests that may start back to back after an idle spell; never
            more than this many in any ``1 / per_second`` window beyond the rate.

    Example:
        >>> RateLimit(per_second=50, burst=10)
        RateLimit(per_second=50, burst=10)
    """

    per_second: float = attrs.field(validator=_rate)
    burst: int = attrs.field(default=1, validator=_count)
