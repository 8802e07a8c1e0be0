"""Server-rendered SVG charts (no JavaScript, readable in light and dark mode)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

__all__ = ["throughput_svg"]


def throughput_svg(series: Sequence[dict[str, Any]], *, label_every: int) -> Markup:
    """Stacked bars of finished (bottom) and failed (top) jobs per bucket, with a y-axis."""
    width, height, left, bottom, top = 720, 180, 40, 20, 10
    count = max(1, len(series))
    peak = max([row["finished"] + row["failed"] for row in series] + [1])
    plot_h = height - bottom - top
    slot = (width - left) / count
    bar = max(1.0, slot * 0.8)
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
        if index % label_every == 0:
            label = escape(row["at"].strftime("%H:%M" if label_every < 100 else "%m-%d"))
            parts.append(f'<text x="{x:.1f}" y="{height - 4}">{label}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
