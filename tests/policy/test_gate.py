"""SendGate: the client-wide token bucket, pauses and pacing, on virtual time."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator

import anyio
import anyio.lowlevel
import pytest

from hiveon_async import RateLimit
from hiveon_async._clock import Clock, set_testing
from hiveon_async._policy._gate import HEADROOM, RECHECK, SendGate

from .fake_time import FakeTime

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def real_waits() -> Iterator[None]:
    """The gate honours pauses and pacing only while set_testing is off."""
    with set_testing(False):
        yield


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def gate_on(fake_time: FakeTime, rate_limit: RateLimit | None) -> SendGate:
    return SendGate(rate_limit, adaptive=False, clock=fake_time)


def acquirer(gate: SendGate, times: list[float]) -> Callable[[], Awaitable[None]]:
    """A task that takes one turn at the gate and records when it went."""

    async def acquire() -> None:
        times.append(await gate.wait_turn())

    return acquire


def most_in_window(times: list[float], width: float) -> int:
    """The most acquisitions in any half-open window [t, t + width)."""
    return max(sum(start <= t < start + width - 1e-9 for t in times) for start in times)


@pytest.mark.parametrize(("per_second", "burst"), [(10.0, 1), (10.0, 5), (250.0, 1), (0.5, 3)])
async def test_pace_equals_the_configured_rate(
    fake_time: FakeTime, per_second: float, burst: int
) -> None:
    """N back-to-back acquisitions: a burst at once, then one per 1/rate seconds (less HEADROOM)."""
    gate = gate_on(fake_time, RateLimit(per_second=per_second, burst=burst))
    times: list[float] = []

    async def acquire_many() -> None:
        for _ in range(40):
            times.append(await gate.wait_turn())

    await fake_time.run(acquire_many)

    expected = [max(0, n - burst + 1) / (per_second * HEADROOM) for n in range(40)]
    assert times == pytest.approx(expected)


@pytest.mark.parametrize(("per_second", "burst"), [(20.0, 1), (20.0, 4), (100.0, 10)])
async def test_burst_is_never_exceeded_under_contention(
    fake_time: FakeTime, per_second: float, burst: int
) -> None:
    """Hundreds of concurrent waiters: at most burst at once and burst + rate per second."""
    gate = gate_on(fake_time, RateLimit(per_second=per_second, burst=burst))
    times: list[float] = []

    await fake_time.run(*[acquirer(gate, times)] * 300)

    assert len(times) == 300
    assert most_in_window(times, 1e-6) == burst
    assert most_in_window(times, 1.0) <= burst + per_second


async def test_burst_returns_after_an_idle_spell(fake_time: FakeTime) -> None:
    """After idling, a full burst is available again, and no more than that."""
    gate = gate_on(fake_time, RateLimit(per_second=20.0, burst=5))
    times: list[float] = []

    async def burst_idle_burst() -> None:
        for _ in range(5):
            times.append(await gate.wait_turn())
        await fake_time.sleep(10.0)
        for _ in range(7):
            times.append(await gate.wait_turn())

    await fake_time.run(burst_idle_burst)

    step = 1 / (20.0 * HEADROOM)
    assert times == pytest.approx([0.0] * 5 + [10.0] * 5 + [10 + step, 10 + 2 * step])


async def test_waiters_are_served_first_come_first_served(fake_time: FakeTime) -> None:
    """300 concurrent waiters go in exactly the order they arrived, one slot each."""
    gate = gate_on(fake_time, RateLimit(per_second=50.0, burst=2))
    arrived: list[int] = []
    served: list[tuple[int, float]] = []

    def waiter(number: int) -> Callable[[], Awaitable[None]]:
        async def wait() -> None:
            arrived.append(number)
            served.append((number, await gate.wait_turn()))

        return wait

    await fake_time.run(*[waiter(n) for n in range(300)])

    assert [number for number, _ in served] == arrived
    assert [sent for _, sent in served] == pytest.approx(
        [max(0, n - 1) / (50.0 * HEADROOM) for n in range(300)]
    )


async def test_a_cancelled_waiter_gives_its_slot_back(fake_time: FakeTime) -> None:
    """The last waiter in line, cancelled, hands its slot to whoever comes next."""
    gate = gate_on(fake_time, RateLimit(per_second=1.0))
    times: list[float] = []
    await gate.wait_turn()

    async with anyio.create_task_group() as tg:
        tg.start_soon(gate.wait_turn)
        await fake_time.parked()
        tg.cancel_scope.cancel()
    await fake_time.run(acquirer(gate, times))

    assert times == pytest.approx([1 / HEADROOM])


async def test_no_rate_limit_never_waits(fake_time: FakeTime) -> None:
    """Without a rate limit (and before any throttle) the gate never sleeps."""
    gate = gate_on(fake_time, None)

    sent = [await gate.wait_turn() for _ in range(100)]

    assert sent == [0.0] * 100


@pytest.mark.parametrize("rate_limit", [None, RateLimit(per_second=10.0)])
async def test_pause_holds_every_waiter(fake_time: FakeTime, rate_limit: RateLimit | None) -> None:
    """While paused nobody is sent; then the waiters go (at the rate, if one is set)."""
    gate = gate_on(fake_time, rate_limit)
    times: list[float] = []
    gate.pause(5.0)

    await fake_time.run(*[acquirer(gate, times)] * 20)

    interval = 0.0 if rate_limit is None else 1 / (10.0 * HEADROOM)
    assert sorted(times) == pytest.approx([5.0 + n * interval for n in range(20)])


async def test_pause_during_a_wait_holds_that_waiter_too(fake_time: FakeTime) -> None:
    """A waiter already queued for a slot is held by a pause that starts before its slot."""
    gate = gate_on(fake_time, RateLimit(per_second=1.0))
    times: list[float] = []

    async def pause_later() -> None:
        await fake_time.sleep(0.5)
        gate.pause(2.0)

    await fake_time.run(acquirer(gate, times), acquirer(gate, times), pause_later)

    assert times == pytest.approx([0.0, 2.5])


async def test_pauses_only_extend(fake_time: FakeTime) -> None:
    """A shorter pause never cuts a longer one short."""
    gate = gate_on(fake_time, None)
    times: list[float] = []
    gate.pause(5.0)
    gate.pause(1.0)

    await fake_time.run(acquirer(gate, times))

    assert times == [5.0]


async def test_real_clock_run_keeps_the_pace() -> None:
    """20 acquisitions at 200/s with anyio's own clock take at least ~95 ms."""
    gate = SendGate(RateLimit(per_second=200.0), adaptive=False, clock=Clock())
    started = time.monotonic()

    for _ in range(20):
        await gate.wait_turn()

    assert time.monotonic() - started >= 0.09


async def test_a_pace_that_rises_wakes_the_waiter_of_the_slow_one(fake_time: FakeTime) -> None:
    """A learned pace of 0.5/s rises to 100/s: the next turn comes within RECHECK.

    Not two seconds after the last one: a process cut low stayed there.
    """
    gate = SendGate(None, clock=fake_time)
    pacer = gate.pacer
    assert pacer is not None
    pacer.rate = 0.5  # a limit was found, and the pace cut low
    times: list[float] = []

    async def two_turns() -> None:
        times.append(await gate.wait_turn())
        gate.done()
        times.append(await gate.wait_turn())  # waits two seconds at 0.5/s

    async def raise_meanwhile() -> None:
        await fake_time.sleep(0.1)
        pacer.rate = 100.0  # answers came: the pace rose while the next one waits

    await fake_time.run(two_turns, raise_meanwhile)

    assert times[1] - times[0] <= 0.1 + RECHECK + 1e-9


async def test_test_mode_keeps_the_configured_bucket_as_it_is_after_answers(
    fake_time: FakeTime,
) -> None:
    """In test mode the client does not pace itself after answers: the burst stays.

    Out of it, the first answer and a 429 at a configured rate both push the
    bucket on (the next turn a second away at RateLimit(1, burst=10), and the
    burst gone), and a suite that sets test mode to skip waits would sit
    through them.
    """
    times: list[float] = []
    gate = SendGate(RateLimit(per_second=1, burst=10), clock=fake_time)
    with set_testing(True):
        sent_at = await gate.wait_turn()
        gate.on_response(throttled=True, sent_at=sent_at, retry_after=1.0)
        gate.done()
        await fake_time.run(acquirer(gate, times))

    assert times == [0.0]
