"""Virtual time for the gate's tests: no real time passes and no task polls."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel

from hiveon_async._clock import Clock

__all__ = ["FakeTime"]


class FakeTime(Clock):
    """Virtual time: a clock whose every wait parks the task until :meth:`run` moves time on.

    :meth:`run` moves the clock to the next wake-up whenever every task it
    runs is parked or done, so no real time passes and no task polls.
    """

    def __init__(self) -> None:
        self.time = 0.0
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._order = itertools.count()
        self._changed = anyio.Event()

    def now(self) -> float:
        return self.time

    async def space(self, seconds: float) -> None:
        await self.sleep(seconds)

    async def hold(self, seconds: float) -> None:
        await self.sleep(seconds)

    async def backoff(self, seconds: float) -> None:
        await self.sleep(seconds)

    async def sleep(self, seconds: float) -> None:
        entry = (self.time + seconds, next(self._order), anyio.Event())
        heapq.heappush(self._sleepers, entry)
        self._changed.set()
        try:
            await entry[2].wait()
        finally:
            if entry in self._sleepers:  # cancelled while parked
                self._sleepers.remove(entry)
                heapq.heapify(self._sleepers)
                self._changed.set()

    async def parked(self) -> None:
        """Return once some task is parked in :meth:`sleep`."""
        while not self._sleepers:
            self._changed = anyio.Event()
            await self._changed.wait()

    @staticmethod
    async def settle(tasks: int) -> None:
        """Let every runnable task run until it parks: in a sleep, or queued behind another.

        Waiters queued at the gate wake one another in a chain, one per scheduling
        round, so the rounds needed grow with the number of tasks.
        """
        for _ in range(SETTLE_CHECKPOINTS + 2 * tasks):
            await anyio.lowlevel.checkpoint()

    async def run(self, *tasks: Callable[[], Awaitable[object]]) -> None:
        """Run ``tasks`` concurrently to the end, driving the clock.

        Whenever every task is parked (asleep, or queued at the gate behind a
        sleeper), time moves on to the earliest wake-up.
        """
        done = 0

        async def track(task: Callable[[], Awaitable[object]]) -> None:
            nonlocal done
            await task()
            done += 1

        async with anyio.create_task_group() as tg:
            for task in tasks:
                tg.start_soon(track, task)
            while True:
                await self.settle(len(tasks))
                if done == len(tasks):
                    break
                assert self._sleepers, "every task is blocked and none sleeps: a deadlock"
                wake, _, event = heapq.heappop(self._sleepers)
                self.time = max(self.time, wake)
                event.set()


#: Scheduling rounds, beyond two per task, after which every task has parked again.
SETTLE_CHECKPOINTS = 20
