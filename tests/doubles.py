"""Every vendor double of the test suite, and which one to use when.

- **respx** (the ``vendor`` router, ``stop_route``, ``make_client``, ``client``):
  unit tests of the client's own logic. Each answer is exactly what the test
  says, a side effect can raise what a transport raises, and nothing touches
  a socket.
- **FakeVendorAPI** (:mod:`hiveon_async.testing`): integration. In-process
  through ``fake.client()`` or :func:`fake_client`; on a real socket through
  ``fake.serve()``, :class:`FakeRunner` (both runners in turn) or
  :func:`served_vendor` (a thread, for the command line and the docs'
  examples). It scripts faults per id, rolls seeded random ones, adds latency,
  rate-limits, and counts what it saw. :class:`WireFake` and
  :class:`TrackingFake` are the fake keeping one more record each.
- **RawServer**: only where the bytes themselves must be hostile, or the
  connection must misbehave as no well-behaved server would; the fake speaks
  valid HTTP through h11 and cannot.
- **Capture**: the property tests' recording transport, for what respx cannot
  serve there (see its docstring).

``tests/conftest.py`` loads this module as a pytest plugin, so its fixtures
reach every folder of the suite.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import secrets
import time
from array import array
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

import anyio
import httpx
import pytest
import respx
from anyio.abc import SocketAttribute, SocketStream

from hiveon_async import AsyncVendorClient, RetryPolicy
from hiveon_async.testing import FakeVendorAPI, set_testing

__all__ = [
    "ANY_STOP",
    "HTTP_LIBRARY",
    "Capture",
    "MAX_BYTES",
    "RUNNERS",
    "STOP_PATH",
    "VENDOR_URL",
    "FakeRunner",
    "RawServer",
    "ServedVendor",
    "TrackingFake",
    "WireFake",
    "distinctive_secret",
    "endless",
    "fake_client",
    "response_head",
    "sent_ids",
    "served_vendor",
]


def distinctive_secret(prefix: str) -> str:
    """A credential no output could contain by chance, so that a leak can be searched for."""
    return f"{prefix}{secrets.token_hex(12)}"


# -- respx: the vendor of the unit tests ------------------------------------------------

VENDOR_URL = "https://api.hiveon.test"
#: The stop route of one id, relative to the vendor's base URL.
STOP_PATH = "/vendors/v1/machines/deployments/{}/stop"
#: The stop route of any id; respx hands the id to a side effect as ``deployment_id``.
ANY_STOP = r"^/vendors/v1/machines/deployments/(?P<deployment_id>[^/]+)/stop$"


@pytest.fixture
def vendor() -> respx.Router:
    """A respx router standing in for the vendor API at ``VENDOR_URL``."""
    return respx.Router(base_url=VENDOR_URL)


@pytest.fixture
def stop_route(vendor: respx.Router, deployment_id: str) -> respx.Route:
    """The stop route of ``deployment_id``; answers the documented success until re-mocked."""
    return vendor.post(STOP_PATH.format(deployment_id)).respond(
        200, json={"deployment_id": deployment_id}
    )


@pytest.fixture
async def make_client(
    request: pytest.FixtureRequest,
    anyio_backend: str,
    instant_retries: None,
    vendor: respx.Router,
    api_key: str,
    clore_key: str,
) -> AsyncIterator[Callable[..., AsyncVendorClient]]:
    """Build AsyncVendorClients wired to ``vendor`` (keyword overrides allowed); closed after.

    A test that asks for ``waits`` gets clients whose waits are recorded there.
    """
    clients: list[AsyncVendorClient] = []
    clock = request.getfixturevalue("waits") if "waits" in request.fixturenames else None

    def make(**options: Any) -> AsyncVendorClient:
        defaults: dict[str, Any] = {
            "api_key": api_key,
            "base_url": VENDOR_URL,
            "metadata": {"CLORE_API_KEY": clore_key},
            "transport": httpx.MockTransport(vendor.async_handler),
        }
        client = AsyncVendorClient(**{**defaults, **options})
        if clock is not None:
            client._engine.use_clock(clock)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def client(make_client: Callable[..., AsyncVendorClient]) -> AsyncVendorClient:
    """A client with the default settings, wired to ``vendor``."""
    return make_client()


# -- the HTTP library the tests' own clients, timeouts and fakes speak -----------------

#: ``httpx`` (the default), or ``httpx2`` under ``nox -s tests_httpx2`` (``$HIVEON_TESTS_HTTP``).
HTTP_LIBRARY = os.environ.get("HIVEON_TESTS_HTTP", "httpx")


@pytest.fixture
def http() -> ModuleType:
    """The HTTP library under test (``$HIVEON_TESTS_HTTP``): httpx, or httpx2."""
    return importlib.import_module(HTTP_LIBRARY)


@pytest.fixture
def httpcore_module() -> ModuleType:
    """The connection library under :func:`http`: httpcore, or httpcore2."""
    return importlib.import_module(HTTP_LIBRARY.replace("httpx", "httpcore"))


# -- FakeVendorAPI: the vendor of the integration tests ---------------------------------


def fake_client(fake: FakeVendorAPI, **overrides: Any) -> AsyncVendorClient:
    """``fake.client()`` whose retries wait nothing by their policy; test mode stays off.

    Unlike ``instant_retries``, this keeps a ``Retry-After`` pause and the
    pacing after a 429 real, which the batch tests measure. A ``retry``
    override replaces the zero-delay policy whole.
    """
    overrides.setdefault("retry", RetryPolicy(initial_delay=0.0, max_delay=0.0))
    if "http_client" not in overrides:
        # The fake's transport of the library under test ($HIVEON_TESTS_HTTP: httpx or httpx2).
        overrides.setdefault("transport", fake.transport(library=HTTP_LIBRARY))
    return fake.client(**overrides)


def sent_ids(fake: FakeVendorAPI) -> list[str | None]:
    """The id of each request the fake recorded, in order of arrival."""
    return [request.deployment_id for request in fake.requests]


RUNNERS = ["in-process", "socket"]


class FakeRunner:
    """Connects an ``httpx.AsyncClient`` to a FakeVendorAPI, in-process or over a socket.

    Args:
        name: ``"in-process"`` (the fake's transport) or ``"socket"`` (``fake.serve()``).
    """

    def __init__(self, name: str) -> None:
        self.name = name

    @contextlib.asynccontextmanager
    async def http_client(
        self, fake: FakeVendorAPI, **options: Any
    ) -> AsyncIterator[httpx.AsyncClient]:
        """Yield a raw httpx client whose base URL is the fake."""
        if self.name == "in-process":
            async with httpx.AsyncClient(
                transport=fake.transport(), base_url="http://127.0.0.1", **options
            ) as client:
                yield client
        else:
            async with (
                fake.serve() as base_url,
                httpx.AsyncClient(base_url=base_url, **options) as client,
            ):
                yield client


@pytest.fixture(params=RUNNERS)
def fake_runner(request: pytest.FixtureRequest) -> FakeRunner:
    """Each FakeVendorAPI runner in turn: in-process, then a real socket."""
    return FakeRunner(str(request.param))


class ServedVendor:
    """A FakeVendorAPI served on 127.0.0.1 from a thread, and credentials it accepts."""

    def __init__(self, fake: FakeVendorAPI, url: str, api_key: str, clore_api_key: str) -> None:
        self.fake = fake
        self.url = url
        self.api_key = api_key
        self.clore_api_key = clore_api_key

    def env(self, **more: str | None) -> dict[str, str | None]:
        """The environment of a program run against this vendor."""
        return {
            "HIVEON_API_KEY": self.api_key,
            "CLORE_API_KEY": self.clore_api_key,
            "HIVEON_BASE_URL": self.url,
            **more,
        }

    def process_env(self, **more: str) -> dict[str, str]:
        """``os.environ`` plus :meth:`env`, for a subprocess."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("HIVEON_")}
        env.pop("CLORE_API_KEY", None)
        env.update({key: value for key, value in self.env().items() if value is not None})
        env.update(more)
        return env


@contextlib.contextmanager
def served_vendor(*, instant_retries: bool = True, **options: Any) -> Iterator[ServedVendor]:
    """Serve a FakeVendorAPI (``options`` are its arguments) on a free loopback port.

    Its credentials are distinctive unless ``api_keys`` or ``clore_api_key``
    is given. With ``instant_retries``, retries in this process do not sleep
    while it runs.
    """
    options.setdefault("api_keys", [distinctive_secret("hk")])
    options.setdefault("clore_api_key", distinctive_secret("ck"))
    fake = FakeVendorAPI(**options)
    with set_testing(instant_retries), fake.serve_in_thread() as url:
        yield ServedVendor(fake, url, fake.api_key, fake.clore_api_key)


class WireFake(FakeVendorAPI):
    """The fake, also keeping what its own records leave out, for tests of the wire itself.

    The fake redacts the ``X-API-Key`` header and every ``CLORE_API_KEY`` in
    what it records, by design, and counts only the connections open now. A
    test of the bytes a client sends must see the exact credentials, and a test
    of connection reuse every connection ever opened.

    Attributes:
        wire: Each request's headers (names lower-cased, values as sent) and raw body.
        connections: Socket connections accepted so far.
    """

    def __init__(self, **options: Any) -> None:
        self.wire: list[tuple[dict[str, str], bytes]] = []
        self.connections = 0
        self._open_now = 0
        super().__init__(**options)

    @property
    def open_connections(self) -> int:
        """Socket connections open right now."""
        return self._open_now

    @open_connections.setter
    def open_connections(self, value: int) -> None:
        # The socket runner counts a new connection as `open_connections += 1`.
        if value > self._open_now:
            self.connections += 1
        self._open_now = value

    def _receive(
        self,
        method: str,
        target: str,
        api_key: str | None,
        content_type: str | None,
        body: bytes,
        raw_headers: Iterable[tuple[bytes, bytes]],
    ) -> Any:
        raw_headers = list(raw_headers)
        headers = {name.decode().lower(): value.decode() for name, value in raw_headers}
        self.wire.append((headers, body))
        return super()._receive(method, target, api_key, content_type, body, raw_headers)


class Capture(httpx.AsyncBaseTransport):
    """Records every request, then hands it to ``inner`` (the fake) or answers ``answer``.

    For the property tests: a hypothesis example cannot use a function-scoped
    fixture such as ``vendor``, and respx's router reads a ``ByteStream``
    answer ahead (decoding it), while these tests hand the client raw bytes to
    read as from a socket. The answer goes back untouched.

    Attributes:
        requests: Every request, in order.
        bodies: Each request's body, as sent.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport | None = None,
        answer: Callable[[httpx.Request], httpx.Response] | None = None,
    ) -> None:
        self.inner = inner
        self.answer = answer
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(await request.aread())
        self.requests.append(request)
        if self.inner is not None:
            return await self.inner.handle_async_request(request)
        assert self.answer is not None
        return self.answer(request)


# Set per request by TrackingFake._receive and read back by its _finish: both run in
# the task that carries the request (a connection's task, or the client's own).
_STALLED: contextvars.ContextVar[bool] = contextvars.ContextVar("stalled", default=False)


class TrackingFake(FakeVendorAPI):
    """The fake, also counting requests in flight that the client is still waiting for.

    A stalled request stays in flight at the fake after the client has given up
    on it (the fake only notices when the stall ends), so the fake's own
    ``peak_in_flight`` can pass the client's concurrency by the stalls under
    way. ``peak_answering`` leaves stalls out: it is what the client's
    concurrency bounds.
    """

    def __init__(self, **options: Any) -> None:
        self.arrivals = array("d")
        super().__init__(clock=self._arrival, **options)
        self.answering = 0
        self.peak_answering = 0

    def _arrival(self) -> float:
        # The fake reads its clock exactly once per request, on arrival.
        now = time.monotonic()
        self.arrivals.append(now)
        return now

    def _receive(self, *args: Any) -> Any:
        reply = super()._receive(*args)
        stalled = reply.fault is not None and reply.fault.kind == "stall"
        _STALLED.set(stalled)
        if not stalled:
            self.answering += 1
            self.peak_answering = max(self.peak_answering, self.answering)
        return reply

    def _finish(self) -> None:
        super()._finish()
        if not _STALLED.get():
            self.answering -= 1


# -- RawServer: the vendor whose bytes are hostile --------------------------------------

#: The most bytes an endless writer sends on one connection (a bound on every loop).
MAX_BYTES = 512 * 2**20
#: Seconds a connection may take to deliver its request.
REQUEST_SECONDS = 10.0
_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError)

#: Writes the answer (or not) on a connection whose request has been read.
Handler = Callable[[SocketStream], Awaitable[None]]


class RawServer:
    """Serves ``handler`` on a free port; counts connections and keeps each request's bytes.

    It reads one request, then hands the socket to the handler, which writes
    whatever it likes: a garbage status line, a header block that never ends,
    a body that never ends, a keep-alive answer and then a close. Every endless
    writer stops when the client goes away, when the server is closed, or after
    :data:`MAX_BYTES`, whichever comes first.

    Args:
        handler: Writes the answer on each connection after its request was read.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.open_connections = 0
        self.requests: list[bytes] = []
        self.url = ""

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        """Listen for the duration of the block; yield the base URL."""
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = listener.extra(SocketAttribute.local_port)
        self.url = f"http://127.0.0.1:{port}"
        async with listener, anyio.create_task_group() as group:
            group.start_soon(listener.serve, self._connection)
            try:
                yield self.url
            finally:
                group.cancel_scope.cancel()

    async def _connection(self, stream: SocketStream) -> None:
        self.connections += 1
        self.open_connections += 1
        try:
            with contextlib.suppress(*_GONE), anyio.move_on_after(REQUEST_SECONDS):
                request = await read_request(stream)
                if request is None:
                    return
                self.requests.append(request)
                await self.handler(stream)
        finally:
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            self.open_connections -= 1


async def read_request(stream: SocketStream) -> bytes | None:
    """Read one request (head and Content-Length body); None if the client left first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive()
        if not chunk:
            return None
        data += chunk
        if len(data) > 1 << 20:
            return None
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        body += await stream.receive()
    return head + b"\r\n\r\n" + body


def response_head(status: bytes | int = 200, *headers: bytes | str) -> bytes:
    """A status line and header block, ready to send (``headers`` are ``b"Name: value"``)."""
    line = status if isinstance(status, bytes) else b"HTTP/1.1 %d Whatever" % status
    lines = [line, *(h if isinstance(h, bytes) else h.encode() for h in headers)]
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def endless(
    stream: SocketStream, chunk: bytes, *, pause: float = 0.0, limit: int = MAX_BYTES
) -> None:
    """Send ``chunk`` again and again until the client leaves (or ``limit`` bytes)."""
    sent = 0
    while sent < limit:
        await stream.send(chunk)
        sent += len(chunk)
        if pause:
            await anyio.sleep(pause)
        else:
            await anyio.lowlevel.checkpoint()
