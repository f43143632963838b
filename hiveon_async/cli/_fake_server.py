"""``hiveon-async fake-server``: the fake vendor API on a port, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import math
import secrets
from contextlib import suppress

import anyio
import click

from ._faults import fault_rates
from ._options import seed_option
from ._signals import stop_signals

__all__ = ["fake_server"]


@click.command("fake-server")
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
@seed_option
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
    # Imported here: the other commands do not need the fake.
    from hiveon_async.testing import FakeVendorAPI, FaultPlan

    # A generated key is printed: it guards nothing but a fake on this machine.
    generated = api_key is None
    key = api_key if api_key is not None else "fake-" + secrets.token_urlsafe(12)
    fake = FakeVendorAPI(
        api_keys=[key],
        faults=FaultPlan(seed=seed, rates=fault_rates(fail_rate), latency=latency / 1000),
        rate_limit=None if rate_limit is None else (rate_limit, max(1, math.ceil(rate_limit))),
        record=False,
    )

    async def serve() -> None:
        # Signals first: a supervisor may stop us as soon as the URL is printed.
        with stop_signals() as signals:
            async with fake.serve(host=host, port=port) as base_url:
                click.echo(f"Fake Hiveon vendor API listening on {base_url}")
                if generated:
                    click.echo(f"API key: {key}")
                click.echo("Press Ctrl-C to stop.")
                async for _ in signals:
                    break

    # Here Ctrl-C is how the server is meant to stop, even where it arrives as an exception.
    with suppress(KeyboardInterrupt):
        anyio.run(serve)
    count = fake.request_count
    click.echo(f"Stopped after {count} request{'' if count == 1 else 's'}.")
