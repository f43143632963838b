"""The rate limit shared through Redis by every client on one API key.

Processes and hosts that use one vendor key stay under the vendor's limit
together: the configured :class:`~hiveon_async.RateLimit` (or the rate the
server's headers announce, when lower) is one bucket in Redis, and a 503's
``Retry-After`` is one hold there. The gate (:mod:`._gate`) consults this
store at the head of its queue:

- **One round trip books turns.** A Lua script, atomic in Redis, books the
  next send times in the GCRA form of a token bucket, reading Redis's own
  clock (so hosts' clocks need not agree). It books one turn for the head of
  the queue and one for each waiter behind it (at most :data:`MOST_BOOKED`),
  so a slow Redis costs one round trip per group of requests, not per request.
  Booked times rise in queue order: this process's tasks are still served
  first come, first served.
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
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from .._clock import current_loop
from .._config import RateLimit
from .._errors import HiveonError, InvalidRequestError

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger("hiveon_async")

__all__ = ["REDIS_URL_ENV", "SharedLimit", "check_backend", "redis_location", "resolve_redis_url"]

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
#: Schemes redis-py's ``from_url`` accepts.
SCHEMES = ("redis", "rediss", "unix")

# KEYS[1]: the bucket's theoretical arrival time; KEYS[2]: until when sending is held.
# Both in microseconds on Redis's clock, written with %.0f (Lua's tostring would
# round them to 14 digits). ARGV: interval (us), burst, turns to book, hold (us, 0
# for none). Returns each booked turn's delay from now, in microseconds.
_BOOK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local hold = tonumber(ARGV[4])
local held = tonumber(redis.call('GET', KEYS[2]) or '0')
if hold > 0 and now + hold > held then
  held = now + hold
  redis.call('SET', KEYS[2], string.format('%.0f', held), 'PX', math.ceil(hold / 1000) + 1000)
end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local delays = {}
for i = 1, count do
  local start = math.max(now, tat - (burst - 1) * interval, held)
  tat = math.max(tat, start) + interval
  delays[i] = start - now
end
if count > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
return delays
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


def resolve_redis_url(redis_url: object, rate_limit: RateLimit | None) -> str | None:
    """Return the checked Redis URL: the argument, else ``$HIVEON_REDIS_URL``, else None.

    Raises:
        InvalidRequestError: A bad URL, no ``rate_limit`` to share, or trio running.
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
    if rate_limit is None:
        raise InvalidRequestError(
            f"{source} shares a rate limit between processes: give rate_limit=RateLimit(...) too"
        )
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
        self.keys = (f"{prefix}:tat", f"{prefix}:hold")
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

    async def book(self, count: int, interval: float, burst: int) -> list[float] | None:
        """Book ``count`` turns; return each one's delay from now in seconds, or None.

        None means Redis is lost (the caller limits this process alone).

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
        args = (round(interval * 1e6), burst, count, round(hold * 1e6))
        from redis.exceptions import ConnectionError, TimeoutError

        try:
            delays = await script(keys=self.keys, args=args)
        except (ConnectionError, TimeoutError, OSError) as exc:
            self._hold_until = max(self._hold_until, until)  # not told: tell it next time
            self._lost(exc)
            return None
        if self.down:
            logger.warning("the shared rate limit at %s is back", self.where)
        self.down = False
        self._answered = True
        self._unreachable = None
        return [delay / 1e6 for delay in delays]

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
