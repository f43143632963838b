"""What a failed outcome costs in memory: ``python -m tests.benchmarks.outcome_memory``.

Two figures, on asyncio:

- **bytes per failed outcome** (tracemalloc): a batch of ids that all answer
  404 (the error keeps its status, message, redacted body, request id and a
  copy of the response), and a batch of invalid ids (refused before I/O);
  the memory the report holds, divided by the ids. The budget is 2 KiB.
- **RSS of a report of 1M failed ids**: a million invalid ids through
  ``stop_deployments``, the report held; the process's resident set size
  (``VmRSS``) before and after. The budget is 1 GB.

``--quick`` runs the RSS figure with 100,000 ids instead (and scales it).
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc

import anyio
import httpx

from hiveon_async import AsyncVendorClient, BatchReport, RetryPolicy

#: Ids per tracemalloc sample.
SAMPLE = 2_000
#: Ids of the RSS figure.
MILLION = 1_000_000
PER_OUTCOME_BUDGET = 2048
REPORT_BUDGET = 10**9


def not_found(request: httpx.Request) -> httpx.Response:
    """Every id: 404 with a small JSON error body and a request id, as the vendor answers."""
    return httpx.Response(
        404,
        json={"error": "deployment not found"},
        headers={"X-Request-Id": "req-0123456789abcdef"},
    )


def client() -> AsyncVendorClient:
    """A client of the 404 vendor, in-process."""
    return AsyncVendorClient(
        api_key="bench-api-key",
        base_url="https://api.hiveon.test",
        metadata={"CLORE_API_KEY": "bench-clore-key"},
        retry=RetryPolicy(max_attempts=1),
        transport=httpx.MockTransport(not_found),
    )


def rss() -> int:
    """The resident set size of this process, in bytes (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def per_outcome(ids: list[str]) -> tuple[float, BatchReport]:
    """Bytes the report of ``ids`` holds per outcome (tracemalloc), and the report."""
    async with client() as vendor:
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            report = await vendor.stop_deployments(ids, concurrency=32)
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
    return (after - before) / len(ids), report


async def report_rss(n: int) -> tuple[int, float]:
    """RSS growth while a report of ``n`` invalid ids is held, and the seconds it took."""
    ids = (f"bad id {number}" for number in range(n))  # a space: refused before any I/O
    gc.collect()
    before = rss()
    started = time.monotonic()
    async with client() as vendor:
        report = await vendor.stop_deployments(ids, concurrency=32)
    elapsed = time.monotonic() - started
    gc.collect()
    grown = rss() - before
    assert len(report.failed) == n
    del report
    return grown, elapsed


async def main(quick: bool) -> int:
    """Print the figures; return 1 when one is over its budget."""
    over = False
    for name, ids in (
        ("404 answered", [f"dep-{n}" for n in range(SAMPLE)]),
        ("invalid id", [f"bad id {n}" for n in range(SAMPLE)]),
    ):
        cost, report = await per_outcome(ids)
        assert len(report.failed) == SAMPLE, report
        error = report.failed[0].error
        assert error is not None
        assert error.__traceback__ is None
        verdict = "ok" if cost <= PER_OUTCOME_BUDGET else "OVER"
        over |= cost > PER_OUTCOME_BUDGET
        print(f"{name}: {cost:,.0f} bytes per failed outcome (budget 2,048): {verdict}")
    n = MILLION // 10 if quick else MILLION
    grown, elapsed = await report_rss(n)
    scaled = grown * MILLION // n
    verdict = "ok" if scaled < REPORT_BUDGET else "OVER"
    over |= scaled >= REPORT_BUDGET
    print(
        f"report of {n:,} failed ids: RSS +{grown / 2**20:,.0f} MiB in {elapsed:.1f}s"
        + (f" (1M: ~{scaled / 2**20:,.0f} MiB)" if quick else "")
        + f" (budget 1 GB): {verdict}"
    )
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main, "--quick" in sys.argv))
