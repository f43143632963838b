"""AsyncVendorClient: its lifecycle, the public methods, and the path of one call."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any

import anyio
import httpx

from . import _batch
from ._call import Call
from ._config import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_TIMEOUT,
    RateLimit,
    RetryPolicy,
)
from ._errors import (
    APIConnectionError,
    APITimeoutError,
    HiveonError,
    InvalidRequestError,
)
from ._models import BatchReport, StopOutcome, StopResult
from ._ratelimit import SendGate, Slots
from ._redact import redact_text, safe_request, scrub_chain
from ._request import (
    CLORE_API_KEY,
    STOP_PATH,
    check_base_url,
    check_metadata,
    default_metadata,
    deployment_path_segment,
    encode_body,
    request_headers,
    resolve_api_key,
)
from ._response import (
    BodyTooLargeError,
    UndecodableBodyError,
    parse_stop_result,
    status_error,
    validation_error,
)
from ._retry import CallClock, RetryBudget, is_retryable, retrying
from ._wire import Wire

__all__ = ["AsyncVendorClient"]

logger = logging.getLogger("hiveon_async")

_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)


class AsyncVendorClient:
    """An async client for the Hiveon vendor API's "stop deployment" call.

    Share one client across your application: it holds the connection pool,
    the rate limiter and the retry budget. Use it as an async context manager,
    or call :meth:`aclose` when done.

    Args:
        api_key: The vendor API key (``X-API-Key``). None reads
            ``$HIVEON_API_KEY``.
        base_url: The API's root (default ``https://api.hiveon.ai``).
            ``https``, or plain ``http`` for loopback hosts only.
        metadata: Default Clore metadata merged under each call's. When it has
            no ``CLORE_API_KEY``, ``$CLORE_API_KEY`` supplies one; when neither
            does, each call must bring it (else ``InvalidRequestError`` at the
            call, before any I/O).
        timeout: Per attempt: seconds, or an ``httpx.Timeout``. Each attempt is
            also bounded in total by the sum of its phases, so a server that
            trickles bytes cannot hold it open. None uses 10 seconds, or the
            ``http_client``'s own timeout when you bring one.
        retry: The :class:`RetryPolicy`. None uses the defaults.
        rate_limit: A client-wide :class:`RateLimit`, or None for none (the
            client still paces itself after a 429 unless
            ``RetryPolicy(adaptive=False)``).
        max_concurrency: The most requests in flight at once, client-wide
            (default 32); the default and largest concurrency of batches; and
            the size of the connection pool the client builds.
        http_client: Your own ``httpx.AsyncClient`` (its transport, proxies, TLS
            settings and default headers are used; it is never closed by us,
            and redirects are never followed whatever it says).
        transport: An httpx transport for the client we build, such as
            ``FakeVendorAPI().transport()``. Not with ``http_client``.
        speedups: Use aiohttp's connection pool on asyncio (the ``speedups``
            extra): much faster at high concurrency, same behaviour. None (the
            default) uses it when installed, only for a client we build with
            neither ``transport`` nor a proxy from the environment; False
            always uses httpcore's.

    Raises:
        InvalidRequestError: A missing or malformed key, a bad URL or setting.

    Example:
        >>> async with AsyncVendorClient() as client:  # doctest: +SKIP
        ...     result = await client.stop_deployment("a1b2c3d4-5678")
        ...     print(result.deployment_id)
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        metadata: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        rate_limit: RateLimit | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        speedups: bool | None = None,
    ) -> None:
        self._api_key = resolve_api_key(api_key)
        self._base_url = check_base_url(base_url)
        self._metadata = default_metadata(metadata)
        if retry is None:
            retry = RetryPolicy()
        elif not isinstance(retry, RetryPolicy):
            raise InvalidRequestError(f"retry must be a RetryPolicy, not {type(retry).__name__}")
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise InvalidRequestError(
                f"rate_limit must be a RateLimit or None, not {type(rate_limit).__name__}"
            )
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int):
            raise InvalidRequestError("max_concurrency must be an int")
        if max_concurrency < 1:
            raise InvalidRequestError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if http_client is not None and transport is not None:
            raise InvalidRequestError("pass http_client or transport, not both")
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise InvalidRequestError("http_client must be an httpx.AsyncClient")

        self._retry = retry
        self._rate_limit = rate_limit
        self._max_concurrency = max_concurrency
        if timeout is not None:
            self._timeout = _as_timeout(timeout)
        elif http_client is not None:
            self._timeout = http_client.timeout
        else:
            self._timeout = _as_timeout(DEFAULT_TIMEOUT)
        self._wire = Wire(
            http_client=http_client,
            transport=transport,
            timeout=self._timeout,
            max_concurrency=max_concurrency,
            base_url=self._base_url,
            speedups=speedups,
        )
        self._headers = request_headers(self._api_key)
        base = str(self._base_url)
        self._origin = base[: len(base) - len(self._base_url.raw_path.decode("ascii").rstrip("/"))]
        self._path_prefix = base[len(self._origin) :] + STOP_PATH.split("{", 1)[0]
        self._default_body = self._body_or_none(self._metadata)
        self._slots = Slots(max_concurrency)
        self._gate = SendGate(rate_limit, adaptive=retry.adaptive)
        self._budget = (
            None if retry.budget is None else RetryBudget(retry.budget, retry.budget_refill)
        )
        self._closed = False

    @staticmethod
    def _body_or_none(metadata: dict[str, str]) -> bytes | None:
        """Encode the default body once, when the default metadata is complete."""
        try:
            return encode_body(metadata)
        except InvalidRequestError:
            return None  # the call must bring CLORE_API_KEY; checked then

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> AsyncVendorClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (only when the client built it). Idempotent."""
        self._closed = True
        await self._wire.aclose()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={str(self._base_url)!r}, "
            f"max_concurrency={self._max_concurrency}, retry={self._retry!r}, "
            f"rate_limit={self._rate_limit!r})"
        )

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has been called."""
        return self._closed

    @property
    def base_url(self) -> str:
        """The API root this client talks to."""
        return str(self._base_url)

    @property
    def max_concurrency(self) -> int:
        """The most requests this client has in flight at once."""
        return self._max_concurrency

    # -- one call ------------------------------------------------------------------

    async def stop_deployment(
        self, deployment_id: str, *, metadata: Mapping[str, str] | None = None
    ) -> StopResult:
        """Stop one deployment's container.

        Args:
            deployment_id: The deployment to stop (ASCII letters, digits, ``-``,
                ``_``, ``.``; 1 to 128 characters).
            metadata: Clore metadata for this call, merged over the client's
                default. ``CLORE_API_KEY`` must end up non-empty.

        Returns:
            The server's confirmation.

        Raises:
            RuntimeError: The client is closed.
            InvalidRequestError: Bad id or metadata; nothing was sent.
            AuthenticationError: 401, the API key was refused.
            NotFoundError: 404, no such deployment (see ``maybe_applied``).
            RateLimitedError: 429 after the retries (or a ``Retry-After`` over
                ``max_retry_after``).
            ServerError: 5xx after the retries.
            APIStatusError: Any other non-2xx status.
            APIConnectionError: No response after the retries.
            APITimeoutError: The attempts or the call's deadline timed out.
            ResponseValidationError: A 2xx whose body is not the documented shape.
        """
        call = self._prepare(deployment_id, metadata)
        result, _ = await self._send(call)
        return result

    def _prepare(
        self,
        deployment_id: str,
        metadata: Mapping[str, str] | None,
        abort: Callable[[], None] | None = None,
        progress: _batch.BatchProgress | None = None,
    ) -> Call:
        """Validate one call and build its request; no I/O (internal, used by batches)."""
        if self._closed:
            raise RuntimeError("this AsyncVendorClient is closed")
        segment = deployment_path_segment(deployment_id)
        if metadata is None and self._default_body is not None:
            body = self._default_body
            clore_key = self._metadata[CLORE_API_KEY]
        else:
            merged = {**self._metadata, **check_metadata(metadata)}
            body = encode_body(merged)
            clore_key = merged[CLORE_API_KEY]
        path = f"{self._path_prefix}{segment}/stop"
        return Call(
            deployment_id,
            url=self._origin + path,
            path=path,
            headers=self._headers,
            body=body,
            build=self._wire.build,
            secrets=(self._api_key, clore_key),
            clock=CallClock(self._retry.deadline),
            abort=abort,
            progress=progress,
        )

    async def _send(self, call: Call) -> tuple[StopResult, int]:
        """Run a prepared call through the retry loop; return the result and attempts (internal)."""
        try:
            if call.clock.deadline is None:
                result = await self._attempts(call)
            else:
                with anyio.fail_after(call.clock.deadline - time.monotonic()):
                    result = await self._attempts(call)
        except TimeoutError:
            raise APITimeoutError(
                f"deployment {call.deployment_id!r}: the call's deadline of "
                f"{self._retry.deadline}s passed",
                request=safe_request(call.request),
                deployment_id=call.deployment_id,
                attempts=call.attempts,
                maybe_applied=call.maybe_applied,
            ) from None
        if self._budget is not None:
            self._budget.on_success(call.attempts - 1)
        return result, call.attempts

    async def _attempts(self, call: Call) -> StopResult:
        """The first attempt, then (only if it failed retryably) tenacity's retry loop.

        Most calls succeed at once, so the retry controller is built only when
        needed. It then starts from the first attempt's error (replayed without
        I/O), so every retry decision, the first included, is made in one place.
        """
        try:
            return await self._attempt(call)
        except HiveonError as first:
            if not is_retryable(first):
                raise
            failure: HiveonError | None = first

        async def attempt(call: Call) -> StopResult:
            nonlocal failure
            if failure is not None:
                replayed, failure = failure, None
                raise replayed
            return await self._attempt(call)

        controller = retrying(
            self._retry, self._budget, call.clock, deployment_id=call.deployment_id
        )
        result: StopResult = await controller(attempt, call)
        return result

    async def _attempt(self, call: Call) -> StopResult:
        """Send one attempt: connection slot, gate, I/O, response; raise our error on failure."""
        if call.abort is not None:
            call.abort()
        # The slot before the turn: a turn taken while waiting for a slot would be spent
        # late, with every other such turn, the moment slots free up (a burst past the limit).
        slots = self._slots
        if not slots.try_take():
            await slots.take()
        try:
            sent_at = await self._gate.wait_turn()
            if call.abort is not None:
                call.abort()
            call.attempts += 1
            if call.progress is not None:
                call.progress.requests += 1
            started = time.monotonic()
            call.status = None
            try:
                result = await self._exchange(call, sent_at)
            except anyio.get_cancelled_exc_class():
                call.maybe_applied = True  # cut off mid-exchange: the server may have acted
                raise
            finally:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "POST %s -> %s (attempt %d, %.3fs)",
                        call.path,
                        call.status or "no response",
                        call.attempts,
                        time.monotonic() - started,
                    )
        finally:
            slots.release()
        return result

    async def _exchange(self, call: Call, sent_at: float) -> StopResult:
        """The only place that does I/O: send, read the capped body, interpret it."""
        try:
            answer = await self._wire.roundtrip(call)
        except httpx.TransportError as exc:
            exc.request = safe_request(call.request)
            scrub_chain(exc, call.secrets)  # a parser's message may quote what was sent back
            if not isinstance(exc, _NOT_SENT):
                call.maybe_applied = True
            kind = (
                APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
            )
            raise self._transport_error(kind, f"{type(exc).__name__}: {exc}", call) from exc
        except (BodyTooLargeError, UndecodableBodyError) as exc:
            raise self._unreadable(call, exc) from None

        status = call.status = answer.status
        if status == 429 and call.progress is not None:
            call.progress.throttled += 1
        self._gate.on_response(throttled=status == 429, sent_at=sent_at)
        if 200 <= status < 300:
            parsed = parse_stop_result(answer.body, call.deployment_id)
            if isinstance(parsed, StopResult):
                return parsed
            call.maybe_applied = True  # the server said it acted; only its answer is unusable
            raise validation_error(
                parsed,
                answer.response,
                answer.body,
                deployment_id=call.deployment_id,
                secrets=call.secrets,
                attempts=call.attempts,
                maybe_applied=call.maybe_applied,
            )
        if status >= 500:
            call.maybe_applied = True
        error = status_error(
            answer.response,
            answer.body,
            deployment_id=call.deployment_id,
            secrets=call.secrets,
            attempts=call.attempts,
            maybe_applied=call.maybe_applied,
        )
        if error.retry_after is not None and error.retry_after <= self._retry.max_retry_after:
            self._gate.pause(error.retry_after)
        raise error

    def _unreadable(self, call: Call, exc: BodyTooLargeError | UndecodableBodyError) -> HiveonError:
        response = exc.response
        head = exc.head if isinstance(exc, BodyTooLargeError) else b""
        if 200 <= response.status_code < 300:
            call.maybe_applied = True  # the server said it acted; only its answer is unusable
            reason = (
                "the body is over the 64 KiB cap"
                if isinstance(exc, BodyTooLargeError)
                else f"the body cannot be decoded ({exc})"
            )
            return validation_error(
                reason,
                response,
                head,
                deployment_id=call.deployment_id,
                secrets=call.secrets,
                attempts=call.attempts,
                maybe_applied=call.maybe_applied,
            )
        # An error status with an oversized or undecodable body is still that error.
        if response.status_code >= 500:
            call.maybe_applied = True
        return status_error(
            response,
            head,
            deployment_id=call.deployment_id,
            secrets=call.secrets,
            attempts=call.attempts,
            maybe_applied=call.maybe_applied,
        )

    def _transport_error(
        self, kind: type[APIConnectionError], detail: str, call: Call
    ) -> APIConnectionError:
        return kind(
            f"no response for deployment {call.deployment_id!r}: "
            f"{redact_text(detail, call.secrets)}",
            request=safe_request(call.request),
            deployment_id=call.deployment_id,
            attempts=call.attempts,
            maybe_applied=call.maybe_applied,
        )

    # -- many calls ----------------------------------------------------------------

    async def stop_deployments(
        self,
        ids: Iterable[str] | AsyncIterable[str],
        *,
        metadata: Mapping[str, str] | None = None,
        concurrency: int | None = None,
        deadline: float | None = None,
        on_outcome: Callable[[StopOutcome], Any] | None = None,
        progress: _batch.BatchProgress | None = None,
    ) -> BatchReport:
        """Stop many deployments with bounded load; return one outcome per unique id.

        A fixed pool of ``concurrency`` workers pulls ids from ``ids`` lazily (a
        generator of millions is never materialised) and sends each through the
        same path as :meth:`stop_deployment`: validation, retries, rate limit.
        The failure of one id never raises and never cancels the others.

        - An invalid id ends ``failed`` with :class:`InvalidRequestError`;
          nothing is sent for it.
        - A repeated id is stopped once and counted in ``report.duplicates``.
        - A 401 aborts the batch: no new request starts, and the ids not yet
          sent end ``skipped`` carrying the :class:`AuthenticationError`.
        - At ``deadline``, calls in flight are cancelled (``failed``, with
          ``maybe_applied``) and the rest end ``skipped``. The rest of the
          input is still read, to account for every id.

        Args:
            ids: Deployment ids: any iterable or async iterable of str.
            metadata: Clore metadata for every call, merged over the client's.
            concurrency: Calls in flight at most; default (and maximum) the
                client's ``max_concurrency``.
            deadline: Seconds the whole batch may take, or None.
            on_outcome: Called (sync or async) once per outcome as it completes;
                an exception it raises stops the batch and propagates.
            progress: A :class:`BatchProgress` to update live, for progress bars.

        Returns:
            The :class:`BatchReport`: outcomes in first-seen input order.

        Raises:
            InvalidRequestError: ``ids`` is a str or not iterable, or
                ``concurrency``/``deadline`` is invalid; raised before any I/O.

        Example:
            >>> report = await client.stop_deployments(ids, concurrency=16)  # doctest: +SKIP
            >>> print(len(report.stopped), len(report.failed))  # doctest: +SKIP
            >>> report.raise_for_failures()  # doctest: +SKIP
        """
        return await _batch.run_report(
            self,
            ids,
            metadata=metadata,
            concurrency=concurrency,
            deadline=deadline,
            on_outcome=on_outcome,
            progress=progress,
        )

    def stream_stop_deployments(
        self,
        ids: Iterable[str] | AsyncIterable[str],
        *,
        metadata: Mapping[str, str] | None = None,
        concurrency: int | None = None,
        deadline: float | None = None,
        on_outcome: Callable[[StopOutcome], Any] | None = None,
        progress: _batch.BatchProgress | None = None,
    ) -> AbstractAsyncContextManager[_batch.OutcomeStream]:
        """Stop many deployments, yielding each outcome as it completes.

        The same pool and rules as :meth:`stop_deployments`, but nothing is kept
        after an outcome is yielded, so memory stays O(concurrency) however
        many ids pass through. For the same reason the stream does not remember
        ids it has finished: a repeated id is stopped again (stopping is
        idempotent); de-duplicate upstream, or use :meth:`stop_deployments`.
        Leaving the ``async with`` block early (``break``, an exception) stops
        the batch: calls in flight are cancelled and no new request starts.

        Args:
            ids: Deployment ids: any iterable or async iterable of str.
            metadata: Clore metadata for every call, merged over the client's.
            concurrency: Calls in flight at most; default (and maximum) the
                client's ``max_concurrency``.
            deadline: Seconds the whole batch may take, or None.
            on_outcome: Called (sync or async) once per outcome.
            progress: A :class:`BatchProgress` to update live (the stream's
                ``.progress`` is the same object).

        Returns:
            An async context manager yielding an :class:`OutcomeStream`.

        Raises:
            InvalidRequestError: Invalid arguments; raised before any I/O.

        Example:
            >>> async with client.stream_stop_deployments(ids) as outcomes:  # doctest: +SKIP
            ...     async for outcome in outcomes:
            ...         print(outcome.deployment_id, outcome.status)
        """
        return _batch.stream(
            self,
            ids,
            metadata=metadata,
            concurrency=concurrency,
            deadline=deadline,
            on_outcome=on_outcome,
            progress=progress,
        )


def _as_timeout(timeout: object) -> httpx.Timeout:
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise InvalidRequestError(
            f"timeout must be seconds > 0 or an httpx.Timeout, got {timeout!r}"
        )
    return httpx.Timeout(float(timeout))
