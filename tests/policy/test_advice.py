"""Pacing by the server's rate-limit headers: the gate's advice, and the client reading them."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import anyio
import httpx
import pytest
import respx

from hiveon_async import AsyncVendorClient
from hiveon_async._clock import set_testing
from hiveon_async._policy._gate import ADVICE_LIFETIME, HEADROOM, SendGate
from hiveon_async._policy._headers import RateLimitState
from tests.doubles import ANY_STOP

from .fake_time import FakeTime

pytestmark = pytest.mark.anyio


@pytest.fixture
def real_waits() -> Iterator[None]:
    with set_testing(False):
        yield


def gate_on(clock: FakeTime) -> SendGate:
    return SendGate(None, clock=clock)


@pytest.mark.usefixtures("real_waits")
async def test_a_policy_paces_at_its_quota_over_its_window() -> None:
    """``q=50;w=10`` paces at 5/s, less headroom: turns 0.202 s apart."""
    clock = FakeTime()
    gate = gate_on(clock)
    gate.advise(RateLimitState(source="ietf", limit=50, window=10.0))
    sent: list[float] = []

    async def five() -> None:
        for _ in range(5):
            sent.append(await gate.wait_turn())
            gate.done()

    await clock.run(five)

    assert gate.paced_rate == pytest.approx(5 * HEADROOM)
    assert [b - a for a, b in itertools.pairwise(sent)] == pytest.approx([1 / (5 * HEADROOM)] * 4)


@pytest.mark.usefixtures("real_waits")
async def test_what_remains_is_a_credit_until_an_answer_says_more() -> None:
    """``Remaining: 3``: three go at once, the fourth waits for the next announcement."""
    clock = FakeTime()
    gate = gate_on(clock)
    gate.advise(RateLimitState(source="x-ratelimit", limit=100, remaining=3, reset=5.0))
    sent: list[float] = []

    async def five() -> None:
        for _ in range(5):
            sent.append(await gate.wait_turn())

    async def answer_later() -> None:
        await clock.sleep(0.5)
        gate.advise(RateLimitState(source="x-ratelimit", limit=100, remaining=10, reset=4.5))

    await clock.run(five, answer_later)

    assert sent == [0.0, 0.0, 0.0, 0.5, 0.5]


@pytest.mark.usefixtures("real_waits")
async def test_nothing_remaining_holds_every_task_until_the_reset() -> None:
    clock = FakeTime()
    gate = gate_on(clock)
    gate.advise(RateLimitState(source="x-ratelimit", remaining=0, reset=3.0))
    sent: list[float] = []

    async def one() -> None:
        sent.append(await gate.wait_turn())

    await clock.run(one, one)

    assert sent == [3.0, 3.0]
    assert gate.paused_total == 3.0


@pytest.mark.usefixtures("real_waits")
async def test_a_windows_remaining_goes_at_once_then_the_pace_waits_out_the_window() -> None:
    """``q=10;w=1``, 9 remaining after the first: 10 go at once, the 11th after a window.

    Then the pace: a sliding window weighs the burst into the next second, and
    lets that second's first request through only once a turn of it passed.
    """
    clock = FakeTime()
    gate = gate_on(clock)
    sent = [await gate.wait_turn()]
    gate.done()
    gate.advise(RateLimitState(source="ietf", limit=10, window=1.0, remaining=9, reset=1.0))

    async def eleven_more() -> None:
        for _ in range(11):
            sent.append(await gate.wait_turn())
            gate.done()
            if len(sent) == 10:  # the answer to the last of the window: nothing remains
                gate.advise(
                    RateLimitState(source="ietf", limit=10, window=1.0, remaining=0, reset=1.0)
                )

    await clock.run(eleven_more)

    interval = 1 / (10 * HEADROOM)
    assert sent[:10] == [0.0] * 10
    assert sent[10] == pytest.approx(11 * interval)  # the window, and one turn of the next
    assert sent[11] == pytest.approx(12 * interval)
    assert gate.paused_total == 0  # our own sends filled the window: no hold for the reset


@pytest.mark.usefixtures("real_waits")
async def test_nothing_remaining_of_a_window_we_filled_leaves_the_pace_in_charge() -> None:
    """A sliding window kept full at its rate reads 0 on every answer: no 1 s holds."""
    clock = FakeTime()
    gate = gate_on(clock)
    full = RateLimitState(source="x-ratelimit", limit=10, remaining=0, reset=1.0)
    gate.advise(RateLimitState(source="x-ratelimit", limit=10, remaining=10, reset=1.0))
    sent: list[float] = []

    async def forty() -> None:
        for _ in range(40):
            sent.append(await gate.wait_turn())
            gate.done()
            if clock.now() >= 1.0:
                gate.advise(full)

    await clock.run(forty)

    assert gate.paused_total == 0
    assert sent[-1] < 40 / (10 * HEADROOM) + 0.2  # about the pace, nothing lost to holds


@pytest.mark.usefixtures("real_waits")
async def test_nothing_remaining_of_a_window_someone_else_spent_holds_until_the_reset() -> None:
    """Two sends of ours cannot explain a quota of 10 used up: the reset decides."""
    clock = FakeTime()
    gate = gate_on(clock)
    sent = [await gate.wait_turn(), await gate.wait_turn()]
    gate.advise(RateLimitState(source="ietf", limit=10, window=1.0, remaining=0, reset=0.7))

    async def one() -> None:
        sent.append(await gate.wait_turn())

    await clock.run(one)

    assert sent == [0.0, 0.0, 0.7]
    assert gate.paused_total == pytest.approx(0.7)


async def test_a_reset_beyond_max_hold_does_not_hold() -> None:
    """Longer than the client may wait: the calls' own Retry-After handling decides."""
    clock = FakeTime()
    gate = gate_on(clock)
    gate.max_hold = 60.0
    gate.advise(RateLimitState(source="x-ratelimit", remaining=0, reset=3600.0))
    assert gate.paused_total == 0
    # Nor does it wait out the credit for an hour: the next call goes, and fails at once.
    with anyio.fail_after(5):
        assert await gate.wait_turn() == clock.now()


async def test_advice_lapses_when_the_server_stops_giving_it() -> None:
    clock = FakeTime()
    gate = gate_on(clock)
    gate.advise(RateLimitState(source="ietf", limit=10, window=1.0))
    assert gate.paced_rate == pytest.approx(10 * HEADROOM)
    clock.time = ADVICE_LIFETIME + 0.1
    assert gate.paced_rate is None


@pytest.mark.parametrize(
    ("headers", "paced", "paused"),
    [
        ({"RateLimit-Policy": '"default";q=10;w=1', "RateLimit": '"default";r=9;t=1'}, 9.9, 0),
        (
            {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"},
            9.9,  # no window said: the reset stands for it
            1,
        ),
    ],
    ids=["ietf", "x-ratelimit"],
)
async def test_the_client_reads_the_headers_of_every_answer(
    vendor: respx.Router,
    client: AsyncVendorClient,
    headers: dict[str, str],
    paced: float | None,
    paused: float,
) -> None:
    """A policy paces the client (10/s, less 1%); nothing remaining holds it until the reset."""

    def answer(request: httpx.Request, deployment_id: str) -> httpx.Response:
        return httpx.Response(200, json={"deployment_id": deployment_id}, headers=headers)

    vendor.post(path__regex=ANY_STOP).mock(side_effect=answer)

    report = await client.stop_deployments(["dep-1", "dep-2"])

    assert report.ok
    assert report.paced_rate == pytest.approx(paced)
    assert report.paused == pytest.approx(paused, abs=0.05)
