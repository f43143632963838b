"""The gate under every interleaving: property tests on virtual time, and two regressions.

What must hold whatever arrives when, gives up when, and pauses when:

- in any window of ``w`` seconds at most ``rate * w + burst`` attempts pass,
  pauses included;
- waiters that stay are served first come, first served;
- a waiter that gives up (cancelled, timed out) leaves nothing behind.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterator

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hiveon_async import RateLimit
from hiveon_async._clock import set_testing
from hiveon_async._policy._gate import HEADROOM, SendGate

from .fake_time import FakeTime

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def real_waits() -> Iterator[None]:
    """The gate honours pauses and pacing only while set_testing is off."""
    with set_testing(False):
        yield


def most_in_window(times: list[float], width: float) -> int:
    """The most attempts in any half-open window [t, t + width)."""
    ordered = sorted(times)
    most = 0
    for first, start in enumerate(ordered):
        last = first
        while last < len(ordered) and ordered[last] < start + width - 1e-9:
            last += 1
        most = max(most, last - first)
    return most


async def race(turn: Callable[[], Awaitable[None]], give_up: Awaitable[None]) -> None:
    """Run ``turn`` until it ends or ``give_up`` does, whichever is first; cancel the other."""
    async with anyio.create_task_group() as tg:

        async def go() -> None:
            await turn()
            tg.cancel_scope.cancel()

        async def stop() -> None:
            await give_up
            tg.cancel_scope.cancel()

        tg.start_soon(go)
        tg.start_soon(stop)


#: One waiter: when it arrives, and after how long it gives up (None: it stays).
Waiter = tuple[float, float | None]

waiters = st.lists(
    st.tuples(
        st.floats(0, 3, allow_nan=False).map(lambda t: round(t, 3)),
        st.one_of(st.none(), st.floats(0.001, 2, allow_nan=False)),
    ),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    per_second=st.sampled_from([2.0, 10.0, 50.0]),
    burst=st.integers(1, 5),
    arrivals=waiters,
    pauses=st.lists(
        st.tuples(st.floats(0, 3, allow_nan=False), st.floats(0.01, 1.5, allow_nan=False)),
        max_size=3,
    ),
    anyio_backend=st.just("asyncio"),
)
async def test_no_window_holds_more_than_rate_and_burst_and_order_is_kept(
    per_second: float,
    burst: int,
    arrivals: list[Waiter],
    pauses: list[tuple[float, float]],
    anyio_backend: str,
) -> None:
    """Random arrivals, give-ups and pauses: the bound holds; the waiters who stay, in order."""
    clock = FakeTime()
    gate = SendGate(RateLimit(per_second=per_second, burst=burst), adaptive=False, clock=clock)
    sent: list[float] = []
    order: list[int] = []
    queued: list[int] = []

    def waiter(number: int, arrive: float, patience: float | None) -> Callable[[], Awaitable[None]]:
        async def turn() -> None:
            sent.append(await gate.wait_turn())
            order.append(number)

        async def wait() -> None:
            await clock.sleep(arrive)
            queued.append(number)
            if patience is None:
                await turn()
            else:
                await race(turn, clock.sleep(patience))

        return wait

    def pauser(at: float, seconds: float) -> Callable[[], Awaitable[None]]:
        async def pause() -> None:
            await clock.sleep(at)
            gate.pause(seconds)

        return pause

    await clock.run(
        *[waiter(n, arrive, patience) for n, (arrive, patience) in enumerate(arrivals)],
        *[pauser(at, seconds) for at, seconds in pauses],
    )

    rate = per_second * HEADROOM
    for width in (1e-6, 0.5, 1.0, 2.0):
        assert most_in_window(sent, width) <= math.floor(rate * width + 1e-9) + burst
    stayed = [n for n in queued if arrivals[n][1] is None]
    assert [n for n in order if arrivals[n][1] is None] == stayed
    assert all(n in order for n in stayed)


async def test_timed_out_waiters_leave_no_turn_behind() -> None:
    """40 calls at 2/s that give up after 1.5 s: a later call on an idle gate goes at once.

    Before, each gave-up waiter kept its booked turn: the gate stayed booked
    about 20 s ahead while sending nothing, and every later call timed out.
    """
    clock = FakeTime()
    gate = SendGate(RateLimit(per_second=2.0), adaptive=False, clock=clock)
    sent: list[float] = []

    async def impatient() -> None:
        async def turn() -> None:
            sent.append(await gate.wait_turn())

        await race(turn, clock.sleep(1.5))

    await clock.run(*[impatient] * 40)
    assert len(sent) == 3  # at 0, 0.505 and 1.01 s (2/s less headroom): the rest gave up

    later: list[float] = []

    async def after_a_pause() -> None:
        await clock.sleep(2.0)
        later.append(await gate.wait_turn())

    started = clock.now()
    await clock.run(after_a_pause)
    assert later[0] - started <= 2.0 + 1 / (2.0 * HEADROOM)


async def test_no_burst_after_a_pause() -> None:
    """RateLimit(50, burst=5) and a pause: when it ends, waiters go at the rate, not at once.

    Before, tasks whose turns fell inside the pause all went when it ended:
    24-25 requests within 20 ms and 73-74 within a second (the bound is 55).
    """
    clock = FakeTime()
    gate = SendGate(RateLimit(per_second=50.0, burst=5), adaptive=False, clock=clock)
    sent: list[float] = []

    async def sender() -> None:
        for _ in range(5):
            sent.append(await gate.wait_turn())
            await clock.sleep(0.1)

    async def pause_soon() -> None:
        await clock.sleep(0.05)
        gate.pause(1.0)

    await clock.run(*[sender] * 20, pause_soon)

    assert len(sent) == 100
    assert most_in_window(sent, 0.02) <= 5 + 1
    assert most_in_window(sent, 1.0) <= 55
