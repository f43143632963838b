"""A windowed quota per API key for the fake, announced in rate-limit headers.

Real vendors often limit a key per minute or per hour and say so in headers.
:class:`Quota` lets the fake do the same, so code can be tested against a
quota that runs low, or one that is used up.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Literal, TypeAlias

import attrs

__all__ = ["Quota", "QuotaHeaders", "QuotaWindows"]

#: Which rate-limit headers announce the quota.
QuotaHeaders: TypeAlias = Literal["x-ratelimit", "x-ratelimit-epoch", "draft", "ietf"]


def _positive_count(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an int >= 1, got {value!r}")


def _window(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"window must be seconds > 0, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"window must be finite, got {value!r}")


_HEADERS = ("x-ratelimit", "x-ratelimit-epoch", "draft", "ietf")


def _headers(
    instance: object, attribute: attrs.Attribute[QuotaHeaders | None], value: QuotaHeaders | None
) -> None:
    if value is not None and value not in _HEADERS:
        raise ValueError(f"headers must be one of {', '.join(_HEADERS)} or None, got {value!r}")


def _used(instance: Quota, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= instance.limit:
        raise ValueError(f"used must be an int from 0 to limit, got {value!r}")


@attrs.frozen(kw_only=True)
class Quota:
    """``limit`` requests per fixed window of ``window`` seconds, per API key.

    Each key's first request opens its first window; a window ends ``window``
    seconds after it opened, and the next opens with the next request. Every
    answer past the API-key check spends one request of the window, and says
    what is left in ``headers``; past the limit the answer is 429 with a
    ``Retry-After`` of the seconds until the window ends (rounded up).

    Attributes:
        limit: Requests allowed per window.
        window: The window, in seconds.
        headers: How the quota is announced: ``x-ratelimit``
            (``X-RateLimit-Limit``, ``-Remaining``, ``-Reset`` in seconds),
            ``x-ratelimit-epoch`` (the same, ``Reset`` as a Unix time, as
            GitHub sends it), ``draft`` (``RateLimit-Limit``, ``-Remaining``,
            ``-Reset`` and ``RateLimit-Policy: 500;w=60``, the older IETF
            drafts), ``ietf`` (``RateLimit-Policy: "default";q=500;w=60`` and
            ``RateLimit: "default";r=12;t=30``, the current draft), or None to
            announce nothing.
        used: Requests already spent in each key's first window: ``used=limit``
            starts with the quota used up.

    Example:
        >>> from hiveon_async.testing import FakeVendorAPI, Quota
        >>> fake = FakeVendorAPI(quota=Quota(limit=3600, window=3600, used=3600))
    """

    limit: int = attrs.field(validator=_positive_count)
    window: float = attrs.field(validator=_window)
    headers: QuotaHeaders | None = attrs.field(default="x-ratelimit", validator=_headers)
    used: int = attrs.field(default=0, validator=_used)


class QuotaWindows:
    """Each API key's current window of a :class:`Quota`, on the fake's clock.

    Args:
        quota: The quota.
        wall: The wall clock, for a reset given as a Unix time.
    """

    __slots__ = ("_wall", "_windows", "quota")

    def __init__(self, quota: Quota, wall: Callable[[], float] = time.time) -> None:
        self.quota = quota
        self._wall = wall
        # key -> [when the window opened, requests spent in it]
        self._windows: dict[str, list[float]] = {}

    def spend(self, key: str, now: float) -> tuple[bool, list[tuple[bytes, bytes]]]:
        """Spend one request of ``key``'s window, if any is left.

        Args:
            key: The API key the request carried.
            now: The current time on the fake's clock.

        Returns:
            Whether the request is allowed, and the headers to answer with
            (``Retry-After`` among them when it is not).
        """
        quota = self.quota
        window = self._windows.get(key)
        if window is None or now >= window[0] + quota.window:
            first = window is None
            window = self._windows[key] = [now, float(quota.used if first else 0)]
        allowed = window[1] < quota.limit
        if allowed:
            window[1] += 1
        remaining = quota.limit - int(window[1])
        reset = max(window[0] + quota.window - now, 0.0)
        headers = self._announce(remaining, reset)
        if not allowed:
            headers.append((b"retry-after", str(max(1, math.ceil(reset))).encode()))
        return allowed, headers

    def _announce(self, remaining: int, reset: float) -> list[tuple[bytes, bytes]]:
        quota = self.quota
        seconds = math.ceil(reset)
        window = f"{quota.window:g}"
        match quota.headers:
            case "x-ratelimit" | "x-ratelimit-epoch":
                at = seconds if quota.headers == "x-ratelimit" else math.ceil(self._wall() + reset)
                return [
                    (b"x-ratelimit-limit", str(quota.limit).encode()),
                    (b"x-ratelimit-remaining", str(remaining).encode()),
                    (b"x-ratelimit-reset", str(at).encode()),
                ]
            case "draft":
                return [
                    (b"ratelimit-limit", str(quota.limit).encode()),
                    (b"ratelimit-remaining", str(remaining).encode()),
                    (b"ratelimit-reset", str(seconds).encode()),
                    (b"ratelimit-policy", f"{quota.limit};w={window}".encode()),
                ]
            case "ietf":
                return [
                    (b"ratelimit-policy", f'"default";q={quota.limit};w={window}'.encode()),
                    (b"ratelimit", f'"default";r={remaining};t={seconds}'.encode()),
                ]
            case _:
                return []

    def __repr__(self) -> str:
        # The windows are keyed by credentials: never show them.
        return f"QuotaWindows({self.quota!r})"
