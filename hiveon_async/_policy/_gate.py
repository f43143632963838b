"""The gate every attempt passes before it is sent.

Three things can hold an attempt back, all client-wide:

- the configured :class:`~hiveon_async.RateLimit`, a token bucket;
- the rate the client learned from the server (:mod:`._pacing`), never above
  the configured one;
- a pause the server asked for: a 503's ``Retry-After`` holds every task's
  sending, not only the one that got the answer.

The bucket is kept as a "theoretical arrival time" (the GCRA form of a token
bucket). Waiters queue first come, first served; only the one at the head
sleeps, until its turn, and takes it when it goes. No turn is booked ahead, so
a waiter that is cancelled leaves nothing behind, and waiters held by a pause
go one turn at a time when it ends: in any window of ``w`` seconds at most
``rate * w + burst`` attempts pass, pauses included.

With a shared store (:mod:`._shared`, ``redis_url``), the configured, the
announced and the learned rates are one bucket in Redis, for every process on
the key: the head of the queue books its turn there (and turns for those
behind it). Each process learns the key's rate from every process's answers
(counted in Redis), and tells it with each booking. When Redis is lost the
local bucket takes everything back until it returns.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections import deque

import anyio

from .._clock import Clock
from .._config import RateLimit
from ._headers import RateLimitState
from ._pacing import RateLearner
from ._sends import SendRecord
from ._shared import HORIZON, MOST_BOOKED, SharedLimit

logger = logging.getLogger("hiveon_async")

__all__ = ["SendGate"]

#: A configured rate is paced this much under: two requests sent exactly 1/rate apart
#: may arrive a little closer, and a server counting a sliding window exactly at the
#: rate refuses the one that lands early (measured: a third of the rate lost to that).
HEADROOM = 0.99
#: The shared bucket's rate, as a share of the configured one. Turns booked in Redis
#: leave from several processes, each late by its own Redis round trip and event
#: loop, and a cold process's first requests latest (each opens a connection): their
#: arrivals bunch more than one process's do. Measured at 0.99 with 4 processes at
#: 200/s: 212 to 214 requests in the first second, for a bound of 210.
SHARED_HEADROOM = 0.98
#: The longest the head of the queue sleeps before it looks at the pace again: a
#: slow pace (a process cut low) may rise meanwhile, and its turn come sooner.
RECHECK = 0.25
#: Seconds an announcement of the server's limit stands without a reset to say otherwise.
ADVICE_LIFETIME = 2.0
#: Never pace slower than this on the server's word, requests per second.
MIN_ADVISED_RATE = 0.5
#: Slow start's first window, in attempts in flight; each attempt that ends adds one.
SLOW_START = 4
#: The window at which slow start ends (no server-side limit has shown itself).
SLOW_START_END = 64
#: Seconds a full window waits for an answer; then slow start ends (one slow
#: answer must not hold the whole client back).
WINDOW_WAIT = 1.0
#: A 429 whose ``Retry-After`` is at least this long speaks of a quota per window (a
#: minute, an hour), not of a rate: every task holds until then, and the gate learns
#: how many requests a window allows (see :meth:`SendGate.on_response`).
QUOTA_RETRY_AFTER = 2.0
#: The share of a policy's quota this client's own sends must make, over its window,
#: for ``Remaining: 0`` to mean "the window is full of ours": the pace then decides
#: when the next goes, not the reset (see :meth:`SendGate.advise`).
OWN_SHARE = 0.9


class _Turn:
    """A place in the gate's queue: woken when it reaches the head, or freed to go at once."""

    __slots__ = ("booked", "event", "free")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.free = False
        self.booked: float | None = None  # a turn booked in the shared store: when it goes


class SendGate:
    """Decides when each attempt may go out.

    Args:
        rate_limit: The configured ceiling, or None for none.
        adaptive: Whether to learn the server's rate from its answers.
        clock: The client's clock: the time, and how to wait.
        shared: The store shared with other processes on the key, or None.
            Needs ``rate_limit``.
    """

    def __init__(
        self,
        rate_limit: RateLimit | None,
        *,
        adaptive: bool = True,
        clock: Clock,
        shared: SharedLimit | None = None,
    ) -> None:
        self._limit = rate_limit
        self.shared = shared
        ceiling = None if rate_limit is None else rate_limit.per_second
        self.pacer = RateLearner(ceiling) if adaptive else None
        self.clock = clock
        self._tat = -float("inf")  # the theoretical arrival time of the next attempt
        self._tat_step = 0.0  # the interval the last turn was charged
        self._paused_until = -float("inf")
        #: Seconds of client-wide pauses so far (overlapping pauses counted once).
        self.paused_total = 0.0
        self._queue: deque[_Turn] = deque()
        # Slow start, until the first sign of a limit: at most a window of attempts in
        # flight, a window that doubles each round trip (only when adapting). Told the
        # rate, it starts at one and ends at the configured burst (see done()).
        self._window: int | None = None
        if adaptive:
            self._window = SLOW_START if rate_limit is None else 1
        self._in_flight = 0
        self._answered = False  # an attempt has ended: the transport has a connection
        self._room = anyio.Event()
        # What the server's rate-limit headers said, requests/s, and until when it holds.
        self._advertised: float | None = None
        self._advertised_until = -float("inf")
        # Requests the headers said remain, less those sent since; and until when.
        self._credit: int | None = None
        self._credit_until = -float("inf")
        # The policy the remaining count belongs to, (quota, window seconds), when the
        # headers say it (or, with a limit but no window, the longest reset seen stands
        # for the window); and this client's sends within its last window.
        self._policy: tuple[int, float] | None = None
        self._own_sends = SendRecord()
        self._room_wanted = False  # the head waits on _room (slow start's window, or credit)
        # A quota per window, learned from 429s with a long Retry-After: the pace it
        # allows (requests/s), the window's length (the longest such Retry-After), when
        # the current window opened (None: at the first success), how many of its
        # requests got through, and until when the last hold ran.
        self._window_rate: float | None = None
        self._window_period = 0.0
        self._quota_opened: float | None = None
        self._quota_admitted = 0
        self._quota_held_until = -float("inf")
        # How a window is used once it opens again, decided by one probe after the
        # first hold: None until then; True, the server forgot the old window (a
        # fixed one, or an exact sliding one), and each window's allowance (what the
        # last one let through) goes at once; False, the server still weighs the old
        # window in (HAProxy's http_req_rate), and sending keeps the window's pace.
        self._window_bursts: bool | None = None
        self._window_allowance = 0
        self._probing = False  # one request goes when the hold ends; the rest wait for it
        self._growth = 1  # the next wave of requests beyond a window's allowance
        #: The longest hold the headers may impose (the retry policy's max_retry_after).
        self.max_hold = 60.0

    def _interval_and_burst(self) -> tuple[float, int] | None:
        """Return (seconds between attempts, burst) in force now, or None for no limit."""
        if self._sharing():
            return None  # every rate is kept in the shared store (_shared_shape)
        paced = None if self.clock.testing else self.paced_rate
        limit = self._limit
        if limit is None:
            return None if paced is None else (1.0 / paced, 1)
        if paced is None or paced >= limit.per_second:
            return 1.0 / (limit.per_second * HEADROOM), limit.burst
        return 1.0 / paced, 1

    def _shared_shape(self) -> tuple[float | None, int, float | None]:
        """What to book the shared bucket with: (seconds between turns, burst, learned).

        The first two are the ceiling, configured or announced (None: neither);
        the last is the key's rate as this process learned it (see :mod:`._shared`).
        """
        learned = None if self.clock.testing or self.pacer is None else self.pacer.rate
        limit = self._limit
        advertised = self._advertised
        if advertised is not None and self.clock.now() < self._advertised_until:
            if limit is not None:
                advertised = min(advertised, limit.per_second * SHARED_HEADROOM)
            return 1.0 / advertised, 1, learned
        if limit is None:
            return None, 1, learned
        return 1.0 / (limit.per_second * SHARED_HEADROOM), limit.burst, learned

    def _sharing(self) -> bool:
        return self.shared is not None and self.shared.usable()

    @property
    def paced_rate(self) -> float | None:
        """Requests/s learned from 429s or read from headers, the lowest; None when none."""
        learned = None if self.pacer is None else self.pacer.rate
        advertised = self._advertised
        if advertised is not None and self.clock.now() >= self._advertised_until:
            advertised = None  # the server stopped saying: back to learning
        window = None if self._window_bursts else self._window_rate
        rates = [rate for rate in (learned, advertised, window) if rate is not None]
        return min(rates, default=None)

    def _paused(self, now: float) -> bool:
        return now < self._paused_until and not self.clock.testing

    async def wait_turn(self) -> float:
        """Wait until this attempt may be sent; return the time it went.

        Raises:
            Whatever cancels the waiting task; it leaves the queue at once.
        """
        now = self.clock.now()
        if (
            not self._queue
            and not self._paused(now)
            and not self._window_full()
            and not self._out_of_credit(now)
            and not self._sharing()  # a shared turn is booked by the head of the queue
        ):
            shape = self._interval_and_burst()
            if shape is None:
                return self._went(now)
            interval, burst = shape
            if now >= self._tat - (burst - 1) * interval or self._spends_credit(now, interval):
                self._take(now, interval)
                return self._went(now)
        turn = _Turn()
        self._queue.append(turn)
        try:
            if self._queue[0] is not turn:
                await turn.event.wait()  # set when the waiter ahead leaves the head, or opens
            if turn.free:
                now = self.clock.now()
            else:
                now = await self._head_turn()
                # Sharing, and Redis lost while booking: the local bucket decides instead.
                while self._sharing() and not await self._book_shared(turn):
                    now = await self._head_turn()
        finally:
            self._leave(turn)
        if turn.booked is not None:
            # Out of the queue before the booked time comes, so that the next head
            # books meanwhile: the round trips overlap the waits.
            now = self.clock.now()
            if now < turn.booked:
                await self.clock.space(turn.booked - now)
                now = max(self.clock.now(), turn.booked)
            while self._paused(now):
                # A hold (a 503's Retry-After, or a learned one) began after the turn was
                # booked: it holds this turn too. The turn is lost to the bucket, which is
                # never overrun.
                until = self._paused_until
                await self.clock.hold(until - now)
                now = max(self.clock.now(), until)
        return self._went(now)

    async def _book_shared(self, turn: _Turn) -> bool:
        """Book the head's turn in the shared store, and turns for those queued behind it.

        Returns False when Redis is lost (nothing booked). Booked times rise in queue
        order, so the queue stays first come, first served. A waiter cancelled after
        its turn was booked leaves that turn unused: the bucket is never overrun.
        """
        shared = self.shared
        assert shared is not None  # only called while sharing
        while True:
            behind: list[_Turn] = []
            if self._answered and self._credit is None:
                # Nothing of this process's own holds the waiters back (the server's
                # count of requests left): book for them too, in this round trip. Not
                # before the first answer: a cold process's first requests each open a
                # connection, leave late, and would bunch with the turns booked after
                # them (the bucket's burst booked at once by one process overran a 1 s
                # window).
                queued = itertools.islice(self._queue, 1, MOST_BOOKED)
                behind = [other for other in queued if not other.free]
            booking = await shared.book(1 + len(behind), *self._shared_shape())
            if booking is None:
                return False
            if self.pacer is not None:
                self.pacer.observe_key(self.clock.now(), booking.successes)
            if booking.wait is None:
                break
            # The next turn is beyond the horizon (a slow pace): look again nearer to
            # it, or sooner, since a learned pace may rise meanwhile.
            await self.clock.space(min(max(booking.wait - HORIZON, 0.001), RECHECK))
        now = self.clock.now()
        delays = booking.delays
        turn.booked = now + delays[0]
        for other, delay in zip(behind, delays[1:], strict=False):
            other.booked = now + delay
            other.free = True
            other.event.set()
        return True

    async def _head_turn(self) -> float:
        """At the head of the queue: wait out any pause and the rate, then take the turn."""
        clock = self.clock
        now = clock.now()
        while True:
            if self._window_full():
                self._room_wanted = True
                with anyio.move_on_after(WINDOW_WAIT) as waited:
                    await self._room.wait()
                if waited.cancelled_caught:
                    self._end_slow_start()  # stragglers fill the window: slow start ends here
                now = clock.now()
                continue
            if self._paused(now):
                until = self._paused_until
                shared = self.shared
                if shared is not None and shared.holding and shared.usable():
                    # Tell the other processes now, not at the next booking after the hold.
                    await shared.book(0, *self._shared_shape())
                await clock.hold(until - now)
                now = max(clock.now(), until) if self._paused_until == until else clock.now()
                continue
            if self._out_of_credit(now):
                # The server said how many remain, and they are sent: wait for an answer
                # to say more, or for the reset.
                if await self._wait_for_room(self._credit_until - now):
                    self._credit = None  # the reset came: the quota is back
                    self._probing = False  # a probe never answered: back to the pace
                now = clock.now()
                continue
            shape = self._interval_and_burst()
            if shape is None:
                if self._window is None and self._credit is None and not self._sharing():
                    self._open()
                return now
            interval, burst = shape
            if self._spends_credit(now, interval):
                self._take(now, interval)
                return now
            if interval < self._tat_step:
                # The pace rose since the last turn: the next is a turn of the new pace after it.
                self._tat -= self._tat_step - interval
                self._tat_step = interval
            earliest = self._tat - (burst - 1) * interval
            if now < earliest - RECHECK and self._learned_pace(interval):
                # A slow learned pace, which answers may raise: look again before then.
                await clock.space(RECHECK)
                now = max(clock.now(), now + RECHECK)  # the sleep is the wait, as below
                continue
            if now < earliest:
                await clock.space(earliest - now)
                # The sleep is the wait: a clock that woke early still means the turn came.
                now = max(clock.now(), earliest)
                if self._paused(now):  # a pause began while we slept
                    continue
                shape = self._interval_and_burst()
                if shape is not None and shape[0] > interval:  # the pace slowed meanwhile
                    continue
                if now - earliest < interval:
                    # Woke a little late: the turn is charged at its time, so that the
                    # timer's lateness does not add up into a slower pace.
                    self._take(earliest, interval)
                    return now
            self._take(now, interval)
            return now

    def _learned_pace(self, interval: float) -> bool:
        """Whether ``interval`` is the pace learned from 429s (which answers may raise)."""
        learned = None if self.pacer is None else self.pacer.rate
        return learned is not None and abs(interval * learned - 1.0) < 1e-9

    def _take(self, at: float, interval: float) -> None:
        """Charge the bucket one turn taken at ``at`` (or at its own time, if later)."""
        self._tat = max(self._tat, at) + interval
        self._tat_step = interval

    async def _wait_for_room(self, seconds: float) -> bool:
        """Wait for an answer to make room, ``seconds`` at most; True when they ran out.

        The time is the clock's (a hold), so that virtual time drives it in tests.
        """
        self._room_wanted = True
        room = self._room
        ran_out = False
        async with anyio.create_task_group() as group:

            async def time_out() -> None:
                nonlocal ran_out
                await self.clock.hold(seconds)
                ran_out = True
                group.cancel_scope.cancel()

            group.start_soon(time_out)
            await room.wait()
            group.cancel_scope.cancel()
        return ran_out

    def _open(self) -> None:
        """Nothing holds sending back: let everyone queued go at once, not one per tick.

        Handing the turn down the queue costs a scheduling round per waiter: a
        queue that formed (behind slow start, a pause that ended) would
        otherwise stay, and pass one attempt per round of the event loop.
        """
        for turn in self._queue:
            if not turn.free:
                turn.free = True
                turn.event.set()

    def _leave(self, turn: _Turn) -> None:
        """Take ``turn`` off the queue (gone through, or cancelled); wake the new head."""
        queue = self._queue
        if not queue:
            return  # queued on an event loop that is gone (see reset_loop_state)
        if queue[0] is turn:
            queue.popleft()
            if queue:
                queue[0].event.set()
            return
        with contextlib.suppress(ValueError):  # not there: queued on a loop that is gone
            queue.remove(turn)

    def reset_loop_state(self) -> None:
        """The client moved to another event loop: forget what belonged to the old one.

        The bucket, pauses, slow start's window and what was learned are plain
        data and carry over. The queue's events, the window's event, the
        attempts in flight and the connections (a process is warm once one
        attempt was answered) belong to the old loop, whose calls never end here.
        """
        self._queue = deque()
        self._room = anyio.Event()
        self._room_wanted = False
        self._in_flight = 0
        self._answered = False  # the old loop's connections are gone: cold again

    def _window_full(self) -> bool:
        window = self._window
        return window is not None and self._in_flight >= window and not self.clock.testing

    def _spends_credit(self, now: float, interval: float) -> bool:
        """Whether an attempt goes ahead of the announced pace, on what the server says remains.

        Only the pace read from the headers gives way, and the attempt still
        counts against it: a window's allowance goes at once, and then the pace
        waits until the window is its own again.
        """
        credit, advertised = self._credit, self._advertised
        return (
            credit is not None
            and credit > 0
            and now < self._credit_until
            and advertised is not None
            and now < self._advertised_until
            and abs(interval * advertised - 1.0) < 1e-9  # the announced pace holds it back
        )

    def _window_is_ours(self, now: float) -> bool:
        """Whether this client's own sends fill the announced policy's current window.

        Then nothing remaining is what the pace itself leads to (a sliding window
        kept full at its rate reads 0 on every answer), and the pace, not the
        reset, says when the next goes. Otherwise someone else spent the quota.

        A send counts whole for a window after it, then less and less for a
        second window (:meth:`SendRecord.weighed`).
        """
        policy = self._policy
        if policy is None or now >= self._advertised_until:
            return False
        quota, window = policy
        return self._own_sends.weighed(now, window) >= OWN_SHARE * quota

    def _charge_own_sends(self, now: float, interval: float) -> None:
        """The announced pace begins: charge it for what was sent before, plus one turn.

        Sent at once (before any pace was known), the window's allowance is
        spent; a sliding window then lets the next request through only once a
        turn of the next window has passed.
        """
        own = self._own_sends
        own.forget(now - 2 * interval)  # nothing older than two turns is ahead of it
        if own:
            self._tat = max(self._tat, own.first() + (len(own) + 1) * interval)

    def _out_of_credit(self, now: float) -> bool:
        credit = self._credit
        if credit is None or credit > 0 or self.clock.testing:
            return False
        if now >= self._credit_until:
            self._credit = None  # the reset came: the quota is back
            self._probing = False
            return False
        if self._window_is_ours(now):
            return False  # the announced pace decides
        # A reset further off than the client may wait is a quota used up: nobody
        # holds for it; the calls fail at once (their Retry-After, or the reset).
        return self._credit_until - now <= self.max_hold

    def _wake(self) -> None:
        """Wake the head of the queue if it waits for room (the window, or credit)."""
        if self._room_wanted:
            self._room_wanted = False
            self._room.set()
            self._room = anyio.Event()

    def _end_slow_start(self) -> None:
        """Slow start ends: nothing waits for room in the window any more."""
        self._window = None
        self._wake()

    def _bucket_used_at(self, now: float, *, emptied: bool) -> None:
        """Take the bucket as having spent one turn at ``now``, or its whole burst if ``emptied``.

        Two answers say more than the bucket knows (skipped in test mode, where
        the client does not pace itself after answers):

        - The first answer, one turn: the client cannot tell when the first
          attempt reached the server (it opened the connection first, and
          left late: 30 ms and more), only that it had by its answer. Paced
          from its turn, the next ones bunched with it: a window that opens at
          the first arrival held one request too many, and HAProxy refused it
          and every one after it for that second (it counts its refusals).
          The pace counts from the answer, as if the attempt had gone then
          (the burst, if any, may still go at once).
        - A 429, the burst in force: the server's bucket is empty, and so is
          ours. The next turn is an interval away, and the burst comes back
          only as the bucket refills (while nothing is sent): a key another
          client spent gives no burst, whatever the configuration says.
        """
        shape = None if self.clock.testing else self._interval_and_burst()
        if shape is not None:
            interval, burst = shape
            self._tat = max(self._tat, now + (burst if emptied else 1) * interval)

    def _went(self, now: float) -> float:
        self._in_flight += 1
        if self._credit is not None:
            self._credit -= 1
        own = self._own_sends
        own.add(now)
        own.forget(now - 2 * (1.0 if self._policy is None else self._policy[1]))
        if self.pacer is not None:
            self.pacer.on_send(now, queued=bool(self._queue))
        return now

    def done(self) -> None:
        """An attempt that went through the gate has ended (answered or not)."""
        if self._in_flight == 0:
            return  # sent on an event loop that is gone (see reset_loop_state)
        self._in_flight -= 1
        first, self._answered = not self._answered, True
        window = self._window
        if first and self._limit is not None and self.pacer is not None:
            self._bucket_used_at(self.clock.now(), emptied=False)
            if window is not None:
                # The first request went at the pace, not ahead of it: the burst's
                # first request goes alone as well.
                self._wake()
                return
        if window is None:
            return
        # Slow start: each attempt that ends makes room for two, so the window doubles
        # each round trip. It ends at the first sign of a limit (the learner paces
        # from then on) or once the window is large. Told the rate, the window is the
        # configured burst sent ahead of the pace: it ends once the burst fits in it,
        # or at a 429 (on_response), so that a bucket another client spent refuses
        # one request of the burst, not the whole burst (9 of 10 at 20/s, nginx).
        learned = self.pacer is not None and self.pacer.rate is not None
        end = SLOW_START_END if self._limit is None else self._limit.burst
        if learned or window + 1 >= end:
            self._end_slow_start()
            return
        self._window = window + 1
        self._wake()

    def _quota_refused(self, now: float, sent_at: float, retry_after: float) -> None:
        """A 429 with a long ``Retry-After``: hold everyone until then; learn the window.

        Requests sent before the hold began are refused too, as they come back;
        they teach nothing more. The window that closed allowed what got through
        since it opened: its allowance, and its pace (that many over as long as
        it was open, ``retry_after`` seconds at least, less :data:`HEADROOM`).

        When the hold ends one probe goes first. The first time, its answer
        decides how windows are used from then on (:attr:`_window_bursts`): let
        through, the server forgot the old window, and each allowance goes at
        once; refused, it still weighs the old window in (HAProxy's
        ``http_req_rate`` does, for a whole period), a burst would only be
        refused, and sending keeps the pace, after a hold of a tenth of the
        window. A burst refused before half its allowance got through turns
        bursting off for good.
        """
        if sent_at < self._quota_held_until or now < self._quota_held_until:
            return  # sent before the window closed, or while holding: nothing new
        if self._window is not None:
            self._end_slow_start()
        admitted = self._quota_admitted
        probe_refused = self._probing
        self._probing = False
        self._credit = None
        hold = retry_after
        if probe_refused and self._window_bursts is None:
            self._window_bursts = False  # the old window still counts: pace from now on
        if self._window_bursts and 0 < admitted < self._window_allowance / 2:
            self._window_bursts = False  # the server refuses bursts after all
        if admitted > 0 or self._window_rate is None:
            opened = now if self._quota_opened is None else self._quota_opened
            took = max(now - opened, retry_after)
            self._window_rate = max(max(admitted, 1) / took * HEADROOM, MIN_ADVISED_RATE / 10)
            self._window_period = max(self._window_period, retry_after)
            if admitted > 0:
                self._window_allowance = admitted
            if self._window_bursts is not False:
                self._probing = True
        elif not self._window_bursts:
            # Refused before anything got through since the hold: the server's count
            # of the old window is fading; the pace stands, and a short hold will do.
            hold = min(retry_after, self._window_period / 10)
        else:
            self._probing = True  # the probe came early: the window opens when it says
        if self._probing:
            self._credit = 1
            self._credit_until = now + hold + self._window_period
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "quota used up for %.0fs: every task holds; %d got through, then %s",
                hold,
                admitted,
                "a probe" if self._probing else f"{self._window_rate:.2f} requests/s",
            )
        self._quota_held_until = self._quota_opened = now + hold
        self._quota_admitted = 0
        self._growth = 1
        self.pause(hold)
        self._wake()  # the head may wait on the probe's answer: the hold decides now

    def _probe_admitted(self) -> None:
        """The probe after a hold got through: the window is open."""
        self._probing = False
        if self._window_bursts is None:
            self._window_bursts = True  # the server forgot the old window
        if self._window_bursts:
            self._credit = max(self._window_allowance - 1, 1)
            self._credit_until = self.clock.now() + self._window_period
        else:
            self._credit = None
        self._wake()

    def pause(self, seconds: float, *, share: bool = True) -> None:
        """Hold all sending for ``seconds`` from now (a 503's ``Retry-After``).

        ``share``: hold every process on the key too (when a store is shared); False
        for a hold this process's own learning decided on.
        """
        now = self.clock.now()
        until = now + seconds
        if until > self._paused_until:
            self.paused_total += until - max(now, self._paused_until)
            self._paused_until = until
        if share and self.shared is not None and not self.clock.testing:
            self.shared.hold(seconds)  # every process on the key holds too

    def advise(self, state: RateLimitState) -> None:
        """Follow what the server announced of its limit (its rate-limit headers).

        - The rate of its tightest policy (quota over window), when announced,
          paces sending, less :data:`HEADROOM`; the announcement stands for
          :data:`ADVICE_LIFETIME` seconds, or until its reset.
        - The requests remaining are a credit: each send spends one, less the
          attempts already in flight. With none left the gate waits for an
          answer that says more remain, or for the reset.
        - Nothing remaining holds every task until the reset (within
          ``max_hold`` seconds; a longer wait is a ``Retry-After`` the call
          itself gives up on), unless this client's own sends fill the
          policy's window (:data:`OWN_SHARE` of its quota): then the pace says
          when the next goes. Remaining requests sent ahead of the pace count
          against it, so after a window's allowance went at once the pace
          waits about a window.
        - A limit announced without a window (``X-RateLimit-*``) is taken as a
          quota over the longest reset seen with it: never a slower pace than
          the quota's own.
        """
        now = self.clock.now()
        if self._window is not None:
            self._end_slow_start()  # the server says its limit: no need to find it by slow start
        remaining, reset = state.remaining, state.reset
        self._policy = self._policy_of(state)
        rate = state.rate()
        if rate is None and self._policy is not None:
            rate = self._policy[0] / self._policy[1]
        if rate is not None and rate > 0:
            rate = max(rate * HEADROOM, MIN_ADVISED_RATE)
            if self._advertised != rate and logger.isEnabledFor(logging.DEBUG):
                logger.debug("paced rate set to %.1f requests/s by the server's headers", rate)
            if self._advertised is None or now >= self._advertised_until:
                self._charge_own_sends(now, 1.0 / rate)
            self._advertised = rate
            lifetime = ADVICE_LIFETIME if reset is None else max(reset, ADVICE_LIFETIME)
            self._advertised_until = now + lifetime
        if remaining is None:
            return
        # The server counts for us: no window to learn.
        self._window_rate = None
        self._window_bursts, self._probing = None, False
        # The attempts in flight besides this one: the server may not have counted them.
        self._credit = remaining - max(self._in_flight - 1, 0)
        self._credit_until = now + (ADVICE_LIFETIME if reset is None else reset)
        self._wake()
        if (
            remaining == 0
            and reset is not None
            and 0 < reset <= self.max_hold
            and not self._window_is_ours(now)
        ):
            self.pause(reset)

    def _policy_of(self, state: RateLimitState) -> tuple[int, float] | None:
        """(quota, window) of the policy the remaining count belongs to, or None."""
        limit, window = state.limit, state.window
        if limit is None or limit <= 0:
            return None
        if window is None:
            # No window said: the longest reset seen with this limit stands for it.
            reset = state.reset
            known = self._policy
            longest = known[1] if known is not None and known[0] == limit else 0.0
            window = max(longest, reset or 0.0)
            if not 0 < window <= self.max_hold:
                return None
        return (limit, window) if window > 0 else None

    def on_response(
        self, *, throttled: bool, sent_at: float, retry_after: float | None = None
    ) -> None:
        """Feed one answer to the learner: a 429 (with its ``Retry-After``), or anything else."""
        if self.pacer is None:
            return
        now = self.clock.now()
        if not throttled:
            if self.shared is not None:
                self.shared.answered()  # the key's count of successes, told at the next booking
            opened = self._quota_opened
            if opened is None:
                self._quota_opened = sent_at
                self._quota_admitted = 1
            elif sent_at >= opened:
                self._quota_admitted += 1
            if self._probing and sent_at >= self._quota_held_until:
                self._probe_admitted()
            elif self._window_bursts and self._credit == 0 and self._in_flight <= 1:
                # The window's allowance is sent and answered: probe for more, one
                # request, then two, four... until a refusal says when it opens again.
                self._credit, self._growth = self._growth, self._growth * 2
                self._credit_until = now + self._window_period
                self._wake()
            self.pacer.on_success(now, sent_at)
            return
        if retry_after is not None and retry_after >= QUOTA_RETRY_AFTER:
            # Beyond max_hold the quota is used up: the call fails at once with a
            # RateLimitedError, a batch stops sending (or waits, when asked), and the
            # gate holds nobody for an hour.
            if not self.clock.testing and retry_after <= self.max_hold:
                self._quota_refused(now, sent_at, retry_after)
            return
        if self._limit is not None:
            self._bucket_used_at(now, emptied=True)
            if self._window is not None:
                self._end_slow_start()  # the burst met an empty bucket: the pace goes on
        elif self._window is not None:
            # A 429 in slow start: halve the window (a random refusal only slows the
            # climb; a limit soon ends slow start through the learner).
            self._window = max(SLOW_START, self._window // 2)
        hold = self.pacer.on_throttle(now, sent_at, retry_after)
        if hold is not None:
            # The server counts what it refuses. Shared, the count is the key's: every
            # process on it holds.
            self.pause(hold, share=self._sharing())
