"""The rate-limited cell under harder conditions: a shared key, a loaded machine, a spent quota.

``python -m tests.benchmarks.conditions`` (also run by ``nox -s bench``). The
servers are those of the rate-limited cell (``limiters.py``: nginx ``limit_req``
and HAProxy's 1 s window), started on loopback allowing R requests/s per key;
each batch runs in a fresh process through ``ratelimited.py``'s child.

- ``fairness``: two processes learn on one key at the same moment, each with
  ``IDS_PER_RATE / 2 x R`` ids at concurrency 32, told nothing. Over the time
  both send (until the first one ends), what got through for both together
  and for each, as a share of R. Goal: together at least 85%, neither under a
  third.
- ``shared``: the same, with both processes given one ``redis_url`` (a
  ``redis-server`` the harness starts on loopback): each learns the key's rate
  from both processes' answers, and they take turns from one bucket. Same goal.
- ``loaded``: a told batch (``RateLimit`` at the server's limit) while one
  process per core spins on the CPU, so that timers fire late. Goal: at least
  95% of the allowed rate, at most 1% refused.
- ``spent``: a told batch that begins right after R / 2 requests went at once on
  the same key from another client, as when an earlier run had just spent part
  of the quota. What that client got through counts as the batch's own: the
  ideal is ``(N + spent - burst) / R``. Same goal.

It writes ``build/bench/conditions.json`` and ``conditions.md``. The goals are
printed as a development aid; the exit status is 1 only when a run could not be
done (2 when a server is missing).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .limiters import LIMITERS, Limiter, LimiterMissingError, LimiterProcess
from .measure import cpu_share, csv_list
from .ratelimited import (
    IDS_PER_RATE,
    ChildResult,
    RateRun,
    child_command,
    child_env,
    child_result,
    describe,
    measure,
    server_cpu_text,
)
from .shared_limit import Redis

__all__ = ["FairRun", "main"]

ROOT = Path(__file__).resolve().parents[2]
CONDITIONS = ("fairness", "shared", "loaded", "spent")
LIMITER_NAMES = ("nginx", "haproxy")
RATES = (20, 100, 400)
#: The issue's fairness goal: together at least this share of R, each at least FAIR.
TOGETHER = 0.85
FAIR = 1 / 3
#: Seconds the processes of a fairness run have to start before they begin together.
START_DELAY = 3.0


@contextlib.contextmanager
def cpu_load(processes: int) -> Iterator[None]:
    """Keep ``processes`` processes spinning on the CPU for the duration."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)
    ]
    try:
        time.sleep(0.5)  # let them reach the CPU
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()


@dataclass(kw_only=True)
class FairRun:
    """Two learning processes on one key: what each got through while both were sending.

    Attributes:
        limiter: The limiter's name.
        rate: Requests/s the limiter allows per key.
        results: What each process measured (timelines start at the common moment).
        burst: What the limiter lets through beyond its rate.
        shared: Whether the processes shared their limit through Redis.
        server_cpu: The limiter's CPU while both ran, a share of one core (None
            where ``/proc`` cannot tell).
        redis_cpu: The same for ``redis-server``, when shared.
    """

    limiter: str
    rate: int
    burst: int
    results: list[ChildResult]
    shared: bool = False
    server_cpu: float | None = None
    redis_cpu: float | None = None

    @property
    def overlap(self) -> float:
        """Seconds during which both processes were sending (until the first one ended)."""
        return min((result.elapsed for result in self.results), default=0.0)

    def through(self, result: ChildResult) -> int:
        """Requests of ``result``'s process answered other than 429 within the overlap."""
        last = [0.0, 0, 0]
        for sample in result.timeline:
            if sample[0] > self.overlap + 1e-9:
                break
            last = sample
        return int(last[1] - last[2])

    def share(self, result: ChildResult) -> float:
        """One process's requests let through over the overlap, as a share of R."""
        return self.through(result) / self.rate / self.overlap if self.overlap else 0.0

    @property
    def together(self) -> float:
        """Both processes' requests let through (less the burst), as a share of R."""
        if not self.overlap:
            return 0.0
        done = sum(self.through(result) for result in self.results)
        return max(done - self.burst, 0) / self.rate / self.overlap

    @property
    def refused(self) -> float:
        """The share of both processes' requests answered 429."""
        requests = sum(result.requests for result in self.results)
        return sum(result.throttled for result in self.results) / requests if requests else 0.0

    @property
    def verdict(self) -> str:
        """``met`` or ``missed`` against the issue's fairness goal."""
        if any(result.error is not None for result in self.results):
            return "-"
        fair = all(self.share(result) >= FAIR for result in self.results)
        return "met" if self.together >= TOGETHER and fair else "missed"

    def describe(self) -> str:
        """One progress line."""
        errors = [result.error for result in self.results if result.error is not None]
        if errors:
            return "FAILED: " + "; ".join(errors)
        shares = " + ".join(f"{self.share(result):.1%}" for result in self.results)
        return (
            f"both sending {self.overlap:5.2f}s  together {self.together:6.1%} ({shares})  "
            f"429s {self.refused:5.1%}  CPU {self.cpu_text()}  goal {self.verdict}"
        )

    def cpu_text(self) -> str:
        """The servers' CPU, a share of one core each: the limiter's, then Redis's."""
        shares = [("limiter", self.server_cpu), ("redis", self.redis_cpu)]
        return (
            ", ".join(f"{name} {share:.0%}" for name, share in shares if share is not None) or "-"
        )


def measure_fairness(
    limiter: Limiter, rate: int, backend: str, redis: Redis | None = None
) -> FairRun:
    """Two processes learn on one fresh key at the same moment, against one limiter.

    ``redis``: both share their limit through this Redis. The limiter's CPU (and
    Redis's) is measured from the common start to the last process's end: a
    server short of CPU would make the figures say how fast it is.
    """
    n = IDS_PER_RATE * rate // 2
    template = RateRun(
        limiter=limiter.name,
        rate=rate,
        mode="learned",
        backend=backend,
        n=n,
        burst=limiter.burst(),
        result=ChildResult(),
    )
    server = LimiterProcess.start(limiter, rate)
    env = child_env(f"bench-{secrets.token_hex(8)}")  # one key for both
    server_cpu = redis_cpu = None
    try:
        start_at = time.time() + START_DELAY
        extra = [f"--start-at={start_at}"]
        if redis is not None:
            extra.append(f"--redis-url={redis.url}")
        command = child_command(server.url, template, *extra)
        children = [
            subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                env=env,
            )
            for _ in range(2)
        ]
        # Both servers idle until the common start (each run has a fresh key).
        server_before = server.cpu_seconds()
        redis_before = None if redis is None else redis.cpu_seconds()
        results = []
        for child in children:
            try:
                stdout, stderr = child.communicate(timeout=60 + 2 * template.deadline)
            except subprocess.TimeoutExpired:
                child.kill()
                results.append(ChildResult(error="timed out"))
                continue
            results.append(child_result(child.returncode, stdout, stderr))
        took = max((result.elapsed for result in results), default=0.0)
        server_cpu = cpu_share(server_before, server.cpu_seconds(), took)
        if redis is not None:
            redis_cpu = cpu_share(redis_before, redis.cpu_seconds(), took)
    finally:
        server.stop()
    return FairRun(
        limiter=limiter.name,
        rate=rate,
        burst=limiter.burst(),
        results=results,
        shared=redis is not None,
        server_cpu=server_cpu,
        redis_cpu=redis_cpu,
    )


def _run_all(args: argparse.Namespace) -> tuple[list[FairRun], dict[str, list[RateRun]]]:
    for name in args.limiters:
        LIMITERS[name].executable()  # fail early, naming the package
    fair: list[FairRun] = []
    told: dict[str, list[RateRun]] = {"loaded": [], "spent": []}
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        redis = None
        if "shared" in args.only:
            redis = Redis()  # one server: each run's fresh key has its own Redis keys
            stack.callback(redis.stop)
        _run_cells(args, fair, told, redis, started)
    return fair, told


def _run_cells(
    args: argparse.Namespace,
    fair: list[FairRun],
    told: dict[str, list[RateRun]],
    redis: Redis | None,
    started: float,
) -> None:

    def show(condition: str, limiter: str, rate: int, text: str) -> None:
        elapsed = time.monotonic() - started
        print(f"{condition:8} {limiter:8} R={rate:<4} {text}  [{elapsed:4.0f}s]", flush=True)

    for rate in args.rates:
        for name in args.limiters:
            limiter = LIMITERS[name]
            if "fairness" in args.only:
                fair.append(measure_fairness(limiter, rate, args.backend))
                show("fairness", name, rate, fair[-1].describe())
            if redis is not None:
                fair.append(measure_fairness(limiter, rate, args.backend, redis))
                show("shared", name, rate, fair[-1].describe())
            if "loaded" in args.only:
                with cpu_load(args.load):
                    told["loaded"].append(measure(limiter, rate, "told", args.backend))
                show("loaded", name, rate, describe(told["loaded"][-1]))
            if "spent" in args.only:
                run = measure(limiter, rate, "told", args.backend, spend=max(rate // 2, 1))
                told["spent"].append(run)
                show("spent", name, rate, f"{describe(run)}  (spent {run.result.spent})")


def markdown(
    fair: Sequence[FairRun], told: dict[str, list[RateRun]], settings: dict[str, str]
) -> str:
    """The results as Markdown: the settings, then a table per condition."""
    lines = ["# Rate-limited servers, harder conditions", ""]
    lines += [f"- {name}: {value}" for name, value in settings.items()]
    if fair:
        lines += [
            "",
            "## Two processes learning on one key",
            "",
            "| limiter | R | through Redis | both sending | together | each | refused "
            "| server CPU | goal |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for run in fair:
            head = f"| {run.limiter} | {run.rate} | {'yes' if run.shared else 'no'} |"
            if run.verdict == "-":
                lines.append(f"{head} {run.describe()} | | | | | |")
                continue
            each = ", ".join(f"{run.share(result):.1%}" for result in run.results)
            lines.append(
                f"{head} {run.overlap:.2f} s | {run.together:.1%} | {each} | {run.refused:.1%} "
                f"| {run.cpu_text()} | {run.verdict} (≥{TOGETHER:.0%}, each ≥{FAIR:.0%}) |"
            )
    for condition, runs in told.items():
        if not runs:
            continue
        lines += [
            "",
            f"## Told, {condition}",
            "",
            "| limiter | R | share of allowed rate | refused | elapsed (ideal) | spent before "
            "| server CPU | client CPU | goal |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for told_run in runs:
            result = told_run.result
            head = f"| {told_run.limiter} | {told_run.rate} |"
            if result.error is not None:
                lines.append(f"{head} failed: {result.error} | | | | | | |")
                continue
            lines.append(
                f"{head} {told_run.share:.1%} | {told_run.refused:.1%} ({result.throttled} of "
                f"{result.requests:,}) | {result.elapsed:.2f} s ({told_run.ideal:.2f} s) "
                f"| {result.spent} | {server_cpu_text(told_run)} | {told_run.client_cpu:.0%} "
                f"| {told_run.verdict} |"
            )
    lines.append("")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.conditions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--only",
        type=csv_list(str),
        default=list(CONDITIONS),
        help="any of " + ",".join(CONDITIONS),
    )
    parser.add_argument(
        "--rates", type=csv_list(int), default=list(RATES), help="requests/s per key"
    )
    parser.add_argument("--limiters", type=csv_list(str), default=list(LIMITER_NAMES))
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument(
        "--load", type=int, default=os.cpu_count() or 2, help="spinning processes (one per core)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    args = parser.parse_args(argv)
    if set(args.only) - set(CONDITIONS):
        parser.error(f"--only takes {', '.join(CONDITIONS)}")
    if set(args.limiters) - set(LIMITER_NAMES):
        parser.error(f"--limiters takes {', '.join(LIMITER_NAMES)}")
    if any(rate <= 0 for rate in args.rates):
        parser.error("--rates must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the conditions; return 1 if a run could not be done, 2 if a server is missing."""
    args = parse_args(argv)
    from .run import machine_info

    settings = {
        **machine_info(),
        "command": "python -m tests.benchmarks.conditions "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "spinning processes (loaded)": str(args.load),
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    try:
        fair, told = _run_all(args)
    except LimiterMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "settings": settings,
        "fairness": [
            {
                "limiter": run.limiter,
                "rate": run.rate,
                "shared": run.shared,
                "overlap": run.overlap,
                "together": run.together,
                "shares": [run.share(result) for result in run.results],
                "refused": run.refused,
                "server_cpu_share": run.server_cpu,
                "redis_cpu_share": run.redis_cpu,
                "verdict": run.verdict,
            }
            for run in fair
        ],
        **{condition: [run.as_json() for run in runs] for condition, runs in told.items()},
    }
    (args.out / "conditions.json").write_text(json.dumps(document, indent=1), encoding="utf-8")
    (args.out / "conditions.md").write_text(markdown(fair, told, settings), encoding="utf-8")
    print(f"wrote {args.out / 'conditions.md'}")
    failed = any(run.verdict == "-" for run in fair) or any(
        run.result.error is not None for runs in told.values() for run in runs
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
