"""The ids of ``hiveon-async stop``: parsed per line, read lazily, filtered, and stoppable."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import anyio
import pytest

from hiveon_async.cli._ids import IdFeed, count_ids, parse_id


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("dep-1\n", "dep-1"),
        ("  dep-1 \r\n", "dep-1"),
        ("dep-1 # note", "dep-1"),
        ("#dep-1", None),
        ("   ", None),
        ("", None),
        ("not valid!", "not valid!"),  # the client refuses it, with a failed outcome
    ],
)
def test_parse_id(line: str, expected: str | None) -> None:
    """Trimmed; blank and comment lines are None."""
    assert parse_id(line) == expected


async def collect(feed: IdFeed) -> list[str]:
    async with feed:
        return [deployment_id async for deployment_id in feed]


@pytest.mark.anyio
async def test_arguments_then_the_file_minus_the_journal(tmp_path: Path) -> None:
    """Arguments come first; ids in ``skip`` are dropped and counted."""
    path = tmp_path / "ids.txt"
    path.write_text("f-1\nf-2\n# f-3\nf-4")
    feed = IdFeed(["a-1", " ", "f-2 "], path=str(path), skip={"f-2", "a-9"})
    assert await collect(feed) == ["a-1", "f-1", "f-4"]
    assert feed.skipped == 2


@pytest.mark.anyio
async def test_blank_arguments_only() -> None:
    """Arguments that are only whitespace are no ids."""
    assert await collect(IdFeed([" ", ""])) == []


@pytest.mark.anyio
async def test_a_generator_is_taken_lazily() -> None:
    """Ids at hand are taken a slice at a time, not all at once."""
    taken = 0

    def ids() -> object:
        nonlocal taken
        for number in range(100_000):
            taken += 1
            yield f"dep-{number}"

    async with IdFeed(ids()) as feed:  # type: ignore[arg-type]
        first = await feed.__anext__()
    assert first == "dep-0"
    assert taken <= 2000


@pytest.mark.anyio
async def test_stop_ends_a_wait_for_input() -> None:
    """Stopping the feed ends a read that waits on a silent pipe (a terminal, a slow tool)."""
    reading, writing = os.pipe()
    try:
        feed = IdFeed(path=f"/dev/fd/{reading}")
        async with feed:
            os.write(writing, b"dep-1\n")
            assert await feed.__anext__() == "dep-1"
            started = time.monotonic()
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(lambda: anyio.sleep(0.05))
                await anyio.sleep(0.05)
                tasks.start_soon(_stop_soon, feed)
                with pytest.raises(StopAsyncIteration):
                    await feed.__anext__()
            assert time.monotonic() - started < 2
            with pytest.raises(StopAsyncIteration):
                await feed.__anext__()
    finally:
        os.close(writing)
        os.close(reading)


async def _stop_soon(feed: IdFeed) -> None:
    await anyio.sleep(0.05)
    feed.stop()


class Unreadable:
    """A source whose reads fail, as a disk or a network file system can."""

    def read(self, size: int) -> bytes:
        raise OSError(5, "Input/output error")

    def close(self) -> None:
        pass


@pytest.mark.anyio
async def test_a_read_error_surfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    """An error reading the input is raised to the batch, not swallowed."""
    monkeypatch.setattr("hiveon_async.cli._ids._open", lambda path: Unreadable())
    with pytest.raises(OSError, match="Input/output error"):
        await collect(IdFeed(path="ids.txt"))


def test_an_unopenable_file_fails_at_once(tmp_path: Path) -> None:
    """The file is opened when the feed is made, before any request."""
    with pytest.raises(FileNotFoundError):
        IdFeed(path=str(tmp_path / "missing.txt"))
    with pytest.raises(IsADirectoryError):
        IdFeed(path=str(tmp_path))


def test_count_ids(tmp_path: Path) -> None:
    """Counts what would be sent; gives up when asked, or when the file is unreadable."""
    path = tmp_path / "ids.txt"
    path.write_text("a\n\n# b\nc # x\nd\n")
    assert count_ids(str(path), {"d"}, threading.Event()) == 2
    stopped = threading.Event()
    stopped.set()
    assert count_ids(str(path), set(), stopped) is None
    assert count_ids(str(tmp_path / "missing"), set(), threading.Event()) is None
