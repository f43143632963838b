"""Time and waiting for one client, and the test mode that makes waits instant.

The rate gate, the adaptive pacer and the retry loop read the time and wait
through one :class:`Clock` object that the client's engine owns, so a test can
hand the whole client one fake clock instead of patching library globals.
"""

from __future__ import annotations

import asyncio
import sys
import time
from types import TracebackType

import anyio

__all__ = ["Clock", "current_loop", "set_testing"]


class _TestMode:
    """Process-wide: whether waits the tests should not sit through are skipped."""

    instant_waits = False


def set_testing(instant_waits: bool) -> _RestoreTesting:
    """Turn test mode on or off; usable as a context manager that restores the previous mode.

    In test mode every client skips retry backoff and the client-wide pause a
    ``Retry-After`` asks for, and does not pace itself after 429s. A configured
    :class:`~hiveon_async.RateLimit` still holds. Nothing else changes: every
    attempt is still sent and every decision still made.

    Args:
        instant_waits: True to skip those waits, False for real ones.

    Returns:
        A context manager: ``with set_testing(True): ...`` restores the mode
        that was in force before the call when the block ends. Called without
        ``with``, the new mode simply stays.

    Example:
        >>> with set_testing(True):
        ...     assert is_testing()  # retries and pauses happen at once
        >>> is_testing()
        False
    """
    previous = _TestMode.instant_waits
    _TestMode.instant_waits = instant_waits
    return _RestoreTesting(previous)


class _RestoreTesting:
    """Restores the test mode that was in force before :func:`set_testing`."""

    __slots__ = ("_previous",)

    def __init__(self, previous: bool) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _TestMode.instant_waits = self._previous


def is_testing() -> bool:
    """Return True while :func:`set_testing` has made waits instant."""
    return _TestMode.instant_waits


class Clock:
    """The monotonic time, and the three kinds of wait a client does.

    - :meth:`space` spaces requests out to honour a configured rate limit; it
      is always real.
    - :meth:`hold` waits out a client-wide pause (the server's
      ``Retry-After``), and :meth:`backoff` waits between a call's attempts;
      both are skipped in test mode.
    """

    @property
    def testing(self) -> bool:
        """True while test mode is on (waits skipped, no adaptive pacing)."""
        return _TestMode.instant_waits

    def now(self) -> float:
        """Seconds on a monotonic clock."""
        return time.monotonic()

    def wall(self) -> float:
        """Seconds since the epoch (to read a ``Retry-After`` given as an HTTP-date)."""
        return time.time()

    async def space(self, seconds: float) -> None:
        """Wait before sending, so that the configured rate is kept."""
        await anyio.sleep(seconds)

    async def hold(self, seconds: float) -> None:
        """Wait out a client-wide pause (skipped in test mode)."""
        if not _TestMode.instant_waits:
            await anyio.sleep(seconds)

    async def backoff(self, seconds: float) -> None:
        """Wait before a call's next attempt (skipped in test mode)."""
        if not _TestMode.instant_waits:
            await anyio.sleep(seconds)


def current_loop() -> object | None:
    """The running event loop: asyncio's loop, trio's run token, or None outside both.

    Cheap on asyncio (a lookup); each ``trio.run`` has a token of its own. The
    pool and the connection slots belong to one loop and start over on another.
    """
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    trio = sys.modules.get("trio")  # never imported here: loaded only if trio may be running
    if trio is None:
        return None
    try:
        token: object = trio.lowlevel.current_trio_token()
    except RuntimeError:
        return None
    return token
