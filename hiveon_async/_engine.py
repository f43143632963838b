"""The engine: one call's path, shared by the client and the batch.

    prepare     check the id and metadata, build the request (no I/O)   _request.py
    send        the call's deadline, then the retry loop:
      decide    after each failure: retry, and how long to wait          _policy/_retry.py
      attempt   a connection slot                                        _policy/_slots.py
                a turn at the gate (rate limit, pacing, pauses)          _policy/_gate.py
                the transport sends and reads the body                   _transport/
                the answer becomes a StopResult or a typed error         _response.py

One engine per client owns the connection slots, the rate gate, the retry
budget, the clock and the transport, so every call and every batch of a
client shares them.
"""

from __future__ import annotations

import copy
import logging
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

import anyio
import httpx

from ._call import Call
from ._clock import Clock
from ._config import RateLimit, RetryPolicy
from ._errors import (
    APIStatusError,
    APITimeoutError,
    ClientClosedError,
    HiveonError,
    InvalidRequestError,
)
from ._models import StopResult
from ._observe import AttemptHook, Observer, RetryHook, make_observer
from ._policy._gate import SendGate
from ._policy._headers import parse_rate_limit
from ._policy._retry import GiveUp, RetryBudget, decide, describe
from ._policy._shared import SharedLimit
from ._policy._slots import Slots
from ._redact import hide_in_logs, safe_request
from ._request import (
    CLORE_API_KEY,
    STOP_PATH,
    check_metadata,
    deployment_path_segment,
    encode_body,
    request_headers,
)
from ._response import connection_error, interpret
from ._transport import AttemptTimeout, StopRequest, Transport, TransportFactory

if TYPE_CHECKING:
    from ._http_library import AnyTimeout

__all__ = ["AttemptListener", "Engine"]

logger = logging.getLogger("hiveon_async")


class AttemptListener(Protocol):
    """Told about each attempt of a call (a batch counts requests and may stop sending)."""

    def before_attempt(self, call: Call) -> None:
        """Called before an attempt waits for a slot and its turn at the gate.

        Raise to stop the call without sending: the exception propagates from
        :meth:`Engine.send`.
        """

    def before_send(self, call: Call) -> None:
        """Called when the attempt's turn has come, just before it is sent; may raise too."""

    def on_answer(self, call: Call, status: int) -> None:
        """Called with the status of each answer."""


class Engine:
    """Prepares and sends stop calls for one client.

    Args:
        api_key: The vendor API key (already checked).
        base_url: The API root (already checked).
        metadata: The default Clore metadata (already checked).
        retry: The retry policy.
        rate_limit: The configured rate limit, or None.
        max_concurrency: Requests in flight at most.
        transports: Settles how requests travel.
        clock: The time, and how to wait.
        redis_url: Share the rate limit (configured, announced and learned) and 503
            holds through this Redis with every client on the same key and base
            URL, or None (already checked).
        on_attempt: Called after each attempt, or None.
        on_retry: Called before each retry's wait, or None.
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: httpx.URL,
        metadata: dict[str, str],
        retry: RetryPolicy,
        rate_limit: RateLimit | None,
        max_concurrency: int,
        transports: TransportFactory,
        clock: Clock,
        redis_url: str | None = None,
        on_attempt: AttemptHook | None = None,
        on_retry: RetryHook | None = None,
    ) -> None:
        self.retry = retry
        self.base_url = str(base_url)
        self.max_concurrency = max_concurrency
        self.clock = clock
        self._api_key = api_key
        self._metadata = metadata
        self._headers = request_headers(api_key)
        base = str(base_url)
        self._origin = base[: len(base) - len(base_url.raw_path.decode("ascii").rstrip("/"))]
        self._path_prefix = base[len(self._origin) :] + STOP_PATH.split("{", 1)[0]
        self._default_body = _body_or_none(metadata)
        self._transports = transports
        # What the library the client speaks (httpx or httpx2) raises for "no response".
        self.library = transports.library
        self._build_request = transports.build_request
        self._timeout: AttemptTimeout | None = None  # None: the transport's own
        self._shared = _Shared(transports, self)
        self.slots = Slots(max_concurrency, on_new_loop=self._on_new_loop)
        shared = (
            None
            if redis_url is None
            else SharedLimit(redis_url, api_key=api_key, base_url=self.base_url)
        )
        self.gate = SendGate(rate_limit, adaptive=retry.adaptive, clock=clock, shared=shared)
        self.gate.max_hold = retry.max_retry_after
        self.budget = (
            None if retry.budget is None else RetryBudget(retry.budget, retry.budget_refill)
        )
        self._closed = False
        # Told when the client closes (a running batch cancels its calls): per batch, not per call.
        self._on_close: set[Callable[[], None]] = set()
        # Hooks and OpenTelemetry; None when there is neither, so an unobserved call pays nothing.
        self.observer: Observer | None = make_observer(
            on_attempt=on_attempt,
            on_retry=on_retry,
            base_url=base_url,
        )
        self._hide_secrets()

    def _hide_secrets(self) -> None:
        # The sending libraries' loggers redact this client's credentials while it lives.
        forget = hide_in_logs((self._api_key, self._metadata.get(CLORE_API_KEY, "")))
        weakref.finalize(self, forget)

    def derive(
        self,
        *,
        retry: RetryPolicy | None,
        metadata: Mapping[str, str] | None,
        timeout: AnyTimeout | None,
    ) -> Engine:
        """Return an engine with other options that shares this one's transport and policy.

        The slots, the gate (rate limit, pacing, holds), the retry budget, the
        clock and the transport are this engine's own objects; ``retry`` (its
        attempts, delays, deadline and ``max_retry_after``), the default
        metadata (merged over this engine's) and the timeout are the new
        engine's. Closing the new engine closes none of what it shares.

        Raises:
            InvalidRequestError: Bad metadata (checked here, before any I/O).
        """
        child = copy.copy(self)
        if retry is not None:
            child.retry = retry
        if metadata is not None:
            child._metadata = {**self._metadata, **check_metadata(metadata)}
            child._default_body = _body_or_none(child._metadata)
        if timeout is not None:
            child._build_request = self._transports.request_builder(timeout)
            child._timeout = self._transports.attempt_timeout(timeout)
        child._closed = False
        child._on_close = set()
        child._hide_secrets()
        self._shared.engines.add(child)
        return child

    @property
    def closed(self) -> bool:
        """True once this engine, or the one it was derived from, is closed."""
        return self._closed or self._shared.closed

    @property
    def pool(self) -> str | None:
        """Which pool sends (see :class:`~._transport.Transport`), or None before the first send."""
        transport = self._shared.transport
        return None if transport is None else transport.pool

    @property
    def paced_rate(self) -> float | None:
        """The rate the client paces sending to, requests/s, or None when it is not pacing.

        Learned from 429s, or read from the server's rate-limit headers; a configured
        RateLimit alone is not pacing.
        """
        return self.gate.paced_rate

    @property
    def paused_seconds(self) -> float:
        """Seconds all sending has been held by servers' ``Retry-After`` so far."""
        return self.gate.paused_total

    def elapsed(self, call: Call) -> float:
        """Seconds since ``call`` started."""
        return self.clock.now() - call.started

    def use_clock(self, clock: Clock) -> None:
        """Read the time and wait through ``clock`` from now on (tests hand in a fake one)."""
        self.clock = self.gate.clock = clock

    async def aclose(self) -> None:
        """Refuse new calls and new attempts, and close the transport. Idempotent.

        Calls waiting to retry end with :class:`ClientClosedError` when they
        wake; a running batch cancels its calls; a request in flight through a
        pool of ours fails as its connection closes, and is not retried.
        Nothing is sent after this returns. An engine made by :meth:`derive`
        closes only itself: the transport is its origin's.
        """
        shared = self._shared
        self._closed = True
        if shared.origin is not self:
            self._notify_close()
            return
        shared.closed = True
        for engine in list(shared.engines):
            engine._notify_close()
        # Shielded: a close cut short would leave sockets to the garbage collector (and a
        # batch closed from its own on_outcome has just cancelled the task running this).
        with anyio.CancelScope(shield=True):
            if self.gate.shared is not None:
                await self.gate.shared.aclose()
            await shared.aclose()

    def _notify_close(self) -> None:
        for notify in list(self._on_close):
            notify()

    def notify_on_close(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (sync, quick) when the client closes; returns the undo."""
        self._on_close.add(callback)
        return lambda: self._on_close.discard(callback)

    # -- prepare ---------------------------------------------------------------

    def prepare(self, deployment_id: str, metadata: Mapping[str, str] | None) -> Call:
        """Validate one call and build its request; no I/O.

        Raises:
            ClientClosedError: The client is closed (also a ``RuntimeError``).
            InvalidRequestError: A bad id or metadata.
        """
        if self.closed:
            raise ClientClosedError()
        try:
            # The id as checked, a plain str, is what is sent and what every message shows.
            deployment_id = segment = deployment_path_segment(deployment_id)
            if metadata is None and self._default_body is not None:
                body = self._default_body
                clore_key = self._metadata[CLORE_API_KEY]
            else:
                body, clore_key = self._encode(metadata)
        except InvalidRequestError as exc:
            refused = exc
        else:
            return self._call(deployment_id, segment, body, clore_key)
        # Raised without the frames below, and without the metadata among this frame's
        # locals: a traceback that captures locals (Sentry...) must not show the key.
        del metadata
        raise refused.with_traceback(None)

    def _call(self, deployment_id: str, segment: str, body: bytes, clore_key: str) -> Call:
        """The prepared call of a checked id and its encoded body."""
        path = f"{self._path_prefix}{segment}/stop"
        now = self.clock.now()
        deadline = self.retry.deadline
        return Call(
            deployment_id,
            request=StopRequest(
                url=self._origin + path,
                path=path,
                headers=self._headers,
                body=body,
                build=self._build_request,
                timeout=self._timeout,
            ),
            secrets=(self._api_key, clore_key),
            started=now,
            deadline=None if deadline is None else now + deadline,
        )

    def renew(self, call: Call) -> None:
        """Make ``call`` ready to be sent again from the start: its deadline starts anew.

        For a call whose retries ended but which its caller sends again (a batch
        that waited for a used-up quota to come back); its attempts count on.
        """
        deadline = self.retry.deadline
        call.deadline = None if deadline is None else self.clock.now() + deadline

    def _encode(self, metadata: Mapping[str, str] | None) -> tuple[bytes, str]:
        """Merge and encode a call's metadata: the body and its ``CLORE_API_KEY``."""
        merged = {**self._metadata, **check_metadata(metadata)}
        return encode_body(merged), merged[CLORE_API_KEY]

    # -- send ------------------------------------------------------------------

    async def send(self, call: Call, listener: AttemptListener | None = None) -> StopResult:
        """Run a prepared call to its end: attempts, retries, the call's deadline.

        Raises:
            HiveonError: The typed error of the last attempt, or
                :class:`~hiveon_async.APITimeoutError` when the deadline passed.
            BaseException: Whatever ``listener.before_attempt`` raised.
        """
        observer = self.observer
        if observer is None or not observer.enabled:
            return await self._send(call, listener)
        with observer.observe_call(call):
            return await self._send(call, listener)

    async def _send(self, call: Call, listener: AttemptListener | None) -> StopResult:
        """:meth:`send`, unobserved."""
        try:
            if call.deadline is None:
                result = await self._attempts(call, listener)
            else:
                try:
                    with anyio.fail_after(call.deadline - self.clock.now()):
                        result = await self._attempts(call, listener)
                except TimeoutError:
                    raise APITimeoutError(
                        f"deployment {call.deployment_id!r}: the call's deadline of "
                        f"{self.retry.deadline}s passed",
                        request=safe_request(call.request.httpx_request),
                        deployment_id=call.deployment_id,
                        attempts=call.attempts,
                        maybe_applied=call.maybe_applied,
                    ) from None
        except HiveonError as error:
            error.elapsed = self.clock.now() - call.started
            raise
        if self.budget is not None:
            self.budget.on_success(call.attempts - 1)
        return result

    async def _attempts(self, call: Call, listener: AttemptListener | None) -> StopResult:
        """The retry loop: attempt; after each failure, do what ``decide`` says."""
        while True:
            try:
                return await self._attempt(call, listener)
            except HiveonError as error:
                verdict = decide(
                    error,
                    attempts=call.attempts,
                    policy=self.retry,
                    budget=self.budget,
                    remaining=None if call.deadline is None else call.deadline - self.clock.now(),
                )
                if isinstance(verdict, GiveUp):
                    if verdict.reason is not None:
                        logger.warning(
                            "not retrying deployment %r after %s: %s",
                            call.deployment_id,
                            describe(error),
                            verdict.reason,
                        )
                    raise
                logger.info(
                    "retrying deployment %r in %.2fs after %s (attempt %d of %d)",
                    call.deployment_id,
                    verdict.delay,
                    describe(error),
                    call.attempts,
                    self.retry.max_attempts,
                )
                if self.observer is not None and self.observer.enabled:
                    self.observer.retrying(call, error, verdict.delay)
            await self.clock.backoff(verdict.delay)

    async def _attempt(self, call: Call, listener: AttemptListener | None) -> StopResult:
        """One attempt: a connection slot, a turn at the gate, the exchange."""
        if self.closed:  # closed while this call waited to retry: send nothing more
            raise self._closed_error(call)
        if listener is not None:
            listener.before_attempt(call)
        # The slot before the turn: a turn taken while waiting for a slot would be spent
        # late, with every other such turn, the moment slots free up (a burst past the limit).
        slots = self.slots
        if not slots.try_take():
            await slots.take()
        try:
            if self._shared.transport is None and not self.closed:
                # Before the turn: making the pool's TLS context takes about 20 ms, and
                # a turn taken first would reach the server that late, bunched with
                # the next (HAProxy's window, opened by its arrival, refused the 21st).
                self._open_transport()
            sent_at = await self.gate.wait_turn()
            if listener is not None:
                try:
                    listener.before_send(call)
                except BaseException:
                    self.gate.done()
                    raise
            call.attempts += 1
            started = self.clock.now()
            call.status = None
            observer = self.observer
            try:
                if observer is None or not observer.enabled:
                    return await self._exchange(call, sent_at, listener)
                with observer.observe_attempt(call):
                    return await self._exchange(call, sent_at, listener)
            except anyio.get_cancelled_exc_class():
                call.maybe_applied = True  # cut off mid-exchange: the server may have acted
                raise
            finally:
                self.gate.done()
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "POST %s -> %s (attempt %d, %.3fs)",
                        call.request.path,
                        call.status or "no response",
                        call.attempts,
                        self.clock.now() - started,
                    )
        finally:
            slots.release()

    async def _exchange(
        self, call: Call, sent_at: float, listener: AttemptListener | None
    ) -> StopResult:
        """Send through the transport, tell the gate how it went, interpret the answer."""
        transport = self._shared.transport or self._open_transport()
        try:
            answer = await transport.send(call.request)
        except self.library.transport_errors as exc:
            raise connection_error(exc, call, self.library) from exc
        status = call.status = answer.status
        if listener is not None:
            listener.on_answer(call, status)
        gate = self.gate
        announced = parse_rate_limit(answer.raw_headers, wall=self.clock.wall())
        if announced is not None:
            gate.advise(announced)
        try:
            result = interpret(
                answer,
                call,
                elapsed=self.clock.now() - call.started,
                rate_limit=announced,
                wall=self.clock.wall,
            )
        except APIStatusError as error:
            retry_after = error.retry_after
            if retry_after is not None and retry_after > self.retry.max_retry_after:
                retry_after = None  # the call gives up at once; nobody waits that long
            gate.on_response(throttled=status == 429, sent_at=sent_at, retry_after=retry_after)
            # A 5xx with Retry-After: the server is overloaded, so every task holds back.
            # A 429's Retry-After is for the refused request (its retry waits that long);
            # the others go on at the rate the gate learns.
            if retry_after is not None and status >= 500:
                gate.pause(retry_after)
            raise
        except BaseException:
            gate.on_response(throttled=False, sent_at=sent_at)
            raise
        gate.on_response(throttled=False, sent_at=sent_at)
        return result

    def _open_transport(self) -> Transport:
        """Open the transport (it opens a pool again on each new event loop by itself)."""
        if self.closed:
            raise ClientClosedError()
        return self._shared.open()

    def _on_new_loop(self) -> None:
        """The client is used from another event loop: drop what belonged to the old one.

        The gate's pacing, bucket and pauses are plain data and carry over; its
        events and its queue of waiters belong to the old loop.
        """
        self.gate.reset_loop_state()

    @staticmethod
    def _closed_error(call: Call) -> ClientClosedError:
        """The error of a call the client's close cut short, with what it had sent."""
        return ClientClosedError(
            deployment_id=call.deployment_id,
            attempts=call.attempts,
            maybe_applied=call.maybe_applied,
        )


class _Shared:
    """What an engine shares with those derived from it: the transport, opened once.

    Attributes:
        origin: The engine made with the client; closing it closes the transport.
        engines: Every engine sharing it (the origin and those derived), to tell
            each when the origin closes.
        closed: True once the origin closed.
        transport: The transport, once the first request opened it.
    """

    __slots__ = ("_closed_unopened", "_factory", "closed", "engines", "origin", "transport")

    def __init__(self, factory: TransportFactory, origin: Engine) -> None:
        self._factory = factory
        self.origin = origin
        self.engines: weakref.WeakSet[Engine] = weakref.WeakSet([origin])
        self.closed = False
        self.transport: Transport | None = None
        self._closed_unopened = False

    def open(self) -> Transport:
        """Open the transport (once: later calls find it set)."""
        self.transport = self._factory.open()
        return self.transport

    async def aclose(self) -> None:
        """Close the transport, or a ``transport=`` that no request opened."""
        if self.transport is not None:
            await self.transport.aclose()
        elif not self._closed_unopened:
            self._closed_unopened = True
            await self._factory.aclose_unopened()


def _body_or_none(metadata: dict[str, str]) -> bytes | None:
    """Encode the default body once, when the default metadata is complete."""
    try:
        return encode_body(metadata)
    except InvalidRequestError:
        return None  # the call must bring CLORE_API_KEY; checked then
