"""The run behind ``stop`` and ``demo``: how it ends on a signal, a closed stdout, a bad read."""

from __future__ import annotations

import io
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx

from hiveon_async import AsyncVendorClient, BatchProgress
from hiveon_async.cli._exit import CliExit
from hiveon_async.cli._ids import IdFeed
from hiveon_async.cli._journal import Journal
from hiveon_async.cli._output import NoOutput, Tally
from hiveon_async.cli._progress import ProgressBar
from hiveon_async.cli._run import BatchRun, Ending, exit_status
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
        batch = BatchRun(client=client, feed=feed, tally=tally, output=output, concurrency=4)
        ending, problem = await batch.run()
    assert (ending, problem) == (Ending.STDOUT_CLOSED, None)
    assert exit_status(ending, tally) == 141
    assert len(output.written) == 3
    assert tally.done == 4  # the fourth completed, but could not be printed
    assert fake.request_count < len(IDS)


@pytest.mark.anyio
async def test_a_read_error_ends_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """An error reading the ids ends the run with its message (exit 1)."""

    class Unreadable:
        def read(self, size: int) -> bytes:
            raise OSError(5, "Input/output error")

        def close(self) -> None:
            pass

    monkeypatch.setattr("hiveon_async.cli._ids._open", lambda path: Unreadable())
    fake = FakeVendorAPI()
    tally = Tally()
    async with fake.client() as client, IdFeed(path="ids.txt") as feed:
        ending, problem = await BatchRun(
            client=client, feed=feed, tally=tally, output=NoOutput()
        ).run()
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
        ending, _ = await BatchRun(
            client=client,
            feed=feed,
            tally=tally,
            output=Watched(),
            journal=journal,
            concurrency=4,
        ).run()
    journal.close()
    assert ending is expected
    assert exit_status(ending, tally) == 128 + signum
    assert 5 <= tally.done < len(IDS)
    assert tally.cut_off <= 4
    assert len(Journal.open(str(tmp_path / "run.journal")).stopped) == tally.done
    assert fake.request_count <= tally.done + 4


@pytest.mark.anyio
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_a_second_ctrl_c_gives_up_the_orderly_end(
    vendor: respx.Router, client: AsyncVendorClient
) -> None:
    """Ctrl-C again while the requests in flight wind down: exit 130 now, with no summary."""
    in_flight = anyio.Event()
    winding_down = anyio.Event()
    released = anyio.Event()

    async def slow_to_cancel(request: httpx.Request) -> httpx.Response:
        in_flight.set()
        try:
            await anyio.sleep_forever()
        finally:
            winding_down.set()
            with anyio.CancelScope(shield=True):  # a connection that takes its time to close
                await released.wait()
        raise AssertionError("unreachable")  # pragma: no cover

    vendor.route().mock(side_effect=slow_to_cancel)
    tally = Tally()
    async with client, IdFeed(IDS) as feed:
        batch = BatchRun(client=client, feed=feed, tally=tally, output=NoOutput())

        async def interrupt_twice() -> None:
            await in_flight.wait()
            signal.raise_signal(signal.SIGINT)
            await winding_down.wait()
            signal.raise_signal(signal.SIGINT)
            await anyio.sleep(0.1)  # the run has seen it, and is still winding down
            released.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(interrupt_twice)
            with pytest.raises(CliExit) as exited:
                await batch.run()
    assert exited.value.status == 130
    assert tally.done == 0


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
        ending, _ = await BatchRun(
            client=client, feed=feed, tally=tally, output=NoOutput(), bar=bar, progress=progress
        ).run()
    assert ending is Ending.FINISHED
    assert "50/50" in screen.getvalue()
    assert "stopped 50" in screen.getvalue()
