"""The random faults of ``demo`` and ``fake-server``: what a client must survive.

One mix serves both ``--fail-rate`` options: 500s, 503s, throttling and broken
connections. Where the fake also enforces a real rate limit (the demo), random
429s become broken connections instead: the limit sends real ones, and random
throttling of an idle server would only teach the client's pacing to crawl.
``fake-server --faults`` chooses its own mix (:func:`parse_faults`).
"""

from __future__ import annotations

__all__ = ["FAULT_MIX", "describe_faults", "fault_rates", "parse_faults"]

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


def parse_faults(text: str) -> dict[int | str, float]:
    """Parse a fault mix such as ``500=0.1,503=0.05,429=0.02,reset=0.01``.

    Args:
        text: Comma-separated ``FAULT=RATE`` items: a status code from 400 to
            599 or a fault name of :class:`~hiveon_async.testing.FaultPlan`
            (``reset``, ``drop``, ``stall``...), and the fraction of requests
            that get it.

    Returns:
        The rates, for ``FaultPlan(rates=...)``.

    Raises:
        ValueError: A malformed item, a repeated fault, an unknown fault, a
            rate outside 0 to 1, or rates adding up to more than 1.

    Example:
        >>> parse_faults("500=0.1, reset=0.01")
        {500: 0.1, 'reset': 0.01}
    """
    from hiveon_async.testing import FaultPlan

    rates: dict[int | str, float] = {}
    for item in text.split(","):
        name, equals, value = (part.strip() for part in item.partition("="))
        if not equals or not name or not value:
            raise ValueError(f"expected FAULT=RATE items separated by commas, got {item.strip()!r}")
        fault: int | str = int(name) if name.isdigit() else name
        if fault in rates:
            raise ValueError(f"{name} is given twice")
        try:
            rates[fault] = float(value)
        except ValueError:
            raise ValueError(f"the rate of {name} must be a number, got {value!r}") from None
    FaultPlan(rates=rates)  # checks the faults and the rates, with their messages
    return rates


def describe_faults(rates: dict[int | str, float]) -> str:
    """Return a fault mix as one line, ``500 10%, reset 1%`` (zero rates left out).

    Args:
        rates: The rates.

    Returns:
        The line, or ``none``.
    """
    shown = [f"{fault} {rate * 100:.3g}%" for fault, rate in rates.items() if rate > 0]
    return ", ".join(shown) or "none"
