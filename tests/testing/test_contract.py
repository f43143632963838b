"""The fake answers as the vendor documents its endpoint, on both runners (testing/_fake.py)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from hiveon_async.testing import FakeVendorAPI, Fault

if TYPE_CHECKING:
    from tests.doubles import FakeRunner

pytestmark = pytest.mark.anyio

KEY = "test-api-key"
ROUTE = "/vendors/v1/machines/deployments/{}/stop"
VENDOR_EXAMPLE_ID = "a1b2c3d4-5678-90ef-ghij-klmnopqrstuv"
GOOD_BODY: dict[str, Any] = {"metadata": {"CLORE_API_KEY": "clore", "additional_key": "value"}}


async def post(
    client: httpx.AsyncClient,
    deployment_id: str = "dep-1",
    *,
    body: Any = GOOD_BODY,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    drop_headers: tuple[str, ...] = (),
    path: str | None = None,
    method: str = "POST",
) -> httpx.Response:
    """Send one request to the fake, by default a well-formed stop of ``deployment_id``."""
    sent_headers = {"X-API-Key": KEY, "Content-Type": "application/json"}
    sent_headers.update(headers or {})
    for name in drop_headers:
        del sent_headers[name]
    if content is None:
        content = json.dumps(body).encode()
    url = path if path is not None else ROUTE.format(deployment_id)
    return await client.request(method, url, content=content, headers=sent_headers)


CASES = [
    pytest.param({}, 200, id="well-formed"),
    pytest.param({"deployment_id": VENDOR_EXAMPLE_ID}, 200, id="vendor-example-id"),
    pytest.param({"drop_headers": ("X-API-Key",)}, 401, id="no-key"),
    pytest.param({"headers": {"X-API-Key": ""}}, 401, id="empty-key"),
    pytest.param({"headers": {"X-API-Key": "wrong"}}, 401, id="unknown-key"),
    pytest.param({"content": b"{not json"}, 400, id="body-not-json"),
    pytest.param({"content": b"\xff\xfe"}, 400, id="body-not-utf8"),
    pytest.param({"content": b""}, 400, id="body-empty"),
    pytest.param({"body": ["metadata"]}, 400, id="body-not-object"),
    pytest.param({"body": {}}, 400, id="metadata-missing"),
    pytest.param({"body": {"metadata": "x"}}, 400, id="metadata-not-object"),
    pytest.param({"body": {"metadata": {}}}, 400, id="clore-key-missing"),
    pytest.param({"body": {"metadata": {"CLORE_API_KEY": ""}}}, 400, id="clore-key-empty"),
    pytest.param({"body": {"metadata": {"CLORE_API_KEY": 7}}}, 400, id="clore-key-not-string"),
    pytest.param(
        {"body": {"metadata": {"CLORE_API_KEY": "c", "n": 1}}}, 400, id="metadata-value-not-string"
    ),
    pytest.param({"headers": {"Content-Type": "text/plain"}}, 400, id="content-type-not-json"),
    pytest.param({"drop_headers": ("Content-Type",)}, 400, id="no-content-type"),
    pytest.param(
        {"headers": {"Content-Type": "application/json; charset=utf-8"}}, 200, id="json-charset"
    ),
    pytest.param({"path": "/vendors/v1/machines/deployments"}, 404, id="other-path"),
    pytest.param({"path": "/vendors/v1/machines/deployments//stop"}, 404, id="empty-id"),
    pytest.param({"path": "/vendors/v1/machines/deployments/a/b/stop"}, 404, id="two-segments"),
    pytest.param({"method": "GET", "content": b""}, 405, id="get"),
    pytest.param({"method": "PUT"}, 405, id="put"),
    pytest.param({"path": ROUTE.format("dep-1") + "?force=1"}, 200, id="query-ignored"),
]


@pytest.mark.parametrize(("request_options", "status"), CASES)
async def test_contract_table(
    fake_runner: FakeRunner, request_options: dict[str, Any], status: int
) -> None:
    """Each row of the contract gets its documented status, with an X-Request-Id."""
    fake = FakeVendorAPI()
    async with fake_runner.http_client(fake) as client:
        response = await post(client, **request_options)
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"] == "req-1"
    assert response.headers["content-type"] == "application/json"
    assert isinstance(response.json(), dict)


async def test_success_body_names_the_deployment(fake_runner: FakeRunner) -> None:
    """A 200 holds the id that was stopped, and the fake marks it stopped."""
    fake = FakeVendorAPI()
    async with fake_runner.http_client(fake) as client:
        response = await post(client, VENDOR_EXAMPLE_ID)
    assert response.json() == {"deployment_id": VENDOR_EXAMPLE_ID}
    assert fake.stopped == {VENDOR_EXAMPLE_ID}


async def test_error_is_json_without_secrets(fake_runner: FakeRunner) -> None:
    """An error body is a small JSON object that does not echo the credentials."""
    fake = FakeVendorAPI()
    async with fake_runner.http_client(fake) as client:
        response = await post(client, headers={"X-API-Key": "wrong-secret"})
    assert response.json()["status"] == 401
    assert "wrong-secret" not in response.text
    assert fake.stopped == set()


async def test_405_names_the_allowed_method(fake_runner: FakeRunner) -> None:
    """Another method on the route answers 405 with ``Allow: POST``."""
    async with fake_runner.http_client(FakeVendorAPI()) as client:
        response = await post(client, method="DELETE")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("script", "status"),
    [([], 405), (["trickle"], 405), ([Fault.huge(chunked=True)], 200)],
    ids=["plain", "trickle", "huge-chunked"],
)
async def test_head_gets_headers_only(
    fake_runner: FakeRunner, script: list[Any], status: int
) -> None:
    """An answer to HEAD has no body, even when a fault would shape the body."""
    fake = FakeVendorAPI()
    fake.script("dep-1", script)
    async with fake_runner.http_client(fake) as client:
        response = await client.head(ROUTE.format("dep-1"))
    assert response.status_code == status
    assert response.content == b""


async def test_id_is_percent_decoded(fake_runner: FakeRunner) -> None:
    """The id in the path is percent-decoded, an encoded slash included."""
    fake = FakeVendorAPI()
    async with fake_runner.http_client(fake) as client:
        response = await post(client, path=ROUTE.format("a%20b%2Fc"))
    assert response.json() == {"deployment_id": "a b/c"}
    assert fake.attempts == {"a b/c": 1}


async def test_registry_knows_its_deployments(fake_runner: FakeRunner) -> None:
    """With a registry, listed ids stop and unknown ids answer 404."""
    fake = FakeVendorAPI(deployments=["dep-1"])
    async with fake_runner.http_client(fake) as client:
        known = await post(client, "dep-1")
        unknown = await post(client, "dep-2")
    assert (known.status_code, unknown.status_code) == (200, 404)
    assert fake.stopped == {"dep-1"}


async def test_second_stop_is_idempotent_by_default(fake_runner: FakeRunner) -> None:
    """Stopping a stopped deployment again answers 200 by default."""
    fake = FakeVendorAPI()
    async with fake_runner.http_client(fake) as client:
        statuses = [(await post(client)).status_code for _ in range(2)]
    assert statuses == [200, 200]


async def test_second_stop_answers_404_when_not_idempotent(fake_runner: FakeRunner) -> None:
    """With ``idempotent=False`` a second stop answers 404: the deployment is not running."""
    fake = FakeVendorAPI(idempotent=False)
    fake.stopped.add("dep-0")
    async with fake_runner.http_client(fake) as client:
        first, second, preset = [await post(client, i) for i in ("dep-1", "dep-1", "dep-0")]
    assert [first.status_code, second.status_code, preset.status_code] == [200, 404, 404]
    assert second.json()["message"] == "deployment is not running"


async def test_every_configured_key_is_accepted(fake_runner: FakeRunner) -> None:
    """Each of ``api_keys`` authenticates; the first is ``fake.api_key``."""
    fake = FakeVendorAPI(api_keys=["one", "two"])
    async with fake_runner.http_client(fake) as client:
        statuses = [
            (await post(client, headers={"X-API-Key": k})).status_code for k in ("one", "two")
        ]
    assert statuses == [200, 200]
    assert fake.api_key == "one"


async def test_request_ids_are_unique(fake_runner: FakeRunner) -> None:
    """Every response, errors and other paths included, carries its own X-Request-Id."""
    fake = FakeVendorAPI()
    async with fake_runner.http_client(fake) as client:
        responses = [
            await post(client),
            await post(client, headers={"X-API-Key": "x"}),
            await post(client, path="/elsewhere"),
        ]
    assert [r.headers["x-request-id"] for r in responses] == ["req-1", "req-2", "req-3"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"api_keys": []}, "api_keys"),
        ({"api_keys": "one-key"}, "api_keys"),
        ({"api_keys": [""]}, "api_keys"),
        ({"clore_api_key": ""}, "clore_api_key"),
        ({"rate_limit": (0, 1)}, "per_second"),
        ({"rate_limit": (1, 0)}, "burst"),
    ],
)
def test_bad_options_are_rejected(options: dict[str, Any], message: str) -> None:
    """Nonsense configuration fails at construction, naming the option."""
    with pytest.raises(ValueError, match=message):
        FakeVendorAPI(**options)
