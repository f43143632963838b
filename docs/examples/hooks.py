"""Hooks without OpenTelemetry: count attempts and log retries (Prometheus, structlog...)."""

import logging
from collections import Counter

import anyio

from hiveon_async import AsyncVendorClient, AttemptInfo, RetryInfo

log = logging.getLogger("fleet")
# Stand-ins for your metrics library: prometheus_client's Counter.labels(...).inc() fits here.
attempts_by_status: Counter[str] = Counter()


def on_attempt(info: AttemptInfo) -> None:
    # Runs on the event loop after every request: keep it quick, never block.
    attempts_by_status[str(info.status or info.error_type)] += 1


def on_retry(info: RetryInfo) -> None:
    log.warning(
        "retrying %s in %.1fs after %s (attempt %d)",
        info.deployment_id,
        info.wait,
        info.cause,
        info.attempt,
    )


async def main() -> None:
    async with AsyncVendorClient(on_attempt=on_attempt, on_retry=on_retry) as client:
        result = await client.stop_deployment("dep-1")
    print(f"stopped {result.deployment_id}")
    print(f"attempts by status: {dict(sorted(attempts_by_status.items()))}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    anyio.run(main)
