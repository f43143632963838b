"""Quotas per window (10 s, a minute): the gate holds when one closes, then keeps its pace.

A 429 whose Retry-After is 2 s or more speaks of a window, not a rate: every task
holds until then, and the gate paces from then on at what got through while the
window was open. On virtual time (``fake_time.py``), against the limiters of
``limiters.py``: an exact sliding window, HAProxy's fading ``http_req_rate`` and
fixed windows.
"""

from __future__ import annotations

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
    ("make", "ids", "best", "slowest"),
    [
        # An exact sliding window: the first allowance at once, then its pace.
        (lambda: SlidingWindow(50, window=10.0), 150, 30.0, 1.05),
        (lambda: SlidingWindow(500, window=60.0), 2000, 240.0, 1.05),
        # HAProxy: a burst's count fades through the next period, so after the first
        # allowance no schedule beats the pace of quota per window (30 s for 150).
        (lambda: HaproxyRate(50, 10.0), 300, 50.0, 1.6),
        # Fixed windows: the pace uses each one whole, a little late.
        (lambda: FixedWindow(50, 10.0, offset=-3.0), 300, 57.0, 1.3),
    ],
)
async def test_a_window_is_held_for_then_paced(
    make: Callable[[], Limiter], ids: int, best: float, slowest: float
) -> None:
    """Time within reach of the best schedule; the refusals are the first window's, nearly."""
    limiter = make()
    window = limiter.burst / limiter.rate
    run, gate = await batch(limiter, ids, window)

    assert run.finished <= slowest * best
    # The first window costs what was in flight when it closed (up to the concurrency);
    # after it, a few refusals at most while the pace settles.
    assert run.refused <= CONCURRENCY + 8
    assert gate.paced_rate is not None
    if not isinstance(limiter, FixedWindow):
        # A fixed window's first one may be short (we start inside it): its pace is
        # higher, and the window's end refuses the excess with one more hold.
        assert gate.paced_rate <= limiter.rate


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
    assert run.finished < 12.0
