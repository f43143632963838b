"""The run behind ``stop`` and ``demo``: how it ends on a signal, a closed stdout, a bad read."""

from __future__ import annotations

import io
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from hiveon_async import BatchProgress
from hiveon_async._cli_ids import IdFeed
from hiveon_async._cli_journal import Journal
from hiveon_async._cli_output import NoOutput, Tally
from hiveon_async._cli_progress import ProgressBar
from hiveon_async._cli_run import Ending, exit_status, run_batch
from hiveon_async.testing import FakeVendorAPI, FaultPlan

IDS = [f"dep-{number}" for number in range(50)]


class ClosesAfter:
    """An output whose reader goes away after ``lines`` lines (``| head``)."""

    def __init__(self, lines: int) -> None:
        self.lines = lines
        self.written: list[dict[str, Any]] = []

    def write(self, record: dict[str, Any]) -> None:
        if len(self.written) == self.lines:
            raise BrokenPipeError(32, "Broken pipe")
        self.written.append(record)

    def finish(self) -> None:
        pass


@pytest.mark.anyio
async def test_a_closed_stdout_stops_the_batch() -> None:
    """The batch stops at the broken pipe: nothing more is sent, and the run says why."""
    fake = FakeVendorAPI(faults=FaultPlan(latency=0.01))
    output = ClosesAfter(3)
    tally = Tally()
    async with fake.client() as client, IdFeed(IDS) as feed:
        ending, problem = await run_batch(client, feed, tally=tally, output=output, concurrency=4)
    assert (ending, problem) == (Ending.STDOUT_CLOSED, None)
    assert exit_status(ending, tally) == 141
    assert len(output.written) == 3
    assert tally.done == 4  # the fourth completed, but could not be printed
    assert fake.request_count < len(IDS)


@pytest.mark.anyio
async def test_a_read_error_ends_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """An error reading the ids ends the run with its message (exit 1)."""

    class Unreadable:
        def read1(self, size: int) -> bytes:
            raise OSError(5, "Input/output error")

        def close(self) -> None:
            pass

    monkeypatch.setattr("hiveon_async._cli_ids._open", lambda path: Unreadable())
    fake = FakeVendorAPI()
    tally = Tally()
    async with fake.client() as client, IdFeed(path="ids.txt") as feed:
        ending, problem = await run_batch(client, feed, tally=tally, output=NoOutput())
    assert ending is Ending.IO_ERROR
    assert problem is not None
    assert "Input/output error" in problem
    assert exit_status(ending, tally) == 1


@pytest.mark.anyio
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(
    ("signum", "expected"),
    [(signal.SIGINT, Ending.INTERRUPTED), (signal.SIGTERM, Ending.TERMINATED)],
)
async def test_a_signal_stops_the_run(signum: int, expected: Ending, tmp_path: Path) -> None:
    """SIGINT or SIGTERM: no new request, the ones in flight are cancelled, all written is kept."""
    fake = FakeVendorAPI(faults=FaultPlan(latency=0.02))
    journal = Journal.open(str(tmp_path / "run.journal"))
    tally = Tally()

    fifth = anyio.Event()

    class Watched(NoOutput):
        def write(self, record: dict[str, Any]) -> None:
            if tally.done == 5:
                fifth.set()

    async def interrupt() -> None:
        await fifth.wait()
        signal.raise_signal(signum)

    async with fake.client() as client, IdFeed(IDS) as feed, anyio.create_task_group() as tasks:
        tasks.start_soon(interrupt)
        ending, _ = await run_batch(
            client, feed, tally=tally, output=Watched(), journal=journal, concurrency=4
        )
    journal.close()
    assert ending is expected
    assert exit_status(ending, tally) == 128 + signum
    assert 5 <= tally.done < len(IDS)
    assert tally.cut_off <= 4
    assert len(Journal.open(str(tmp_path / "run.journal")).stopped) == tally.done
    assert fake.request_count <= tally.done + 4


@pytest.mark.anyio
async def test_the_bar_is_drawn_while_the_run_goes_on() -> None:
    """The bar runs as a task of the run and is left on screen, complete, at the end."""
    from rich.console import Console

    fake = FakeVendorAPI(faults=FaultPlan(latency=0.005))
    progress = BatchProgress()
    tally = Tally(total=len(IDS))
    screen = io.StringIO()
    bar = ProgressBar(
        progress,
        total=lambda: tally.total,
        console=Console(file=screen, force_terminal=True, width=160),
    )
    async with fake.client() as client, IdFeed(IDS) as feed:
        ending, _ = await run_batch(
            client, feed, tally=tally, output=NoOutput(), bar=bar, progress=progress
        )
    assert ending is Ending.FINISHED
    assert "50/50" in screen.getvalue()
    assert "stopped 50" in screen.getvalue()
