"""AsyncVendorClient: its lifecycle and the public methods; each call runs through the engine."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any

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
from ._errors import ClientClosedError, InvalidRequestError
from ._http_library import HTTPX, HttpLibrary, library_of
from ._models import BatchReport, StopOutcome, StopResult
from ._observe import AttemptHook, RetryHook, check_hook
from ._policy._shared import resolve_redis_url
from ._request import default_metadata, resolve_api_key, resolve_base_url
from ._transport import TransportFactory

if TYPE_CHECKING:
    from ._http_library import AnyAsyncClient, AnyTimeout, AnyTransport

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
        timeout: Per attempt: seconds, or an ``httpx.Timeout`` (or an
            ``httpx2.Timeout``, which makes the client speak httpx2). Each attempt is
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
        http_client: Your own ``httpx.AsyncClient``, or ``httpx2.AsyncClient``
            (its transport, proxies, TLS settings and default headers are used;
            it is never closed by us, and redirects are never followed whatever
            it says).
        transport: An httpx (or httpx2) transport for the client we build, such
            as ``FakeVendorAPI().transport()``. Not with ``http_client``.

            The client speaks the library of the ``http_client``, ``transport``
            or ``timeout`` you pass: with httpx2's (the ``httpx2`` extra), its
            requests, the responses its errors keep and the exceptions they are
            raised from (``__cause__``) are httpx2's, and its own pool runs on
            httpcore2. Objects of both libraries at once are refused.
        speedups: Use aiohttp's connection pool on asyncio (the ``speedups``
            extra): much faster at high concurrency, same behaviour. None (the
            default) uses it when installed, only for a client we build with
            neither ``transport`` nor a proxy from the environment, and
            never for a client on httpx2 (aiohttp's pool speaks httpx); False
            always uses httpcore's.
        redis_url: Share the key's rate limit with every client, in any process
            or host, that uses the same API key and base URL, through this
            Redis (``redis://``, ``rediss://`` or ``unix://``; the ``redis``
            extra): ``rate_limit``, the rate the server's headers announce,
            the rate learned from 429s (from every process's answers) and
            503 holds. None reads ``$HIVEON_REDIS_URL``; unset, the limit is
            this client's alone. Needs asyncio (refused under trio). See
            "Running many processes" in the docs.
        on_attempt: Called with an :class:`AttemptInfo` after each attempt (every
            request sent, and how it ended): for metrics or structured logs
            without OpenTelemetry. Sync, run on the event loop: keep it quick.
            If it raises, the call goes on; the first failure is logged.
        on_retry: Called with a :class:`RetryInfo` before each retry's wait;
            same rules as ``on_attempt``.

    Raises:
        InvalidRequestError: A missing or malformed key, a bad URL or setting,
            or objects of both httpx and httpx2.

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
        timeout: float | AnyTimeout | None = None,
        retry: RetryPolicy | None = None,
        rate_limit: RateLimit | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        http_client: AnyAsyncClient | None = None,
        transport: AnyTransport | None = None,
        speedups: bool | None = None,
        redis_url: str | None = None,
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
                redis_url=redis_url,
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
        timeout: float | AnyTimeout | None,
        retry: RetryPolicy | None,
        rate_limit: RateLimit | None,
        max_concurrency: int,
        http_client: AnyAsyncClient | None,
        transport: AnyTransport | None,
        speedups: bool | None,
        redis_url: str | None,
        on_attempt: AttemptHook | None,
        on_retry: RetryHook | None,
    ) -> None:
        api_key = resolve_api_key(api_key)
        redis_url = resolve_redis_url(redis_url)
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
        library = library_of(http_client=http_client, transport=transport, timeout=timeout)
        if timeout is not None:
            resolved = _as_timeout(timeout, library)
        elif http_client is not None:
            resolved = http_client.timeout
        else:
            resolved = _as_timeout(DEFAULT_TIMEOUT, library)

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
                library=library,
            ),
            clock=Clock(),
            redis_url=redis_url,
            on_attempt=check_hook("on_attempt", on_attempt),
            on_retry=check_hook("on_retry", on_retry),
        )

    # -- derived clients -------------------------------------------------------------

    def with_options(
        self,
        *,
        timeout: float | AnyTimeout | None = None,
        retry: RetryPolicy | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> AsyncVendorClient:
        """Return a client with other options that shares this one's pool and limits.

        The new client sends through the same connection pool, and under the
        same rate limit, pacing, ``Retry-After`` holds, retry budget and
        ``max_concurrency`` slots: a tighter deadline for one request costs no
        second pool. What is not given is this client's.

        Closing the new client refuses its own further calls and cancels its
        own batches; the pool stays open. Closing this client closes the pool
        for both.

        Args:
            timeout: Per attempt: seconds, or an ``httpx.Timeout``.
            retry: A :class:`RetryPolicy` for the new client's calls: attempts,
                delays, ``deadline`` and ``max_retry_after``. Its ``budget``,
                ``budget_refill`` and ``adaptive`` are not used: the budget
                and the pacing are shared, and stay this client's.
            metadata: Default Clore metadata, merged over this client's.

        Returns:
            The new client.

        Raises:
            InvalidRequestError: A bad option; nothing is sent.
            RuntimeError: This client is closed (a ``ClientClosedError``).

        Example:
            >>> urgent = client.with_options(retry=RetryPolicy(deadline=2.0))  # doctest: +SKIP
            >>> await urgent.stop_deployment("dep-1")  # doctest: +SKIP
        """
        if self._engine.closed:
            raise ClientClosedError()
        try:
            derived = self._derive(timeout=timeout, retry=retry, metadata=metadata)
        except InvalidRequestError as exc:
            error = exc
        else:
            return derived
        del metadata  # a traceback that captures locals (Sentry...) must not show the key
        raise error.with_traceback(None)

    def _derive(
        self,
        *,
        timeout: float | AnyTimeout | None,
        retry: RetryPolicy | None,
        metadata: Mapping[str, str] | None,
    ) -> AsyncVendorClient:
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise InvalidRequestError(f"retry must be a RetryPolicy, not {type(retry).__name__}")
        derived = object.__new__(AsyncVendorClient)
        derived._base_url = self._base_url
        derived._retry = self._retry if retry is None else retry
        derived._rate_limit = self._rate_limit
        derived._max_concurrency = self._max_concurrency
        derived._engine = self._engine.derive(
            retry=retry,
            metadata=metadata,
            timeout=None if timeout is None else _as_timeout(timeout, self._engine.library),
        )
        return derived

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
        """Close the connection pool (only when the client built it). Idempotent.

        A client made by :meth:`with_options` closes only itself: the pool is
        its origin's.
        """
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
        wait_for_quota: bool = False,
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
        - A 429 whose ``Retry-After`` is beyond ``max_retry_after`` (the
          quota is used up) stops sending: the ids not yet sent end
          ``skipped``, and ``report.quota_resets_at`` says when it comes back;
          unless ``wait_for_quota``, which holds sending until then instead.
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
            wait_for_quota: When the server says its quota is used up for longer
                than ``max_retry_after`` (a 429's ``Retry-After``), hold all
                sending until it comes back and go on, instead of stopping,
                as long as the reset comes before ``deadline``.
                ``progress.waiting_until`` says until when.

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
            wait_for_quota=_check_flag("wait_for_quota", wait_for_quota),
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
        wait_for_quota: bool = False,
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
            wait_for_quota: Wait for a used-up quota to come back instead of
                stopping, as in :meth:`stop_deployments`.

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
                wait_for_quota=_check_flag("wait_for_quota", wait_for_quota),
            ),
        )


def _check_flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidRequestError(f"{name} must be True or False, not {type(value).__name__}")
    return value


def _as_timeout(timeout: object, library: HttpLibrary = HTTPX) -> AnyTimeout:
    """The timeout as ``library``'s ``Timeout`` (an httpx2 client's is httpx2's)."""
    if isinstance(timeout, library.http.Timeout):
        return timeout  # type: ignore[no-any-return]  # httpx2's has httpx's shape
    try:
        return library.http.Timeout(check_seconds("timeout", timeout))  # type: ignore[no-any-return]
    except InvalidRequestError:
        raise InvalidRequestError(
            f"timeout must be seconds > 0 or an {library.name}.Timeout, got {timeout!r}"
        ) from None
