"""The ``--journal`` file: its format, reading it back, and resuming a run from it."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner, Result

from hiveon_async.cli import main
from hiveon_async.cli._journal import Journal, JournalError
from hiveon_async.testing import Fault
from tests.doubles import served_vendor

from ._helpers import journal_stopped, records, write_ids

RECORD = {
    "deployment_id": "dep-1",
    "status": "stopped",
    "attempts": 1,
    "elapsed": 0.1,
    "error": None,
}


def stop(env: dict[str, str | None], *args: str) -> Result:
    """Run ``hiveon-async stop ARGS`` in-process."""
    return CliRunner().invoke(main, ["stop", *args], env=env)


# -- the file -----------------------------------------------------------------------------


def test_a_new_journal_is_created_and_appended(tmp_path: Path) -> None:
    """Each record is one JSON line; reopening reads back the stopped ids only."""
    path = tmp_path / "run.journal"
    journal = Journal.open(str(path))
    assert journal.stopped == set()
    journal.append(RECORD)
    journal.append({**RECORD, "deployment_id": "dep-2", "status": "failed"})
    journal.close()
    journal.close()  # idempotent
    lines = path.read_text().splitlines()
    assert [json.loads(line)["deployment_id"] for line in lines] == ["dep-1", "dep-2"]
    again = Journal.open(str(path))
    assert again.stopped == {"dep-1"}
    assert again.torn == 0
    again.close()


def test_blank_lines_are_ignored(tmp_path: Path) -> None:
    """A journal edited by hand may hold blank lines."""
    path = tmp_path / "run.journal"
    path.write_text("\n" + json.dumps(RECORD) + "\n  \n")
    journal = Journal.open(str(path))
    assert journal.stopped == {"dep-1"}
    journal.close()


def test_a_torn_last_line_is_ignored_and_closed_off(tmp_path: Path) -> None:
    """A line cut short by a crash is skipped; the next record starts on its own line."""
    path = tmp_path / "run.journal"
    path.write_text(json.dumps(RECORD) + '\n{"deployment_id": "dep-2", "sta')
    journal = Journal.open(str(path))
    assert journal.stopped == {"dep-1"}
    assert journal.torn == 1
    journal.append({**RECORD, "deployment_id": "dep-3"})
    journal.close()
    reread = Journal.open(str(path))
    assert reread.stopped == {"dep-1", "dep-3"}
    assert reread.torn == 1  # the torn line stays, alone on its line
    reread.close()


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    """``--journal ids.txt`` by mistake must not append to the id list."""
    path = tmp_path / "ids.txt"
    path.write_text("dep-1\ndep-2\n")
    with pytest.raises(JournalError, match="line 1 is not a hiveon-async journal record"):
        Journal.open(str(path))
    assert path.read_text() == "dep-1\ndep-2\n"
    path.write_text('{"deployment_id": 5, "status": "stopped"}\n')
    with pytest.raises(JournalError, match="line 1"):
        Journal.open(str(path))


def test_two_runs_cannot_share_a_journal(tmp_path: Path) -> None:
    """The journal is locked while a run holds it."""
    path = str(tmp_path / "run.journal")
    first = Journal.open(path)
    with pytest.raises(JournalError, match="in use by another hiveon-async run"):
        Journal.open(path)
    first.close()
    Journal.open(path).close()


def test_an_unusable_path_is_an_error(tmp_path: Path) -> None:
    """A journal in a missing directory cannot be opened."""
    with pytest.raises(JournalError, match="cannot open"):
        Journal.open(str(tmp_path / "missing" / "run.journal"))


def test_lines_are_synced_while_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``keep_synced`` fsyncs written lines within a second, and only when there are some."""
    monkeypatch.setattr("hiveon_async.cli._journal.SYNC_SECONDS", 0.01)
    journal = Journal.open(str(tmp_path / "run.journal"))
    ours = journal._fd
    synced: list[int] = []
    first_sync = threading.Event()
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if fd == ours:
            synced.append(fd)
            first_sync.set()
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)

    async def run() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(journal.keep_synced)
            await anyio.sleep(0.05)
            assert synced == []  # nothing written, nothing to sync
            journal.append(RECORD)
            assert await anyio.to_thread.run_sync(first_sync.wait, 5)
            await anyio.sleep(0.05)
            tasks.cancel_scope.cancel()

    anyio.run(run)
    assert len(synced) == 1  # one line, one fsync
    journal.close()
    assert len(synced) == 2  # and once more at the end


# -- resuming -----------------------------------------------------------------------------


@pytest.mark.socket
def test_a_second_run_sends_only_what_is_not_stopped(tmp_path: Path) -> None:
    """Ids the journal records as stopped are skipped and counted; the others are sent."""
    ids_file = tmp_path / "ids.txt"
    ids = write_ids(ids_file, 20)
    journal = tmp_path / "run.journal"
    with served_vendor() as first:
        first.fake.script("dep-00003", [500])
        first.fake.script("dep-00007", [404])
        result = stop(
            first.env(), "--file", str(ids_file), "--journal", str(journal), "--max-attempts", "1"
        )
    assert result.exit_code == 1
    assert journal_stopped(journal) == set(ids) - {"dep-00003", "dep-00007"}
    assert len(journal.read_text().splitlines()) == 20
    for line in journal.read_text().splitlines():
        assert json.loads(line)["time"].endswith("Z")

    with served_vendor() as second:
        args = ["--file", str(ids_file), "--journal", str(journal), "new-1", "dep-00001"]
        result = stop(second.env(), *args)
    assert result.exit_code == 0, result.stderr
    assert second.fake.stopped == {"dep-00003", "dep-00007", "new-1"}
    assert second.fake.request_count == 3
    assert {line["deployment_id"] for line in records(result.stdout)} == second.fake.stopped
    assert "already stopped (journal)  19" in result.stderr  # 18 in the file, 1 argument
    assert journal_stopped(journal) == {*ids, "new-1"}

    with served_vendor() as third:
        result = stop(third.env(), "--file", str(ids_file), "--journal", str(journal))
    assert result.exit_code == 0
    assert third.fake.request_count == 0
    assert "Nothing to do: the journal records every id as stopped." in result.stderr


@pytest.mark.socket
def test_a_torn_journal_does_not_break_the_next_run(tmp_path: Path) -> None:
    """After a crash mid-write, the next run reads the journal and goes on."""
    journal = tmp_path / "run.journal"
    journal.write_text(json.dumps(RECORD) + '\n{"deployment_id": "dep-2", "status": "st')
    with served_vendor() as running:
        result = stop(running.env(), "dep-1", "dep-2", "--journal", str(journal))
    assert result.exit_code == 0, result.stderr
    assert running.fake.stopped == {"dep-2"}
    assert "(1 torn line ignored)" in result.stderr
    assert journal_stopped(journal) == {"dep-1", "dep-2"}


@pytest.mark.socket
def test_journal_errors_exit_2(tmp_path: Path) -> None:
    """A file that is not a journal, or a journal in use, is a configuration error."""
    not_a_journal = tmp_path / "ids.txt"
    not_a_journal.write_text("dep-1\n")
    with served_vendor() as running:
        result = stop(running.env(), "dep-1", "--journal", str(not_a_journal))
        assert result.exit_code == 2
        assert "is not a hiveon-async journal record" in result.stderr
        held = Journal.open(str(tmp_path / "run.journal"))
        result = stop(running.env(), "dep-1", "--journal", str(tmp_path / "run.journal"))
        held.close()
        assert result.exit_code == 2
        assert "in use by another hiveon-async run" in result.stderr
        assert running.fake.request_count == 0


@pytest.mark.socket
def test_the_journal_records_every_outcome_before_it_is_printed(tmp_path: Path) -> None:
    """Journal lines are the printed records plus a timestamp."""
    journal = tmp_path / "run.journal"
    with served_vendor() as running:
        running.fake.script("dep-2", [Fault.status(403)])
        result = stop(running.env(), "dep-1", "dep-2", "--journal", str(journal))
    assert result.exit_code == 1
    printed = {line["deployment_id"]: line for line in records(result.stdout)}
    for line in records(journal.read_text()):
        stamp = line.pop("time")
        assert stamp.endswith("Z")
        assert printed[line["deployment_id"]] == line
