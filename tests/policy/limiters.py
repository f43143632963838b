"""Rate-limiting servers on virtual time, and a batch that runs against them through a gate.

The two limiters are models of the real ones the benchmarks use
(``tests/benchmarks/ratelimited.py``): nginx's ``limit_req`` (a token bucket
with a burst, ``nodelay``) and HAProxy's ``http_req_rate`` stick table (a
sliding one-second window that counts refused requests too). Both answer 429
with ``Retry-After: 1``. On virtual time a batch of thousands of requests
runs in a second or two and gives the same figures every time.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from hiveon_async._policy._gate import SendGate

from .fake_time import FakeTime

__all__ = [
    "BatchRun",
    "FixedWindow",
    "HaproxyRate",
    "Limiter",
    "SlidingWindow",
    "TokenBucket",
    "run_batch",
]


class Limiter(Protocol):
    """A server's view of one key: admit a request arriving at ``now``, or refuse it."""

    rate: float
    #: Requests admitted at once from idle: the bucket's burst, a window's whole allowance.
    burst: int

    def admit(self, now: float) -> bool: ...


class TokenBucket:
    """nginx ``limit_req rate=R burst=B nodelay``: ``burst`` at once, then one per 1/R s."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._tat = 0.0

    def admit(self, now: float) -> bool:
        tat = max(self._tat, now)
        if tat - now > (self.burst - 1) / self.rate + 1e-9:
            return False  # a refusal costs nothing: it takes no token
        self._tat = tat + 1 / self.rate
        return True


class SlidingWindow:
    """``quota`` requests in any ``window`` seconds; every request counts, refused or not.

    Over 1 s this is HAProxy's ``sc_http_req_rate(0) gt quota``, read exactly.
    """

    def __init__(self, quota: int, window: float = 1.0) -> None:
        self.rate = quota / window
        self.burst = quota
        self._window = window
        self._seen: deque[float] = deque()

    def admit(self, now: float) -> bool:
        seen = self._seen
        seen.append(now)
        while seen[0] <= now - self._window:
            seen.popleft()
        return len(seen) <= self.burst


class HaproxyRate:
    """HAProxy's ``http_req_rate(<window>)``: this period's count plus the last one's, fading.

    The rate at ``now`` is the current period's count plus the previous period's
    weighted by the share of the window still to run; every request counts,
    refused or not; over ``quota`` is refused. A burst therefore keeps refusing
    well into the next period: its count fades out linearly.
    """

    def __init__(self, quota: int, window: float) -> None:
        self.rate = quota / window
        self.burst = quota
        self._quota = quota
        self._window = window
        self._period = 0
        self._current = 0
        self._previous = 0

    def admit(self, now: float) -> bool:
        period = int(now // self._window)
        if period != self._period:
            self._previous = self._current if period == self._period + 1 else 0
            self._period, self._current = period, 0
        self._current += 1
        elapsed = now - period * self._window
        rate = self._current + self._previous * (self._window - elapsed) / self._window
        return rate <= self._quota


class FixedWindow:
    """``quota`` requests per fixed window of ``window`` seconds; refused until it ends.

    Windows start at ``offset`` + k x ``window``; ``spent`` requests of the first one
    are used before the batch (an earlier run). A refusal's ``Retry-After`` is the
    whole seconds until the window ends, as a quota server says it.
    """

    def __init__(self, quota: int, window: float, *, offset: float = 0.0, spent: int = 0) -> None:
        self.rate = quota / window
        self.burst = quota
        self._quota = quota
        self._window = window
        self._offset = offset
        self._current = 0
        self._count = spent

    def _index(self, now: float) -> int:
        return int((now - self._offset) // self._window)

    def admit(self, now: float) -> bool:
        index = self._index(now)
        if index != self._current:
            self._current, self._count = index, 0
        if self._count >= self._quota:
            return False
        self._count += 1
        return True

    def retry_after(self, now: float) -> float:
        ends = self._offset + (self._index(now) + 1) * self._window
        return float(max(1, math.ceil(ends - now)))


@dataclass
class BatchRun:
    """What a batch saw: when each request went, and which were refused."""

    sent: list[float] = field(default_factory=list)
    refused: int = 0
    finished: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.sent)

    def share_of(self, limiter: Limiter, ids: int) -> float:
        """The share of the allowed rate the batch got: ideal time / time taken."""
        ideal = (ids - limiter.burst) / limiter.rate
        return ideal / self.finished


async def run_batch(
    clock: FakeTime,
    gate: SendGate,
    limiter: Limiter,
    *,
    ids: int,
    concurrency: int = 32,
    latency: float = 0.005,
    retry_after: float = 1.0,
    connect: float = 0.0,
) -> BatchRun:
    """Stop ``ids`` deployments through ``gate``, as the engine does, against ``limiter``.

    Each worker takes a turn at the gate, spends ``latency`` on the exchange,
    tells the gate the answer and ends the attempt; a refused request waits
    its ``Retry-After`` before its retry, as the engine's retry loop does
    (``retry_after``, or a :class:`FixedWindow`'s seconds until its window ends).
    The first request opens the connection: it reaches the server ``connect``
    seconds after it went.
    """
    run = BatchRun()
    left = ids

    async def worker() -> None:
        nonlocal left
        while left:
            left -= 1
            while True:
                sent_at = await gate.wait_turn()
                late = connect if not run.sent else 0.0
                run.sent.append(sent_at)
                if late:
                    await clock.sleep(late)
                admitted = limiter.admit(sent_at + late)
                await clock.sleep(latency)
                wait = (
                    limiter.retry_after(sent_at)
                    if isinstance(limiter, FixedWindow)
                    else retry_after
                )
                gate.on_response(
                    throttled=not admitted,
                    sent_at=sent_at,
                    retry_after=None if admitted else wait,
                )
                gate.done()
                if admitted:
                    break
                run.refused += 1
                await clock.sleep(wait)
        run.finished = max(run.finished, clock.now())

    await clock.run(*[worker] * concurrency)
    return run
