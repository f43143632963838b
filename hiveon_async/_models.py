"""What calls return: StopResult for one call; StopOutcome, BatchReport and its error for many."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping

import attrs

from ._errors import HiveonError
from ._quota import RateLimitState
from ._response_headers import ResponseHeaders

__all__ = [
    "BASE_URL_HINT",
    "NO_HEADERS",
    "BatchFailedError",
    "BatchReport",
    "OutcomeStatus",
    "StopOutcome",
    "StopResult",
]


#: No headers: the ``headers`` of a result made without a response.
NO_HEADERS: Mapping[str, str] = ResponseHeaders()


@attrs.frozen(kw_only=True)
class StopResult:
    """The server's answer to a successful stop, and how the call went.

    The same facts an error carries when a call fails (``request_id``,
    ``attempts``, ``rate_limit``, ``headers``, ``elapsed``), so that a log line
    or a metric reads both sides alike.

    Attributes:
        deployment_id: The id of the deployment that was stopped, as the
            server confirmed it.
        request_id: The server's ``X-Request-Id`` for the answer, or None.
        attempts: Requests sent for the call, the answered one included (1
            unless earlier attempts failed and were retried).
        elapsed: Seconds from the call's start to this answer: waiting for a
            connection slot and a turn under the rate limit, retries and their
            waits included.
        rate_limit: What the answer's rate-limit headers said (``RateLimit``,
            ``RateLimit-Policy``, ``X-RateLimit-*``), parsed; None when it had
            none.
        headers: The answer's headers, names lower-cased, repeated ones joined
            with ``", "``. Any header that carries a credential, and any
            credential a server echoed back, reads ``[redacted]``. In a
            :class:`BatchReport` an outcome's result keeps none (empty): a
            report of a million ids would keep a million sets; ``on_outcome``
            and the stream see them. Not compared by ``==``.

    Example:
        >>> result = await client.stop_deployment("dep-1")  # doctest: +SKIP
        >>> print(result.request_id, result.attempts, f"{result.elapsed:.3f}s")  # doctest: +SKIP
    """

    deployment_id: str
    request_id: str | None = None
    attempts: int = 1
    elapsed: float = 0.0
    rate_limit: RateLimitState | None = None
    headers: Mapping[str, str] = attrs.field(default=NO_HEADERS, repr=False, eq=False)


class OutcomeStatus(str, enum.Enum):  # noqa: UP042 - StrEnum would change str() for users
    """How one id of a batch ended."""

    #: The server confirmed the stop.
    STOPPED = "stopped"
    #: The call failed; ``StopOutcome.error`` says why.
    FAILED = "failed"
    #: Never sent: the batch was aborted, cancelled or ran out of time first.
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


@attrs.frozen(kw_only=True)
class StopOutcome:
    """One id's final answer in a batch.

    Attributes:
        deployment_id: The id as given.
        status: ``stopped``, ``failed`` or ``skipped``.
        result: The :class:`StopResult` when stopped, else None.
        error: Why it failed or was skipped, else None.
        attempts: Requests sent for this id (0 when none was).
        elapsed: Seconds from the first attempt to the final answer.
        maybe_applied: An attempt may have reached the server although the id
            did not end ``stopped`` (a timeout or dropped connection after the
            request was sent, a 5xx, or a 2xx whose body was unusable). A later
            404 may then mean "already stopped".
    """

    deployment_id: str
    status: OutcomeStatus
    result: StopResult | None = None
    error: HiveonError | None = None
    attempts: int = 0
    elapsed: float = 0.0
    maybe_applied: bool = False

    @property
    def ok(self) -> bool:
        """True when the deployment was stopped."""
        return self.status is OutcomeStatus.STOPPED


@attrs.frozen(kw_only=True)
class BatchReport:
    """Every id's outcome, one per unique id, in first-seen input order.

    Iterate it for the outcomes, index it by deployment id, or use the
    filtered views.

    Attributes:
        outcomes: Id to outcome, in first-seen input order.
        duplicates: How many ids were repeated in the input (and not re-sent).
        elapsed: Seconds the batch took.
        throttled: Answers of 429 the batch got (each retried call counts each time).
        paused: Seconds all sending was held for a server (a 503's ``Retry-After``,
            rate-limit headers saying nothing remains, or a window that counts refusals).
        paced_rate: The rate, requests/s, the client held sending to when the batch
            ended (learned from 429s or read from rate-limit headers), or None.
        quota_resets_at: When the server said its quota comes back (Unix time), if a
            429's ``Retry-After`` beyond ``max_retry_after`` stopped the batch: the
            ids not yet sent are then ``skipped`` with that error. Else None.

    Example:
        >>> report = await client.stop_deployments(ids)  # doctest: +SKIP
        >>> report.ok, len(report.failed), report["dep-1"].status  # doctest: +SKIP
    """

    outcomes: Mapping[str, StopOutcome] = attrs.field(repr=False)
    duplicates: int = 0
    elapsed: float = 0.0
    throttled: int = 0
    paused: float = 0.0
    paced_rate: float | None = None
    quota_resets_at: float | None = None

    def _with(self, status: OutcomeStatus) -> list[StopOutcome]:
        return [outcome for outcome in self.outcomes.values() if outcome.status is status]

    @property
    def stopped(self) -> list[StopOutcome]:
        """The outcomes of ids that were stopped."""
        return self._with(OutcomeStatus.STOPPED)

    @property
    def failed(self) -> list[StopOutcome]:
        """The outcomes of ids whose call failed."""
        return self._with(OutcomeStatus.FAILED)

    @property
    def skipped(self) -> list[StopOutcome]:
        """The outcomes of ids that were never sent."""
        return self._with(OutcomeStatus.SKIPPED)

    @property
    def ok(self) -> bool:
        """True when every id was stopped."""
        return all(outcome.ok for outcome in self.outcomes.values())

    def __len__(self) -> int:
        return len(self.outcomes)

    def __iter__(self) -> Iterator[StopOutcome]:
        return iter(self.outcomes.values())

    def __getitem__(self, deployment_id: str) -> StopOutcome:
        return self.outcomes[deployment_id]

    def __contains__(self, deployment_id: object) -> bool:
        return deployment_id in self.outcomes

    def __repr__(self) -> str:
        return (
            f"BatchReport(total={len(self)}, stopped={len(self.stopped)}, "
            f"failed={len(self.failed)}, skipped={len(self.skipped)}, "
            f"duplicates={self.duplicates}, elapsed={self.elapsed:.3f}, "
            f"throttled={self.throttled}, paused={self.paused:.3f})"
        )

    def raise_for_failures(self) -> None:
        """Raise unless every id was stopped.

        Raises:
            BatchFailedError: Some ids failed or were skipped; the error holds
                the report, and its message counts them and quotes the first
                few errors.
        """
        if self.ok:
            return
        bad = [outcome for outcome in self.outcomes.values() if not outcome.ok]
        examples = "; ".join(f"{outcome.deployment_id}: {outcome.error}" for outcome in bad[:3])
        hint = ""
        if not self.stopped and all(_is_404(outcome) for outcome in bad):
            hint = f" ({BASE_URL_HINT})"
        raise BatchFailedError(
            f"{len(bad)} of {len(self)} deployments were not stopped "
            f"({len(self.failed)} failed, {len(self.skipped)} skipped){hint}: {examples}",
            report=self,
        )


#: Said when every id of a batch answered 404: the usual cause is a base URL with extra path.
BASE_URL_HINT = (
    "every id answered 404 Not Found: check the base URL, which must be the API root "
    "(https://api.hiveon.ai), without /vendors/v1"
)


def _is_404(outcome: StopOutcome) -> bool:
    error = outcome.error
    return error is not None and getattr(error, "status_code", None) == 404


class BatchFailedError(HiveonError):
    """Raised by :meth:`BatchReport.raise_for_failures` when some ids did not stop.

    Attributes:
        report: The report, with every outcome.
    """

    def __init__(self, message: str, *, report: BatchReport) -> None:
        super().__init__(message)
        self.report = report
