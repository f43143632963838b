"""Helpers of the command-line tests: ids to stop, the parsed output, outcomes to print.

Their vendor is :func:`tests.doubles.served_vendor`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx

from hiveon_async import (
    APITimeoutError,
    NotFoundError,
    OutcomeStatus,
    ServerError,
    StopOutcome,
    StopResult,
)
from hiveon_async.cli._output import Tally, outcome_record


def records(text: str) -> list[dict[str, Any]]:
    """The JSON Lines of an output, parsed."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def journal_stopped(path: Path) -> set[str]:
    """The ids a journal records as stopped (a torn line is skipped)."""
    stopped = set()
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record["status"] == "stopped":
            stopped.add(record["deployment_id"])
    return stopped


def command() -> list[str]:
    """The command line as a process runs it: ``python -m hiveon_async.cli``."""
    return [sys.executable, "-m", "hiveon_async.cli"]


def write_ids(path: Path, count: int, prefix: str = "dep") -> list[str]:
    """Write ``count`` ids to ``path``, one per line; return them."""
    ids = [f"{prefix}-{number:05}" for number in range(count)]
    path.write_text("".join(f"{deployment_id}\n" for deployment_id in ids))
    return ids


# -- outcomes as a batch hands them over --------------------------------------------------


def server_error() -> ServerError:
    """A 503 after four attempts, its message holding what looks like markup."""
    response = httpx.Response(503, request=httpx.Request("POST", "https://api.hiveon.test/x"))
    return ServerError(
        "503 Service Unavailable for deployment 'dep-2' [redacted]",
        response=response,
        body="",
        request_id="req-9",
        deployment_id="dep-2",
        attempts=4,
        maybe_applied=True,
    )


def not_found(deployment_id: str) -> StopOutcome:
    """The outcome of an id the server answered 404 for."""
    response = httpx.Response(404, request=httpx.Request("POST", "https://api.hiveon.test/x"))
    error = NotFoundError(
        f"HTTP 404 Not Found for deployment {deployment_id!r}",
        response=response,
        body="",
        request_id="req-4",
        deployment_id=deployment_id,
        attempts=1,
    )
    return StopOutcome(
        deployment_id=deployment_id, status=OutcomeStatus.FAILED, error=error, attempts=1
    )


STOPPED = StopOutcome(
    deployment_id="dep-1",
    status=OutcomeStatus.STOPPED,
    result=StopResult(deployment_id="dep-1"),
    attempts=2,
    elapsed=0.123456,
)
FAILED = StopOutcome(
    deployment_id="dep-2",
    status=OutcomeStatus.FAILED,
    error=server_error(),
    attempts=4,
    elapsed=3.5,
    maybe_applied=True,
)
SKIPPED = StopOutcome(
    deployment_id="dep-3",
    status=OutcomeStatus.SKIPPED,
    error=APITimeoutError("the batch deadline of 1.0s passed"),
)


def tally_of(*outcomes: StopOutcome) -> Tally:
    """The tally of these outcomes' records."""
    tally = Tally()
    for outcome in outcomes:
        tally.count(outcome_record(outcome))
    return tally
