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
from hiveon_async._models import BASE_URL_HINT

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
    "throttling_text",
]

#: Failed or skipped records kept for the summary to quote (the rest are in the output).
EXAMPLES_SHOWN = 5
#: 404s in a row, from the first outcome, that make the summary suspect the base URL
#: (the library warns after as many).
NOT_FOUND_STREAK = 20


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
        """Print the table, as wide as the console; the id column is never cut.

        The id is what an operator acts on: its column is as wide as the
        longest id (folded over lines only when that id is wider than the
        console). The error wraps; where the console is too narrow for every
        column, ``elapsed``, ``attempts``, ``error`` and ``status`` are left
        out, in that order, and a caption says so.
        """
        from rich.console import Console
        from rich.table import Column, Table
        from rich.text import Text

        console = Console(file=self._stream or sys.stdout)
        cells: list[tuple[str, ...]] = [
            (
                record["deployment_id"],
                record["status"],
                str(record["attempts"]),
                f"{record['elapsed']:.3f}s",
                error_text(record["error"]),
            )
            for record in self.records
        ]
        shown, id_width = _table_layout(cells, console.width)
        columns = [
            Column(TABLE_HEADERS[0], width=id_width, overflow="fold"),
            *(Column(TABLE_HEADERS[index], no_wrap=index != ERROR) for index in shown[1:]),
        ]
        left_out = [header for index, header in enumerate(TABLE_HEADERS) if index not in shown]
        caption = None
        if left_out:
            *most, last = left_out
            named = f"{', '.join(most)} and {last}" if most else last
            caption = f"({named} left out at this width: see --output jsonl)"
        table = Table(*columns, caption=caption)
        for row in cells:
            # Text, not str: an id or a message is never parsed as rich markup.
            table.add_row(*(Text(row[index]) for index in shown))
        console.print(table)


#: The table's columns; the first is the id, which is never cut.
TABLE_HEADERS = ("deployment_id", "status", "attempts", "elapsed", "error")
#: The index of the error column (it wraps; the others stay on one line).
ERROR = 4
#: Columns left out, in this order, while the table is wider than the console.
DROPPED_FIRST = (3, 2, 4, 1)
#: Width the error column needs to be worth keeping (when an error is that long).
ERROR_MIN_WIDTH = 24


def _table_width(widths: list[int]) -> int:
    # Each column has a space either side and a border on its right, plus the left border.
    return sum(widths) + 3 * len(widths) + 1


def _table_layout(cells: list[tuple[str, ...]], width: int) -> tuple[list[int], int]:
    """Return the columns to show (indexes of :data:`TABLE_HEADERS`) and the id's width.

    Args:
        cells: The rows' texts, one per column.
        width: The console's width.

    Returns:
        The columns, the id first, and the id column's width: the longest id,
        or less only when the id alone is wider than the console allows.
    """
    needed = [
        max(len(header), *(len(row[index]) for row in cells)) if cells else len(header)
        for index, header in enumerate(TABLE_HEADERS)
    ]
    needed[ERROR] = min(needed[ERROR], max(ERROR_MIN_WIDTH, len(TABLE_HEADERS[ERROR])))
    shown = list(range(len(TABLE_HEADERS)))
    for index in DROPPED_FIRST:
        if _table_width([needed[column] for column in shown]) <= width:
            break
        shown.remove(index)
    others = _table_width([needed[column] for column in shown[1:]]) + 2  # the id's own spaces
    return shown, max(min(needed[0], width - others - 1), 1)


def error_text(error: dict[str, Any] | None) -> str:
    """Return a record's error as one line: ``ServerError 503: message`` (or "")."""
    if error is None:
        return ""
    kind = (
        error["type"] if error["status_code"] is None else f"{error['type']} {error['status_code']}"
    )
    return f"{kind}: {error['message']}"


def throttling_text(throttled: int, paused: float, paced_rate: float | None) -> str:
    """Return what the server's throttling cost a run: ``429s: 37 · paused 4.0s · paced at 42/s``.

    Args:
        throttled: 429 answers.
        paused: Seconds all sending was held for a server's ``Retry-After``.
        paced_rate: Requests/s the client paces itself to, or None when it is not pacing.

    Returns:
        The count of 429s, then the pause and the pace when there are any.

    Example:
        >>> throttling_text(37, 4.04, 41.6), throttling_text(0, 0.0, None)
        ('429s: 37 · paused 4.0s · paced at 42/s', '429s: 0')
    """
    parts = [f"429s: {throttled:,}"]
    if paused > 0:
        parts.append(f"paused {paused:,.1f}s")
    if paced_rate is not None:
        parts.append(f"paced at {paced_rate:,.0f}/s")
    return " · ".join(parts)


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
        throttled: 429 answers (from the batch's progress, at the end).
        paused: Seconds all sending was held for a ``Retry-After`` (likewise).
        paced_rate: Requests/s the client was pacing itself to at the end, or None.
        quota_resets_at: When the server's used-up quota comes back (Unix time), if
            that stopped the run; else None.
        leading_not_found: Outcomes in a row, from the first, that failed 404.
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
    throttled: int = 0
    paused: float = 0.0
    paced_rate: float | None = None
    quota_resets_at: float | None = None
    leading_not_found: int = 0
    cut_off: int = 0
    errors: Counter[str] = attrs.field(factory=Counter)
    examples: list[dict[str, Any]] = attrs.field(factory=list)

    def count(self, record: dict[str, Any]) -> None:
        """Count one record."""
        if self.leading_not_found == self.done and _is_not_found(record):
            self.leading_not_found += 1
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

    @property
    def base_url_hint(self) -> str | None:
        """Return the hint to check the base URL when the 404s suggest it, else None.

        That is when every outcome failed 404 Not Found, or the first
        :data:`NOT_FOUND_STREAK` in a row did and no id was stopped (one
        stopped id proves the base URL right): a base URL with extra path
        (``.../vendors/v1``) makes every id look missing.
        """
        found = self.leading_not_found
        if found and found == self.done:
            return BASE_URL_HINT
        if found >= NOT_FOUND_STREAK and not self.stopped:
            advice = BASE_URL_HINT.split(": ", 1)[1]
            return f"the first {found:,} ids all answered 404 Not Found: {advice}"
        return None


def _is_not_found(record: dict[str, Any]) -> bool:
    error = record["error"]
    return (
        record["status"] == "failed"
        and error is not None
        and error["type"] == "NotFoundError"
        and error["status_code"] == 404
    )
