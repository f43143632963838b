"""parse_rate_limit: every syntax by example, then hostile input by property."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from random import Random

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hiveon_async._policy._headers import (
    MAX_COUNT,
    MAX_SECONDS,
    MIN_WINDOW,
    QuotaPolicy,
    RateLimitState,
    parse_rate_limit,
)

#: Fixed, small and derandomized: the same examples on every run.
EXAMPLES = settings(max_examples=200, deadline=None, derandomize=True)

WALL = 1_700_000_000.0

Pairs = Sequence[tuple[str, str]]


def parse(*pairs: tuple[str, str]) -> RateLimitState | None:
    return parse_rate_limit(list(pairs), wall=WALL)


ietf = functools.partial(RateLimitState, source="ietf")
draft = functools.partial(RateLimitState, source="draft")
x = functools.partial(RateLimitState, source="x-ratelimit")


BURST = QuotaPolicy(quota=100, window=60.0, name="burst")
DAILY = QuotaPolicy(quota=1000, window=86400.0, name="daily")

# -- examples ------------------------------------------------------------------------

CURRENT_DRAFT: list[tuple[str, Pairs, RateLimitState | None]] = [
    (
        "the draft's example",
        [
            ("RateLimit-Policy", '"burst";q=100;w=60,"daily";q=1000;w=86400'),
            ("RateLimit", '"burst";r=50;t=30'),
        ],
        ietf(
            limit=100,
            remaining=50,
            reset=30.0,
            window=60.0,
            policy="burst",
            policies=(DAILY, BURST),
        ),
    ),
    (
        "a reading on the other policy",
        [
            ("RateLimit-Policy", '"burst";q=100;w=60,"daily";q=1000;w=86400'),
            ("RateLimit", '"daily";r=10;t=3600'),
        ],
        ietf(
            limit=1000,
            remaining=10,
            reset=3600.0,
            window=86400.0,
            policy="daily",
            policies=(DAILY, BURST),
        ),
    ),
    (
        "a reading without the policies",
        [("RateLimit", '"default";r=50;t=30')],
        ietf(remaining=50, reset=30.0, policy="default"),
    ),
    (
        "a reading without t",
        [("RateLimit", '"default";r=999;pk=:dHJpYWwxMjEzMjM=:')],
        ietf(remaining=999, policy="default"),
    ),
    (
        "a reading on a policy not announced",
        [("RateLimit-Policy", '"burst";q=100;w=60'), ("RateLimit", '"other";r=5;t=1')],
        ietf(remaining=5, reset=1.0, policy="other", policies=(BURST,)),
    ),
    (
        "policies only: the most restrictive one",
        [("RateLimit-Policy", '"burst";q=100;w=60, "daily";q=1000;w=86400')],
        ietf(limit=1000, window=86400.0, policy="daily", policies=(DAILY, BURST)),
    ),
    (
        "a policy without a window",
        [("RateLimit-Policy", '"quota";q=100'), ("RateLimit", '"quota";r=7;t=9')],
        ietf(
            limit=100,
            remaining=7,
            reset=9.0,
            policy="quota",
            policies=(QuotaPolicy(quota=100, name="quota"),),
        ),
    ),
    (
        "two readings: the fewest remaining",
        [("RateLimit", '"a";r=9;t=1, "b";r=2;t=60, "c";r=5;t=5')],
        ietf(remaining=2, reset=60.0, policy="b"),
    ),
    (
        "two readings as remaining: the longest reset",
        [("RateLimit", '"a";r=2;t=1, "b";r=2;t=60')],
        ietf(remaining=2, reset=60.0, policy="b"),
    ),
    (
        "two readings as remaining, one without reset: that one",
        [("RateLimit", '"a";r=2;t=600, "b";r=2')],
        ietf(remaining=2, policy="b"),
    ),
    (
        "split over two fields",
        [
            ("RateLimit-Policy", '"burst";q=100;w=60'),
            ("RateLimit-Policy", '"daily";q=1000;w=86400'),
            ("RateLimit", '"daily";r=10;t=3600'),
            ("RateLimit", '"burst";r=1;t=30'),
        ],
        ietf(
            limit=100,
            remaining=1,
            reset=30.0,
            window=60.0,
            policy="burst",
            policies=(DAILY, BURST),
        ),
    ),
    (
        "tokens for names, whitespace, unknown and vendor parameters",
        [
            ("RateLimit-Policy", '  burst ; q=100 ;w=60;acme-burst=5;comment="a, b; c" ,'),
            ("RateLimit", " burst;r=50; t=30 ;pk=:cHsdsRa894==:;x=?1 "),
        ],
        ietf(
            limit=100,
            remaining=50,
            reset=30.0,
            window=60.0,
            policy="burst",
            policies=(BURST,),
        ),
    ),
    (
        "names with escapes, commas and semicolons",
        [
            ("RateLimit-Policy", r'"a\"b,;c\\";q=10;w=1'),
            ("RateLimit", r'"a\"b,;c\\";r=3;t=1'),
        ],
        ietf(
            limit=10,
            remaining=3,
            reset=1.0,
            window=1.0,
            policy='a"b,;c\\',
            policies=(QuotaPolicy(quota=10, window=1.0, name='a"b,;c\\'),),
        ),
    ),
    (
        "a quota of bytes is skipped, with its reading",
        [
            (
                "RateLimit-Policy",
                '"bytes";q=65535;qu="content-bytes";w=10, "req";q=10;w=1;qu="requests"',
            ),
            ("RateLimit", '"bytes";r=0;t=10, "req";r=9;t=1'),
        ],
        ietf(
            limit=10,
            remaining=9,
            reset=1.0,
            window=1.0,
            policy="req",
            policies=(QuotaPolicy(quota=10, window=1.0, name="req"),),
        ),
    ),
    (
        "the same name twice: the lower rate",
        [("RateLimit-Policy", '"p";q=10;w=1, "p";q=10;w=10'), ("RateLimit", '"p";r=4;t=2')],
        ietf(
            limit=10,
            remaining=4,
            reset=2.0,
            window=10.0,
            policy="p",
            policies=(
                QuotaPolicy(quota=10, window=10.0, name="p"),
                QuotaPolicy(quota=10, window=1.0, name="p"),
            ),
        ),
    ),
    (
        "a repeated policy is kept once",
        [("RateLimit-Policy", '"burst";q=100;w=60'), ("RateLimit-Policy", "burst;q=100;w=60")],
        ietf(limit=100, window=60.0, policy="burst", policies=(BURST,)),
    ),
    (
        "items without a name, q or r are ignored, the others read",
        [
            ("RateLimit-Policy", '"x";w=60, 5x;q=3, "burst";q=100;w=60, "y";q=-1'),
            ("RateLimit", '"a";t=3, "b";r=-1, ;r=3, "burst";r=8;t=4'),
        ],
        ietf(
            limit=100,
            remaining=8,
            reset=4.0,
            window=60.0,
            policy="burst",
            policies=(BURST,),
        ),
    ),
]

OLDER_DRAFTS: list[tuple[str, Pairs, RateLimitState | None]] = [
    (
        "limit, remaining, reset",
        [("RateLimit-Limit", "100"), ("RateLimit-Remaining", "50"), ("RateLimit-Reset", "30")],
        draft(limit=100, remaining=50, reset=30.0),
    ),
    (
        "with the policy of the limit",
        [
            ("RateLimit-Limit", "100"),
            ("RateLimit-Remaining", "50"),
            ("RateLimit-Reset", "30"),
            ("RateLimit-Policy", "100;w=60"),
        ],
        draft(
            limit=100,
            remaining=50,
            reset=30.0,
            window=60.0,
            policies=(QuotaPolicy(quota=100, window=60.0),),
        ),
    ),
    (
        "several policies, the limit's chosen by its quota",
        [
            ("RateLimit-Limit", "10"),
            ("RateLimit-Remaining", "1"),
            ("RateLimit-Reset", "7"),
            ("RateLimit-Policy", "10;w=1, 50;w=60, 1000;w=3600, 5000;w=86400"),
        ],
        draft(
            limit=10,
            remaining=1,
            reset=7.0,
            window=1.0,
            policies=(
                QuotaPolicy(quota=5000, window=86400.0),
                QuotaPolicy(quota=1000, window=3600.0),
                QuotaPolicy(quota=50, window=60.0),
                QuotaPolicy(quota=10, window=1.0),
            ),
        ),
    ),
    (
        "a limit no policy has: no window",
        [("RateLimit-Limit", "7"), ("RateLimit-Policy", "10;w=1")],
        draft(limit=7, policies=(QuotaPolicy(quota=10, window=1.0),)),
    ),
    (
        "policies only, a bare quota among them",
        [("RateLimit-Policy", "10, 10;w=1, 1000;w=3600")],
        draft(
            limit=1000,
            window=3600.0,
            policies=(
                QuotaPolicy(quota=1000, window=3600.0),
                QuotaPolicy(quota=10, window=1.0),
                QuotaPolicy(quota=10),
            ),
        ),
    ),
    (
        "the earliest drafts: policies within RateLimit-Limit",
        [("RateLimit-Limit", "10, 10;w=1, 50;w=60"), ("RateLimit-Remaining", "3")],
        draft(
            limit=10,
            remaining=3,
            window=1.0,
            policies=(QuotaPolicy(quota=50, window=60.0), QuotaPolicy(quota=10, window=1.0)),
        ),
    ),
    (
        "draft-07: the RateLimit dictionary",
        [("RateLimit", "limit=10, remaining=1, reset=7"), ("RateLimit-Policy", "10;w=1, 50;w=60")],
        draft(
            limit=10,
            remaining=1,
            reset=7.0,
            window=1.0,
            policies=(QuotaPolicy(quota=50, window=60.0), QuotaPolicy(quota=10, window=1.0)),
        ),
    ),
    (
        "draft-07: unknown keys and parameters ignored",
        [("RateLimit", "policy=default, Remaining=3;x=1, reset=5, other")],
        draft(remaining=3, reset=5.0),
    ),
    (
        "repeats: smallest limit and remaining, longest reset",
        [
            ("RateLimit-Limit", "100"),
            ("RateLimit-Limit", "50, 80"),
            ("RateLimit-Remaining", "40"),
            ("RateLimit-Remaining", "5"),
            ("RateLimit-Reset", "10, 60"),
            ("RateLimit-Reset", "30"),
        ],
        draft(limit=50, remaining=5, reset=60.0),
    ),
    (
        "the dictionary and the separate fields together",
        [("RateLimit", "remaining=9, reset=1"), ("RateLimit-Remaining", "4")],
        draft(remaining=4, reset=1.0),
    ),
]

X_RATELIMIT: list[tuple[str, Pairs, RateLimitState | None]] = [
    (
        "GitHub: the reset is a Unix time",
        [
            ("X-RateLimit-Limit", "5000"),
            ("X-RateLimit-Remaining", "4999"),
            ("X-RateLimit-Reset", str(int(WALL) + 100)),
        ],
        x(limit=5000, remaining=4999, reset=100.0),
    ),
    (
        "a reset in seconds",
        [("x-ratelimit-limit", "60"), ("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "7")],
        x(limit=60, remaining=0, reset=7.0),
    ),
    (
        "a reset in Unix milliseconds",
        [("X-RateLimit-Reset", str(int(WALL * 1000) + 2500))],
        x(reset=2.5),
    ),
    ("a Unix time already past", [("X-RateLimit-Reset", str(int(WALL) - 50))], x(reset=0.0)),
    (
        "repeats: smallest limit and remaining, longest reset",
        [
            ("X-RateLimit-Limit", "60, 100"),
            ("X-RateLimit-Remaining", "7"),
            ("X-RateLimit-Remaining", "3"),
            ("X-RateLimit-Reset", "5"),
            ("X-RateLimit-Reset", "9"),
        ],
        x(limit=60, remaining=3, reset=9.0),
    ),
]

PRECEDENCE: list[tuple[str, Pairs, RateLimitState | None]] = [
    (
        "the current draft over the older ones and X-RateLimit",
        [
            ("X-RateLimit-Remaining", "1"),
            ("RateLimit-Remaining", "2"),
            ("RateLimit", '"default";r=50;t=30'),
        ],
        ietf(remaining=50, reset=30.0, policy="default"),
    ),
    (
        "the older drafts over X-RateLimit",
        [("X-RateLimit-Remaining", "1"), ("RateLimit-Remaining", "2")],
        draft(remaining=2),
    ),
    (
        "a family with nothing usable gives way",
        [
            ("RateLimit", '"default";r=-1'),
            ("RateLimit-Remaining", "lots"),
            ("X-RateLimit-Remaining", "3"),
        ],
        x(remaining=3),
    ),
    (
        "a reading only on a quota of bytes gives way",
        [
            ("RateLimit-Policy", '"bytes";q=65535;qu="content-bytes";w=10'),
            ("RateLimit", '"bytes";r=0;t=10'),
            ("X-RateLimit-Remaining", "3"),
        ],
        x(remaining=3),
    ),
    (
        "older policies are not mixed into the current draft",
        [("RateLimit", '"default";r=5'), ("RateLimit-Policy", "10;w=1")],
        ietf(remaining=5, policy="default"),
    ),
]

HOSTILE: list[tuple[str, Pairs, RateLimitState | None]] = [
    ("nothing usable", [("RateLimit", "garbage"), ("X-RateLimit-Limit", "")], None),
    ("negative", [("X-RateLimit-Remaining", "-5"), ("X-RateLimit-Reset", "-1")], None),
    ("nan and inf", [("X-RateLimit-Remaining", "nan"), ("X-RateLimit-Reset", "inf")], None),
    ("signs, exponents, hex", [("X-RateLimit-Limit", "+5, 1e3, 0x10, 5s, ٣")], None),
    ("a quoted number", [("X-RateLimit-Remaining", '"5"')], None),
    (
        "decimals: counts rounded down, seconds kept",
        [("X-RateLimit-Remaining", "4.9"), ("X-RateLimit-Reset", " 1.5 ")],
        x(remaining=4, reset=1.5),
    ),
    (
        "huge numbers capped",
        [("RateLimit-Limit", "9" * 400), ("RateLimit-Reset", "99999999")],
        draft(limit=MAX_COUNT, reset=MAX_SECONDS),
    ),
    (
        "huge Unix times capped",
        [("RateLimit-Reset", "9" * 30)],
        draft(reset=MAX_SECONDS),
    ),
    (
        "a window of zero, or too small, is unknown",
        [("RateLimit-Policy", '"a";q=5;w=0, "b";q=5;w=0.0001')],
        ietf(
            limit=5,
            policy="a",
            policies=(QuotaPolicy(quota=5, name="a"), QuotaPolicy(quota=5, name="b")),
        ),
    ),
    (
        "a huge window capped",
        [("RateLimit-Policy", '"a";q=5;w=' + "9" * 50)],
        ietf(
            limit=5,
            window=MAX_SECONDS,
            policy="a",
            policies=(QuotaPolicy(quota=5, window=MAX_SECONDS, name="a"),),
        ),
    ),
    (
        "an unclosed string swallows the rest of its field only",
        [("RateLimit", '"a;r=1, "b";r=0'), ("RateLimit", '"c";r=2')],
        ietf(remaining=2, policy="c"),
    ),
    (
        "a repeated parameter: the last one",
        [("RateLimit", '"a";r=1;r=7')],
        ietf(remaining=7, policy="a"),
    ),
    ("control characters", [("RateLimit", '"a";r=\x001;t=\x7f')], None),
]


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        pytest.param(pairs, expected, id=label)
        for label, pairs, expected in [
            *CURRENT_DRAFT,
            *OLDER_DRAFTS,
            *X_RATELIMIT,
            *PRECEDENCE,
            *HOSTILE,
        ]
    ],
)
def test_examples(pairs: Pairs, expected: RateLimitState | None) -> None:
    """Each syntax, with repeats, precedence and hostile values, reads as documented."""
    assert parse_rate_limit(list(pairs), wall=WALL) == expected


@pytest.mark.parametrize(
    "headers",
    [
        [],
        (),
        {},
        [(b"Content-Type", b"application/json"), (b"Retry-After", b"5"), (b"X-Request-Id", b"1")],
        {"content-type": "application/json", "x-ratelimit-used": "3", "ratelimit-foo": "1"},
        httpx.Headers({"Content-Length": "2"}),
    ],
    ids=repr,
)
def test_none_without_rate_limit_headers(headers: object) -> None:
    """No rate-limit header (Retry-After and unknown RateLimit-* included): None."""
    assert parse_rate_limit(headers, wall=WALL) is None  # type: ignore[arg-type]


def test_the_transports_forms() -> None:
    """Bytes pairs (list or tuple), str pairs, a dict and an httpx.Headers all read the same."""
    raw = [(b"ratelimit-policy", b'"default";q=100;w=60'), (b"RATELIMIT", b'"default";r=50;t=30')]
    expected = parse_rate_limit(raw, wall=WALL)
    assert expected is not None
    assert expected.remaining == 50
    as_str = [(name.decode(), value.decode()) for name, value in raw]
    for headers in (tuple(raw), as_str, dict(as_str), httpx.Headers(raw), iter(raw)):
        assert parse_rate_limit(headers, wall=WALL) == expected
    response = httpx.Response(200, headers=raw)
    assert parse_rate_limit(response.headers.raw, wall=WALL) == expected


def test_latin1_values() -> None:
    """Bytes values are decoded as latin-1: never an error, whatever the bytes."""
    state = parse_rate_limit(
        [(b"RateLimit", b'"caf\xe9";r=1, "\xff\xfe";r=\xff'), (b"X-RateLimit-Limit", b"\x80")],
        wall=WALL,
    )
    assert state == ietf(remaining=1, policy="café")


def test_wall_only_converts_unix_times() -> None:
    """A delay does not depend on the wall clock; a Unix time does, and a nan wall voids it."""
    headers = [("X-RateLimit-Reset", "30")]
    assert parse_rate_limit(headers, wall=0.0) == parse_rate_limit(headers, wall=WALL)
    assert parse_rate_limit([("X-RateLimit-Reset", "1700000030")], wall=WALL) == x(reset=30.0)
    assert parse_rate_limit([("X-RateLimit-Reset", "1700000030")], wall=math.nan) is None


@pytest.mark.parametrize(
    ("state", "rate"),
    [
        (x(limit=10, remaining=5), None),
        (ietf(limit=100, window=60.0), 100 / 60),
        (ietf(policies=(BURST, DAILY)), 1000 / 86400),
        (ietf(limit=100, window=60.0, policies=(DAILY,)), 1000 / 86400),
        (ietf(policies=(QuotaPolicy(quota=10), QuotaPolicy(quota=5, window=1.0))), 5.0),
        (ietf(policies=(QuotaPolicy(quota=0, window=60.0),)), 0.0),
    ],
)
def test_rate(state: RateLimitState, rate: float | None) -> None:
    """rate() is the lowest rate of any policy (limit and window count as one); None without."""
    assert state.rate() == rate


def test_policy_rate() -> None:
    """A policy's rate is its quota over its window; None without a window."""
    assert QuotaPolicy(quota=100, window=60.0, name="burst").rate() == 100 / 60
    assert QuotaPolicy(quota=100).rate() is None


# -- properties ----------------------------------------------------------------------

NAMES = [
    "RateLimit",
    "RateLimit-Policy",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
]


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


numbers = st.one_of(
    st.integers(min_value=-5, max_value=10**6).map(str),
    st.integers(min_value=0, max_value=10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-0", "1e9", "1700000000", "1700000000000", "", " 7 "]),
)
policy_names = st.one_of(
    st.sampled_from(["default", "burst", "daily", "*x", "a:b"]),
    st.text(st.characters(max_codepoint=255), max_size=6).map(quoted),
)
parameters = st.builds(
    "{}={}".format,
    st.sampled_from(["q", "w", "r", "t", "qu", "pk", "Q", "acme-x"]),
    st.one_of(numbers, policy_names, st.sampled_from(["?1", ":YWJj:", '"requests"'])),
) | st.sampled_from(["r", "w", " ", ""])
heads = st.one_of(
    numbers,
    policy_names,
    st.builds("{}={}".format, st.sampled_from(["limit", "remaining", "reset", "policy"]), numbers),
)
counts = st.integers(min_value=0, max_value=1000)
members = st.one_of(
    st.builds(
        lambda head, params: ";".join([head, *params]), heads, st.lists(parameters, max_size=4)
    ),
    # Well formed, so that the property tests reach every family's reading.
    st.builds("{};r={};t={}".format, policy_names, counts, counts),
    st.builds("{};q={};w={}".format, policy_names, counts, counts),
    st.builds("{};w={}".format, counts, counts),
)
#: Values in the drafts' syntax (well formed or not, but every string closed).
structured = st.lists(members, min_size=1, max_size=4).map(", ".join)
header_names = st.one_of(
    st.sampled_from(NAMES),
    st.sampled_from(NAMES).map(str.upper),
    st.sampled_from(["Content-Type", "Retry-After", "X-RateLimit-Used"]),
    st.text(max_size=20),
)
headers = st.lists(st.tuples(header_names, st.one_of(structured, st.text(max_size=40))), max_size=8)
walls = st.one_of(st.just(WALL), st.floats(min_value=0, max_value=4e9))


def assert_sane(state: RateLimitState | None) -> None:
    """Every number finite, non-negative and within the caps; the rate too."""
    if state is None:
        return
    for count in (state.limit, state.remaining):
        assert count is None or 0 <= count <= MAX_COUNT
    for seconds in (state.reset, state.window):
        assert seconds is None or 0.0 <= seconds <= MAX_SECONDS
    assert state.window is None or state.window >= MIN_WINDOW
    for policy in state.policies:
        assert 0 <= policy.quota <= MAX_COUNT
        assert policy.window is None or MIN_WINDOW <= policy.window <= MAX_SECONDS
    rate = state.rate()
    assert rate is None or (math.isfinite(rate) and rate >= 0.0)


@EXAMPLES
@given(headers, walls)
def test_never_raises_on_text(pairs: list[tuple[str, str]], wall: float) -> None:
    """Whatever the names and values, a sane state or None, and no exception."""
    assert_sane(parse_rate_limit(pairs, wall=wall))


@EXAMPLES
@given(st.lists(st.tuples(st.sampled_from(NAMES).map(str.encode), st.binary(max_size=40))))
def test_never_raises_on_bytes(pairs: list[tuple[bytes, bytes]]) -> None:
    """Arbitrary bytes values: a sane state or None, and no exception."""
    assert_sane(parse_rate_limit(pairs, wall=WALL))


@EXAMPLES
@given(headers, st.randoms(use_true_random=False))
def test_names_are_case_insensitive(pairs: list[tuple[str, str]], random: Random) -> None:
    """Changing the case of the header names' ASCII letters changes nothing."""
    recased = [
        ("".join(c.swapcase() if c.isascii() and random.random() < 0.5 else c for c in name), value)
        for name, value in pairs
    ]
    assert parse_rate_limit(recased, wall=WALL) == parse_rate_limit(pairs, wall=WALL)


@EXAMPLES
@given(headers.flatmap(lambda pairs: st.tuples(st.just(pairs), st.permutations(pairs))))
def test_order_does_not_matter(both: tuple[list[tuple[str, str]], list[tuple[str, str]]]) -> None:
    """Headers in any order (repeats included) read the same."""
    pairs, shuffled = both
    assert parse_rate_limit(shuffled, wall=WALL) == parse_rate_limit(pairs, wall=WALL)


@EXAMPLES
@given(st.sampled_from(NAMES), st.lists(structured, min_size=1, max_size=4))
def test_repeats_read_as_joined(name: str, values: list[str]) -> None:
    """A repeated header reads as its values joined by commas (as a mapping holds them)."""
    repeated = [(name, value) for value in values]
    joined = {name: ", ".join(values)}
    assert parse_rate_limit(joined, wall=WALL) == parse_rate_limit(repeated, wall=WALL)


@EXAMPLES
@given(st.lists(st.tuples(st.sampled_from(NAMES), structured), max_size=6))
def test_bytes_and_str_read_the_same(pairs: list[tuple[str, str]]) -> None:
    """Latin-1 bytes pairs read as the same text in str."""
    raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in pairs]
    assert parse_rate_limit(raw, wall=WALL) == parse_rate_limit(pairs, wall=WALL)
