"""The shared limit: processes on one key stay under the server's limit together, through Redis.

``python -m tests.benchmarks.shared_limit`` (needs Debian's ``nginx-light`` and
``redis-server``).

Part 1, many processes: nginx ``limit_req`` (``limiters.py``) allows ``--rate``
requests/s per ``X-API-Key`` with a burst of 10, and logs every request it
sees (time and status). ``--processes`` child processes, each an
``AsyncVendorClient(rate_limit=RateLimit(per_second=R, burst=10),
redis_url=...)`` stopping its share of the ids with ``--workers`` workers,
share one Redis. ``--kill-at`` seconds in, the first child is killed
(SIGKILL). From nginx's log:

- the most requests in any one-second window (goal: at most R + burst);
- the rate of successes while every survivor runs, as a share of R (goal: 95%);
- the share of requests refused with 429 (goal: at most 1%);
- how long after the kill the others reach 95% of R again over a one-second
  window (goal: within 2 s).

Part 2, the cost (``--cost``): one process stops ``--cost-ids`` ids through
the in-process fake (no network, a rate limit too high to wait on), with the
local gate and then with ``redis_url``; the difference per request, wall
time and CPU, is what booking through Redis adds (one script call per group of
queued requests, over loopback).

Writes ``build/bench/shared_limit.json`` and prints a Markdown summary. Exit
status 1 only when a run could not be done.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from .limiters import LIMITERS, NGINX_BURST, LimiterMissingError, LimiterProcess
from .measure import cpu_seconds
from .server import process_cpu_seconds

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[2]
KEY_VARIABLE = "HIVEON_BENCH_API_KEY"
CLORE_API_KEY = "clore-bench"
RESULT_PREFIX = "SHARED-RESULT "
GOAL_SHARE = 0.95
GOAL_REFUSED = 0.01
GOAL_TAKEOVER = 2.0


# --- redis-server ---------------------------------------------------------------------


class Redis:
    """A ``redis-server`` on a free loopback port, without persistence."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server") or shutil.which(
            "redis-server", path="/usr/sbin:/usr/bin"
        )
        if binary is None:
            raise LimiterMissingError(
                "redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)"
            )
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.directory = tempfile.mkdtemp(prefix="hiveon-bench-redis-")
        self.process = subprocess.Popen(
            [
                *(binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "no", "--dir", self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def cpu_seconds(self) -> float | None:
        return process_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


# --- the child: one process's share of the ids ----------------------------------------


async def _child(args: argparse.Namespace) -> dict[str, Any]:
    from hiveon_async import AsyncVendorClient, RateLimit, RetryPolicy

    ids = [f"dep-{args.first + index:07d}" for index in range(args.n)]
    async with AsyncVendorClient(
        api_key=os.environ[KEY_VARIABLE],
        base_url=args.url,
        metadata={"CLORE_API_KEY": CLORE_API_KEY},
        rate_limit=RateLimit(per_second=args.rate, burst=NGINX_BURST),
        retry=RetryPolicy(max_attempts=10, budget=None),
        max_concurrency=args.workers,
        redis_url=args.redis,
    ) as client:
        # Started and imported: wait for the parent's word, so that all start together.
        print("READY", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
        report = await client.stop_deployments(ids, concurrency=args.workers)
    return {"stopped": len(report.stopped), "failed": len(report.failed), "end": time.time()}


def child(args: argparse.Namespace) -> int:
    result = anyio.run(_child, args, backend="asyncio")
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


# --- part 1: many processes -----------------------------------------------------------


def _most_in_window(times: Sequence[float], width: float) -> int:
    most, first = 0, 0
    for last, moment in enumerate(times):
        while times[first] <= moment - width:
            first += 1
        most = max(most, last - first + 1)
    return most


def _count(times: Sequence[float], start: float, end: float) -> int:
    return sum(1 for moment in times if start <= moment < end)


def _takeover(successes: Sequence[float], killed: float, rate: int) -> float | None:
    """Seconds from the kill to the end of the first 1 s window at 95% of ``rate``."""
    step = 0.05
    start = killed
    while start < killed + 10:
        if _count(successes, start, start + 1.0) >= GOAL_SHARE * rate:
            return start + 1.0 - killed
        start += step
    return None


def many_processes(args: argparse.Namespace) -> dict[str, Any]:
    redis = Redis()
    nginx = LimiterProcess.start(LIMITERS["nginx"], args.rate, access_log=True)
    load_before = os.getloadavg()[0]
    try:
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env[KEY_VARIABLE] = f"bench-{secrets.token_hex(8)}"
        nginx_cpu = nginx.cpu_seconds()
        redis_cpu = redis.cpu_seconds()
        per_child = int(args.rate * args.seconds / args.processes)
        children = []
        for number in range(args.processes):
            command = [sys.executable, "-m", "tests.benchmarks.shared_limit", "--child"]
            command += [f"--url={nginx.url}", f"--redis={redis.url}", f"--rate={args.rate}"]
            command += [f"--workers={args.workers}", f"--n={per_child}"]
            command.append(f"--first={number * per_child}")
            children.append(
                subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for process in children:
            assert process.stdout is not None
            assert process.stdin is not None
            if process.stdout.readline().strip() != "READY":
                raise RuntimeError("a child did not start")
        began = time.time()
        for process in children:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        time.sleep(args.kill_at)
        children[0].send_signal(signal.SIGKILL)
        killed = time.time()
        results = []
        for process in children[1:]:
            out, _ = process.communicate(timeout=120)
            line = next(
                (x for x in reversed(out.splitlines()) if x.startswith(RESULT_PREFIX)), None
            )
            results.append(None if line is None else json.loads(line[len(RESULT_PREFIX) :]))
        children[0].wait()
        ended = time.time()
        nginx_cpu = (nginx.cpu_seconds() or 0) - (nginx_cpu or 0)
        redis_cpu = (redis.cpu_seconds() or 0) - (redis_cpu or 0)
        seen = [
            (float(moment), int(status))
            for moment, status in (
                line.split() for line in (nginx.directory / "access.log").read_text().splitlines()
            )
        ]
    finally:
        nginx.stop()
        redis.stop()
    seen.sort()
    folder = ROOT / "build" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    # What nginx saw, for a closer look: seconds from the start, status.
    (folder / "shared_limit_seen.json").write_text(
        json.dumps({"killed": killed - began, "seen": [(t - began, c) for t, c in seen]})
    )
    times = [moment for moment, _ in seen]
    successes = [moment for moment, status in seen if status == 200]
    refused = sum(1 for _, status in seen if status == 429)
    first_end = min(r["end"] for r in results if r is not None)
    steady = first_end - times[0]
    share = _count(successes, times[0], first_end) / (steady * args.rate)
    return {
        "processes": args.processes,
        "workers": args.workers,
        "rate": args.rate,
        "burst": NGINX_BURST,
        "requests": len(seen),
        "stopped": len(successes),
        "refused": refused,
        "refused_share": refused / len(seen),
        "most_in_1s": _most_in_window(times, 1.0),
        # Without the first second: where each process opens its connections at once.
        "most_in_1s_after_first": _most_in_window([t for t in times if t >= times[0] + 1], 1.0),
        "refused_after_first": sum(1 for t, c in seen if c == 429 and t >= times[0] + 1),
        "share_of_rate": share,
        "steady_seconds": steady,
        "killed_after": killed - began,
        "takeover_seconds": _takeover(successes, killed, args.rate),
        "survivors_failed": sum(r["failed"] for r in results if r is not None),
        "survivors_reported": sum(r is not None for r in results),
        "wall": ended - began,
        "nginx_cpu_share": nginx_cpu / (ended - began),
        "redis_cpu_share": redis_cpu / (ended - began),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


# --- part 2: the cost per request -----------------------------------------------------


async def _one_cost(n: int, redis_url: str | None) -> tuple[float, float]:
    from hiveon_async import RateLimit
    from hiveon_async.testing import FakeVendorAPI

    fake = FakeVendorAPI(record=False)
    ids = [f"dep-{index:07d}" for index in range(n)]
    limit = RateLimit(per_second=1_000_000, burst=1000)
    async with fake.client(rate_limit=limit, redis_url=redis_url, max_concurrency=32) as client:
        await client.stop_deployment("warm-up")
        cpu, wall = cpu_seconds(), time.perf_counter()
        await client.stop_deployments(ids, concurrency=32)
        return (time.perf_counter() - wall) / n, (cpu_seconds() - cpu) / n


def cost(args: argparse.Namespace) -> dict[str, Any]:
    redis = Redis()
    load_before = os.getloadavg()[0]
    try:
        local: list[tuple[float, float]] = []
        shared: list[tuple[float, float]] = []
        for _ in range(args.repeats):
            local.append(anyio.run(_one_cost, args.cost_ids, None, backend="asyncio"))
            shared.append(anyio.run(_one_cost, args.cost_ids, redis.url, backend="asyncio"))
    finally:
        redis.stop()

    def median_us(runs: list[tuple[float, float]], index: int) -> float:
        return statistics.median(run[index] for run in runs) * 1e6

    return {
        "ids": args.cost_ids,
        "repeats": args.repeats,
        "local_wall_us": median_us(local, 0),
        "shared_wall_us": median_us(shared, 0),
        "local_cpu_us": median_us(local, 1),
        "shared_cpu_us": median_us(shared, 1),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


# --- report ---------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def markdown(many: dict[str, Any] | None, costs: dict[str, Any] | None) -> str:
    lines = []
    if many is not None:
        rate, burst = many["rate"], many["burst"]
        takeover = many["takeover_seconds"]
        lines += [
            f"{many['processes']} processes x {many['workers']} workers, one key, nginx "
            f"limit_req {rate} r/s burst {burst}; process 1 killed after "
            f"{many['killed_after']:.1f} s.",
            "",
            "| measure | figure | goal |",
            "| --- | --- | --- |",
            f"| most requests in any 1 s window | {many['most_in_1s']} | <= {rate + burst} "
            f"({_verdict(many['most_in_1s'] <= rate + burst)}) |",
            f"| the same, from the second second on | {many['most_in_1s_after_first']} | "
            f"<= {rate + burst} ({_verdict(many['most_in_1s_after_first'] <= rate + burst)}) |",
            f"| successes/s while all survivors run, share of {rate}/s | "
            f"{many['share_of_rate']:.1%} over {many['steady_seconds']:.1f} s | >= 95% "
            f"({_verdict(many['share_of_rate'] >= GOAL_SHARE)}) |",
            f"| refused (429) | {many['refused']} of {many['requests']} "
            f"({many['refused_share']:.2%}) | <= 1% "
            f"({_verdict(many['refused_share'] <= GOAL_REFUSED)}); "
            f"{many['refused_after_first']} after the first second |",
            "| back to 95% of the rate after the kill | "
            + ("never" if takeover is None else f"{takeover:.2f} s")
            + f" | <= 2 s ({_verdict(takeover is not None and takeover <= GOAL_TAKEOVER)}) |",
            f"| ids failed in the surviving processes | {many['survivors_failed']} | 0 |",
            "",
            f"nginx CPU {many['nginx_cpu_share']:.1%} of a core, redis-server "
            f"{many['redis_cpu_share']:.1%}; load average {many['load_before']:.2f} before, "
            f"{many['load_after']:.2f} after.",
            "",
        ]
    if costs is not None:
        lines += [
            f"Cost per request, {costs['ids']} ids at concurrency 32 through the in-process "
            f"fake, median of {costs['repeats']}:",
            "",
            "| gate | wall per request | CPU per request |",
            "| --- | --- | --- |",
            f"| local | {costs['local_wall_us']:.0f} us | {costs['local_cpu_us']:.0f} us |",
            f"| shared (Redis on loopback) | {costs['shared_wall_us']:.0f} us | "
            f"{costs['shared_cpu_us']:.0f} us |",
            f"| added | {costs['shared_wall_us'] - costs['local_wall_us']:.0f} us | "
            f"{costs['shared_cpu_us'] - costs['local_cpu_us']:.0f} us |",
            "",
            f"Load average {costs['load_before']:.2f} before, {costs['load_after']:.2f} after.",
        ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.shared_limit")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=12.0, help="ids: rate x seconds")
    parser.add_argument("--kill-at", type=float, default=5.0)
    parser.add_argument("--cost", action="store_true", help="only the cost per request")
    parser.add_argument("--no-cost", action="store_true", help="skip the cost per request")
    parser.add_argument("--cost-ids", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    # The child's own arguments.
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child(args)
    try:
        many = None if args.cost else many_processes(args)
        costs = None if args.no_cost else cost(args)
    except LimiterMissingError as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return 1
    out = ROOT / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "shared_limit.json").write_text(json.dumps({"many": many, "cost": costs}, indent=2))
    print(markdown(many, costs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
