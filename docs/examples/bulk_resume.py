"""Journal every outcome; run again with the same journal to stop only what is left."""

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import anyio

from hiveon_async import AsyncVendorClient, BatchReport, StopOutcome


def stopped_in(journal: Path) -> set[str]:
    """The ids the journal records as stopped (a line torn by a crash is ignored)."""
    stopped: set[str] = set()
    if journal.exists():
        for line in journal.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry["status"] == "stopped":
                stopped.add(entry["id"])
    return stopped


def not_yet_stopped(ids: Iterable[str], journal: Path) -> Iterator[str]:
    done = stopped_in(journal)
    return (deployment_id for deployment_id in ids if deployment_id not in done)


def open_journal(journal: Path) -> TextIO:
    """Open for appending; end a line torn by a crash first, so it spoils nothing else."""
    log = journal.open("a")
    if log.tell() > 0:
        with journal.open("rb") as tail:
            tail.seek(-1, 2)
            if tail.read(1) != b"\n":
                log.write("\n")
    return log


async def main(ids: Iterable[str], journal: Path) -> BatchReport:
    pending = not_yet_stopped(ids, journal)
    with open_journal(journal) as log:

        def record(outcome: StopOutcome) -> None:
            entry = {"id": outcome.deployment_id, "status": str(outcome.status)}
            log.write(json.dumps(entry) + "\n")
            log.flush()  # if the process dies, only the requests in flight are unrecorded

        async with AsyncVendorClient() as client:
            return await client.stop_deployments(pending, on_outcome=record)


if __name__ == "__main__":
    ids = Path(sys.argv[1]).read_text().split()
    report = anyio.run(main, ids, Path(sys.argv[2]))
    sys.exit(0 if report.ok else 1)
