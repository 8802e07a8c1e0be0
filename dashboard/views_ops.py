"""Operator pages: queues (pause, resume, empty), schedules (run now, pause, resume)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from flask_jobs.errors import JobsError, UnknownJobError, UnknownQueueError
from flask_jobs.history.events import ENDED
from flask_jobs.jobs.slots import concurrency_keys
from flask_jobs.keys import JOB_ID, QUEUE_NAME, SCHEDULE_NAME
from flask_jobs.ops.live import listening, queue_counts
from flask_jobs.ops.queues import empty_queue, known_queue, pause_queue, resume_queue
from flask_jobs.ops.schedules import with_last_runs
from flask_jobs.scheduler.control import ScheduleControl
from flask_jobs.state import JobsState

from .views_audit import note
from .views_queue_charts import RANGES as CHART_RANGES
from .views_queue_charts import queue_charts
from .web import age, arg_choice, render, state

__all__ = [
    "queue_empty",
    "queue_pause",
    "queue_resume",
    "queues",
    "schedule_pause",
    "schedule_resume",
    "schedule_run",
    "schedules",
]

#: Outcomes the stylesheet has a colour for (``fj-status-<outcome>``): the ends of attempts.
STYLED = frozenset(ENDED)

#: What an action did, shown after its redirect (flashed, or ``?done=<key>&name=...``).
DONE = {
    "queue-paused": "Queue {name} is paused: workers leave its jobs alone until it is resumed.",
    "queue-resumed": "Queue {name} is resumed.",
    "queue-emptied": "Queue {name} is emptied: {count} job(s) deleted.",
    "schedule-run": "Schedule {name} enqueued job {job}.",
    "schedule-paused": "Schedule {name} is paused.",
    "schedule-resumed": "Schedule {name} is resumed (runs due while paused are skipped).",
}
#: The values a ``?done=`` message may show, and what each must look like.
DONE_PARAMS = {"name": QUEUE_NAME, "count": re.compile(r"^\d{1,12}$"), "job": JOB_ID}


# -- shared helpers ------------------------------------------------------------


def _stamp(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _done(endpoint: str, key: str, **params: str) -> ResponseReturnValue:
    """303 back to ``endpoint`` with a message: flashed when sessions work, else in the URL."""
    if current_app.secret_key:
        flash(DONE[key].format(**params))
        return redirect(url_for(endpoint), 303)
    shown = {name: value for name, value in params.items() if DONE_PARAMS[name].match(value)}
    values: dict[str, Any] = {"done": key, **shown}
    return redirect(url_for(endpoint, **values), 303)


def _done_message() -> str | None:
    """The ``?done=`` message of the redirect that led here, validated (400 when malformed)."""
    key = request.args.get("done")
    if key is None:
        return None
    if key not in DONE:
        abort(400, f"'done' must be one of {', '.join(DONE)}, not {key[:40]!r}.")
    values = {}
    for name, pattern in DONE_PARAMS.items():
        value = request.args.get(name, "")
        if value and not pattern.match(value):
            abort(400, f"'{name}' is not valid here: {value[:40]!r}.")
        values[name] = value or "?"
    return DONE[key].format(**values)


def queue_rows(jobs_state: JobsState) -> list[dict[str, Any]]:
    """Each queue: size, age of its oldest job, workers listening, paused, counts per state."""
    listeners = listening(jobs_state)
    rows = []
    for row in queue_counts(jobs_state, oldest=True):
        oldest = row.pop("oldest")
        row.update(
            oldest=age(oldest) if oldest else ("?" if row["queued"] else "-"),
            oldest_at=_stamp(oldest),
            workers=listeners.get(row["name"], 0),
        )
        rows.append(row)
    return rows


def _queue_name(jobs_state: JobsState, name: str) -> str:
    """``name`` if it is a queue this page shows; a 404 otherwise."""
    try:
        return known_queue(jobs_state, name)
    except UnknownQueueError:
        abort(404, f"There is no queue named {name[:100]!r}.")


def queues() -> ResponseReturnValue:
    """Every queue with its size, oldest job, workers, paused state and counts per state."""
    jobs_state = state()
    chosen = arg_choice("range", tuple(CHART_RANGES), "24h")
    rows = queue_rows(jobs_state)
    if request.headers.get("HX-Request") == "true":  # a refresh of the rows: no charts
        return render("flask_jobs/queues.html", "flask_jobs/_queue_rows.html", rows=rows)
    return render(
        "flask_jobs/queues.html",
        None,
        rows=rows,
        slots=concurrency_keys(jobs_state.connection),
        done=_done_message(),
        charts=queue_charts(CHART_RANGES[chosen]),
        range=chosen,
        ranges=tuple(CHART_RANGES),
    )


def queue_pause(name: str) -> ResponseReturnValue:
    """Make our workers skip ``name`` (jobs can still be enqueued to it)."""
    jobs_state = state()
    name = _queue_name(jobs_state, name)
    pause_queue(jobs_state, name)
    note("pause_queue", name, 1)
    return _done("jobs_dashboard.queues", "queue-paused", name=name)


def queue_resume(name: str) -> ResponseReturnValue:
    """Let our workers take ``name``'s jobs again."""
    jobs_state = state()
    name = _queue_name(jobs_state, name)
    resume_queue(jobs_state, name)
    note("resume_queue", name, 1)
    return _done("jobs_dashboard.queues", "queue-resumed", name=name)


def queue_empty(name: str) -> ResponseReturnValue:
    """Delete every job waiting in ``name``, after a confirmation page that says how many."""
    jobs_state = state()
    name = _queue_name(jobs_state, name)
    queue = jobs_state.queue(name)
    confirm = request.form.get("confirm")
    if confirm not in (None, "", "1"):
        abort(400, f"'confirm' must be 1, not {confirm[:40]!r}.")
    if confirm != "1":
        count = queue.count
        return render_template(
            "flask_jobs/confirm.html",
            title=f"Empty queue {name}?",
            message=f"This deletes the {count} job(s) now waiting in queue {name}, "
            "with their data. Jobs that are running, scheduled or failed are kept.",
            action=url_for("jobs_dashboard.queue_empty", name=name),
            fields={"confirm": "1"},
            button=f"Delete {count} job(s)",
            danger=True,
            cancel=url_for("jobs_dashboard.queues"),
        )
    deleted = empty_queue(jobs_state, name)
    note("empty_queue", name, deleted)
    current_app.logger.warning("dashboard: emptied queue %s (%d jobs deleted)", name, deleted)
    return _done("jobs_dashboard.queues", "queue-emptied", name=name, count=str(deleted))


# -- schedules -----------------------------------------------------------------


def _control() -> ScheduleControl:
    return ScheduleControl(current_app._get_current_object(), state())  # type: ignore[attr-defined]


def _schedule_name(control: ScheduleControl, name: str) -> str:
    """``name`` if it is a declared schedule; a 404 otherwise."""
    if not SCHEDULE_NAME.match(name):
        abort(404, f"There is no schedule named {name[:100]!r}.")
    try:
        control.get(name)
    except UnknownJobError as exc:
        abort(404, str(exc))
    return name


def schedule_rows(control: ScheduleControl) -> list[dict[str, Any]]:
    """Each schedule as `ScheduleControl.list` has it, with times in words."""
    rows = []
    listed = control.list()
    with_last_runs(control.app, control.state, listed)
    for row in listed:
        outcome = row["last_outcome"]
        status = "disabled" if not row["enabled"] else "paused" if row["paused"] else "active"
        rows.append(
            {
                **row,
                "status": status,
                "next": _stamp(row["next_run"]),
                "last": age(row["last_run"]) if row["last_run"] else None,
                "last_at": _stamp(row["last_run"]),
                "outcome_class": f"fj-status-{outcome}" if outcome in STYLED else "",
            }
        )
    return rows


def schedules() -> ResponseReturnValue:
    """Every schedule: trigger, next and last run, outcome, missed runs, paused."""
    return render(
        "flask_jobs/schedules.html",
        "flask_jobs/_schedule_rows.html",
        rows=schedule_rows(_control()),
        done=_done_message(),
    )


def schedule_run(name: str) -> ResponseReturnValue:
    """Enqueue ``name``'s job now, outside its timetable."""
    control = _control()
    name = _schedule_name(control, name)
    try:
        job_id = control.run(name)
    except (JobsError, ValueError) as exc:
        abort(409, f"Schedule {name} could not be run: {exc}")
    note("run_schedule", name, 1, f"enqueued job {job_id}")
    return _done("jobs_dashboard.schedules", "schedule-run", name=name, job=job_id)


def schedule_pause(name: str) -> ResponseReturnValue:
    """Stop firing ``name`` until it is resumed."""
    control = _control()
    name = _schedule_name(control, name)
    control.pause(name)
    note("pause_schedule", name, 1)
    return _done("jobs_dashboard.schedules", "schedule-paused", name=name)


def schedule_resume(name: str) -> ResponseReturnValue:
    """Fire ``name`` again from now on."""
    control = _control()
    name = _schedule_name(control, name)
    control.resume(name)
    note("resume_schedule", name, 1)
    return _done("jobs_dashboard.schedules", "schedule-resumed", name=name)
