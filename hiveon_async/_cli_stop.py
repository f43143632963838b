"""``hiveon-async stop``: from checked options to an exit status.

Configuration is checked before anything is sent (credentials, journal,
client settings, the ids file): a problem there is a :class:`ConfigError`,
exit 2. Then one run, and its conclusion.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence

import anyio
import click

from ._batch import BatchProgress
from ._cli_ids import STDIN, IdFeed, count_ids
from ._cli_journal import Journal, JournalError
from ._cli_output import Tally, output_for
from ._cli_progress import progress_bar_for
from ._cli_run import EXIT_INTERRUPTED, Ending, run_batch
from ._cli_summary import conclude
from ._client import AsyncVendorClient
from ._config import RateLimit, RetryPolicy
from ._errors import InvalidRequestError

__all__ = ["CREDENTIAL_VARIABLES", "ConfigError", "check_credentials", "run_stop"]

#: Where credentials come from: the environment only (a flag would land in shell history).
CREDENTIAL_VARIABLES = ("HIVEON_API_KEY", "CLORE_API_KEY")


class ConfigError(click.ClickException):
    """A configuration error: exit 2, like a usage error, with no usage text."""

    exit_code = 2


def check_credentials() -> None:
    """Check that both credential variables are set (their values are never shown).

    Raises:
        ConfigError: Naming each variable that is missing or empty.
    """
    missing = [f"${name}" for name in CREDENTIAL_VARIABLES if not os.environ.get(name)]
    if missing:
        raise ConfigError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set "
            "(credentials are read from the environment only)"
        )


def run_stop(
    ids: Sequence[str],
    *,
    path: str | None,
    base_url: str,
    concurrency: int,
    rate: float | None,
    max_attempts: int,
    timeout: float,
    deadline: float | None,
    metadata: Mapping[str, str],
    journal_path: str | None,
    output_kind: str,
    quiet: bool,
) -> int:
    """Stop ``ids`` and the ids in ``path``, as ``hiveon-async stop`` does; return the exit status.

    Args:
        ids: Ids from the command line.
        path: A file of ids, ``"-"`` for stdin, or None.
        base_url: The vendor API's root.
        concurrency: Requests in flight at most.
        rate: Requests per second at most, or None.
        max_attempts: Requests per id at most.
        timeout: Seconds per attempt.
        deadline: Seconds for the whole run, or None.
        metadata: Clore metadata for every call (``CLORE_API_KEY`` comes from the
            environment).
        journal_path: The journal, or None.
        output_kind: ``jsonl`` or ``table``.
        quiet: No progress bar, no summary.

    Returns:
        The exit status.

    Raises:
        ConfigError: A configuration problem, found before anything is sent.
    """
    check_credentials()
    journal: Journal | None = None
    try:
        if journal_path is not None:
            journal = Journal.open(journal_path)
        skip = journal.stopped if journal is not None else frozenset()
        output = output_for(output_kind)
        progress = BatchProgress()
        tally = Tally()
        # The arguments to send (the feed skips the same ids, and counts them).
        given = sum(1 for item in ids if (found := item.strip()) and found not in skip)
        if path is None:
            tally.total = given

        async def count_the_file(path: str) -> None:
            stop = threading.Event()
            try:
                counted = await anyio.to_thread.run_sync(
                    count_ids, path, skip, stop, abandon_on_cancel=True
                )
            finally:
                stop.set()
            if counted is not None:
                tally.total = given + counted

        async def run() -> tuple[Ending, str | None]:
            try:
                client = AsyncVendorClient(
                    base_url=base_url,
                    metadata=metadata or None,
                    timeout=timeout,
                    retry=RetryPolicy(max_attempts=max_attempts),
                    rate_limit=None if rate is None else RateLimit(per_second=rate),
                    max_concurrency=concurrency,
                )
            except InvalidRequestError as exc:
                raise ConfigError(str(exc)) from None
            try:
                feed = IdFeed(ids, path=path, skip=skip)
            except OSError as exc:
                await client.aclose()
                raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
            bar = progress_bar_for(progress, total=lambda: tally.total, output=output, quiet=quiet)
            async with client, feed, anyio.create_task_group() as tasks:
                if bar is not None and path is not None and path != STDIN:
                    tasks.start_soon(count_the_file, path)
                ended = await run_batch(
                    client,
                    feed,
                    tally=tally,
                    output=output,
                    journal=journal,
                    bar=bar,
                    progress=progress,
                    deadline=deadline,
                )
                tasks.cancel_scope.cancel()
            tally.already_stopped = feed.skipped
            return ended

        ending, problem = anyio.run(run)
        return conclude(ending, problem, tally, output, quiet=quiet, journal=journal)
    except JournalError as exc:
        raise ConfigError(str(exc)) from None
    except KeyboardInterrupt:  # before or after the run's own handling (or on Windows)
        click.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    finally:
        if journal is not None:
            journal.close()
