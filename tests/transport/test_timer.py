"""AttemptTimer: every attempt ends by its own deadline, however many share the client's timer."""

from __future__ import annotations

import asyncio

import anyio
import anyio.lowlevel
import pytest

from hiveon_async._transport._timer import AttemptTimer, _LoopAttempt

pytestmark = pytest.mark.anyio

LIMIT = 0.05
#: Generous bound for attempts that must end by themselves: the test fails instead of hanging.
HANG = 10.0


async def bounded(timer: AttemptTimer, work: float) -> tuple[bool, float]:
    """Run an attempt of ``work`` seconds under ``timer``; return (cut off, seconds taken)."""
    started = anyio.current_time()
    attempt = timer.attempt()
    with attempt:
        await anyio.sleep(work)
    return attempt.expired, anyio.current_time() - started


async def test_an_attempt_past_its_limit_is_cut_off() -> None:
    timer = AttemptTimer(LIMIT)

    with anyio.fail_after(HANG):
        expired, took = await bounded(timer, HANG * 2)

    assert expired
    assert took >= LIMIT


async def test_an_attempt_within_its_limit_runs_to_the_end() -> None:
    timer = AttemptTimer(1.0)

    expired, _ = await bounded(timer, 0)

    assert not expired


async def test_each_of_many_attempts_ends_at_its_own_deadline() -> None:
    """Staggered attempts sharing one timer: each is cut no earlier than its own deadline."""
    timer = AttemptTimer(LIMIT)
    results: dict[int, tuple[bool, float]] = {}

    async def run(index: int) -> None:
        results[index] = await bounded(timer, HANG * 2)

    with anyio.fail_after(HANG):
        async with anyio.create_task_group() as group:
            for index in range(5):
                group.start_soon(run, index)
                await anyio.sleep(LIMIT / 4)  # the later ones start while the first are running

    assert all(expired for expired, _ in results.values())
    assert all(took >= LIMIT for _, took in results.values())


async def test_attempts_that_finish_leave_later_ones_their_full_limit() -> None:
    """Short attempts come and go; a long one started after them is cut at its own deadline."""
    timer = AttemptTimer(LIMIT)
    for _ in range(20):
        expired, _ = await bounded(timer, 0)
        assert not expired

    with anyio.fail_after(HANG):
        quick, long = await bounded(timer, 0), await bounded(timer, HANG * 2)

    assert quick[0] is False
    assert long[0] is True
    assert long[1] >= LIMIT


async def test_a_cancellation_from_outside_is_not_a_timeout() -> None:
    """Cancelled by the caller's own scope, the attempt re-raises the cancellation."""
    timer = AttemptTimer(HANG)
    attempt = timer.attempt()

    with anyio.move_on_after(LIMIT) as outer:
        with attempt:
            await anyio.sleep(HANG * 2)

    assert outer.cancelled_caught
    assert not attempt.expired


async def test_an_attempt_cut_off_leaves_the_task_uncancelled() -> None:
    """After the timer cuts an attempt, the task goes on awaiting normally."""
    timer = AttemptTimer(LIMIT)

    with anyio.fail_after(HANG):
        expired, _ = await bounded(timer, HANG * 2)
        await anyio.lowlevel.checkpoint()
        await anyio.sleep(0.01)

    assert expired


def test_a_timer_reused_on_a_new_event_loop_still_cuts_attempts() -> None:
    """A client's timer follows it from one ``asyncio.run`` to the next."""
    timer = AttemptTimer(LIMIT)

    async def once() -> bool:
        expired, _ = await bounded(timer, HANG * 2)
        return expired

    assert asyncio.run(asyncio.wait_for(once(), HANG))
    assert asyncio.run(asyncio.wait_for(once(), HANG))


async def test_a_cancellation_racing_the_timer_is_not_lost(anyio_backend: str) -> None:
    """The timer and the caller cancel at the same moment: the caller's cancellation still lands."""
    if anyio_backend != "asyncio":
        pytest.skip("the shared timer is asyncio's; trio cancels with a scope per attempt")
    timer = AttemptTimer(HANG)
    attempt = timer.attempt()
    assert isinstance(attempt, _LoopAttempt)

    with anyio.fail_after(HANG):
        with anyio.CancelScope() as outer:

            def both() -> None:
                attempt.fire()  # as the timer would, at the deadline
                outer.cancel()  # and the caller, at the same moment

            asyncio.get_running_loop().call_soon(both)
            with attempt:
                await anyio.sleep(HANG * 2)
            await anyio.sleep(HANG * 2)  # a checkpoint after the attempt

    assert outer.cancelled_caught


async def test_a_task_cancelled_by_someone_else_too_stays_cancelled(anyio_backend: str) -> None:
    """Timer and another canceller at once: not 'expired', and the task ends cancelled."""
    if anyio_backend != "asyncio":
        pytest.skip("the shared timer is asyncio's; trio cancels with a scope per attempt")
    timer = AttemptTimer(HANG)
    attempts: list[_LoopAttempt] = []

    async def run() -> None:
        attempt = timer.attempt()
        assert isinstance(attempt, _LoopAttempt)
        attempts.append(attempt)
        with attempt:
            await asyncio.sleep(HANG * 2)

    task = asyncio.ensure_future(run())
    await asyncio.sleep(0)  # let it enter the attempt

    attempts[0].fire()  # the timer
    task.cancel()  # and someone else, before the task wakes up
    with anyio.fail_after(HANG), pytest.raises(asyncio.CancelledError):
        await task

    assert task.cancelled()
    assert not attempts[0].expired
