"""Property-based tests (hypothesis): whatever the input or the answer, a result or our own error.

Each example runs a real client (its own event loop, ``anyio.run``) against a
capturing transport, so the properties are about what reaches the wire, not
about a helper. ``tests/test_request.py`` covers the id check on its own and
``tests/test_response.py`` the ``Retry-After`` parser on its own.
"""

from __future__ import annotations

import email.utils
import gzip
import json
import math
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import unquote

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hiveon_async import (
    APIStatusError,
    AsyncVendorClient,
    AuthenticationError,
    BadRequestError,
    HiveonError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ResponseValidationError,
    RetryPolicy,
    ServerError,
    StopResult,
)
from hiveon_async._clock import Clock
from hiveon_async.testing import FakeVendorAPI
from hiveon_async.testing._fake import parse_deployment_id
from tests.conftest import Waits
from tests.doubles import Capture

pytestmark = pytest.mark.usefixtures("instant_retries")

T = TypeVar("T")

#: Fixed, small and derandomized: the same examples on every run, in seconds.
EXAMPLES = settings(max_examples=150, deadline=None, derandomize=True)
SOME_EXAMPLES = settings(max_examples=60, deadline=None, derandomize=True)

BASE_URL = "http://127.0.0.1"
PREFIX = "/vendors/v1/machines/deployments/"
API_KEY = "prop-api-key"
CLORE_KEY = "prop-clore-key"
MAX_RETRY_AFTER = 30.0
NOW = datetime(2026, 1, 1, tzinfo=UTC)

#: Any text, surrogates and control characters included.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
#: Text that can be sent as UTF-8.
UTF8_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run one example's coroutine in an event loop of its own."""
    return anyio.run(main)


async def stop(
    transport: httpx.AsyncBaseTransport,
    deployment_id: object,
    metadata: object = None,
    clock: Clock | None = None,
    **options: Any,
) -> StopResult | HiveonError:
    """One stop through a client of ``transport`` (and ``clock``); the result or the error."""
    settings_: dict[str, Any] = {
        "api_key": API_KEY,
        "base_url": BASE_URL,
        "metadata": {"CLORE_API_KEY": CLORE_KEY},
        "transport": transport,
        **options,
    }
    async with AsyncVendorClient(**settings_) as client:
        if clock is not None:
            client._engine.use_clock(clock)
        try:
            return await client.stop_deployment(deployment_id, metadata=metadata)  # type: ignore[arg-type]
        except HiveonError as error:
            return error


# -- deployment ids -----------------------------------------------------------------------

IDS = st.one_of(
    ANY_TEXT,
    st.from_regex(r"[A-Za-z0-9._-]{1,128}", fullmatch=True),
    st.text(alphabet="a./-_%~?#;=+ \\", max_size=8),
    st.sampled_from([".", "..", "...", "%2e", "%2F", "a%00", "x" * 128, "x" * 129]),
)


def echo_segment(prefix: str) -> Callable[[httpx.Request], httpx.Response]:
    """An answer naming the deployment the request's path names (decoded), as the vendor would."""

    def answer(request: httpx.Request) -> httpx.Response:
        named = parse_deployment_id(request.url.raw_path.decode("ascii")[len(prefix) :])
        if named is None:
            return httpx.Response(404)
        return httpx.Response(200, json={"deployment_id": named})

    return answer


@EXAMPLES
@given(deployment_id=IDS, prefix=st.sampled_from(["", "/api", "/a/b"]))
def test_any_id_is_refused_before_io_or_sent_as_one_segment(
    deployment_id: str, prefix: str
) -> None:
    """An id raises InvalidRequestError with nothing sent, or travels as exactly one segment."""
    wire = Capture(answer=echo_segment(prefix))

    outcome = run(lambda: stop(wire, deployment_id, base_url=BASE_URL + prefix))

    if isinstance(outcome, InvalidRequestError):
        assert wire.requests == []
        return
    (request,) = wire.requests
    path = request.url.raw_path.decode("ascii")
    assert path.startswith(prefix + PREFIX)
    assert path.endswith("/stop")
    segment = path[len(prefix + PREFIX) : -len("/stop")]
    assert segment
    assert "/" not in segment
    assert "?" not in path
    assert "#" not in path
    assert unquote(segment) == deployment_id
    # The vendor (as the fake reads a path) sees this id, and the client accepts its answer.
    assert isinstance(outcome, StopResult), repr(outcome)
    assert outcome.deployment_id == deployment_id


# -- metadata -----------------------------------------------------------------------------

VALID_METADATA = st.dictionaries(
    st.one_of(UTF8_TEXT, st.sampled_from(["CLORE_API_KEY", "api_key", "token", "metadata"])),
    UTF8_TEXT,
    max_size=6,
)
NOT_A_STR = st.one_of(
    st.integers(),
    st.floats(allow_nan=False),
    st.none(),
    st.booleans(),
    st.binary(max_size=5),
    st.lists(st.integers(), max_size=2),
)
SURROGATE_TEXT = st.builds(
    lambda head, surrogate, tail: head + surrogate + tail,
    UTF8_TEXT,
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    UTF8_TEXT,
)
INVALID_METADATA = st.one_of(
    # a value that is not a str
    st.builds(lambda good, key, bad: {**good, key: bad}, VALID_METADATA, UTF8_TEXT, NOT_A_STR),
    # a key that is not a str
    st.builds(
        lambda good, key: {**good, key: "v"},
        VALID_METADATA,
        st.one_of(st.integers(), st.none(), st.binary(max_size=3), st.tuples(st.integers())),
    ),
    # text that cannot be sent as UTF-8, as key or value
    st.builds(lambda good, key, bad: {**good, key: bad}, VALID_METADATA, UTF8_TEXT, SURROGATE_TEXT),
    st.builds(lambda good, bad: {**good, bad: "v"}, VALID_METADATA, SURROGATE_TEXT),
    # an empty CLORE_API_KEY
    st.builds(lambda good: {**good, "CLORE_API_KEY": ""}, VALID_METADATA),
    # not a mapping at all
    st.one_of(st.lists(st.tuples(UTF8_TEXT, UTF8_TEXT), max_size=2), UTF8_TEXT, st.integers()),
)


@EXAMPLES
@given(metadata=VALID_METADATA)
def test_valid_metadata_reaches_the_wire_unchanged(metadata: dict[str, str]) -> None:
    """The body is exactly {"metadata": default merged with the call's}; the fake reads the same."""
    fake = FakeVendorAPI(api_keys=[API_KEY])
    wire = Capture(inner=fake.transport())
    expected = {"CLORE_API_KEY": CLORE_KEY, **metadata}

    outcome = run(lambda: stop(wire, "dep-1", metadata))

    if expected["CLORE_API_KEY"] == "":
        assert isinstance(outcome, InvalidRequestError)
        assert wire.requests == []
        return
    assert isinstance(outcome, StopResult), repr(outcome)
    (body,) = wire.bodies
    assert json.loads(body) == {"metadata": expected}
    assert list(json.loads(body)["metadata"]) == list(expected)  # order kept too
    received = fake.requests[0].body
    assert received["metadata"].pop("CLORE_API_KEY") == "[redacted]"  # the fake hides it
    assert received == {"metadata": {k: v for k, v in expected.items() if k != "CLORE_API_KEY"}}


@EXAMPLES
@given(metadata=INVALID_METADATA)
def test_invalid_metadata_is_refused_before_io(metadata: object) -> None:
    """Anything but a mapping of sendable str to str (with a CLORE_API_KEY) sends nothing."""
    wire = Capture(answer=lambda request: httpx.Response(500))

    outcome = run(lambda: stop(wire, "dep-1", metadata))

    assert isinstance(outcome, InvalidRequestError), repr(outcome)
    assert wire.requests == []
    assert CLORE_KEY not in str(outcome)


@SOME_EXAMPLES
@given(metadata=INVALID_METADATA)
def test_invalid_metadata_fails_each_id_of_a_batch_without_io(metadata: object) -> None:
    """In a batch, bad metadata is each id's failed outcome: never an exception, nothing sent."""
    wire = Capture(answer=lambda request: httpx.Response(500))

    async def main() -> list[HiveonError | None]:
        async with AsyncVendorClient(
            api_key=API_KEY,
            base_url=BASE_URL,
            metadata={"CLORE_API_KEY": CLORE_KEY},
            transport=wire,
        ) as client:
            report = await client.stop_deployments(["a", "b", "c"], metadata=metadata)  # type: ignore[arg-type]
        assert [outcome.status for outcome in report] == ["failed"] * 3
        return [outcome.error for outcome in report]

    errors = run(main)

    assert all(isinstance(error, InvalidRequestError) for error in errors), errors
    assert wire.requests == []


# -- any answer ----------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | UTF8_TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(UTF8_TEXT, children, max_size=3)
    ),
    max_leaves=8,
)
SUCCESS_LIKE = st.builds(
    lambda extra, answered: {**extra, "deployment_id": answered},
    st.dictionaries(UTF8_TEXT, JSON_VALUES, max_size=3),
    st.one_of(st.just("dep-1"), JSON_VALUES),
)


@st.composite
def answers(draw: st.DrawFn) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """A status, headers and a body: often plausible, sometimes anything at all."""
    status = draw(
        st.one_of(
            st.sampled_from([200, 201, 204, 400, 401, 403, 404, 429, 500, 503]),
            st.integers(100, 599),
        )
    )
    body = draw(
        st.one_of(
            st.binary(max_size=200),
            SUCCESS_LIKE.map(lambda value: json.dumps(value).encode()),
            JSON_VALUES.map(lambda value: json.dumps(value).encode()),
            st.just(b'{"deployment_id": "dep-1"}'),
        )
    )
    headers: list[tuple[bytes, bytes]] = []
    encoding = draw(
        st.sampled_from([None, "gzip", "deflate", "identity", "br", "x-gzip", "gzip, gzip", "GZIP"])
    )
    if encoding is not None:
        if draw(st.booleans()):  # really compressed, or only said to be
            body = gzip.compress(body) if "gzip" in encoding.lower() else zlib.compress(body)
        headers.append((b"content-encoding", encoding.encode()))
    for name in (b"retry-after", b"x-request-id", b"content-type"):
        if draw(st.booleans()):
            headers.append(
                (
                    name,
                    draw(
                        st.binary(max_size=20).filter(lambda v: b"\r" not in v and b"\n" not in v)
                    ),
                )
            )
    return status, headers, body


def streamed(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> httpx.Response:
    """A response whose body arrives as a stream, as from a socket (not decoded by httpx)."""
    return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))


EXPECTED_CLASS = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitedError,
}


def decoded(headers: list[tuple[bytes, bytes]], body: bytes) -> bytes | None:
    """The body as the contract reads it, or None when it cannot be decoded."""
    encodings = [value for name, value in headers if name == b"content-encoding"]
    encoding = encodings[0].decode().strip().lower() if encodings else ""
    try:
        if encoding in ("", "identity"):
            return body
        if encoding in ("gzip", "x-gzip"):
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, EOFError, zlib.error):
        return None
    return None


def is_success_for(body: bytes | None, deployment_id: str) -> bool:
    """True when ``body`` is the documented success for ``deployment_id``."""
    if body is None:
        return False
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return isinstance(value, dict) and value.get("deployment_id") == deployment_id


@EXAMPLES
@given(answer=answers())
def test_any_answer_is_a_correct_result_or_our_own_error(
    answer: tuple[int, list[tuple[bytes, bytes]], bytes],
) -> None:
    """Whatever the status, headers and body: the right StopResult, or the right HiveonError."""
    status, headers, body = answer
    wire = Capture(answer=lambda request: streamed(status, headers, body))

    outcome = run(
        lambda: stop(
            wire, "dep-1", retry=RetryPolicy(max_attempts=2, max_retry_after=MAX_RETRY_AFTER)
        )
    )

    assert isinstance(outcome, (StopResult, HiveonError)), repr(outcome)
    if 200 <= status < 300:
        if is_success_for(decoded(headers, body), "dep-1"):
            assert isinstance(outcome, StopResult), repr(outcome)
            assert outcome.deployment_id == "dep-1"
        else:
            assert isinstance(outcome, ResponseValidationError), repr(outcome)
            assert outcome.maybe_applied
        assert len(wire.requests) == 1
        return
    assert isinstance(outcome, APIStatusError), repr(outcome)
    assert outcome.status_code == status
    cls = EXPECTED_CLASS.get(status, ServerError if status >= 500 else APIStatusError)
    assert type(outcome) is cls
    assert 1 <= len(wire.requests) <= 2
    for text in (str(outcome), outcome.body):
        assert API_KEY not in text
        assert CLORE_KEY not in text


# -- Retry-After ---------------------------------------------------------------------------

RETRY_AFTER = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"-?[0-9]{1,12}(\.[0-9]{1,12})?", fullmatch=True),
    st.from_regex(r"[0-9]{300,400}", fullmatch=True),
    st.sampled_from(["0", "0.0", "1e3", "inf", "nan", "-1", " 5 ", "1_000", "\u0663", "5,5"]),
    st.floats(min_value=0, max_value=1e6).map(repr),
    st.builds(
        lambda seconds: email.utils.format_datetime(NOW + timedelta(seconds=seconds), usegmt=True),
        st.integers(-(10**6), 10**8),
    ),
)


@settings(EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=RETRY_AFTER, status=st.sampled_from([429, 503]))
def test_any_retry_after_never_raises_and_never_waits_past_the_cap(
    waits: Waits, value: str, status: int
) -> None:
    """Any Retry-After: the retry succeeds, or (over the cap) the error; no wait over the cap."""
    waits.wall_time = NOW.timestamp()
    waits.retries.clear()
    waits.pauses.clear()
    answers = iter([(status, value), (200, None)])

    def answer(request: httpx.Request) -> httpx.Response:
        code, retry_after = next(answers)
        if code == 200:
            return httpx.Response(200, json={"deployment_id": "dep-1"})
        encoded = retry_after.encode("utf-8", "surrogatepass") if retry_after is not None else b""
        return httpx.Response(code, headers=[(b"retry-after", encoded)])

    wire = Capture(answer=answer)
    policy = RetryPolicy(max_attempts=2, max_retry_after=MAX_RETRY_AFTER)

    outcome = run(lambda: stop(wire, "dep-1", clock=waits, retry=policy))

    assert all(math.isfinite(wait) and 0 <= wait <= MAX_RETRY_AFTER for wait in waits.retries)
    assert all(math.isfinite(pause) and 0 <= pause <= MAX_RETRY_AFTER for pause in waits.pauses)
    if isinstance(outcome, StopResult):
        assert len(wire.requests) == 2
        return
    # Only a Retry-After over the cap stops the retry: the error says how long was asked.
    assert isinstance(outcome, APIStatusError), repr(outcome)
    assert outcome.status_code == status
    assert outcome.retry_after is not None
    assert outcome.retry_after > MAX_RETRY_AFTER
    assert len(wire.requests) == 1
    assert waits.retries == []
