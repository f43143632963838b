"""The rate limit shared through Redis by every client on one API key.

Processes and hosts that use one vendor key stay under the vendor's limit
together: the configured :class:`~hiveon_async.RateLimit` (or the rate the
server's headers announce, or the rate the processes learned from 429s,
whichever is lowest) is one bucket in Redis, and a 503's ``Retry-After`` (or
a hold the learning decided on) is one hold there. The gate (:mod:`._gate`)
consults this store at the head of its queue:

- **One round trip books turns.** A Lua script, atomic in Redis, books the
  next send times in the GCRA form of a token bucket, reading Redis's own
  clock (so hosts' clocks need not agree). It books one turn for the head of
  the queue and one for each waiter behind it (at most :data:`MOST_BOOKED`),
  so a slow Redis costs one round trip per group of requests, not per request.
  Booked times rise in queue order: this process's tasks are still served
  first come, first served.
- **Every process learns the key's rate.** Each booking tells Redis the
  answers other than 429 this process had since its last one, by age, and
  Redis answers with the key's count over the last 1, 1/2 and 1/4 s: every
  process's. The learner (:mod:`._pacing`) reads that count in place of its
  own, so each process learns the key's rate, not its share of it. Each
  booking also tells Redis that learned rate, which stands for
  :data:`LEARNED_LIFETIME` seconds; the bucket runs at the highest that
  stands (a process that had few answers lately has not grown its own).
  Turns go first come, first served across processes: those on the key
  share the rate evenly, whichever learned first.
- **Booked at most** :data:`HORIZON` **ahead at a learned pace** (or two
  round trips to Redis, when longer). A learned rate changes; a turn booked
  far ahead at an old pace would go at that pace, and a hold would not reach
  it in another process. At a configured or announced rate, every waiter's
  turn is booked at once, as far ahead as it falls.
- **Keys name a fingerprint, never the key.** A SHA-256 of the base URL and
  the API key, truncated, names the Redis keys.
- **Redis lost: the process goes on alone.** A lost connection, or an answer
  slower than :data:`ANSWER_TIMEOUT`, warns once and falls back to the local
  bucket and learned pacing; each :data:`RETRY_AFTER` seconds the next request
  tries Redis again, and the shared bucket is back as soon as it answers. Only
  a Redis that never answered since the client was made is an error (raised
  at the first call, naming the host and port, never the password).

redis-py's asyncio client runs on asyncio only; the client refuses
``redis_url`` on trio (see :func:`check_backend`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import time
import urllib.parse
from collections import deque
from typing import TYPE_CHECKING, Any

import attrs

from .._clock import current_loop
from .._errors import HiveonError, InvalidRequestError

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger("hiveon_async")

__all__ = [
    "REDIS_URL_ENV",
    "Booking",
    "SharedLimit",
    "check_backend",
    "redis_location",
    "resolve_redis_url",
]

#: The environment variable read when no ``redis_url`` is given.
REDIS_URL_ENV = "HIVEON_REDIS_URL"
#: Seconds Redis has to answer one booking; slower counts as lost (the process goes on alone).
ANSWER_TIMEOUT = 1.0
#: Seconds to connect to Redis.
CONNECT_TIMEOUT = 2.0
#: Seconds after losing Redis before a request tries it again.
RETRY_AFTER = 1.0
#: Turns booked in one round trip at most: the head of the queue and waiters behind it.
MOST_BOOKED = 64
#: Seconds a process's learned rate counts in the shared bucket after its last booking
#: (at least three turns of that rate): a process that ended or went idle soon
#: stops counting.
LEARNED_LIFETIME = 2.0
#: Seconds ahead a turn may be booked at most: a learned rate changes, and a turn
#: booked far ahead at a slow pace would stay there after the pace rose. Measured
#: with two processes learning on one key against HAProxy at 100/s: 0.1 s let 68% of
#: the rate through, with 23% of requests refused; 0.02 s, 86% and 11%.
HORIZON = 0.02
#: Seconds in one slot of the key's count of successes, and the slots in its second.
SLOT = 0.05
SLOTS = 20
#: Schemes redis-py's ``from_url`` accepts.
SCHEMES = ("redis", "rediss", "unix")

# KEYS[1]: the bucket's theoretical arrival time; KEYS[2]: until when sending is held;
# KEYS[3]: each process's learned rate, a hash of "<rate> <expires>" by process;
# KEYS[4]: answers other than 429 reported, a hash of counts by slot of time.
# Times in microseconds on Redis's clock, written with %.0f (Lua's tostring would round
# them to 14 digits). ARGV: the ceiling's interval (us, 0 for none), its burst, turns to
# book, hold (us, 0 for none), this process's id, its learned rate (requests/s, 0 for
# none), how long that stands (us), the horizon (us), the answers other than 429 this
# process had since its last booking, counted by age in slots ("3,0,1": 3 in the last
# slot, 1 two slots before; "" for none), a slot's width (us) and the slots in a
# second (the counts returned are over all of them, half and a quarter). The bucket
# runs at the highest learned rate that stands, when there is one and it is under the
# ceiling, with no burst; only then does the horizon apply.
# Returns the key's answers other than 429 over the last 1, 1/2 and 1/4 s, then each
# booked turn's delay from now (us); turns beyond the horizon are not booked, and when
# not even the first is, one negative number follows: minus that first turn's delay.
_BOOK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local hold = tonumber(ARGV[4])
local learned = tonumber(ARGV[6])
local lifetime = tonumber(ARGV[7])
local horizon = tonumber(ARGV[8])
local width = tonumber(ARGV[10])
local slots = tonumber(ARGV[11])
local slot = math.floor(now / width)
if ARGV[9] ~= '' then
  local age = 0
  for n in string.gmatch(ARGV[9], '[^,]+') do
    if tonumber(n) > 0 then redis.call('HINCRBY', KEYS[4], slot - age, tonumber(n)) end
    age = age + 1
  end
  redis.call('PEXPIRE', KEYS[4], math.ceil(2 * slots * width / 1000))
end
local fields = {}
for i = 0, slots - 1 do fields[i + 1] = slot - i end
local counts = redis.call('HMGET', KEYS[4], unpack(fields))
local ok = {0, 0, 0}
for i = 1, slots do
  local n = tonumber(counts[i] or '0') or 0
  ok[1] = ok[1] + n
  if i <= slots / 2 then ok[2] = ok[2] + n end
  if i <= slots / 4 then ok[3] = ok[3] + n end
end
if learned > 0 then
  redis.call('HSET', KEYS[3], ARGV[5], string.format('%.6f %.0f', learned, now + lifetime))
  if redis.call('PTTL', KEYS[3]) < lifetime / 1000 + 1000 then
    redis.call('PEXPIRE', KEYS[3], math.ceil(lifetime / 1000) + 1000)
  end
else
  redis.call('HDEL', KEYS[3], ARGV[5])
end
local highest = 0
local entries = redis.call('HGETALL', KEYS[3])
for i = 1, #entries, 2 do
  local rate, expires = string.match(entries[i + 1], '^(%S+) (%S+)$')
  if tonumber(expires) > now then
    if tonumber(rate) > highest then highest = tonumber(rate) end
  else
    redis.call('HDEL', KEYS[3], entries[i])
  end
end
if highest > 0 and (interval == 0 or 1000000 / highest > interval) then
  interval = 1000000 / highest
  burst = 1
else
  horizon = math.huge  -- a configured or announced rate stays: book as far ahead as asked
end
local held = tonumber(redis.call('GET', KEYS[2]) or '0')
if hold > 0 and now + hold > held then
  held = now + hold
  redis.call('SET', KEYS[2], string.format('%.0f', held), 'PX', math.ceil(hold / 1000) + 1000)
end
local answer = {ok[1], ok[2], ok[3]}
if interval == 0 then
  for i = 1, count do
    answer[3 + i] = math.max(held - now, 0)
  end
  return answer
end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local booked = 0
for i = 1, count do
  local start = math.max(now, tat - (burst - 1) * interval, held)
  if start - now > horizon then
    if i == 1 then
      answer[4] = now - start
      return answer
    end
    break
  end
  tat = math.max(tat, start) + interval
  answer[3 + i] = start - now
  booked = i
end
if booked > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
return answer
"""


def redis_location(url: object) -> str:
    """Where ``url`` points, safe to show: scheme, host, port and database, never a password.

    Raises:
        InvalidRequestError: Not a ``redis://``, ``rediss://`` or ``unix://`` URL.
    """
    if not isinstance(url, str):
        raise InvalidRequestError(f"redis_url must be a string, not {type(url).__name__}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise InvalidRequestError(
            "redis_url must start with redis://, rediss:// or unix:// "
            f"(got a URL with scheme {parts.scheme!r})"
        )
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    try:
        port = parts.port or 6379
    except ValueError:
        raise InvalidRequestError("redis_url has a port that is not a number") from None
    return f"{parts.scheme}://{parts.hostname or 'localhost'}:{port}{parts.path or '/0'}"


def resolve_redis_url(redis_url: object) -> str | None:
    """Return the checked Redis URL: the argument, else ``$HIVEON_REDIS_URL``, else None.

    Raises:
        InvalidRequestError: A bad URL, or trio running.
    """
    source = "redis_url"
    if redis_url is None:
        redis_url = os.environ.get(REDIS_URL_ENV) or None
        source = f"${REDIS_URL_ENV}"
        if redis_url is None:
            return None
    try:
        redis_location(redis_url)
    except InvalidRequestError as exc:
        raise InvalidRequestError(f"{source}: {exc}") from None
    check_backend()
    assert isinstance(redis_url, str)  # redis_location checked it
    return redis_url


def check_backend() -> None:
    """Refuse to share a limit on trio: redis-py's asyncio client needs asyncio.

    Raises:
        InvalidRequestError: Called under trio.
    """
    loop = current_loop()
    if loop is not None and not isinstance(loop, asyncio.AbstractEventLoop):
        raise InvalidRequestError(
            "redis_url works on asyncio only (redis-py's asyncio client); "
            "under trio, divide the rate between processes by hand"
        )


@attrs.frozen
class Booking:
    """What one booking in Redis answered.

    Attributes:
        delays: Each booked turn's delay from now, seconds (may be fewer than asked).
        wait: None, or the seconds until the first turn when it is beyond the horizon
            (then nothing was booked).
        successes: The key's answers other than 429, every process's, over the last
            1, 1/2 and 1/4 s (as reported with bookings).
    """

    delays: list[float]
    wait: float | None
    successes: tuple[int, int, int]


class SharedLimit:
    """The bucket and the hold in Redis for one API key and base URL.

    Args:
        url: The Redis URL (its password stays inside the connection).
        api_key: The vendor key; only its fingerprint names the Redis keys.
        base_url: The API root, part of the fingerprint.

    Raises:
        InvalidRequestError: A bad URL, or the ``redis`` extra is not installed.
    """

    def __init__(self, url: str, *, api_key: str, base_url: str) -> None:
        self.where = redis_location(url)
        try:
            from redis.asyncio.connection import parse_url
        except ImportError:
            raise InvalidRequestError(
                "redis_url needs the redis extra: pip install 'hiveon-async[redis]'"
            ) from None
        try:
            parse_url(url)  # its query arguments too: checked now, not at the first call
        except ValueError:
            raise InvalidRequestError(
                f"redis_url for {self.where} is not one redis-py accepts (check its query)"
            ) from None
        self._url = url
        fingerprint = hashlib.sha256(f"{base_url}\0{api_key}".encode()).hexdigest()[:24]
        prefix = f"hiveon-async:{fingerprint}"
        self.keys = (f"{prefix}:tat", f"{prefix}:hold", f"{prefix}:learned", f"{prefix}:ok")
        self._process = secrets.token_hex(8)  # names this client's learned rate in Redis
        self._answers: deque[float] = deque()  # answers other than 429 not yet told
        self._round_trip = 0.0  # seconds a booking takes, smoothed
        self._redis: Redis | None = None
        self._script: Any = None
        self._loop: object | None = None
        self._hold_until = -float("inf")  # a 503 hold not yet told to Redis (monotonic)
        self._answered = False  # Redis answered once: later failures are outages, not setup
        self._unreachable: str | None = None  # why Redis never answered, while it is fresh
        self._down_until = -float("inf")
        #: Whether the process is on its own now (Redis lost), for tests and logs.
        self.down = False

    def __repr__(self) -> str:
        return f"SharedLimit({self.where!r})"

    def usable(self) -> bool:
        """Whether to book through Redis now: up, or lost long enough ago to try again."""
        return not self.down or time.monotonic() >= self._down_until

    def hold(self, seconds: float) -> None:
        """Hold every client on the key for ``seconds``: told to Redis with the next booking."""
        self._hold_until = max(self._hold_until, time.monotonic() + seconds)

    @property
    def holding(self) -> bool:
        """Whether a hold is still to be told to Redis."""
        return self._hold_until > time.monotonic()

    async def book(
        self, count: int, interval: float | None, burst: int, learned: float | None = None
    ) -> Booking | None:
        """Book up to ``count`` turns and report this process's answers; None if Redis is lost.

        None means Redis is lost (the caller limits this process alone). At a
        learned pace only the turns due within :data:`HORIZON` (or two round
        trips) are booked.

        Args:
            count: Turns to book (0 to tell a hold or a learned rate only).
            interval: Seconds between turns of the ceiling (configured or
                announced), or None for none.
            burst: The ceiling's burst.
            learned: This process's learned rate, requests/s, or None.

        Raises:
            HiveonError: Redis has never answered since the client was made
                (unreachable, or it refused the password).
            InvalidRequestError: Called under trio.
        """
        if self._unreachable is not None and time.monotonic() < self._down_until:
            # Never answered, a moment ago: the same error at once, not a wait per call
            # (a batch would otherwise wait out a connect timeout for each id).
            raise HiveonError(self._unreachable)
        script = self._connect()
        # What is left of the hold (hosts' clocks differ: Redis adds it to its own).
        until, self._hold_until = self._hold_until, -float("inf")
        hold = max(until - time.monotonic(), 0.0)
        answered = self._answers
        self._answers = deque()
        slots = [0] * SLOTS
        moment = time.monotonic()
        for at in answered:
            age = int((moment - at) / SLOT)
            if age < len(slots):
                slots[age] += 1
        while slots and not slots[-1]:
            slots.pop()
        lifetime = 0.0 if learned is None else max(LEARNED_LIFETIME, 3 / learned)
        args = (
            0 if interval is None else round(interval * 1e6),
            burst,
            count,
            round(hold * 1e6),
            self._process,
            0 if learned is None else f"{learned:.6f}",
            round(lifetime * 1e6),
            # A turn must not be due before the answer that books it arrives.
            round(max(HORIZON, 2 * self._round_trip) * 1e6),
            ",".join(map(str, slots)),
            round(SLOT * 1e6),
            SLOTS,
        )
        from redis.exceptions import ConnectionError, TimeoutError

        started = time.monotonic()
        try:
            answer = await script(keys=self.keys, args=args)
        except (ConnectionError, TimeoutError, OSError) as exc:
            self._hold_until = max(self._hold_until, until)  # not told: tell it next time
            answered.extend(self._answers)
            self._answers = answered  # not told: tell them next time
            self._lost(exc)
            return None
        took = time.monotonic() - started
        self._round_trip += (took - self._round_trip) * (1.0 if not self._answered else 0.2)
        if self.down:
            logger.warning("the shared rate limit at %s is back", self.where)
        self.down = False
        self._answered = True
        self._unreachable = None
        ok_second, ok_half, ok_quarter, *delays = answer
        wait = None
        if delays and delays[0] < 0:
            wait, delays = -delays[0] / 1e6, []
        return Booking(
            delays=[delay / 1e6 for delay in delays],
            wait=wait,
            successes=(int(ok_second), int(ok_half), int(ok_quarter)),
        )

    def answered(self) -> None:
        """Count one answer other than 429, now: told to Redis with the next booking."""
        answers = self._answers
        moment = time.monotonic()
        answers.append(moment)
        while moment - answers[0] > 1.0:  # older than the counts in Redis go back
            answers.popleft()

    def _connect(self) -> Any:
        """The booking script on a client of this event loop (made again on a new loop)."""
        loop = current_loop()
        if self._redis is None or loop is not self._loop:
            check_backend()
            from redis.asyncio import Redis

            self._redis = Redis.from_url(
                self._url,
                socket_timeout=ANSWER_TIMEOUT,
                socket_connect_timeout=CONNECT_TIMEOUT,
            )
            self._script = self._redis.register_script(_BOOK)
            self._loop = loop
        return self._script

    def _lost(self, exc: BaseException) -> None:
        """Redis did not answer: an error before it ever did, else an outage (warned once)."""
        kind = type(exc).__name__
        if not self._answered:
            self._unreachable = (
                f"the shared rate limit's Redis at {self.where} did not answer ({kind}); "
                "check redis_url (or $HIVEON_REDIS_URL) and that Redis runs"
            )
            self._down_until = time.monotonic() + RETRY_AFTER
            raise HiveonError(self._unreachable) from None
        if not self.down:
            logger.warning(
                "lost the shared rate limit at %s (%s): this process limits itself alone "
                "until it is back",
                self.where,
                kind,
            )
        self.down = True
        self._down_until = time.monotonic() + RETRY_AFTER

    async def aclose(self) -> None:
        """Close the connection to Redis (if one was opened on this event loop)."""
        client, self._redis = self._redis, None
        if client is not None and self._loop is current_loop():
            await client.aclose()
