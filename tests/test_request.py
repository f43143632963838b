"""Validation and request building: every refusal happens before any I/O."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import quote

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

from hiveon_async import (
    AsyncVendorClient,
    HiveonError,
    InvalidRequestError,
    RateLimit,
    RetryPolicy,
)
from hiveon_async._request import deployment_path_segment

MakeClient = Callable[..., AsyncVendorClient]

REFUSED_IDS = [
    "../admin",
    "a/b",
    "x?y=1",
    "x#f",
    "%2e%2e",
    "",
    " a",
    "a ",
    "a\n",
    "a\x00b",
    "\u2025",
    "é",
    "x" * 129,
    "x" * 300,
    ".",
    "..",
    None,
    5,
    b"id",
]
VALID_IDS = [
    "a1b2c3d4-5678-90ef-ghij-klmnopqrstuv",
    "A_b.c-1",
    "...",
    "x",
    "x" * 128,
]


@pytest.fixture
def any_stop(vendor: respx.Router) -> respx.Route:
    """Every stop request, whatever its id; answers with the id it was sent."""

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"deployment_id": request.url.path.split("/")[-2]})

    return vendor.post(path__regex=r"/stop$").mock(side_effect=echo)


@pytest.mark.anyio
@pytest.mark.parametrize("deployment_id", REFUSED_IDS, ids=repr)
async def test_refused_deployment_ids_send_nothing(
    client: AsyncVendorClient, any_stop: respx.Route, deployment_id: object
) -> None:
    """Ids outside the allowlist (and non-str ids) raise InvalidRequestError; nothing is sent."""
    with pytest.raises(InvalidRequestError, match="deployment_id"):
        await client.stop_deployment(deployment_id)  # type: ignore[arg-type]

    assert not any_stop.called


@pytest.mark.anyio
@pytest.mark.parametrize("deployment_id", VALID_IDS)
async def test_valid_deployment_ids_are_sent_as_one_path_segment(
    client: AsyncVendorClient, any_stop: respx.Route, deployment_id: str
) -> None:
    """Ids in the allowlist, including the documented non-UUID example, are sent verbatim."""
    result = await client.stop_deployment(deployment_id)

    assert result.deployment_id == deployment_id
    path = any_stop.calls.last.request.url.raw_path.decode()
    assert path == f"/vendors/v1/machines/deployments/{deployment_id}/stop"


@given(st.text(max_size=140) | st.text(alphabet="a./-_%~+:@!$&'()*,;=", max_size=6))
def test_any_string_is_refused_or_sent_verbatim_as_one_segment(value: str) -> None:
    """Whatever the string: InvalidRequestError, or itself as one plain ASCII path segment."""
    try:
        segment = deployment_path_segment(value)
    except InvalidRequestError:
        return
    assert segment == value
    assert quote(value, safe="") == value  # unreserved characters only: nothing to escape
    assert value.isascii()
    assert value.isprintable()
    assert not set(value) & set("/?#% ")
    assert value not in (".", "..")
    assert 1 <= len(value) <= 128


def test_invalid_request_error_is_a_value_error() -> None:
    """InvalidRequestError is both a HiveonError and a ValueError."""
    with pytest.raises(ValueError, match="deployment_id") as caught:
        deployment_path_segment("a/b")

    assert isinstance(caught.value, HiveonError)
    assert caught.value.attempts == 0


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        (["CLORE_API_KEY", "k"], "must be a mapping"),
        ("CLORE_API_KEY=k", "must be a mapping"),
        ({1: "k"}, "keys must be str"),
        ({"CLORE_API_KEY": 5}, r"metadata\['CLORE_API_KEY'\] must be a str"),
        ({"other": None}, r"metadata\['other'\] must be a str"),
        ({"CLORE_API_KEY": ""}, "is empty"),
    ],
)
async def test_bad_call_metadata_sends_nothing(
    client: AsyncVendorClient, any_stop: respx.Route, metadata: object, message: str
) -> None:
    """Call metadata must be a str-to-str mapping with a non-empty CLORE_API_KEY."""
    with pytest.raises(InvalidRequestError, match=message):
        await client.stop_deployment("dep-1", metadata=metadata)  # type: ignore[arg-type]

    assert not any_stop.called


@pytest.mark.anyio
async def test_missing_clore_key_names_the_variable(
    make_client: MakeClient, any_stop: respx.Route, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No CLORE_API_KEY anywhere: the error names $CLORE_API_KEY and nothing is sent."""
    monkeypatch.delenv("CLORE_API_KEY", raising=False)
    client = make_client(metadata={"region": "eu"})

    with pytest.raises(InvalidRequestError, match=r"is missing.*\$CLORE_API_KEY"):
        await client.stop_deployment("dep-1")

    assert not any_stop.called


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("variable", "unset", "sent"),
    [
        ("HIVEON_API_KEY", "api_key", lambda request: request.headers["X-API-Key"]),
        (
            "CLORE_API_KEY",
            "metadata",
            lambda request: json.loads(request.content)["metadata"]["CLORE_API_KEY"],
        ),
    ],
)
async def test_keys_come_from_the_environment(
    make_client: MakeClient,
    any_stop: respx.Route,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    unset: str,
    sent: Callable[[httpx.Request], str],
) -> None:
    """api_key=None reads $HIVEON_API_KEY; metadata without a key takes $CLORE_API_KEY."""
    monkeypatch.setenv(variable, "from-env")
    client = make_client(**{unset: None})

    await client.stop_deployment("dep-1")

    assert sent(any_stop.calls.last.request) == "from-env"


@pytest.mark.parametrize("value", [None, ""])
def test_missing_api_key_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    """Neither api_key nor a non-empty $HIVEON_API_KEY: the error names the variable."""
    if value is None:
        monkeypatch.delenv("HIVEON_API_KEY", raising=False)
    else:
        monkeypatch.setenv("HIVEON_API_KEY", value)

    with pytest.raises(InvalidRequestError, match=r"\$HIVEON_API_KEY"):
        AsyncVendorClient()


@pytest.mark.parametrize(
    "api_key",
    ["", "sk-SECRET with-space", "sk-SECRET\t", "sk-SECRET\n", "sk-SECRETé", "sk-SECRET\x7f"],
    ids=repr,
)
def test_malformed_api_key_is_refused_without_showing_it(api_key: str) -> None:
    """Whitespace, non-ASCII or control characters: refused, and the key is not in the message."""
    with pytest.raises(InvalidRequestError, match="printable ASCII") as caught:
        AsyncVendorClient(api_key=api_key)

    assert "SECRET" not in str(caught.value)
    assert "SECRET" not in repr(caught.value)


def test_api_key_from_the_environment_is_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed $HIVEON_API_KEY is refused the same way, without showing it."""
    monkeypatch.setenv("HIVEON_API_KEY", "sk-SECRET ")

    with pytest.raises(InvalidRequestError) as caught:
        AsyncVendorClient()

    assert "SECRET" not in str(caught.value)


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1",
        "http://127.5.5.5:8080",
        "http://[::1]:8000",
        "http://localhost",
        "https://api.hiveon.ai",
        "https://10.0.0.1",
        "https://example.com/prefix/",
    ],
)
def test_accepted_base_urls(base_url: str) -> None:
    """HTTPS anywhere; plain http only for loopback hosts."""
    client = AsyncVendorClient(api_key="k", base_url=base_url)

    assert client.base_url == base_url.rstrip("/")


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("http://api.hiveon.ai", "must use https"),
        ("http://10.0.0.1", "must use https"),
        ("http://localhost.evil.test", "must use https"),
        ("http://128.0.0.1", "must use https"),
        ("https://user:s3cr3t@api.hiveon.ai", "credentials"),
        ("https://api.hiveon.ai?token=1", "query"),
        ("https://api.hiveon.ai#frag", "fragment"),
        ("ftp://api.hiveon.ai", "absolute http"),
        ("/vendors", "absolute http"),
        ("https://[::1", "not a valid URL"),
        (b"https://api.hiveon.ai", "must be a str"),
    ],
)
def test_refused_base_urls(base_url: object, message: str) -> None:
    """Plain http to a remote host, credentials, queries and non-URLs are refused."""
    with pytest.raises(InvalidRequestError, match=message) as caught:
        AsyncVendorClient(api_key="k", base_url=base_url)  # type: ignore[arg-type]

    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize(
    "options",
    [
        {"retry": object()},
        {"rate_limit": 5},
        {"max_concurrency": 0},
        {"max_concurrency": True},
        {"timeout": 0},
        {"timeout": float("nan")},
        {"http_client": object()},
        {"metadata": {"CLORE_API_KEY": 1}},
        {"api_key": 5},
    ],
    ids=repr,
)
def test_bad_settings_are_refused_at_construction(options: dict[str, object]) -> None:
    """Each setting is checked when the client is built."""
    with pytest.raises(InvalidRequestError):
        AsyncVendorClient(**{"api_key": "k", **options})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("policy", "options"),
    [
        (RetryPolicy, {"max_attempts": 0}),
        (RetryPolicy, {"max_attempts": True}),
        (RetryPolicy, {"initial_delay": -1}),
        (RetryPolicy, {"max_delay": float("inf")}),
        (RetryPolicy, {"max_retry_after": "60"}),
        (RetryPolicy, {"deadline": 0}),
        (RetryPolicy, {"budget": -1}),
        (RetryPolicy, {"budget": 1.5}),
        (RateLimit, {"per_second": 0}),
        (RateLimit, {"per_second": float("nan")}),
        (RateLimit, {"per_second": 1, "burst": 0}),
    ],
    ids=repr,
)
def test_bad_policies_are_refused(policy: type, options: dict[str, object]) -> None:
    """RetryPolicy and RateLimit check every field when they are made."""
    with pytest.raises(InvalidRequestError):
        policy(**options)


@pytest.mark.anyio
async def test_http_client_and_transport_are_exclusive() -> None:
    """Passing both an http_client and a transport is ambiguous, so refused."""
    async with httpx.AsyncClient() as own:
        with pytest.raises(InvalidRequestError, match="not both"):
            AsyncVendorClient(api_key="k", http_client=own, transport=httpx.MockTransport(print))
