"""What a server's rate-limit headers said: plain data, read by ``_policy/_headers.py``.

A leaf, so that results (:class:`~hiveon_async.StopResult`) and errors can carry
it; the parser, and what it reads, live with the rest of the pacing policy.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import attrs

__all__ = ["QuotaPolicy", "RateLimitState", "Source"]

#: Which family of rate-limit headers a state was read from.
Source: TypeAlias = Literal["ietf", "draft", "x-ratelimit"]


@attrs.frozen(kw_only=True)
class QuotaPolicy:
    """One quota policy the server announced: ``quota`` requests per ``window`` seconds.

    Attributes:
        quota: Requests allowed in the window.
        window: The window in seconds (> 0), or None when not announced.
        name: The policy's name (current draft), or None.
    """

    quota: int
    window: float | None = None
    name: str | None = None

    def rate(self) -> float | None:
        """Requests per second the policy allows (``quota / window``), or None without a window."""
        return None if self.window is None else self.quota / self.window


@attrs.frozen(kw_only=True)
class RateLimitState:
    """What one response's rate-limit headers say; every number finite and >= 0.

    ``remaining`` and ``reset`` are the service limit to respect now: send no
    more than ``remaining`` requests in the next ``reset`` seconds. ``limit``
    and ``window`` belong to the policy they report on, when the headers say
    which (by name in the current draft, by a quota equal to the limit in the
    older ones), or to the most restrictive policy when they point at none.

    Attributes:
        source: The family read: ``ietf`` (current draft), ``draft`` (older
            drafts) or ``x-ratelimit``.
        limit: The quota of the policy reported on, or None.
        remaining: Requests left until the reset, or None.
        reset: Seconds from now until quota comes back, or None.
        window: The window of the policy reported on, seconds, or None.
        policy: The name of the policy reported on (current draft), or None.
        policies: Every policy announced, without repeats, the most
            restrictive (lowest rate) first; those without a window last.

    Which headers are read, and how, is told in the retries guide ("How the
    client finds and follows the limit").

    Example:
        >>> result = await client.stop_deployment("dep-1")  # doctest: +SKIP
        >>> if result.rate_limit is not None:  # doctest: +SKIP
        ...     print(result.rate_limit.remaining, result.rate_limit.reset)
    """

    source: Source
    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None
    window: float | None = None
    policy: str | None = None
    policies: tuple[QuotaPolicy, ...] = ()

    def rate(self) -> float | None:
        """The lowest rate, requests per second, any announced policy allows, or None.

        0.0 when a policy allows no request at all in its window.
        """
        rates = [rate for policy in self.policies if (rate := policy.rate()) is not None]
        if self.limit is not None and self.window is not None:
            rates.append(self.limit / self.window)
        return min(rates, default=None)
