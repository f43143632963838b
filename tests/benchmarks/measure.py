"""What one run measures, and how a child process reports it to the orchestrator.

A child process does its imports first (lazily imported modules included),
opens its client, then measures only the stops: wall time with
``time.perf_counter`` and the process's own CPU (user + system, all threads)
with ``resource.getrusage(RUSAGE_SELF)``, over the region the contender marks
with its :class:`Stopwatch`. Opening and closing the client are one-time costs
per client and are left out. It prints one line, ``BENCH-RESULT {json}``, as
the last thing it does.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = [
    "RESULT_PREFIX",
    "Run",
    "Sample",
    "Stopwatch",
    "cpu_seconds",
    "cpu_share",
    "csv_list",
    "parse_sample",
    "peak_rss_mb",
    "preload",
    "rss_mb",
    "report",
]

RESULT_PREFIX = "BENCH-RESULT "

#: Modules that the libraries import lazily on first use (event-loop backends, our
#: aiohttp pool): imported before measuring, so that no run pays a one-time import.
LAZY_MODULES = (
    "aiohttp",
    "anyio._backends._asyncio",
    "anyio._backends._trio",
    "httpcore._backends.anyio",
    "httpcore._backends.trio",
    "hiveon_async._transport._aiohttp",
    "trio",
)


def preload() -> None:
    """Import every lazily imported module that is installed (the same set for every run)."""
    for name in LAZY_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


@dataclass(kw_only=True)
class Sample:
    """What a child process measured.

    Attributes:
        ok: Stops that succeeded (a run is only valid when ``ok == n``).
        wall: Seconds of the measured region.
        cpu: CPU seconds (user + system) of the child over the measured region.
        peak_rss_mb: The child's peak resident set size at the end (``ru_maxrss``).
        pool: Which connection pool our client used, where that applies.
        error: Why the run failed, if it did.
        extra: Anything else the run wants to keep (e.g. the RSS before the run).
    """

    ok: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    peak_rss_mb: float = 0.0
    pool: str | None = None
    error: str | None = None
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(kw_only=True)
class Run:
    """One run of one contender, as the orchestrator records it.

    Attributes:
        suite: ``socket`` (over the local server), ``overhead`` or ``stream`` (in-process).
        contender: Who ran (see ``contenders.CONTENDERS`` and ``inprocess.MODES``).
        latency: The server's added latency in seconds (0 in-process).
        concurrency: Requests in flight at most.
        n: Stops asked for.
        round: Which repetition (0-based).
        sample: What the child measured.
        server_cpu: The server process's CPU over the run, as a fraction of one core.
        load: The machine's 1-minute load average when the run started (noise).
    """

    suite: str
    contender: str
    latency: float
    concurrency: int
    n: int
    round: int
    sample: Sample
    server_cpu: float | None = None
    load: float | None = None

    @property
    def valid(self) -> bool:
        """True when the run finished and every stop succeeded."""
        return self.sample.error is None and self.sample.ok == self.n

    @property
    def stops_per_s(self) -> float:
        """Throughput over the measured region."""
        return self.n / self.sample.wall if self.sample.wall else 0.0

    @property
    def cpu_per_stop_ms(self) -> float:
        """The child's CPU milliseconds per stop."""
        return 1000 * self.sample.cpu / self.n

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict, derived figures included."""
        data = asdict(self)
        data.update(
            valid=self.valid,
            stops_per_s=self.stops_per_s,
            cpu_per_stop_ms=self.cpu_per_stop_ms,
        )
        return data


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def rss_mb() -> float | None:
    """This process's resident set size now, in MiB (Linux ``/proc``; None elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            resident_pages = int(statm.read().split()[1])
    except OSError:
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def cpu_seconds() -> float:
    """This process's CPU seconds so far, user + system, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_share(before: float | None, after: float | None, seconds: float) -> float | None:
    """CPU seconds used between two readings, as a share of one core over ``seconds``.

    None when either reading is missing (no ``/proc``) or no time passed.
    """
    if before is None or after is None or seconds <= 0:
        return None
    return (after - before) / seconds


def csv_list(kind: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    """An argparse type: a comma-separated list, each part made by ``kind``."""

    def parse(text: str) -> list[Any]:
        return [kind(part.strip()) for part in text.split(",") if part.strip()]

    return parse


class Stopwatch:
    """Measures the region a contender marks (``with stopwatch:``) into a :class:`Sample`.

    Args:
        sample: Where the wall time, CPU and peak RSS go.
    """

    def __init__(self, sample: Sample) -> None:
        self.sample = sample
        self.used = False
        self._cpu = 0.0
        self._wall = 0.0

    def __enter__(self) -> Stopwatch:
        self.used = True
        self._cpu = cpu_seconds()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.sample.wall = time.perf_counter() - self._wall
        self.sample.cpu = cpu_seconds() - self._cpu
        self.sample.peak_rss_mb = peak_rss_mb()


def report(sample: Sample) -> None:
    """Print the sample for the orchestrator, as the child's last line."""
    print(RESULT_PREFIX + json.dumps(asdict(sample)), flush=True)


def parse_sample(stdout: str) -> Sample | None:
    """Return the sample a child printed, or None if it printed none."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            data = json.loads(line[len(RESULT_PREFIX) :])
            known = {f.name for f in fields(Sample)}
            return Sample(**{key: value for key, value in data.items() if key in known})
    return None
