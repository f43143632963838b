"""The end of a run: headline, summary, exit status, and the table printed last."""

from __future__ import annotations

import time

import pytest

from hiveon_async import StopOutcome
from hiveon_async._models import BASE_URL_HINT
from hiveon_async.cli._output import TableOutput, Tally, outcome_record
from hiveon_async.cli._run import Ending, exit_status
from hiveon_async.cli._summary import conclude, headline, summary_lines

from ._helpers import FAILED, SKIPPED, STOPPED, not_found, tally_of


def test_a_failure_without_an_error_is_quoted_by_status() -> None:
    """Defensive: a failed record with no error object is still quoted."""
    tally = Tally()
    tally.count({"deployment_id": "d", "status": "failed", "attempts": 1, "error": None})
    assert "d  failed  failed" in "\n".join(summary_lines(tally, headline="H"))


def test_the_summary_fits_on_one_screen() -> None:
    """At most a headline, the rows and five examples, however many ids failed."""
    tally = tally_of(STOPPED, *[FAILED] * 50)
    tally.cut_off = 3
    lines = summary_lines(tally, headline="H", extra=[("more", "x")], journal="run.journal")
    assert lines[0] == "H"
    assert len(lines) < 24
    text = "\n".join(lines)
    for row in ("already stopped (journal)", "requests sent", "more", "cancelled in flight"):
        assert row in text
    assert "ServerError 503 x50" in text
    assert sum("dep-2  failed" in line for line in lines) == 5
    assert max(len(line) for line in lines) < 160
    plain = summary_lines(tally_of(STOPPED), headline="H")
    assert not any("journal" in line or "not stopped" in line for line in plain)


@pytest.mark.parametrize(
    ("ending", "outcomes", "status", "first_words"),
    [
        (Ending.FINISHED, (STOPPED,), 0, "Stopped the only deployment."),
        (Ending.FINISHED, (STOPPED, STOPPED), 0, "Stopped all 2 deployments."),
        (Ending.FINISHED, (), 0, "Nothing to do: no ids."),
        (Ending.FINISHED, (STOPPED, FAILED), 1, "1 of 2 deployments stopped: 1 failed"),
        (Ending.FINISHED, (SKIPPED,), 1, "0 of 1 deployment stopped: 0 failed, 1 skipped."),
        (Ending.INTERRUPTED, (STOPPED,), 130, "Interrupted (Ctrl-C) after 1 outcome;"),
        (Ending.TERMINATED, (STOPPED,), 143, "Terminated (SIGTERM)"),
        (Ending.STDOUT_CLOSED, (STOPPED,), 141, "Stopped early: stdout was closed"),
        (Ending.IO_ERROR, (STOPPED,), 1, "Stopped early: disk full"),
    ],
)
def test_endings(
    ending: Ending, outcomes: tuple[StopOutcome, ...], status: int, first_words: str
) -> None:
    """Each ending has its exit status and its headline."""
    tally = tally_of(*outcomes)
    assert exit_status(ending, tally) == status
    assert headline(ending, tally, problem="disk full", journal=False).startswith(first_words)


def test_an_interrupted_headline_says_how_to_resume() -> None:
    """With a journal: run again; without: use one."""
    tally = tally_of(STOPPED, STOPPED)
    tally.total = 10
    with_journal = headline(Ending.INTERRUPTED, tally, problem=None, journal=True)
    assert "after 2 of 10 outcomes" in with_journal
    assert "run the same command again" in with_journal
    assert "--journal PATH" in headline(Ending.INTERRUPTED, tally, problem=None, journal=False)


class ClosedTable(TableOutput):
    """A table whose reader has gone away."""

    def finish(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_conclude(capsys: pytest.CaptureFixture[str]) -> None:
    """The summary goes to stderr (unless quiet); a table meeting a closed stdout means 141."""
    tally = tally_of(STOPPED)
    table = TableOutput()
    table.write(outcome_record(STOPPED))
    assert conclude(Ending.FINISHED, None, tally, table, quiet=False) == 0
    captured = capsys.readouterr()
    assert "dep-1" in captured.out
    assert captured.err.startswith("Stopped the only deployment.")
    assert conclude(Ending.FINISHED, None, tally, ClosedTable(), quiet=True) == 141
    assert capsys.readouterr().err == ""


def test_the_summary_shows_what_throttling_cost() -> None:
    """Throttling always has a row; the time paused and the pace show once there are any."""
    tally = tally_of(STOPPED)
    assert "  throttling     429s: 0" in summary_lines(tally, headline="H")
    tally.throttled, tally.paused, tally.paced_rate = 37, 4.04, 41.6
    lines = summary_lines(tally, headline="H")
    assert "  throttling     429s: 37 · paused 4.0s · paced at 42/s" in lines
    tally.throttled, tally.paced_rate = 0, None  # a 503's Retry-After pauses too
    assert "  throttling     429s: 0 · paused 4.0s" in summary_lines(tally, headline="H")


def test_every_id_404_hints_at_the_base_url() -> None:
    """When every id answered 404, the summary says once to check the base URL."""
    lines = summary_lines(tally_of(*(not_found(f"dep-{n}") for n in range(3))), headline="H")
    assert lines[1] == f"  Hint: {BASE_URL_HINT}."
    assert sum("base URL" in line for line in lines) == 1
    assert summary_lines(tally_of(not_found("dep-1")), headline="H")[1].startswith("  Hint:")


def test_twenty_404s_in_a_row_from_the_start_hint_at_the_base_url() -> None:
    """The first 20 in a row, then other failures: the hint; 19, a stop first or after, not."""
    twenty = [not_found(f"dep-{n}") for n in range(20)]
    hint = summary_lines(tally_of(*twenty, FAILED, SKIPPED), headline="H")[1]
    assert hint.startswith(
        "  Hint: the first 20 ids all answered 404 Not Found: check the base URL"
    )
    assert hint.endswith(BASE_URL_HINT.split(": ", 1)[1] + ".")
    for outcomes in (
        [*twenty[:19], FAILED],
        [STOPPED, *twenty],
        [*twenty, STOPPED],  # a stopped id proves the base URL right
        [SKIPPED],
        [FAILED],
    ):
        assert not any(
            "base URL" in line for line in summary_lines(tally_of(*outcomes), headline="H")
        )
    assert tally_of().base_url_hint is None


def test_a_used_up_quota_headline_says_until_when_and_how_to_resume() -> None:
    """The reset time (rounded up to the minute), the journal to resume with, and exit 1."""
    tally = tally_of(STOPPED, SKIPPED, SKIPPED)
    reset = time.mktime((2026, 12, 7, 14, 4, 30, 0, 0, -1))  # 14:04:30 local time
    tally.quota_resets_at = reset

    with_journal = headline(Ending.FINISHED, tally, problem=None, journal=True)
    without = headline(Ending.FINISHED, tally, problem=None, journal=False)

    assert with_journal.startswith("The vendor's quota is used up until 14:05: 1 of 3 stopped")
    assert "run the same command with the same --journal after 14:05" in with_journal
    assert "add --journal PATH to the same command and run it after 14:05" in without
    assert exit_status(Ending.FINISHED, tally) == 1
