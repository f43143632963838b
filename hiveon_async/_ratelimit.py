"""The gate every attempt passes before it is sent.

Three things can hold an attempt back, all client-wide:

- the configured :class:`~hiveon_async.RateLimit`, a token bucket;
- adaptive pacing after a 429 (:mod:`hiveon_async._pacing`), never above the
  configured rate;
- a pause asked for by the server's ``Retry-After``, which holds every task's
  sending, not only the one that got the answer.

The bucket is kept as a "theoretical arrival time" (the GCRA form of a token
bucket): each waiter reserves its slot synchronously, in arrival order, then
sleeps once until it. That makes it first come, first served under any
contention, with no polling, on asyncio and trio alike.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable

import anyio

from ._config import RateLimit
from ._pacing import AdaptivePacer
from ._retry import is_testing


class SendGate:
    """Decides when each attempt may go out.

    Args:
        rate_limit: The configured ceiling, or None for none.
        adaptive: Whether to pace after throttling.
        clock: A monotonic clock in seconds (tests inject a fake one).
        sleep: An async sleep (tests inject one that advances the fake clock).
    """

    def __init__(
        self,
        rate_limit: RateLimit | None,
        *,
        adaptive: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._limit = rate_limit
        self.pacer = AdaptivePacer() if adaptive else None
        self._clock = clock
        self._sleep = sleep
        self._tat = -float("inf")  # the theoretical arrival time of the next request
        self._paused_until = -float("inf")

    def _interval_and_burst(self) -> tuple[float, int] | None:
        """Return (seconds between requests, burst) in force now, or None for no limit."""
        paced = self.pacer.rate if self.pacer is not None and not is_testing() else None
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
        now = self._clock()
        if now < self._paused_until and not is_testing():
            await self._sleep(self._paused_until - now)
            now = self._clock()
        shape = self._interval_and_burst()
        if shape is not None:
            interval, burst = shape
            slot = max(now, self._tat - (burst - 1) * interval)
            self._tat = max(self._tat, slot) + interval
            reserved = self._tat
            if slot > now:
                try:
                    await self._sleep(slot - now)
                except BaseException:
                    if self._tat == reserved:  # nobody queued behind us: hand the slot back
                        self._tat -= interval
                    raise
                now = self._clock()
            # A pause that started while we waited holds us too.
            while now < self._paused_until and not is_testing():
                await self._sleep(self._paused_until - now)
                now = self._clock()
        if self.pacer is not None:
            self.pacer.on_send(now)
        return now

    def pause(self, seconds: float) -> None:
        """Hold all sending for ``seconds`` from now (the server's ``Retry-After``)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def on_response(self, *, throttled: bool, sent_at: float) -> None:
        """Feed one answer to the pacer: a 429, or anything else."""
        if self.pacer is None:
            return
        now = self._clock()
        if throttled:
            self.pacer.on_throttle(now, sent_at)
        else:
            self.pacer.on_success(now)


class Slots:
    """A client-wide bound on requests in flight, so a pool never waits for a connection.

    Like ``anyio.CapacityLimiter``, but taking a free slot is a plain call that
    does not yield to the event loop: on the hot path (a slot is almost always
    free) it costs a counter. Waiters queue first come, first served.

    Args:
        total: The most requests in flight at once.
    """

    def __init__(self, total: int) -> None:
        self._free = total
        self._waiters: deque[anyio.Event] = deque()

    def try_take(self) -> bool:
        """Take a free slot if there is one and nobody is waiting for it; no I/O."""
        if self._free and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        """Wait in line for a slot (after :meth:`try_take` said no)."""
        handed = anyio.Event()
        self._waiters.append(handed)
        try:
            await handed.wait()
        except BaseException:
            if handed.is_set():
                self.release()  # handed a slot just as we were cancelled: pass it on
            else:
                self._waiters.remove(handed)
            raise

    def release(self) -> None:
        """Give a slot back: to the next in line, or to the free count."""
        if self._waiters:
            self._waiters.popleft().set()  # hand the slot straight to the next in line
        else:
            self._free += 1
