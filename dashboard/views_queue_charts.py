"""A queue's page and the queues' charts: depth and oldest-job wait over time, from the
samples the history recorder takes each minute (`flask_jobs.history.samples`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from sqlalchemy.exc import SQLAlchemyError

from flask_jobs.errors import UnknownQueueError
from flask_jobs.history.incidents import open_alerts
from flask_jobs.ops.live import listening, queue_counts
from flask_jobs.ops.queues import known_queue

from .charts import duration, line_chart
from .jobs_common import reading_history
from .views_functions import api_reading_history
from .web import age, arg_choice, json_ready, render, state

__all__ = ["api_queue_samples", "queue_charts", "queue_page"]

RANGES = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
#: Line styles (stylesheet classes) for queues on one chart; the busiest queues get them.
LINES = ("fj-line-a", "fj-line-b", "fj-line-c", "fj-line-d", "fj-line-e", "fj-line-f")


def _series(
    window: timedelta, queue: str | None = None, *, strict: bool = True
) -> dict[str, list[dict[str, Any]]] | None:
    """The samples of ``window`` per queue ({} when the history is off).

    Not ``strict`` (a page's charts), a history that cannot be read (down, or without the
    samples table: not migrated yet) gives None and the page shows the rest.
    """
    jobs_state = state()
    if not jobs_state.history_enabled:
        return {}
    store = jobs_state.history
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if strict:
        with reading_history(), store.engine(app).connect() as conn:
            return store.samples.series(conn, window, queue=queue)
    try:
        with store.engine(app).connect() as conn:
            return store.samples.series(conn, window, queue=queue)
    except SQLAlchemyError as exc:
        current_app.logger.warning(
            "dashboard: no queue samples (%s); `flask jobs history init` or your migrations "
            "create their table",
            str(exc).splitlines()[0][:200],
        )
        return None


def queue_charts(window: timedelta, queue: str | None = None) -> dict[str, Any]:
    """Depth and oldest-wait charts of ``queue`` (or the busiest queues), and what they show."""
    per_queue = _series(window, queue, strict=False)
    if per_queue is None:
        return {"depth": None, "wait": None, "shown": [], "hidden": 0, "unavailable": True}
    busiest = sorted(per_queue, key=lambda name: -max(p["depth"] for p in per_queue[name]))
    shown = sorted(busiest[: len(LINES)])
    times = sorted({point["at"] for name in shown for point in per_queue[name]})
    rows: list[dict[str, Any]] = [{"at": at} for at in times]
    index = {at: i for i, at in enumerate(times)}
    for n, name in enumerate(shown):
        for row in rows:
            row[f"depth{n}"] = row[f"wait{n}"] = None
        for point in per_queue[name]:
            row = rows[index[point["at"]]]
            row[f"depth{n}"] = point["depth"]
            row[f"wait{n}"] = point["oldest_wait"] or 0.0
    depth: Markup | None = None
    wait: Markup | None = None
    if rows:
        depth = line_chart(
            rows,
            [(f"depth{n}", name, LINES[n]) for n, name in enumerate(shown)],
            label="jobs waiting per queue",
        )
        wait = line_chart(
            rows,
            [(f"wait{n}", name, LINES[n]) for n, name in enumerate(shown)],
            label="wait of the oldest job per queue",
            fmt=duration,
        )
    hidden = len(per_queue) - len(shown)
    return {"depth": depth, "wait": wait, "shown": shown, "hidden": hidden, "unavailable": False}


def queue_page(name: str) -> ResponseReturnValue:
    """One queue: its counts now, its depth and oldest wait over time, its open alerts."""
    jobs_state = state()
    try:
        name = known_queue(jobs_state, name)
    except UnknownQueueError:
        abort(404, f"There is no queue named {name[:100]!r}.")
    chosen = arg_choice("range", tuple(RANGES), "24h")
    row = next(q for q in queue_counts(jobs_state, oldest=True) if q["name"] == name)
    row["workers"] = listening(jobs_state)[name]
    row["oldest_age"] = age(row["oldest"]) if row["oldest"] else "-"
    alerts = [a for a in open_alerts(jobs_state.connection) if a.subject == name]
    return render(
        "flask_jobs/queue.html",
        None,
        q=row,
        charts=queue_charts(RANGES[chosen], name),
        alerts=alerts,
        range=chosen,
        ranges=tuple(RANGES),
        history_enabled=jobs_state.history_enabled,
    )


def api_queue_samples() -> ResponseReturnValue:
    """Every queue's samples over ``range`` (``?queue=`` for one), as JSON."""
    chosen = arg_choice("range", tuple(RANGES), "24h")
    jobs_state = state()
    if not jobs_state.history_enabled:
        abort(404, "The job history is off (JOBS_HISTORY_ENABLED = False).")
    queue = request.args.get("queue") or None
    if queue is not None:
        try:
            queue = known_queue(jobs_state, queue)
        except UnknownQueueError as exc:
            abort(404, str(exc))
    with api_reading_history():
        series = _series(RANGES[chosen], queue) or {}
    return jsonify(json_ready({"range": chosen, "queues": series}))
