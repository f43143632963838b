"""Where ``hiveon-async stop`` gets its ids: arguments, a file or stdin, read lazily.

A file of millions of ids is streamed a chunk at a time by a daemon thread (a
read that blocks, say on a terminal, never blocks the event loop, and never
keeps the process alive after Ctrl-C). The thread reads without a buffer of
Python's: a buffered read would hold the buffer's lock while it blocks, and the
interpreter aborts when it meets that lock at exit. Ids the journal records as
stopped are dropped here, before the batch sees them.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Set
from itertools import islice
from types import TracebackType
from typing import Protocol

import anyio
from anyio.from_thread import BlockingPortal
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = ["STDIN", "IdFeed", "count_ids", "parse_id"]

#: The ``--file`` value that means standard input.
STDIN = "-"
#: Bytes read from the input at a time (about 1,700 UUID-sized ids).
CHUNK_BYTES = 64 * 1024
#: Ids taken at a time from ``ids`` (which may be a generator).
IDS_AT_A_TIME = 1024
#: Chunks read ahead of the batch; bounds the memory the input takes.
CHUNKS_AHEAD = 4

_Batch = list[str] | BaseException


def parse_id(line: str) -> str | None:
    r"""Return the id on one line of input, or None for a blank or comment line.

    Surrounding whitespace is trimmed and everything from ``#`` on is a
    comment (no valid id contains ``#`` or whitespace).

    Args:
        line: One line, with or without its line ending.

    Returns:
        The id, or None.

    Example:
        >>> parse_id("  dep-1  # web tier\n"), parse_id("# all of them"), parse_id("")
        ('dep-1', None, None)
    """
    text = line.split("#", 1)[0].strip()
    return text or None


def _split(carry: bytes, chunk: bytes) -> tuple[list[str], bytes]:
    """Return the ids of the complete lines in ``carry + chunk``, and the partial last line."""
    *lines, rest = (carry + chunk).split(b"\n")
    ids = [found for line in lines if (found := parse_id(line.decode("utf-8", "replace")))]
    return ids, rest


class _Source(Protocol):
    def read(self, size: int, /) -> bytes | None: ...

    def close(self) -> None: ...


def _open(path: str) -> _Source:
    """Open the input unbuffered: each read is one system call, returning what is there."""
    if path != STDIN:
        return open(path, "rb", buffering=0)  # closed by the reading thread
    try:
        descriptor = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):  # click's CliRunner: stdin is in memory
        return sys.stdin.buffer
    # A duplicate, so that closing ours leaves the process's stdin alone.
    return open(os.dup(descriptor), "rb", buffering=0)


def count_ids(path: str, skip: Set[str], stop: threading.Event) -> int | None:
    """Count the ids of a file that are not in ``skip`` (for a progress bar's total).

    Args:
        path: The file (not stdin, which can be read only once).
        skip: Ids not to count (the journal's stopped ids).
        stop: Set to give up early.

    Returns:
        The count, or None when stopped early or the file cannot be read.
    """
    count = 0
    try:
        with open(path, "rb") as lines:
            for number, line in enumerate(lines):
                if number % 65536 == 0 and stop.is_set():
                    return None
                found = parse_id(line.decode("utf-8", "replace"))
                if found is not None and found not in skip:
                    count += 1
    except OSError:
        return None
    return count


class IdFeed:
    """The batch's input: ``ids`` first, then the lines of ``path``, minus ``skip``.

    An async iterable for ``stream_stop_deployments``, used inside ``async
    with``. :meth:`stop` ends it at once, even while it waits for input.

    Args:
        ids: Ids already at hand (command-line arguments), consumed lazily.
        path: A file to read ids from, one per line, or ``"-"`` for stdin. It is
            opened at once (``OSError`` if it cannot be) and read once entered.
        skip: Ids not to hand out (the journal's stopped ids); they are counted
            in :attr:`skipped`.

    Attributes:
        skipped: Ids dropped because they were in ``skip``.
    """

    def __init__(
        self,
        ids: Iterable[str] = (),
        *,
        path: str | None = None,
        skip: Set[str] = frozenset(),
    ) -> None:
        self._ids: Iterator[str] | None = iter(ids)
        # Opened here, so that an unreadable file is a configuration error, before any I/O.
        self._source = None if path is None else _open(path)
        self._skip = skip
        self._pending: deque[str] = deque()
        self._send: MemoryObjectSendStream[_Batch] | None = None
        self._receive: MemoryObjectReceiveStream[_Batch] | None = None
        self._portal: BlockingPortal | None = None
        self._reader: threading.Thread | None = None
        self._waiting: anyio.CancelScope | None = None
        self._stopped = False
        self.skipped = 0

    async def __aenter__(self) -> IdFeed:
        if self._source is not None:
            self._send, self._receive = anyio.create_memory_object_stream[_Batch](CHUNKS_AHEAD)
            self._portal = BlockingPortal()
            await self._portal.__aenter__()
            # A daemon thread: a read blocked on a terminal must not keep the process alive.
            self._reader = threading.Thread(
                target=_read,
                args=(self._source, self._portal, self._send),
                name="hiveon-ids",
                daemon=True,
            )
            self._reader.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self._receive is not None:
            self._receive.close()  # a reader waiting to hand over a chunk gives up
        if self._reader is not None:
            # Let the reader see the closed stream and end before the portal stops: a call
            # it made while the portal was stopping would be left unrun (and reported as a
            # never-awaited coroutine). A reader blocked on a terminal is not waited for.
            await anyio.to_thread.run_sync(self._reader.join, READER_GRACE_SECONDS)
        if self._portal is not None:
            await self._portal.stop(cancel_remaining=True)
            await self._portal.__aexit__(None, None, None)
        if self._send is not None:
            # The reader only ever uses it through the portal, which is closed now.
            self._send.close()

    def stop(self) -> None:
        """End the input now: the batch takes no more ids."""
        self._stopped = True
        if self._waiting is not None:
            self._waiting.cancel()

    def __aiter__(self) -> IdFeed:
        return self

    async def __anext__(self) -> str:
        while not self._pending:
            if self._stopped:
                raise StopAsyncIteration
            batch = await self._next_batch()
            if batch is None:
                raise StopAsyncIteration
            self._pending.extend(self._unskipped(batch))
        return self._pending.popleft()

    def _unskipped(self, batch: Iterable[str]) -> Iterator[str]:
        for deployment_id in batch:
            if deployment_id in self._skip:
                self.skipped += 1
            else:
                yield deployment_id

    async def _next_batch(self) -> list[str] | None:
        while self._ids is not None:
            chunk = list(islice(self._ids, IDS_AT_A_TIME))
            if not chunk:
                self._ids = None
            elif given := [found for item in chunk if (found := item.strip())]:
                return given
        if self._receive is None:
            return None
        batch: _Batch | None = None
        # The batch pulls ids in a shielded scope, so only our own scope can end this wait.
        with anyio.CancelScope() as self._waiting:
            try:
                batch = await self._receive.receive()
            except anyio.EndOfStream:
                pass
            finally:
                self._waiting = None
        if isinstance(batch, BaseException):
            raise batch
        return batch


#: How long closing the feed waits for the reading thread to notice and end.
READER_GRACE_SECONDS = 1.0


def _read(source: _Source, portal: BlockingPortal, send: MemoryObjectSendStream[_Batch]) -> None:
    """The reading thread: hand the ids of each chunk to the event loop, then close."""
    carry = b""
    try:
        try:
            while chunk := source.read(CHUNK_BYTES):
                ids, carry = _split(carry, chunk)
                if ids:
                    portal.call(send.send, ids)
            ids, _ = _split(carry, b"\n")
            if ids:
                portal.call(send.send, ids)
        except OSError as exc:
            portal.call(send.send, exc)
        portal.call(send.aclose)
    except Exception:  # noqa: S110 - the run is over or stopped reading: nobody wants the rest
        pass
    finally:
        if source is not sys.stdin.buffer:
            source.close()
