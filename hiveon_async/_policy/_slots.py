"""A client-wide bound on requests in flight."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import anyio

from .._clock import current_loop

__all__ = ["Slots"]


class Slots:
    """A client-wide bound on requests in flight, so a pool never waits for a connection.

    Like ``anyio.CapacityLimiter``, but taking a free slot is a plain call that
    does not yield to the event loop: on the hot path (a slot is almost always
    free) it costs a counter. Waiters queue first come, first served.

    The count belongs to one event loop at a time. Used from a new loop (a
    second ``asyncio.run``, a test's own loop), the slots start over, all free:
    the old loop's waiters and holders cannot come back (a holder that still
    releases from there is ignored), and ``on_new_loop`` is told.

    Args:
        total: The most requests in flight at once.
        on_new_loop: Called (sync) when the slots are first used from a new
            event loop, before anything is taken on it.
    """

    def __init__(self, total: int, *, on_new_loop: Callable[[], None] | None = None) -> None:
        self._total = total
        self._free = total
        self._owed = 0  # slots to retire as they come back (after shrink)
        self._waiters: deque[anyio.Event] = deque()
        self._loop: object | None = None
        self.on_new_loop = on_new_loop

    def _here(self) -> None:
        """Start over when the running event loop is not the one the count belongs to."""
        loop = current_loop()
        if loop is self._loop:
            return
        self._loop = loop
        self._free, self._owed = self._total, 0
        self._waiters.clear()  # the old loop's: nothing can wake them, nobody waits on them
        if self.on_new_loop is not None:
            self.on_new_loop()

    def grow(self, count: int) -> None:
        """Add ``count`` slots, handing them to waiters first."""
        self._here()
        self._total += count
        for _ in range(count):
            if self._owed:
                self._owed -= 1
            else:
                self._give()

    def shrink(self, count: int) -> None:
        """Remove ``count`` slots: free ones at once, busy ones as they come back."""
        self._here()
        self._total -= count
        retired = min(count, self._free)
        self._free -= retired
        self._owed += count - retired

    def try_take(self) -> bool:
        """Take a free slot if there is one and nobody is waiting for it; no I/O."""
        self._here()
        if self._free and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        """Wait in line for a slot (after :meth:`try_take` said no)."""
        self._here()
        handed = anyio.Event()
        self._waiters.append(handed)
        try:
            await handed.wait()
        except BaseException:
            if handed.is_set():
                self.release()  # handed a slot just as we were cancelled: pass it on
            elif handed in self._waiters:  # else dropped already, when the loop changed
                self._waiters.remove(handed)
            raise

    def release(self) -> None:
        """Give a slot back: retire it if the slots shrank, else to the next in line or free."""
        if current_loop() is not self._loop:
            return  # taken on a loop that is gone: the count started over without it
        if self._owed:
            self._owed -= 1
            return
        self._give()

    def _give(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()  # hand the slot straight to the next in line
        else:
            self._free += 1
