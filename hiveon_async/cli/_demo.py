"""``hiveon-async demo``: a real client against a fake vendor API that fails and throttles.

The fake runs on a free loopback port in the same event loop. It fails a share
of requests at random (500, 503, connection resets and drops: what a client
must survive) and rate-limits its API key, answering 429 with ``Retry-After``
past the limit. The client retries, pauses for ``Retry-After`` and paces
itself below the limit, and every id ends stopped.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import anyio
import attrs
import click

from hiveon_async import AsyncVendorClient, BatchProgress, RetryPolicy

from ._exit import CliExit
from ._faults import fault_rates
from ._ids import IdFeed
from ._options import concurrency_option, output_option, quiet_option, seed_option
from ._output import Tally, output_for
from ._progress import progress_bar_for
from ._run import BatchRun, Ending
from ._summary import conclude

if TYPE_CHECKING:
    from hiveon_async.testing import FakeVendorAPI

__all__ = [
    "DEMO_MIN_ATTEMPTS",
    "DemoSettings",
    "demo",
    "demo_client",
    "demo_fake",
    "demo_ids",
    "demo_retry_policy",
    "run_demo",
    "server_answers",
]

#: Chance, for the whole demo, that some id runs out of attempts; sizes max_attempts.
DEMO_FAILURE_ODDS = 1e-4
#: Never fewer attempts than this, whatever the odds say.
DEMO_MIN_ATTEMPTS = 8
#: Short backoff, so that an unlucky id does not hold the demo up for long.
DEMO_INITIAL_DELAY = 0.05
DEMO_MAX_DELAY = 1.0


@attrs.frozen(kw_only=True)
class DemoSettings:
    """The demo's command-line options.

    Attributes:
        count: Deployments to stop.
        fail_rate: Fraction of requests the fake fails at random.
        latency_ms: Milliseconds the fake takes to answer.
        rate_limit: Requests per second the fake allows.
        concurrency: Requests in flight at most.
        seed: Seed of the random faults.
        output_kind: ``none``, ``jsonl`` or ``table``.
        quiet: No introduction, progress bar or summary.
    """

    count: int
    fail_rate: float
    latency_ms: float
    rate_limit: float
    concurrency: int
    seed: int
    output_kind: str
    quiet: bool


@click.command("demo")
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
    "latency_ms",
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
@concurrency_option
@seed_option
@output_option(
    ["none", "jsonl", "table"], default="none", help="Per-id output on stdout, as for stop."
)
@quiet_option
def demo(**options: Any) -> None:
    """Stop deployments on a fake vendor API that fails and throttles; no credentials needed.

    The fake listens on a free loopback port. Watch the client retry, pause
    for Retry-After and pace itself under the fake's rate limit: every id
    ends stopped, and the summary shows what it took.
    """
    raise CliExit(run_demo(DemoSettings(**options)))


def demo_ids(count: int) -> Iterator[str]:
    """The demo's deployment ids, made up as they are needed.

    Args:
        count: How many.

    Yields:
        ``demo-00000``, ``demo-00001``, ...
    """
    width = max(5, len(str(count - 1)))
    for number in range(count):
        yield f"demo-{number:0{width}}"


def demo_retry_policy(settings: DemoSettings) -> RetryPolicy:
    """Retry enough that every id ends stopped, with short waits and no retry budget.

    The budget is off because the faults are random: a budget guards a backend
    that is down, and this one never is. Each attempt fails with probability
    ``fail_rate``, so ``n`` attempts leave ``count * fail_rate**n`` ids
    unstopped on average; ``n`` is chosen to make that at most
    :data:`DEMO_FAILURE_ODDS`.

    Args:
        settings: The demo's settings.

    Returns:
        The policy.
    """
    attempts = DEMO_MIN_ATTEMPTS
    if settings.fail_rate > 0:
        needed = math.log(DEMO_FAILURE_ODDS / settings.count) / math.log(settings.fail_rate)
        attempts = max(attempts, math.ceil(needed))
    return RetryPolicy(
        max_attempts=attempts,
        initial_delay=DEMO_INITIAL_DELAY,
        max_delay=DEMO_MAX_DELAY,
        budget=None,
    )


def demo_fake(settings: DemoSettings) -> FakeVendorAPI:
    """Return the fake vendor API of the demo (its API key is random and never shown).

    Args:
        settings: The demo's settings.

    Returns:
        The fake.
    """
    from hiveon_async.testing import FakeVendorAPI, FaultPlan

    per_second = settings.rate_limit
    return FakeVendorAPI(
        api_keys=["demo-" + secrets.token_urlsafe(12)],
        faults=FaultPlan(
            seed=settings.seed,
            # The rate limit sends real 429s; random ones would only slow the pacing down.
            rates=fault_rates(settings.fail_rate, random_throttling=False),
            latency=settings.latency_ms / 1000,
            retry_after=None,  # random 503s: plain retries; the rate limit sends Retry-After
        ),
        rate_limit=(per_second, max(1, math.ceil(per_second / 10))),
        record=False,
    )


def demo_client(fake: FakeVendorAPI, base_url: str, settings: DemoSettings) -> AsyncVendorClient:
    """Return a client for the fake's socket, with the demo's retry policy.

    Args:
        fake: The demo's fake.
        base_url: Where it listens.
        settings: The demo's settings.

    Returns:
        The client.
    """
    return AsyncVendorClient(
        api_key=fake.api_key,
        base_url=base_url,
        metadata={"CLORE_API_KEY": fake.clore_api_key},
        retry=demo_retry_policy(settings),
        max_concurrency=settings.concurrency,
    )


def server_answers(counts: dict[int | str, int]) -> str:
    """Return the fake's answers as ``200 x2,000, 500 x301, ...``, most frequent first.

    Args:
        counts: The fake's ``status_counts``.

    Returns:
        One line.
    """
    ordered = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    return ", ".join(f"{answer} x{count:,}" for answer, count in ordered)


def _introduce(settings: DemoSettings, base_url: str) -> None:
    click.echo(
        f"A fake vendor API on {base_url} fails {settings.fail_rate:.0%} of "
        f"requests at random (500, 503, resets, drops), answers in "
        f"{settings.latency_ms:g} ms and allows {settings.rate_limit:g} "
        "requests/s (then 429 with Retry-After).\n"
        f"The client stops {settings.count:,} deployments through it, "
        f"{settings.concurrency} at a time, up to "
        f"{demo_retry_policy(settings).max_attempts} attempts each "
        "(no retry budget: the faults are random, not an outage).",
        err=True,
    )


def run_demo(settings: DemoSettings) -> int:
    """Run the demo as ``hiveon-async demo`` does; return the exit status.

    Args:
        settings: The demo's settings.

    Returns:
        The exit status (0 when every id was stopped).
    """
    fake = demo_fake(settings)
    output = output_for(settings.output_kind)
    progress = BatchProgress()
    tally = Tally(total=settings.count)
    bar = progress_bar_for(
        progress,
        total=lambda: tally.total,
        output=output,
        quiet=settings.quiet,
    )

    async def run() -> tuple[Ending, str | None]:
        async with fake.serve() as base_url:
            if not settings.quiet:
                _introduce(settings, base_url)
            async with (
                demo_client(fake, base_url, settings) as client,
                IdFeed(demo_ids(settings.count)) as feed,
            ):
                batch = BatchRun(
                    client=client, feed=feed, tally=tally, output=output, bar=bar, progress=progress
                )
                return await batch.run()

    ending, problem = anyio.run(run)
    extra = [("server answers", server_answers(dict(fake.status_counts)))]
    return conclude(ending, problem, tally, output, quiet=settings.quiet, extra=extra)
