"""The project's performance checks, against the medians of one run of the harness.

A development aid: the harness prints each with PASS, FAIL or N/A and exits 1 when one
that is not informational fails. They are not part of the published tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .summary import Cell, Key

__all__ = ["Check", "check_targets", "signed_percent"]

#: The concurrency of the throughput ratios.
RATIO_CONCURRENCY = 64
#: The latency check: this concurrency against a server this slow.
LATENCY_CONCURRENCY = 100
LATENCY_SECONDS = 0.05
#: "Flat in N": the peak RSS at the largest N is at most this much above the smallest.
FLAT_RSS_GROWTH = 0.10


def signed_percent(share: float) -> str:
    """``0.123`` as ``+12%``; a share that rounds to zero is ``+0%``, never ``-0%``."""
    return f"{round(share * 100):+d}%"


@dataclass(frozen=True)
class Check:
    """One performance check's verdict.

    Attributes:
        target: What is checked, and the threshold.
        measured: The figures behind the verdict.
        passed: True, False, or None when the cells were not measured.
        informational: Shown for context; never fails the run.
    """

    target: str
    measured: str
    passed: bool | None
    informational: bool = False

    @property
    def verdict(self) -> str:
        """PASS, FAIL or N/A (with "info" for an informational check)."""
        word = {True: "PASS", False: "FAIL", None: "N/A"}[self.passed]
        return f"{word} (info)" if self.informational else word

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {**asdict(self), "verdict": self.verdict}


class _Lookup:
    def __init__(self, cells: Mapping[Key, Cell]) -> None:
        self._cells = cells

    def find(
        self, suite: str, contender: str, latency: float, concurrency: int | None = None
    ) -> Cell | None:
        for cell in self._cells.values():
            if (
                cell.suite == suite
                and cell.contender == contender
                and abs(cell.latency - latency) < 1e-9
                and (concurrency is None or cell.concurrency == concurrency)
                and cell.valid
            ):
                return cell
        return None

    def socket(self, contender: str, latency: float, concurrency: int) -> Cell | None:
        return self.find("socket", contender, latency, concurrency)

    def cells(self, suite: str) -> list[Cell]:
        return [cell for cell in self._cells.values() if cell.suite == suite and cell.valid]

    def concurrencies(self, contender: str, latency: float) -> list[int]:
        return sorted(
            cell.concurrency
            for cell in self._cells.values()
            if cell.suite == "socket"
            and cell.contender == contender
            and abs(cell.latency - latency) < 1e-9
            and cell.valid
        )


def _missing(target: str, informational: bool = False) -> Check:
    return Check(target, "not measured (or every run failed)", None, informational)


def _ratio_check(
    lookup: _Lookup, target: str, ours: str, theirs: str, minimum: float, aim: float | None = None
) -> Check:
    mine = lookup.socket(ours, 0.0, RATIO_CONCURRENCY)
    other = lookup.socket(theirs, 0.0, RATIO_CONCURRENCY)
    if mine is None or other is None:
        return _missing(target)
    ratio = mine.stops_per_s / other.stops_per_s
    measured = (
        f"{ratio:.2f}x ({mine.stops_per_s:,.0f} vs {other.stops_per_s:,.0f} stops/s); "
        f"CPU per stop {mine.cpu_per_stop_ms:.3f} vs {other.cpu_per_stop_ms:.3f} ms"
    )
    if aim is not None:
        measured += f"; aim {aim}x {'met' if ratio >= aim else 'not met'}"
    return Check(target, measured, ratio >= minimum)


def _flat_cpu(lookup: _Lookup, contender: str, label: str, informational: bool) -> Check:
    target = f"CPU per stop at c=256 <= 1.3x that at c=16 ({label}, no latency)"
    low = lookup.socket(contender, 0.0, 16)
    high = lookup.socket(contender, 0.0, 256)
    if low is None or high is None:
        return _missing(target, informational)
    ratio = high.cpu_per_stop_ms / low.cpu_per_stop_ms
    measured = f"{ratio:.2f}x ({high.cpu_per_stop_ms:.3f} vs {low.cpu_per_stop_ms:.3f} ms)"
    return Check(target, measured, ratio <= 1.3, informational)


def _latency(lookup: _Lookup) -> list[Check]:
    ideal = LATENCY_CONCURRENCY / LATENCY_SECONDS
    checks = []
    for contender, informational in (("ours", False), ("aiohttp", True)):
        who = "ours, asyncio" if contender == "ours" else "raw aiohttp, for comparison"
        target = (
            f"{LATENCY_SECONDS * 1000:g} ms latency at c={LATENCY_CONCURRENCY}: "
            f">= 90% of {ideal:,.0f} stops/s ({who})"
        )
        cell = lookup.socket(contender, LATENCY_SECONDS, LATENCY_CONCURRENCY)
        if cell is None:
            checks.append(_missing(target, informational))
            continue
        share = cell.stops_per_s / ideal
        measured = f"{cell.stops_per_s:,.0f} stops/s = {share:.0%} of ideal"
        measured += f" ({cell.n:,} stops a run)"
        checks.append(Check(target, measured, share >= 0.9, informational))
    return checks


def _cpu_over_aiohttp(lookup: _Lookup) -> Check:
    target = (
        f"CPU per stop over raw aiohttp (socket, c={RATIO_CONCURRENCY}, no latency, default "
        "pool): the whole client's cost over the same engine, <= 15% for comparison"
    )
    ours = lookup.socket("ours", 0.0, RATIO_CONCURRENCY)
    theirs = lookup.socket("aiohttp", 0.0, RATIO_CONCURRENCY)
    if ours is None or theirs is None:
        return _missing(target, informational=True)
    extra = ours.cpu_per_stop_ms / theirs.cpu_per_stop_ms - 1
    measured = (
        f"{signed_percent(extra)}: {1000 * ours.cpu_per_stop_ms:.0f} vs "
        f"{1000 * theirs.cpu_per_stop_ms:.0f} us CPU per stop"
    )
    return Check(target, measured, extra <= 0.15, informational=True)


def _trio(lookup: _Lookup) -> Check:
    target = "trio: ours >= 1.5x raw httpx on trio (no latency, every concurrency)"
    ratios = []
    for concurrency in lookup.concurrencies("ours-trio", 0.0):
        theirs = lookup.socket("httpx-trio", 0.0, concurrency)
        ours = lookup.socket("ours-trio", 0.0, concurrency)
        if theirs is not None and ours is not None:
            ratios.append((concurrency, ours.stops_per_s / theirs.stops_per_s))
    if not ratios:
        return _missing(target)
    measured = ", ".join(f"c={c}: {ratio:.2f}x" for c, ratio in ratios)
    return Check(target, measured, min(ratio for _, ratio in ratios) >= 1.5)


def _stream(lookup: _Lookup, sizes: Sequence[int]) -> Check:
    target = (
        f"stream form, in-process: peak RSS < 100 MB at {max(sizes, default=0):,} ids, "
        f"flat in N (<= +{FLAT_RSS_GROWTH:.0%} from {min(sizes, default=0):,})"
    )
    by_size = {cell.n: cell for cell in lookup.cells("stream") if cell.n in sizes}
    if not sizes or any(size not in by_size for size in sizes):
        return _missing(target)
    small, large = by_size[min(sizes)], by_size[max(sizes)]
    growth = large.peak_rss_mb / small.peak_rss_mb - 1
    measured = "; ".join(
        f"{size:,} ids: {by_size[size].peak_rss_mb:.1f} MB peak "
        f"({by_size[size].stops_per_s:,.0f} stops/s)"
        for size in sorted(by_size)
    )
    measured += f"; growth {growth:+.1%}"
    return Check(target, measured, large.peak_rss_mb < 100 and growth <= FLAT_RSS_GROWTH)


def _versus(
    target: str, mine: Cell, name: str, base: Cell, base_name: str, *, informational: bool = False
) -> Check:
    """``mine``'s CPU per stop over ``base``'s: at most 15% more passes."""
    extra = mine.cpu_per_stop_ms / base.cpu_per_stop_ms - 1
    measured = (
        f"{signed_percent(extra)}: {1000 * mine.cpu_per_stop_ms:.0f} vs "
        f"{1000 * base.cpu_per_stop_ms:.0f} us CPU per stop ({name} vs {base_name})"
    )
    return Check(target, measured, extra <= 0.15, informational)


def _overhead(lookup: _Lookup) -> list[Check]:
    target = (
        "per-call overhead (validation, retries, rate limiter) over the bare transport <= 15% CPU"
    )
    bare = lookup.find("overhead", "bare", 0.0)
    call = lookup.find("overhead", "call", 0.0)
    if bare is None or call is None:
        return [_missing(target)]
    checks = [_versus(target, call, "stop_deployment", bare, "bare")]
    lean = lookup.find("overhead", "bare-lean", 0.0)
    if lean is not None:
        strict = "the same, against a bare caller that reads the body as the client does"
        checks.append(
            _versus(strict, call, "stop_deployment", lean, "bare-lean", informational=True)
        )
    batch = lookup.find("overhead", "batch", 0.0)
    if batch is not None:
        bookkeeping = "the same, through stop_deployments (batch bookkeeping included)"
        checks.append(
            _versus(bookkeeping, batch, "stop_deployments", bare, "bare", informational=True)
        )
    return checks


def check_targets(cells: Mapping[Key, Cell], *, stream_sizes: Sequence[int]) -> list[Check]:
    """Run every performance check that the cells allow.

    Args:
        cells: The medians.
        stream_sizes: The stream benchmark's sizes (the largest is checked, both for flatness).

    Returns:
        One check per threshold, plus informational ones.
    """
    lookup = _Lookup(cells)
    return [
        _ratio_check(
            lookup,
            "stop_deployments at c=64 on asyncio >= 0.6x raw aiohttp (no latency)",
            "ours",
            "aiohttp",
            0.6,
            aim=0.8,
        ),
        _ratio_check(
            lookup,
            "stop_deployments at c=64 on asyncio >= 5x raw httpx (no latency)",
            "ours",
            "httpx",
            5.0,
        ),
        _flat_cpu(lookup, "ours", "ours, asyncio, default pool", informational=False),
        _flat_cpu(lookup, "ours-httpcore", "ours, speedups=False", informational=True),
        _flat_cpu(lookup, "ours-trio", "ours, trio", informational=True),
        *_latency(lookup),
        _trio(lookup),
        _stream(lookup, stream_sizes),
        *_overhead(lookup),
        _cpu_over_aiohttp(lookup),
    ]
