"""httpx or httpx2: the client speaks the library of the objects it is given.

The tests that take the ``http`` fixture run on the library under test
(``$HIVEON_TESTS_HTTP``: httpx by default, httpx2 under ``nox -s tests_httpx2``);
the others name httpx2 themselves (the tests group installs it).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from types import ModuleType

import httpcore2
import httpx
import httpx2
import pytest

from hiveon_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncVendorClient,
    InvalidRequestError,
    NotFoundError,
    RetryPolicy,
)
from hiveon_async._http_library import HTTPX, library_of, named
from hiveon_async._redact import LIBRARY_LOGGERS
from hiveon_async.testing import FakeVendorAPI, Fault
from tests.doubles import HTTP_LIBRARY, fake_client

pytestmark = pytest.mark.anyio

NO_RETRY = RetryPolicy(max_attempts=1)


def fake_for(api_key: str, clore_key: str) -> FakeVendorAPI:
    return FakeVendorAPI(api_keys=[api_key], clore_api_key=clore_key)


# -- choosing the library: before any I/O ---------------------------------------------


def test_importing_the_package_does_not_import_httpx2() -> None:
    """Without httpx2 objects, nothing imports httpx2: a user without the extra sees no change."""
    code = (
        "import sys, httpx, hiveon_async, hiveon_async.testing\n"
        "from hiveon_async import AsyncVendorClient\n"
        "from hiveon_async.testing import FakeVendorAPI\n"
        "AsyncVendorClient(api_key='k' * 20, transport=FakeVendorAPI().transport(),"
        " timeout=httpx.Timeout(3))\n"
        "assert 'httpx2' not in sys.modules and 'httpcore2' not in sys.modules, 'imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("options", "names"),
    [
        ({"http_client": "httpx2", "timeout": httpx.Timeout(3)}, "timeout is httpx's"),
        ({"http_client": "httpx", "timeout": httpx2.Timeout(3)}, "timeout is httpx2's"),
        ({"transport": "httpx2", "timeout": httpx.Timeout(3)}, "transport is httpx2's"),
    ],
)
def test_objects_of_both_libraries_are_refused(options: dict[str, object], names: str) -> None:
    """An httpx2 client with an httpx Timeout (and so on) is a clear error, before any I/O."""
    made = dict(options)
    if made.get("http_client") == "httpx2":
        made["http_client"] = httpx2.AsyncClient()
    elif made.get("http_client") == "httpx":
        made["http_client"] = httpx.AsyncClient()
    if made.get("transport") == "httpx2":
        made["transport"] = FakeVendorAPI().transport(library="httpx2")
    with pytest.raises(InvalidRequestError, match="one library, httpx or httpx2") as caught:
        AsyncVendorClient(api_key="k" * 20, **made)  # type: ignore[arg-type]
    assert names in str(caught.value)


def test_an_http_client_of_neither_library_is_refused() -> None:
    """Something else as http_client is refused, naming both accepted classes."""
    with pytest.raises(InvalidRequestError, match=r"httpx\.AsyncClient or an httpx2\.AsyncClient"):
        AsyncVendorClient(api_key="k" * 20, http_client=object())  # type: ignore[arg-type]


def test_a_bad_timeout_names_the_library_s_timeout() -> None:
    """A timeout that is not seconds names the Timeout class of the client's library."""
    with pytest.raises(InvalidRequestError, match=r"an httpx2\.Timeout"):
        AsyncVendorClient(
            api_key="k" * 20,
            timeout="soon",  # type: ignore[arg-type]
            transport=FakeVendorAPI().transport(library="httpx2"),
        )


def test_the_library_is_chosen_from_any_of_the_objects() -> None:
    """Any one httpx2 object makes the client speak httpx2; none, httpx; seconds say nothing."""
    fake = FakeVendorAPI()
    assert library_of(http_client=None, transport=None, timeout=5.0) is HTTPX
    assert library_of(http_client=None, transport=fake.transport(), timeout=None) is HTTPX
    for options in (
        {"http_client": httpx2.AsyncClient(), "transport": None, "timeout": 5.0},
        {"http_client": None, "transport": fake.transport(library="httpx2"), "timeout": None},
        {"http_client": None, "transport": None, "timeout": httpx2.Timeout(5)},
    ):
        assert library_of(**options).name == "httpx2"


def test_the_fake_transport_refuses_an_unknown_library() -> None:
    """FakeVendorAPI.transport(library=...) takes httpx or httpx2 only."""
    with pytest.raises(InvalidRequestError, match="'httpx' or 'httpx2'"):
        FakeVendorAPI().transport(library="requests")  # type: ignore[call-overload]


def test_the_fake_transport_says_which_extra_httpx2_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without httpx2 installed, asking for its fake transport names the extra to install."""
    import importlib.util

    monkeypatch.delitem(sys.modules, "httpx2")
    monkeypatch.setattr("hiveon_async._http_library._HTTPX2", None)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "httpx2" else real(name, *a)
    )
    with pytest.raises(InvalidRequestError, match=r"hiveon-async\[httpx2\]"):
        named("httpx2")


def test_httpx2_and_httpcore2_log_records_are_redacted_too() -> None:
    """The filter that keeps credentials out of log records is on httpx2's loggers as well."""
    assert {"httpx2", "httpcore2.connection", "httpcore2.http11"} <= set(LIBRARY_LOGGERS)


async def test_credentials_never_reach_an_httpx2_log_record(
    anyio_backend: str, api_key: str, clore_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A user's httpx2 client logs each request; no record holds either credential."""
    caplog.set_level(logging.DEBUG)
    fake = fake_for(api_key, clore_key)
    async with (
        httpx2.AsyncClient(transport=fake.transport(library="httpx2")) as own,
        AsyncVendorClient(
            api_key=api_key, metadata={"CLORE_API_KEY": clore_key}, http_client=own
        ) as client,
    ):
        logging.getLogger("httpx2").info("echo %s %s", api_key, clore_key)
        await client.stop_deployment("dep-1")
    assert any(record.name == "httpx2" for record in caplog.records)
    assert api_key not in caplog.text
    assert clore_key not in caplog.text


# -- a user's client, transport or timeout of the library under test -------------------


async def test_a_user_s_client_sends_and_answers_are_typed(
    anyio_backend: str, http: ModuleType, api_key: str, clore_key: str
) -> None:
    """A user's AsyncClient sends; a 404 is NotFoundError keeping its library's response."""
    fake = fake_for(api_key, clore_key)
    fake.script("gone", [404])
    async with (
        http.AsyncClient(transport=fake.transport(library=HTTP_LIBRARY)) as own,
        AsyncVendorClient(
            api_key=api_key, metadata={"CLORE_API_KEY": clore_key}, http_client=own
        ) as client,
    ):
        assert (await client.stop_deployment("dep-1")).deployment_id == "dep-1"
        with pytest.raises(NotFoundError) as caught:
            await client.stop_deployment("gone")
    response = caught.value.response
    assert isinstance(response, http.Response)
    assert isinstance(response.request, http.Request)
    assert response.request.headers["x-api-key"] == "[redacted]"


async def test_no_response_keeps_the_library_s_exception_as_cause(
    anyio_backend: str, http: ModuleType, api_key: str, clore_key: str
) -> None:
    """A reset through a user's client is APIConnectionError, from the library's ReadError."""
    fake = fake_for(api_key, clore_key)
    fake.script("dep-1", ["reset"])
    async with (
        http.AsyncClient(transport=fake.transport(library=HTTP_LIBRARY)) as own,
        AsyncVendorClient(
            api_key=api_key,
            metadata={"CLORE_API_KEY": clore_key},
            http_client=own,
            retry=NO_RETRY,
        ) as client,
    ):
        with pytest.raises(APIConnectionError) as caught:
            await client.stop_deployment("dep-1")
    error = caught.value
    assert isinstance(error.__cause__, http.ReadError)
    assert isinstance(error.request, http.Request)
    assert error.maybe_applied
    assert api_key not in repr(error.__cause__)


async def test_a_stall_past_the_timeout_is_a_timeout_error(
    anyio_backend: str, http: ModuleType, api_key: str, clore_key: str
) -> None:
    """The library's Timeout bounds an attempt: APITimeoutError from its ReadTimeout."""
    fake = fake_for(api_key, clore_key)
    fake.script("dep-1", [Fault.stall(seconds=30)])
    async with fake_client(
        fake,
        api_key=api_key,
        timeout=http.Timeout(0.05),
        transport=fake.transport(library=HTTP_LIBRARY),
        retry=NO_RETRY,
    ) as client:
        with pytest.raises(APITimeoutError) as caught:
            await client.stop_deployment("dep-1")
    assert isinstance(caught.value.__cause__, http.TimeoutException)


async def test_a_batch_through_the_fake_transport_accounts_for_every_id(
    anyio_backend: str, http: ModuleType, api_key: str, clore_key: str
) -> None:
    """A batch over the library's fake transport: stopped ids, and typed failures for the rest."""
    fake = fake_for(api_key, clore_key)
    fake.script("bad", [404])
    async with fake_client(fake, api_key=api_key) as client:
        report = await client.stop_deployments(["a", "b", "bad"], concurrency=2)
    assert [outcome.status for outcome in report] == ["stopped", "stopped", "failed"]
    failed = report["bad"].error
    assert isinstance(failed, NotFoundError)
    assert isinstance(failed.response, http.Response)


@pytest.mark.socket
async def test_the_lean_pool_runs_on_the_library_s_connections(
    anyio_backend: str,
    http: ModuleType,
    httpcore_module: ModuleType,
    api_key: str,
    clore_key: str,
) -> None:
    """With only the library's Timeout, our pool runs on its httpcore; errors chain to both."""
    fake = fake_for(api_key, clore_key)
    fake.script("dep-2", ["reset"])
    async with (
        fake.serve() as base_url,
        AsyncVendorClient(
            api_key=api_key,
            base_url=base_url,
            metadata={"CLORE_API_KEY": clore_key},
            timeout=http.Timeout(5.0),
            speedups=False,
            retry=NO_RETRY,
        ) as client,
    ):
        assert (await client.stop_deployment("dep-1")).deployment_id == "dep-1"
        assert client._engine.pool == "httpcore"
        with pytest.raises(APIConnectionError) as caught:
            await client.stop_deployment("dep-2")
    cause = caught.value.__cause__
    assert isinstance(cause, http.ReadError)
    assert isinstance(cause.__cause__, httpcore_module.ReadError)


# -- httpx2 by name -----------------------------------------------------------------------


@pytest.mark.socket
async def test_httpx2_timeout_alone_never_uses_aiohttp(
    anyio_backend: str, api_key: str, clore_key: str
) -> None:
    """Aiohttp's pool speaks httpx: a client on httpx2 uses the lean pool on httpcore2."""
    fake = fake_for(api_key, clore_key)
    async with (
        fake.serve() as base_url,
        AsyncVendorClient(
            api_key=api_key,
            base_url=base_url,
            metadata={"CLORE_API_KEY": clore_key},
            timeout=httpx2.Timeout(5.0),
        ) as client,
    ):
        await client.stop_deployment("dep-1")
        assert client._engine.pool == "httpcore"
    with pytest.raises(InvalidRequestError, match="aiohttp's pool speaks httpx"):
        AsyncVendorClient(api_key=api_key, timeout=httpx2.Timeout(5.0), speedups=True)


async def test_httpx2_errors_chain_to_httpcore2(
    anyio_backend: str, api_key: str, clore_key: str
) -> None:
    """A refused connection on the lean pool: APIConnectionError from httpx2's ConnectError."""
    async with AsyncVendorClient(
        api_key=api_key,
        base_url="http://127.0.0.1:9",  # discard: nothing listens
        metadata={"CLORE_API_KEY": clore_key},
        timeout=httpx2.Timeout(5.0),
        retry=NO_RETRY,
    ) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.stop_deployment("dep-1")
    cause = caught.value.__cause__
    assert isinstance(cause, httpx2.ConnectError)
    assert isinstance(cause.__cause__, httpcore2.ConnectError)
    assert not caught.value.maybe_applied
