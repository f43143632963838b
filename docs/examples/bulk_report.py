"""Stop every deployment listed in a file: bounded load, progress, and a full account.

Usage: python bulk_report.py ids.txt   (one id per line)
"""

import sys
from collections.abc import Iterator
from pathlib import Path

import anyio

from hiveon_async import AsyncVendorClient, BatchProgress, BatchReport, StopOutcome


def read_ids(path: Path) -> Iterator[str]:
    """Yield one id per non-blank line; the file is read as the batch goes, never whole."""
    with path.open() as lines:
        for line in lines:
            if line.strip():
                yield line.strip()


def log_problem(outcome: StopOutcome) -> None:
    """Called once per id as it finishes (a coroutine function works too)."""
    if not outcome.ok:
        print(f"{outcome.deployment_id}: {outcome.status}: {outcome.error}", file=sys.stderr)


async def show_progress(progress: BatchProgress, every: float = 1.0) -> None:
    while True:
        await anyio.sleep(every)
        print(
            f"{progress.done} done, {progress.in_flight} in flight, "
            f"{progress.failed} failed, {progress.retries} retries",
            file=sys.stderr,
        )


async def main(path: Path) -> BatchReport:
    progress = BatchProgress()
    async with AsyncVendorClient(max_concurrency=64) as client, anyio.create_task_group() as tasks:
        tasks.start_soon(show_progress, progress)
        report = await client.stop_deployments(
            read_ids(path),
            concurrency=64,  # at most 64 requests in flight
            deadline=15 * 60,  # after 15 minutes, whatever is left is "skipped"
            on_outcome=log_problem,
            progress=progress,
        )
        tasks.cancel_scope.cancel()  # stop show_progress

    print(
        f"{len(report.stopped)} stopped, {len(report.failed)} failed, "
        f"{len(report.skipped)} skipped, {report.duplicates} duplicates"
    )
    for outcome in report.failed:
        if outcome.maybe_applied:
            print(f"{outcome.deployment_id} may have stopped despite the error")
    return report


if __name__ == "__main__":
    report = anyio.run(main, Path(sys.argv[1]))
    sys.exit(0 if report.ok else 1)
