"""The random faults of ``demo`` and ``fake-server --fail-rate``: what a client must survive.

One mix serves both: 500s, 503s, throttling and broken connections. Where the
fake also enforces a real rate limit (the demo), random 429s become broken
connections instead: the limit sends real ones, and random throttling of an
idle server would only teach the client's pacing to crawl.
"""

from __future__ import annotations

__all__ = ["FAULT_MIX", "fault_rates"]

#: How a fail rate is spread over the transient failures, as shares that add up to 1.
FAULT_MIX: dict[int | str, float] = {500: 0.5, 503: 0.2, 429: 0.1, "reset": 0.1, "drop": 0.1}


def fault_rates(fail_rate: float, *, random_throttling: bool = True) -> dict[int | str, float]:
    """Return the rate of each fault, for ``FaultPlan(rates=...)``.

    Args:
        fail_rate: The fraction of requests that fail, 0 to 1.
        random_throttling: Whether some of them are 429s; without, their share
            goes to connection resets and drops.

    Returns:
        The rates, adding up to ``fail_rate``.

    Example:
        >>> rates = fault_rates(0.2, random_throttling=False)
        >>> {kind: round(rate, 3) for kind, rate in rates.items()}
        {500: 0.1, 503: 0.04, 'reset': 0.03, 'drop': 0.03}
    """
    mix = dict(FAULT_MIX)
    if not random_throttling:
        throttled = mix.pop(429)
        mix["reset"] += throttled / 2
        mix["drop"] += throttled / 2
    return {kind: share * fail_rate for kind, share in mix.items()}
