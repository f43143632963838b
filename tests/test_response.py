"""Reading a response: Retry-After, the size cap, status to error, body to StopResult."""

from __future__ import annotations

import gzip
import itertools
import math
import zlib
from collections.abc import Callable, Iterable

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

from hiveon_async import (
    APIStatusError,
    AsyncVendorClient,
    BadRequestError,
    HiveonError,
    NotFoundError,
    ResponseValidationError,
    ServerError,
)
from hiveon_async._config import MAX_ERROR_BODY_CHARS, MAX_RESPONSE_BYTES
from hiveon_async._response import parse_retry_after
from tests.conftest import stop_error

NOW = 1_000_000_000.0  # Sun, 09 Sep 2001 01:46:40 GMT

#: Cutting a body off leaves httpx's inner stream generators (in httpx._client and
#: httpx._content) to the garbage collector, which trio reports and then closes them;
#: that is httpx's shape, which we cannot reach. Any other generator left open still fails.
cuts_off_the_body = pytest.mark.filterwarnings(
    r"ignore:Async generator 'httpx\._(client|content)\.\w+\.__aiter__' was garbage:ResourceWarning"
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        (" 7 ", 7.0),
        ("Sun, 09 Sep 2001 01:47:40 GMT", 60.0),
        ("Sun, 09 Sep 2001 01:47:40", 60.0),
        ("Sun, 09 Sep 2001 02:47:40 +0100", 60.0),
        ("Sun, 09 Sep 2001 01:46:40 GMT", None),
        ("Sun, 09 Sep 2001 01:45:40 GMT", None),
        ("Wed, 21 Oct 1998 07:28:00 GMT", None),
        ("Sun, 09 Sep 99999 01:47:40 GMT", None),
        ("soon", None),
        ("-1", None),
        ("+5", None),
        ("1.", None),
        (".5", None),
        ("1e3", None),
        ("inf", None),
        ("nan", None),
        ("1e999", None),
        ("9" * 400, None),
        ("\u0663", None),
        ("", None),
        ("   ", None),
        (None, None),
    ],
    ids=lambda value: repr(value)[:20],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Delay-seconds or a future HTTP-date give seconds; anything unusable gives None."""
    assert parse_retry_after(value, now=lambda: NOW) == expected


@given(st.text() | st.from_regex(r"[0-9]{1,400}(\.[0-9]{1,400})?", fullmatch=True))
def test_parse_retry_after_never_raises(value: str) -> None:
    """Any header value gives a finite delay >= 0 or None: never an exception, never inf."""
    delay = parse_retry_after(value, now=lambda: NOW)

    assert delay is None or (math.isfinite(delay) and delay >= 0)


class Body:
    """A streamed response body that counts the chunks the client pulled from it."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self.pulled = 0

    def __aiter__(self) -> Body:
        return self  # an iterator, not a generator: nothing is left for the collector to close

    async def __anext__(self) -> bytes:
        chunk = next(self._chunks, None)
        if chunk is None:
            raise StopAsyncIteration
        self.pulled += 1
        return chunk


def answer(route: respx.Route, status: int, body: Body, **headers: str) -> None:
    """Make ``route`` answer with ``body`` streamed (not pre-read, as over a socket)."""
    route.mock(side_effect=lambda request: httpx.Response(status, headers=headers, content=body))


@pytest.mark.anyio
@pytest.mark.parametrize(
    "content",
    [
        b"stopped",
        b"\xff\xfe{}",
        b"",
        b'["deployment_id"]',
        b"null",
        b"{}",
        b'{"deployment_id": 5}',
        b'{"deployment_id": null}',
        b'{"deployment_id": "another-one"}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"n": 1' + b"0" * 5000 + b"}",
    ],
    ids=lambda content: repr(content)[:30],
)
async def test_malformed_success_is_a_validation_error_and_not_retried(
    client: AsyncVendorClient, stop_route: respx.Route, deployment_id: str, content: bytes
) -> None:
    """A 2xx that is not JSON, not an object, or lacks our string id: one request, no retry."""
    stop_route.respond(200, content=content)

    error = await stop_error(client, deployment_id, ResponseValidationError)

    assert stop_route.call_count == error.attempts == 1
    assert error.response is not None
    assert error.response.status_code == 200


@pytest.mark.anyio
async def test_success_body_over_the_cap_by_content_length_is_not_read(
    client: AsyncVendorClient, stop_route: respx.Route, deployment_id: str
) -> None:
    """A declared Content-Length over 64 KiB is refused before a byte is read."""
    body = Body(itertools.repeat(b"x" * 1024))
    answer(stop_route, 200, body, **{"Content-Length": str(MAX_RESPONSE_BYTES + 1)})

    error = await stop_error(client, deployment_id, ResponseValidationError)

    assert "64 KiB" in str(error)
    assert body.pulled == 0


@cuts_off_the_body
@pytest.mark.anyio
async def test_success_body_over_the_cap_while_streaming_is_cut_off(
    client: AsyncVendorClient, stop_route: respx.Route, deployment_id: str
) -> None:
    """An endless chunked body is cut off just past 64 KiB, never read whole."""
    body = Body(itertools.repeat(b"x" * 1024))
    answer(stop_route, 200, body)

    error = await stop_error(client, deployment_id, ResponseValidationError)

    assert "64 KiB" in str(error)
    assert body.pulled == MAX_RESPONSE_BYTES // 1024 + 1


@cuts_off_the_body
@pytest.mark.anyio
@pytest.mark.parametrize(("status", "error"), [(400, BadRequestError), (503, ServerError)])
async def test_error_status_with_an_endless_body_is_still_that_error(
    client: AsyncVendorClient,
    stop_route: respx.Route,
    deployment_id: str,
    status: int,
    error: type[APIStatusError],
) -> None:
    """An error status whose body never ends is that status's error, with 2 KiB of the body."""
    answer(stop_route, status, Body(itertools.repeat(b"e" * 1024)))

    raised = await stop_error(client, deployment_id, error)

    assert raised.body == "e" * MAX_ERROR_BODY_CHARS
    assert raised.maybe_applied is (status >= 500)


@pytest.mark.anyio
async def test_success_body_over_the_cap_handed_over_read_is_refused(
    client: AsyncVendorClient, stop_route: respx.Route, deployment_id: str
) -> None:
    """A transport that hands over an already-read body without Content-Length is capped too."""
    stop_route.respond(200, stream=httpx.ByteStream(b"x" * (MAX_RESPONSE_BYTES + 1)))

    error = await stop_error(client, deployment_id, ResponseValidationError)

    assert "64 KiB" in str(error)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("identity", bytes)],
)
async def test_encoded_success_is_decoded(
    client: AsyncVendorClient,
    stop_route: respx.Route,
    deployment_id: str,
    encoding: str,
    compress: Callable[[bytes], bytes],
) -> None:
    """A gzip, deflate or identity success body is decoded and accepted."""
    packed = compress(f'{{"deployment_id": "{deployment_id}"}}'.encode())
    answer(stop_route, 200, Body([packed[:10], packed[10:]]), **{"Content-Encoding": encoding})

    result = await client.stop_deployment(deployment_id)

    assert result.deployment_id == deployment_id


@cuts_off_the_body
@pytest.mark.anyio
@pytest.mark.parametrize(
    ("encoding", "content", "reason"),
    [
        ("gzip", gzip.compress(b"0" * (4 * MAX_RESPONSE_BYTES)), "over the 64 KiB cap"),
        ("gzip", gzip.compress(b"{}")[:10] + b"\xff" * 16, "cannot be decoded"),
        ("gzip", gzip.compress(b"{}")[:-8], "cannot be decoded"),
        ("br", b"\x0b\x02\x80{}\x03", "cannot be decoded"),
    ],
)
async def test_compressed_bodies_are_capped_and_checked(
    client: AsyncVendorClient,
    stop_route: respx.Route,
    deployment_id: str,
    encoding: str,
    content: bytes,
    reason: str,
) -> None:
    """A gzip bomb is cut off after 64 KiB decoded; corrupt, truncated or unknown encodings fail."""
    answer(stop_route, 200, Body([content]), **{"Content-Encoding": encoding})

    error = await stop_error(client, deployment_id, ResponseValidationError)

    assert reason in str(error)


@pytest.mark.anyio
async def test_long_error_body_is_truncated(
    client: AsyncVendorClient, stop_route: respx.Route, deployment_id: str
) -> None:
    """An error keeps at most 2 KiB of the body, and its message a short snippet."""
    stop_route.respond(400, text="y" * 10_000)

    raised = await stop_error(client, deployment_id, BadRequestError)

    assert raised.body == "y" * MAX_ERROR_BODY_CHARS
    assert raised.response.text == raised.body
    assert len(str(raised)) < 400


@pytest.mark.anyio
async def test_error_body_that_is_not_json_is_kept_as_text(
    client: AsyncVendorClient, stop_route: respx.Route, deployment_id: str
) -> None:
    """An HTML error page is no problem: the error keeps its text."""
    stop_route.respond(404, html="<html><h1>Not Found</h1></html>")

    raised = await stop_error(client, deployment_id, NotFoundError)

    assert raised.body == "<html><h1>Not Found</h1></html>"
    assert "Not Found</h1>" in str(raised)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "content", "error"),
    [
        (404, b"", NotFoundError),
        (400, b"{}", BadRequestError),
        (200, b"[]", ResponseValidationError),
    ],
)
async def test_request_id_is_exposed(
    client: AsyncVendorClient,
    stop_route: respx.Route,
    deployment_id: str,
    status: int,
    content: bytes,
    error: type[HiveonError],
) -> None:
    """The server's X-Request-Id is on the error and in its message."""
    stop_route.respond(status, content=content, headers={"X-Request-Id": "req-42"})

    raised = await stop_error(client, deployment_id, error)

    assert getattr(raised, "request_id", None) == "req-42"
    assert "req-42" in str(raised)


@pytest.mark.anyio
async def test_no_request_id_is_none(
    client: AsyncVendorClient, stop_route: respx.Route, deployment_id: str
) -> None:
    """Without X-Request-Id, request_id is None."""
    stop_route.respond(403)

    raised = await stop_error(client, deployment_id, APIStatusError)

    assert raised.request_id is None


@pytest.mark.anyio
async def test_secret_cut_at_the_kept_length_is_still_redacted(
    client: AsyncVendorClient,
    stop_route: respx.Route,
    deployment_id: str,
    clore_key: str,
) -> None:
    """A key echoed across the truncation point leaves no fragment on the error."""
    # 4-byte characters: cutting by bytes before redacting would split the key.
    padding = "\N{GRINNING FACE}" * (MAX_ERROR_BODY_CHARS - 6)
    stop_route.respond(500, text=padding + clore_key)

    raised = await stop_error(client, deployment_id, ServerError)

    assert clore_key[:6] not in raised.body
