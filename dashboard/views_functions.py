"""Per-function pages: every function with its runs and failure rate, and one function's
run and wait percentiles over time, its recent failures and its schedules."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import abort, current_app, jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from flask_jobs.errors import HistoryUnavailable
from flask_jobs.history.functions import RANGES, FunctionStats
from flask_jobs.scheduler.control import ScheduleControl

from .charts import bar_chart, duration, line_chart
from .jobs_common import history_off, reading_history
from .web import arg_choice, json_ready, render, state

__all__ = ["api_function", "api_functions", "api_reading_history", "function", "functions"]

#: A function name as the history records it: a dotted path (``app.tasks.sync``).
FUNCTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:<>-]{0,254}$")


@contextmanager
def api_reading_history() -> Iterator[None]:
    """`reading_history` for the JSON API: the database down is a JSON 503, as documented."""
    try:
        with reading_history():
            yield
    except HistoryUnavailable:
        abort(503, "The job history database cannot be read right now (the app's log says why).")


def _stats() -> FunctionStats | None:
    jobs_state = state()
    if not jobs_state.history_enabled:
        return None
    return FunctionStats(jobs_state.history, current_app._get_current_object())  # type: ignore[attr-defined]


def _known(stats: FunctionStats, name: str, endpoint: str) -> str | Response:
    """``name`` when the history has runs of it; a redirect for a bare name; else a 404."""
    if not FUNCTION_NAME.match(name):
        abort(404, f"{name[:100]!r} is not a function name (e.g. app.tasks.send_report).")
    dotted = name.replace(":", ".")
    with reading_history():
        if stats.seen(dotted):
            return dotted
        found = stats.resolve(dotted) if "." not in dotted else []
    if len(found) == 1:
        values: dict[str, Any] = {"name": found[0], **_range_arg()}
        return redirect(url_for(endpoint, **values), 302)
    hint = f" Did you mean one of {', '.join(found)}?" if found else ""
    abort(
        404,
        f"The history has no run of a function named {dotted[:100]!r}.{hint} "
        "The Functions page lists every function that ran.",
    )


def _range_arg() -> dict[str, str]:
    chosen = request.args.get("range")
    return {"range": chosen} if chosen in RANGES else {}


def _schedules(func: str) -> list[dict[str, Any]]:
    """The schedules that run ``func``."""
    control = ScheduleControl(current_app._get_current_object(), state())  # type: ignore[attr-defined]
    return [row for row in control.list() if str(row["job"]).replace(":", ".") == func]


def _charts(detail: dict[str, Any]) -> dict[str, Any]:
    series = detail["series"]
    charts = {
        "runs": bar_chart(
            series,
            (("finished", "Finished", "fj-bar-finished"), ("failed", "Failed", "fj-bar-failed")),
            label="runs per interval",
        )
    }
    for name, what in (("run", "run time"), ("wait", "wait time (enqueue to start)")):
        lines = [
            (f"{name}_{p}", p, css)
            for p, css in (("p50", "fj-line-a"), ("p95", "fj-line-b"), ("p99", "fj-line-c"))
        ]
        charts[name] = line_chart(
            series, lines, label=f"{what} percentiles per interval", fmt=duration
        )
    return charts


def _one(name: str, endpoint: str) -> dict[str, Any] | Response:
    """The function's figures over ``?range=`` (``func``: its name), or a redirect instead
    (a bare name); the history must be on."""
    chosen = arg_choice("range", tuple(RANGES), "24h")
    stats = _stats()
    if stats is None:
        abort(404, "The job history is off (JOBS_HISTORY_ENABLED = False).")
    known = _known(stats, name, endpoint)
    if isinstance(known, Response):
        return known
    window, bucket = RANGES[chosen]
    with reading_history():
        detail = stats.detail(known, window, bucket)
        failures = stats.failure_groups(known, window)
    return {
        "func": known,
        "range": chosen,
        "bucket_seconds": int(bucket.total_seconds()),
        "detail": detail,
        "failures": failures,
        "schedules": _schedules(known),
    }


# -- pages ---------------------------------------------------------------------------


def functions() -> ResponseReturnValue:
    """Every function with runs in the range: runs, failure rate, p95 run and wait time."""
    # 30 days by default: every function the history (kept 30 days by default) has seen
    chosen = arg_choice("range", tuple(RANGES), "30d")
    stats = _stats()
    if stats is None:
        return history_off()
    with reading_history():
        rows = stats.functions(RANGES[chosen][0])
    return render(
        "flask_jobs/functions.html",
        None,
        rows=rows,
        range=chosen,
        ranges=tuple(RANGES),
        duration=duration,
    )


def function(name: str) -> ResponseReturnValue:
    """One function: runs, failure rate, run and wait percentiles, failures, schedules."""
    if not state().history_enabled:
        return history_off()
    figures = _one(name, "jobs_dashboard.function")
    if isinstance(figures, Response):
        return figures
    return render(
        "flask_jobs/function.html",
        None,
        charts=_charts(figures["detail"]),
        ranges=tuple(RANGES),
        duration=duration,
        **figures,
    )


# -- JSON ----------------------------------------------------------------------------


def api_functions() -> ResponseReturnValue:
    """Every function with runs in ``range``, as JSON."""
    chosen = arg_choice("range", tuple(RANGES), "24h")
    stats = _stats()
    if stats is None:
        abort(404, "The job history is off (JOBS_HISTORY_ENABLED = False).")
    with api_reading_history():
        rows = stats.functions(RANGES[chosen][0])
    return jsonify({"range": chosen, "functions": json_ready(rows)})


def api_function(name: str) -> ResponseReturnValue:
    """One function's statistics, series, failure groups and schedules, as JSON."""
    with api_reading_history():
        figures = _one(name, "jobs_dashboard.api_function")
    if isinstance(figures, Response):
        return figures
    schedules = [
        {key: row[key] for key in ("name", "trigger", "next_run", "last_run", "paused")}
        for row in figures.pop("schedules")
    ]
    body = {**figures.pop("detail"), **figures, "schedules": schedules}
    return jsonify(json_ready(body))
