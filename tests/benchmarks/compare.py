"""Before and after: the client's CPU per stop in two checkouts, measured in one run.

``python -m tests.benchmarks.compare --base /tmp/hiveon-base`` compares the
checkout at ``--base`` (for instance ``git archive HEAD`` unpacked there) with
the current one (this file's, or ``--current``).

It starts one benchmark server (``server.py``, run from the base checkout, so
that both meet the same server), then, round after round, runs each contender
(``ours`` and ``ours-httpcore`` by default) once from each checkout: the
harness's own socket run, ``python -m tests.benchmarks.contenders`` in a fresh
process, started in that checkout's directory so that ``python -m`` imports
that checkout's ``hiveon_async`` and ``tests.benchmarks`` (checked before the
first run). Which checkout goes first swaps every round, so that a slow spell
on the machine does not always hit the same one.

It prints, per contender: the medians over the rounds of the client's CPU per
stop and of its stops per second, for each checkout; the ratio current / base
of those medians; the median and range of the ratios of the two runs of each
round, which show the noise; and the server's CPU during the runs, as a share
of its one core (near 100%, the server and not the client limits the
throughput). CPU per stop counts the client's own work only, so it is the
steadier figure; it still rises when other processes compete for the cores.
So, before each pair of runs, it waits (30 s at most) until other processes
use less than ``--quiet`` cores, and it reports how much CPU they took during
the runs.

How many rounds: with identical code in both checkouts, on a 2-core virtual
machine, one run's CPU per stop moved by about 4% (standard deviation) from
run to run while the machine was otherwise idle, and by 9 to 13% while test
suites ran beside it; with those, even 30 rounds left the ratio of medians
5% off 1.00. So run it on an idle machine, and give it 20 rounds or more
(``--rounds 20``: 10 to 15 minutes for the two default contenders); the
median of the same-round ratios is a second opinion on the same figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .contenders import CONTENDERS
from .measure import Run
from .report import SERVER_BOUND, markdown_table
from .run import ROOT, Task, run_task
from .server import SERVER_KINDS, ServerProcess

__all__ = ["main"]

TREES = ("base", "current")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Result:
    """One run of one checkout.

    Attributes:
        tree: ``base`` or ``current``.
        run: What the harness recorded.
        others: The CPU that other processes (neither the child nor the server) used
            meanwhile, in cores: the competition for the machine (None off Linux).
    """

    tree: str
    run: Run
    others: float | None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--base", type=Path, required=True, help="the checkout to compare against (before)"
    )
    parser.add_argument(
        "--current", type=Path, default=ROOT, help=f"the checkout under test (after): {ROOT}"
    )
    parser.add_argument(
        "--contenders",
        nargs="+",
        choices=sorted(CONTENDERS),
        default=["ours", "ours-httpcore"],
        metavar="NAME",
        help=f"any of {', '.join(sorted(CONTENDERS))} (ours ours-httpcore)",
    )
    parser.add_argument("--concurrency", type=int, default=64, help="64")
    parser.add_argument("--n", type=int, default=10_000, help="stops per run (10000)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="runs per checkout and contender (5; see above for how many a steady figure needs)",
    )
    parser.add_argument("--server", choices=SERVER_KINDS, default="lean", help="lean (default)")
    parser.add_argument(
        "--quiet",
        type=float,
        default=0.3,
        help="before each pair of runs, wait (30 s at most) until other processes use less "
        "than this many cores (0.3; 0: do not wait)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    return parser.parse_args(argv)


def check_tree(path: Path) -> None:
    """Exit unless a child started in ``path`` imports the package from ``path``."""
    if not (path / "tests" / "benchmarks" / "contenders.py").is_file():
        raise SystemExit(f"{path} is not a checkout of the repository")
    probe = subprocess.run(
        [sys.executable, "-c", "import hiveon_async; print(hiveon_async.__file__)"],
        capture_output=True,
        text=True,
        cwd=path,
        check=False,
    )
    found = Path(probe.stdout.strip() or "?").resolve()
    if not found.is_relative_to(path.resolve()):
        raise SystemExit(f"a child in {path} imports hiveon_async from {found}, not from there")


def _machine_busy() -> float | None:
    """CPU seconds the whole machine has spent busy (Linux ``/proc/stat``; None elsewhere)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            ticks = [int(value) for value in stat.readline().split()[1:9]]
    except OSError:
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / _CLOCK_TICKS  # all but idle and iowait


class Others:
    """The CPU that other processes use from the moment it is made.

    That is the machine's busy time less that of this process's children (once waited
    for) and of the server.
    """

    def __init__(self, server: ServerProcess) -> None:
        self._server = server
        self._start = self._now()

    def _now(self) -> tuple[float | None, float, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        ours = children.ru_utime + children.ru_stime + (self._server.cpu_seconds() or 0.0)
        return _machine_busy(), ours, time.monotonic()

    def cores(self) -> float | None:
        """Their CPU since this object was made, in cores (None off Linux)."""
        (busy, ours, started), (busy_now, ours_now, now) = self._start, self._now()
        if busy is None or busy_now is None or now <= started:
            return None
        return max(0.0, busy_now - busy - (ours_now - ours)) / (now - started)


def wait_until_quiet(server: ServerProcess, limit: float, patience: float = 30.0) -> None:
    """Wait, at most ``patience`` seconds, until other processes use under ``limit`` cores."""
    deadline = time.monotonic() + patience
    while limit > 0:
        others = Others(server)
        time.sleep(1.0)
        cores = others.cores()
        if cores is None or cores < limit:
            return
        if time.monotonic() > deadline:
            print(f"      other processes use {cores:.2f} cores; going ahead", flush=True)
            return


def run_once(
    args: argparse.Namespace, name: str, tree: str, path: Path, index: int, server: ServerProcess
) -> Result:
    """One run of one contender from one checkout, with the other processes' CPU meanwhile."""
    others = Others(server)
    task = Task("socket", name, 0.0, args.concurrency, args.n)
    run = run_task(task, index, server, args.timeout, cwd=path)
    return Result(tree, run, others.cores())


def _line(result: Result) -> str:
    run = result.run
    if not run.valid:
        return f"FAILED: {run.sample.error or f'{run.sample.ok} stopped'}"
    text = f"{run.stops_per_s:7,.0f}/s {run.cpu_per_stop_ms:.4f} ms CPU/stop"
    text += f"  server {run.server_cpu or 0:4.0%}"
    if result.others is not None:
        text += f"  others {result.others:4.2f} cores"
    return text


def measure(args: argparse.Namespace, paths: dict[str, Path]) -> list[Result]:
    """Every run; which checkout goes first swaps every round."""
    results: list[Result] = []
    total = args.rounds * len(args.contenders) * len(TREES)
    # The base checkout's server: both checkouts meet the same one, whatever current changes.
    server = ServerProcess.start(0.0, args.server, cwd=paths["base"])
    try:
        for index in range(args.rounds):
            order = TREES if index % 2 == 0 else TREES[::-1]
            for name in args.contenders:
                wait_until_quiet(server, args.quiet)
                for tree in order:
                    result = run_once(args, name, tree, paths[tree], index, server)
                    results.append(result)
                    where = f"[{len(results):3}/{total}] r{index} {name:13} {result.tree:7}"
                    print(f"{where}  {_line(result)}", flush=True)
    finally:
        server.stop()
    return results


def _ratio(current: float, base: float) -> str:
    return f"{current / base:.3f}" if base else "-"


def _spread(ratios: Sequence[float]) -> str:
    if not ratios:
        return "-"
    return f"{statistics.median(ratios):.3f} ({min(ratios):.3f} to {max(ratios):.3f})"


def summary(args: argparse.Namespace, results: Sequence[Result]) -> list[str]:
    """The table of medians and ratios, and the notes under it."""
    rows, notes = [], []
    for name in args.contenders:
        runs = {
            tree: {
                result.run.round: result.run
                for result in results
                if result.tree == tree and result.run.contender == name and result.run.valid
            }
            for tree in TREES
        }
        base, current = runs["base"], runs["current"]
        if not base or not current:
            rows.append([name, "failed", *[""] * 7])
            continue
        cpu = {
            tree: statistics.median(r.cpu_per_stop_ms for r in runs[tree].values())
            for tree in TREES
        }
        rate = {
            tree: statistics.median(r.stops_per_s for r in runs[tree].values()) for tree in TREES
        }
        paired = [
            current[index].cpu_per_stop_ms / base[index].cpu_per_stop_ms
            for index in base.keys() & current.keys()
        ]
        server = [
            r.server_cpu for r in (*base.values(), *current.values()) if r.server_cpu is not None
        ]
        rows.append(
            [
                name,
                f"{cpu['base']:.4f}",
                f"{cpu['current']:.4f}",
                f"**{_ratio(cpu['current'], cpu['base'])}**",
                _spread(paired),
                f"{rate['base']:,.0f}",
                f"{rate['current']:,.0f}",
                _ratio(rate["current"], rate["base"]),
                f"{statistics.median(server):.0%} ({max(server):.0%})" if server else "-",
            ]
        )
        if server and max(server) >= SERVER_BOUND:
            notes.append(
                f"- {name}: the server's core was up to {max(server):.0%} busy: it, not the "
                "client, limited the throughput (try --server lean)."
            )
        pools = {tree: {r.sample.pool or "?" for r in runs[tree].values()} for tree in TREES}
        notes.append(
            f"- {name} sent through: base {', '.join(sorted(pools['base']))}, "
            f"current {', '.join(sorted(pools['current']))}."
        )
    notes += [
        f"- failed: {result.run.contender} ({result.tree}), round {result.run.round}"
        for result in results
        if not result.run.valid
    ]
    others = [result.others for result in results if result.others is not None]
    if others:
        notes.append(
            f"- other processes' CPU during the runs: median {statistics.median(others):.2f}, "
            f"at most {max(others):.2f} of {os.cpu_count()} cores (the lower, the steadier)."
        )
    header = [
        "contender",
        "CPU/stop base (ms)",
        "current (ms)",
        "current/base",
        "same round: median (range)",
        "stops/s base",
        "current",
        "current/base",
        "server CPU (max)",
    ]
    return [*markdown_table(header, rows), "", *notes]


def main(argv: Sequence[str] | None = None) -> int:
    """Compare the two checkouts; return 1 when a run failed."""
    args = parse_args(argv)
    paths = {"base": args.base.resolve(), "current": args.current.resolve()}
    for path in paths.values():
        check_tree(path)
    print(
        f"base {paths['base']} vs current {paths['current']}: {', '.join(args.contenders)} at "
        f"c={args.concurrency}, n={args.n:,}, {args.rounds} rounds, {args.server} server, "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    results = measure(args, paths)
    print()
    print("\n".join(summary(args, results)))
    return 1 if any(not result.run.valid for result in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
