"""The rate-limited cell: how much of a server's rate limit a batch uses, and how often refused.

``python -m tests.benchmarks.ratelimited`` (also run by ``nox -s bench``).

For every limiter (``limiters.py``: nginx ``limit_req``, HAProxy stick tables,
with and without rate-limit headers) and every rate R, it starts the limiter on
loopback allowing R requests/s per ``X-API-Key`` and stops 8 x R ids at
concurrency 32, in a fresh process per run with a fresh API key, in each mode:

- ``learned``: ``AsyncVendorClient`` told nothing; it learns the limit from 429s.
- ``told``: ``rate_limit=RateLimit(per_second=R, burst=B)``, the server's own limit
  (B: nginx's burst, 10; 1 against HAProxy's window), measured against ``(N - B) / R``.
- ``advertised``: told nothing, against a limiter announcing itself in
  ``X-RateLimit-*`` or IETF ``RateLimit``/``RateLimit-Policy`` fields.
- ``naive``: a plain ``aiohttp`` pool of 32 workers that, on a 429, sleeps the
  ``Retry-After`` and sends the same id again (the code people write by hand).

Each run records its wall time against the ideal, ``(N - burst) / R`` (burst:
what the limiter lets a batch have beyond its rate, 10 for nginx, 1 for the 1 s
window, whose estimate weighs each second into the next), the requests sent
and the 429s among them, the ids stopped, the client's CPU and each limiter
process's CPU (``/proc``) as a share of one core.
A batch is cut off at ``MAX_SLOWDOWN`` times its ideal time (plus a few
seconds): a naive loop against a small burst can take many times longer, and
the share it reaches by then is the figure.
It writes ``build/bench/ratelimited.json`` and ``ratelimited.md``, and a chart
of one run's sending rate over time against the server's limit
(``ratelimited.svg``; ``--chart docs/benchmarks-ratelimited.svg`` also writes it
there). The goals from the project's issue are printed as a development aid;
the exit status is 1 only when a run could not be done.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import datetime
import functools
import json
import os
import secrets
import shlex
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import anyio

from .chart import TimelineSeries, timeline_svg
from .limiters import LIMITERS, Limiter, LimiterMissingError, LimiterProcess
from .measure import cpu_seconds, cpu_share, csv_list, preload

__all__ = [
    "MODES",
    "RateRun",
    "child_command",
    "child_env",
    "child_result",
    "main",
    "measure",
    "server_cpu_text",
]

ROOT = Path(__file__).resolve().parents[2]
MODES = ("learned", "told", "advertised", "naive")
#: Which modes run against which limiter by default: ``advertised`` needs the headers,
#: and a naive loop ignores them (it meets the same window as on ``haproxy``).
DEFAULT_MODES: dict[str, tuple[str, ...]] = {
    "nginx": ("learned", "told", "naive"),
    "haproxy": ("learned", "told", "naive"),
    "haproxy-x": ("advertised",),
    "haproxy-ietf": ("advertised",),
}
QUICK_MODES: dict[str, tuple[str, ...]] = {
    "nginx": ("learned", "naive"),
    "haproxy-ietf": ("advertised",),
}
DEFAULT_RATES = (20, 100, 400)
QUICK_RATES = (100,)
#: Ids per run, as a multiple of the rate: about 8 s of sending at the limit.
IDS_PER_RATE = 8
CONCURRENCY = 32
#: Attempts per id: enough that no id fails for 429s. The retry budget is off, so the
#: figures are the pacing's, not the budget's.
MAX_ATTEMPTS = 10
#: Attempts per id for the naive loop (the cut-off below bounds it first).
NAIVE_MAX_ATTEMPTS = 100
#: A batch is cut off after this many times its ideal time, plus ``SLACK`` seconds;
#: ids not stopped by then count as not stopped.
MAX_SLOWDOWN = 4
SLACK = 5.0
#: Seconds between two samples of the client's counters, and the chart's interval.
SAMPLE_EVERY = 0.05
CHART_INTERVAL = 0.25
#: The run drawn on the chart: limiter, rate, mode (else the first learned run).
CHART_RUN = ("nginx", 100, "learned")
#: The issue's goals per mode: at least this share of the allowed rate, at most this
#: share of requests refused.
GOALS: dict[str, tuple[float, float]] = {
    "learned": (0.90, 0.05),
    "told": (0.95, 0.01),
    "advertised": (0.97, 0.01),
}
RESULT_PREFIX = "RATELIMITED-RESULT "
#: The child reads its API key here, not from its command line.
KEY_VARIABLE = "HIVEON_BENCH_API_KEY"
CLORE_API_KEY = "clore-bench"
PATH = "/vendors/v1/machines/deployments/{}/stop"


# --- the child: one batch against one limiter -------------------------------------------


@dataclass(kw_only=True)
class ChildResult:
    """What one batch measured, as the child reports it.

    Attributes:
        elapsed: Seconds from the first request to the last answer (or to the cut-off).
        requests: Requests sent (every attempt).
        throttled: Answers of 429.
        stopped: Ids stopped.
        failed: Ids not stopped (failed, or not done by the cut-off).
        paused: Seconds the client held all sending for a ``Retry-After`` (ours only).
        spent: Requests of ``--spend`` the server let through before the batch began.
        client_cpu: The child's CPU seconds over the batch.
        timeline: ``[seconds, requests, throttled]`` every ``SAMPLE_EVERY`` s, and at the end.
        error: Why the batch did not run, if it did not.
    """

    elapsed: float = 0.0
    requests: int = 0
    throttled: int = 0
    stopped: int = 0
    failed: int = 0
    paused: float = 0.0
    spent: int = 0
    client_cpu: float = 0.0
    timeline: list[list[float]] = field(default_factory=list)
    error: str | None = None


class Sampler:
    """Samples a pair of counters (requests, throttled) every ``SAMPLE_EVERY`` seconds."""

    def __init__(self, read: Callable[[], tuple[int, int]]) -> None:
        self._read = read
        self._start = time.perf_counter()
        self.timeline: list[list[float]] = []

    def begin(self) -> None:
        """Mark time zero (the batch starts now)."""
        self._start = time.perf_counter()
        self.sample()

    def sample(self) -> None:
        """Record the counters now."""
        requests, throttled = self._read()
        self.timeline.append([round(time.perf_counter() - self._start, 4), requests, throttled])

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            await anyio.sleep(SAMPLE_EVERY)
            self.sample()


async def _spend(url: str, api_key: str, count: int) -> int:
    """Send ``count`` requests at once on the key (an earlier run); return those let through."""
    import httpx

    admitted = 0
    async with httpx.AsyncClient(base_url=url, trust_env=False) as raw:

        async def one(index: int) -> None:
            nonlocal admitted
            response = await raw.post(
                PATH.format(f"earlier-{index:07d}"),
                headers={"X-API-Key": api_key},
                json={"metadata": {"CLORE_API_KEY": CLORE_API_KEY}},
            )
            admitted += response.status_code != 429

        async with anyio.create_task_group() as group:
            for index in range(count):
                group.start_soon(one, index)
    return admitted


async def _ours(
    url: str,
    api_key: str,
    rate: int,
    mode: str,
    n: int,
    deadline: float,
    burst: int = 1,
    *,
    spend: int = 0,
    start_at: float | None = None,
    redis_url: str | None = None,
) -> ChildResult:
    from hiveon_async import AsyncVendorClient, BatchProgress, RateLimit, RetryPolicy

    progress = BatchProgress()
    sampler = Sampler(lambda: (progress.requests, progress.throttled))
    rate_limit = RateLimit(per_second=rate, burst=burst) if mode == "told" else None
    ids = [f"dep-{index:07d}" for index in range(n)]
    async with (
        AsyncVendorClient(
            api_key=api_key,
            base_url=url,
            metadata={"CLORE_API_KEY": CLORE_API_KEY},
            rate_limit=rate_limit,
            retry=RetryPolicy(max_attempts=MAX_ATTEMPTS, budget=None),
            max_concurrency=CONCURRENCY,
            redis_url=redis_url,
        ) as client,
        anyio.create_task_group() as group,
    ):
        if start_at is not None:  # another process on the key starts at the same moment
            await anyio.sleep(max(start_at - time.time(), 0.0))
        spent = await _spend(url, api_key, spend) if spend else 0
        cpu = cpu_seconds()
        sampler.begin()
        group.start_soon(sampler.run)
        report = await client.stop_deployments(
            ids, concurrency=CONCURRENCY, deadline=deadline, progress=progress
        )
        sampler.sample()
        group.cancel_scope.cancel()
    return ChildResult(
        elapsed=sampler.timeline[-1][0],
        requests=progress.requests,
        throttled=progress.throttled,
        stopped=len(report.stopped),
        failed=n - len(report.stopped),
        paused=progress.paused,
        spent=spent,
        client_cpu=cpu_seconds() - cpu,
        timeline=sampler.timeline,
    )


def _retry_after(value: str | None) -> float:
    """Seconds a ``Retry-After`` asks for (delay-seconds only; 1 s when absent or a date)."""
    try:
        return max(float(value or "1"), 0.0)
    except ValueError:
        return 1.0


async def _naive(url: str, api_key: str, n: int, deadline: float) -> ChildResult:
    """32 workers on one aiohttp pool; a 429 sleeps its ``Retry-After`` and sends again."""
    import asyncio

    import aiohttp

    counts = {"requests": 0, "throttled": 0, "stopped": 0}
    sampler = Sampler(lambda: (counts["requests"], counts["throttled"]))
    ids = iter([f"dep-{index:07d}" for index in range(n)])
    headers = {"X-API-Key": api_key}
    payload = {"metadata": {"CLORE_API_KEY": CLORE_API_KEY}}
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(url, headers=headers, connector=connector) as session:

        async def stop(deployment_id: str) -> bool:
            for _ in range(NAIVE_MAX_ATTEMPTS):
                counts["requests"] += 1
                async with session.post(PATH.format(deployment_id), json=payload) as response:
                    if response.status == 429:
                        counts["throttled"] += 1
                        delay = _retry_after(response.headers.get("Retry-After"))
                        await response.read()
                        await asyncio.sleep(delay)
                        continue
                    if response.status != 200:
                        return False
                    answer = await response.json()
                return isinstance(answer, dict) and answer.get("deployment_id") == deployment_id
            return False

        async def worker() -> None:
            for deployment_id in ids:
                stopped = False
                with contextlib.suppress(aiohttp.ClientError):
                    stopped = await stop(deployment_id)
                counts["stopped"] += stopped  # not `+= await`: that reads the count first

        cpu = cpu_seconds()
        sampler.begin()
        sampling = asyncio.create_task(sampler.run())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(worker() for _ in range(CONCURRENCY))), timeout=deadline
            )
        sampler.sample()
        sampling.cancel()
    return ChildResult(
        elapsed=sampler.timeline[-1][0],
        requests=counts["requests"],
        throttled=counts["throttled"],
        stopped=counts["stopped"],
        failed=n - counts["stopped"],
        client_cpu=cpu_seconds() - cpu,
        timeline=sampler.timeline,
    )


def child(args: argparse.Namespace) -> int:
    """Run one batch (``--child MODE``) and print its result as the last line."""
    preload()
    api_key = os.environ[KEY_VARIABLE]
    try:
        if args.child == "naive":
            result = anyio.run(_naive, args.url, api_key, args.n, args.deadline, backend="asyncio")
        else:
            result = anyio.run(
                functools.partial(
                    _ours,
                    *(args.url, api_key, args.rate, args.child, args.n, args.deadline, args.burst),
                    spend=args.spend,
                    start_at=args.start_at,
                    redis_url=args.redis_url,
                ),
                backend=args.backend,
            )
    except Exception as exc:  # reported, not raised: the orchestrator records the failure
        result = ChildResult(error="".join(traceback.format_exception_only(exc)).strip())
    print(RESULT_PREFIX + json.dumps(asdict(result)), flush=True)
    return 0 if result.error is None else 1


# --- the orchestrator -------------------------------------------------------------------


@dataclass(kw_only=True)
class RateRun:
    """One batch against one limiter at one rate, in one mode, as the orchestrator keeps it.

    Attributes:
        limiter: The limiter's name (``limiters.LIMITERS``).
        rate: Requests/s the limiter allows per key.
        mode: ``learned``, ``told``, ``advertised`` or ``naive``.
        backend: The child's event loop (``naive`` is always asyncio).
        n: Ids in the batch.
        burst: What the limiter lets a batch have beyond its rate (``Limiter.burst``).
        result: What the child measured.
        server_cpu: Each limiter process's CPU over the run, a share of one core.
        load: The 1-minute load average when the run started (noise).
    """

    limiter: str
    rate: int
    mode: str
    backend: str
    n: int
    burst: int
    result: ChildResult
    server_cpu: dict[str, float] = field(default_factory=dict)
    load: float | None = None

    @property
    def ideal(self) -> float:
        """The shortest time the limiter allows for the batch: ``(N - burst) / R``.

        Requests spent on the key just before (``--spend``) count as the batch's own.
        """
        return max(self.n + self.result.spent - self.burst, 0) / self.rate

    @property
    def deadline(self) -> float:
        """Seconds after which the batch is cut off."""
        return MAX_SLOWDOWN * self.ideal + SLACK

    @property
    def share(self) -> float:
        """The share of the allowed rate used: ``(stopped - burst) / R`` over the elapsed time.

        For a batch that stopped every id, the ideal time over the elapsed time.
        """
        if not self.result.elapsed:
            return 0.0
        done = self.result.stopped + self.result.spent
        return max(done - self.burst, 0) / self.rate / self.result.elapsed

    @property
    def refused(self) -> float:
        """The share of requests answered 429."""
        return self.result.throttled / self.result.requests if self.result.requests else 0.0

    @property
    def client_cpu(self) -> float:
        """The client process's CPU over the batch, a share of one core."""
        return self.result.client_cpu / self.result.elapsed if self.result.elapsed else 0.0

    @property
    def stops_per_s(self) -> float:
        """Ids stopped per second."""
        return self.result.stopped / self.result.elapsed if self.result.elapsed else 0.0

    @property
    def verdict(self) -> str:
        """``met``, ``missed`` against the issue's goal for the mode, or ``-`` (none)."""
        goal = GOALS.get(self.mode)
        if goal is None or self.result.error is not None:
            return "-"
        share, refused = goal
        met = self.share >= share and self.refused <= refused and self.result.failed == 0
        return "met" if met else "missed"

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict, derived figures included."""
        data = asdict(self)
        data.update(
            ideal=self.ideal,
            share=self.share,
            refused=self.refused,
            client_cpu_share=self.client_cpu,
            stops_per_s=self.stops_per_s,
            verdict=self.verdict,
        )
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RateRun:
        """The run a results file holds."""
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["result"] = ChildResult(**values["result"])
        return cls(**values)


def child_env(api_key: str) -> dict[str, str]:
    # No proxy from the environment: the clients must talk to 127.0.0.1 directly.
    proxies = {"http_proxy", "https_proxy", "all_proxy"}
    env = {key: value for key, value in os.environ.items() if key.lower() not in proxies}
    env[KEY_VARIABLE] = api_key
    return env


def child_result(returncode: int, stdout: str, stderr: str) -> ChildResult:
    """What a child process reported on its last result line, or why it reported nothing."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return ChildResult(**json.loads(line[len(RESULT_PREFIX) :]))
    tail = (stderr or stdout).strip().splitlines()[-3:]
    return ChildResult(error=f"exit {returncode}: {' / '.join(tail)}")


def child_command(url: str, run: RateRun, *extra: str) -> list[str]:
    """The command that runs ``run``'s batch in a fresh process, against ``url``."""
    command = [sys.executable, "-m", "tests.benchmarks.ratelimited", f"--child={run.mode}"]
    command += [f"--url={url}", f"--rate={run.rate}", f"--n={run.n}", f"--backend={run.backend}"]
    command += [f"--deadline={run.deadline:g}", f"--burst={run.burst}", *extra]
    return command


def measure(limiter: Limiter, rate: int, mode: str, backend: str, *, spend: int = 0) -> RateRun:
    """Start the limiter, run one batch against it in a fresh process, stop the limiter.

    ``spend``: requests sent at once on the key just before the batch (by a plain client).
    """
    n = IDS_PER_RATE * rate
    run = RateRun(
        limiter=limiter.name,
        rate=rate,
        mode=mode,
        backend="asyncio" if mode == "naive" else backend,
        n=n,
        burst=limiter.told_burst() if mode == "told" else limiter.burst(),
        result=ChildResult(),
        load=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    )
    server = LimiterProcess.start(limiter, rate)
    try:
        before = server.cpu_seconds()
        command = child_command(server.url, run, *([f"--spend={spend}"] if spend else []))
        timeout = 60 + 2 * run.deadline
        try:
            completed = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=ROOT,
                env=child_env(f"bench-{secrets.token_hex(8)}"),  # a fresh key: fresh limits
                check=False,
            )
        except subprocess.TimeoutExpired:
            run.result.error = f"timed out after {timeout:g}s"
        else:
            run.result = child_result(completed.returncode, completed.stdout, completed.stderr)
        share = cpu_share(before, server.cpu_seconds(), run.result.elapsed)
        if share is not None:
            run.server_cpu[limiter.program] = share
    finally:
        server.stop()
    return run


def _percent(value: float) -> str:
    return f"{value:.1%}" if value < 0.995 else f"{value:.0%}"


def server_cpu_text(run: RateRun) -> str:
    """The limiter processes' CPU over the batch, each a share of one core."""
    return ", ".join(f"{share:.0%}" for share in run.server_cpu.values()) or "-"


def _stopped_text(run: RateRun) -> str:
    text = f"{run.result.stopped:,} of {run.n:,}"
    if run.result.stopped < run.n and run.result.elapsed >= run.deadline - 0.5:
        text += " (cut off)"
    return text


def describe(run: RateRun) -> str:
    """One progress line."""
    if run.result.error is not None:
        return f"FAILED: {run.result.error}"
    result = run.result
    return (
        f"{result.elapsed:6.2f}s (ideal {run.ideal:5.2f}s) share {run.share:6.1%}  "
        f"requests {result.requests:5}  429s {result.throttled:5} ({run.refused:5.1%})  "
        f"stopped {_stopped_text(run)}  server CPU {server_cpu_text(run)}  "
        f"goal {run.verdict}"
    )


def markdown(runs: Sequence[RateRun], machine: dict[str, str], settings: dict[str, str]) -> str:
    """The results as Markdown: the settings, then one table row per run."""
    lines = ["# Rate-limited servers", ""]
    lines += [f"- {name}: {value}" for name, value in {**machine, **settings}.items()]
    lines += [
        "",
        "| limiter | R | mode | share of allowed rate | refused | stops/s | elapsed (ideal) "
        "| ids stopped | server CPU | client CPU | goal |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        head = f"| {run.limiter} | {run.rate} | {run.mode} |"
        if run.result.error is not None:
            lines.append(f"{head} failed: {run.result.error} | | | | | | | |")
            continue
        goal = GOALS.get(run.mode)
        goal_text = f"{run.verdict} (≥{goal[0]:.0%}, ≤{goal[1]:.0%})" if goal is not None else "-"
        lines.append(
            f"{head} {_percent(run.share)} | {run.refused:.1%} ({run.result.throttled:,} of "
            f"{run.result.requests:,}) | {run.stops_per_s:,.1f} | {run.result.elapsed:.2f} s "
            f"({run.ideal:.2f} s) | {_stopped_text(run)} | {server_cpu_text(run)} "
            f"| {run.client_cpu:.0%} | {goal_text} |"
        )
    lines += [
        "",
        "Share of allowed rate: (ids stopped - burst) / R over the elapsed time (burst 10 "
        "for nginx, 1 for the HAProxy window: its estimate weighs each second into the next, "
        "so no batch does better than (N - 1) / R); for a batch that stopped every id, the ideal "
        f"time over the elapsed time. A batch is cut off at {MAX_SLOWDOWN} x its ideal time "
        f"+ {SLACK:g} s. Refused: 429s among all requests sent. Server and client "
        "CPU: the limiter process's CPU over the run and the client's over the batch, each a "
        "share of one core. Goal: the issue's target "
        "for the mode (a development aid).",
        "",
    ]
    return "\n".join(lines)


def rate_points(
    timeline: Sequence[Sequence[float]], interval: float = CHART_INTERVAL
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Requests/s and 429s/s per ``interval``, from cumulative samples ``[t, requests, 429s]``.

    Each point sits at its interval's middle; counts at an interval's edges are those of
    the last sample at or before it. A last interval shorter than half ``interval`` is
    left out (too few requests to make a rate of).
    """
    if len(timeline) < 2:
        return [], []
    times = [sample[0] for sample in timeline]

    def at(moment: float) -> Sequence[float]:
        return timeline[max(bisect.bisect_right(times, moment) - 1, 0)]

    sent: list[tuple[float, float]] = []
    refused: list[tuple[float, float]] = []
    start, end = 0.0, times[-1]
    while start < end - 1e-9:
        stop = min(start + interval, end)
        width = stop - start
        if width < interval / 2:
            break
        first, last = at(start), at(stop)
        sent.append(((start + stop) / 2, (last[1] - first[1]) / width))
        refused.append(((start + stop) / 2, (last[2] - first[2]) / width))
        start = stop
    return sent, refused


def chart(runs: Sequence[RateRun], date: str, machine: dict[str, str]) -> str | None:
    """The chart of one run (``CHART_RUN``, else the first learned run), or None."""
    valid = [run for run in runs if run.result.error is None and run.result.timeline]
    wanted = [run for run in valid if (run.limiter, run.rate, run.mode) == CHART_RUN]
    candidates = wanted or [run for run in valid if run.mode == "learned"] or valid
    if not candidates:
        return None
    chosen = candidates[0]
    sent, refused = rate_points(chosen.result.timeline)
    limiter = LIMITERS[chosen.limiter]
    title = (
        f"{chosen.limiter}, R = {chosen.rate}/s, {chosen.mode}: {chosen.n:,} ids at "
        f"concurrency {CONCURRENCY}"
    )
    caption = (
        f"{limiter.description}; requests counted as the client sent them.\n"
        f"Share of allowed rate {chosen.share:.1%}, {chosen.refused:.1%} of requests refused; "
        f"{machine.get('CPU', '')}; {date}"
    )
    return timeline_svg(
        [
            TimelineSeries("requests sent/s", "#1f77b4", False, sent),
            TimelineSeries("429s/s", "#d62728", False, refused),
        ],
        limit=chosen.rate,
        limit_label=f"server limit {chosen.rate}/s",
        interval=CHART_INTERVAL,
        title=title,
        caption=caption,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.ratelimited",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test: R=100 only; nginx learned and naive, haproxy-ietf advertised",
    )
    parser.add_argument("--rates", type=csv_list(int), help="requests/s per key (20,100,400)")
    parser.add_argument(
        "--limiters", type=csv_list(str), help=f"any of {','.join(LIMITERS)} (all; --quick: 2)"
    )
    parser.add_argument(
        "--modes",
        type=csv_list(str),
        help=f"any of {','.join(MODES)}: only these, where the limiter has them",
    )
    parser.add_argument(
        "--backend",
        choices=("asyncio", "trio"),
        default="asyncio",
        help="our client's event loop (the naive loop is aiohttp: always asyncio)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    parser.add_argument("--chart", type=Path, help="also write the chart here")
    parser.add_argument(
        "--from-json",
        type=Path,
        help="run nothing: redo the table and chart from a ratelimited.json written earlier",
    )
    # The child process's options.
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--burst", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--spend", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        return args
    if args.rates is None:
        args.rates = list(QUICK_RATES if args.quick else DEFAULT_RATES)
    if any(rate <= 0 for rate in args.rates):
        parser.error("--rates must be positive")
    plan = QUICK_MODES if args.quick else DEFAULT_MODES
    if args.limiters is None:
        args.limiters = list(plan)
    unknown = set(args.limiters) - set(LIMITERS)
    if unknown:
        parser.error(f"unknown limiters: {', '.join(sorted(unknown))}")
    if args.modes is not None and set(args.modes) - set(MODES):
        parser.error(f"unknown modes: {', '.join(sorted(set(args.modes) - set(MODES)))}")
    args.plan = {
        name: [
            mode
            for mode in plan.get(name, DEFAULT_MODES[name])
            if args.modes is None or mode in args.modes
        ]
        for name in args.limiters
    }
    return args


def _measure_all(args: argparse.Namespace) -> list[RateRun]:
    for name in args.limiters:
        LIMITERS[name].executable()  # fail early, naming the package
    tasks = [
        (LIMITERS[name], rate, mode)
        for rate in args.rates
        for name in args.limiters
        for mode in args.plan[name]
    ]
    print(f"{len(tasks)} rate-limited runs", flush=True)
    started = time.monotonic()
    runs = []
    for index, (limiter, rate, mode) in enumerate(tasks, 1):
        run = measure(limiter, rate, mode, args.backend)
        runs.append(run)
        print(
            f"[{index:2}/{len(tasks)}] {limiter.name:12} R={rate:<4} {mode:10} {describe(run)}"
            f"  [{time.monotonic() - started:4.0f}s]",
            flush=True,
        )
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    """Run the rate-limited cell; return 1 if a run could not be done, 2 if a server is missing."""
    args = parse_args(argv)
    if args.child is not None:
        return child(args)
    if args.from_json is not None:
        document = json.loads(args.from_json.read_text(encoding="utf-8"))
        machine, settings = document["machine"], document["settings"]
        runs = [RateRun.from_json(run) for run in document["runs"]]
    else:
        from .run import machine_info

        machine = machine_info()
        settings = {
            "command": "python -m tests.benchmarks.ratelimited "
            + shlex.join(sys.argv[1:] if argv is None else argv),
            "batch": f"{IDS_PER_RATE} x R ids at concurrency {CONCURRENCY}, "
            f"RetryPolicy(max_attempts={MAX_ATTEMPTS}, budget=None), backend {args.backend}",
            "limiters": "; ".join(f"{name}: {LIMITERS[name].description}" for name in args.plan),
            "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        try:
            runs = _measure_all(args)
        except LimiterMissingError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    text = markdown(runs, machine, settings)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ratelimited.md").write_text(text, encoding="utf-8")
    document = {
        "machine": machine,
        "settings": settings,
        "runs": [run.as_json() for run in runs],
    }
    (args.out / "ratelimited.json").write_text(json.dumps(document, indent=1), encoding="utf-8")
    svg = chart(runs, settings["started"][:10], machine)
    if svg is not None:
        (args.out / "ratelimited.svg").write_text(svg, encoding="utf-8")
        if args.chart is not None:
            args.chart.write_text(svg, encoding="utf-8")
    print()
    print(text)
    print(f"wrote ratelimited.json, ratelimited.md and ratelimited.svg to {args.out}")
    return 1 if any(run.result.error is not None for run in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
