"""The core of ``hiveon-async stop`` and ``demo``: one batch, its outcomes, and how it ends.

Each outcome is journalled first, then counted, then printed, all in the
batch's ``on_outcome`` (so an outcome that completed is written even if the
run is interrupted a moment later). Ctrl-C or SIGTERM stops the run: no new
request starts, the requests in flight are cancelled (their ids are not
journalled, so a resumed run sends them again), and the run ends with 130 or
143. A closed stdout ends it the same way, with 141. A second Ctrl-C gives up
on the orderly end: the command exits at once, with no summary.
"""

from __future__ import annotations

import enum
import signal
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio
import attrs
from anyio.abc import TaskStatus

from hiveon_async import BatchProgress, StopOutcome

from ._exit import EXIT_INTERRUPTED, EXIT_STDOUT_CLOSED, EXIT_TERMINATED, CliExit
from ._output import Output, Tally, outcome_record
from ._signals import stop_signals

if TYPE_CHECKING:
    from hiveon_async import AsyncVendorClient

    from ._ids import IdFeed
    from ._journal import Journal
    from ._progress import ProgressBar

__all__ = ["BatchRun", "Ending", "exit_status"]


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


@attrs.define(kw_only=True, eq=False)
class BatchRun:
    """Stop every id of a feed, writing each outcome as it completes; :meth:`run` it once.

    Args:
        client: The client to send with.
        feed: The ids (entered already).
        tally: Counts what was written.
        output: Where records go.
        journal: Where records are journalled, if anywhere.
        bar: A progress bar to run meanwhile, if any.
        progress: The batch's live counters (the bar's).
        concurrency: Requests in flight at most (None: the client's limit).
        deadline: Seconds for the whole batch.
        metadata: Clore metadata for every call.
        wait_for_quota: Wait for a used-up quota to come back instead of stopping.

    Attributes:
        ending: How the run ended (``FINISHED`` until something stops it).
        problem: The error message of an ``IO_ERROR``.
    """

    client: AsyncVendorClient
    feed: IdFeed
    tally: Tally
    output: Output
    journal: Journal | None = None
    bar: ProgressBar | None = None
    progress: BatchProgress = attrs.field(factory=BatchProgress)
    concurrency: int | None = None
    deadline: float | None = None
    metadata: Mapping[str, str] | None = None
    wait_for_quota: bool = False
    ending: Ending = attrs.field(default=Ending.FINISHED, init=False)
    problem: str | None = attrs.field(default=None, init=False)
    _batch: anyio.CancelScope = attrs.field(factory=anyio.CancelScope, init=False)

    async def run(self) -> tuple[Ending, str | None]:
        """Send every id; return how the run ended, and the message of an ``IO_ERROR``.

        Raises:
            CliExit: A second Ctrl-C or SIGTERM: exit now, with no summary.
        """
        self.tally.started = time.monotonic()
        try:
            async with anyio.create_task_group() as tasks:
                await tasks.start(self._watch)
                if self.journal is not None:
                    tasks.start_soon(self.journal.keep_synced)
                if self.bar is not None:
                    tasks.start_soon(self.bar.run)
                with self._batch:
                    await self._send()
                tasks.cancel_scope.cancel()
        except* CliExit as exits:
            raise exits.exceptions[0] from None
        # What throttling cost, for the summary (the records cannot tell).
        self.tally.throttled = self.progress.throttled
        self.tally.paused = self.progress.paused
        self.tally.paced_rate = self.progress.paced_rate
        self.tally.quota_resets_at = self.progress.quota_resets_at
        return self.ending, self.problem

    def stop(self, how: Ending) -> None:
        """End the run early: no new request starts, those in flight are cancelled.

        Args:
            how: The ending to report (the first one given is kept).
        """
        if self.ending is Ending.FINISHED:
            self.ending = how
            self.tally.cut_off = self.progress.in_flight
        self.feed.stop()
        self._batch.cancel()

    async def _send(self) -> None:
        try:
            async with self.client.stream_stop_deployments(
                self.feed,
                concurrency=self.concurrency,
                deadline=self.deadline,
                metadata=self.metadata,
                on_outcome=self._write,
                progress=self.progress,
                wait_for_quota=self.wait_for_quota,
            ) as outcomes:
                async for _ in outcomes:
                    pass  # _write has written it
        except BrokenPipeError:
            self.ending = Ending.STDOUT_CLOSED
        except OSError as exc:  # the ids file or the journal
            self.ending, self.problem = Ending.IO_ERROR, str(exc)

    def _write(self, outcome: StopOutcome) -> None:
        record = outcome_record(outcome)
        # Journal first: if printing fails, the outcome is still on record.
        if self.journal is not None:
            self.journal.append({**record, "time": _now()})
        self.tally.count(record)
        try:
            self.output.write(record)
        except BrokenPipeError:
            self.tally.cut_off = self.progress.in_flight
            self.feed.stop()  # the batch re-raises it once its workers are stopped
            raise

    async def _watch(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with stop_signals() as signals:
            task_status.started()
            async for signum in signals:
                if self.ending is not Ending.FINISHED:
                    # The user will not wait for the orderly end a second time.
                    raise CliExit(exit_status(self.ending, self.tally))
                self.stop(_SIGNALLED[signal.Signals(signum)])
