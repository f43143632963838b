"""The results as Markdown tables: printed by the harness, pasted into docs/benchmarks.md.

The performance checks (``targets.py``) are not part of them: the harness prints those
on their own, for developers.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from .contenders import CONTENDERS
from .inprocess import MODES
from .measure import Run
from .summary import Cell, Key
from .targets import signed_percent

__all__ = ["SERVER_BOUND", "markdown_report", "markdown_table"]

#: Throughput ratios shown per latency and concurrency: (numerator, denominator).
RATIOS = (
    ("ours", "aiohttp"),
    ("ours", "httpx"),
    ("ours-httpcore", "httpx"),
    ("ours-trio", "httpx-trio"),
)

_MODE_NOTES = {
    "floor": "one prebuilt request, sent again and again (the fake + transport alone)",
    "bare": "per id: build the request, send, read, check status and JSON (the baseline)",
    "bare-lean": "`bare`, reading the body from the raw stream as the client does",
    "call": "per id: `await client.stop_deployment(id)`",
    "batch": "`client.stop_deployments(ids)` (outcomes and report included)",
}


def _ms(latency: float) -> str:
    return f"{latency * 1000:g} ms"


def _label(name: str) -> str:
    contender = CONTENDERS.get(name)
    return contender.label if contender else name


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table, one line per row."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def _socket(cells: Mapping[Key, Cell]) -> dict[tuple[str, float, int], Cell]:
    return {
        (cell.contender, cell.latency, cell.concurrency): cell
        for cell in cells.values()
        if cell.suite == "socket"
    }


def _axes(cells: Mapping[Key, Cell]) -> tuple[list[str], list[float], list[int]]:
    socket = _socket(cells)
    order = list(CONTENDERS)
    names = sorted({name for name, _, _ in socket}, key=order.index)
    latencies = sorted({latency for _, latency, _ in socket})
    concurrencies = sorted({concurrency for _, _, concurrency in socket})
    return names, latencies, concurrencies


#: Server CPU (share of its core) from which a cell's throughput is marked as capped by it.
SERVER_BOUND = 0.85


def _usual_n(cells: Mapping[Key, Cell]) -> int | None:
    """The stops per run of most socket cells (the latency check's cell may differ)."""
    counts = [cell.n for cell in cells.values() if cell.suite == "socket"]
    return statistics.mode(counts) if counts else None


def _cell_text(cell: Cell | None, usual_n: int | None = None) -> str:
    if cell is None:
        return "-"
    if not cell.valid:
        return "failed"
    text = f"{cell.stops_per_s:,.0f}/s, {cell.cpu_per_stop_ms:.3f} ms"
    if cell.server_cpu_max is not None and cell.server_cpu_max >= SERVER_BOUND:
        text += " †"
    if usual_n is not None and cell.n != usual_n:
        text += f" (n={cell.n:,})"
    return text + (f" ({cell.failed} failed)" if cell.failed else "")


def throughput_table(cells: Mapping[Key, Cell]) -> list[str]:
    """Stops/s and client CPU ms per stop, per latency, contender and concurrency."""
    socket = _socket(cells)
    names, latencies, concurrencies = _axes(cells)
    usual_n = _usual_n(cells)
    rows = []
    for latency in latencies:
        if latency:
            ideal = [f"{concurrency / latency:,.0f}/s" for concurrency in concurrencies]
            rows.append([_ms(latency), "*ideal: concurrency / latency*", *ideal])
        for name in names:
            row = [socket.get((name, latency, concurrency)) for concurrency in concurrencies]
            if any(cell is not None for cell in row):
                texts = [_cell_text(cell, usual_n) for cell in row]
                rows.append([_ms(latency), _label(name), *texts])
    header = ["latency", "client", *(f"c={concurrency}" for concurrency in concurrencies)]
    lines = markdown_table(header, rows)
    if any("†" in text for row in rows for text in row):
        lines += [
            "",
            f"† The server's core was at least {SERVER_BOUND:.0%} busy in at least one round of "
            "this cell: its throughput there was capped by the server, not the client (CPU per "
            "stop is not affected).",
        ]
    if usual_n is not None:
        lines += [
            "",
            f"Each run stops {usual_n:,} ids, except where a cell says otherwise (n=...).",
        ]
    return lines


def ratio_table(cells: Mapping[Key, Cell]) -> list[str]:
    """Throughput ratios of the medians."""
    socket = _socket(cells)
    _, latencies, concurrencies = _axes(cells)
    rows = []
    for latency in latencies:
        for mine, theirs in RATIOS:
            texts = []
            for concurrency in concurrencies:
                a = socket.get((mine, latency, concurrency))
                b = socket.get((theirs, latency, concurrency))
                if a is None or b is None or not a.valid or not b.valid:
                    texts.append("-")
                else:
                    texts.append(f"{a.stops_per_s / b.stops_per_s:.2f}x")
            if any(text != "-" for text in texts):
                rows.append([_ms(latency), f"{_label(mine)} / {_label(theirs)}", *texts])
    header = ["latency", "throughput ratio", *(f"c={c}" for c in concurrencies)]
    return markdown_table(header, rows)


def server_table(cells: Mapping[Key, Cell]) -> list[str]:
    """The server process's CPU during each cell's runs (share of its one core)."""
    socket = _socket(cells)
    names, latencies, concurrencies = _axes(cells)
    rows = []
    for latency in latencies:
        for name in names:
            texts = []
            for concurrency in concurrencies:
                cell = socket.get((name, latency, concurrency))
                texts.append(
                    "-" if cell is None or cell.server_cpu is None else f"{cell.server_cpu:.0%}"
                )
            if any(text != "-" for text in texts):
                rows.append([_ms(latency), _label(name), *texts])
    header = ["latency", "client", *(f"c={c}" for c in concurrencies)]
    return markdown_table(header, rows)


def server_cost_lines(runs: Sequence[Run]) -> list[str]:
    """The server's CPU per request, and the rate at which it would fill its core."""
    costs = sorted(
        run.server_cpu * run.sample.wall / run.n
        for run in runs
        if run.suite == "socket" and run.valid and run.server_cpu is not None
    )
    if not costs:
        return []
    middle = statistics.median(costs)
    busiest = max(
        (run for run in runs if run.suite == "socket" and run.server_cpu is not None),
        key=lambda run: run.server_cpu or 0.0,
    )
    return [
        f"The server spent {1000 * middle:.3f} ms of CPU per request (median over all socket "
        f"runs; {1000 * costs[0]:.3f} to {1000 * costs[-1]:.3f} ms): it fills its core at about "
        f"{1 / middle:,.0f} requests/s. Busiest run: {busiest.server_cpu or 0:.0%} "
        f"({_label(busiest.contender)}, {_ms(busiest.latency)}, c={busiest.concurrency}, "
        f"round {busiest.round}, {busiest.stops_per_s:,.0f} stops/s).",
    ]


def overhead_table(cells: Mapping[Key, Cell]) -> list[str]:
    """The in-process modes: CPU per stop, and against ``bare``."""
    found = {cell.contender: cell for cell in cells.values() if cell.suite == "overhead"}
    bare = found.get("bare")
    rows = []
    for mode in MODES:
        cell = found.get(mode)
        if cell is None:
            continue
        if not cell.valid:
            rows.append([f"`{mode}`", _MODE_NOTES[mode], "failed", "-", "-"])
            continue
        versus = (
            signed_percent(cell.cpu_per_stop_ms / bare.cpu_per_stop_ms - 1)
            if bare is not None and bare.valid
            else "-"
        )
        rows.append(
            [
                f"`{mode}`",
                _MODE_NOTES[mode],
                f"{1000 * cell.cpu_per_stop_ms:.0f} us",
                versus,
                f"{cell.stops_per_s:,.0f}/s",
            ]
        )
    return markdown_table(["mode", "what it does", "CPU per stop", "vs bare", "stops/s"], rows)


def stream_table(cells: Mapping[Key, Cell]) -> list[str]:
    """The stream form's peak RSS per number of ids."""
    rows = [
        [
            f"{cell.n:,}",
            f"{cell.peak_rss_mb:.1f} MB" if cell.valid else "failed",
            f"{cell.rss_before_mb:.1f} MB" if cell.rss_before_mb is not None else "-",
            f"{cell.rss_after_mb:.1f} MB" if cell.rss_after_mb is not None else "-",
            f"{cell.stops_per_s:,.0f}/s" if cell.valid else "-",
            f"{1000 * cell.cpu_per_stop_ms:.0f} us" if cell.valid else "-",
        ]
        for cell in sorted(cells.values(), key=lambda cell: cell.n)
        if cell.suite == "stream"
    ]
    header = ["ids", "peak RSS", "RSS before", "RSS after", "stops/s", "CPU per stop"]
    return markdown_table(header, rows)


def noise_lines(cells: Mapping[Key, Cell], loads: Sequence[float]) -> list[str]:
    """The spread between rounds, and the machine's load while the harness ran."""
    spreads = sorted(
        (cell.spread, cell) for cell in cells.values() if cell.suite != "stream" and cell.runs > 1
    )
    lines = []
    if spreads:
        middle = spreads[len(spreads) // 2][0]
        worst, cell = spreads[-1]
        lines.append(
            f"- Spread of throughput between rounds ((max - min) / median): median {middle:.0%}, "
            f"worst {worst:.0%} ({_label(cell.contender)}, {_ms(cell.latency)}, "
            f"c={cell.concurrency})."
        )
    if loads:
        lines.append(
            f"- 1-minute load average at the start of each run: {min(loads):.2f} to "
            f"{max(loads):.2f} (2 cores: above ~2, something else was competing for CPU)."
        )
    failed = [cell for cell in cells.values() if cell.failed]
    for cell in failed:
        lines.append(
            f"- {_label(cell.contender)} ({cell.suite}, {_ms(cell.latency)}, "
            f"c={cell.concurrency}): {cell.failed} failed run(s): {'; '.join(cell.errors)}"
        )
    pools = {cell.contender: cell.pools for cell in cells.values() if cell.suite == "socket"}
    for name in ("ours", "ours-httpcore", "ours-trio"):
        if pools.get(name):
            lines.append(f"- {_label(name)} sent through: {', '.join(pools[name])}.")
    return lines


def markdown_report(
    cells: Mapping[Key, Cell],
    *,
    runs: Sequence[Run],
    machine: Mapping[str, Any],
    settings: Mapping[str, Any],
    loads: Sequence[float],
) -> str:
    """The whole report: machine, command, tables and noise."""
    lines = [
        "## Machine",
        "",
        *(f"- {key}: {value}" for key, value in machine.items()),
        "",
        "## Settings",
        "",
        *(f"- {key}: {value}" for key, value in settings.items()),
        "",
        "## Throughput and client CPU per stop (medians)",
        "",
        *throughput_table(cells),
        "",
        "## Ratios",
        "",
        *ratio_table(cells),
        "",
        "## Server CPU (share of its one core, median)",
        "",
        *server_table(cells),
        "",
        *server_cost_lines(runs),
        "",
        "## Per-call overhead, in-process",
        "",
        *overhead_table(cells),
        "",
        "## Stream form memory, in-process",
        "",
        *stream_table(cells),
        "",
        "## Noise",
        "",
        *noise_lines(cells, loads),
        "",
    ]
    return "\n".join(lines)
