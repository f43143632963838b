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

import anyio
import attrs
import click

from ._batch import BatchProgress
from ._cli_ids import IdFeed
from ._cli_output import Tally, output_for
from ._cli_progress import progress_bar_for
from ._cli_run import EXIT_INTERRUPTED, Ending, run_batch
from ._cli_summary import conclude
from ._client import AsyncVendorClient
from ._config import RetryPolicy
from .testing import FakeVendorAPI, FaultPlan

__all__ = [
    "DEMO_FAULT_MIX",
    "DemoSettings",
    "demo_client",
    "demo_fake",
    "demo_ids",
    "demo_retry_policy",
    "run_demo",
    "server_answers",
]

#: How the demo spreads ``--fail-rate`` over transient failures. No random 429s: the
#: rate limit sends real ones, and random throttling of an idle server would only
#: teach the client's pacing to crawl.
DEMO_FAULT_MIX: dict[int | str, float] = {500: 0.5, 503: 0.2, "reset": 0.15, "drop": 0.15}
#: Chance, for the whole demo, that some id runs out of attempts; sizes max_attempts.
DEMO_FAILURE_ODDS = 1e-4
#: Never fewer attempts than this, whatever the odds say.
DEMO_MIN_ATTEMPTS = 8
#: Short backoff, so that an unlucky id does not hold the demo up for long.
DEMO_INITIAL_DELAY = 0.05
DEMO_MAX_DELAY = 1.0


@attrs.frozen(kw_only=True)
class DemoSettings:
    """The demo's knobs (its command-line options)."""

    count: int
    fail_rate: float
    latency_ms: float
    rate_limit: float
    concurrency: int
    seed: int


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
    per_second = settings.rate_limit
    return FakeVendorAPI(
        api_keys=["demo-" + secrets.token_urlsafe(12)],
        faults=FaultPlan(
            seed=settings.seed,
            rates={kind: share * settings.fail_rate for kind, share in DEMO_FAULT_MIX.items()},
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


def run_demo(settings: DemoSettings, *, output_kind: str, quiet: bool) -> int:
    """Run the demo as ``hiveon-async demo`` does; return the exit status.

    Args:
        settings: The demo's settings.
        output_kind: ``none``, ``jsonl`` or ``table``.
        quiet: No introduction, progress bar or summary.

    Returns:
        The exit status (0 when every id was stopped).
    """
    fake = demo_fake(settings)
    output = output_for(output_kind)
    progress = BatchProgress()
    tally = Tally(total=settings.count)

    async def run() -> tuple[Ending, str | None]:
        async with fake.serve() as base_url:
            if not quiet:
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
            bar = progress_bar_for(
                progress,
                total=lambda: tally.total,
                output=output,
                quiet=quiet,
                extra=lambda: f"throttled {fake.status_counts[429]:,}",
            )
            async with (
                demo_client(fake, base_url, settings) as client,
                IdFeed(demo_ids(settings.count)) as feed,
            ):
                return await run_batch(
                    client, feed, tally=tally, output=output, bar=bar, progress=progress
                )

    try:
        ending, problem = anyio.run(run)
    except KeyboardInterrupt:  # before or after the run's own handling (or on Windows)
        click.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    extra = [
        ("429 answers (throttled)", f"{fake.status_counts[429]:,}"),
        ("server answers", server_answers(dict(fake.status_counts))),
    ]
    return conclude(ending, problem, tally, output, quiet=quiet, extra=extra)
