"""The benchmark harness: ``nox -s bench`` or ``python -m tests.benchmarks.run``.

It starts the FakeVendorAPI socket server in a process of its own, one per
latency, then runs every contender in a fresh process of its own, alternating
them (the order rotates each round) and repeating for ``--rounds`` rounds. It
measures the server's CPU during every run (Linux ``/proc``), runs the
in-process measurements (per-call overhead, stream memory), and writes:

- ``build/bench/results.json``: the machine, the settings, every run, the medians, the checks;
- ``build/bench/results.md``: the tables, ready for ``docs/benchmarks.md`` (no checks);
- ``build/bench/throughput.svg``: the chart (``--chart docs/benchmarks-throughput.svg``
  also writes it there).

It also prints the project's performance checks (``targets.py``), PASS or FAIL, as a
development aid, and exits 1 when one of them fails.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .chart import Series, throughput_svg
from .contenders import CONTENDERS
from .inprocess import MODES
from .measure import Run, Sample, cpu_share, csv_list, parse_sample
from .report import markdown_report
from .server import SERVER_KINDS, ServerProcess
from .summary import Cell, Key, summarise
from .targets import LATENCY_CONCURRENCY, LATENCY_SECONDS, check_targets

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("hiveon-async", "httpx", "httpcore", "h11", "aiohttp", "anyio", "trio")
#: The chart's lines: contender, colour, dashed.
CHART_SERIES = (
    ("ours", "#1f77b4", False),
    ("ours-httpcore", "#1f77b4", True),
    ("aiohttp", "#2ca02c", False),
    ("httpx", "#d62728", False),
)
#: Who runs at the latency check's extra concurrency (``--full``: everyone).
LATENCY_CHECK_CONTENDERS = ("ours", "ours-httpcore", "aiohttp")


@dataclass(frozen=True)
class Task:
    """One run to do: a child process to start."""

    suite: str
    contender: str
    latency: float
    concurrency: int
    n: int

    def command(self, url: str | None) -> list[str]:
        """The child's command line."""
        if self.suite == "socket":
            assert url is not None
            return [
                sys.executable,
                "-m",
                "tests.benchmarks.contenders",
                self.contender,
                f"--url={url}",
                f"--n={self.n}",
                f"--concurrency={self.concurrency}",
            ]
        mode = "stream" if self.suite == "stream" else self.contender
        return [
            sys.executable,
            "-m",
            "tests.benchmarks.inprocess",
            mode,
            f"--n={self.n}",
            f"--concurrency={self.concurrency}",
        ]

    def describe(self) -> str:
        """A short name for progress lines."""
        where = f"{self.latency * 1000:g}ms" if self.suite == "socket" else "in-process"
        return f"{self.suite:8} {self.contender:13} {where:10} c={self.concurrency:<3} n={self.n:,}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--n", type=int, default=3000, help="stops per socket run (3000)")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of every run (3)")
    parser.add_argument(
        "--latency-rounds",
        type=int,
        default=1,
        help="rounds of the runs with latency, except the latency check's cell, which gets "
        "--rounds (1: they are mostly latency-bound; the slow ones take half the time)",
    )
    parser.add_argument(
        "--latency-n",
        type=int,
        default=20_000,
        help="stops per run in the latency check's cell, c=100 at 50 ms (20000: about 10 s, "
        "so that the rate is the steady state's, not the cold start's)",
    )
    parser.add_argument(
        "--concurrency", type=csv_list(int), default=[16, 64, 256], help="16,64,256"
    )
    parser.add_argument(
        "--latencies", type=csv_list(float), default=[0.0, LATENCY_SECONDS], help="seconds: 0,0.05"
    )
    parser.add_argument(
        "--contenders",
        type=csv_list(str),
        default=list(CONTENDERS),
        help=f"any of {','.join(CONTENDERS)} (all)",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="every contender at every latency and concurrency, --rounds rounds of each (by "
        "default the trio ones run without latency only, c=100 at 50 ms is ours and aiohttp "
        "only, and the other runs with latency get --latency-rounds); ~2x longer",
    )
    parser.add_argument(
        "--server",
        choices=SERVER_KINDS,
        default="fake",
        help="fake: the FakeVendorAPI socket server (default); lean: a bare asyncio server "
        "several times cheaper per request, for when the fake saturates its core",
    )
    parser.add_argument("--overhead-n", type=int, default=20_000, help="stops per overhead run")
    parser.add_argument("--overhead-concurrency", type=int, default=64)
    parser.add_argument(
        "--stream-sizes", type=csv_list(int), default=[100_000, 1_000_000], help="100000,1000000"
    )
    parser.add_argument("--skip-socket", action="store_true", help="no socket runs")
    parser.add_argument("--skip-overhead", action="store_true", help="no per-call overhead runs")
    parser.add_argument("--skip-stream", action="store_true", help="no stream memory runs")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test: 1 round, n=1000, latency n=3000, overhead n=5000, stream 10000,100000",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    parser.add_argument("--chart", type=Path, help="also write the chart here")
    parser.add_argument(
        "--from-json",
        type=Path,
        help="run nothing: redo the tables, checks and chart from a results.json written "
        "earlier (its options win over the command line's)",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per child run")
    quick, _ = parser.parse_known_args(argv)
    if quick.quick:  # new defaults; options given explicitly still win
        parser.set_defaults(
            rounds=1,
            latency_rounds=1,
            n=1000,
            latency_n=3000,
            overhead_n=5000,
            stream_sizes=[10_000, 100_000],
        )
    args = parser.parse_args(argv)
    if args.full:
        args.latency_rounds = args.rounds
    unknown = set(args.contenders) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders: {', '.join(sorted(unknown))}")
    return args


def _socket_cells(args: argparse.Namespace) -> list[tuple[float, int, list[str]]]:
    cells = []
    for latency in args.latencies:
        concurrencies = list(args.concurrency)
        if abs(latency - LATENCY_SECONDS) < 1e-9 and LATENCY_CONCURRENCY not in concurrencies:
            concurrencies.append(LATENCY_CONCURRENCY)
        for concurrency in sorted(concurrencies):
            names = [
                name
                for name in args.contenders
                if args.full
                or (
                    (latency == 0 or CONTENDERS[name].backend == "asyncio")
                    and (concurrency in args.concurrency or name in LATENCY_CHECK_CONTENDERS)
                )
            ]
            if names:
                cells.append((latency, concurrency, names))
    return cells


def schedule(args: argparse.Namespace) -> list[list[Task]]:
    """The runs of each round; within a cell, the contenders' order rotates every round."""
    rounds = []
    for index in range(args.rounds):
        tasks = []
        if not args.skip_socket:
            for latency, concurrency, names in _socket_cells(args):
                check_cell = (
                    abs(latency - LATENCY_SECONDS) < 1e-9 and concurrency == LATENCY_CONCURRENCY
                )
                if latency and index >= args.latency_rounds and not check_cell:
                    continue
                n = args.latency_n if check_cell else args.n
                shift = index % len(names)
                for name in names[shift:] + names[:shift]:
                    tasks.append(Task("socket", name, latency, concurrency, n))
        if not args.skip_overhead:
            modes = list(MODES)
            shift = index % len(modes)
            for mode in modes[shift:] + modes[:shift]:
                tasks.append(
                    Task("overhead", mode, 0.0, args.overhead_concurrency, args.overhead_n)
                )
        rounds.append(tasks)
    return rounds


def _child_env() -> dict[str, str]:
    # No proxy from the environment: every contender must talk to 127.0.0.1 directly.
    proxies = {"http_proxy", "https_proxy", "all_proxy"}
    return {key: value for key, value in os.environ.items() if key.lower() not in proxies}


def run_task(
    task: Task, round_index: int, server: ServerProcess | None, timeout: float, cwd: Path = ROOT
) -> Run:
    """Run one task in a fresh process and record it.

    ``cwd`` is the checkout whose code the child runs: ``python -m`` puts it first on
    ``sys.path``, so both ``tests.benchmarks`` and ``hiveon_async`` come from it.
    """
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    before = server.cpu_seconds() if server else None
    try:
        completed = subprocess.run(
            task.command(server.url if server else None),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            env=_child_env(),
            check=False,
        )
        sample = parse_sample(completed.stdout)
        if sample is None:
            tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
            sample = Sample(error=f"exit {completed.returncode}: {' / '.join(tail)}")
    except subprocess.TimeoutExpired:
        sample = Sample(error=f"timed out after {timeout:g}s")
    server_cpu = cpu_share(before, server.cpu_seconds(), sample.wall) if server else None
    return Run(
        suite=task.suite,
        contender=task.contender,
        latency=task.latency,
        concurrency=task.concurrency,
        n=task.n,
        round=round_index,
        sample=sample,
        server_cpu=server_cpu,
        load=load,
    )


def _progress(index: int, total: int, task: Task, run: Run, started: float) -> None:
    """Print one line per finished run."""
    if run.valid:
        text = f"{run.stops_per_s:8,.0f}/s {run.cpu_per_stop_ms:7.3f} ms CPU/stop"
        if run.server_cpu is not None:
            text += f"  server {run.server_cpu:4.0%}"
        if task.suite == "stream":
            text += f"  peak RSS {run.sample.peak_rss_mb:.1f} MB"
    else:
        text = f"FAILED: {run.sample.error or f'{run.sample.ok} of {run.n} stopped'}"
    elapsed = time.monotonic() - started
    print(f"[{index:3}/{total}] r{run.round} {task.describe()}  {text}  [{elapsed:5.0f}s]")


def machine_info() -> dict[str, str]:
    """What the numbers were measured on."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return {
        "CPU": f"{model}, {os.cpu_count()} cores",
        "OS": platform.platform(),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": ", ".join(versions),
        "commit": _commit(),
    }


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "hiveon_async"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes under hiveon_async/)" if dirty else "")


def _chart(
    cells: Mapping[Key, Cell], args: argparse.Namespace, machine: Mapping[str, str], date: str
) -> str:
    series = []
    for name, color, dashed in CHART_SERIES:
        points: dict[float, dict[int, float]] = {}
        for cell in cells.values():
            if (
                cell.suite == "socket"
                and cell.contender == name
                and cell.valid
                and cell.concurrency in args.concurrency
            ):
                points.setdefault(cell.latency, {})[cell.concurrency] = cell.stops_per_s
        if points:
            series.append(Series(CONTENDERS[name].label, color, dashed, points))
    caption = (
        f"N = {args.n:,} stops per run, median of {args.rounds} round(s) "
        f"({args.latency_rounds} with latency); {machine['CPU']}; {date}"
    )
    return throughput_svg(series, sorted(args.latencies), sorted(args.concurrency), caption)


def _measure(args: argparse.Namespace) -> tuple[list[Run], dict[str, object], float]:
    """Run every task; return the runs, the servers' summaries and the seconds it took."""
    started = time.monotonic()
    rounds = schedule(args)
    stream_tasks = (
        []
        if args.skip_stream
        else [Task("stream", "stream", 0.0, 64, size) for size in sorted(args.stream_sizes)]
    )
    total = sum(len(tasks) for tasks in rounds) + len(stream_tasks)
    print(f"{total} runs", flush=True)
    servers: dict[float, ServerProcess] = {}
    runs: list[Run] = []
    summaries: dict[str, object] = {}
    index = 0
    try:
        if not args.skip_socket:
            for latency in args.latencies:
                servers[latency] = ServerProcess.start(latency, args.server)
        for round_index, tasks in enumerate(rounds):
            last = round_index == len(rounds) - 1
            for task in [*tasks, *(stream_tasks if last else [])]:
                index += 1
                server = servers.get(task.latency) if task.suite == "socket" else None
                run = run_task(task, round_index, server, args.timeout)
                runs.append(run)
                _progress(index, total, task, run, started)
                sys.stdout.flush()
    finally:
        for latency, server in servers.items():
            summaries[f"{latency * 1000:g} ms"] = server.stop()
    return runs, summaries, time.monotonic() - started


def _settings(args: argparse.Namespace, argv: Sequence[str] | None) -> dict[str, str]:
    return {
        "command": "python -m tests.benchmarks.run "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "server": f"{args.server} (see tests/benchmarks/server.py), one process per latency",
        "stops per socket run": f"{args.n:,}",
        "rounds": f"{args.rounds} ({args.latency_rounds} for runs with latency, except the "
        "latency check's cell)",
        "concurrency": ", ".join(map(str, args.concurrency)),
        "latencies": ", ".join(f"{latency * 1000:g} ms" for latency in args.latencies),
        "overhead runs": f"{args.overhead_n:,} stops at c={args.overhead_concurrency}",
        "stream sizes": ", ".join(f"{size:,}" for size in args.stream_sizes),
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


#: The options a results file keeps, so that ``--from-json`` can redraw its chart.
_KEPT_OPTIONS = ("n", "rounds", "latency_rounds", "concurrency", "latencies", "stream_sizes")


def _load(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Read a results file written earlier; its options replace the command line's."""
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    for name, value in document.get("options", {}).items():
        setattr(args, name, value)
    document["runs"] = [
        Run(**{**run, "sample": Sample(**run["sample"])})
        for run in (
            {key: value for key, value in raw.items() if key in Run.__dataclass_fields__}
            for raw in document["runs"]
        )
    ]
    return document


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; return 1 when one of the performance checks fails."""
    args = parse_args(argv)
    if args.from_json is not None:
        document = _load(args.from_json, args)
        runs: list[Run] = document["runs"]
        machine: dict[str, str] = document["machine"]
        settings: dict[str, str] = document["settings"]
        summaries: dict[str, object] = document.get("servers", {})
    else:
        machine = machine_info()
        print(f"machine: {machine['CPU']}, {machine['Python']}", flush=True)
        settings = _settings(args, argv)
        runs, summaries, duration = _measure(args)
        settings["duration"] = f"{duration:.0f} s"

    cells = summarise(runs)
    checks = check_targets(cells, stream_sizes=sorted(args.stream_sizes))
    loads = [run.load for run in runs if run.load is not None]
    text = markdown_report(cells, runs=runs, machine=machine, settings=settings, loads=loads)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(text, encoding="utf-8")
    svg = _chart(cells, args, machine, settings["started"][:10])
    (args.out / "throughput.svg").write_text(svg, encoding="utf-8")
    if args.chart is not None:
        args.chart.write_text(svg, encoding="utf-8")
    document = {
        "machine": machine,
        "settings": settings,
        "options": {name: getattr(args, name) for name in _KEPT_OPTIONS},
        "servers": summaries,
        "runs": [run.as_json() for run in runs],
        "cells": [cell.as_json() for cell in cells.values()],
        "checks": [check.as_json() for check in checks],
    }
    (args.out / "results.json").write_text(json.dumps(document, indent=2), encoding="utf-8")

    print()
    print(text)
    print("The project's performance checks (a development aid; see targets.py):")
    for check in checks:
        print(f"{check.verdict:12} {check.target}: {check.measured}")
    print(f"\nwrote results.json, results.md and throughput.svg to {args.out}")
    failed = [check for check in checks if check.passed is False and not check.informational]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
