"""The server's rate-limit headers, read into a :class:`RateLimitState`; pure, never raises.

Which headers are read, and how:

- **IETF, current draft** (draft-ietf-httpapi-ratelimit-headers-08 and later):
  ``RateLimit-Policy: "burst";q=100;w=60, "daily";q=1000;w=86400`` announces
  quota policies: a name (a String, or a Token), the quota ``q`` and the window
  ``w`` in seconds. ``RateLimit: "burst";r=50;t=30`` reports on one policy, by
  name: ``r`` requests remain, and more quota comes in ``t`` seconds. A policy
  whose quota unit ``qu`` is not ``"requests"`` (``content-bytes``,
  ``concurrent-requests``) does not count requests: it is skipped, and so are
  the ``RateLimit`` items that name it. ``pk`` and unknown parameters are
  ignored.
- **IETF, older drafts** (draft-ietf-httpapi-ratelimit-headers-07 and earlier):
  ``RateLimit-Limit: 100``, ``RateLimit-Remaining: 50``, ``RateLimit-Reset: 30``;
  the draft-07 dictionary ``RateLimit: limit=100, remaining=50, reset=30``; and
  ``RateLimit-Policy: 10;w=1, 1000;w=3600``, policies without names. In the
  earliest drafts ``RateLimit-Limit`` carries the policies itself
  (``RateLimit-Limit: 10, 10;w=1, 1000;w=3600``): its items with a ``w`` are
  policies, the others the limit.
- **X-RateLimit**: ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
  ``X-RateLimit-Reset``. They announce no window.

Only one family is used: the current draft when it yields anything usable, else
the older drafts, else ``X-RateLimit``; the others are then ignored, not mixed
in. Header names are case-insensitive. ``Retry-After`` is read elsewhere.

What the state holds: ``remaining`` and ``reset`` say how many requests may go
in the next ``reset`` seconds. ``limit`` and ``window`` are those of the policy
they report on: the policy named by the ``RateLimit`` item (none when it names
a policy not announced), or in the older drafts the announced policy whose
quota is the limit (without a window when there is none). When the headers
point at no policy (no ``RateLimit`` item; in the older drafts, no limit), they
are the most restrictive policy's. ``policies`` holds every policy announced,
and ``rate()`` is the lowest rate, requests per second, among them.

Reset values are seconds from now. A reset of :data:`EPOCH_SECONDS` (1e9) or
more is taken as a Unix time in seconds (GitHub's ``X-RateLimit-Reset``), and
of :data:`EPOCH_MILLISECONDS` (1e12) or more in milliseconds, and turned into
seconds from the ``wall`` time given; a time already past reads as 0.

When a header is repeated (or its values are joined by commas), the most
restrictive reading wins: of the current draft's ``RateLimit`` items, the one
with the fewest requests remaining (then the longest reset), its ``r`` and
``t`` kept together; elsewhere the smallest limit, the smallest remaining and
the longest reset, which may come from different repeats. Of two policies with
the same name (or, in the older drafts, the same quota), the one with the
lowest rate is the one reported on.

Values must be non-negative numbers (decimals are accepted, counts rounded
down): anything else (a sign, ``nan``, a quoted number...) and a window under
:data:`MIN_WINDOW` read as absent. An item then missing what it needs (a name
and ``q`` for a policy, a name and ``r`` for a ``RateLimit`` item) is ignored,
and the rest of the header still read. Counts are capped at :data:`MAX_COUNT`
(10^9), seconds at :data:`MAX_SECONDS` (366 days). When nothing usable is left
the result is None.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TypeAlias

from .._quota import QuotaPolicy, RateLimitState

__all__ = ["QuotaPolicy", "RateLimitState", "parse_rate_limit"]

#: A reset at least this large is a Unix time in seconds (2001-09-09 onwards).
EPOCH_SECONDS = 1e9
#: A reset at least this large is a Unix time in milliseconds.
EPOCH_MILLISECONDS = 1e12
#: Larger counts (quota, limit, remaining) read as this many.
MAX_COUNT = 1_000_000_000
#: Longer windows and resets, in seconds, read as this long (366 days).
MAX_SECONDS = 366 * 86_400.0
#: Shorter windows, in seconds, are ignored (the resolution of a Structured Fields Decimal).
MIN_WINDOW = 0.001

#: Response headers as the transports hold them: (name, value) pairs of bytes (httpx's
#: ``Headers.raw``, aiohttp's ``raw_headers``) or of str, or a mapping of str.
Headers: TypeAlias = Mapping[str, str] | Iterable[tuple[bytes | str, bytes | str]]

_NAMES = {
    name: name
    for name in (
        "ratelimit",
        "ratelimit-policy",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    )
}
_BYTE_NAMES = {name.encode(): name for name in _NAMES}
_LIMIT, _REMAINING, _RESET = "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"

# A lenient reading of RFC 9651 (Structured Fields): members split on commas, parameters
# on semicolons, except within quoted strings. An unclosed string runs to the end of the
# value, so that the scan stays linear on hostile input.
_PIECE = re.compile(r'"(?:[^"\\]|\\.)*"?|[^",;]+|.', re.DOTALL)
# Closed strings without commas, semicolons or escapes: a plain split is right.
_SIMPLE_STRINGS = re.compile(r'(?:[^"]|"[^",;\\]*")*')
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9:/!#$%&'*+\-.^_`|~]*")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_REQUESTS = frozenset({"requests", '"requests"'})


def parse_rate_limit(headers: Headers, *, wall: float) -> RateLimitState | None:
    """Read a response's rate-limit headers; see the module's docstring for which and how.

    Cheap when there are none (about a microsecond for six headers), so it can
    run on every response; the policies, which a server repeats, are cached.

    Args:
        headers: The response's headers: (name, value) pairs of bytes or str,
            as httpx's ``Headers.raw`` and aiohttp's ``raw_headers`` hold them,
            or a mapping of str (an ``httpx.Headers`` works, more slowly than
            its ``raw``).
        wall: The wall clock now, Unix seconds (``time.time()``): only used
            to turn a reset given as a Unix time into seconds from now.

    Returns:
        The state, or None when no header is present or none is usable.
    """
    pairs: Iterable[tuple[bytes | str, bytes | str]]
    if type(headers) is list or type(headers) is tuple:  # the transports' form, checked first
        pairs = headers
    elif isinstance(headers, Mapping):
        pairs = headers.items()
    else:
        pairs = headers
    found: dict[str, list[str]] | None = None
    for name, value in pairs:
        key = _BYTE_NAMES.get(name.lower()) if isinstance(name, bytes) else _NAMES.get(name.lower())
        if key is None:
            continue
        if found is None:
            found = {}
        found.setdefault(key, []).append(
            value.decode("latin-1") if isinstance(value, bytes) else value
        )
    if found is None:
        return None
    return _read(found, wall)


# -- reading --------------------------------------------------------------------------


def _read(found: dict[str, list[str]], wall: float) -> RateLimitState | None:
    """Build the state from the values of the headers found, by family, in precedence order."""
    readings: list[tuple[int, float | None, str]] = []
    older = {key: found.get(key, []) for key in (_LIMIT, _REMAINING, _RESET)}
    for head, params in _items(found.get("ratelimit", ())):
        if not head.startswith('"') and "=" in head:  # draft-07: limit=10, remaining=5, reset=3
            key, _, value = head.partition("=")
            key = f"ratelimit-{key.strip().lower()}"
            if key in older:
                older[key] = [*older[key], value]
            continue
        name = _name(head)
        remaining = _count(params.get("r"))
        if name is not None and remaining is not None:
            readings.append((remaining, _delay(params.get("t"), wall), name))

    policy_values = found.get("ratelimit-policy")
    named, unnamed, not_requests = (
        _policies(()) if policy_values is None else _policies(tuple(policy_values))
    )
    if readings or named:
        state = _current(readings, named, not_requests)
        if state is not None:
            return state
    state = _older(older, unnamed, wall)
    if state is not None:
        return state
    return _x_ratelimit(found, wall)


def _current(
    readings: list[tuple[int, float | None, str]],
    policies: tuple[QuotaPolicy, ...],
    not_requests: frozenset[str],
) -> RateLimitState | None:
    """The current draft's state: the most restrictive reading, with its policy."""
    if not_requests:
        readings = [reading for reading in readings if reading[2] not in not_requests]
    remaining: int | None = None
    reset: float | None = None
    name: str | None = None
    if readings:
        remaining, reset, name = min(readings, key=_reading_order)
        chosen = next((policy for policy in policies if policy.name == name), None)
    elif policies:
        chosen = policies[0]
        name = chosen.name
    else:
        return None
    return RateLimitState(
        source="ietf",
        limit=None if chosen is None else chosen.quota,
        remaining=remaining,
        reset=reset,
        window=None if chosen is None else chosen.window,
        policy=name,
        policies=policies,
    )


def _older(
    values: dict[str, list[str]], policies: tuple[QuotaPolicy, ...], wall: float
) -> RateLimitState | None:
    """The older drafts' state: the smallest limit and remaining, the longest reset."""
    if not (values[_LIMIT] or values[_REMAINING] or values[_RESET] or policies):
        return None
    limits: list[int] = []
    within: list[QuotaPolicy] = []
    for head, params in _items(values[_LIMIT]):
        quota = _count(head)
        if quota is None:
            continue
        if "w" in params:  # the earliest drafts: a policy within RateLimit-Limit
            within.append(QuotaPolicy(quota=quota, window=_window(params["w"])))
        else:
            limits.append(quota)
    if within:
        policies = _ordered([*policies, *within])
    remaining = _least(values[_REMAINING])
    reset = _latest(values[_RESET], wall)
    limit = min(limits, default=None)
    if limit is None and remaining is None and reset is None and not policies:
        return None
    if limit is None:
        chosen = policies[0] if policies else None
    else:
        chosen = next((policy for policy in policies if policy.quota == limit), None)
    return RateLimitState(
        source="draft",
        limit=limit if chosen is None else chosen.quota,
        remaining=remaining,
        reset=reset,
        window=None if chosen is None else chosen.window,
        policies=policies,
    )


def _x_ratelimit(found: dict[str, list[str]], wall: float) -> RateLimitState | None:
    """The ``X-RateLimit-*`` state: the smallest limit and remaining, the longest reset."""
    limit = _least(found.get("x-ratelimit-limit", ()))
    remaining = _least(found.get("x-ratelimit-remaining", ()))
    reset = _latest(found.get("x-ratelimit-reset", ()), wall)
    if limit is None and remaining is None and reset is None:
        return None
    return RateLimitState(source="x-ratelimit", limit=limit, remaining=remaining, reset=reset)


@functools.lru_cache(maxsize=32)
def _policies(
    values: tuple[str, ...],
) -> tuple[tuple[QuotaPolicy, ...], tuple[QuotaPolicy, ...], frozenset[str]]:
    """Read ``RateLimit-Policy``: named policies, unnamed ones (ordered), names not of requests.

    Cached: a server sends the same policies on every response.
    """
    named: list[QuotaPolicy] = []
    unnamed: list[QuotaPolicy] = []
    other_units: set[str] = set()
    for head, params in _items(values):
        window = _window(params.get("w"))
        quota = _count(head)
        if quota is not None:  # the older drafts: 10;w=1
            unnamed.append(QuotaPolicy(quota=quota, window=window))
            continue
        name = _name(head)
        quota = _count(params.get("q"))
        if name is None or quota is None:
            continue
        unit = params.get("qu")
        if unit is not None and unit not in _REQUESTS:
            other_units.add(name)
        else:
            named.append(QuotaPolicy(quota=quota, window=window, name=name))
    return (
        _ordered(named),
        _ordered(unnamed),
        frozenset(other_units - {policy.name for policy in named}),
    )


def _ordered(policies: list[QuotaPolicy]) -> tuple[QuotaPolicy, ...]:
    """The policies without repeats, the most restrictive first, in an order of their own."""
    return tuple(sorted(set(policies), key=_policy_order))


def _policy_order(policy: QuotaPolicy) -> tuple[bool, float, int, float, bool, str]:
    rate = policy.rate()
    name = policy.name
    return (
        rate is None,
        0.0 if rate is None else rate,
        policy.quota,
        0.0 if policy.window is None else policy.window,
        name is not None,
        "" if name is None else name,
    )


def _reading_order(reading: tuple[int, float | None, str]) -> tuple[int, float, str]:
    # Fewest remaining first; then the longest reset, none (no replenishment known) longest.
    remaining, reset, name = reading
    return remaining, -math.inf if reset is None else -reset, name


# -- syntax ---------------------------------------------------------------------------


def _items(values: Iterable[str]) -> Iterator[tuple[str, dict[str, str]]]:
    """Yield each member of the values (one per header line) as its head and its parameters.

    A parameter without a value maps to ``""``; of a repeated one, the last counts.
    """
    for value in values:
        for segments in _split(value):
            params: dict[str, str] = {}
            for segment in segments[1:]:
                key, _, param = segment.partition("=")
                params[key.strip().lower()] = param.strip()
            yield segments[0].strip(), params


def _split(value: str) -> list[list[str]]:
    """Split a header value on commas into members, and each on semicolons into segments."""
    if '"' not in value or _SIMPLE_STRINGS.fullmatch(value):
        return [member.split(";") for member in value.split(",")]
    members: list[list[str]] = []
    segments: list[str] = []
    text: list[str] = []
    for piece in _PIECE.findall(value):
        if piece == ",":
            segments.append("".join(text))
            members.append(segments)
            segments, text = [], []
        elif piece == ";":
            segments.append("".join(text))
            text = []
        else:
            text.append(piece)
    segments.append("".join(text))
    members.append(segments)
    return members


def _name(head: str) -> str | None:
    """A policy's name: a quoted String (unescaped) or a Token, else None."""
    if head.startswith('"'):
        match = _STRING.fullmatch(head)
        if match is None:
            return None
        name = match[1]
        return _ESCAPED.sub(_unescape, name) if "\\" in name else name
    return head if _TOKEN.fullmatch(head) else None


def _unescape(match: re.Match[str]) -> str:
    return match[1]


def _number(text: str | None) -> float | None:
    """A non-negative decimal number, possibly inf when absurdly long; else None."""
    if text is None:
        return None
    text = text.strip()
    return float(text) if _NUMBER.fullmatch(text) else None


def _count(text: str | None) -> int | None:
    number = _number(text)
    return None if number is None else int(min(number, MAX_COUNT))


def _window(text: str | None) -> float | None:
    number = _number(text)
    return None if number is None or number < MIN_WINDOW else min(number, MAX_SECONDS)


def _delay(text: str | None, wall: float) -> float | None:
    """Seconds from now: a delay, or a Unix time (seconds or milliseconds) turned into one."""
    number = _number(text)
    if number is None:
        return None
    if number >= EPOCH_MILLISECONDS:
        number = number / 1000 - wall
    elif number >= EPOCH_SECONDS:
        number -= wall
    if math.isnan(number):  # a wall of nan or inf
        return None
    return min(max(number, 0.0), MAX_SECONDS)


def _least(values: Iterable[str]) -> int | None:
    """The smallest count among the members of the values (parameters ignored), or None."""
    least: int | None = None
    for value in values:
        for segments in _split(value):
            count = _count(segments[0])
            if count is not None and (least is None or count < least):
                least = count
    return least


def _latest(values: Iterable[str], wall: float) -> float | None:
    """The longest delay among the members of the values (parameters ignored), or None."""
    latest: float | None = None
    for value in values:
        for segments in _split(value):
            delay = _delay(segments[0], wall)
            if delay is not None and (latest is None or delay > latest):
                latest = delay
    return latest
