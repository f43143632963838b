"""FakeVendorAPI: the endpoint's behaviour, its faults, and what it saw.

The fake decides every answer here, synchronously and in arrival order (so a
seeded plan is reproducible); the two runners (:mod:`._transport` in-process,
:mod:`._server` on a socket) only carry the answer out, including faults that
have to happen on the wire.
"""

from __future__ import annotations

import functools
import json
import random
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, Literal, overload
from urllib.parse import unquote

from anyio.from_thread import start_blocking_portal

from .._http_library import named
from ._faults import (
    DEFAULT_REDIRECT_HOST,
    HUGE_BODY_BYTES,
    Fault,
    FaultPlan,
    ScriptEntry,
    thresholds,
)
from ._quota import Quota, QuotaWindows
from ._records import ReceivedRequest, redact_body, redact_headers
from ._reply import Reply, reason_phrase
from ._server import serve_fake
from ._throttle import Throttle
from ._transport import fake_transport

if TYPE_CHECKING:
    import httpx
    import httpx2

    from .._client import AsyncVendorClient

__all__ = ["FakeVendorAPI"]

ROUTE_PREFIX = "/vendors/v1/machines/deployments/"
ROUTE_SUFFIX = "/stop"

DEFAULT_API_KEY = "test-api-key"
DEFAULT_CLORE_API_KEY = "test-clore-key"
#: The base URL of the client that :meth:`FakeVendorAPI.client` wires to the transport.
IN_PROCESS_BASE_URL = "http://127.0.0.1"

GARBAGE_BODY = b"<html><body>502 Bad Gateway</body></html>\x00\xff"
# Faults the runners carry out themselves; every other answer is a plain response.
_WIRE_FAULTS = frozenset({"reset", "drop", "stall", "trickle"})
# Stands for a body that is empty or not JSON (None would be JSON's null).
_NOT_JSON = object()


@functools.cache
def _error_body(status: int, message: str) -> bytes:
    # Memoised: the messages are a fixed set, and this is on the hot path of every error.
    return json.dumps(
        {"status": status, "error": reason_phrase(status).decode(), "message": message}
    ).encode()


def parse_deployment_id(target: str) -> str | None:
    """Return the percent-decoded deployment id of a stop-route target, else None.

    Args:
        target: The request target, e.g. ``/vendors/v1/machines/deployments/d%201/stop?x=1``.

    Returns:
        The id (``"d 1"``), or None when the target is not the stop route.
    """
    path = target.partition("?")[0]
    if not (path.startswith(ROUTE_PREFIX) and path.endswith(ROUTE_SUFFIX)):
        return None
    segment = path[len(ROUTE_PREFIX) : -len(ROUTE_SUFFIX)]
    if not segment or "/" in segment:
        return None
    return unquote(segment)


def _metadata_problem(body: Any) -> str | None:
    # The reason a parsed body breaks the contract, or None when it is well formed.
    if body is _NOT_JSON:
        return "the body is not valid JSON"
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    metadata = body.get("metadata")
    if metadata is None:
        return "metadata is required"
    if not isinstance(metadata, dict):
        return "metadata must be an object"
    clore_key = metadata.get("CLORE_API_KEY")
    if not isinstance(clore_key, str) or not clore_key:
        return "metadata.CLORE_API_KEY must be a non-empty string"
    if not all(isinstance(value, str) for value in metadata.values()):
        return "metadata values must be strings"
    return None


def _on_the_wire(fault: Fault | None) -> Fault | None:
    # The fault a runner must carry out, or None when a plain response does.
    if fault is None:
        return None
    if fault.kind in _WIRE_FAULTS or (fault.kind == "huge" and fault.chunked):
        return fault
    return None


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    return content_type.partition(";")[0].strip().lower() == "application/json"


class FakeVendorAPI:
    """A faithful fake of the vendor's stop-deployment endpoint, with fault injection.

    It answers as the vendor documents (and, where the documentation is
    silent, as the client assumes): 401 for a missing or unknown
    ``X-API-Key``; 400 when ``Content-Type`` is not JSON, the body is not a JSON
    object, ``metadata`` is missing or not an object, ``CLORE_API_KEY`` is not a
    non-empty string or a metadata value is not a string; 404 for an id outside
    the registry (when there is one) and for any other path; 405 for another
    method on the route; otherwise 200 ``{"deployment_id": id}`` and the
    deployment is stopped. Every response carries ``X-Request-Id``.

    Checks run in this order: route (404), scripted or random fault, method
    (405), API key (401), rate limit (429), quota (429), body (400), registry
    (404).

    Args:
        api_keys: The vendor API keys it accepts; the first is :attr:`api_key`.
        clore_api_key: The ``CLORE_API_KEY`` that :meth:`client` sends (the fake
            accepts any non-empty string).
        deployments: None (any id is a running deployment), or the ids that exist;
            any other id answers 404.
        idempotent: When False, stopping an already stopped deployment answers
            404 (it is no longer running), which is what a client meets when it
            retries a stop that was applied but whose answer was lost.
        faults: Random faults and latency; None for none.
        rate_limit: ``(per_second, burst)`` of a token bucket per API key; past it
            the fake answers 429 with ``Retry-After``. None for no limit.
        quota: A :class:`Quota`: so many requests per window per API key,
            announced in rate-limit headers on every answer; past it, 429 with
            ``Retry-After`` until the window ends. None for none.
        record: Keep a :class:`ReceivedRequest` per request in :attr:`requests`.
            Turn it off for long runs: the counters stay exact and memory stays
            flat (apart from :attr:`attempts` and :attr:`stopped`, one entry per id).
        clock: The monotonic clock for arrival times and the rate limit.

    Attributes:
        clore_api_key: The ``CLORE_API_KEY`` that :meth:`client` sends.
        record: Whether :attr:`requests` is kept.
        requests: Every request received, in arrival order (when ``record``).
        request_count: Requests received.
        attempts: Requests received per deployment id.
        status_counts: Answers given: status codes, and fault names for faults
            that are more than a status (see :attr:`ReceivedRequest.answer`).
        stopped: The ids stopped so far (add ids to start them stopped).
        in_flight: Requests received and not yet answered.
        peak_in_flight: The most requests in flight at once.
        open_connections: Socket connections open right now (socket runner only).

    Example:
        >>> fake = FakeVendorAPI(deployments=["dep-1"])
        >>> fake.script("dep-1", [503, "reset", 200])
    """

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = (DEFAULT_API_KEY,),
        clore_api_key: str = DEFAULT_CLORE_API_KEY,
        deployments: Iterable[str] | None = None,
        idempotent: bool = True,
        faults: FaultPlan | None = None,
        rate_limit: tuple[float, int] | None = None,
        quota: Quota | None = None,
        record: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        keys = tuple(api_keys)
        if isinstance(api_keys, str) or not keys or not all(isinstance(k, str) and k for k in keys):
            raise ValueError("api_keys must be a non-empty collection of non-empty strings")
        if not isinstance(clore_api_key, str) or not clore_api_key:
            raise ValueError("clore_api_key must be a non-empty string")
        self._api_keys = keys
        self._accepted = frozenset(keys)
        self.clore_api_key = clore_api_key
        self._registry = None if deployments is None else frozenset(deployments)
        self._idempotent = idempotent
        self._plan = faults or FaultPlan()
        self._thresholds = thresholds(self._plan)
        self._rng = random.Random(self._plan.seed)  # noqa: S311 - fault injection, not crypto
        self._throttle = None if rate_limit is None else Throttle(*rate_limit)
        if quota is not None and not isinstance(quota, Quota):
            raise ValueError(f"quota must be a Quota or None, not {type(quota).__name__}")
        self._quota = None if quota is None else QuotaWindows(quota)
        self.record = record
        self._clock = clock
        self._scripts: dict[str, deque[Fault | None]] = {}

        self.requests: list[ReceivedRequest] = []
        self.request_count = 0
        self.attempts: Counter[str] = Counter()
        self.status_counts: Counter[int | str] = Counter()
        self.stopped: set[str] = set()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.open_connections = 0

    @property
    def api_key(self) -> str:
        """The first accepted API key: the one :meth:`client` uses."""
        return self._api_keys[0]

    def __repr__(self) -> str:
        # Counters only: the keys must never end up in a log or a test report.
        return (
            f"<FakeVendorAPI requests={self.request_count} stopped={len(self.stopped)} "
            f"in_flight={self.in_flight} open_connections={self.open_connections}>"
        )

    def script(self, deployment_id: str, entries: Iterable[ScriptEntry]) -> None:
        """Queue answers for the next requests for ``deployment_id``, one per request.

        When the queue runs out, the fake answers normally again (random faults
        included). Scripting the same id again appends to its queue.

        Args:
            deployment_id: The (decoded) id the entries apply to.
            entries: ``200`` for a normal answer, an error status such as ``503``,
                a fault name (``"reset"``, ``"drop"``, ``"stall"``, ``"trickle"``,
                ``"garbage"``, ``"mismatch"``, ``"huge"``, ``"redirect"``) or a
                :class:`Fault` for options such as ``Fault.status(429, retry_after=2)``.

        Raises:
            ValueError: For an entry that is none of these (nothing is queued then).

        Example:
            >>> FakeVendorAPI().script("dep-1", [500, 500, "reset", 200])
        """
        faults = [Fault.coerce(entry) for entry in entries]
        self._scripts.setdefault(deployment_id, deque()).extend(faults)

    @overload
    def transport(self, *, library: Literal["httpx"] = ...) -> httpx.AsyncBaseTransport: ...
    @overload
    def transport(self, *, library: Literal["httpx2"]) -> httpx2.AsyncBaseTransport: ...
    def transport(
        self, *, library: Literal["httpx", "httpx2"] = "httpx"
    ) -> httpx.AsyncBaseTransport | httpx2.AsyncBaseTransport:
        """Return an in-process httpx transport that answers from this fake (no sockets).

        Faults raise what httpx raises for them over a real socket: a reset
        ``httpx.ReadError``, a drop ``httpx.RemoteProtocolError``, a stall or a
        slow trickle ``httpx.ReadTimeout`` once the request's read timeout passes.

        Args:
            library: ``"httpx"``, or ``"httpx2"`` (the ``httpx2`` extra) for an
                ``httpx2.AsyncBaseTransport`` that answers with httpx2's
                responses and raises httpx2's exceptions: for an
                ``httpx2.AsyncClient(transport=...)``, or a client on httpx2.

        Returns:
            A transport for ``httpx.AsyncClient(transport=...)`` (or httpx2's)
            or ``AsyncVendorClient(transport=...)``.

        Raises:
            InvalidRequestError: ``library`` is neither, or is ``"httpx2"``
                without httpx2 installed.

        Example:
            >>> import httpx2  # doctest: +SKIP
            >>> http_client = httpx2.AsyncClient(  # doctest: +SKIP
            ...     transport=FakeVendorAPI().transport(library="httpx2")
            ... )
        """
        return fake_transport(self, named(library))

    @asynccontextmanager
    async def serve(self, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve this fake over HTTP/1.1 on a real socket, on asyncio or trio.

        Keep-alive connections stay open until the client closes them or a
        fault closes them; leaving the block closes the listener and every
        connection.

        Args:
            host: The address to listen on.
            port: The port; 0 picks a free one.

        Yields:
            The base URL, e.g. ``http://127.0.0.1:54321``.

        Example:
            >>> async def main():
            ...     async with FakeVendorAPI().serve() as base_url:
            ...         ...
        """
        async with serve_fake(self, host=host, port=port) as base_url:
            yield base_url

    @contextmanager
    def serve_in_thread(
        self, *, host: str = "127.0.0.1", port: int = 0, backend: str = "asyncio"
    ) -> Iterator[str]:
        """Serve on a real socket from an event loop in a new thread (for sync code and benchmarks).

        Args:
            host: The address to listen on.
            port: The port; 0 picks a free one.
            backend: The anyio backend of the server's loop.

        Yields:
            The base URL.
        """
        with (
            start_blocking_portal(backend) as portal,
            portal.wrap_async_context_manager(self.serve(host=host, port=port)) as base_url,
        ):
            yield base_url

    def client(self, **overrides: Any) -> AsyncVendorClient:
        """Return an ``AsyncVendorClient`` wired to this fake's in-process transport.

        Args:
            **overrides: Any ``AsyncVendorClient`` argument; by default the fake's
                API key, its ``CLORE_API_KEY`` metadata and :meth:`transport`.

        Returns:
            A client to use as ``async with fake.client() as client:``.
        """
        # Imported here so that the fake itself never depends on the client.
        from .._client import AsyncVendorClient

        options: dict[str, Any] = {
            "api_key": self.api_key,
            "base_url": IN_PROCESS_BASE_URL,
            "metadata": {"CLORE_API_KEY": self.clore_api_key},
        }
        options.update(overrides)
        if "transport" not in options and "http_client" not in options:
            options["transport"] = self.transport()
        return AsyncVendorClient(**options)

    # The runners' side, private to this package: _transport and _server call these.

    def _next_request_id(self) -> str:
        """Count a request and return its ``X-Request-Id``."""
        self.request_count += 1
        return f"req-{self.request_count}"

    def _receive(
        self,
        method: str,
        target: str,
        api_key: str | None,
        content_type: str | None,
        body: bytes,
        raw_headers: Iterable[tuple[bytes, bytes]],
    ) -> Reply:
        """Take in one request, decide its answer and update the counters.

        The caller must call :meth:`_finish` once the answer is carried out.

        Args:
            method: The HTTP method.
            target: The request target (percent-encoded path and query).
            api_key: The ``X-API-Key`` header, if any.
            content_type: The ``Content-Type`` header, if any.
            body: The whole request body.
            raw_headers: All headers, for the record.

        Returns:
            What to answer.
        """
        request_id = self._next_request_id()
        self.in_flight += 1
        if self.in_flight > self.peak_in_flight:
            self.peak_in_flight = self.in_flight
        now = self._clock()
        parsed = self._parse(body)
        deployment_id = parse_deployment_id(target)
        attempt: int | None = None
        fault: Fault | None = None
        extra: list[tuple[bytes, bytes]]
        if deployment_id is None:
            status, payload, extra = 404, _error_body(404, "no such route"), []
        else:
            attempt = self.attempts.get(deployment_id, 0) + 1
            self.attempts[deployment_id] = attempt
            fault = self._next_fault(deployment_id)
            if fault is None or fault.kind == "trickle":
                # A trickle is the normal answer, delivered slowly by the runner.
                status, payload, extra = self._answer(
                    method, deployment_id, api_key, content_type, parsed, now
                )
            else:
                if fault.applied:
                    # The work is done; the fault then loses its answer.
                    self._answer(method, deployment_id, api_key, content_type, parsed, now)
                status, payload, extra = self._faulty_answer(fault, deployment_id, target)
        answer = status if fault is None else fault.name
        self.status_counts[answer] += 1
        if self.record:
            self.requests.append(
                ReceivedRequest(
                    request_id=request_id,
                    method=method,
                    path=target,
                    deployment_id=deployment_id,
                    attempt=attempt,
                    arrived_at=now,
                    headers=redact_headers(raw_headers),
                    body=None if parsed is _NOT_JSON else redact_body(parsed),
                    answer=answer,
                )
            )
        headers = [(b"content-type", b"application/json"), (b"x-request-id", request_id.encode())]
        if fault is not None and fault.kind == "huge" and fault.chunked:
            headers.append((b"transfer-encoding", b"chunked"))
        else:
            headers.append((b"content-length", str(len(payload)).encode()))
        headers.extend(extra)
        return Reply(status, headers, payload, _on_the_wire(fault), self._delay())

    def _finish(self) -> None:
        """Mark one request as answered (its fault carried out, or given up on)."""
        self.in_flight -= 1

    def _parse(self, body: bytes) -> Any:
        if not body:
            return _NOT_JSON
        try:
            return json.loads(body)
        # Bad JSON and bad UTF-8 are ValueErrors; absurd nesting is a RecursionError.
        except (ValueError, RecursionError):
            return _NOT_JSON

    def _next_fault(self, deployment_id: str) -> Fault | None:
        script = self._scripts.get(deployment_id)
        if script:
            return script.popleft()
        if not self._thresholds:
            return None
        roll = self._rng.random()
        for upper, fault in self._thresholds:
            if roll < upper:
                return fault
        return None

    def _delay(self) -> float:
        plan = self._plan
        if plan.jitter:
            return plan.latency + plan.jitter * self._rng.random()
        return plan.latency

    def _answer(
        self,
        method: str,
        deployment_id: str,
        api_key: str | None,
        content_type: str | None,
        parsed: Any,
        now: float,
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        # The contract, in the documented order of checks; state changes only on 200.
        if method != "POST":
            return 405, _error_body(405, "use POST"), [(b"allow", b"POST")]
        if api_key is None or api_key not in self._accepted:
            return 401, _error_body(401, "missing or unknown X-API-Key"), []
        if self._throttle is not None:
            wait = self._throttle.take(api_key, now)
            if wait:
                return (
                    429,
                    _error_body(429, "rate limit exceeded"),
                    [(b"retry-after", str(wait).encode())],
                )
        announced: list[tuple[bytes, bytes]] = []
        if self._quota is not None:
            allowed, announced = self._quota.spend(api_key, now)
            if not allowed:
                return 429, _error_body(429, "quota used up"), announced
        if not _is_json(content_type):
            return 400, _error_body(400, "Content-Type must be application/json"), []
        problem = _metadata_problem(parsed)
        if problem is not None:
            return 400, _error_body(400, problem), []
        if self._registry is not None and deployment_id not in self._registry:
            return 404, _error_body(404, "deployment not found"), []
        if not self._idempotent and deployment_id in self.stopped:
            return 404, _error_body(404, "deployment is not running"), []
        self.stopped.add(deployment_id)
        # json.dumps of a lone string takes the C fast path; a dict would not.
        return 200, b'{"deployment_id": ' + json.dumps(deployment_id).encode() + b"}", announced

    def _faulty_answer(
        self, fault: Fault, deployment_id: str, target: str
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        kind = fault.kind
        if kind == "status":
            status = fault.status_code
            assert status is not None
            extra: list[tuple[bytes, bytes]] = []
            if fault.retry_after is not None:
                extra.append((b"retry-after", str(fault.retry_after).encode()))
            return status, _error_body(status, "injected fault"), extra
        if kind == "garbage":
            return 200, GARBAGE_BODY, []
        if kind == "mismatch":
            return 200, json.dumps({"deployment_id": f"{deployment_id}-other"}).encode(), []
        if kind == "huge":
            padding = "x" * HUGE_BODY_BYTES
            return (
                200,
                json.dumps({"deployment_id": deployment_id, "padding": padding}).encode(),
                [],
            )
        if kind == "redirect":
            location = fault.location or DEFAULT_REDIRECT_HOST + target
            return 307, _error_body(307, "moved"), [(b"location", location.encode())]
        # reset, drop and stall send nothing: the runner acts on the connection.
        return 0, b"", []
