"""``hiveon-async fake-server``: the fake vendor API on a port, until Ctrl-C or SIGTERM.

By default every id is a running deployment and nothing fails; ``--deployments``
says which ids exist (the rest answer 404), and ``--fail-rate`` or ``--faults``
how often, and how, requests fail.
"""

from __future__ import annotations

import math
import secrets
from contextlib import suppress

import anyio
import click
from click.core import ParameterSource

from ._faults import FAULT_MIX, describe_faults, fault_rates, parse_faults
from ._ids import parse_id
from ._options import seed_option
from ._signals import stop_signals

__all__ = ["fake_server"]


def _fault_mix(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> dict[int | str, float] | None:
    if value is None:
        return None
    try:
        return parse_faults(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _read_ids(path: str) -> frozenset[str]:
    """Return the ids of a ``--deployments`` file (read whole: it is a fake's registry)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as lines:
            return frozenset(found for line in lines if (found := parse_id(line)))
    except OSError as exc:
        raise click.FileError(path, exc.strerror) from None


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
    help="Fraction of requests that fail transiently, spread as "
    + ", ".join(f"{fault} {share:.0%}" for fault, share in FAULT_MIX.items())
    + ". Random 429s and 503s carry Retry-After: 1.",
)
@click.option(
    "--faults",
    "fault_mix",
    metavar="FAULT=RATE,...",
    callback=_fault_mix,
    help="Choose the fault mix instead of --fail-rate: comma-separated fractions of requests "
    "per status code (400-599) or fault (reset, drop, stall, trickle, garbage, mismatch, "
    "huge, redirect), e.g. 500=0.1,503=0.05,429=0.02,reset=0.01.",
)
@click.option(
    "--deployments",
    "deployments_path",
    type=click.Path(exists=True, dir_okay=False),
    help="The ids that exist, one per line (blank lines and '#' comments ignored); any other "
    "id answers 404. Default: every id exists.",
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
    fault_mix: dict[int | str, float] | None,
    deployments_path: str | None,
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

    if fault_mix is not None:
        source = click.get_current_context().get_parameter_source("fail_rate")
        if source is not ParameterSource.DEFAULT:
            raise click.UsageError("give --fail-rate or --faults, not both")
    rates = fault_mix if fault_mix is not None else fault_rates(fail_rate)
    deployments = None if deployments_path is None else _read_ids(deployments_path)
    # A generated key is printed: it guards nothing but a fake on this machine.
    generated = api_key is None
    key = api_key if api_key is not None else "fake-" + secrets.token_urlsafe(12)
    fake = FakeVendorAPI(
        api_keys=[key],
        deployments=deployments,
        faults=FaultPlan(seed=seed, rates=rates, latency=latency / 1000),
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
                if deployments is not None:
                    click.echo(
                        f"Deployments: {len(deployments):,} from {deployments_path}; "
                        "any other id answers 404."
                    )
                if any(rate > 0 for rate in rates.values()):
                    click.echo(f"Random faults: {describe_faults(rates)}.")
                click.echo("Press Ctrl-C to stop.")
                async for _ in signals:
                    break

    # Here Ctrl-C is how the server is meant to stop, even where it arrives as an exception.
    with suppress(KeyboardInterrupt):
        anyio.run(serve)
    count = fake.request_count
    click.echo(f"Stopped after {count:,} request{'' if count == 1 else 's'}.")
