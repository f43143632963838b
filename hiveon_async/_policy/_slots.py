"""A client-wide bound on requests in flight."""

from __future__ import annotations

from collections import deque

import anyio

__all__ = ["Slots"]


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
        self._owed = 0  # slots to retire as they come back (after shrink)
        self._waiters: deque[anyio.Event] = deque()

    def grow(self, count: int) -> None:
        """Add ``count`` slots, handing them to waiters first."""
        for _ in range(count):
            if self._owed:
                self._owed -= 1
            else:
                self._give()

    def shrink(self, count: int) -> None:
        """Remove ``count`` slots: free ones at once, busy ones as they come back."""
        retired = min(count, self._free)
        self._free -= retired
        self._owed += count - retired

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
        """Give a slot back: retire it if the slots shrank, else to the next in line or free."""
        if self._owed:
            self._owed -= 1
            return
        self._give()

    def _give(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()  # hand the slot straight to the next in line
        else:
            self._free += 1
