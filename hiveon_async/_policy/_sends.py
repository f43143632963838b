"""This client's recent send times, weighed as a sliding window's estimate weighs them.

The gate asks, on answers that say nothing remains and on waits for credit,
how much of an announced window its own sends fill (see
:meth:`~._gate.SendGate.advise`). A send counts whole for a window after it,
then less and less over a second window, as HAProxy's, nginx's and
Cloudflare's estimates weigh the previous window. Kept as two queues, the last
window's sends and the older ones with the sum of their times, each question
costs a constant time, however many sends the window holds.
"""

from __future__ import annotations

from collections import deque

__all__ = ["SendRecord"]


class SendRecord:
    """Send times, oldest first, split at the last window asked about."""

    __slots__ = ("_older", "_older_sum", "_recent")

    def __init__(self) -> None:
        self._older: deque[float] = deque()  # at or before the split
        self._older_sum = 0.0
        self._recent: deque[float] = deque()  # after the split

    def __len__(self) -> int:
        return len(self._older) + len(self._recent)

    def first(self) -> float:
        """The oldest send kept (there must be one)."""
        return self._older[0] if self._older else self._recent[0]

    def add(self, now: float) -> None:
        """Record a send at ``now`` (times only grow)."""
        self._recent.append(now)

    def forget(self, cutoff: float) -> None:
        """Drop the sends at or before ``cutoff``."""
        older, recent = self._older, self._recent
        while older and older[0] <= cutoff:
            self._older_sum -= older.popleft()
        if not older:
            self._older_sum = 0.0  # no rounding left behind
            while recent and recent[0] <= cutoff:
                recent.popleft()

    def weighed(self, now: float, window: float) -> float:
        """Sends over the last ``window``, plus those of the window before, fading.

        A send ``age`` seconds old counts ``min(1, 2 - age / window)``; sends two
        windows old or more are dropped.
        """
        self.forget(now - 2 * window)
        split = now - window
        older, recent = self._older, self._recent
        while recent and recent[0] <= split:
            moved = recent.popleft()
            older.append(moved)
            self._older_sum += moved
        while older and older[-1] > split:  # a longer window than last time
            moved = older.pop()
            self._older_sum -= moved
            recent.appendleft(moved)
        if not older:
            self._older_sum = 0.0
        count = len(older)
        return len(recent) + 2 * count - (count * now - self._older_sum) / window
