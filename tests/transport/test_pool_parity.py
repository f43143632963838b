"""The pools behave the same: one hostile answer, one outcome, whichever pool read it.

A differential test. A raw server (``RawServer`` of ``tests/doubles.py``) sends
each answer below to a client on every pool (the lean httpcore pool, aiohttp's
on asyncio, a user's own ``httpx.AsyncClient``), and what the call ends in must
be the same on all of them: the result or the error's class, the attempts, and
``maybe_applied``, and the requests the server saw. Retries are allowed, so a
pool that refuses what another accepts would show up as extra attempts (stops
applied again) as well as another class.

Each case also names the outcome every pool must agree on. Where the pools
cannot agree, :data:`KNOWN_DIFFERENCES` says how and why; those are pinned too,
so that a change shows.

The head cap (64 KiB: status line and header fields) is the client's own, the
same on every pool: below it no pool's parser refuses a head (aiohttp's refused
one header over 8 KiB, or 128 headers, until it was given httpcore's limits);
over it the head is a protocol error everywhere.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Awaitable, Callable

import anyio
import httpx
import pytest
from anyio.abc import SocketStream

from hiveon_async import (
    APIConnectionError,
    AsyncVendorClient,
    HiveonError,
    ResponseValidationError,
    RetryPolicy,
    ServerError,
    StopResult,
)
from hiveon_async._transport._body import MAX_HEAD_BYTES
from tests.doubles import RawServer, response_head

from .test_hostile import gzip_bomb

pytestmark = [pytest.mark.anyio, pytest.mark.socket, pytest.mark.usefixtures("instant_retries")]

DEPLOYMENT = "dep-1"
SUCCESS = json.dumps({"deployment_id": DEPLOYMENT}).encode()
ATTEMPTS = 3
#: Seconds per phase of an attempt (its whole is bounded by their sum).
TIMEOUT = 1.0
POOLS = ["httpcore", "aiohttp", "http_client"]

Handler = Callable[[SocketStream], Awaitable[None]]
#: What one call came to: the result or the error's class, attempts, maybe_applied, requests.
Outcome = tuple[str, int, bool, int]


def sends(*parts: bytes) -> Handler:
    """A handler that writes ``parts`` and closes the connection."""

    async def handler(stream: SocketStream) -> None:
        await stream.send(b"".join(parts))

    return handler


def answer(
    *headers: bytes,
    status: bytes = b"HTTP/1.1 200 OK",
    body: bytes = SUCCESS,
    length: bool = True,
) -> Handler:
    """A complete answer: status line, ``headers``, Content-Length (unless not), the body."""
    lines = [status, *headers]
    if length:
        lines.append(b"Content-Length: %d" % len(body))
    lines.append(b"Connection: close")
    return sends(b"\r\n".join(lines) + b"\r\n\r\n", body)


def chunked(*headers: str, chunks: bytes) -> Handler:
    """A chunked answer (kept alive by its headers; the server closes after it anyway)."""
    return sends(response_head(200, "Transfer-Encoding: chunked", *headers), chunks)


def fields(count: int, size: int = 1) -> list[bytes]:
    """``count`` distinct header fields whose values are ``size`` bytes each."""
    return [b"X-Field-%05d: " % n + b"v" * size for n in range(count)]


def filler(total: int) -> bytes:
    """One header field that makes a success head ``total`` bytes, as the cap counts them."""
    # The status line, Content-Length and Connection fields of `answer`, as the cap counts.
    rest = len(b"HTTP/1.1 200 OK\r\n\r\n") + len(b"Content-Length: 26\r\nConnection: close\r\n")
    return b"X-Pad: " + b"p" * (total - rest - len(b"X-Pad: \r\n"))


ONE_CHUNK = b"%x\r\n" % len(SUCCESS) + SUCCESS + b"\r\n0\r\n\r\n"
BOMB = gzip_bomb()

OK = StopResult.__name__
PROTOCOL = APIConnectionError.__name__
INVALID = ResponseValidationError.__name__
#: What a call ends in, and after how many attempts.
ACCEPTED = (OK, 1)
REFUSED = (PROTOCOL, ATTEMPTS)  # a protocol error: retried
UNUSABLE = (INVALID, 1)  # a 2xx whose body is unusable: the server acted, not retried

#: name -> (what the server sends, what every pool must end in, after how many attempts)
CASES: dict[str, tuple[Handler, tuple[str, int]]] = {
    # Heads within the cap: accepted everywhere (aiohttp refused the first four).
    "one header of 10 KiB": (answer(b"X-Big: " + b"c" * 10 * 1024), ACCEPTED),
    "one header of 20 KiB": (answer(b"Set-Cookie: a=" + b"c" * 20 * 1024), ACCEPTED),
    "a reason phrase of 10 KiB": (answer(status=b"HTTP/1.1 200 " + b"r" * 10 * 1024), ACCEPTED),
    "128 headers": (answer(*fields(128)), ACCEPTED),
    "100 headers": (answer(*fields(100)), ACCEPTED),
    "200 headers": (answer(*fields(200)), ACCEPTED),
    "3,000 short headers": (answer(*fields(3000)), ACCEPTED),
    "a head one byte under the cap": (answer(filler(MAX_HEAD_BYTES)), ACCEPTED),
    # Heads over the cap: a protocol error everywhere, whatever the parser thought of it.
    "a head one byte over the cap": (answer(filler(MAX_HEAD_BYTES + 1)), REFUSED),
    "one header of 90 KiB": (answer(b"X-Big: " + b"c" * 90 * 1024), REFUSED),
    "one header of 200 KiB": (answer(b"X-Big: " + b"c" * 200 * 1024), REFUSED),
    "2,000 headers of 40 bytes": (answer(*fields(2000, 40)), REFUSED),
    # Heads no parser takes.
    "a header line without a colon": (answer(b"X-No-Colon"), REFUSED),
    "a header name with a space": (answer(b"X Bad: 1"), REFUSED),
    "a NUL in a header value": (answer(b"X-Nul: a\x00b"), REFUSED),
    "a status line of garbage": (sends(b"HTTP/1.1 abc OK\r\n\r\n"), REFUSED),
    "a status line without a version": (sends(b"200 OK\r\n\r\n"), REFUSED),
    "status 099": (answer(status=b"HTTP/1.1 099 Low"), REFUSED),
    "status 1000": (answer(status=b"HTTP/1.1 1000 High"), REFUSED),
    "status 101 unasked": (sends(b"HTTP/1.1 101 Switching\r\nUpgrade: x\r\n\r\n"), REFUSED),
    "status 102 and nothing after": (sends(b"HTTP/1.1 102 Processing\r\n\r\n"), REFUSED),
    "no answer at all": (sends(b""), REFUSED),
    # Heads every parser takes.
    "status 100, then the answer": (
        sends(b"HTTP/1.1 100 Continue\r\n\r\n", response_head(200, "Content-Length: 26"), SUCCESS),
        ACCEPTED,
    ),
    "status 103, then the answer": (
        sends(b"HTTP/1.1 103 Early\r\nLink: </a>\r\n\r\n", response_head(200), SUCCESS),
        ACCEPTED,
    ),
    "status 999": (answer(status=b"HTTP/1.1 999 Odd"), (ServerError.__name__, 1)),
    "a 503 whose reason is not UTF-8": (
        answer(status=b"HTTP/1.1 503 \xff\xfe"),
        (ServerError.__name__, ATTEMPTS),
    ),
    "an obsolete folded header": (answer(b"X-Fold: a", b" b"), ACCEPTED),
    "HTTP/1.0, the body until close": (sends(b"HTTP/1.0 200 OK\r\n\r\n", SUCCESS), ACCEPTED),
    "HTTP/1.1, the body until close": (sends(b"HTTP/1.1 200 OK\r\n\r\n", SUCCESS), ACCEPTED),
    # Framing.
    "two different Content-Lengths": (answer(b"Content-Length: 3"), REFUSED),
    "a negative Content-Length": (answer(b"Content-Length: -1", length=False), REFUSED),
    "a Content-Length that is not a number": (
        answer(b"Content-Length: twelve", length=False),
        REFUSED,
    ),
    "a body shorter than its Content-Length": (
        sends(response_head(200, "Content-Length: 100"), SUCCESS),
        REFUSED,
    ),
    "Content-Length and chunked": (answer(b"Transfer-Encoding: chunked"), REFUSED),
    "chunked garbage": (chunked(chunks=b"zz\r\nnot a chunk\r\n0\r\n\r\n"), REFUSED),
    "a chunk size of twenty hex digits": (chunked(chunks=b"f" * 20 + b"\r\n" + SUCCESS), REFUSED),
    "chunked, then the connection closed mid-chunk": (
        chunked(chunks=b"100\r\n" + SUCCESS),
        REFUSED,
    ),
    "a chunk extension": (
        chunked(chunks=b"1a;name=value\r\n" + SUCCESS + b"\r\n0\r\n\r\n"),
        ACCEPTED,
    ),
    "a trailer of 10 KiB": (
        chunked(chunks=ONE_CHUNK[:-2] + b"X-Trailer: " + b"t" * 10 * 1024 + b"\r\n\r\n"),
        ACCEPTED,
    ),
    "Transfer-Encoding: Chunked": (chunked(chunks=ONE_CHUNK), ACCEPTED),
    "Transfer-Encoding: gzip, chunked": (
        sends(response_head(200, "Transfer-Encoding: gzip, chunked"), ONE_CHUNK),
        REFUSED,
    ),
    "Transfer-Encoding: identity": (
        sends(response_head(200, "Transfer-Encoding: identity", "Connection: close"), SUCCESS),
        REFUSED,
    ),
    "two Transfer-Encoding fields": (
        chunked("Transfer-Encoding: chunked", chunks=ONE_CHUNK),
        REFUSED,
    ),
    # Bodies.
    "a body over the 64 KiB cap": (answer(body=b"x" * (64 * 1024 + 1)), UNUSABLE),
    "a gzip bomb": (answer(b"Content-Encoding: gzip", body=BOMB), UNUSABLE),
    "a gzipped success": (answer(b"Content-Encoding: gzip", body=gzip.compress(SUCCESS)), ACCEPTED),
    "a body that is not JSON": (answer(body=b"<html>"), UNUSABLE),
}

#: name -> (what the server sends, why aiohttp's outcome differs, httpcore's outcome).
#: aiohttp's is a protocol error, retried: its parser refuses the whole answer.
KNOWN_DIFFERENCES: dict[str, tuple[Handler, str, str]] = {
    "the same Content-Length twice": (
        answer(b"Content-Length: %d" % len(SUCCESS)),
        "h11 merges identical Content-Length fields; aiohttp's parser refuses any repeat",
        OK,
    ),
    "a body longer than its Content-Length": (
        sends(response_head(200, "Content-Length: 10", "Connection: close"), SUCCESS),
        "h11 reads what the length says and leaves the rest unread; aiohttp's parser "
        "refuses the answer when bytes past its end arrive with it",
        INVALID,
    ),
    "a 204 with a body": (
        sends(response_head(204, f"Content-Length: {len(SUCCESS)}", "Connection: close"), SUCCESS),
        "the same: a 204 ends with its head, and the body's bytes come after its end",
        INVALID,
    ),
    "garbage after a complete answer": (
        sends(response_head(200, f"Content-Length: {len(SUCCESS)}"), SUCCESS, b"GARBAGE\r\n\r\n"),
        "the same, on a connection kept alive: h11 would read the garbage as the next answer",
        OK,
    ),
}


@pytest.fixture
def pools(anyio_backend: str) -> list[str]:
    """Every pool that runs on this backend (aiohttp's runs on asyncio only)."""
    return POOLS if anyio_backend == "asyncio" else [p for p in POOLS if p != "aiohttp"]


async def outcome_on(pool: str, handler: Handler) -> Outcome:
    """Stop one deployment through ``pool`` against a raw server running ``handler``."""
    server = RawServer(handler)
    async with server.serve() as base_url:
        own = httpx.AsyncClient() if pool == "http_client" else None
        client = AsyncVendorClient(
            api_key="key-123456",
            base_url=base_url,
            metadata={"CLORE_API_KEY": "clore-123456"},
            timeout=TIMEOUT,
            retry=RetryPolicy(max_attempts=ATTEMPTS),
            speedups=pool == "aiohttp",
            http_client=own,
        )
        try:
            with anyio.fail_after(15):
                result = await client.stop_deployment(DEPLOYMENT)
        except HiveonError as error:
            kind, attempts, applied = type(error).__name__, error.attempts, error.maybe_applied
        else:
            assert result.deployment_id == DEPLOYMENT
            kind, attempts, applied = OK, len(server.requests), False
        finally:
            await client.aclose()
            if own is not None:
                await own.aclose()
        assert client._engine.pool == pool
    return kind, attempts, applied, len(server.requests)


@pytest.mark.parametrize("case", CASES)
async def test_every_pool_ends_a_hostile_answer_the_same_way(pools: list[str], case: str) -> None:
    """The same class, attempts, maybe_applied and requests on every pool, and the one expected."""
    handler, expected = CASES[case]

    outcomes = {pool: await outcome_on(pool, handler) for pool in pools}

    assert len(set(outcomes.values())) == 1, outcomes
    kind, attempts, _, requests = outcomes["httpcore"]
    assert (kind, attempts) == expected
    assert requests == attempts


@pytest.mark.parametrize("case", KNOWN_DIFFERENCES)
async def test_the_known_differences_stay_as_documented(
    anyio_backend: str, pools: list[str], case: str
) -> None:
    """The lean pool and the user's client agree; aiohttp's parser refuses, for the reason given."""
    handler, _reason, expected = KNOWN_DIFFERENCES[case]

    outcomes = {pool: await outcome_on(pool, handler) for pool in pools}

    assert outcomes["httpcore"] == outcomes["http_client"]
    assert outcomes["httpcore"][0] == expected
    if anyio_backend == "asyncio":
        assert outcomes["aiohttp"] == (PROTOCOL, ATTEMPTS, True, ATTEMPTS)
