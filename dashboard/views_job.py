"""One job's detail page (arguments, origin, every attempt) and its actions."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import abort, current_app, request, url_for
from flask.typing import ResponseReturnValue
from rq.exceptions import DeserializationError, InvalidJobOperation
from rq.job import JobStatus
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import MethodNotAllowed

from flask_jobs.errors import HistoryUnavailable, JobsError, UnknownJobError
from flask_jobs.history.events import workflow_of
from flask_jobs.jobs.flask_job import META_PROGRESS, FlaskJob
from flask_jobs.keys import JOB_ID
from flask_jobs.ops.jobs import ACTIONS, CANCELABLE, REQUEUEABLE, retry_note
from flask_jobs.workflows import WorkflowHandle

from .jobs_common import (
    DONE,
    confirm_page,
    fetch,
    history,
    perform,
    redirect_with,
)
from .tracebacks import split_traceback
from .views_audit import note
from .web import render, state

__all__ = ["job", "job_action"]

#: Origins that name another job: a requeue, a copy, or a job enqueued by a job.
ORIGIN_JOB = re.compile(r"(?:requeue|copy|job):([A-Za-z0-9_-]{1,128})(?:#\d+)?")
JOB_ACTIONS = (*ACTIONS, "copy")


def _check_id(job_id: str) -> None:
    head, _, action = job_id.rpartition("/")
    if request.method == "GET" and action in JOB_ACTIONS and JOB_ID.fullmatch(head):
        raise MethodNotAllowed(
            ["POST"],
            description=f"{action.capitalize()} is an action: the button on the job's page "
            "sends it as a form (POST). Open the job's page and use the button.",
        )
    if not JOB_ID.fullmatch(job_id):
        abort(
            404,
            f"{job_id[:80]!r} is not a job id: job ids are 1 to 128 letters, digits, '_' or '-'.",
        )


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=repr)


def _pretty_text(text: str | None) -> str:
    if text is None:
        return "-"
    try:
        return _pretty(json.loads(text))
    except ValueError:  # cut short by JOBS_HISTORY_MAX_ARG_BYTES: show it as it is
        return text


def _describe(job_id: str, live: FlaskJob | None, attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """What the detail page shows, from Redis when the job is there, else from the history."""
    latest = attempts[-1] if attempts else {}
    with_args = next((row for row in reversed(attempts) if row["args"] is not None), None)
    args_text = _pretty_text(with_args["args"]) if with_args else "-"
    kwargs_text = _pretty_text(with_args["kwargs"]) if with_args else "-"
    truncated = bool(with_args and with_args["args_truncated"])
    progress = latest.get("progress")
    progress_message = latest.get("progress_message")
    context: dict[str, Any] = {
        "job_id": job_id,
        "in_redis": live is not None,
        "status": latest.get("status", "-"),
        "func": latest.get("func"),
        "queue": latest.get("queue"),
        "description": latest.get("description"),
        "origin": latest.get("origin"),
        "enqueued_at": latest.get("enqueued_at"),
        "dependencies": [],
        "result": next((r["result"] for r in reversed(attempts) if r["result"] is not None), None),
    }
    if live is not None:
        status = live.get_status(refresh=False)
        try:  # the function path sits in the job's data, which may not be readable JSON
            func = live.func_name
        except (DeserializationError, TypeError, ValueError) as exc:
            current_app.logger.warning("dashboard: cannot read job %s: %s", job_id, exc)
            func = context["func"]
        context.update(
            status=status.value,
            func=func,
            queue=live.origin,
            description=live.description,
            origin=live.origin_label or context["origin"],
            enqueued_at=live.enqueued_at or context["enqueued_at"],
            dependencies=live.dependency_ids,
            can_requeue=status in REQUEUEABLE,
            can_cancel=status in CANCELABLE,
            can_delete=status != JobStatus.STARTED,
            can_stop=status == JobStatus.STARTED,
            can_run_now=status == JobStatus.SCHEDULED,
            ran_before=live.started_at is not None,
            retry_note=retry_note(live) if status in REQUEUEABLE else None,
        )
        events = state().events
        try:  # the real arguments, redacted here as the history redacts them
            args_text = _pretty(events.redact(list(live.args)))
            kwargs_text = _pretty(events.redact(dict(live.kwargs)))
            truncated = False
            context["can_copy"] = True
        except (DeserializationError, TypeError, ValueError) as exc:
            current_app.logger.warning("dashboard: cannot read arguments of %s: %s", job_id, exc)
        meta = live.meta.get(META_PROGRESS) if isinstance(live.meta, dict) else None
        if isinstance(meta, dict) and isinstance(meta.get("fraction"), int | float):
            progress, progress_message = meta["fraction"], meta.get("message")
    origin_job = ORIGIN_JOB.fullmatch(context["origin"] or "")
    if str(context["description"]).startswith(f"{context['func']}("):
        # RQ's default description is the call with its arguments, unredacted: never shown
        context["description"] = None
    context.update(
        args_text=args_text,
        kwargs_text=kwargs_text,
        truncated=truncated,
        progress=None if progress is None else min(1.0, max(0.0, float(progress))),
        progress_message=progress_message,
        origin_job=origin_job.group(1) if origin_job else None,
        active=context["status"] in ("queued", "started", "scheduled", "deferred"),
    )
    return context


def _copy(job: FlaskJob) -> FlaskJob:
    """A new job with ``job``'s function, arguments and queue, its origin ``copy:<id>``."""
    if not isinstance(job.func_name, str):
        raise JobsError(f"job {job.id} has no function path to enqueue again")
    function = state().jobs.function(job.func_name)
    call = function.options(queue=job.origin, origin=f"copy:{job.id}")
    return call.enqueue(*job.args, **job.kwargs)


# -- views ---------------------------------------------------------------------------


def job(job_id: str) -> ResponseReturnValue:
    """One job: what it runs, where it came from, its state, and every attempt."""
    _check_id(job_id)
    live = fetch(job_id)
    attempts: list[dict[str, Any]] = []
    history_note = None
    query = history()
    if query is None:
        history_note = "The job history is off."
    else:
        try:
            attempts = query.get(job_id)
        except SQLAlchemyError as exc:
            current_app.logger.warning("dashboard: history unavailable: %s", exc)
            if live is None:  # nothing to show: say why, rather than "no such job"
                raise HistoryUnavailable() from exc
            history_note = "The job history database cannot be read right now."
    if live is None and not attempts:
        abort(
            404,
            f"No job with id {job_id!r}: it is neither in Redis nor in the history "
            "(it may have expired, been deleted, or been purged from the history).",
        )
    context = _describe(job_id, live, attempts)
    attempts = [
        {**a, "tb": split_traceback(a["traceback"]) if a.get("traceback") else None}
        for a in attempts
    ]
    return render(
        "flask_jobs/job_detail.html",
        "flask_jobs/job_detail_live.html",
        history_note=history_note,
        attempts=attempts,
        workflow=_workflow(live, attempts),
        **context,
    )


def _workflow(live: Any, attempts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The chain, group or chord the job belongs to (from Redis, or its history rows)."""
    meta = live.meta if live is not None and isinstance(live.meta, dict) else {}
    workflow_id = workflow_of(meta) or next(
        (a["workflow_id"] for a in attempts if a.get("workflow_id")), None
    )
    if not workflow_id:
        return None
    try:
        handle = WorkflowHandle(state().connection, workflow_id, serializer=state().serializer)
    except UnknownJobError:  # expired: the history still lists its jobs
        return None
    return handle.to_dict()


def job_action(job_id: str, action: str) -> ResponseReturnValue:
    """Requeue, cancel, delete (after a confirmation page) or copy one job."""
    if action not in JOB_ACTIONS:
        abort(404, f"There is no job action {action[:40]!r}; use one of {', '.join(JOB_ACTIONS)}.")
    _check_id(job_id)
    here = url_for(".job", job_id=job_id)
    live = fetch(job_id)
    if live is None:
        return redirect_with(
            here, f"Job {job_id} is no longer in Redis: nothing to {action}.", "error"
        )
    if action == "copy":
        try:
            copy = _copy(live)
        except (JobsError, DeserializationError, TypeError, ValueError) as exc:
            return redirect_with(here, f"Could not enqueue a copy of job {job_id}: {exc}", "error")
        note("enqueue", copy.id, 1, f"a copy of {job_id}")
        return redirect_with(
            url_for(".job", job_id=copy.id), f"Enqueued {copy.id}, a copy of {job_id}."
        )
    if action == "delete" and request.form.get("confirm") != "yes":
        return confirm_page(
            "Delete job",
            f"Delete job {job_id} ({live.func_name}) from Redis? Its history stays.",
            url_for(".job_action", job_id=job_id, action="delete"),
            [],
            button="Delete",
            danger=True,
            cancel_url=here,
        )
    if action == "stop" and request.form.get("confirm") != "yes":
        return confirm_page(
            "Stop job",
            f"Stop job {job_id} ({live.func_name}) while it runs?",
            url_for(".job_action", job_id=job_id, action="stop"),
            [],
            notes=[
                "The worker running it interrupts the job where it is: work it did is not "
                "undone. The job ends as stopped, and can be requeued from its page.",
            ],
            button="Stop the job",
            danger=True,
            cancel_url=here,
        )
    try:
        perform(action, live)
    except (JobsError, InvalidJobOperation) as exc:
        return redirect_with(here, f"Could not {action} job {job_id}: {exc}", "error")
    note(action, job_id, 1)
    message = f"{DONE[action]} job {job_id}."
    if action == "requeue":
        message += " " + retry_note(live)
    return redirect_with(here, message)
