"""Learning the rate the server allows, from its 429s.

The vendor limits each API key, and a fleet stop is bounded by that limit, so
the client's job is to send as close to it as it can without being refused.
Until the first sign of a limit the client is not paced (the gate's slow start
only keeps the first rounds small). Then:

- **Cut to what got through.** When 429s are more than noise, the rate is set
  just under the rate of successes over the last second: a token bucket lets
  through exactly its rate whatever is sent, so that is the limit itself.
- **Hold when refused at the new pace.** If requests sent after a cut, at the
  rate it set, are refused too, the server counts what it refuses (a sliding
  window): sending more only keeps it refusing, so every task holds back for
  :data:`HOLD_SHARE` of the ``Retry-After`` (longer right after a window let
  its allowance through at once: see ``_hold_for``), and again if the first
  request after the hold is refused.
- **Grow back fast, then probe slowly.** While nothing is refused the rate
  doubles every :data:`DOUBLING` seconds up to just under the last limit
  found, then creeps up by a share per second that halves each time the same
  limit is met again, so a limit that was raised is found again at the cost of
  a refusal now and then. It grows only while answers come.
- **Noise is not a limit.** A cut needs five 429s among the last
  :data:`RECENT` answers, for a request sent after the last cut had settled: a
  server that refuses 1% of requests at random leaves the rate alone.

A refused request itself always waits its ``Retry-After`` before its retry.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections import deque

logger = logging.getLogger("hiveon_async")

__all__ = ["RateLearner"]

#: Seconds over which sends and successes are counted.
WINDOW = 1.0
#: The learned rate, as a share of the rate of successes when 429s came.
MARGIN = 0.95
#: Seconds for the rate to double while it is well under the last refused rate.
DOUBLING = 0.25
#: Growth per second, as a share of the rate, near the last refused rate.
PROBE = 0.05
#: Seconds without a cut after which the probe's growth doubles, and doubles again.
ACCELERATE = 1.0
#: How close (as a share) to the last refused rate the fast growth goes.
NEAR = 0.9
#: Two cuts whose rates of success differ by less than this share find the same limit:
#: the probing above it slows by half each time, down to MIN_PROBE.
NEAR_SAME = 0.05
MIN_PROBE = 0.005
#: Intervals at the new pace before a 429 can cut again.
SETTLE = 1.5
#: Successes in the last window needed before their rate is taken as the limit.
MIN_EVIDENCE = 3
#: Successes a part of a second must hold before its rate counts (see successes()).
SHORT_EVIDENCE = 8
#: The recent parts of a second whose count of successes may stand for the rate, with
#: how many successes each must hold (see successes()).
PARTS: tuple[tuple[float, int], ...] = ((WINDOW / 2, SHORT_EVIDENCE), (WINDOW / 4, 50))
#: Answers looked at to tell a limit from noise, and the 429s among them that mean a
#: limit: SHARE of RECENT, counted from the first answer on (a server refusing 1% at
#: random is noise, and so are a few refusals while a configured rate settles).
RECENT = 100
SHARE = 0.05
#: A hold lasts this share of the 429's ``Retry-After``: then the first request
#: probes whether the server's count has room again. A refused probe adds one
#: request to that count and holds again; a whole ``Retry-After`` would waste the
#: rest of it once the count fades (a sliding window's does, gradually).
HOLD_SHARE = 0.1
#: Seconds the key's counts from the shared store stand for the key (see observe_key()).
KEY_FRESH = 0.5
#: Seconds without any send after which sending is said to resume (see successes()).
GAP = 0.25
#: Seconds without a cut after which pacing stops.
FORGET = 10.0
#: Never pace slower than this, requests per second.
MIN_RATE = 0.5
#: Seconds between two updates of the growth.
_STEP = 0.05


class RateLearner:
    """Tracks sends and answers for one client, and the rate to pace at.

    Args:
        ceiling: A configured rate the learned rate never exceeds, or None.

    Attributes:
        rate: Requests per second to pace at, or None while not pacing.
    """

    def __init__(self, ceiling: float | None = None) -> None:
        self.rate: float | None = None
        # The key's successes over the last 1, 1/2 and 1/4 s, every process's, and
        # when the shared store said so (see observe_key()).
        self._key: tuple[int, int, int] | None = None
        self._key_at = -math.inf
        self._ceiling = ceiling
        self._sent: deque[float] = deque()
        self._ok: deque[float] = deque()
        self._recent: deque[bool] = deque(maxlen=RECENT)
        self._throttles = 0  # 429s among _recent
        self._first_send = math.inf
        self._paced_since = math.inf  # the first cut (see successes())
        self._last_cut = -math.inf
        self._settled_at = -math.inf  # answers to requests sent before this say nothing new
        self._rate_at_cut = math.inf
        self._held_until = -math.inf  # when the last hold ends
        self._queued_at = -math.inf  # when requests last waited for the pace
        # Answers to requests sent since the last cut settled.
        self._ok_since_cut = 0
        self._refused_since_cut = 0
        self._resumed_at = -math.inf  # the first send after the last gap (GAP)
        self._limit: float | None = None  # what got through when 429s came, once paced
        self._probe = PROBE
        self._grown_at = 0.0

    # -- what happens --------------------------------------------------------------

    def on_send(self, now: float, *, queued: bool = False) -> None:
        """Count one request going out at ``now``; ``queued`` when others wait for the pace."""
        if queued:
            self._queued_at = now
        sent = self._sent
        if not sent or now - sent[-1] > GAP:
            self._resumed_at = now  # the first send after a time without any
        sent.append(now)
        if self._first_send == math.inf:
            self._first_send = now
        horizon = now - WINDOW
        while sent[0] < horizon:
            sent.popleft()

    def on_success(self, now: float, sent_at: float) -> None:
        """Count an answer that was not a 429; grow the rate if it is paced."""
        self._remember(False)
        if sent_at >= self._settled_at:
            self._ok_since_cut += 1
        ok = self._ok
        ok.append(now)
        horizon = now - WINDOW
        while ok[0] < horizon:
            ok.popleft()
        if self.rate is not None and now - self._grown_at >= _STEP:
            self._grow(now)

    def on_throttle(
        self, now: float, sent_at: float, retry_after: float | None = None
    ) -> float | None:
        """Count a 429 for a request sent at ``sent_at``; cut the rate if it is a limit.

        Args:
            now: The time of the answer.
            sent_at: When the refused request was sent.
            retry_after: The answer's ``Retry-After``, seconds, if usable.

        Returns:
            Seconds every task should hold back (:data:`HOLD_SHARE` of the
            ``Retry-After``, or longer: see ``_hold_for``), or None: the
            server refuses even at the rate just cut to, so it counts what it
            refuses, and more requests now only keep it refusing.
        """
        self._remember(True)
        if sent_at < self._settled_at:
            return None
        self._refused_since_cut += 1
        if self._throttles < SHARE * RECENT:
            return None
        hold_for = self._hold_for(now, retry_after)
        if self._held_until <= sent_at < self._held_until + WINDOW and not self._ok_since_cut:
            # Refused right after a hold: the server still counts what it refused before.
            # Nothing got through meanwhile, so there is nothing to learn but to hold again.
            self._held_until = self._settled_at = now + hold_for
            self._grown_at = self._held_until  # no growth while holding
            if now - self._key_at <= KEY_FRESH and self.rate is not None:
                # Learning the key's rate from every process's count: a count told late
                # may have read high, and holding at a pace over the limit never lets
                # anything through (the processes go on sending between their holds).
                self._set(max(self.rate * MARGIN, MIN_RATE), now, "cut")
            return hold_for
        through = self.successes(now)
        if self.rate is None:  # the first sign of a limit: what got through was a burst
            new = through * MARGIN
            if self._ceiling is not None and now - self._first_send < WINDOW:
                # Told the rate, and refused within the first second: the key was partly
                # spent before (the burst met an empty bucket). A part of a second's
                # successes is no rate; the configured one, without its burst, is.
                new = max(new, self._ceiling * MARGIN)
            hold = False
        else:
            # Refused at the rate just cut to, and more often than not: the server
            # counts what it refused (a random refusal now and then is no reason).
            hold = (
                self.rate <= self._rate_at_cut
                and now - self._last_cut < WINDOW
                and self._refused_since_cut > self._ok_since_cut
            )
            if self._counts(now)[0] >= MIN_EVIDENCE:
                limit = self._limit
                if limit is not None and abs(through - limit) <= NEAR_SAME * limit:
                    self._probe = max(self._probe / 2, MIN_PROBE)  # refused where it was before
                self._limit = through
                new = min(through, self.rate) * MARGIN
            else:  # too little got through to measure: step down
                new = self.rate * MARGIN
        if self._ceiling is not None:
            new = min(new, self._ceiling)
        new = max(new, MIN_RATE)
        self._set(new, now, "cut")
        self._last_cut = now
        self._rate_at_cut = new
        self._ok_since_cut = self._refused_since_cut = 0
        # The first request at the new pace may still meet what the old pace left behind.
        self._settled_at = now + SETTLE / new
        if not hold:
            return None
        self._held_until = self._settled_at = now + hold_for
        self._grown_at = self._held_until  # no growth while holding
        return hold_for

    def _hold_for(self, now: float, retry_after: float | None) -> float:
        """Seconds every task holds back, now that the server counts what it refuses.

        :data:`HOLD_SHARE` of the ``Retry-After``; or, while the last second
        holds successes from before anything paced the client (a batch's
        opening, untold, against a window that lets its whole allowance
        through at once), until the oldest of them is a second old, within the
        ``Retry-After``. The window has no room before then: every probe of
        the rest of that second was refused, and HAProxy counted each one (10
        at 20/s). Successes at a pace (the learned one after a stall, or a
        configured one) say nothing of when it has room.
        """
        asked = WINDOW if retry_after is None else retry_after
        ok = self._ok
        self._trim(ok, now)
        unpaced = self._ceiling is None and bool(ok) and ok[0] < self._paced_since
        room = ok[0] + WINDOW - now if unpaced else 0.0
        return max(asked * HOLD_SHARE, min(room, asked))

    # -- what it knows -------------------------------------------------------------

    def sending_rate(self, now: float) -> float:
        """Requests sent per second, over the last second (or since the first send)."""
        self._trim(self._sent, now)
        return len(self._sent) / max(min(now - self._first_send, WINDOW), _STEP)

    def successes(self, now: float) -> float:
        """Answers other than 429 per second, over the last second or a recent part of it.

        While the rate climbs, a whole second lags behind what the server lets
        through now: the last half second catches up, and the highest count
        wins, once the half holds :data:`SHORT_EVIDENCE` answers. The last
        quarter second counts too once it holds 50: a token bucket's burst (10
        at nginx's) would fill a quarter second of fewer, but is a small part
        of that many. At 400/s the half second still lagged the climb, and
        the cut set the pace at 300/s.
        Before pacing begins the last second alone counts: what got through in
        the first instants was the server's burst, not its rate. A part that
        reaches back before pacing began does not count either: against
        HAProxy's window at 400/s the whole allowance went in the first 0.2 s,
        a quarter second read 1,600/s, the pace doubled past the limit after
        the hold, and the cut that followed set it at 228/s.
        """
        second, *parts = self._counts(now)
        span = WINDOW
        if self._ceiling is not None:
            # Told the rate: paced from the first request, so what got through since
            # then is a rate, even over less than a second. Over a whole second it
            # read half the rate on a key spent just before: the cut set 47.5/s
            # against HAProxy's 100/s, and the batch took seconds to climb back.
            span = max(min(now - self._first_send, WINDOW), WINDOW / 4)
        best = second / span
        if self.rate is None:
            # Unpaced: the server's burst fills a short part. That is not a rate.
            return best
        if now - self._held_until < WINDOW:
            # Just after a hold: a window that emptied while everyone held lets a
            # burst through at once, so a short part is no rate; but nothing was
            # sent during the hold (and while every task waited out its refused
            # request's Retry-After), so a whole second undercounts. The time since
            # sending resumed counts, half a second at least.
            span = min(max(now - self._resumed_at, WINDOW / 2), WINDOW)
            return second / span
        for (part, evidence), recent in zip(PARTS, parts, strict=True):
            if recent >= evidence and now - part >= self._paced_since:
                best = max(best, recent / part)
        return best

    def observe_key(self, now: float, successes: tuple[int, int, int]) -> None:
        """The shared store's count of the key's successes, every process's (:mod:`._shared`).

        Over the last 1, 1/2 and 1/4 s. For :data:`KEY_FRESH` seconds they stand
        in for this process's own (with its own since added): each process then
        learns the key's rate, not its share of it.
        """
        self._key = successes
        self._key_at = now

    def _counts(self, now: float) -> tuple[int, ...]:
        """Successes over the last second and over each of :data:`PARTS`: the key's, or ours."""
        ok = self._ok
        self._trim(ok, now)
        ours = (len(ok), *(len(ok) - bisect.bisect_left(ok, now - part) for part, _ in PARTS))
        key = self._key
        if key is None or now - self._key_at > KEY_FRESH:
            return ours
        # The key's count when the store last answered, and ours since (not told yet).
        since = len(ok) - bisect.bisect_right(ok, self._key_at)
        return tuple(count + min(since, own) for count, own in zip(key, ours, strict=True))

    def _remember(self, throttled: bool) -> None:
        recent = self._recent
        if len(recent) == RECENT and recent[0]:
            self._throttles -= 1
        recent.append(throttled)
        if throttled:
            self._throttles += 1

    def _grow(self, now: float) -> None:
        rate = self.rate
        assert rate is not None
        # Growth comes with answers: time without any (every task waiting out its
        # Retry-After, or nothing to send) is no evidence that more would get through.
        # At a slow pace answers are that far apart: two turns of it count (at most
        # two doublings), or a process cut low (another one on the key took what was
        # left) would hardly recover.
        elapsed = min(now - self._grown_at, max(2 * _STEP, min(2 / rate, 2 * DOUBLING)))
        if now - self._last_cut > FORGET:
            # No 429 worth a cut for a long while: the limit is gone or far above what
            # is sent. Stop pacing; a limit that is still there shows itself again.
            self.rate = self._limit = None
            self._paced_since = math.inf
            self._probe = PROBE
            logger.debug("pacing stopped: no sustained 429s for %.0fs", FORGET)
            return
        near = math.inf if self._limit is None else NEAR * self._limit
        if rate < near:
            new = min(rate * 2 ** (elapsed / DOUBLING), near)
        else:
            # The probe quickens the longer nothing is refused: a limit that was
            # under-estimated (or raised) is found again in seconds, not minutes.
            quiet = max(now - self._last_cut - ACCELERATE, 0.0)
            probe = min(self._probe * 2 ** (quiet / ACCELERATE), math.log(2) / DOUBLING)
            new = rate * (1 + probe * elapsed)
        if now - self._queued_at > WINDOW:
            # Nobody waits for the pace: growing past what is sent would be a ceiling
            # nobody meets, and a burst later.
            new = min(new, 2 * max(self.sending_rate(now), MIN_RATE))
        if self._ceiling is not None:
            new = min(new, self._ceiling)
        if new > rate:
            self._set(new, now, "raised")
        else:
            self._grown_at = now

    def _set(self, rate: float, now: float, verb: str) -> None:
        if self.rate is None:
            self._paced_since = now
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("paced rate %s to %.1f requests/s", verb, rate)
        self.rate = rate
        self._grown_at = now

    @staticmethod
    def _trim(times: deque[float], now: float) -> None:
        horizon = now - WINDOW
        while times and times[0] < horizon:
            times.popleft()
