"""Records of outcomes, the JSON Lines and table outputs, and the tally."""

from __future__ import annotations

import io
import json

from hiveon_async.cli._output import (
    JsonLinesOutput,
    NoOutput,
    TableOutput,
    Tally,
    outcome_record,
    output_for,
)

from ._helpers import FAILED, SKIPPED, STOPPED, tally_of


def test_records() -> None:
    """A record holds the documented fields; the error its type, status, message."""
    assert outcome_record(STOPPED) == {
        "deployment_id": "dep-1",
        "status": "stopped",
        "attempts": 2,
        "elapsed": 0.123,
        "error": None,
    }
    assert outcome_record(FAILED)["error"] == {
        "type": "ServerError",
        "status_code": 503,
        "message": "503 Service Unavailable for deployment 'dep-2' [redacted]",
        "maybe_applied": True,
    }
    assert outcome_record(SKIPPED)["error"]["status_code"] is None
    json.dumps([outcome_record(outcome) for outcome in (STOPPED, FAILED, SKIPPED)])


def test_json_lines_are_flushed_one_per_record() -> None:
    """Each record is one line, written at once."""
    stream = io.StringIO()
    output = JsonLinesOutput(stream)
    output.write(outcome_record(STOPPED))
    assert stream.getvalue().count("\n") == 1
    output.write(outcome_record(FAILED))
    output.finish()
    assert [json.loads(line)["deployment_id"] for line in stream.getvalue().splitlines()] == [
        "dep-1",
        "dep-2",
    ]
    NoOutput().write(outcome_record(STOPPED))
    NoOutput().finish()


def test_the_table_never_reads_markup() -> None:
    """Ids and messages are shown as written, ``[redacted]`` included."""
    stream = io.StringIO()
    table = TableOutput(stream)
    for outcome in (STOPPED, FAILED, SKIPPED):
        table.write(outcome_record(outcome))
    assert stream.getvalue() == ""  # nothing before the end
    table.finish()
    text = stream.getvalue()
    assert "dep-1" in text
    assert "ServerError 503" in text
    assert "[redacted]" in text
    assert "APITimeoutError" in text


def test_the_tally_counts_what_was_written() -> None:
    """Counts, requests, retries, error kinds and examples."""
    tally = tally_of(STOPPED, FAILED, SKIPPED)
    assert (tally.done, tally.stopped, tally.failed, tally.skipped) == (3, 1, 1, 1)
    assert (tally.requests, tally.retries) == (6, 4)
    assert tally.errors == {"ServerError 503": 1, "APITimeoutError": 1}
    assert [record["deployment_id"] for record in tally.examples] == ["dep-2", "dep-3"]
    assert not tally.all_stopped
    assert tally_of(STOPPED).all_stopped


def test_a_failure_without_an_error_is_still_counted() -> None:
    """Defensive: a record with no error object counts, with no error kind."""
    tally = Tally()
    tally.count({"deployment_id": "d", "status": "failed", "attempts": 1, "error": None})
    assert (tally.failed, tally.errors, len(tally.examples)) == (1, {}, 1)


def test_output_for() -> None:
    """``--output`` picks the output."""
    assert isinstance(output_for("jsonl"), JsonLinesOutput)
    assert isinstance(output_for("table"), TableOutput)
    assert isinstance(output_for("none"), NoOutput)
