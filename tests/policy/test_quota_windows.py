"""Quotas per window (10 s, a minute): the gate holds when one closes, then uses the next.

A 429 whose Retry-After is 2 s or more speaks of a window, not a rate: every task
holds until then, and one probe goes first. Let through, the server forgot the
old window, and each window's allowance goes at once; refused, the server still
weighs the old window in, and the gate paces at what got through while the
window was open. On virtual time (``fake_time.py``), against the limiters of
``limiters.py``: an exact sliding window, HAProxy's fading ``http_req_rate`` and
fixed windows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pytest

from hiveon_async._clock import set_testing
from hiveon_async._policy._gate import SendGate

from .fake_time import FakeTime
from .limiters import BatchRun, FixedWindow, HaproxyRate, Limiter, SlidingWindow, run_batch

pytestmark = pytest.mark.anyio

CONCURRENCY = 32


@pytest.fixture(autouse=True)
def pacing_on() -> Iterator[None]:
    """The gate paces only while set_testing is off."""
    with set_testing(False):
        yield


async def batch(limiter: Limiter, ids: int, window: float) -> tuple[BatchRun, SendGate]:
    """Run ``ids`` through a learning gate against ``limiter``."""
    clock = FakeTime()
    gate = SendGate(None, adaptive=True, clock=clock)
    run = await run_batch(
        clock, gate, limiter, ids=ids, concurrency=CONCURRENCY, retry_after=window
    )
    return run, gate


def refused_after_the_first_window(run: BatchRun, window: float) -> int:
    return sum(1 for when in run.sent[run.requests - run.refused :] if when >= window)


@pytest.mark.parametrize(
    # Factories: a limiter keeps its count, and each backend's run needs a fresh one.
    ("make", "ids", "best"),
    [
        # An exact sliding window: each allowance at once, as the window moves.
        (lambda: SlidingWindow(50, window=10.0), 150, 20.0),
        (lambda: SlidingWindow(500, window=60.0), 2000, 180.0),
        # Fixed windows (the batch starts 7 s before one ends): each used whole at its start.
        (lambda: FixedWindow(50, 10.0, offset=-3.0), 300, 47.0),
        # ... and when an earlier run spent 30 of the first: the allowance grows back.
        (lambda: FixedWindow(50, 10.0, offset=-3.0, spent=30), 300, 57.0),
    ],
)
async def test_a_window_that_the_server_forgets_is_used_at_once(
    make: Callable[[], Limiter], ids: int, best: float
) -> None:
    """Within 1% of the best schedule; after the first window, one refusal per window."""
    limiter = make()
    window = limiter.burst / limiter.rate
    run, gate = await batch(limiter, ids, window)

    assert run.finished <= 1.01 * best
    # The first window costs what was in flight when it closed (up to the concurrency);
    # then each window ends with one refused probe, a few more while the allowance grows.
    windows = math.ceil(best / window)
    assert run.refused <= CONCURRENCY + windows + 5
    assert gate._window_bursts is True
    assert gate.paced_rate is None  # no pace: each window's allowance goes at once


async def test_a_window_the_server_weighs_in_is_paced() -> None:
    """HAProxy's http_req_rate: a burst is refused well into the next period, so: pace."""
    run, gate = await batch(HaproxyRate(50, 10.0), 300, 10.0)

    # After the first allowance nothing beats the pace of 50 per 10 s: 50 s for 300.
    assert run.finished <= 1.6 * 50.0
    assert run.refused <= CONCURRENCY + 8
    assert gate._window_bursts is False
    assert gate.paced_rate is not None
    assert gate.paced_rate <= 5.0


async def test_a_refusal_before_anything_got_through_holds_briefly() -> None:
    """HAProxy still counting the last window: short holds, not a whole window each."""
    run, gate = await batch(HaproxyRate(50, 10.0), 150, 10.0)

    # Two windows' holds (the first allowance, then one refusal after things got
    # through), and short ones (a tenth of the window) while the old count fades:
    # a whole window for each of those would be 50 s more.
    assert gate.paused_total < 3 * 10.0
    assert run.finished <= 1.6 * 30.0


async def test_short_retry_afters_are_rates_not_windows() -> None:
    """A 1 s Retry-After (a per-second limit) is left to the rate learner: no window pace."""
    run, gate = await batch(SlidingWindow(100), 800, 1.0)
    assert gate._window_rate is None
    assert gate._window_bursts is None
    assert run.finished < 12.0


async def test_a_quota_used_up_beyond_max_hold_holds_nobody() -> None:
    """Retry-After: 3600 over a max_hold of 60: the call fails at once, the gate holds no one."""
    clock = FakeTime()
    gate = SendGate(None, adaptive=True, clock=clock)
    gate.max_hold = 60.0
    sent_at = await gate.wait_turn()
    gate.on_response(throttled=True, sent_at=sent_at, retry_after=3600.0)
    gate.done()

    assert gate.paused_total == 0.0
    assert gate._window_rate is None
    assert await gate.wait_turn() == clock.now()  # the next call goes at once
    gate.done()
