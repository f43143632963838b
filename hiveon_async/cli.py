"""The ``hiveon-async`` command line (install the ``[cli]`` extra).

Each command is a function registered on the :func:`main` group; heavy imports
happen inside the command that needs them, so ``hiveon-async --help`` stays fast.
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

from ._version import __version__

__all__ = ["main"]

#: How ``fake-server --fail-rate R`` spreads R over the transient failures a client must survive.
FAIL_RATE_MIX: dict[int | str, float] = {500: 0.5, 503: 0.2, 429: 0.1, "reset": 0.1, "drop": 0.1}


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
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random faults.")
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
