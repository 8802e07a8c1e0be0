"""The JSON API under ``/jobs/api/``: the dashboard's data for scripts and other tools."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from flask_jobs.errors import UnknownJobError
from flask_jobs.history.events import STATUSES
from flask_jobs.history.query import HistoryQuery
from flask_jobs.keys import JOB_ID, job_key
from flask_jobs.ops.live import status_data
from flask_jobs.scheduler.control import ScheduleControl
from flask_jobs.workflows import WorkflowHandle

from .openapi import openapi_document
from .views_failures import WINDOWS
from .web import arg_choice, arg_int, json_ready, state

__all__ = [
    "api_failures",
    "api_job",
    "api_jobs",
    "api_openapi",
    "api_overview",
    "api_schedules",
    "api_workflow",
]


def _history() -> HistoryQuery:
    jobs_state = state()
    if not jobs_state.history_enabled:
        abort(404, "The job history is off (JOBS_HISTORY_ENABLED = False).")
    return HistoryQuery(jobs_state.history, current_app._get_current_object())  # type: ignore[attr-defined]


def _moment(name: str) -> datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        abort(400, f"'{name}' must be an ISO-8601 date and time, e.g. 2026-11-24T09:00:00Z.")
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _text(name: str) -> str | None:
    value = request.args.get(name) or None
    if value is not None and len(value) > 500:
        abort(400, f"'{name}' is longer than 500 characters.")
    # A NUL reaching PostgreSQL is a DataError (a 500); the HTML list refuses these too.
    if value is not None and any(ord(char) < 32 or ord(char) == 127 for char in value):
        abort(400, f"'{name}' must not contain control characters.")
    return value


def api_overview() -> ResponseReturnValue:
    """Queues with their counts per state, and the workers."""
    return jsonify(json_ready(status_data(state())))


def api_jobs() -> ResponseReturnValue:
    """History rows matching the filters, newest first; ``next_cursor`` pages on."""
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        abort(400, f"'status' must be one of {', '.join(STATUSES)}.")
    page = _history().search(
        status=status,
        queue=_text("queue"),
        function=_text("function"),
        origin=_text("origin"),
        text=_text("text"),
        since=_moment("since"),
        until=_moment("until"),
        cursor=arg_int("cursor", 0, minimum=0, maximum=2**62) or None,
        limit=arg_int("limit", 50, minimum=1, maximum=500),
    )
    rows = [{k: v for k, v in row.items() if k != "status_rank"} for row in page.rows]
    return jsonify(json_ready({"jobs": rows, "next_cursor": page.next_cursor}))


def api_job(job_id: str) -> ResponseReturnValue:
    """Every recorded attempt of one job, and its live status in Redis if it is still there."""
    if not JOB_ID.match(job_id):
        abort(404, "No such job: a job id is 1-128 letters, digits, '_' or '-'.")
    attempts = [
        {k: v for k, v in row.items() if k != "status_rank"} for row in _history().get(job_id)
    ]
    raw = state().connection.hget(job_key(job_id), "status")
    live = raw.decode() if isinstance(raw, bytes) else None
    if not attempts and live is None:
        abort(404, f"No job with id {job_id!r} in Redis or in the history.")
    return jsonify(json_ready({"id": job_id, "status": live, "attempts": attempts}))


def api_workflow(workflow_id: str) -> ResponseReturnValue:
    """A chain, group or chord: its status, progress, members with their state, results."""
    if not JOB_ID.match(workflow_id):
        abort(404, "No such workflow: an id is 1-128 letters, digits, '_' or '-'.")
    try:
        handle = WorkflowHandle(state().connection, workflow_id, serializer=state().serializer)
    except UnknownJobError:
        abort(404, f"No workflow with id {workflow_id!r} (it may have expired).")
    return jsonify(json_ready(handle.to_dict()))


def api_failures() -> ResponseReturnValue:
    """Failures grouped by function and exception type over ``window`` (1h, 24h, 7d, 30d)."""
    window = WINDOWS[arg_choice("window", tuple(WINDOWS), "24h")]
    groups = _history().top_exceptions(window, limit=arg_int("limit", 50, minimum=1, maximum=500))
    return jsonify(json_ready({"groups": groups}))


def api_schedules() -> ResponseReturnValue:
    """Every schedule with its trigger, next and last run, outcome and state."""
    control = ScheduleControl(current_app._get_current_object(), state())  # type: ignore[attr-defined]
    return jsonify(json_ready({"schedules": control.list()}))


def api_openapi() -> ResponseReturnValue:
    """The OpenAPI 3.1 document describing this API."""
    return jsonify(openapi_document())
