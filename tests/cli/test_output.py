"""Records of outcomes, the JSON Lines and table outputs, and the tally."""

from __future__ import annotations

import io
import json

import pytest

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


def table_of(records: list[dict[str, object]], monkeypatch: pytest.MonkeyPatch, width: int) -> str:
    """The table of these records, printed on a console ``width`` columns wide."""
    monkeypatch.setenv("COLUMNS", str(width))
    stream = io.StringIO()
    table = TableOutput(stream)
    for record in records:
        table.write(record)
    table.finish()
    return stream.getvalue()


def failed_record(deployment_id: str) -> dict[str, object]:
    record = outcome_record(FAILED)
    record["deployment_id"] = deployment_id
    return record


@pytest.mark.parametrize(
    ("length", "columns"),
    [
        (36, ["deployment_id", "status", "error"]),  # a UUID: the error still wraps beside it
        (64, ["deployment_id", "status"]),
    ],
)
def test_at_80_columns_the_table_never_cuts_an_id(
    monkeypatch: pytest.MonkeyPatch, length: int, columns: list[str]
) -> None:
    """Each id stays whole on one line; the other columns wrap or are left out, and it says so."""
    long_id = "d" * (length - 4) + "-end"
    text = table_of([failed_record(long_id), outcome_record(STOPPED)], monkeypatch, 80)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(f" {long_id} " in line for line in lines)
    assert any(" dep-1 " in line for line in lines)
    header = next(line for line in lines if "deployment_id" in line)
    assert header.replace("┃", " ").split() == columns
    assert "left out at this width: see --output jsonl" in text
    if "error" in columns:
        assert "ServerError 503" in text


def test_an_id_wider_than_the_console_is_folded_not_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 128-character id at 80 columns is folded over two lines, every character kept."""
    long_id = "".join(str(number % 10) for number in range(127)) + "Z"
    text = table_of([failed_record(long_id)], monkeypatch, 80)
    cells = [
        line.split("│")[1].strip()
        for line in text.splitlines()
        if line.startswith("│") and line.split("│")[1].strip()
    ]
    assert "".join(cells) == long_id


def test_a_wide_console_shows_every_column(monkeypatch: pytest.MonkeyPatch) -> None:
    """With room to spare, all five columns, no caption; short ids need no room."""
    text = table_of([failed_record("x" * 64)], monkeypatch, 200)
    assert "left out" not in text
    for header in ("deployment_id", "status", "attempts", "elapsed", "error"):
        assert header in text
    assert "deployment_id" in table_of([], monkeypatch, 80)
