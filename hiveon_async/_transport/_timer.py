"""The wall-clock bound on each attempt: one timer per client, not one per attempt.

httpx's timeouts bound each read; a server that trickles a byte at a time never
trips them, so every attempt also gets a bound of its own (the sum of the
timeout's phases, :func:`attempt_limit`).

On asyncio a cancel scope with a deadline for every attempt arms and disarms
an event-loop timer each time, which made it the largest part of the client's
own cost per call. Every attempt of a client has
the same limit, so deadlines come due in the order the attempts started: the
client keeps its running attempts in that order, with one timer for the
oldest. When the timer finds an attempt past its deadline it cancels the
attempt's task, with the protocol ``asyncio.timeout()`` uses (``Task.cancelling``
and ``Task.uncancel``): the cancellation it asked for alone ends the attempt as
expired; one that anyone else asked for as well goes on propagating.

On trio each attempt is an anyio cancel scope with a deadline, as before: trio
keeps its deadlines cheaply itself.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from .._http_library import AnyTimeout

__all__ = ["AttemptTimer", "attempt_limit", "running_loop"]


def attempt_limit(timeout: AnyTimeout) -> float | None:
    """Wall-clock bound on one attempt: the sum of the phases' timeouts (None if any is off)."""
    phases = (timeout.connect, timeout.write, timeout.read, timeout.pool)
    if any(phase is None for phase in phases):
        return None
    return sum(phase for phase in phases if phase is not None)


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The running asyncio event loop, or None when there is none (under trio)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class AttemptTimer:
    """Bounds the wall time of each attempt of one client.

    Args:
        limit: Seconds an attempt may take in all.
    """

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self._loop: asyncio.AbstractEventLoop | None = None
        # Running attempts in the order they started, which is the order they come due.
        self._running: dict[_LoopAttempt, float] = {}
        self._handle: asyncio.TimerHandle | None = None

    def attempt(self) -> _LoopAttempt | _ScopedAttempt:
        """Return the bound for one attempt: ``with`` it around the attempt.

        The context manager swallows the cancellation it caused; its
        ``expired`` attribute tells, after the block, whether the limit cut it.
        """
        loop = running_loop()
        if loop is None:
            return _ScopedAttempt(self.limit)
        if loop is not self._loop:  # first use, or a client reused on a new loop
            self._loop, self._running, self._handle = loop, {}, None
        return _LoopAttempt(self)

    def _start(self, attempt: _LoopAttempt) -> None:
        loop = self._loop
        assert loop is not None  # set by attempt(), which made this one
        deadline = loop.time() + self.limit
        self._running[attempt] = deadline
        if self._handle is None:
            self._handle = loop.call_at(deadline, self._expire)

    def _finish(self, attempt: _LoopAttempt) -> None:
        self._running.pop(attempt, None)

    def _expire(self) -> None:
        """The timer: cut every attempt past its deadline, then wait for the next one."""
        self._handle = None
        loop = self._loop
        assert loop is not None
        now = loop.time()
        for attempt, deadline in list(self._running.items()):
            if deadline > now:
                self._handle = loop.call_at(deadline, self._expire)
                return
            del self._running[attempt]
            attempt.fire()


class _LoopAttempt:
    """One attempt on asyncio, which the client's timer cancels once it is overdue."""

    __slots__ = ("_cancelling", "_fired", "_task", "_timer", "expired")

    def __init__(self, timer: AttemptTimer) -> None:
        self._timer = timer
        self._fired = False
        self.expired = False

    def __enter__(self) -> None:
        task = asyncio.current_task()
        assert task is not None, "an attempt runs in a task"
        self._task = task
        self._cancelling = task.cancelling()  # cancellations already asked for, not ours
        self._timer._start(self)

    def fire(self) -> None:
        """Cancel the attempt (the timer calls this while the task waits inside it)."""
        self._fired = True
        self._task.cancel()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        self._timer._finish(self)
        if not self._fired:
            return False
        # Take our cancellation back. Only when nobody else asked for one too is the
        # CancelledError ours to swallow (asyncio.Timeout.__aexit__ decides the same way).
        if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            self.expired = True
            return True
        return False


class _ScopedAttempt:
    """One attempt on trio: an anyio cancel scope with a deadline."""

    __slots__ = ("_scope", "expired")

    def __init__(self, limit: float) -> None:
        self._scope = anyio.CancelScope(deadline=anyio.current_time() + limit)
        self.expired = False

    def __enter__(self) -> None:
        self._scope.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        swallowed = bool(self._scope.__exit__(exc_type, exc, traceback))
        self.expired = self._scope.cancelled_caught
        return swallowed
