"""AsyncVendorClient: its lifecycle and the public methods; each call runs through the engine."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any

import httpx

from . import _batch
from ._checks import check_count, check_seconds
from ._clock import Clock
from ._config import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_TIMEOUT,
    RateLimit,
    RetryPolicy,
)
from ._engine import Engine
from ._errors import InvalidRequestError
from ._models import BatchReport, StopOutcome, StopResult
from ._observe import AttemptHook, RetryHook, check_hook
from ._request import default_metadata, resolve_api_key, resolve_base_url
from ._transport import TransportFactory

__all__ = ["AsyncVendorClient"]


class AsyncVendorClient:
    """An async client for the Hiveon vendor API's "stop deployment" call.

    Share one client across your application: it holds the connection pool,
    the rate limiter and the retry budget. Use it as an async context manager,
    or call :meth:`aclose` when done. It may be used from one event loop after
    another (``asyncio.run`` twice, a loop per test): its own pool is opened
    again on each; an ``http_client`` of yours must belong to the running loop.

    Args:
        api_key: The vendor API key (``X-API-Key``). None reads
            ``$HIVEON_API_KEY``.
        base_url: The API's root. None reads ``$HIVEON_BASE_URL``, and without
            it uses ``https://api.hiveon.ai``. ``https``, or plain ``http`` for
            loopback hosts only.
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
            (default 32), and the default concurrency of batches. A batch that
            asks for more raises the bound by the difference while it runs.
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
        on_attempt: Called with an :class:`AttemptInfo` after each attempt (every
            request sent, and how it ended): for metrics or structured logs
            without OpenTelemetry. Sync, run on the event loop: keep it quick.
            If it raises, the call goes on; the first failure is logged.
        on_retry: Called with a :class:`RetryInfo` before each retry's wait;
            same rules as ``on_attempt``.

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
        base_url: str | None = None,
        metadata: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        rate_limit: RateLimit | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        speedups: bool | None = None,
        on_attempt: AttemptHook | None = None,
        on_retry: RetryHook | None = None,
    ) -> None:
        try:
            self._set_up(
                api_key=api_key,
                base_url=base_url,
                metadata=metadata,
                timeout=timeout,
                retry=retry,
                rate_limit=rate_limit,
                max_concurrency=max_concurrency,
                http_client=http_client,
                transport=transport,
                speedups=speedups,
                on_attempt=on_attempt,
                on_retry=on_retry,
            )
        except InvalidRequestError as exc:
            error = exc
        else:
            return
        # Raised from here without the frames below, and without the credentials among
        # this frame's locals: a traceback that captures locals (Sentry...) shows neither.
        del api_key, metadata
        raise error.with_traceback(None)

    def _set_up(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        metadata: Mapping[str, str] | None,
        timeout: float | httpx.Timeout | None,
        retry: RetryPolicy | None,
        rate_limit: RateLimit | None,
        max_concurrency: int,
        http_client: httpx.AsyncClient | None,
        transport: httpx.AsyncBaseTransport | None,
        speedups: bool | None,
        on_attempt: AttemptHook | None,
        on_retry: RetryHook | None,
    ) -> None:
        api_key = resolve_api_key(api_key)
        url = resolve_base_url(base_url)
        default = default_metadata(metadata)
        if retry is None:
            retry = RetryPolicy()
        elif not isinstance(retry, RetryPolicy):
            raise InvalidRequestError(f"retry must be a RetryPolicy, not {type(retry).__name__}")
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise InvalidRequestError(
                f"rate_limit must be a RateLimit or None, not {type(rate_limit).__name__}"
            )
        check_count("max_concurrency", max_concurrency)
        if http_client is not None and transport is not None:
            raise InvalidRequestError("pass http_client or transport, not both")
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise InvalidRequestError("http_client must be an httpx.AsyncClient")
        if timeout is not None:
            resolved = _as_timeout(timeout)
        elif http_client is not None:
            resolved = http_client.timeout
        else:
            resolved = _as_timeout(DEFAULT_TIMEOUT)

        self._base_url = url
        self._retry = retry
        self._rate_limit = rate_limit
        self._max_concurrency = max_concurrency
        self._engine = Engine(
            api_key=api_key,
            base_url=url,
            metadata=default,
            retry=retry,
            rate_limit=rate_limit,
            max_concurrency=max_concurrency,
            transports=TransportFactory(
                http_client=http_client,
                transport=transport,
                timeout=resolved,
                max_concurrency=max_concurrency,
                base_url=url,
                speedups=speedups,
            ),
            clock=Clock(),
            on_attempt=check_hook("on_attempt", on_attempt),
            on_retry=check_hook("on_retry", on_retry),
        )

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
        await self._engine.aclose()

    def __repr__(self) -> str:
        if not hasattr(self, "_engine"):  # construction refused: a traceback may show it
            return f"<{type(self).__name__} (not set up)>"
        return (
            f"{type(self).__name__}(base_url={str(self._base_url)!r}, "
            f"max_concurrency={self._max_concurrency}, retry={self._retry!r}, "
            f"rate_limit={self._rate_limit!r})"
        )

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has been called."""
        return self._engine.closed

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
            RuntimeError: The client is closed, or was closed while the call
                waited to retry (a ``ClientClosedError``, also a ``HiveonError``).
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
        engine = self._engine
        try:
            call = engine.prepare(deployment_id, metadata)
        finally:
            del metadata  # a traceback that captures locals (Sentry...) must not show the key
        return await engine.send(call)

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
            concurrency: Calls in flight at most; default the client's
                ``max_concurrency``. More than that adds the difference to the
                client's slots while the batch runs.
            deadline: Seconds the whole batch may take, or None.
            on_outcome: Called (sync or async) once per outcome as it completes;
                an exception it raises stops the batch and propagates.
            progress: A :class:`BatchProgress` to update live, for progress bars.

        Returns:
            The :class:`BatchReport`: outcomes in first-seen input order.

        Raises:
            InvalidRequestError: ``ids`` is a str or not iterable, or
                ``concurrency``/``deadline`` is invalid; raised before any I/O.
            RuntimeError: The client is closed (a ``ClientClosedError``). Closed
                while the batch runs, the batch instead cancels its calls and
                skips the ids not yet sent.
            BatchFailedError: Reading ``ids`` raised: ``error.report`` holds the
                outcomes of the ids read before, ``error.__cause__`` your exception.

        Example:
            >>> report = await client.stop_deployments(ids, concurrency=16)  # doctest: +SKIP
            >>> print(len(report.stopped), len(report.failed))  # doctest: +SKIP
            >>> report.raise_for_failures()  # doctest: +SKIP
        """
        settings = _batch.BatchSettings(
            metadata=metadata,
            concurrency=concurrency,
            deadline=deadline,
            on_outcome=on_outcome,
            progress=progress,
        )
        del metadata  # a traceback that captures locals (Sentry...) must not show the key
        return await _batch.run_report(self._engine, ids, settings)

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
            concurrency: Calls in flight at most; default the client's
                ``max_concurrency``. More than that adds the difference to the
                client's slots while the batch runs.
            deadline: Seconds the whole batch may take, or None.
            on_outcome: Called (sync or async) once per outcome.
            progress: A :class:`BatchProgress` to update live (the stream's
                ``.progress`` is the same object).

        Returns:
            An async context manager yielding an :class:`OutcomeStream`.

        Raises:
            InvalidRequestError: Invalid arguments; raised before any I/O.
            Exception: Whatever reading ``ids`` raised, as itself, from the
                ``async for`` once every outcome of the ids read before it is out.

        Example:
            >>> async with client.stream_stop_deployments(ids) as outcomes:  # doctest: +SKIP
            ...     async for outcome in outcomes:
            ...         print(outcome.deployment_id, outcome.status)
        """
        return _batch.stream(
            self._engine,
            ids,
            _batch.BatchSettings(
                metadata=metadata,
                concurrency=concurrency,
                deadline=deadline,
                on_outcome=on_outcome,
                progress=progress,
            ),
        )


def _as_timeout(timeout: object) -> httpx.Timeout:
    if isinstance(timeout, httpx.Timeout):
        return timeout
    try:
        return httpx.Timeout(check_seconds("timeout", timeout))
    except InvalidRequestError:
        raise InvalidRequestError(
            f"timeout must be seconds > 0 or an httpx.Timeout, got {timeout!r}"
        ) from None
