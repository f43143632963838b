"""Adaptive pacing after throttling: CUBIC on the sending rate.

After a 429 the client cuts its sending rate to ``BETA`` times what it was
sending, then grows it again along a cubic curve as responses come back
without throttling: slowly near the rate that was refused, faster further
from it. This is the shape of botocore's adaptive retry mode (and of TCP
CUBIC), written for anyio and for one client shared by many tasks.

A throttle only cuts the rate once per round: responses to requests that were
sent before the last cut say nothing about the new rate, so they do not cut it
again (otherwise a burst of 429s from one round would collapse the rate to the
floor).

And only throttling that is more than noise cuts it: a cut needs 429s to be at
least ``THROTTLE_SHARE`` of recent answers. A server that refuses 1% of
requests at random (a proxy's hiccups, a neighbour's quota) would otherwise
drive the rate to a crawl, each lone 429 cutting it before it could grow back;
measured in-process, that was 66 requests/s where 16,000/s were possible. A
lone 429 still pauses sending for its ``Retry-After``
(:mod:`hiveon_async._ratelimit`); pacing is for sustained refusal.
"""

from __future__ import annotations

import math

#: The rate is cut to this fraction of the sending rate at a throttle.
BETA = 0.7
#: How fast the cubic curve grows back (requests/s per second cubed).
SCALE = 0.4
#: Never pace slower than this, requests per second.
MIN_RATE = 0.5
#: Width of the buckets in which the sending rate is measured, seconds.
_BUCKET = 0.5
#: Weight of the newest bucket in the smoothed measurement.
_SMOOTH = 0.8
#: The share of recent answers that must be 429 before the rate is cut.
THROTTLE_SHARE = 0.05
#: Weight of each answer in that share (about the last 100 answers count).
_SHARE_WEIGHT = 0.01


class AdaptivePacer:
    """Tracks the sending rate and the paced rate for one client.

    Off until the first throttle: until then :attr:`rate` is None and sending
    is not paced at all.
    """

    __slots__ = (
        "_bucket_count",
        "_bucket_start",
        "_first_send",
        "_last_cut",
        "_measured",
        "_sends",
        "_share",
        "_w_max",
        "rate",
    )

    def __init__(self) -> None:
        self.rate: float | None = None
        self._w_max = 0.0
        self._last_cut = -math.inf
        self._measured = 0.0
        self._first_send: float | None = None
        self._sends = 0
        self._bucket_start = 0.0
        self._bucket_count = 0
        self._share = 0.0

    def on_send(self, now: float) -> None:
        """Count one request going out at ``now``."""
        self._sends += 1
        if self._first_send is None:
            self._first_send = now
            self._bucket_start = now
        if now - self._bucket_start >= _BUCKET:
            current = self._bucket_count / (now - self._bucket_start)
            self._measured = (
                current
                if self._measured == 0.0
                else _SMOOTH * current + (1 - _SMOOTH) * self._measured
            )
            self._bucket_start = now
            self._bucket_count = 0
        self._bucket_count += 1

    def sending_rate(self, now: float) -> float:
        """Return the measured sending rate, requests per second."""
        if self._measured:
            return self._measured
        if self._first_send is None:
            return 0.0
        # No full bucket yet: average over at least one bucket's width, so that
        # an opening burst does not read as an enormous rate.
        return self._sends / max(now - self._first_send, _BUCKET)

    def on_throttle(self, now: float, sent_at: float) -> None:
        """Cut the rate after a 429 for a request sent at ``sent_at``, unless it is noise."""
        self._share += _SHARE_WEIGHT * (1.0 - self._share)
        if sent_at < self._last_cut or self._share < THROTTLE_SHARE:
            return
        measured = self.sending_rate(now)
        base = measured if self.rate is None else min(measured, self.rate)
        self._w_max = max(base, MIN_RATE)
        self.rate = max(base * BETA, MIN_RATE)
        self._last_cut = now

    def on_success(self, now: float) -> None:
        """Grow the rate along the cubic curve after an unthrottled response."""
        self._share -= _SHARE_WEIGHT * self._share
        if self.rate is None:
            return
        k = (self._w_max * (1 - BETA) / SCALE) ** (1 / 3)
        target = SCALE * (now - self._last_cut - k) ** 3 + self._w_max
        ceiling = 2 * max(self.sending_rate(now), MIN_RATE)
        self.rate = max(min(target, ceiling), MIN_RATE)
