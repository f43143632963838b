"""The long fault soak: 50,000 ids per backend and path, every invariant, and flat memory.

Run it with ``nox -s soak``, or directly::

    python -m tests.soak.long_soak                      # every backend and path
    python -m tests.soak.long_soak --backends trio --ids 10000

Each backend and path runs in a process of its own, so that its peak RSS is
its own. A run is the short soak's checks (``tests/_soak.py``) on ``--ids``
ids, then a memory phase: ``--memory-ids`` stops streamed over a few hundred
repeated ids, during which the resident set must stay flat.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

import anyio
import attrs

from tests._soak import RUNNERS, SoakSettings, run_memory_soak, run_soak

BACKENDS = ("asyncio", "trio")
#: RSS may grow this much (MB) after the memory phase has warmed up, and no more.
FLAT_MB = 8.0


def combinations(backends: list[str], runners: list[str]) -> list[tuple[str, str]]:
    """Every (backend, runner) pair that exists: aiohttp's pool runs on asyncio only."""
    return [
        (backend, runner)
        for backend in backends
        for runner in runners
        if not (runner == "aiohttp" and backend != "asyncio")
    ]


async def one(settings: SoakSettings, memory_ids: int) -> dict[str, Any]:
    """Run the soak and the memory phase in this process; return the figures."""
    figures = await run_soak(settings)
    result = attrs.asdict(figures)
    memory = attrs.evolve(settings, ids=memory_ids, sample_every=max(memory_ids // 40, 1))
    samples = await run_memory_soak(memory)
    warm = samples[len(samples) // 4 :]
    growth = max(warm) - warm[0] if warm else 0.0
    result["memory_ids"] = memory_ids
    result["memory_growth_mb"] = growth
    result["memory_samples_mb"] = [round(sample, 1) for sample in samples]
    assert growth <= FLAT_MB, f"RSS grew {growth:.1f} MB after warming up: {samples}"
    return result


def report(result: dict[str, Any]) -> str:
    """The figures of one run, for a person."""
    faults = ", ".join(f"{name}={count}" for name, count in result["faults"].items())
    rate = result["requests"] / result["elapsed"]
    return "\n".join(
        [
            f"== {result['backend']} / {result['runner']}",
            f"ids         {result['ids']} ({result['unique']} unique, "
            f"{result['duplicates']} duplicates)",
            f"requests    {result['requests']} ({rate:.0f}/s; busiest second at the fake "
            f"{result['peak_window_rate']:.0f}, at most {result['rate_excess']:.1f} "
            "ahead of the rate)",
            f"outcomes    stopped={result['stopped']} failed={result['failed']} "
            f"skipped={result['skipped']}",
            f"answers     {faults}",
            f"retries     {result['retries']} ({result['timeouts']} after timeouts; "
            f"{result['lost_on_the_way']} attempts failed before reaching the fake)",
            f"elapsed     {result['elapsed']:.1f}s",
            f"in flight   peak {result['peak_in_flight']} at the fake "
            f"({result['peak_answering']} excluding stalls); "
            f"max loop lag {result['max_loop_lag']:.3f}s",
            f"RSS         {result['rss_start_mb']:.1f} -> {result['rss_end_mb']:.1f} MB, "
            f"peak {result['peak_rss_mb']:.1f} MB",
            f"memory      {result['memory_ids']} more stops streamed: RSS grew "
            f"{result['memory_growth_mb']:.1f} MB after warm-up "
            f"(samples {result['memory_samples_mb'][0]} .. {result['memory_samples_mb'][-1]} MB)",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Run the long soak; return the exit status (0 when every run held every invariant)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=50_000)
    parser.add_argument("--memory-ids", type=int, default=20_000)
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--runners", nargs="+", choices=RUNNERS, default=list(RUNNERS))
    parser.add_argument("--per-second", type=float, default=1500.0)
    parser.add_argument("--burst", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seed", type=int, default=SoakSettings(ids=0).seed)
    parser.add_argument("--one", nargs=2, metavar=("BACKEND", "RUNNER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:
        backend, runner = args.one
        settings = SoakSettings(
            ids=args.ids,
            runner=runner,
            seed=args.seed,
            per_second=args.per_second,
            burst=args.burst,
            concurrency=args.concurrency,
            sample_every=max(args.ids // 50, 1),
        )
        result = anyio.run(one, settings, args.memory_ids, backend=backend)
        print(json.dumps(result))
        return 0

    failures = 0
    started = time.monotonic()
    for backend, runner in combinations(args.backends, args.runners):
        command = [
            sys.executable,
            "-m",
            "tests.soak.long_soak",
            *("--ids", str(args.ids), "--memory-ids", str(args.memory_ids)),
            *("--per-second", str(args.per_second), "--burst", str(args.burst)),
            *("--concurrency", str(args.concurrency), "--seed", str(args.seed)),
            *("--one", backend, runner),
        ]
        print(f"-- soaking {backend} / {runner} ...", flush=True)
        run = subprocess.run(command, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            failures += 1
            print(f"!! {backend} / {runner} FAILED\n{run.stdout}{run.stderr}", flush=True)
            continue
        print(report(json.loads(run.stdout.splitlines()[-1])), flush=True)
    print(f"-- soak done in {time.monotonic() - started:.0f}s: {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
