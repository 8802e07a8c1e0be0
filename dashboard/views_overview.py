"""The overview page: counts per queue and state, workers, throughput, failing functions."""

from __future__ import annotations

from datetime import timedelta

from flask import Response, current_app, request
from flask.typing import ResponseReturnValue

from flask_jobs.history.query import HistoryQuery
from flask_jobs.ops.live import status_data
from flask_jobs.ops.sets import live_counts

from .charts import throughput_svg
from .web import POLL_CHOICES, arg_choice, chrome, poll_seconds, render, state

__all__ = ["overview", "remember_poll", "template_names"]

#: Chart ranges: window, bucket, label every n buckets (0: a date label each day).
RANGES = {
    "1h": (timedelta(hours=1), timedelta(minutes=1), 10),
    "24h": (timedelta(hours=24), timedelta(hours=1), 4),
    "7d": (timedelta(days=7), timedelta(hours=2), 0),
}


def overview() -> ResponseReturnValue:
    """Counts per queue and state, workers online, throughput chart, top failing functions."""
    jobs_state = state()
    chosen = arg_choice("range", tuple(RANGES), "1h")
    window, bucket, label_every = RANGES[chosen]
    data = status_data(jobs_state)
    history = None
    if jobs_state.history_enabled:
        query = HistoryQuery(jobs_state.history, current_app._get_current_object())  # type: ignore[attr-defined]
        try:
            series = query.throughput(window, bucket)
            stats = query.function_stats(window)
        except Exception as exc:  # the history database being down must not take the page
            current_app.logger.warning("dashboard: history unavailable: %s", exc)
        else:
            finished = sum(row["finished"] for row in series)
            failed = sum(row["failed"] for row in series)
            history = {
                "chart": throughput_svg(series, label_every=label_every),
                "finished": finished,
                "failed": failed,
                "failure_rate": failed / (finished + failed) if finished + failed else 0.0,
                "failing": [s for s in stats if s["failed"]][:10],
            }
    return render(
        "flask_jobs/overview.html",
        "flask_jobs/_overview_live.html",
        data=data,
        live=live_counts(jobs_state),
        history=history,
        range=chosen,
        ranges=tuple(RANGES),
    )


def template_names() -> dict[str, object]:
    """The endpoints there are (a page links only to those) and the poll interval."""
    return {**chrome(), "poll": poll_seconds(), "poll_choices": POLL_CHOICES}


def remember_poll(response: Response) -> Response:
    """Keep the poll interval a page was asked for in a cookie."""
    if request.args.get("poll"):
        response.set_cookie("flask_jobs_poll", str(poll_seconds()), samesite="Lax", httponly=True)
    return response
