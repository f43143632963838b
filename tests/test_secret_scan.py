"""Random credentials, every path, every pool: neither key shows anywhere a person could look.

``tests/test_client_secrets.py`` scans single calls against a mock with fixed
hex keys. Here the keys are random (punctuation, quotes, backslashes, non-ASCII
in the Clore key), the server is real (a socket, through each pool), it echoes
both keys back everywhere it can (body, reason phrase, headers, Location,
a malformed header line), and the batch and the stream are scanned too: reprs,
messages, attributes, kept requests and responses, formatted tracebacks with
their chained causes, and every log record at DEBUG.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import secrets
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest
from anyio.abc import SocketStream
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hiveon_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncVendorClient,
    BatchFailedError,
    HiveonError,
    InvalidRequestError,
    ResponseValidationError,
    RetryPolicy,
    StopResult,
)
from hiveon_async.testing import FakeVendorAPI
from tests._secrets import assert_no_secret, exception_texts, log_texts
from tests.doubles import RawServer, response_head

pytestmark = [pytest.mark.anyio, pytest.mark.socket, pytest.mark.usefixtures("instant_retries")]

#: Characters a vendor API key may hold (printable ASCII) that escaping likes to mangle.
KEY_SPECIALS = "\"'\\%&+/=?#;<>@!$*()[]{}|^`~,:"
#: And for the Clore key, which is JSON text: also non-ASCII and control characters.
CLORE_SPECIALS = KEY_SPECIALS + "é鍵🔑\t\n\u2028"
TIMEOUT = 0.3


def random_secret(specials: str) -> str:
    """A fresh random secret: a URL-safe token with special characters mixed in.

    Always a quote, an apostrophe and a backslash among them: escaping (JSON, a
    ``repr``) spells those differently, and a leak must not hide behind that.
    """
    token = list(secrets.token_urlsafe(18))
    for special in ['"', "'", "\\", *(secrets.choice(specials) for _ in range(3))]:
        token.insert(secrets.randbelow(len(token) + 1), special)
    return "".join(token)


@pytest.fixture
def keys() -> tuple[str, str]:
    """A random vendor API key and a random CLORE_API_KEY, new for every test."""
    return random_secret(KEY_SPECIALS), random_secret(CLORE_SPECIALS)


def request_api_key(request: bytes) -> bytes:
    """The X-API-Key value of a raw request, as it came over the wire."""
    for line in request.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"x-api-key":
            return value.strip()
    return b""


class Echo:
    """A raw server's answers that echo the request, both keys included, wherever they fit.

    The id in the path picks the answer: ``ok-*`` succeeds, ``s<status>-*`` answers that
    status, ``stall-*`` never answers, ``drop-*`` closes, ``bad-*`` sends a header
    line that is not one, ``redirect-*`` redirects to a Location holding the key.
    """

    def __init__(self) -> None:
        self.server = RawServer(self.answer)

    async def answer(self, stream: SocketStream) -> None:
        request = self.server.requests[-1]
        target = request.split(b" ", 2)[1].decode()
        deployment = target.rsplit("/", 2)[-2]
        key = request_api_key(request)
        echoed = (b"you sent: " + request).replace(b"\r", b" ")
        echo_headers = [
            b"X-Request-Id: " + key,
            b"X-Echo: " + key,
            b"Set-Cookie: k=" + key,
            b"Connection: close",  # one request per connection here
        ]
        kind, _, _ = deployment.partition("-")
        if kind == "ok":
            body = b'{"deployment_id": "%s"}' % deployment.encode()
            await stream.send(
                response_head(200, *echo_headers, b"Content-Length: %d" % len(body)) + body
            )
        elif kind.startswith("s") and kind[1:].isdigit():
            head = b"HTTP/1.1 %d %s" % (int(kind[1:]), key)
            await stream.send(
                response_head(
                    head, *echo_headers, b"Retry-After: 0", b"Content-Length: %d" % len(echoed)
                )
                + echoed
            )
        elif kind == "redirect":
            location = b"Location: https://elsewhere.invalid/steal?key=" + key
            await stream.send(response_head(307, location, *echo_headers, b"Content-Length: 0"))
        elif kind == "bad":
            await stream.send(b"HTTP/1.1 200 OK\r\nthis is " + key + b" not a header\r\n\r\n")
        elif kind == "stall":
            await anyio.sleep(30)
        # drop-*: close without a word


@asynccontextmanager
async def echo_client(
    pool: str, keys: tuple[str, str], **options: Any
) -> AsyncIterator[AsyncVendorClient]:
    """A client through ``pool`` to an echoing raw server."""
    api_key, clore_key = keys
    echo = Echo()
    async with echo.server.serve() as base_url:
        client = AsyncVendorClient(
            api_key=api_key,
            base_url=base_url,
            metadata={"CLORE_API_KEY": clore_key, "note": "x"},
            timeout=TIMEOUT,
            retry=RetryPolicy(max_attempts=2),
            speedups=pool == "aiohttp",
            **options,
        )
        async with client:
            yield client


def logged(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    """The log records to scan: all of them, httpx's, httpcore's and aiohttp's included.

    The echo server puts the key in the reason phrase and in response headers
    (and in a malformed header line); httpx's INFO request line and httpcore's
    DEBUG trace of the response head quote them. The client's log filters
    redact them while it is alive.
    """
    return list(records)


def scan(texts: list[str], keys: tuple[str, str], where: str) -> None:
    for number, text in enumerate(texts):
        assert_no_secret(text, keys, where=f"{where} [{number}]")


def scan_outcome(outcome: object, keys: tuple[str, str], where: str) -> None:
    """Scan a result, an outcome or an error, with everything it carries."""
    texts = [str(outcome), repr(outcome)]
    error = getattr(outcome, "error", outcome)
    if isinstance(error, BaseException):
        texts.extend(exception_texts(error))
    scan(texts, keys, where)


#: The id to stop -> the outcome expected (a result type, or an error type).
SINGLE: dict[str, type[StopResult] | type[HiveonError]] = {
    "ok-1": StopResult,
    "s503-retry": APIStatusError,  # retried, then the same again: the last error
    "s400-bad": APIStatusError,
    "s401-auth": APIStatusError,
    "s404-gone": APIStatusError,
    "s500-down": APIStatusError,
    "s200-echo": ResponseValidationError,  # a 2xx whose body is the echo
    "redirect-1": APIStatusError,
    "stall-1": APITimeoutError,
    "drop-1": APIConnectionError,
    "bad-header": APIConnectionError,
    "../escape": InvalidRequestError,
}


@pytest.mark.parametrize("deployment_id", SINGLE)
async def test_single_calls_show_no_secret(
    pool: str, keys: tuple[str, str], caplog: pytest.LogCaptureFixture, deployment_id: str
) -> None:
    """Success, retry, failure, timeout, redirect, protocol error and validation paths, per pool."""
    caplog.set_level(logging.DEBUG)
    async with echo_client(pool, keys) as client:
        with anyio.fail_after(20):
            try:
                outcome: StopResult | HiveonError = await client.stop_deployment(deployment_id)
            except HiveonError as error:
                outcome = error
        scan([repr(client), str(client)], keys, "the client")

    assert isinstance(outcome, SINGLE[deployment_id]), repr(outcome)
    scan_outcome(outcome, keys, "the outcome")
    scan(log_texts(logged(caplog.records)), keys, "the log")


async def test_a_batch_and_a_stream_show_no_secret(
    pool: str, keys: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Every outcome, the report, raise_for_failures() and a stream's outcomes, per pool."""
    caplog.set_level(logging.DEBUG)
    ids = [
        *(f"ok-{n}" for n in range(6)),
        "s503-a",
        "s500-b",
        "s400-c",
        "s404-d",
        "s200-e",
        "redirect-f",
        "drop-g",
        "bad-h",
        "stall-i",
        "no/way",
        "ok-1",  # a duplicate
    ]
    async with echo_client(pool, keys, max_concurrency=4) as client:
        with anyio.fail_after(30):
            report = await client.stop_deployments(ids, concurrency=4)
            streamed = []
            async with client.stream_stop_deployments(ids[:8], concurrency=2) as outcomes:
                async for outcome in outcomes:
                    streamed.append(outcome)
            # A 401 aborts a batch: the rest are skipped, with the 401 as their reason.
            aborted = await client.stop_deployments(["s401-x", "ok-a", "ok-b"], concurrency=1)
            # A deadline cuts the stalled one short and skips what was not sent.
            cut = await client.stop_deployments(
                ["stall-z", "ok-c", "ok-d"], concurrency=1, deadline=0.2
            )

    assert report.stopped
    assert report.failed
    assert aborted.skipped
    assert any(outcome.status == "skipped" for outcome in cut)
    for batch in (report, aborted, cut):
        scan([repr(batch), str(batch)], keys, "a report")
        for outcome in batch:
            scan_outcome(outcome, keys, f"outcome {outcome.deployment_id}")
        with pytest.raises(BatchFailedError) as caught:
            batch.raise_for_failures()
        scan(exception_texts(caught.value), keys, "BatchFailedError")
    for outcome in streamed:
        scan_outcome(outcome, keys, f"streamed {outcome.deployment_id}")
    scan(log_texts(logged(caplog.records)), keys, "the log")


async def test_refused_credentials_are_never_quoted(keys: tuple[str, str]) -> None:
    """Malformed keys and metadata holding them: refused before I/O without showing them."""
    api_key, clore_key = keys
    failures: list[HiveonError] = []
    for bad_key in (api_key + " tail", api_key + "\n", "é" + api_key):
        with pytest.raises(InvalidRequestError) as caught:
            AsyncVendorClient(api_key=bad_key, metadata={"CLORE_API_KEY": clore_key})
        failures.append(caught.value)
    fake = FakeVendorAPI(api_keys=[api_key])
    async with fake.client(api_key=api_key, metadata={"CLORE_API_KEY": clore_key}) as client:
        for metadata in (
            {"CLORE_API_KEY": clore_key + "\ud800"},  # cannot be sent as UTF-8
            {"CLORE_API_KEY": clore_key, "n": 5},  # a value that is not a str
            {"CLORE_API_KEY": clore_key, 5: clore_key},  # a key that is not a str
            {"CLORE_API_KEY": ""},
        ):
            with pytest.raises(InvalidRequestError) as refused:
                await client.stop_deployment("dep-1", metadata=metadata)  # type: ignore[arg-type]
            failures.append(refused.value)
    assert fake.request_count == 0
    for error in failures:
        scan(exception_texts(error), keys, repr(type(error)))


#: Random credentials (within what each accepts), for the in-process path.
API_KEYS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=12, max_size=40)
CLORE_KEYS = st.text(
    st.characters(codec="utf-8"),
    min_size=12,
    max_size=40,  # utf-8: no lone surrogates
)


def distinctive(value: str) -> bool:
    """Varied enough that a 6-character piece of it will not turn up by chance in other text."""
    return len(set(value)) >= 8 and value.strip() == value


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
@given(api_key=API_KEYS.filter(distinctive), clore_key=CLORE_KEYS.filter(distinctive))
def test_generated_keys_never_show_on_any_path(
    anyio_backend: str, caplog: pytest.LogCaptureFixture, api_key: str, clore_key: str
) -> None:
    """Hypothesis-made keys, every kind of failure the fake can inject, a batch: no key shows."""
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    keys = (api_key, clore_key)
    scripts: dict[str, list[Any]] = {
        "retry": [503, "reset", 200],
        "down": [500, 500],
        "gone": [404],
        "echo": ["garbage"],
        "other": ["mismatch"],
        "away": ["redirect"],
        "lost": ["drop", "drop"],
    }

    async def main() -> list[object]:
        fake = FakeVendorAPI(api_keys=[api_key], clore_api_key=clore_key)
        for deployment_id, script in scripts.items():
            fake.script(deployment_id, script)
        outcomes: list[object] = []
        async with fake.client(retry=RetryPolicy(max_attempts=2), timeout=TIMEOUT) as client:
            outcomes.append(client)
            report = await client.stop_deployments([*scripts, "fine", "bad id"])
            outcomes.extend([report, *report])
            try:
                report.raise_for_failures()
            except BatchFailedError as error:
                outcomes.append(error)
        return outcomes

    for outcome in anyio.run(main, backend=anyio_backend):
        scan_outcome(outcome, keys, repr(type(outcome)))
    scan(log_texts(caplog.records), keys, "the log")


async def test_httpcore_traces_echoed_response_headers(
    keys: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """The lean pool's httpcore DEBUG trace of a head that echoes the key is redacted.

    It was a strict xfail: httpcore's own records quoted what the server sent.
    The client's filter on httpcore's loggers now redacts its secrets.
    """
    caplog.set_level(logging.DEBUG, logger="httpcore")
    async with echo_client("httpcore", keys) as client:
        await client.stop_deployment("ok-1")

    scan(log_texts(caplog.records), keys, "httpcore's log")


def test_the_scan_itself_finds_pieces_and_escaped_spellings() -> None:
    """The helper fails on the key, a 6-character piece of it, and its escaped spellings."""
    key = 'ab"cd\\ef/gh'
    escaped = [json.dumps(key), repr(key), repr(key.encode()), quote(key, safe="")]
    for text in (f"x{key}y", '.."cd\\ef/g..', *escaped):
        with pytest.raises(AssertionError, match="secret #0"):
            assert_no_secret(text, [key])
    assert_no_secret('ab"cd ... [redacted] ... gh', [key])  # 5-character pieces are noise
    assert_no_secret("", ["", key])


@pytest.mark.parametrize("deployment_id", ["s400-echo", "ok-1", "bad-header"])
async def test_the_sending_libraries_logs_show_no_secret_with_a_users_client(
    keys: tuple[str, str], caplog: pytest.LogCaptureFixture, deployment_id: str
) -> None:
    """With a user's http_client, httpx's INFO request line quotes the echoed reason: redacted."""
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient() as own, echo_client("httpcore", keys, http_client=own) as client:
        with contextlib.suppress(HiveonError):
            await client.stop_deployment(deployment_id)

    if deployment_id != "bad-header":  # no response, so no request line
        assert any(record.name == "httpx" for record in caplog.records)
    scan(log_texts(caplog.records), keys, "the log")


async def test_the_filters_hide_a_clients_secrets_only_while_it_lives(
    keys: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """A record quoting a key is redacted while the client lives, and left alone after."""
    api_key, clore_key = keys
    caplog.set_level(logging.DEBUG)
    client = AsyncVendorClient(api_key=api_key, metadata={"CLORE_API_KEY": clore_key})
    for name in ("httpx", "httpcore.http11", "aiohttp.client"):
        logging.getLogger(name).debug("echo %s and %s", api_key, clore_key)
    scan(log_texts(caplog.records), keys, "the log")

    del client
    gc.collect()
    caplog.clear()
    logging.getLogger("httpx").debug("after: %s", "plain-text")
    assert caplog.records[-1].getMessage() == "after: plain-text"


def traceback_with_locals(error: BaseException) -> str:
    """The error as a traceback that captures every frame's locals prints it (Sentry, pytest -l)."""
    return "".join(
        traceback.TracebackException(
            type(error), error, error.__traceback__, capture_locals=True
        ).format()
    )


async def stop_and_catch(
    client: AsyncVendorClient, deployment_id: str, given: list[dict[str, str] | None]
) -> BaseException | None:
    """Stop one id; return the error raised.

    The per-call metadata comes in a list emptied on use, so that this frame,
    the caller's (the traceback's first), holds no credential of its own.
    """
    try:
        await client.stop_deployment(deployment_id, metadata=given.pop())
    except HiveonError as error:
        return error
    return None


@pytest.mark.parametrize("per_call", [False, True], ids=["default-metadata", "per-call-metadata"])
@pytest.mark.parametrize(
    "deployment_id", [key for key, kind in SINGLE.items() if kind != StopResult]
)
async def test_tracebacks_that_capture_locals_show_no_secret(
    pool: str, keys: tuple[str, str], deployment_id: str, per_call: bool
) -> None:
    """Every failure path, per pool: the traceback with every frame's locals shows neither key."""
    metadata = {"CLORE_API_KEY": keys[1], "note": "x"} if per_call else None
    async with echo_client(pool, keys) as client:
        with anyio.fail_after(20):
            error = await stop_and_catch(client, deployment_id, [metadata])
        assert error is not None
        text = traceback_with_locals(error)
        del metadata, client
    scan([text], keys, "the traceback with locals")


async def test_refusals_before_io_show_no_secret_in_captured_locals(keys: tuple[str, str]) -> None:
    """A bad key at construction, bad metadata at the call: no key among the frames' locals."""
    api_key, clore_key = keys
    errors: list[BaseException] = []

    def construct(given: list[str]) -> None:
        try:
            AsyncVendorClient(api_key=given.pop(), metadata={"CLORE_API_KEY": "x" * 8})
        except InvalidRequestError as error:
            errors.append(error)

    construct([api_key + " tail"])
    fake = FakeVendorAPI(api_keys=[api_key])
    async with fake.client(api_key=api_key, metadata={"CLORE_API_KEY": clore_key}) as client:
        bad: list[Any] = [
            {"CLORE_API_KEY": clore_key, "n": 5},
            {"CLORE_API_KEY": clore_key + "\ud800"},
        ]
        while bad:
            error = await stop_and_catch(client, "dep-1", bad)
            assert isinstance(error, InvalidRequestError)
            errors.append(error)
        report = await client.stop_deployments(
            ["dep-1"],
            metadata={"CLORE_API_KEY": clore_key, "n": 5},  # type: ignore[dict-item]
        )
        assert report["dep-1"].error is not None
        errors.append(report["dep-1"].error)
    # The first frame of each is this test's (or its helpers'), which holds no key.
    scan([traceback_with_locals(error) for error in errors], keys, "traceback")
