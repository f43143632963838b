"""Observability: your hooks, and OpenTelemetry spans and metrics when it is installed.

Hooks (``on_attempt``, ``on_retry``) are plain callables that receive small
frozen records (:class:`AttemptInfo`, :class:`RetryInfo`); they need nothing
installed. OpenTelemetry is used only when ``opentelemetry-api`` is importable
(the ``otel`` extra); it is imported when the first client is built, never by
``import hiveon_async``. Spans are recorded only while a tracer provider is set;
metrics go to the global meter provider (a no-op until one is set).

Nothing here ever sees a credential: records, span attributes and metric
attributes are built from the deployment id, the URL (which holds no
credentials: ``base_url`` refuses them), statuses and error class names.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import attrs
import httpx

from ._call import Call
from ._errors import APIStatusError, HiveonError, InvalidRequestError
from ._redact import redact_text
from ._version import __version__

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.trace import Span

__all__ = [
    "AttemptHook",
    "AttemptInfo",
    "Observer",
    "RetryHook",
    "RetryInfo",
    "check_hook",
    "make_observer",
    "observe_batch",
]

logger = logging.getLogger("hiveon_async")

HookT = TypeVar("HookT")

#: The name of the tracer and the meter.
INSTRUMENTATION = "hiveon_async"
#: Seconds between two looks at whether OpenTelemetry providers have been set.
RECHECK_SECONDS = 1.0
#: The route of every attempt, for ``url.template`` and low-cardinality span names.
URL_TEMPLATE = "/vendors/v1/machines/deployments/{deployment_id}/stop"


@attrs.frozen(kw_only=True)
class AttemptInfo:
    """What one attempt of a stop call came to; handed to an ``on_attempt`` hook.

    Attributes:
        deployment_id: The deployment the call stops.
        attempt: Which attempt this was, from 1.
        status: The HTTP status of the answer, or None when there was none
            (connection failure, timeout, cancellation).
        elapsed: Seconds the attempt took, from sending to its answer or failure.
        error_type: The class name of the attempt's error (``ServerError``,
            ``APITimeoutError``...), or None when it succeeded.
        maybe_applied: True when this or an earlier attempt of the call may have
            reached the server.
    """

    deployment_id: str
    attempt: int
    status: int | None
    elapsed: float
    error_type: str | None
    maybe_applied: bool


@attrs.frozen(kw_only=True)
class RetryInfo:
    """A retry about to wait; handed to an ``on_retry`` hook.

    Attributes:
        deployment_id: The deployment the call stops.
        attempt: The attempt that failed, from 1; the next one is ``attempt + 1``.
        wait: Seconds the call waits before that next attempt.
        cause: What failed, briefly: ``HTTP 503``, or an error's class name
            such as ``APITimeoutError``.
    """

    deployment_id: str
    attempt: int
    wait: float
    cause: str


#: Called after each attempt, on the event loop: keep it quick and do not block.
AttemptHook = Callable[[AttemptInfo], object]
#: Called before each retry's wait, on the event loop: keep it quick and do not block.
RetryHook = Callable[[RetryInfo], object]


def _cause(error: HiveonError) -> str:
    """``HTTP 503``, or the error's class name."""
    if isinstance(error, APIStatusError):
        return f"HTTP {error.status_code}"
    return type(error).__name__


class _Telemetry:
    """The OpenTelemetry side: the tracer, the instruments, the propagator (imported lazily)."""

    def __init__(self, base_url: httpx.URL) -> None:
        from opentelemetry import metrics, propagate, trace

        self._trace = trace
        self._inject = propagate.inject
        self._metrics = metrics
        self._inactive = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
        self._inactive_meters = _inactive_meter_providers()
        #: A tracer provider is set (spans are recorded), as of the last :meth:`active`.
        self.tracing = False
        #: A meter provider is set (measurements are kept), as of the last :meth:`active`.
        self.metering = False
        self._recheck_at = -math.inf
        self.tracer = trace.get_tracer(INSTRUMENTATION, __version__)
        meter = metrics.get_meter(INSTRUMENTATION, __version__)
        self.requests = meter.create_counter(
            "hiveon.requests", unit="{request}", description="Stop requests sent (every attempt)."
        )
        self.retries = meter.create_counter(
            "hiveon.retries", unit="{retry}", description="Retries of stop calls."
        )
        self.throttled = meter.create_counter(
            "hiveon.throttled", unit="{response}", description="Answers of 429 Too Many Requests."
        )
        self.duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of each stop attempt, from sending to its answer or failure.",
        )
        port = base_url.port or (443 if base_url.scheme == "https" else 80)
        self.server: dict[str, Any] = {
            "http.request.method": "POST",
            "server.address": base_url.host,
            "server.port": port,
        }

    def active(self) -> bool:
        """True when a tracer or a meter provider is set; refreshes ``tracing`` and ``metering``.

        Asking OpenTelemetry costs microseconds (it reads the environment), so the
        answer is kept: for good once both providers are set (the API sets each once
        per process), else for :data:`RECHECK_SECONDS`, so that a provider set after
        the client was built is used from then on.
        """
        now = time.monotonic()
        if now >= self._recheck_at:
            self.tracing = not isinstance(self._trace.get_tracer_provider(), self._inactive)
            self.metering = not isinstance(
                self._metrics.get_meter_provider(), self._inactive_meters
            )
            both = self.tracing and self.metering
            self._recheck_at = math.inf if both else now + RECHECK_SECONDS
        return self.tracing or self.metering

    def start_current(
        self, name: str, attributes: dict[str, Any] | None = None
    ) -> tuple[Span, Token[Context]]:
        """Start a span and make it current; returns it and the token to detach."""
        from opentelemetry import context

        span = self.tracer.start_span(name, attributes=attributes)
        return span, context.attach(self._trace.set_span_in_context(span))

    def start_attempt(self, call: Call) -> Span:
        """Start an attempt's HTTP client span (child of the call's) and inject its context."""
        trace = self._trace
        parent = call.span
        span = self.tracer.start_span(
            "POST",
            context=None if parent is None else trace.set_span_in_context(parent),
            kind=trace.SpanKind.CLIENT,
            attributes={
                **self.server,
                "url.full": call.request.url,
                "url.template": URL_TEMPLATE,
                "hiveon.deployment_id": call.deployment_id,
                **({"http.request.resend_count": call.attempts - 1} if call.attempts > 1 else {}),
            },
        )
        carrier: dict[str, str] = {}
        self._inject(carrier, context=trace.set_span_in_context(span))
        if carrier:
            call.request = call.request.with_headers(carrier)
        return span


class Observer:
    """Tells your hooks and OpenTelemetry about each call of one client (and its derived ones).

    Held by the engine; None there when there are no hooks and OpenTelemetry is
    not installed, so that an unobserved call costs one attribute test.
    """

    def __init__(
        self,
        *,
        on_attempt: AttemptHook | None,
        on_retry: RetryHook | None,
        telemetry: _Telemetry | None,
    ) -> None:
        self.on_attempt = on_attempt
        self.on_retry = on_retry
        self.telemetry = telemetry
        self._hooked = on_attempt is not None or on_retry is not None
        self._failed_hooks: set[str] = set()

    @property
    def enabled(self) -> bool:
        """True when anything listens now: a hook, a tracer provider or a meter provider.

        Checked per call and per attempt; OpenTelemetry installed but unused
        costs a clock read (see :meth:`_Telemetry.active`).
        """
        telemetry = self.telemetry
        # Asked first, even with hooks: it refreshes what the spans and metrics go by.
        listening = telemetry is not None and telemetry.active()
        return listening or self._hooked

    # -- one call --------------------------------------------------------------

    @contextmanager
    def observe_call(self, call: Call) -> Iterator[None]:
        """Around a whole call: its ``hiveon.stop_deployment`` span, current while it runs."""
        telemetry = self.telemetry
        if telemetry is None or not telemetry.tracing:
            yield
            return
        from opentelemetry import context
        from opentelemetry.trace import StatusCode

        span, token = telemetry.start_current(
            "hiveon.stop_deployment", {"hiveon.deployment_id": call.deployment_id}
        )
        call.span = span
        outcome, error_type = "failed", None
        try:
            yield
            outcome = "stopped"
        except HiveonError as exc:
            error_type = _error_type(exc, call)
            raise
        except BaseException as exc:
            error_type = type(exc).__qualname__
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                outcome = "cancelled"
            elif call.attempts == 0:
                outcome = "skipped"  # a batch that stopped sending refused it before any attempt
            raise
        finally:
            context.detach(token)
            span.set_attributes(
                {
                    "hiveon.attempts": call.attempts,
                    "hiveon.outcome": outcome,
                    "hiveon.maybe_applied": call.maybe_applied,
                }
            )
            if error_type is not None:
                span.set_attribute("error.type", error_type)
                span.set_status(StatusCode.ERROR, error_type)
            span.end()
            call.span = None

    @contextmanager
    def observe_attempt(self, call: Call) -> Iterator[None]:
        """Around one attempt's exchange: its HTTP client span, metrics and ``on_attempt``."""
        telemetry = self.telemetry
        span = None if telemetry is None or call.span is None else telemetry.start_attempt(call)
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            yield
        except BaseException as exc:
            error = exc
            raise
        finally:
            elapsed = time.perf_counter() - started
            self._attempt_done(call, span, error, elapsed)

    def _attempt_done(
        self, call: Call, span: Span | None, error: BaseException | None, elapsed: float
    ) -> None:
        status = call.status
        error_type = None if error is None else _error_type(error, call)
        telemetry = self.telemetry
        if telemetry is not None and telemetry.metering:
            attributes = dict(telemetry.server)
            if status is not None:
                attributes["http.response.status_code"] = status
            if error_type is not None:
                attributes["error.type"] = error_type
            telemetry.requests.add(1, attributes)
            telemetry.duration.record(elapsed, attributes)
            if status == 429:
                telemetry.throttled.add(1, attributes)
        if span is not None:
            from opentelemetry.trace import StatusCode

            if status is not None:
                span.set_attribute("http.response.status_code", status)
            if error_type is not None:
                span.set_attribute("error.type", error_type)
                span.set_status(StatusCode.ERROR, error_type)
            span.end()
        if self.on_attempt is not None:
            info = AttemptInfo(
                deployment_id=call.deployment_id,
                attempt=call.attempts,
                status=status,
                elapsed=elapsed,
                error_type=None if error is None else type(error).__name__,
                maybe_applied=call.maybe_applied,
            )
            self._call_hook("on_attempt", self.on_attempt, info, call)

    def retrying(self, call: Call, error: HiveonError, wait: float) -> None:
        """A failed attempt will be retried after ``wait`` seconds."""
        telemetry = self.telemetry
        cause = _cause(error)
        if telemetry is not None and telemetry.metering:
            telemetry.retries.add(1, {**telemetry.server, "error.type": _error_type(error, call)})
        span = call.span
        if span is not None:
            span.add_event(
                "hiveon.retry",
                {
                    "hiveon.attempt": call.attempts,
                    "hiveon.retry.wait": wait,
                    "hiveon.retry.cause": cause,
                },
            )
        if self.on_retry is not None:
            info = RetryInfo(
                deployment_id=call.deployment_id, attempt=call.attempts, wait=wait, cause=cause
            )
            self._call_hook("on_retry", self.on_retry, info, call)

    def _call_hook(
        self, name: str, hook: Callable[[Any], object], info: object, call: Call
    ) -> None:
        """Run a hook; one that raises never breaks the call, and is logged once per client."""
        try:
            hook(info)
        except Exception as exc:
            if name in self._failed_hooks:
                return
            self._failed_hooks.add(name)
            # No traceback: a log handler that captures frames' locals would see the engine's.
            logger.warning(
                "the %s hook raised %s: %s (ignored; logged once per client)",
                name,
                type(exc).__name__,
                redact_text(str(exc), call.secrets),
            )


def _error_type(error: BaseException, call: Call) -> str:
    """``error.type`` as the HTTP conventions want it: an error status, else the class name."""
    if isinstance(error, APIStatusError):
        return str(error.status_code)
    if call.status is not None and call.status >= 400:
        return str(call.status)
    return type(error).__qualname__


def check_hook(name: str, hook: HookT) -> HookT:
    """``hook`` itself, once checked to be callable or None.

    Raises:
        InvalidRequestError: It is neither.
    """
    if hook is not None and not callable(hook):
        raise InvalidRequestError(f"{name} must be callable or None, not {type(hook).__name__}")
    return hook


def make_observer(
    *,
    on_attempt: AttemptHook | None,
    on_retry: RetryHook | None,
    base_url: httpx.URL,
) -> Observer | None:
    """The observer of a new client, or None when there is nothing to tell."""
    telemetry = _open_telemetry(base_url)
    if telemetry is None and on_attempt is None and on_retry is None:
        return None
    return Observer(on_attempt=on_attempt, on_retry=on_retry, telemetry=telemetry)


def _inactive_meter_providers() -> tuple[type, ...]:
    """The meter providers that keep nothing: the no-op one, and the API's default proxy."""
    from opentelemetry import metrics

    try:  # private, so looked up with care: without it, the proxy's instruments do nothing
        from opentelemetry.metrics._internal import _ProxyMeterProvider
    except ImportError:  # pragma: no cover - an API version that moved it
        return (metrics.NoOpMeterProvider,)
    return (metrics.NoOpMeterProvider, _ProxyMeterProvider)


def _open_telemetry(base_url: httpx.URL) -> _Telemetry | None:
    """The OpenTelemetry side, or None when ``opentelemetry-api`` is not installed."""
    try:
        return _Telemetry(base_url)
    except ImportError:
        return None


@contextmanager
def observe_batch(observer: Observer | None, progress: Any) -> Iterator[None]:
    """Around a batch: its ``hiveon.stop_deployments`` span, parent of its calls' spans.

    Args:
        observer: The engine's observer, or None.
        progress: The batch's :class:`~hiveon_async.BatchProgress`, read at the end.
    """
    telemetry = None if observer is None else observer.telemetry
    if telemetry is None or not (telemetry.active() and telemetry.tracing):
        yield
        return
    from opentelemetry import context
    from opentelemetry.trace import StatusCode

    # Current while the workers start: each task copies the context, so calls nest under it.
    span, token = telemetry.start_current("hiveon.stop_deployments")
    try:
        yield
    except BaseException as exc:
        span.set_attribute("error.type", type(exc).__qualname__)
        span.set_status(StatusCode.ERROR, type(exc).__qualname__)
        raise
    finally:
        context.detach(token)
        span.set_attributes(
            {
                f"hiveon.batch.{name}": getattr(progress, name)
                for name in (
                    "seen",
                    "stopped",
                    "failed",
                    "skipped",
                    "duplicates",
                    "requests",
                    "retries",
                    "throttled",
                )
            }
        )
        span.end()
