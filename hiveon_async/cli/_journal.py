"""The ``--journal`` file: one JSON line per outcome, appended as it completes, for resuming.

Each line is written with a single unbuffered ``write`` (so a crash loses at
most the line being written) and the file is fsynced at least once a second
and at the end. Reading it back keeps only the set of stopped ids; a line torn
by a crash (it starts with ``{`` but does not parse) is ignored, and the next
run starts its own lines on a fresh line.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any

import anyio

__all__ = ["SYNC_SECONDS", "Journal", "JournalError"]

#: The longest a written line waits for fsync while a run goes on.
SYNC_SECONDS = 1.0


class JournalError(Exception):
    """The journal cannot be used: unreadable, not a journal, or in use by another run."""


def _lock(fd: int, path: str) -> None:
    """Take an exclusive lock, so that two runs never share a journal (POSIX only)."""
    if sys.platform == "win32":  # pragma: no cover - no flock there; the journal still works
        return
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise JournalError(f"{path} is in use by another hiveon-async run") from None
    except OSError:  # pragma: no cover - file systems without locks (some NFS)
        pass


class Journal:
    """An open journal: the stopped ids it held at start, and the file to append to.

    Use :meth:`open`; call :meth:`close` at the end (it fsyncs).

    Attributes:
        path: Where it lives.
        stopped: The ids it recorded as stopped when it was opened.
        torn: Lines that did not parse (torn by a crash) and were ignored.
        written: Lines appended by this run.
    """

    def __init__(self, path: str, fd: int, stopped: set[str], torn: int) -> None:
        self.path = path
        self._fd: int | None = fd
        self.stopped = stopped
        self.torn = torn
        self.written = 0
        self._unsynced = False

    @classmethod
    def open(cls, path: str) -> Journal:
        """Open (or create) the journal at ``path``, lock it and read its stopped ids.

        Args:
            path: The journal file.

        Returns:
            The open journal.

        Raises:
            JournalError: It cannot be opened or read, another run holds it, or
                it holds a line that is not a journal record (which is what
                ``--journal ids.txt`` by mistake would look like).
        """
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise JournalError(f"cannot open {path}: {exc.strerror}") from None
        try:
            _lock(fd, path)
            stopped, torn, ends_cleanly = _read(path)
            if not ends_cleanly:
                os.write(fd, b"\n")  # a torn last line stays alone on its line
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, stopped, torn)

    def append(self, record: Mapping[str, Any]) -> None:
        """Append one record as a JSON line, written through to the operating system.

        Args:
            record: The outcome's record.
        """
        assert self._fd is not None, "the journal is closed"
        line = (json.dumps(record) + "\n").encode()
        view = memoryview(line)
        while view:  # one write in practice; a short write is finished, not torn
            view = view[os.write(self._fd, view) :]
        self.written += 1
        self._unsynced = True

    async def keep_synced(self) -> None:
        """Fsync every :data:`SYNC_SECONDS` while lines are being written; run it as a task."""
        while True:
            await anyio.sleep(SYNC_SECONDS)
            if self._unsynced and self._fd is not None:
                self._unsynced = False
                # In a thread: an fsync can take a while, and the batch goes on meanwhile.
                await anyio.to_thread.run_sync(os.fsync, self._fd)

    def close(self) -> None:
        """Fsync and close (and so unlock). Idempotent."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _read(path: str) -> tuple[set[str], int, bool]:
    """Return the stopped ids, the count of torn lines, and whether the file ends with a newline."""
    stopped: set[str] = set()
    torn = 0
    last = b"\n"
    try:
        with open(path, "rb") as lines:
            for number, line in enumerate(lines, 1):
                last = line
                text = line.strip()
                if not text:
                    continue
                try:
                    record = json.loads(text)
                except ValueError:
                    if text.startswith(b"{"):
                        torn += 1
                        continue
                    record = None
                if not _is_record(record):
                    raise JournalError(
                        f"{path} line {number} is not a hiveon-async journal record; "
                        "is it the right file?"
                    )
                if record["status"] == "stopped":
                    stopped.add(record["deployment_id"])
    except OSError as exc:  # pragma: no cover - it was just opened for writing
        raise JournalError(f"cannot read {path}: {exc.strerror}") from None
    return stopped, torn, last.endswith(b"\n")


def _is_record(record: object) -> bool:
    return (
        isinstance(record, dict)
        and isinstance(record.get("deployment_id"), str)
        and isinstance(record.get("status"), str)
    )
