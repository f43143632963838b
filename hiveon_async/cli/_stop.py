"""``hiveon-async stop``: from checked options to an exit status.

Configuration is checked before anything is sent (credentials, journal,
client settings, the ids file): a problem there is a :class:`ConfigError`,
exit 2. Then one run, and its conclusion.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

import anyio
import attrs
import click

from hiveon_async import (
    AsyncVendorClient,
    BatchProgress,
    InvalidRequestError,
    RateLimit,
    RetryPolicy,
)
from hiveon_async._config import DEFAULT_BASE_URL, DEFAULT_TIMEOUT

from ._exit import CliExit
from ._ids import STDIN, IdFeed, count_ids
from ._journal import Journal, JournalError
from ._options import concurrency_option, output_option, quiet_option
from ._output import Output, Tally, output_for
from ._progress import progress_bar_for
from ._run import BatchRun, Ending
from ._summary import conclude

__all__ = [
    "CREDENTIAL_VARIABLES",
    "ConfigError",
    "StopSettings",
    "check_credentials",
    "run_stop",
    "stop",
]

#: Where credentials come from: the environment only (a flag would land in shell history).
CREDENTIAL_VARIABLES = ("HIVEON_API_KEY", "CLORE_API_KEY")


class ConfigError(click.ClickException):
    """A configuration error: exit 2, like a usage error, with no usage text."""

    exit_code = 2


@attrs.frozen(kw_only=True)
class StopSettings:
    """The options of ``hiveon-async stop``.

    Attributes:
        ids: Ids from the command line.
        path: A file of ids, ``"-"`` for stdin, or None.
        base_url: The vendor API's root.
        concurrency: Requests in flight at most.
        rate: Requests per second at most, or None.
        max_attempts: Requests per id at most.
        timeout: Seconds per attempt.
        deadline: Seconds for the whole run, or None.
        metadata: Clore metadata for every call (``CLORE_API_KEY`` comes from
            the environment).
        journal_path: The journal, or None.
        output_kind: ``jsonl`` or ``table``.
        quiet: No progress bar, no summary.
        redis_url: Share the key's rate limit (``rate``, announced or learned)
            through this Redis with every process on the key, or None.
        wait_for_quota: Wait for a used-up quota to come back instead of stopping.
    """

    ids: tuple[str, ...]
    path: str | None
    base_url: str
    concurrency: int
    rate: float | None
    max_attempts: int
    timeout: float
    deadline: float | None
    metadata: Mapping[str, str]
    journal_path: str | None
    output_kind: str
    quiet: bool
    redis_url: str | None = None
    wait_for_quota: bool = False


def _metadata(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for item in values:
        key, equals, value = item.partition("=")
        key = key.strip()
        # The message never quotes the item: it may be a secret typed without its key.
        if not equals or not key:
            raise click.BadParameter("expected KEY=VALUE (the value given is not shown)")
        if key == "CLORE_API_KEY":
            raise click.BadParameter(
                "CLORE_API_KEY is read from $CLORE_API_KEY only "
                "(a flag would land in shell history)"
            )
        metadata[key] = value
    return metadata


@click.command("stop")
@click.argument("ids", nargs=-1)
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
    help="Read ids from this file, one per line ('-' for stdin); blank lines and '#' comments "
    "are ignored.",
)
@click.option(
    "--base-url",
    envvar="HIVEON_BASE_URL",
    show_envvar=True,
    default=DEFAULT_BASE_URL,
    show_default=True,
    help="The vendor API's root.",
)
@concurrency_option
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="Requests per second at most, retries included. Default: no limit but the server's.",
)
@click.option(
    "--redis-url",
    envvar="HIVEON_REDIS_URL",
    show_envvar=True,
    metavar="URL",
    help="Share the key's rate limit (--rate, or the rate learned from 429s) with every "
    "process on the same key through this Redis (redis:// or rediss://). A URL with a "
    "password belongs in the variable: a flag lands in shell history.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(1, 100),
    default=RetryPolicy().max_attempts,
    show_default=True,
    help="Requests per id at most, the first included.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds per attempt.",
)
@click.option(
    "--deadline",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds for the whole run; ids not done by then end failed or skipped.",
)
@click.option(
    "--wait-for-quota",
    is_flag=True,
    help="When the vendor says the key's quota is used up (a 429 with a long Retry-After), "
    "wait for it to come back, within --deadline, instead of stopping.",
)
@click.option(
    "--metadata",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_metadata,
    help="Clore metadata sent with every id (repeatable). CLORE_API_KEY comes from the "
    "environment.",
)
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False),
    help="Append each outcome to this file; ids it records as stopped are not sent again.",
)
@output_option(
    ["jsonl", "table"], default="jsonl", help="JSON Lines as ids complete, or a table at the end."
)
@quiet_option
def stop(**options: Any) -> None:
    """Stop deployments: the IDS given, and those in --file.

    Credentials come from the environment only: $HIVEON_API_KEY (the vendor
    API key) and $CLORE_API_KEY. Each outcome is printed as it completes;
    a summary goes to stderr.

    Exit status: 0 every id stopped; 1 any failed or skipped; 2 usage or
    configuration error; 130 Ctrl-C; 141 stdout closed; 143 SIGTERM.
    """
    settings = StopSettings(**options)
    if not settings.ids and settings.path is None:
        raise click.UsageError(
            "no deployment ids: give them as arguments, or --file PATH (--file - reads stdin)"
        )
    raise CliExit(run_stop(settings))


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


def run_stop(settings: StopSettings) -> int:
    """Stop the ids of ``settings``, as ``hiveon-async stop`` does; return the exit status.

    Args:
        settings: The command's options.

    Returns:
        The exit status.

    Raises:
        ConfigError: A configuration problem, found before anything is sent.
    """
    check_credentials()
    try:
        journal = None if settings.journal_path is None else Journal.open(settings.journal_path)
    except JournalError as exc:
        raise ConfigError(str(exc)) from None
    try:
        run = _StopRun(settings, journal)
        ending, problem = anyio.run(run.run)
        return conclude(
            ending, problem, run.tally, run.output, quiet=settings.quiet, journal=journal
        )
    finally:
        # The one place the journal is closed (and fsynced), however the command ends.
        if journal is not None:
            journal.close()


class _StopRun:
    """One run of ``stop``: the client, the feed, the count of the file, and the batch."""

    def __init__(self, settings: StopSettings, journal: Journal | None) -> None:
        self.settings = settings
        self.journal = journal
        self.skip = journal.stopped if journal is not None else frozenset()
        self.output: Output = output_for(settings.output_kind)
        self.progress = BatchProgress()
        self.tally = Tally()
        # The arguments to send (the feed skips the same ids, and counts them).
        self.given = sum(
            1 for item in settings.ids if (found := item.strip()) and found not in self.skip
        )
        if settings.path is None:
            self.tally.total = self.given

    async def run(self) -> tuple[Ending, str | None]:
        settings = self.settings
        client = self._client()
        try:
            feed = IdFeed(settings.ids, path=settings.path, skip=self.skip)
        except OSError as exc:
            await client.aclose()
            raise ConfigError(f"cannot read {settings.path}: {exc.strerror}") from None
        bar = progress_bar_for(
            self.progress, total=lambda: self.tally.total, output=self.output, quiet=settings.quiet
        )
        async with client, feed, anyio.create_task_group() as tasks:
            if bar is not None and settings.path is not None and settings.path != STDIN:
                tasks.start_soon(self._count_the_file, settings.path)
            ended = await BatchRun(
                client=client,
                feed=feed,
                tally=self.tally,
                output=self.output,
                journal=self.journal,
                bar=bar,
                progress=self.progress,
                deadline=settings.deadline,
                wait_for_quota=settings.wait_for_quota,
            ).run()
            tasks.cancel_scope.cancel()
        self.tally.already_stopped = feed.skipped
        return ended

    def _client(self) -> AsyncVendorClient:
        settings = self.settings
        try:
            return AsyncVendorClient(
                base_url=settings.base_url,
                metadata=settings.metadata or None,
                timeout=settings.timeout,
                retry=RetryPolicy(max_attempts=settings.max_attempts),
                rate_limit=None if settings.rate is None else RateLimit(per_second=settings.rate),
                max_concurrency=settings.concurrency,
                redis_url=settings.redis_url,
            )
        except InvalidRequestError as exc:
            raise ConfigError(str(exc)) from None

    async def _count_the_file(self, path: str) -> None:
        """Count the file's ids in a thread, for the bar's total."""
        stop = threading.Event()
        try:
            counted = await anyio.to_thread.run_sync(
                count_ids, path, self.skip, stop, abandon_on_cancel=True
            )
        finally:
            stop.set()
        if counted is not None:
            self.tally.total = self.given + counted
