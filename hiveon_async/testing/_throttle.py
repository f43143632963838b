"""The fake's server-side rate limit: a token bucket per API key."""

from __future__ import annotations

import math

__all__ = ["Throttle"]


class Throttle:
    """Token buckets, one per API key, refilled continuously.

    Args:
        per_second: Tokens added per second.
        burst: Tokens a bucket holds when full (and starts with).

    Raises:
        ValueError: When ``per_second`` is not a positive finite number or ``burst`` < 1.
    """

    __slots__ = ("_buckets", "burst", "per_second")

    def __init__(self, per_second: float, burst: int) -> None:
        if isinstance(per_second, bool) or not math.isfinite(per_second) or per_second <= 0:
            raise ValueError(f"per_second must be a finite number > 0, got {per_second!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be an int >= 1, got {burst!r}")
        self.per_second = float(per_second)
        self.burst = burst
        # key -> [tokens, time of the last refill]; a list so one lookup serves read and write.
        self._buckets: dict[str, list[float]] = {}

    def take(self, key: str, now: float) -> int:
        """Take a token from ``key``'s bucket.

        Args:
            key: The API key the request carried.
            now: The current time on the fake's clock.

        Returns:
            0 when a token was taken; otherwise the whole seconds (at least 1)
            until one is available, for ``Retry-After``.
        """
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = [float(self.burst), now]
        tokens = min(float(self.burst), bucket[0] + (now - bucket[1]) * self.per_second)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0
        bucket[0] = tokens
        return max(1, math.ceil((1.0 - tokens) / self.per_second))

    def __repr__(self) -> str:
        # The buckets are keyed by credentials: never show them.
        return f"Throttle(per_second={self.per_second!r}, burst={self.burst!r})"
