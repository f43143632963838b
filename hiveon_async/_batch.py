"""The bounded worker pool behind ``stop_deployments`` and ``stream_stop_deployments``.

A fixed number of workers pull ids from the (async) iterable one at a time and
send each through the same path as ``stop_deployment``; there is never one
task per id, and the input is never materialised. Every id pulled ends with
exactly one outcome, whatever happens: an invalid id fails without I/O; a 401
aborts the batch and the ids not yet sent are ``skipped``; at the deadline the
requests in flight are cancelled and the rest are ``skipped``.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream

from ._call import Call
from ._checks import check_count, check_seconds
from ._engine import Engine
from ._errors import (
    APITimeoutError,
    AuthenticationError,
    ClientClosedError,
    HiveonError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    compact,
)
from ._models import (
    BASE_URL_HINT,
    NO_HEADERS,
    BatchFailedError,
    BatchReport,
    OutcomeStatus,
    StopOutcome,
    StopResult,
)
from ._observe import observe_batch
from ._redact import drop_frames, scrub_chain
from ._request import plain_str, type_name

logger = logging.getLogger("hiveon_async")

__all__ = ["BatchProgress", "OutcomeStream"]

_END = object()
#: After this many 404s in a row from a batch's start, the batch warns about the base URL.
NOT_FOUND_STREAK = 20


@attrs.define(kw_only=True)
class BatchProgress:
    """Live counters of a running batch; poll them for a progress bar.

    Pass one as ``progress=`` to :meth:`~hiveon_async.AsyncVendorClient.stop_deployments`,
    or read ``outcomes.progress`` inside ``stream_stop_deployments``.

    Attributes:
        seen: Unique ids taken from the input so far.
        done: Ids with a final outcome.
        stopped: Ids stopped.
        failed: Ids whose call failed.
        skipped: Ids never sent (abort, deadline).
        retries: Retries spent by finished ids.
        in_flight: Calls running now.
        duplicates: Repeated ids dropped (``stop_deployments`` only).
        requests: Requests sent so far (every attempt), counted as they go out.
        throttled: Answers of 429 so far.
        paused: Seconds the client held all sending for a ``Retry-After``
            since the batch began (a pause in progress counts in full).
        paced_rate: The rate, requests/s, adaptive pacing holds the client to
            after sustained 429s, or None while it is not pacing.
        quota_resets_at: When the server said its quota comes back (Unix time), once
            a 429's ``Retry-After`` beyond ``max_retry_after`` stopped the batch;
            else None.
        waiting_until: While a batch with ``wait_for_quota=True`` holds its
            sending for a used-up quota: when the quota comes back (Unix time).
            None when it is not waiting, or no longer.
    """

    seen: int = 0
    done: int = 0
    stopped: int = 0
    failed: int = 0
    skipped: int = 0
    retries: int = 0
    in_flight: int = 0
    duplicates: int = 0
    requests: int = 0
    throttled: int = 0
    paused: float = 0.0
    paced_rate: float | None = None
    quota_resets_at: float | None = None
    waiting_until: float | None = None

    def _count(self, outcome: StopOutcome) -> None:
        self.done += 1
        self.retries += max(outcome.attempts - 1, 0)
        if outcome.status is OutcomeStatus.STOPPED:
            self.stopped += 1
        elif outcome.status is OutcomeStatus.FAILED:
            self.failed += 1
        else:
            self.skipped += 1


class OutcomeStream:
    """The outcomes of ``stream_stop_deployments``, as they complete.

    Iterate it with ``async for``; breaking out stops the batch.

    Attributes:
        progress: Live counters.
    """

    def __init__(
        self,
        receive: MemoryObjectReceiveStream[StopOutcome],
        progress: BatchProgress,
        source: _Source | None = None,
    ) -> None:
        self._receive = receive
        self._source = source
        self.progress = progress

    def __aiter__(self) -> AsyncIterator[StopOutcome]:
        return self

    async def __anext__(self) -> StopOutcome:
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            # Every outcome is out: now the input's own exception, if reading it raised.
            failure = None if self._source is None else self._source.failure
            if failure is not None:
                raise failure from None
            raise StopAsyncIteration from None


class _Aborted(Exception):
    """Internal: raised at an attempt's start once the batch has stopped sending."""

    def __init__(self, cause: HiveonError) -> None:
        super().__init__(str(cause))
        self.cause = cause


@attrs.frozen
class _Accounted:
    """An outcome counted and given to ``on_outcome``, whose hand-over was cut short."""

    outcome: StopOutcome


class _Source:
    """Hands ids out one at a time from a sync or async iterable, to many workers.

    A sync iterable is pulled directly. An async one is read by a single feeder
    task (:meth:`feed`) into a small buffer: the feeder lives outside the
    batch's deadline, so a deadline never interrupts the input half-way (every
    id can still be accounted for), while cancelling the batch cancels the
    feeder at once, however slowly the input produces.
    """

    def __init__(self, ids: Iterable[str] | AsyncIterable[str], buffer: int) -> None:
        if isinstance(ids, (str, bytes)):
            raise InvalidRequestError("ids must be an iterable of ids, not a single str or bytes")
        self._sync: Iterator[str] | None = None
        self._async: AsyncIterable[str] | None = None
        if isinstance(ids, AsyncIterable):
            self._async = ids
            self._send, self._receive = anyio.create_memory_object_stream[str](buffer)
        elif isinstance(ids, Iterable):
            self._sync = iter(ids)
        else:
            raise InvalidRequestError(
                f"ids must be an iterable or async iterable, not {type(ids).__name__}"
            )
        self._done = False
        #: What the input raised, if it did: no more ids are read after it.
        self.failure: Exception | None = None

    @property
    def needs_feeder(self) -> bool:
        """True for an async iterable: :meth:`feed` must run while ids are pulled."""
        return self._async is not None

    async def feed(self) -> None:
        """Read the async iterable into the buffer until it ends."""
        assert self._async is not None
        iterator = aiter(self._async)
        async with self._send:
            try:
                async for item in iterator:
                    await self._send.send(item)
            except Exception as exc:  # the caller's input: kept, re-raised after
                self.failure = exc
            finally:
                # Cut off (the batch stopped) while the input is suspended: close it now,
                # not at GC (an async generator left suspended is a ResourceWarning on trio).
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    with anyio.CancelScope(shield=True):
                        await aclose()

    async def pull(self) -> object:
        """Return the next id, or ``_END``."""
        if self._done:
            return _END
        if self._sync is not None:
            try:
                item: object = next(self._sync, _END)
            except Exception as exc:  # the caller's input: kept, re-raised after
                self.failure = exc
                item = _END
        else:
            try:
                item = await self._receive.receive()
            except anyio.EndOfStream:
                item = _END
        if item is _END:
            self._done = True
        return item

    def close(self) -> None:
        """Release the buffer (an async iterable's)."""
        if self._async is not None:
            self._send.close()
            self._receive.close()


#: The most characters of a ``repr`` kept as the key of an input that is not a str.
_MAX_KEY_CHARS = 200


def _key(item: object) -> str:
    """The id an input item is known by in outcomes: the str itself, else a short repr.

    Never raises, and never runs the item's own code twice: a str subclass is
    reduced to a plain str (its ``__eq__``/``__hash__`` never reach the
    report), and an object whose ``repr()`` raises is named by its type.
    """
    plain = plain_str(item)
    if plain is not None:
        return plain
    try:
        shown = repr(item)
    except Exception:  # a broken __repr__ must fail only its own id
        return object.__repr__(item)
    shown = plain_str(shown) or object.__repr__(item)
    return shown if len(shown) <= _MAX_KEY_CHARS else shown[:_MAX_KEY_CHARS] + "..."


@attrs.frozen(kw_only=True)
class BatchSettings:
    """The caller's settings for one batch, as the client's batch methods take them."""

    metadata: Mapping[str, str] | None = attrs.field(repr=False)  # holds CLORE_API_KEY
    concurrency: int | None
    deadline: float | None
    on_outcome: Callable[[StopOutcome], Any] | None
    progress: BatchProgress | None
    wait_for_quota: bool = False


class _Batch:
    """One run of the pool. Emits exactly one outcome per id it pulls.

    It listens to every attempt of its calls (:class:`~._engine.AttemptListener`):
    to count requests and 429s, and to stop a call before it is sent once the
    batch has stopped sending.
    """

    def __init__(
        self,
        engine: Engine,
        ids: Iterable[str] | AsyncIterable[str],
        settings: BatchSettings,
        *,
        dedupe: bool,
    ) -> None:
        if engine.closed:
            raise ClientClosedError()
        self.engine = engine
        self.metadata = settings.metadata
        self.concurrency = _check_concurrency(settings.concurrency, engine.max_concurrency)
        self.source = _Source(ids, buffer=self.concurrency)
        self.deadline = _check_deadline(settings.deadline)
        self.on_outcome = settings.on_outcome
        self.wait_for_quota = settings.wait_for_quota
        self._hold_ends: float | None = None  # while waiting for a quota: on the client's clock
        self.progress = BatchProgress() if settings.progress is None else settings.progress
        self.seen: dict[str, StopOutcome | None] | None = {} if dedupe else None
        self.stop_cause: HiveonError | None = None
        self.caller_error: Exception | None = None
        self._workers = anyio.CancelScope()
        # Per worker: the call it is running, or the outcome it has not yet handed over.
        self.slots: list[Call | StopOutcome | _Accounted | None] = [None] * self.concurrency
        self.started = time.monotonic()
        self._paused_before = engine.paused_seconds
        self._not_found_streak: int | None = 0  # None once anything but a 404 came back

    # -- the run ---------------------------------------------------------------

    async def run(self, emit: Callable[[StopOutcome], Awaitable[None]]) -> None:
        """Run to completion, handing each outcome to ``emit``.

        A batch that asks for more concurrency than the client's
        ``max_concurrency`` adds the difference to the client's slots while it runs.
        """
        extra = max(0, self.concurrency - self.engine.max_concurrency)
        self.engine.slots.grow(extra)
        forget = self.engine.notify_on_close(self._client_closed)
        try:
            with _single_error(), observe_batch(self.engine.observer, self.progress):
                async with anyio.create_task_group() as feeding:
                    if self.source.needs_feeder:
                        feeding.start_soon(self.source.feed)
                    await self._run(emit)
                    feeding.cancel_scope.cancel()  # the input is read to its end by now: a no-op
        finally:
            forget()
            self.source.close()
            self.engine.slots.shrink(extra)

    async def _run(self, emit: Callable[[StopOutcome], Awaitable[None]]) -> None:
        with anyio.move_on_after(self.deadline) as scope, _single_error():
            async with anyio.create_task_group() as workers:
                self._workers = workers.cancel_scope
                for slot in range(self.concurrency):
                    workers.start_soon(self._worker, slot, emit)
        if self.caller_error is not None:
            raise self.caller_error
        if scope.cancelled_caught or isinstance(self.stop_cause, ClientClosedError):
            self.stop(APITimeoutError(f"the batch deadline of {self.deadline}s passed"))
            for slot, held in enumerate(self.slots):
                if isinstance(held, _Accounted):
                    await self._emit(slot, held.outcome, emit, accounted=True)
                elif held is not None:
                    outcome = held if isinstance(held, StopOutcome) else self._cut_short(held)
                    await self._emit(slot, outcome, emit)
        if self.stop_cause is not None:
            await self._skip_the_rest(emit)

    def _client_closed(self) -> None:
        """The client is closing: send nothing more, cut the calls in flight short."""
        self.stop(ClientClosedError())
        self._workers.cancel()

    def stop(self, cause: HiveonError) -> None:
        """Stop sending: no new request starts; ids not yet sent end ``skipped``."""
        if self.stop_cause is None:
            self.stop_cause = cause

    # -- the listener of every attempt ------------------------------------------

    def before_attempt(self, call: Call) -> None:
        """Stop the call unsent once the batch has stopped sending."""
        if self.stop_cause is not None:
            raise _Aborted(self.stop_cause)

    def before_send(self, call: Call) -> None:
        """Stop the call unsent, or count the request about to go out."""
        self.before_attempt(call)
        self.progress.requests += 1
        if self._hold_ends is not None and self.engine.clock.now() >= self._hold_ends:
            self._hold_ends = self.progress.waiting_until = None  # the quota came back
        self._pacing()

    def on_answer(self, call: Call, status: int) -> None:
        """Count a 429."""
        if status == 429:
            self.progress.throttled += 1

    def _pacing(self) -> None:
        """Bring the progress's pause and pacing figures up to date."""
        self.progress.paused = self.engine.paused_seconds - self._paused_before
        self.progress.paced_rate = self.engine.paced_rate

    # -- one id ------------------------------------------------------------------

    async def _worker(self, slot: int, emit: Callable[[StopOutcome], Awaitable[None]]) -> None:
        while self.stop_cause is None:
            item = await self._next_unique()
            if item is _END:
                return
            outcome = await self._stop_one(slot, item)
            await self._emit(slot, outcome, emit)

    async def _next_unique(self) -> object:
        while True:
            item = await self.source.pull()
            if item is _END or self.seen is None:
                break
            key = _key(item)
            if key not in self.seen:
                self.seen[key] = None
                break
            self.progress.duplicates += 1
        if item is not _END:
            self.progress.seen += 1
        return item

    async def _stop_one(self, slot: int, item: object) -> StopOutcome:
        key = _key(item)
        if self.stop_cause is not None:
            return _outcome(key, OutcomeStatus.SKIPPED, error=self.stop_cause)
        try:
            call = self.engine.prepare(
                item,  # type: ignore[arg-type]  # anything may come in; prepare checks it
                self.metadata,
            )
        except ClientClosedError as exc:  # closed mid-batch: this id and the rest go unsent
            self.stop(exc)
            return _outcome(key, OutcomeStatus.SKIPPED, error=exc)
        except InvalidRequestError as exc:
            return _outcome(key, OutcomeStatus.FAILED, error=exc)
        except Exception as exc:  # a hostile input fails its own id only
            error = InvalidRequestError(
                f"deployment id {key!r} could not be checked: {type_name(exc)}", deployment_id=key
            )
            return _outcome(key, OutcomeStatus.FAILED, error=error)
        self.slots[slot] = call
        self.progress.in_flight += 1
        try:
            result = await self._send(call)
        except _Aborted as exc:
            return self._cut_short(call, exc.cause)
        except ClientClosedError as exc:
            self.stop(exc)
            return self._cut_short(call, exc)
        except Exception as exc:  # one id's failure never escapes the batch
            if not isinstance(exc, HiveonError):
                # A foreign transport's message may quote what it sent: redact before logging.
                # Frames kept for the log (a bug needs them); dropped from the outcome below.
                scrub_chain(exc, call.secrets, frames=True)
                logger.exception("unexpected error stopping deployment %r", key)
                exc = _unexpected(exc, call)
            if isinstance(exc, AuthenticationError):
                self.stop(exc)
            elif isinstance(exc, RateLimitedError):
                self._stop_for_quota(exc)
            self._count_not_found(exc)
            return _outcome(
                key,
                OutcomeStatus.FAILED,
                error=exc,
                attempts=call.attempts,
                elapsed=self.engine.elapsed(call),
                maybe_applied=call.maybe_applied,
            )
        finally:
            self.progress.in_flight -= 1
        self._not_found_streak = None
        return _outcome(
            key,
            OutcomeStatus.STOPPED,
            result=result,
            attempts=call.attempts,
            elapsed=self.engine.elapsed(call),
        )

    async def _send(self, call: Call) -> StopResult:
        """Send ``call`` through the engine; with ``wait_for_quota``, again after each reset.

        Raises:
            Exception: What the call's last attempt raised.
        """
        while True:
            try:
                return await self.engine.send(call, self)
            except RateLimitedError as exc:
                if not self._wait_for_reset(exc):
                    raise
            # The same call again once the hold ends, its attempts counted on.
            self.engine.renew(call)

    def _quota_wait(self, error: RateLimitedError) -> float | None:
        """Seconds the quota is gone for, when longer than a call may wait; else None."""
        wait = error.retry_after
        if wait is None or wait <= self.engine.retry.max_retry_after:
            return None
        return wait

    def _wait_for_reset(self, error: RateLimitedError) -> bool:
        """With ``wait_for_quota``, hold all sending until a used-up quota comes back.

        Returns:
            True when the batch waits (the refused call goes again after the
            reset); False when the quota is not used up, waiting is not asked
            for, or the batch's deadline comes first.
        """
        wait = self._quota_wait(error)
        if wait is None or not self.wait_for_quota or self.stop_cause is not None:
            return False
        if time.monotonic() + wait >= self.started + self.deadline:
            return False  # the deadline comes first: stop now, as without waiting
        clock = self.engine.clock
        ends = clock.now() + wait
        if self._hold_ends is None or ends > self._hold_ends + 1:
            logger.warning(
                "the server's quota is used up for %.0fs (Retry-After): "
                "the batch holds all sending until it comes back (wait_for_quota)",
                wait,
            )
        if self._hold_ends is None or ends > self._hold_ends:
            self._hold_ends = ends
            self.progress.waiting_until = clock.wall() + wait
        self.engine.gate.pause(wait)
        return True

    def _stop_for_quota(self, error: RateLimitedError) -> None:
        """Stop sending when the server says its quota is gone for longer than we may wait.

        A 429 whose ``Retry-After`` is beyond ``max_retry_after`` failed its call
        at once; every other id would meet the same answer, and a server that
        counts refused requests (or bans keys that keep knocking) must not see
        them. The ids not yet sent end ``skipped`` with this error as the cause.
        """
        wait = self._quota_wait(error)
        if wait is None:
            return
        if self.progress.quota_resets_at is None:
            self.progress.quota_resets_at = self.engine.clock.wall() + wait
            logger.warning(
                "the server's quota is used up for %.0fs (Retry-After): "
                "the batch sends nothing more; the ids not yet sent are skipped",
                wait,
            )
        self.stop(error)

    def _count_not_found(self, error: HiveonError) -> None:
        """Warn once when the batch's first answers are all 404: the base URL is likely wrong."""
        if self._not_found_streak is None:
            return
        if not isinstance(error, NotFoundError):
            self._not_found_streak = None
            return
        self._not_found_streak += 1
        if self._not_found_streak == NOT_FOUND_STREAK:
            logger.warning(
                "the first %d ids of this batch all answered 404 Not Found at %s: %s",
                NOT_FOUND_STREAK,
                self.engine.base_url,
                BASE_URL_HINT.split(": ", 1)[1],
            )

    def _cut_short(self, call: Call, cause: HiveonError | None = None) -> StopOutcome:
        """The outcome of a call the batch stopped: skipped if nothing was sent, else failed."""
        error = cause or self.stop_cause
        if call.attempts == 0:
            return _outcome(call.deployment_id, OutcomeStatus.SKIPPED, error=error)
        if isinstance(error, APITimeoutError):  # the deadline cut an attempt or a wait short
            error = APITimeoutError(
                f"the batch deadline of {self.deadline}s passed while deployment "
                f"{call.deployment_id!r} was in progress (after {call.attempts} attempts)",
                deployment_id=call.deployment_id,
                attempts=call.attempts,
                maybe_applied=call.maybe_applied,
            )
        return _outcome(
            call.deployment_id,
            OutcomeStatus.FAILED,
            error=error,
            attempts=call.attempts,
            elapsed=self.engine.elapsed(call),
            maybe_applied=call.maybe_applied,
        )

    async def _emit(
        self,
        slot: int,
        outcome: StopOutcome,
        emit: Callable[[StopOutcome], Awaitable[None]],
        *,
        accounted: bool = False,
    ) -> None:
        # Held in the slot until handed over, so a deadline mid-hand-over loses nothing.
        self.slots[slot] = outcome
        try:
            await emit(outcome)
        except anyio.get_cancelled_exc_class():
            # Cancelled while handing it over (a stream whose reader is gone): the outcome is
            # complete, so it is still counted and given to on_outcome; a deadline's
            # hand-over of the held outcome will not count it again.
            if not accounted:
                self.slots[slot] = _Accounted(outcome)
                with anyio.CancelScope(shield=True):
                    await self._account(outcome)
            raise
        self.slots[slot] = None
        if not accounted:
            await self._account(outcome)

    async def _account(self, outcome: StopOutcome) -> None:
        """Count a completed outcome and hand it to ``on_outcome``."""
        self.progress._count(outcome)
        self._pacing()
        if self.on_outcome is not None:
            try:
                returned = self.on_outcome(outcome)
                if inspect.isawaitable(returned):
                    await returned
            except Exception as exc:  # the caller's own error: stop everything and re-raise it
                if self.caller_error is None:
                    self.caller_error = exc
                    self._workers.cancel()

    async def _skip_the_rest(self, emit: Callable[[StopOutcome], Awaitable[None]]) -> None:
        while (item := await self._next_unique()) is not _END:
            await self._emit(
                0, _outcome(_key(item), OutcomeStatus.SKIPPED, error=self.stop_cause), emit
            )


def _unexpected(exc: Exception, call: Call) -> HiveonError:
    """Wrap an exception that is not ours (a bug, or a foreign transport's) for an outcome."""
    error = HiveonError(
        f"unexpected {type(exc).__name__} for deployment {call.deployment_id!r}",
        deployment_id=call.deployment_id,
        attempts=call.attempts,
        maybe_applied=call.maybe_applied,
    )
    error.__cause__ = exc
    return error


@contextmanager
def _single_error() -> Iterator[None]:
    """Raise the one real error of a task group, not an ExceptionGroup around it.

    Workers never raise for an id's failure; what can escape is the caller's
    own exception (from ``on_outcome`` or the body of a stream), and the caller
    should see it as they raised it.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        real = [leaf for leaf in leaves if not isinstance(leaf, anyio.get_cancelled_exc_class())]
        if len(real) == 1:
            raise real[0] from None
        if not real and leaves:
            raise leaves[0] from None
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found.extend(_leaves(exc))
        else:
            found.append(exc)
    return found


def _outcome(
    deployment_id: str,
    status: OutcomeStatus,
    *,
    result: StopResult | None = None,
    error: HiveonError | None = None,
    attempts: int = 0,
    elapsed: float = 0.0,
    maybe_applied: bool = False,
) -> StopOutcome:
    if error is not None and status is OutcomeStatus.FAILED:
        # Kept for the batch's life (a report of a million ids keeps a million): the
        # type, message and attributes stay, the frames (and their locals) go, and
        # the response is packed.
        drop_frames(error)
        compact(error)
    return StopOutcome(
        deployment_id=deployment_id,
        status=status,
        result=result,
        error=error,
        attempts=attempts,
        elapsed=elapsed,
        maybe_applied=maybe_applied,
    )


def _check_concurrency(concurrency: int | None, default: int) -> int:
    if concurrency is None:
        return default
    return check_count("concurrency", concurrency)


def _check_deadline(deadline: float | None) -> float:
    if deadline is None:
        return math.inf
    try:
        return check_seconds("deadline", deadline)
    except InvalidRequestError:
        raise InvalidRequestError(
            f"deadline must be seconds > 0 or None, got {deadline!r}"
        ) from None


async def run_report(
    engine: Engine, ids: Iterable[str] | AsyncIterable[str], settings: BatchSettings
) -> BatchReport:
    """Run a batch to the end and return its report (one outcome per unique id)."""
    batch = _Batch(engine, ids, settings, dedupe=True)
    seen = batch.seen
    assert seen is not None

    async def keep(outcome: StopOutcome) -> None:
        result = outcome.result
        if result is not None and result.headers:
            # A report of a million ids would keep a million sets of headers: its
            # results keep the rest (on_outcome has seen them whole).
            outcome = attrs.evolve(outcome, result=attrs.evolve(result, headers=NO_HEADERS))
        seen[outcome.deployment_id] = outcome

    await batch.run(keep)
    outcomes: dict[str, StopOutcome] = {}
    for key, outcome in seen.items():
        assert outcome is not None
        outcomes[key] = outcome
    report = BatchReport(
        outcomes=outcomes,
        duplicates=batch.progress.duplicates,
        elapsed=time.monotonic() - batch.started,
        throttled=batch.progress.throttled,
        paused=batch.progress.paused,
        paced_rate=batch.progress.paced_rate,
        quota_resets_at=batch.progress.quota_resets_at,
    )
    failure = batch.source.failure
    if failure is not None:
        raise BatchFailedError(
            f"reading the ids raised {type_name(failure)} after {len(outcomes)} ids; "
            "error.report holds the outcome of each of them, and the exception is the cause",
            report=report,
        ) from failure
    return report


@asynccontextmanager
async def stream(
    engine: Engine, ids: Iterable[str] | AsyncIterable[str], settings: BatchSettings
) -> AsyncIterator[OutcomeStream]:
    """Run a batch in the background, yielding a stream of outcomes as they complete."""
    batch = _Batch(engine, ids, settings, dedupe=False)
    send, receive = anyio.create_memory_object_stream[StopOutcome](batch.concurrency)

    async def produce() -> None:
        async with send:
            await batch.run(send.send)

    with _single_error():
        async with anyio.create_task_group() as group, receive:
            group.start_soon(produce)
            try:
                yield OutcomeStream(receive, batch.progress, batch.source)
            finally:
                # Leaving early (break, error) stops the batch; in-flight calls are cancelled.
                group.cancel_scope.cancel()
