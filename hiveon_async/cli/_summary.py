"""The end of a run: the table (if any), the one-screen summary on stderr, the exit status.

The summary's first line says what happened and what to do next; a hint to
check the base URL follows when the 404s suggest it. Then rows (stopped,
failed, skipped, requests, retries, throttling, elapsed...), then the kinds of
error and the first few ids that were not stopped, whatever their number.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Iterable
from contextlib import suppress
from typing import Any

import click

from ._journal import Journal
from ._output import Output, Tally, error_text, throttling_text
from ._run import Ending, exit_status

__all__ = ["conclude", "headline", "summary_lines"]

#: Characters of an error message quoted by the summary.
MESSAGE_SHOWN = 100


def headline(ending: Ending, tally: Tally, *, problem: str | None, journal: bool) -> str:
    """Return the summary's first line: what happened to the run, and what to do next.

    Args:
        ending: How the run ended.
        tally: What it did.
        problem: The error of an ``IO_ERROR``.
        journal: Whether the run kept a journal (so running it again resumes).

    Returns:
        One line.
    """
    done = tally.done
    if ending is Ending.FINISHED and tally.quota_resets_at is not None:
        at = time.strftime("%H:%M", time.localtime(tally.quota_resets_at + 59))
        then = (
            f"run the same command with the same --journal after {at} to stop the rest"
            if journal
            else f"add --journal PATH to the same command and run it after {at}"
        )
        return (
            f"The vendor's quota is used up until {at}: {tally.stopped:,} of {done:,} "
            f"stopped, {tally.skipped:,} not sent; {then}."
        )
    if ending is Ending.FINISHED:
        if done == 0:
            reason = "the journal records every id as stopped" if journal else "no ids"
            return f"Nothing to do: {reason}."
        if tally.all_stopped:
            return (
                "Stopped the only deployment."
                if done == 1
                else f"Stopped all {done:,} deployments."
            )
        return (
            f"{tally.stopped:,} of {done:,} deployment{'' if done == 1 else 's'} stopped: "
            f"{tally.failed:,} failed, {tally.skipped:,} skipped."
        )
    how = {
        Ending.INTERRUPTED: "Interrupted (Ctrl-C)",
        Ending.TERMINATED: "Terminated (SIGTERM)",
        Ending.STDOUT_CLOSED: "Stopped early: stdout was closed",
        Ending.IO_ERROR: f"Stopped early: {problem}",
    }[ending]
    of = f" of {tally.total:,}" if tally.total is not None else ""
    then = (
        "run the same command again to stop the rest"
        if journal
        else "add --journal PATH to make a run resumable"
    )
    outcomes = "outcome" if done == 1 and not of else "outcomes"
    return f"{how} after {done:,}{of} {outcomes}; the rest were not sent: {then}."


def summary_lines(
    tally: Tally,
    *,
    headline: str,
    extra: Iterable[tuple[str, str]] = (),
    journal: str | None = None,
) -> list[str]:
    """Return the end-of-run summary, one screen at most.

    Args:
        tally: What the run did.
        headline: The first line (what happened to the run).
        extra: More ``(label, value)`` rows (the demo adds the server's side).
        journal: How to show the journal, when there is one.

    Returns:
        The lines, without line endings.
    """
    elapsed = tally.elapsed
    rate = f"  ({tally.done / elapsed:,.0f} ids/s)" if elapsed > 0 and tally.done else ""
    rows = [
        ("stopped", f"{tally.stopped:,}"),
        ("failed", f"{tally.failed:,}"),
        ("skipped", f"{tally.skipped:,}"),
    ]
    if journal is not None:
        rows.append(("already stopped (journal)", f"{tally.already_stopped:,}"))
    rows += [
        ("requests sent", f"{tally.requests:,}"),
        ("retries", f"{tally.retries:,}"),
        ("throttling", throttling_text(tally.throttled, tally.paused, tally.paced_rate)),
        *extra,
        ("elapsed", f"{elapsed:.1f}s{rate}"),
    ]
    if tally.cut_off:
        rows.append(("cancelled in flight", f"{tally.cut_off:,}  (may have reached the server)"))
    if journal is not None:
        rows.append(("journal", journal))
    width = max(len(label) for label, _ in rows)
    lines = [headline]
    hint = tally.base_url_hint
    if hint is not None:
        lines.append(f"  Hint: {hint}.")
    lines += [f"  {label:<{width}}  {value}" for label, value in rows]
    if tally.errors:
        lines.append(f"  not stopped, by error: {_kinds(tally.errors)}")
    if tally.examples:
        lines.append("  first not stopped:")
        lines += [f"    {_example(record)}" for record in tally.examples]
    return lines


def _kinds(errors: Counter[str]) -> str:
    return ", ".join(f"{kind} x{count:,}" for kind, count in errors.most_common(4))


def _example(record: dict[str, Any]) -> str:
    message = error_text(record["error"]) or record["status"]
    if len(message) > MESSAGE_SHOWN:
        message = message[: MESSAGE_SHOWN - 3] + "..."
    return f"{record['deployment_id']}  {record['status']}  {message}"


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush into the closed pipe is quiet."""
    try:
        stdout = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (CliRunner): nothing to do
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, stdout)
    finally:
        os.close(devnull)


def conclude(
    ending: Ending,
    problem: str | None,
    tally: Tally,
    output: Output,
    *,
    quiet: bool,
    journal: Journal | None = None,
    extra: Iterable[tuple[str, str]] = (),
) -> int:
    """Print the table (if any) and the summary; return the exit status.

    Args:
        ending: How the run ended.
        problem: The error of an ``IO_ERROR``.
        tally: What the run did.
        output: Where records went (a table is printed now).
        quiet: Print no summary.
        journal: The run's journal, if it kept one.
        extra: More summary rows.

    Returns:
        The exit status.
    """
    if ending is not Ending.STDOUT_CLOSED:
        try:
            output.finish()
        except BrokenPipeError:
            ending = Ending.STDOUT_CLOSED
    if ending is Ending.STDOUT_CLOSED:
        _silence_stdout()
    if not quiet:
        shown = None
        if journal is not None:
            torn = journal.torn
            shown = journal.path + (
                f" ({torn} torn line{'' if torn == 1 else 's'} ignored)" if torn else ""
            )
        first = headline(ending, tally, problem=problem, journal=journal is not None)
        lines = summary_lines(tally, headline=first, extra=extra, journal=shown)
        with suppress(BrokenPipeError):  # stderr is closed too (`2>&1 | head`): nobody to tell
            click.echo("\n".join(lines), err=True)
    return exit_status(ending, tally)
