"""Server-rendered SVG charts (no JavaScript build, readable in light and dark mode).

Every chart has a y axis with a few round ticks and grid lines, x labels that
carry the date wherever a range spans days, a legend, and a ``<title>`` on each
bar or point so hovering shows its value (browsers show it as a tooltip).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape

__all__ = ["bar_chart", "duration", "line_chart", "throughput_svg"]

WIDTH, HEIGHT = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 22, 22
#: About this many x labels, whatever the number of buckets.
X_LABELS = 8

#: A series: (key in each row, label in the legend, CSS class of its bars or line).
Series = tuple[str, str, str]


def duration(seconds: float | None) -> str:
    """Seconds for a reader: "850 ms", "2.4 s", "3.1 min", "2.0 h", or "-"."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    for size, unit in ((3600, "h"), (60, "min")):
        if seconds >= size:
            return (
                f"{seconds / size:.2g} {unit}"
                if seconds < 10 * size
                else f"{seconds / size:.0f} {unit}"
            )
    return f"{seconds:.3g} s"


def _count(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def ticks(peak: float) -> list[float]:
    """Round y ticks from 0 to at least ``peak``: 0 and four or five more."""
    if peak <= 0:
        return [0.0, 1.0]
    raw = peak / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    count = math.ceil(peak / step - 1e-9)
    return [step * i for i in range(count + 1)]


def _x_labels(times: Sequence[datetime]) -> dict[int, str]:
    """Labels by bucket index: times within a day, dates (at midnight UTC) across days."""
    if not times:
        return {}
    span = (times[-1] - times[0]).total_seconds()
    labels: dict[int, str] = {}
    if span > 2 * 86_400:
        days = [i for i, at in enumerate(times) if i and at.date() != times[i - 1].date()]
        step = max(1, math.ceil(len(days) / X_LABELS))
        for i in days[::step]:
            labels[i] = times[i].strftime("%a %d %b")
        return labels
    every = max(1, math.ceil(len(times) / X_LABELS))
    last_day = None
    for i in range(0, len(times), every):
        day = times[i].date()
        labels[i] = times[i].strftime("%H:%M" if day == last_day else "%d %b %H:%M")
        last_day = day
    return labels


def _frame(
    times: Sequence[datetime],
    top: float,
    fmt: Callable[[float], str],
    series: Sequence[Series],
    label: str,
    *,
    markers: str,
) -> tuple[list[str], float, float]:
    """The SVG's opening, grid, y ticks, x labels and legend; the plot's height and slot."""
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(times))
    parts = [
        f'<svg class="fj-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}">'
    ]
    for tick in ticks(top) if top > 0 else [0.0]:
        y = TOP + plot_h - plot_h * (tick / top if top else 0)
        parts.append(
            f'<line class="fj-grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
            f'<text class="fj-y" x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(fmt(tick))}</text>"
        )
    parts.append(
        f'<line class="fj-axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" '
        f'y2="{TOP + plot_h}"/>'
    )
    for i, text in _x_labels(times).items():
        parts.append(
            f'<text class="fj-x" x="{LEFT + i * slot:.1f}" y="{HEIGHT - 6}">{escape(text)}</text>'
        )
    x = LEFT
    for _, name, css in series:
        parts.append(
            f'<{markers} class="fj-key {css}" x="{x}" y="4" width="10" height="10"/>'
            if markers == "rect"
            else f'<line class="fj-key {css}" x1="{x}" y1="9" x2="{x + 12}" y2="9"/>'
        )
        parts.append(f'<text class="fj-legend" x="{x + 15}" y="13">{escape(name)}</text>')
        x += 22 + 7 * len(name)
    return parts, plot_h, slot


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def bar_chart(rows: Sequence[dict[str, Any]], series: Sequence[Series], *, label: str) -> Markup:
    """Stacked bars of ``series`` (first at the bottom) per row; each row has ``at``."""
    times = [row["at"] for row in rows]
    peak = max([sum(row[key] or 0 for key, _, _ in series) for row in rows] + [0])
    top = ticks(peak)[-1] if peak else 1.0
    parts, plot_h, slot = _frame(times, top, _count, series, label, markers="rect")
    bar = max(1.0, slot * 0.8)
    for i, row in enumerate(rows):
        x = LEFT + i * slot
        title = escape(
            f"{_stamp(row['at'])}: "
            + ", ".join(f"{row[key] or 0:,} {name.lower()}" for key, name, _ in series)
        )
        base = TOP + plot_h
        for key, _, css in series:
            h = plot_h * (row[key] or 0) / top
            if h:
                base -= h
                parts.append(
                    f'<rect class="{css}" x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" '
                    f'height="{h:.1f}"><title>{title}</title></rect>'
                )
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(
    rows: Sequence[dict[str, Any]],
    series: Sequence[Series],
    *,
    label: str,
    fmt: Callable[[float], str] = _count,
) -> Markup:
    """One line per series over the rows (a gap where a value is None), with a dot per point."""
    times = [row["at"] for row in rows]
    values = [row[key] for row in rows for key, _, _ in series if row[key] is not None]
    peak = max([*values, 0])
    top = ticks(peak)[-1] if peak else 1.0
    parts, plot_h, slot = _frame(times, top, fmt, series, label, markers="line")
    for key, name, css in series:
        points: list[str] = []
        dots: list[str] = []
        for i, row in enumerate(rows):
            value = row[key]
            if value is None:
                if len(points) > 1:
                    parts.append(f'<polyline class="{css}" points="{" ".join(points)}"/>')
                points = []
                continue
            x = LEFT + i * slot + slot * 0.4
            y = TOP + plot_h - plot_h * value / top
            points.append(f"{x:.1f},{y:.1f}")
            title = escape(f"{_stamp(row['at'])}: {name} {fmt(value)}")
            dots.append(
                f'<circle class="{css}" cx="{x:.1f}" cy="{y:.1f}" r="2.5"><title>{title}</title>'
                "</circle>"
            )
        if len(points) > 1:
            parts.append(f'<polyline class="{css}" points="{" ".join(points)}"/>')
        parts.extend(dots)
    parts.append("</svg>")
    return Markup("".join(parts))


def throughput_svg(series: Sequence[dict[str, Any]], *, label_every: int | None = None) -> Markup:
    """Stacked bars of finished (bottom) and failed (top) jobs per bucket.

    ``label_every`` is accepted for callers of the first version; the labels now
    follow the range (times within a day, dates across days).
    """
    del label_every
    return bar_chart(
        series,
        (("finished", "Finished", "fj-bar-finished"), ("failed", "Failed", "fj-bar-failed")),
        label="finished and failed jobs per interval",
    )
