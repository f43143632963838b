"""The core of ``hiveon-async stop`` and ``demo``: one batch, its outcomes, and how it ends.

Each outcome is journalled first, then counted, then printed, all in the
batch's ``on_outcome`` (so an outcome that completed is written even if the
run is interrupted a moment later). Ctrl-C or SIGTERM stops the run: no new
request starts, the requests in flight are cancelled (their ids are not
journalled, so a resumed run sends them again), and the run ends with 130 or
143. A closed stdout ends it the same way, with 141. A second Ctrl-C exits at
once.
"""

from __future__ import annotations

import enum
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio

from ._batch import BatchProgress
from ._cli_output import Output, Tally, outcome_record
from ._models import StopOutcome

if TYPE_CHECKING:
    from ._cli_ids import IdFeed
    from ._cli_journal import Journal
    from ._cli_progress import ProgressBar
    from ._client import AsyncVendorClient

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_STDOUT_CLOSED",
    "EXIT_TERMINATED",
    "Ending",
    "exit_status",
    "run_batch",
]


class Ending(enum.Enum):
    """How a run ended (:func:`exit_status` turns it into the process's exit status)."""

    #: The input ran out and every id has its outcome (0, or 1 if any was not stopped).
    FINISHED = "finished"
    #: Ctrl-C (SIGINT).
    INTERRUPTED = "interrupted"
    #: SIGTERM.
    TERMINATED = "terminated"
    #: stdout was closed (``| head``): nobody reads the outcomes any more.
    STDOUT_CLOSED = "stdout closed"
    #: The ids or the journal could not be read or written.
    IO_ERROR = "I/O error"


#: Exit statuses: 128 + the signal's number, as a shell reports a process that signal killed.
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_STDOUT_CLOSED = 128 + 13  # SIGPIPE (not in the signal module on Windows)
EXIT_TERMINATED = 128 + signal.SIGTERM

_SIGNALLED = {signal.SIGINT: Ending.INTERRUPTED, signal.SIGTERM: Ending.TERMINATED}


def exit_status(ending: Ending, tally: Tally) -> int:
    """Return the process's exit status for a run that ended so.

    Args:
        ending: How it ended.
        tally: What it did.

    Returns:
        0 when every id was stopped; 1 when any failed or was skipped (or the
        run could not read or write a file); 130 after Ctrl-C, 143 after
        SIGTERM, 141 when stdout was closed.
    """
    if ending is Ending.INTERRUPTED:
        return EXIT_INTERRUPTED
    if ending is Ending.TERMINATED:
        return EXIT_TERMINATED
    if ending is Ending.STDOUT_CLOSED:
        return EXIT_STDOUT_CLOSED
    return 0 if ending is Ending.FINISHED and tally.all_stopped else 1


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _signals() -> AbstractContextManager[AsyncIterator[int]]:
    if sys.platform == "win32":  # pragma: no cover - no signal handlers there; Ctrl-C still works
        return nullcontext(_never())
    return anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM)


async def _never() -> AsyncIterator[int]:  # pragma: no cover - Windows only
    await anyio.sleep_forever()
    yield 0


async def run_batch(
    client: AsyncVendorClient,
    feed: IdFeed,
    *,
    tally: Tally,
    output: Output,
    journal: Journal | None = None,
    bar: ProgressBar | None = None,
    progress: BatchProgress | None = None,
    concurrency: int | None = None,
    deadline: float | None = None,
    metadata: Mapping[str, str] | None = None,
) -> tuple[Ending, str | None]:
    """Stop every id of ``feed``, writing each outcome as it completes.

    Args:
        client: The client to send with.
        feed: The ids (entered already).
        tally: Counts what was written.
        output: Where records go.
        journal: Where records are journalled, if anywhere.
        bar: A progress bar to run meanwhile, if any.
        progress: The batch's live counters (the bar's).
        concurrency: Requests in flight at most.
        deadline: Seconds for the whole batch.
        metadata: Clore metadata for every call.

    Returns:
        How the run ended, and the error message of an ``IO_ERROR``.
    """
    tally.started = time.monotonic()
    ending = Ending.FINISHED
    problem: str | None = None
    progress = progress or BatchProgress()
    run = anyio.CancelScope()

    def stop(how: Ending) -> None:
        nonlocal ending
        if ending is Ending.FINISHED:
            ending = how
            tally.cut_off = progress.in_flight
        feed.stop()
        run.cancel()

    def on_outcome(outcome: StopOutcome) -> None:
        record = outcome_record(outcome)
        # Journal first: if printing fails, the outcome is still on record.
        if journal is not None:
            journal.append({**record, "time": _now()})
        tally.count(record)
        try:
            output.write(record)
        except BrokenPipeError:
            tally.cut_off = progress.in_flight
            feed.stop()  # the batch re-raises it once its workers are stopped
            raise

    async def watch(signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            if ending is Ending.FINISHED:
                stop(_SIGNALLED[signal.Signals(signum)])
            else:  # pragma: no cover - a second Ctrl-C: the user will not wait for the clean-up
                if journal is not None:
                    journal.close()
                os._exit(exit_status(ending, tally))

    async with anyio.create_task_group() as tasks:
        with _signals() as signals:
            tasks.start_soon(watch, signals)
            if journal is not None:
                tasks.start_soon(journal.keep_synced)
            if bar is not None:
                tasks.start_soon(bar.run)
            with run:
                try:
                    async with client.stream_stop_deployments(
                        feed,
                        concurrency=concurrency,
                        deadline=deadline,
                        metadata=metadata,
                        on_outcome=on_outcome,
                        progress=progress,
                    ) as outcomes:
                        async for _ in outcomes:
                            pass  # on_outcome has written it
                except BrokenPipeError:
                    ending = Ending.STDOUT_CLOSED
                except OSError as exc:  # the ids file or the journal
                    ending, problem = Ending.IO_ERROR, str(exc)
            tasks.cancel_scope.cancel()
    return ending, problem
