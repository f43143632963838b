"""The benchmark's charts, as plain SVG written by hand (no plotting library).

- :func:`throughput_svg`: stops/s against concurrency, one panel per server latency.
- :func:`timeline_svg`: a rate over time against a server's limit (the rate-limited cell).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

__all__ = ["Series", "TimelineSeries", "throughput_svg", "timeline_svg"]

_PANEL_WIDTH = 420
_PANEL_HEIGHT = 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 36, 48
_LEGEND_HEIGHT = 34


@dataclass(frozen=True)
class Series:
    """One line of the chart.

    Attributes:
        label: The legend's text.
        color: A CSS colour.
        dashed: Draw it dashed.
        points: Per latency (seconds): concurrency -> stops/s.
    """

    label: str
    color: str
    dashed: bool
    points: Mapping[float, Mapping[int, float]]


def _nice_ceiling(value: float) -> float:
    """The smallest round number (1 to 8 times a power of ten) at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def _panel(
    series: Sequence[Series], latency: float, concurrencies: Sequence[int], x0: float
) -> list[str]:
    plot_w = _PANEL_WIDTH - _LEFT - _RIGHT
    plot_h = _PANEL_HEIGHT - _TOP - _BOTTOM
    top = _LEGEND_HEIGHT + _TOP
    peak = max(
        (value for line in series for value in line.points.get(latency, {}).values()),
        default=1.0,
    )
    y_max = _nice_ceiling(peak * 1.05)
    low, high = math.log2(min(concurrencies)), math.log2(max(concurrencies))

    def x(concurrency: int) -> float:
        span = high - low or 1.0
        return x0 + _LEFT + 20 + (plot_w - 40) * (math.log2(concurrency) - low) / span

    def y(value: float) -> float:
        return top + plot_h * (1 - value / y_max)

    title = f"server latency {latency * 1000:g} ms"
    parts = [
        f'<text x="{x0 + _LEFT + plot_w / 2:.1f}" y="{top - 12:.1f}" text-anchor="middle" '
        f'font-weight="bold">{escape(title)}</text>',
        f'<rect x="{x0 + _LEFT}" y="{top}" width="{plot_w}" height="{plot_h}" '
        'fill="none" stroke="#888"/>',
    ]
    for tick in range(6):
        value = y_max * tick / 5
        parts.append(
            f'<line x1="{x0 + _LEFT}" x2="{x0 + _LEFT + plot_w}" y1="{y(value):.1f}" '
            f'y2="{y(value):.1f}" stroke="#ddd"/>'
        )
        parts.append(
            f'<text x="{x0 + _LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">'
            f"{value:,.0f}</text>"
        )
    for concurrency in concurrencies:
        parts.append(
            f'<text x="{x(concurrency):.1f}" y="{top + plot_h + 18}" text-anchor="middle">'
            f"{concurrency}</text>"
        )
    parts.append(
        f'<text x="{x0 + _LEFT + plot_w / 2:.1f}" y="{top + plot_h + 38}" '
        'text-anchor="middle">concurrency</text>'
    )
    label_y = top + plot_h / 2
    parts.append(
        f'<text x="{x0 + 16}" y="{label_y:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 {x0 + 16} {label_y:.1f})">stops/s (median)</text>'
    )
    for line in series:
        points = [
            (c, v) for c, v in sorted(line.points.get(latency, {}).items()) if c in concurrencies
        ]
        if not points:
            continue
        dash = ' stroke-dasharray="6 4"' if line.dashed else ""
        path = " ".join(f"{x(c):.1f},{y(v):.1f}" for c, v in points)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{line.color}" stroke-width="2"{dash}/>'
        )
        for concurrency, value in points:
            tip = f"{line.label}, concurrency {concurrency}: {value:,.0f} stops/s"
            parts.append(
                f'<circle cx="{x(concurrency):.1f}" cy="{y(value):.1f}" r="3.5" '
                f'fill="{line.color}"><title>{escape(tip)}</title></circle>'
            )
    return parts


def throughput_svg(
    series: Sequence[Series],
    latencies: Sequence[float],
    concurrencies: Sequence[int],
    caption: str,
) -> str:
    """Return the chart as an SVG document.

    Args:
        series: The lines to draw.
        latencies: One panel per latency, in this order.
        concurrencies: The x axis (log scale).
        caption: A line under the chart (N, rounds, machine).

    Returns:
        The SVG text.
    """
    width = _PANEL_WIDTH * len(latencies)
    height = _LEGEND_HEIGHT + _PANEL_HEIGHT + 22
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    x = 16.0
    for line in series:
        dash = ' stroke-dasharray="6 4"' if line.dashed else ""
        parts.append(
            f'<line x1="{x:.0f}" x2="{x + 24:.0f}" y1="18" y2="18" stroke="{line.color}" '
            f'stroke-width="2"{dash}/>'
        )
        parts.append(f'<text x="{x + 30:.0f}" y="22">{escape(line.label)}</text>')
        x += 44 + 6.6 * len(line.label)
    for index, latency in enumerate(latencies):
        parts.extend(_panel(series, latency, concurrencies, index * _PANEL_WIDTH))
    parts.append(
        f'<text x="{width / 2:.0f}" y="{height - 6}" text-anchor="middle" fill="#555">'
        f"{escape(caption)}</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


@dataclass(frozen=True)
class TimelineSeries:
    """One line of a timeline chart.

    Attributes:
        label: The legend's text.
        color: A CSS colour.
        dashed: Draw it dashed.
        points: ``(seconds, value)`` pairs, in time order.
    """

    label: str
    color: str
    dashed: bool
    points: Sequence[tuple[float, float]]


_TIMELINE_WIDTH = 760
_TIMELINE_HEIGHT = 320


def _nice_step(span: float, ticks: int) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks over ``span``."""
    rough = max(span, 1e-9) / ticks
    power = 10.0 ** math.floor(math.log10(rough))
    for step in (1, 2, 5, 10):
        if rough <= step * power:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def timeline_svg(
    series: Sequence[TimelineSeries],
    *,
    limit: float,
    limit_label: str,
    interval: float,
    title: str,
    caption: str,
) -> str:
    """Return a chart of rates over time against a horizontal limit, as an SVG document.

    Args:
        series: The lines to draw (requests/s over time, say).
        limit: The server's limit, drawn as a dashed grey line.
        limit_label: The limit's legend text.
        interval: Seconds each point covers (said on the y axis).
        title: The line above the plot.
        caption: Lines under the chart (machine, date), separated by newlines.

    Returns:
        The SVG text.
    """
    captions = caption.splitlines()
    width = _TIMELINE_WIDTH
    height = _LEGEND_HEIGHT + _TIMELINE_HEIGHT + 6 + 16 * len(captions)
    plot_w = width - _LEFT - _RIGHT
    plot_h = _TIMELINE_HEIGHT - _TOP - _BOTTOM
    top = _LEGEND_HEIGHT + _TOP
    last = max((t for line in series for t, _ in line.points), default=1.0)
    step = _nice_step(last, 10)
    x_max = step * max(math.ceil(last / step - 1e-9), 1)
    peak = max((v for line in series for _, v in line.points), default=0.0)
    y_max = _nice_ceiling(max(peak, limit) * 1.1)

    def x(seconds: float) -> float:
        return _LEFT + plot_w * seconds / x_max

    def y(value: float) -> float:
        return top + plot_h * (1 - value / y_max)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    legend = [*((line.label, line.color, line.dashed) for line in series)]
    legend.append((limit_label, "#555", True))
    x_legend = 16.0
    for label, color, dashed in legend:
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        parts.append(
            f'<line x1="{x_legend:.0f}" x2="{x_legend + 24:.0f}" y1="18" y2="18" '
            f'stroke="{color}" stroke-width="2"{dash}/>'
        )
        parts.append(f'<text x="{x_legend + 30:.0f}" y="22">{escape(label)}</text>')
        x_legend += 44 + 6.6 * len(label)
    parts += [
        f'<text x="{_LEFT + plot_w / 2:.1f}" y="{top - 12:.1f}" text-anchor="middle" '
        f'font-weight="bold">{escape(title)}</text>',
        f'<rect x="{_LEFT}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#888"/>',
    ]
    for tick in range(6):
        value = y_max * tick / 5
        parts.append(
            f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            'stroke="#ddd"/>'
        )
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:,.0f}</text>'
        )
    tick_count = round(x_max / step)
    for index in range(tick_count + 1):
        seconds = index * step
        parts.append(
            f'<text x="{x(seconds):.1f}" y="{top + plot_h + 18}" text-anchor="middle">'
            f"{seconds:g}</text>"
        )
    parts.append(
        f'<text x="{_LEFT + plot_w / 2:.1f}" y="{top + plot_h + 38}" text-anchor="middle">'
        "seconds since the batch began</text>"
    )
    label_y = top + plot_h / 2
    parts.append(
        f'<text x="16" y="{label_y:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 16 {label_y:.1f})">per second (over {interval:g} s)</text>'
    )
    parts.append(
        f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y(limit):.1f}" y2="{y(limit):.1f}" '
        'stroke="#555" stroke-width="1.5" stroke-dasharray="6 4"/>'
    )
    for line in series:
        if not line.points:
            continue
        dash = ' stroke-dasharray="6 4"' if line.dashed else ""
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in line.points)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{line.color}" '
            f'stroke-width="1.5"{dash}><title>{escape(line.label)}</title></polyline>'
        )
    for index, text in enumerate(captions):
        baseline = _LEGEND_HEIGHT + _TIMELINE_HEIGHT + 16 * (index + 1)
        parts.append(
            f'<text x="{width / 2:.0f}" y="{baseline}" text-anchor="middle" fill="#555">'
            f"{escape(text)}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
