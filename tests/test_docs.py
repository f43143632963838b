"""Every code sample in the docs runs here, so none can rot.

The pages include their samples from ``docs/examples/*.py`` (pymdownx.snippets);
each test below imports one example and runs it, on asyncio and trio, against a
:class:`~hiveon_async.testing.FakeVendorAPI`. The examples are the real
programs a reader would run: they build ``AsyncVendorClient()`` from
``$HIVEON_API_KEY`` and ``$CLORE_API_KEY`` for ``https://api.hiveon.ai``, so the
``fake_in_env`` fixture sets those variables and routes that host to the fake's
loopback socket, named by ``$HIVEON_BASE_URL`` as a user would.
"""

from __future__ import annotations

import contextlib
import doctest
import importlib
import importlib.util
import json
import logging
import pkgutil
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import anyio
import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import hiveon_async
from hiveon_async import AsyncVendorClient, BatchReport, RetryPolicy
from hiveon_async.testing import FakeVendorAPI, Fault, FaultPlan
from tests._otel import reset_otel_globals
from tests.doubles import served_vendor
from tests.policy.redis_server import RedisServer, redis_binary

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
#: Examples another module runs: tests/testing/test_guide_example.py runs the testing guide's.
RUN_ELSEWHERE = {"test_with_fake"}

F = TypeVar("F", bound=Callable[..., Any])
_RUN: set[str] = set()


def runs(*examples: str) -> Callable[[F], F]:
    """Mark a test as the one that runs these examples (checked by ``test_every_example_runs``)."""

    def mark(test: F) -> F:
        _RUN.update(examples)
        return test

    return mark


def load_example(name: str) -> ModuleType:
    """Import ``docs/examples/<name>.py`` afresh (its ``__main__`` block does not run)."""
    spec = importlib.util.spec_from_file_location(f"docs_examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expected_output(name: str) -> str:
    """The output a page shows for an example (``docs/examples/<name>.out``)."""
    return (EXAMPLES / f"{name}.out").read_text()


@pytest.fixture
def fake_in_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FakeVendorAPI]]:
    """Serve a FakeVendorAPI on a loopback socket as ``$HIVEON_BASE_URL``; call with its arguments.

    The examples build ``AsyncVendorClient()`` with no arguments, as a user's
    program does; the environment points it at the fake. Retries wait zero seconds.
    """
    with contextlib.ExitStack() as servers:

        def install(**options: Any) -> FakeVendorAPI:
            served = servers.enter_context(served_vendor(**options))
            monkeypatch.setenv("HIVEON_BASE_URL", served.url)
            monkeypatch.setenv("HIVEON_API_KEY", served.api_key)
            monkeypatch.setenv("CLORE_API_KEY", served.clore_api_key)
            return served.fake

        yield install


# -- the checks on the pages themselves ---------------------------------------------

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*\{?\s*\.?(?P<lang>[\w+-]*)")
_PYTHON = {"python", "py", "python3", "py3", "pycon", "pyi", "ipython"}
_SNIPPET = re.compile(r'^\s*-{1,}8<-{1,}\s+"(?P<path>[^"]+)"\s*$')


def _pages() -> list[Path]:
    return sorted(path for path in DOCS.rglob("*.md") if EXAMPLES not in path.parents)


def _python_fences(page: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, body lines) of each Python code fence of a Markdown page."""
    lines = page.read_text().splitlines()
    opened: tuple[int, str, str] | None = None  # (line, fence, lang)
    body: list[str] = []
    for number, line in enumerate(lines, 1):
        if opened is None:
            match = _FENCE.match(line)
            if match:
                opened = (number, match["fence"], match["lang"].lower())
                body = []
        elif line.strip().startswith(opened[1]) and set(line.strip()) == {opened[1][0]}:
            if opened[2] in _PYTHON:
                yield opened[0], body
            opened = None
        else:
            body.append(line)


def test_no_python_sample_outside_the_examples() -> None:
    """A ```python fence in docs/*.md may only include files (which the tests run)."""
    inline = [
        f"{page.relative_to(ROOT)}:{number}"
        for page in _pages()
        for number, body in _python_fences(page)
        if any(line.strip() and not _SNIPPET.match(line) for line in body)
    ]
    assert not inline, f"inline Python samples (move them to docs/examples/): {inline}"


def test_snippets_point_at_files_that_exist() -> None:
    """Every snippet include names an existing file under docs/examples/ or tests/."""
    targets = [
        (page, match["path"])
        for page in _pages()
        for line in page.read_text().splitlines()
        if (match := _SNIPPET.match(line))
    ]
    assert targets
    for page, target in targets:
        path = ROOT / target.split(":", 1)[0]
        assert path.is_file(), f"{page.name}: {target} does not exist"
        assert path.parent in (EXAMPLES, ROOT / "tests"), f"{page.name}: {target} is not run"


def test_every_example_runs() -> None:
    """Each docs/examples/*.py has a test in this module that runs it."""
    examples = {path.stem for path in EXAMPLES.glob("*.py")} - RUN_ELSEWHERE
    assert examples <= _RUN, f"examples no test runs: {sorted(examples - _RUN)}"


_MODULES = sorted(
    info.name for info in pkgutil.walk_packages(hiveon_async.__path__, "hiveon_async.")
)


@pytest.mark.parametrize("name", _MODULES)
def test_docstring_examples(name: str) -> None:
    """The ``>>>`` examples in docstrings (shown in the API reference) run as written."""
    module = importlib.import_module(name)
    failed, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failed == 0, f"{failed} docstring examples of {name} failed (see the output above)"


# -- the examples ------------------------------------------------------------------


@runs("quickstart_stop")
@pytest.mark.anyio
async def test_quickstart_stop(
    fake_in_env: Callable[..., FakeVendorAPI], capsys: pytest.CaptureFixture[str]
) -> None:
    """The first stop sends one request and prints what the page shows."""
    fake = fake_in_env()
    await load_example("quickstart_stop").main()
    assert capsys.readouterr().out == expected_output("quickstart_stop")
    assert fake.stopped == {"a1b2c3d4-5678-90ef-ghij-klmnopqrstuv"}
    assert fake.request_count == 1


@runs("with_options")
@pytest.mark.anyio
async def test_with_options(
    fake_in_env: Callable[..., FakeVendorAPI], capsys: pytest.CaptureFixture[str]
) -> None:
    """Derived clients send through the client's one connection, each with its options."""
    fake = fake_in_env()
    await load_example("with_options").main()
    assert capsys.readouterr().out == expected_output("with_options")
    bodies = [request.body for request in fake.requests]
    assert [body["metadata"].get("team") for body in bodies] == [None, "platform", None]


@runs("quickstart_batch")
@pytest.mark.anyio
async def test_quickstart_batch(
    fake_in_env: Callable[..., FakeVendorAPI], capsys: pytest.CaptureFixture[str]
) -> None:
    """The first batch stops each unique id once and prints what the page shows."""
    fake = fake_in_env()
    await load_example("quickstart_batch").main()
    assert capsys.readouterr().out == expected_output("quickstart_batch")
    assert fake.attempts == {"dep-1": 1, "dep-2": 1, "dep-3": 1}


@runs("errors")
@pytest.mark.anyio
async def test_errors(
    fake_in_env: Callable[..., FakeVendorAPI], capsys: pytest.CaptureFixture[str]
) -> None:
    """Each branch of the error example meets the failure it is written for."""
    fake = fake_in_env(deployments=["dep-ok"])
    fake.script("dep-locked", [403])
    fake.script("dep-busy", [Fault.status(429, retry_after=120)])
    fake.script("dep-down", [503] * 4)
    fake.script("dep-lost", ["reset"] * 4)
    await load_example("errors").main()
    assert capsys.readouterr().out == expected_output("errors")
    assert "dep/../admin" not in str(fake.attempts)  # refused before any I/O


@runs("bulk_report")
@pytest.mark.anyio
async def test_bulk_report(
    fake_in_env: Callable[..., FakeVendorAPI],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """The file-driven batch accounts for every id and reports failures on stderr."""
    fake = fake_in_env(deployments=[f"dep-{n}" for n in range(100)])
    fake.script("dep-7", [500] * 4)
    ids = [f"dep-{n}" for n in range(100)] + ["", "dep-3", "not a valid id", "dep-404"]
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(ids) + "\n")

    report = await load_example("bulk_report").main(path)

    assert isinstance(report, BatchReport)
    assert len(report) == 102
    assert not report.ok
    assert {outcome.deployment_id for outcome in report.failed} == {
        "dep-7",
        "not a valid id",
        "dep-404",
    }
    assert report["dep-7"].maybe_applied  # a 5xx may have been applied
    out, err = capsys.readouterr()
    assert out == (
        "99 stopped, 3 failed, 0 skipped, 1 duplicates\ndep-7 may have stopped despite the error\n"
    )
    assert err.count(": failed: ") == 3
    assert fake.attempts["dep-7"] == 4
    assert fake.attempts["dep-3"] == 1  # the duplicate was not sent again


@runs("bulk_stream")
@pytest.mark.anyio
async def test_bulk_stream(
    fake_in_env: Callable[..., FakeVendorAPI], capsys: pytest.CaptureFixture[str]
) -> None:
    """The stream prints one JSON line per id as it completes."""
    fake = fake_in_env()
    await load_example("bulk_stream").main()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 200
    assert {line["status"] for line in lines} == {"stopped"}
    assert len(fake.stopped) == 200


@runs("bulk_stream")
@pytest.mark.anyio
async def test_bulk_stream_gives_up(
    fake_in_env: Callable[..., FakeVendorAPI], capsys: pytest.CaptureFixture[str]
) -> None:
    """Breaking out of the stream after ten failures stops sending."""
    fake = fake_in_env(deployments=["dep-0-0"])  # every other id answers 404
    await load_example("bulk_stream").main(max_failures=10)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1]["gave_up_after"] >= 10
    assert sum(line.get("status") == "failed" for line in lines) == 10
    assert fake.request_count < 100  # far fewer than the 200 ids of the fleet


@runs("tuning")
@pytest.mark.anyio
async def test_tuning_stays_under_the_quota(
    fake_in_env: Callable[..., FakeVendorAPI], capsys: pytest.CaptureFixture[str]
) -> None:
    """A client paced just under the vendor's quota is never throttled."""
    fake = fake_in_env(rate_limit=(20, 10))
    started = time.monotonic()
    await load_example("tuning").main()
    elapsed = time.monotonic() - started
    assert capsys.readouterr().out == "20 of 20 stopped\n"
    assert fake.status_counts == {200: 20}
    assert elapsed >= (20 - 5) / 18 * 0.9  # the burst, then 18 per second


@runs("own_http_client")
@pytest.mark.anyio
async def test_own_http_client(
    fake_in_env: Callable[..., FakeVendorAPI], capsys: pytest.CaptureFixture[str]
) -> None:
    """The user's httpx client sends the request, with its headers, and stays open."""
    fake = fake_in_env()
    await load_example("own_http_client").main()
    assert capsys.readouterr().out == "stopped dep-1\nstill yours: closed=False\n"
    assert fake.requests[0].headers["x-team"] == "platform"


@runs("own_httpx2_client")
@pytest.mark.anyio
async def test_own_httpx2_client(
    fake_in_env: Callable[..., FakeVendorAPI], capsys: pytest.CaptureFixture[str]
) -> None:
    """A user's httpx2 client sends the request; a failure is our error from httpx2's."""
    fake = fake_in_env()
    fake.script("dep-2", ["reset"] * 10)
    await load_example("own_httpx2_client").main()
    assert capsys.readouterr().out == "stopped dep-1\nAPIConnectionError from httpx2\n"


@runs("hooks")
@pytest.mark.anyio
async def test_hooks(
    fake_in_env: Callable[..., FakeVendorAPI],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The hooks count every attempt by status and log every retry."""
    fake = fake_in_env()
    fake.script("dep-1", [503])
    with caplog.at_level(logging.WARNING, logger="fleet"):
        await load_example("hooks").main()
    assert capsys.readouterr().out == "stopped dep-1\nattempts by status: {'200': 1, '503': 1}\n"
    assert "retrying dep-1 in" in caplog.text
    assert "after HTTP 503 (attempt 1)" in caplog.text


@runs("otel_tracing")
@pytest.mark.anyio
async def test_otel_tracing(
    fake_in_env: Callable[..., FakeVendorAPI], capsys: pytest.CaptureFixture[str]
) -> None:
    """The user's span holds the batch's, which holds each call's, which holds its attempt's."""
    fake_in_env()
    example = load_example("otel_tracing")
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    reset_otel_globals()
    try:
        example.set_up_telemetry(spans, reader)
        await example.main()
        trace.get_tracer_provider().shutdown()  # type: ignore[attr-defined]
        data = reader.get_metrics_data()
    finally:
        reset_otel_globals()
    assert capsys.readouterr().out == "stopped 3\n"
    finished = spans.get_finished_spans()
    by_id = {span.context.span_id: span for span in finished}
    parents = {
        span.name: by_id[span.parent.span_id].name for span in finished if span.parent is not None
    }
    assert parents == {
        "hiveon.stop_deployments": "drain-rack-7",
        "hiveon.stop_deployment": "hiveon.stop_deployments",
        "POST": "hiveon.stop_deployment",
    }
    assert sorted(span.name for span in finished).count("POST") == 3
    assert data is not None
    requests = [
        point.value
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "hiveon.requests"
        for point in metric.data.data_points
    ]
    assert sum(requests) == 3


# -- the web backend ---------------------------------------------------------------
# --8<-- [start:lifespan]
@asynccontextmanager
async def running(app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    """Start an ASGI app as a server would (lifespan included); yield an HTTP client for it.

    httpx.ASGITransport only sends requests: running the app's startup and
    shutdown, and handing the lifespan's state to each request, is the server's
    job, so this does it here.
    """
    state: dict[str, Any] = {}
    to_app, app_inbox = anyio.create_memory_object_stream[Message](1)
    app_outbox, from_app = anyio.create_memory_object_stream[Message](1)

    async def lifespan() -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
        await app(scope, app_inbox.receive, app_outbox.send)

    async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, "state": dict(state)}, receive, send)

    async with anyio.create_task_group() as server, to_app, app_inbox, app_outbox, from_app:
        server.start_soon(lifespan)
        await to_app.send({"type": "lifespan.startup"})
        assert (await from_app.receive())["type"] == "lifespan.startup.complete"
        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            yield http
        await to_app.send({"type": "lifespan.shutdown"})
        assert (await from_app.receive())["type"] == "lifespan.shutdown.complete"


# --8<-- [end:lifespan]


@runs("web_backend")
# --8<-- [start:web-test]
@pytest.mark.anyio
async def test_web_backend(fake_vendor_api: FakeVendorAPI) -> None:
    """The app shares one client, stops one or many ids, and maps errors to statuses."""
    from web_backend import create_app  # docs/examples/web_backend.py

    fake_vendor_api.script("dep-down", [503] * 4)
    app = create_app(new_client=fake_vendor_api.client)

    async with running(app) as http:
        response = await http.post("/stop/dep-1")
        assert response.status_code == 200
        assert response.json() == {"deployment_id": "dep-1", "status": "stopped"}

        response = await http.post("/stop/not..valid!")
        assert response.status_code == 422  # refused before any request was sent

        response = await http.post("/stop/dep-down")
        assert response.status_code == 502  # 503 four times: the retries ran out

        response = await http.post("/stop", json={"deployment_ids": ["dep-2", "dep-3", "dep-2"]})
        assert response.status_code == 200
        assert response.json()["stopped"] == 2

    assert fake_vendor_api.stopped == {"dep-1", "dep-2", "dep-3"}
    assert fake_vendor_api.attempts == {"dep-1": 1, "dep-down": 4, "dep-2": 1, "dep-3": 1}


# --8<-- [end:web-test]


@pytest.fixture(autouse=True)
def _examples_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let tests import an example by its module name, as the page shows."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.delitem(sys.modules, "web_backend", raising=False)
    monkeypatch.delitem(sys.modules, "fastapi_backend", raising=False)


@runs("web_backend")
@pytest.mark.usefixtures("fake_vendor_api")  # for its instant retry waits
@pytest.mark.anyio
async def test_web_backend_shares_one_client() -> None:
    """Concurrent requests go through the one client, bounded by its max_concurrency."""
    from web_backend import create_app

    fake = FakeVendorAPI(faults=FaultPlan(latency=0.01))
    created: list[AsyncVendorClient] = []

    def new_client() -> AsyncVendorClient:
        client = fake.client(max_concurrency=4)
        created.append(client)
        return client

    statuses: list[int] = []

    async def post(path: str, **options: Any) -> None:
        statuses.append((await http.post(path, **options)).status_code)

    async with running(create_app(new_client=new_client)) as http, anyio.create_task_group() as tg:
        for n in range(20):
            tg.start_soon(post, f"/stop/dep-{n}")
        tg.start_soon(partial(post, "/stop", json={"deployment_ids": ["a", "b"]}))
    assert statuses == [200] * 21
    assert len(created) == 1
    assert fake.peak_in_flight == 4  # 21 requests at once, never more than 4 sent at once
    assert len(fake.stopped) == 22
    with pytest.raises(RuntimeError, match="closed"):  # shut down with the app
        await created[0].stop_deployment("dep-late")


@runs("web_backend")
@pytest.mark.usefixtures("fake_vendor_api")  # for its instant retry waits
@pytest.mark.anyio
async def test_web_backend_bulk_and_errors() -> None:
    """The bulk endpoint validates its body; vendor errors become statuses for our callers."""
    from web_backend import create_app

    fake = FakeVendorAPI(deployments=["dep-1"])
    fake.script("dep-1", [Fault.status(429, retry_after=90)])
    fake.script("dep-slow", ["stall"])
    fake.script("dep-key", [401])
    new_client = partial(fake.client, timeout=0.2, retry=RetryPolicy(max_attempts=1))
    async with running(create_app(new_client=new_client)) as http:
        response = await http.post("/stop/dep-1")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "90"

        response = await http.post("/stop/dep-slow")
        assert response.status_code == 504
        assert response.json() == {"error": "APITimeoutError", "maybe_applied": True}

        response = await http.post("/stop/dep-key")
        assert response.status_code == 502  # our credentials, not the caller's problem

        response = await http.post("/stop/dep-9")
        assert response.status_code == 404
        assert response.json() == {"error": "NotFoundError", "maybe_applied": False}

        for bad in (b"not json", b'{"deployment_ids": []}', b'{"deployment_ids": [1]}'):
            response = await http.post("/stop", content=bad)
            assert response.status_code in (400, 422)

        response = await http.post("/stop", json={"deployment_ids": ["dep-1", "dep-2", "x/y"]})
        outcomes = {item["deployment_id"]: item for item in response.json()["outcomes"]}
        assert outcomes["dep-1"]["status"] == "stopped"
        assert outcomes["dep-2"]["error"] == "NotFoundError"
        assert outcomes["x/y"]["error"] == "InvalidRequestError"


def test_web_backend_production_client_needs_both_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The production client fails at startup, naming the variable, when a key is missing."""
    from web_backend import vendor_client

    monkeypatch.delenv("CLORE_API_KEY", raising=False)
    monkeypatch.setenv("HIVEON_API_KEY", "k")
    with pytest.raises(KeyError, match="CLORE_API_KEY"):
        vendor_client()
    monkeypatch.setenv("CLORE_API_KEY", "c")
    monkeypatch.delenv("HIVEON_API_KEY")
    with pytest.raises(ValueError, match="HIVEON_API_KEY"):
        vendor_client()


@runs("bulk_resume")
@pytest.mark.anyio
async def test_bulk_resume(fake_in_env: Callable[..., FakeVendorAPI], tmp_path: Path) -> None:
    """A second run with the same journal sends only the ids not yet stopped."""
    fake = fake_in_env()
    fake.script("dep-3", [500] * 4)
    ids = [f"dep-{n}" for n in range(10)]
    journal = tmp_path / "journal.jsonl"
    resume = load_example("bulk_resume")

    first = await resume.main(ids, journal)
    assert [outcome.deployment_id for outcome in first.failed] == ["dep-3"]
    with journal.open("a") as log:
        log.write('{"id": "dep-9", "sta')  # a line torn by a crash

    second = await resume.main(ids, journal)
    assert second.ok
    assert list(second.outcomes) == ["dep-3"]
    assert fake.attempts == {**dict.fromkeys(ids, 1), "dep-3": 5}

    third = await resume.main(ids, journal)
    assert len(third) == 0  # the journal records every id as stopped
    assert fake.request_count == 10 + 4


def test_readme_example_runs(
    fake_in_env: Callable[..., FakeVendorAPI], capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's example runs as printed and says what it did."""
    [(_, body)] = list(_python_fences(ROOT / "README.md"))
    fake = fake_in_env()
    exec(compile("\n".join(body), "README.md", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out == (
        "stopped a1b2c3d4-5678-90ef-ghij-klmnopqrstuv\n3 stopped, 0 failed\n"
    )
    assert fake.stopped == {"a1b2c3d4-5678-90ef-ghij-klmnopqrstuv", "dep-1", "dep-2", "dep-3"}


@runs("fastapi_backend")
@pytest.mark.anyio
async def test_fastapi_backend(fake_vendor_api: FakeVendorAPI) -> None:
    """The FastAPI app shares one client, stops one or many ids, and maps errors to statuses."""
    from fastapi_backend import create_app  # docs/examples/fastapi_backend.py

    fake_vendor_api.script("dep-down", [503] * 4)
    fake_vendor_api.script("dep-busy", [Fault.status(429, retry_after=90)])
    app = create_app(new_client=fake_vendor_api.client)

    async with running(app) as http:
        response = await http.post("/stop/dep-1")
        assert response.status_code == 200
        assert response.json() == {"deployment_id": "dep-1", "status": "stopped"}

        response = await http.post("/stop/not..valid!")
        assert response.status_code == 422  # refused before any request was sent

        response = await http.post("/stop/dep-down")
        assert response.status_code == 502  # 503 four times: the retries ran out

        response = await http.post("/stop/dep-busy")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "90"

        response = await http.post("/stop", json={"deployment_ids": []})
        assert response.status_code == 422  # pydantic refuses the body

        response = await http.post("/stop", json={"deployment_ids": ["dep-2", "dep-3", "dep-2"]})
        assert response.status_code == 200
        body = response.json()
        assert (body["stopped"], body["failed"], body["skipped"]) == (2, 0, 0)
        assert [item["deployment_id"] for item in body["outcomes"]] == ["dep-2", "dep-3"]

    assert fake_vendor_api.stopped == {"dep-1", "dep-2", "dep-3"}
    assert fake_vendor_api.attempts == {
        "dep-1": 1,
        "dep-down": 4,
        "dep-busy": 1,
        "dep-2": 1,
        "dep-3": 1,
    }


@runs("shared_limit")
@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # redis-py's asyncio client only
async def test_shared_limit(
    fake_in_env: Callable[..., FakeVendorAPI],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shared-limit example books its turns in the Redis that $HIVEON_REDIS_URL names."""
    fake = fake_in_env()
    server = RedisServer(redis_binary())
    server.start()
    try:
        monkeypatch.setenv("HIVEON_REDIS_URL", server.url)
        await load_example("shared_limit").main()
        assert server.keys()
    finally:
        server.stop()
    assert capsys.readouterr().out == "stopped 20 of 20\n"
    assert len(fake.stopped) == 20
