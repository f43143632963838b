"""The gate learning a server's limit from its 429s, against model limiters on virtual time.

The figures are exact (virtual time, no randomness): each test pins what the
learner achieves today against one limiter, so that a change that makes it
worse fails here, seconds into the suite, before any benchmark runs. The
real limiters (nginx, HAProxy) are measured by ``nox -s bench``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from hiveon_async import RateLimit
from hiveon_async._clock import set_testing
from hiveon_async._policy._gate import HEADROOM, SendGate
from hiveon_async._policy._pacing import DOUBLING, HOLD_SHARE, MIN_RATE, RateLearner

from .fake_time import FakeTime
from .limiters import HaproxyRate, Limiter, SlidingWindow, TokenBucket, run_batch

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def real_waits() -> Iterator[None]:
    """The gate paces only while set_testing is off."""
    with set_testing(False):
        yield


@pytest.mark.parametrize(
    ("make", "least_share", "most_refused"),
    [
        (lambda: TokenBucket(20, burst=10), 0.85, 0.15),
        (lambda: TokenBucket(100, burst=10), 0.85, 0.04),
        (lambda: SlidingWindow(100), 0.7, 0.1),
    ],
    ids=["token-bucket-20", "token-bucket-100", "sliding-window-100"],
)
async def test_a_batch_learns_the_limit(
    make: Callable[[], Limiter], least_share: float, most_refused: float
) -> None:
    """8 x R ids at concurrency 32, no RateLimit: most of the allowed rate, few refusals.

    The bounds are today's figures, a little rounded: the issue's goal (90% of
    the rate, at most 5% refused) is not met at 20/s, where the first instant's
    burst is refused before any pace is known.
    """
    limiter = make()
    clock = FakeTime()
    gate = SendGate(None, clock=clock)
    ids = 8 * int(limiter.rate)

    run = await run_batch(clock, gate, limiter, ids=ids)

    assert run.share_of(limiter, ids) >= least_share
    assert run.refused / run.requests <= most_refused


@pytest.mark.parametrize(
    ("rate", "least_share", "most_refused"),
    [(20, 0.7, 0.3), (100, 0.75, 0.08), (400, 0.85, 0.025)],
)
async def test_a_batch_learns_a_window_that_counts_refusals(
    rate: int, least_share: float, most_refused: float
) -> None:
    """HAProxy's ``http_req_rate(1s)``: 8 x R ids, no RateLimit, against ``(N - 1) / R``.

    No schedule does better than ``(N - 1) / R``: the window weighs each second's
    count into the next. Today's figures, a little rounded; before the hold was a
    tenth of the Retry-After and growth stopped while nobody was answered, they
    were 19%, 46% and 59% of the rate (the 20/s run refused 87% of its requests).
    At 400/s the last quarter second counting as evidence of what gets through
    took it from 72% to 86%.
    """
    limiter = HaproxyRate(rate, 1.0)
    clock = FakeTime()
    gate = SendGate(None, clock=clock)
    ids = 8 * rate

    run = await run_batch(clock, gate, limiter, ids=ids)

    assert (ids - 1) / rate / run.finished >= least_share
    assert run.refused / run.requests <= most_refused


def cut_at_one_second() -> RateLearner:
    """A learner that saw 100 successes over a second, then five 429s: cut to 95/s."""
    learner = RateLearner()
    for index in range(100):
        learner.on_send(index / 100)
        learner.on_success(index / 100 + 0.001, index / 100)
    for _ in range(5):
        learner.on_send(1.0)
        learner.on_throttle(1.0, 1.0, 1.0)
    return learner


def test_time_without_answers_does_not_grow_the_rate() -> None:
    """Every task waiting out its Retry-After is no evidence that more would get through."""
    learner = cut_at_one_second()
    cut = learner.rate
    assert cut is not None

    learner.on_send(2.0, queued=True)  # a second later the retries go, and are answered
    learner.on_success(2.001, 2.0)

    assert learner.rate is not None
    assert learner.rate <= cut * 2 ** (0.1 / DOUBLING) + 1e-9


def test_a_window_opening_at_once_is_no_rate_once_paced() -> None:
    """HAProxy's window lets its whole allowance through at once: 400 in the first 0.2 s.

    That quarter second read 1,600/s. Taken for what the server lets through at
    the second cut, it let the pace double past the limit after the hold (to
    630/s), and the cut that followed, just after the hold, set it at 228/s:
    54% to 62% of the allowed rate. A part of a second that reaches back before
    pacing began is no evidence of the rate.
    """
    learner = RateLearner()
    for index in range(400):
        sent = index * 0.0005
        learner.on_send(sent)
        learner.on_success(sent + 0.001, sent)
    for _ in range(5):  # the opening's first refusals: the first cut
        learner.on_send(0.2)
        learner.on_throttle(0.201, 0.2, 1.0)
    assert learner.rate == pytest.approx(400 * 0.95)
    learner.on_send(0.21)  # at the new pace, refused too: the second cut, and a hold
    hold = learner.on_throttle(0.211, 0.21, 1.0)
    assert hold is not None

    for step in range(60):  # after the hold, answers at the pace for 0.3 s
        now = 0.211 + hold + step * 0.005
        learner.on_send(now, queued=True)
        learner.on_success(now + 0.001, now)

    assert learner.rate is not None
    assert learner.rate <= 400


def test_a_hold_after_a_window_let_through_at_once_lasts_until_it_can_have_room() -> None:
    """HAProxy at 20/s: 20 let through at once, then refused. The hold lasts the rest of the second.

    A hold of a tenth of the Retry-After sent a probe every 0.1 s for the rest
    of that second: the window had no room before its first request was a
    second old, every probe was refused, and HAProxy counted each one (10 more
    refusals, and a longer wait after them). Once the last second's successes
    are spread over it, a hold is a tenth of the Retry-After again.
    """
    learner = RateLearner()
    for _ in range(20):  # the window's allowance, at once
        learner.on_send(0.0)
        learner.on_success(0.001, 0.0)
    for _ in range(5):  # then refused: the first cut
        learner.on_send(0.001)
        learner.on_throttle(0.002, 0.001, 1.0)
    learner.on_send(0.09)  # refused at the new pace too: the server counts it
    hold = learner.on_throttle(0.091, 0.09, 1.0)

    assert hold == pytest.approx(0.001 + 1.0 - 0.091)

    spread = cut_at_one_second()  # 100 successes over a second, then a cut
    spread.on_send(1.02)
    assert spread.on_throttle(1.021, 1.02, 1.0) == pytest.approx(HOLD_SHARE * 1.0)

    # Paced after a stall (every task waited out a Retry-After): the last second's
    # few successes came at the pace, and say nothing of when the window has room.
    # Taken for an opening, they held HAProxy's 400/s for most of a second (63%).
    stalled = cut_at_one_second()
    for sent in (2.2, 2.21, 2.22):
        stalled.on_send(sent, queued=True)
        stalled.on_success(sent + 0.001, sent)
    assert stalled._hold_for(2.23, 1.0) == pytest.approx(HOLD_SHARE * 1.0)

    # Told the rate, the client was paced from its first request: no opening burst.
    told = RateLearner(ceiling=20)
    for index in range(10):
        told.on_send(index / 20)
        told.on_success(index / 20 + 0.001, index / 20)
    assert told._hold_for(0.55, 1.0) == pytest.approx(HOLD_SHARE * 1.0)


def test_a_told_cut_within_the_first_second_counts_only_the_time_since_it_began() -> None:
    """Told 100/s, on a key another client spent half of just before: refused after 0.5 s.

    The cut after the first one took what got through over a whole second, 50,
    for the rate, and set the pace at 47.5/s: against HAProxy's window the
    batch took seconds to climb back (83% of the rate). Paced from its first
    request, the client's 50 in 0.57 s are a rate.
    """
    learner = RateLearner(ceiling=100)
    for index in range(50):  # at the told pace; the window also holds the other 50
        sent = index / 100
        learner.on_send(sent)
        learner.on_success(sent + 0.001, sent)
    for index in range(5):  # the window is full: the first cut
        sent = 0.5 + index / 100
        learner.on_send(sent)
        learner.on_throttle(sent + 0.001, sent, 1.0)
    assert learner.rate == pytest.approx(95)
    learner.on_send(0.57)  # refused at the new pace too: cut to what got through
    learner.on_throttle(0.571, 0.57, 1.0)

    assert learner.rate == pytest.approx(50 / 0.571 * 0.95)


def test_a_rate_cut_low_grows_back_with_its_few_answers() -> None:
    """A rate cut to MIN_RATE grows by two turns' time per answer, not by a tenth of a second.

    Another process on the key took what was left, and answers come seconds apart:
    it stayed under 3 requests/s for seconds against nginx.
    """
    learner = RateLearner()
    for _ in range(10):
        learner.on_send(0.0, queued=True)
        learner.on_throttle(0.001, 0.0, 1.0)
    assert learner.rate == MIN_RATE

    learner.on_send(2.0, queued=True)
    learner.on_success(2.001, 2.0)

    assert learner.rate is not None
    assert learner.rate >= MIN_RATE * 4 - 1e-9


def test_a_cut_after_a_hold_counts_only_the_time_since_sending_resumed() -> None:
    """The second before the cut was mostly idle: every task waited out a Retry-After.

    Its successes over the whole second read half the rate the server allowed
    (42/s against HAProxy's 100/s, and seconds of climbing back).
    """
    learner = RateLearner()
    for index in range(100):  # a window's worth at once
        learner.on_send(index / 2000)
        learner.on_success(index / 2000 + 0.001, index / 2000)
    for _ in range(5):
        learner.on_send(0.05)
        learner.on_throttle(0.051, 0.05, 1.0)
    assert learner.rate == pytest.approx(95)  # the first cut: what got through
    learner.on_send(0.89, queued=True)
    hold = learner.on_throttle(0.9, 0.89, 1.0)  # refused at the new pace: hold
    assert hold is not None
    resumed = 0.9 + hold
    for index in range(45):  # 100/s from the end of the hold
        sent_at = resumed + index / 100
        learner.on_send(sent_at, queued=True)
        learner.on_success(sent_at + 0.001, sent_at)

    learner.on_send(1.45, queued=True)
    learner.on_throttle(1.46, 1.45, 1.0)

    assert learner.rate is not None
    assert learner.rate >= 0.8 * 90


def test_a_process_sharing_the_key_learns_the_keys_rate_not_its_share() -> None:
    """Two processes on one key: the cut goes to what got through for both, as Redis counts it.

    Each process sees only its share of the answers: cut to its own, two processes
    that began unevenly kept that split (12% and 86% of nginx's 20/s).
    """

    def refused_after_its_share(key_told_at: float) -> float | None:
        """40 of the key's 100 successes were this process's; then 429s; the rate cut to."""
        learner = RateLearner()
        for index in range(40):
            learner.on_send(index / 40)
            learner.on_success(index / 40 + 0.001, index / 40)
        learner.observe_key(key_told_at, (100, 50, 25))  # the key's count, every process's
        for _ in range(5):
            learner.on_send(1.0)
            learner.on_throttle(1.0, 1.0, 1.0)
        return learner.rate

    assert refused_after_its_share(0.99) == pytest.approx(100 * 0.95)
    # The store's count is stale (told 0.6 s before): the process's own stands.
    assert refused_after_its_share(0.4) == pytest.approx(40 * 0.95)


def test_only_a_fresh_key_count_steps_the_rate_down_after_a_refused_probe() -> None:
    """A probe after a hold refused, nothing through since: sharing, the rate steps down 5%.

    The step is for a key's count told late (it may have read high). A process
    whose store went silent (Redis lost) learns from its own answers again, and
    those leave the rate as it is; it used to step down for good once any count
    had been told.
    """

    def rates_around_a_refused_probe(key_age: float) -> tuple[float | None, float | None]:
        learner = cut_at_one_second()
        learner.on_send(1.02)  # refused at the new pace: a hold
        hold = learner.on_throttle(1.021, 1.02, 1.0)
        assert hold is not None
        before = learner.rate
        probe = 1.021 + hold + 0.001
        learner.observe_key(probe - key_age, (100, 50, 25))
        learner.on_send(probe)
        assert learner.on_throttle(probe + 0.001, probe, 1.0) is not None  # holds again
        return before, learner.rate

    before, after = rates_around_a_refused_probe(key_age=0.05)
    assert before is not None
    assert after == pytest.approx(before * 0.95)
    before, after = rates_around_a_refused_probe(key_age=0.6)
    assert after == before


async def test_a_told_limit_is_kept_exactly_against_a_window() -> None:
    """RateLimit equal to a sliding window's rate: nothing refused, a rate just under it."""
    clock = FakeTime()
    limiter = SlidingWindow(100)
    gate = SendGate(RateLimit(per_second=100.0), clock=clock)

    run = await run_batch(clock, gate, limiter, ids=800)

    assert run.refused == 0
    assert 800 / run.finished >= 0.98 * 100


async def test_a_told_limit_is_paced_from_the_first_answer() -> None:
    """The first request opens the connection and reaches the server 30 ms late.

    Paced from its turn, the next 20 went within the second the window opened
    at that first arrival: the 21st was refused, and (the window counting its
    refusals) every one after it for a while. Paced from the first answer, none is.
    """
    clock = FakeTime()
    limiter = SlidingWindow(20)
    gate = SendGate(RateLimit(per_second=20, burst=1), clock=clock)

    run = await run_batch(clock, gate, limiter, ids=160, connect=0.03)

    assert run.refused == 0
    assert (160 - 1) / 20 / run.finished >= 0.97


async def test_a_told_burst_that_meets_a_spent_bucket_costs_one_refusal() -> None:
    """RateLimit(20, burst=10) on a key an earlier run has just spent: no burst is left.

    The burst goes ahead of the pace one round trip at a time, the first
    request alone: its 429 ends the burst, and the pace goes on. Sent at once,
    9 or 10 of the burst were refused (5.3% of the batch's requests against
    nginx). Nor do the refusals slow the pace: before commit ``38439a7`` the
    learner took them for a rate and cut to 11/s (63% of the allowed rate).
    """
    clock = FakeTime()
    limiter = TokenBucket(20, burst=10)
    for _ in range(10):
        assert limiter.admit(0.0)  # the earlier run
    gate = SendGate(RateLimit(per_second=20, burst=10), clock=clock)

    run = await run_batch(clock, gate, limiter, ids=160)

    assert run.refused <= 1
    spent_ideal = (160 + 10 - 10) / 20
    assert spent_ideal / run.finished >= 0.95


async def test_a_told_burst_goes_at_once_when_the_bucket_is_full() -> None:
    """The burst's round trips cost little: a fresh key's bucket gives the whole burst."""
    clock = FakeTime()
    limiter = TokenBucket(20, burst=10)
    gate = SendGate(RateLimit(per_second=20, burst=10), clock=clock)

    run = await run_batch(clock, gate, limiter, ids=160)

    assert run.refused == 0
    # The burst within four round trips of 5 ms; then the pace, from the first answer.
    assert run.sent[9] <= 4 * 0.005
    assert run.sent[10] == pytest.approx(0.005 + 1 / (20 * HEADROOM))
    assert (160 - 10) / 20 / run.finished >= 0.98


class RandomRefusals:
    """No limit, but one request in a hundred refused (every 100th, to stay exact)."""

    rate = 10_000.0
    burst = 0

    def __init__(self) -> None:
        self.seen = 0

    def admit(self, now: float) -> bool:
        self.seen += 1
        return self.seen % 100 != 0


async def test_random_refusals_do_not_start_pacing() -> None:
    """A server refusing 1% of requests is noise: the gate never paces."""
    clock = FakeTime()
    gate = SendGate(None, clock=clock)

    await run_batch(clock, gate, RandomRefusals(), ids=2000)

    assert gate.pacer is not None
    assert gate.pacer.rate is None
