"""What the command line prints per outcome (a record, a table row), and the tally of them.

Records go to stdout (JSON Lines, or a table at the end); the summary, made
from the tally (see ``_summary``), goes to stderr. A record holds the
id, the status, the attempts, the time taken and
the error's type, status code and message (the library redacts messages), and
nothing else: no header and no metadata value is ever printed. rich is
imported only by the function that draws the table.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from typing import IO, Any, Protocol

import attrs

from hiveon_async import StopOutcome

__all__ = [
    "JsonLinesOutput",
    "NoOutput",
    "Output",
    "TableOutput",
    "Tally",
    "TextStream",
    "error_text",
    "outcome_record",
    "output_for",
]

#: Failed or skipped records kept for the summary to quote (the rest are in the output).
EXAMPLES_SHOWN = 5


def outcome_record(outcome: StopOutcome) -> dict[str, Any]:
    """Return the JSON-ready record of one outcome (a line of output, and of the journal).

    Args:
        outcome: The outcome.

    Returns:
        ``deployment_id``, ``status``, ``attempts``, ``elapsed`` (seconds) and
        ``error``: None, or its ``type``, ``status_code`` (None without a
        response), ``message`` and ``maybe_applied`` (an attempt may have
        reached the server).
    """
    error = outcome.error
    return {
        "deployment_id": outcome.deployment_id,
        "status": outcome.status.value,
        "attempts": outcome.attempts,
        "elapsed": round(outcome.elapsed, 3),
        "error": None
        if error is None
        else {
            "type": type(error).__name__,
            "status_code": getattr(error, "status_code", None),
            "message": str(error),
            "maybe_applied": outcome.maybe_applied,
        },
    }


class TextStream(Protocol):
    """What records are written to: a text file, or the space above a progress bar."""

    def write(self, text: str, /) -> int:
        """Write text."""

    def flush(self) -> None:
        """Push it out."""


class Output(Protocol):
    """Where records go."""

    def write(self, record: dict[str, Any]) -> None:
        """Take one record as its outcome completes."""

    def finish(self) -> None:
        """Print whatever waits for the end."""


class NoOutput:
    """No per-id output (the demo's default)."""

    def write(self, record: dict[str, Any]) -> None:
        """Drop the record."""

    def finish(self) -> None:
        """Nothing to print."""


class JsonLinesOutput:
    """One JSON object per line on stdout, flushed as each outcome completes.

    Args:
        stream: Where to write (above the progress bar when it shares the
            terminal); None for ``sys.stdout``.
    """

    def __init__(self, stream: TextStream | None = None) -> None:
        self.stream = stream

    def write(self, record: dict[str, Any]) -> None:
        """Print the record now (a closed pipe raises ``BrokenPipeError``)."""
        stream = self.stream or sys.stdout
        stream.write(json.dumps(record) + "\n")
        stream.flush()

    def finish(self) -> None:
        """Nothing waits for the end."""


class TableOutput:
    """A table of every outcome, printed at the end (it keeps one record per id).

    Args:
        stream: Where to print; None for ``sys.stdout``.
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream
        self.records: list[dict[str, Any]] = []

    def write(self, record: dict[str, Any]) -> None:
        """Keep the record for the table."""
        self.records.append(record)

    def finish(self) -> None:
        """Print the table."""
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table("deployment_id", "status", "attempts", "elapsed", "error")
        for record in self.records:
            # Text, not str: an id or a message is never parsed as rich markup.
            table.add_row(
                Text(record["deployment_id"]),
                Text(record["status"]),
                str(record["attempts"]),
                f"{record['elapsed']:.3f}s",
                Text(error_text(record["error"])),
            )
        Console(file=self._stream or sys.stdout).print(table)


def error_text(error: dict[str, Any] | None) -> str:
    """Return a record's error as one line: ``ServerError 503: message`` (or "")."""
    if error is None:
        return ""
    kind = (
        error["type"] if error["status_code"] is None else f"{error['type']} {error['status_code']}"
    )
    return f"{kind}: {error['message']}"


def output_for(kind: str) -> Output:
    """Return the output for ``--output KIND``: ``jsonl``, ``table`` or ``none``.

    Args:
        kind: The option's value.

    Returns:
        The output.
    """
    if kind == "jsonl":
        return JsonLinesOutput()
    if kind == "table":
        return TableOutput()
    return NoOutput()


@attrs.define(kw_only=True)
class Tally:
    """What a run did, counted from the records it wrote.

    Attributes:
        started: When the run started (``time.monotonic``).
        total: Ids to send, when known (for the progress bar and the summary).
        done: Outcomes written.
        stopped: Ids stopped.
        failed: Ids whose call failed.
        skipped: Ids never sent (the batch was aborted or ran out of time).
        requests: Requests sent for the ids done.
        retries: Requests beyond each id's first.
        already_stopped: Ids the journal recorded as stopped, not sent again.
        cut_off: Requests in flight when the run was interrupted (they may
            have reached the server; their ids are sent again on resume).
        errors: Failed and skipped ids by error kind (``ServerError 503``).
        examples: The first failed or skipped records.
    """

    started: float = attrs.field(factory=time.monotonic)
    total: int | None = None
    done: int = 0
    stopped: int = 0
    failed: int = 0
    skipped: int = 0
    requests: int = 0
    retries: int = 0
    already_stopped: int = 0
    cut_off: int = 0
    errors: Counter[str] = attrs.field(factory=Counter)
    examples: list[dict[str, Any]] = attrs.field(factory=list)

    def count(self, record: dict[str, Any]) -> None:
        """Count one record."""
        self.done += 1
        attempts = record["attempts"]
        self.requests += attempts
        self.retries += max(attempts - 1, 0)
        status = record["status"]
        if status == "stopped":
            self.stopped += 1
            return
        if status == "failed":
            self.failed += 1
        else:
            self.skipped += 1
        error = record["error"]
        if error is not None:
            kind = error["type"]
            self.errors[
                kind if error["status_code"] is None else f"{kind} {error['status_code']}"
            ] += 1
        if len(self.examples) < EXAMPLES_SHOWN:
            self.examples.append(record)

    @property
    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started

    @property
    def all_stopped(self) -> bool:
        """True when no id failed or was skipped."""
        return self.failed == 0 and self.skipped == 0
