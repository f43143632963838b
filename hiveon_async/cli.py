"""The ``hiveon-async`` command line (install the ``[cli]`` extra).

Each command is a function registered on the :func:`main` group; heavy imports
happen inside the command that needs them, so ``hiveon-async --help`` stays fast.
The parts of ``stop`` and ``demo`` live in ``_cli_*`` modules: the command
bodies (``_cli_stop``, ``_cli_demo``), the ids (``_cli_ids``), the journal
(``_cli_journal``), the records (``_cli_output``), the progress bar
(``_cli_progress``), the run itself (``_cli_run``) and its summary
(``_cli_summary``).

Exit statuses of ``stop`` and ``demo``: 0 every id stopped; 1 any failed or
skipped; 2 a usage or configuration error; 130 Ctrl-C; 141 stdout closed;
143 SIGTERM.
"""

from __future__ import annotations

import math
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, nullcontext, suppress

import anyio
import click

from ._config import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_TIMEOUT,
)
from ._version import __version__

__all__ = ["main"]

#: How ``fake-server --fail-rate R`` spreads R over the transient failures a client must survive.
FAIL_RATE_MIX: dict[int | str, float] = {500: 0.5, 503: 0.2, 429: 0.1, "reset": 0.1, "drop": 0.1}


#: Options that more than one command takes, declared once.
_seed_option = click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the random faults."
)
_concurrency_option = click.option(
    "--concurrency",
    type=click.IntRange(1, 1024),
    default=DEFAULT_MAX_CONCURRENCY,
    show_default=True,
    help="Requests in flight at most.",
)
_quiet_option = click.option(
    "--quiet", "-q", is_flag=True, help="No progress bar and no summary on stderr."
)


@click.group()
@click.version_option(__version__, prog_name="hiveon-async")
def main() -> None:
    """Stop Hiveon vendor deployments, or run a fake of the vendor API."""


@main.command("fake-server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@click.option("--api-key", help="The X-API-Key to accept. Default: a random one, printed.")
@click.option(
    "--fail-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Fraction of requests that fail transiently: 500, 503, 429, resets and drops.",
)
@click.option(
    "--latency",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Milliseconds added before every answer.",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    help="Requests per second allowed per API key (burst of the same size); then 429.",
)
@_seed_option
def fake_server(
    host: str,
    port: int,
    api_key: str | None,
    fail_rate: float,
    latency: float,
    rate_limit: float | None,
    seed: int,
) -> None:
    """Serve a fake of the vendor's stop-deployment API until Ctrl-C.

    It prints its URL and, unless --api-key is given, a generated API key.
    Any non-empty CLORE_API_KEY is accepted.
    """
    # Imported here, not at the top: other commands do not need the server (or httpx).
    from .testing import FakeVendorAPI, FaultPlan

    # A generated key is printed: it guards nothing but a fake on this machine.
    generated = api_key is None
    key = api_key if api_key is not None else "fake-" + secrets.token_urlsafe(12)
    fake = FakeVendorAPI(
        api_keys=[key],
        faults=FaultPlan(
            seed=seed,
            rates={kind: share * fail_rate for kind, share in FAIL_RATE_MIX.items()},
            latency=latency / 1000,
        ),
        rate_limit=None if rate_limit is None else (rate_limit, max(1, math.ceil(rate_limit))),
        record=False,
    )

    async def serve() -> None:
        # Signals first: a supervisor may stop us as soon as the URL is printed.
        with _stop_signals() as signals:
            async with fake.serve(host=host, port=port) as base_url:
                click.echo(f"Fake Hiveon vendor API listening on {base_url}")
                if generated:
                    click.echo(f"API key: {key}")
                click.echo("Press Ctrl-C to stop.")
                async for _ in signals:
                    break

    # Ctrl-C where there are no signal handlers (Windows) is a normal stop too.
    with suppress(KeyboardInterrupt):
        anyio.run(serve)
    count = fake.request_count
    click.echo(f"Stopped after {count} request{'' if count == 1 else 's'}.")


def _stop_signals() -> AbstractContextManager[AsyncIterator[object]]:
    """Receive SIGINT and SIGTERM: a terminating supervisor deserves a clean exit too."""
    if sys.platform == "win32":  # asyncio has no signal handlers there; Ctrl-C still works
        return nullcontext(_never())
    return anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM)


async def _never() -> AsyncIterator[object]:
    await anyio.sleep_forever()
    yield None  # pragma: no cover - unreachable, makes this an async generator


# -- stop and demo -----------------------------------------------------------------


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


@main.command("stop")
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
@_concurrency_option
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="Requests per second at most, retries included. Default: no limit but the server's.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(1, 100),
    default=DEFAULT_MAX_ATTEMPTS,
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
@click.option(
    "--output",
    "output_kind",
    type=click.Choice(["jsonl", "table"]),
    default="jsonl",
    show_default=True,
    help="JSON Lines as ids complete, or a table at the end.",
)
@_quiet_option
@click.pass_context
def stop(
    ctx: click.Context,
    ids: tuple[str, ...],
    path: str | None,
    base_url: str,
    concurrency: int,
    rate: float | None,
    max_attempts: int,
    timeout: float,
    deadline: float | None,
    metadata: dict[str, str],
    journal_path: str | None,
    output_kind: str,
    quiet: bool,
) -> None:
    """Stop deployments: the IDS given, and those in --file.

    Credentials come from the environment only: $HIVEON_API_KEY (the vendor
    API key) and $CLORE_API_KEY. Each outcome is printed as it completes;
    a summary goes to stderr.

    Exit status: 0 every id stopped; 1 any failed or skipped; 2 usage or
    configuration error; 130 Ctrl-C; 141 stdout closed; 143 SIGTERM.
    """
    if not ids and path is None:
        raise click.UsageError(
            "no deployment ids: give them as arguments, or --file PATH (--file - reads stdin)"
        )
    from ._cli_stop import run_stop

    ctx.exit(
        run_stop(
            ids,
            path=path,
            base_url=base_url,
            concurrency=concurrency,
            rate=rate,
            max_attempts=max_attempts,
            timeout=timeout,
            deadline=deadline,
            metadata=metadata,
            journal_path=journal_path,
            output_kind=output_kind,
            quiet=quiet,
        )
    )


@main.command("demo")
@click.option(
    "--count",
    type=click.IntRange(1, 10_000_000),
    default=2000,
    show_default=True,
    help="Deployments to stop.",
)
@click.option(
    "--fail-rate",
    type=click.FloatRange(0, 0.5),
    default=0.2,
    show_default=True,
    help="Fraction of requests the fake fails at random: 500, 503, resets and drops.",
)
@click.option(
    "--latency",
    type=click.FloatRange(0, 1000),
    default=20.0,
    show_default=True,
    help="Milliseconds the fake takes to answer.",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=1),
    default=500.0,
    show_default=True,
    help="Requests per second the fake allows; past it, 429 with Retry-After.",
)
@_concurrency_option
@_seed_option
@click.option(
    "--output",
    "output_kind",
    type=click.Choice(["none", "jsonl", "table"]),
    default="none",
    show_default=True,
    help="Per-id output on stdout, as for stop.",
)
@_quiet_option
@click.pass_context
def demo(
    ctx: click.Context,
    count: int,
    fail_rate: float,
    latency: float,
    rate_limit: float,
    concurrency: int,
    seed: int,
    output_kind: str,
    quiet: bool,
) -> None:
    """Stop deployments on a fake vendor API that fails and throttles; no credentials needed.

    The fake listens on a free loopback port. Watch the client retry, pause
    for Retry-After and pace itself under the fake's rate limit: every id
    ends stopped, and the summary shows what it took.
    """
    from ._cli_demo import DemoSettings, run_demo

    settings = DemoSettings(
        count=count,
        fail_rate=fail_rate,
        latency_ms=latency,
        rate_limit=rate_limit,
        concurrency=concurrency,
        seed=seed,
    )
    ctx.exit(run_demo(settings, output_kind=output_kind, quiet=quiet))


if __name__ == "__main__":
    main()
