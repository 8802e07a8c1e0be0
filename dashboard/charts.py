"""Server-rendered SVG charts (no JavaScript, readable in light and dark mode)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

__all__ = ["throughput_svg"]


def _labels(series: Sequence[dict[str, Any]], label_every: int) -> dict[int, str]:
    """The x-axis labels by bucket index: a date wherever the day changes.

    With ``label_every`` 0, one label per day, at midnight (UTC), e.g. "Tue 01 Dec";
    otherwise every ``label_every`` buckets a time, with the date before it on the first
    label and wherever the day changed since the previous label.
    """
    labels: dict[int, str] = {}
    last_day = None
    for index, row in enumerate(series):
        at = row["at"]
        if label_every == 0:
            if at.hour == 0 and at.minute == 0:
                labels[index] = at.strftime("%a %d %b")
            continue
        if index % label_every:
            continue
        day = at.date()
        labels[index] = at.strftime("%H:%M" if day == last_day else "%d %b %H:%M")
        last_day = day
    return labels


def throughput_svg(series: Sequence[dict[str, Any]], *, label_every: int) -> Markup:
    """Stacked bars of finished (bottom) and failed (top) jobs per bucket, with a y-axis.

    ``label_every``: label every n-th bucket with its time, or 0 for one label a day.
    """
    width, height, left, bottom, top = 720, 180, 40, 20, 10
    count = max(1, len(series))
    peak = max([row["finished"] + row["failed"] for row in series] + [1])
    plot_h = height - bottom - top
    slot = (width - left) / count
    bar = max(1.0, slot * 0.8)
    labels = _labels(series, label_every)
    parts = [
        f'<svg class="fj-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="finished and failed jobs per interval">',
        f'<line class="fj-axis" x1="{left}" y1="{top + plot_h}" x2="{width}" y2="{top + plot_h}"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{peak}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    for index, row in enumerate(series):
        x = left + index * slot
        finished_h = plot_h * row["finished"] / peak
        failed_h = plot_h * row["failed"] / peak
        when = escape(row["at"].strftime("%Y-%m-%d %H:%M UTC"))
        title = f"<title>{when}: {row['finished']} finished, {row['failed']} failed</title>"
        if finished_h:
            y = top + plot_h - finished_h
            parts.append(
                f'<rect class="fj-bar-finished" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                f'height="{finished_h:.1f}">{title}</rect>'
            )
        if failed_h:
            y = top + plot_h - finished_h - failed_h
            parts.append(
                f'<rect class="fj-bar-failed" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                f'height="{failed_h:.1f}">{title}</rect>'
            )
        if index in labels:
            parts.append(f'<text x="{x:.1f}" y="{height - 4}">{escape(labels[index])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
