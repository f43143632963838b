"""Medians per cell: one cell is one contender at one latency and concurrency."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .measure import Run

__all__ = ["Cell", "Key", "summarise"]

#: (suite, contender, latency, concurrency, n)
Key = tuple[str, str, float, int, int]


@dataclass(frozen=True, kw_only=True)
class Cell:
    """The medians of one cell's valid runs.

    Attributes:
        suite: ``socket``, ``overhead`` or ``stream``.
        contender: Who ran.
        latency: Server latency (seconds).
        concurrency: Requests in flight at most.
        n: Stops per run.
        runs: Valid runs.
        failed: Runs that failed or did not stop every id.
        stops_per_s: Median throughput.
        cpu_per_stop_ms: Median client CPU per stop.
        server_cpu: Median server CPU (share of one core), socket runs only.
        server_cpu_max: The busiest of those runs' server CPU.
        spread: (max - min) / median of the throughput: a measure of noise.
        peak_rss_mb: The largest peak RSS of the runs.
        rss_before_mb: The RSS before the client was opened (in-process runs, Linux).
        rss_after_mb: The RSS after the run (in-process runs, Linux).
        pools: The pools our client reported using.
        errors: The distinct errors of failed runs.
    """

    suite: str
    contender: str
    latency: float
    concurrency: int
    n: int
    runs: int
    failed: int
    stops_per_s: float
    cpu_per_stop_ms: float
    server_cpu: float | None
    server_cpu_max: float | None
    spread: float
    peak_rss_mb: float
    rss_before_mb: float | None
    rss_after_mb: float | None
    pools: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """True when at least one run was valid."""
        return self.runs > 0

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _median(values: Iterable[float]) -> float:
    data = list(values)
    return statistics.median(data) if data else 0.0


def _largest(values: Iterable[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return max(known) if known else None


def summarise(runs: Iterable[Run]) -> Mapping[Key, Cell]:
    """Group runs into cells and take medians of the valid ones."""
    groups: dict[Key, list[Run]] = defaultdict(list)
    for run in runs:
        groups[(run.suite, run.contender, run.latency, run.concurrency, run.n)].append(run)
    cells: dict[Key, Cell] = {}
    for key, members in groups.items():
        good = [run for run in members if run.valid]
        rates = [run.stops_per_s for run in good]
        median_rate = _median(rates)
        server = [run.server_cpu for run in good if run.server_cpu is not None]
        before = [run.sample.extra.get("rss_before_mb") for run in good]
        after = [run.sample.extra.get("rss_after_mb") for run in good]
        errors = sorted(
            {
                run.sample.error or f"only {run.sample.ok} of {run.n} stopped"
                for run in members
                if not run.valid
            }
        )
        cells[key] = Cell(
            suite=key[0],
            contender=key[1],
            latency=key[2],
            concurrency=key[3],
            n=key[4],
            runs=len(good),
            failed=len(members) - len(good),
            stops_per_s=median_rate,
            cpu_per_stop_ms=_median(run.cpu_per_stop_ms for run in good),
            server_cpu=_median(server) if server else None,
            server_cpu_max=max(server) if server else None,
            spread=(max(rates) - min(rates)) / median_rate if median_rate else 0.0,
            peak_rss_mb=max((run.sample.peak_rss_mb for run in good), default=0.0),
            rss_before_mb=_largest(before),
            rss_after_mb=_largest(after),
            pools=sorted({run.sample.pool for run in good if run.sample.pool}),
            errors=errors,
        )
    return cells
