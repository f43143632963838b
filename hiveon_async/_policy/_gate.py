"""The gate every attempt passes before it is sent.

Three things can hold an attempt back, all client-wide:

- the configured :class:`~hiveon_async.RateLimit`, a token bucket;
- adaptive pacing after a 429 (:mod:`._pacing`), never above the
  configured rate;
- a pause asked for by the server's ``Retry-After``, which holds every task's
  sending, not only the one that got the answer.

The bucket is kept as a "theoretical arrival time" (the GCRA form of a token
bucket): each waiter reserves its slot synchronously, in arrival order, then
sleeps once until it. That makes it first come, first served under any
contention, with no polling, on asyncio and trio alike.
"""

from __future__ import annotations

from .._clock import Clock
from .._config import RateLimit
from ._pacing import AdaptivePacer

__all__ = ["SendGate"]


class SendGate:
    """Decides when each attempt may go out.

    Args:
        rate_limit: The configured ceiling, or None for none.
        adaptive: Whether to pace after throttling.
        clock: The client's clock: the time, and how to wait.
    """

    def __init__(
        self, rate_limit: RateLimit | None, *, adaptive: bool = True, clock: Clock
    ) -> None:
        self._limit = rate_limit
        self.pacer = AdaptivePacer() if adaptive else None
        self.clock = clock
        self._tat = -float("inf")  # the theoretical arrival time of the next request
        self._paused_until = -float("inf")
        #: Seconds of client-wide pauses so far (overlapping pauses counted once).
        self.paused_total = 0.0

    def _interval_and_burst(self) -> tuple[float, int] | None:
        """Return (seconds between requests, burst) in force now, or None for no limit."""
        paced = self.pacer.rate if self.pacer is not None and not self.clock.testing else None
        limit = self._limit
        if limit is None:
            return None if paced is None else (1.0 / paced, 1)
        if paced is None or paced >= limit.per_second:
            return 1.0 / limit.per_second, limit.burst
        return 1.0 / paced, 1

    async def wait_turn(self) -> float:
        """Wait until this attempt may be sent; return the time it went.

        Raises:
            Whatever cancels the waiting task; its reserved slot is given back
            when nobody reserved after it.
        """
        clock = self.clock
        now = clock.now()
        if now < self._paused_until:
            now = await self._hold(now)
        shape = self._interval_and_burst()
        if shape is not None:
            interval, burst = shape
            slot = max(now, self._tat - (burst - 1) * interval)
            self._tat = max(self._tat, slot) + interval
            reserved = self._tat
            if slot > now:
                try:
                    await clock.space(slot - now)
                except BaseException:
                    if self._tat == reserved:  # nobody queued behind us: hand the slot back
                        self._tat -= interval
                    raise
                now = clock.now()
            if now < self._paused_until:  # a pause that started while we waited holds us too
                now = await self._hold(now)
        if self.pacer is not None:
            self.pacer.on_send(now)
        return now

    async def _hold(self, now: float) -> float:
        """Wait out the client-wide pause, if one is on; return the time after it."""
        while now < self._paused_until:
            until = self._paused_until
            await self.clock.hold(until - now)
            now = self.clock.now()
            if self._paused_until == until:  # waited out (or skipped in test mode), not extended
                break
        return now

    def pause(self, seconds: float) -> None:
        """Hold all sending for ``seconds`` from now (the server's ``Retry-After``)."""
        now = self.clock.now()
        until = now + seconds
        if until > self._paused_until:
            self.paused_total += until - max(now, self._paused_until)
            self._paused_until = until

    def on_response(self, *, throttled: bool, sent_at: float) -> None:
        """Feed one answer to the pacer: a 429, or anything else."""
        if self.pacer is None:
            return
        now = self.clock.now()
        if throttled:
            self.pacer.on_throttle(now, sent_at)
        else:
            self.pacer.on_success(now)
