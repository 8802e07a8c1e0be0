"""What the jobs, job detail and failures pages share: history access, job actions, redirects."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

import redis
from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import JobStatus
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from flask_jobs.actions import cancel, requeue
from flask_jobs.errors import JobsError
from flask_jobs.history_query import HistoryQuery
from flask_jobs.rq_job import FlaskJob

from .web import state

__all__ = [
    "ACTIONS",
    "DONE",
    "JOB_ID",
    "MATCHING_CAP",
    "HistoryUnavailable",
    "confirm_page",
    "counted",
    "fetch",
    "history",
    "history_off",
    "perform",
    "perform_all",
    "reading_history",
    "redirect_with",
    "register",
    "statuses",
    "text_field",
    "when",
]

#: What RQ accepts as a job id (plus the history column's length): anything else is no job.
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
#: At most this many jobs per "requeue all matching" or failure group (the rest: run it again).
MATCHING_CAP = 10_000
#: What `perform` can do to a job, and how a message says it was done.
ACTIONS = ("requeue", "cancel", "delete")
DONE = {"requeue": "Requeued", "cancel": "Canceled", "delete": "Deleted"}


class HistoryUnavailable(Exception):
    """The history database could not be read."""


# -- input at the edge -----------------------------------------------------------


def text_field(source: Mapping[str, str], name: str, limit: int) -> str:
    """The stripped text ``name`` in ``source``; a 400 when too long or with control characters."""
    value = (source.get(name) or "").strip()
    if len(value) > limit:
        abort(400, f"'{name}' is too long: {len(value)} characters, at most {limit}.")
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        abort(400, f"'{name}' must not contain control characters.")
    return value


# -- reading -----------------------------------------------------------------------


def history() -> HistoryQuery | None:
    """A query over the job history, or None when the history is off."""
    jobs_state = state()
    if not jobs_state.history_enabled:
        return None
    return HistoryQuery(jobs_state.history, current_app._get_current_object())  # type: ignore[attr-defined]


@contextmanager
def reading_history() -> Iterator[None]:
    """Turn a database error into `HistoryUnavailable` (the blueprint's 503 page)."""
    try:
        yield
    except SQLAlchemyError as exc:
        current_app.logger.warning("dashboard: history unavailable: %s", exc)
        raise HistoryUnavailable() from exc


def history_off() -> ResponseReturnValue:
    """The page shown instead of one that reads the history when the history is off."""
    return render_template(
        "flask_jobs/jobs_message.html",
        title="The job history is off",
        message="This page reads the job history, and JOBS_HISTORY_ENABLED is False. "
        "The overview shows the live queues.",
    )


def _history_down(exc: HistoryUnavailable) -> ResponseReturnValue:
    message = (
        "The job history database cannot be read right now (the app's log says why). "
        "The overview still shows the live queues."
    )
    return render_template(
        "flask_jobs/jobs_message.html", title="History unavailable", message=message
    ), 503


def fetch(job_id: str) -> FlaskJob | None:
    """The job in Redis, or None when it is gone (or its data cannot be read)."""
    jobs_state = state()
    try:
        job = FlaskJob.fetch(
            job_id, connection=jobs_state.connection, serializer=jobs_state.serializer
        )
    except NoSuchJobError:
        return None
    except (redis.ConnectionError, redis.TimeoutError):
        raise  # the blueprint's 503 page
    except Exception as exc:  # a foreign serializer or a damaged hash: show the history only
        current_app.logger.warning("dashboard: cannot read job %s: %s", job_id, exc)
        return None
    assert isinstance(job, FlaskJob)
    return job


def statuses(job_ids: list[str]) -> list[str | None]:
    """The RQ status of each job (None: not in Redis), a pipeline per thousand."""
    found: list[str | None] = []
    for start in range(0, len(job_ids), 1000):
        with state().connection.pipeline(transaction=False) as pipe:
            for job_id in job_ids[start : start + 1000]:
                pipe.hget(FlaskJob.key_for(job_id), "status")
            found.extend(v.decode() if v else None for v in pipe.execute())
    return found


# -- changing ------------------------------------------------------------------------


def perform(action: str, job: FlaskJob) -> None:
    """Requeue, cancel or delete ``job``; `JobsError` when its state does not allow it."""
    jobs_state = state()
    if action == "requeue":
        requeue(jobs_state, job)
    elif action == "cancel":
        cancel(jobs_state, job)
    elif action == "delete":
        if job.get_status(refresh=False) == JobStatus.STARTED:
            raise JobsError(f"job {job.id} is running; stop it before deleting it")
        job.delete()
    else:  # pragma: no cover - callers check the action
        raise ValueError(action)


def perform_all(action: str, jobs: Iterator[FlaskJob | None]) -> tuple[int, int]:
    """``action`` on each job: how many were done, and how many skipped (gone or wrong state)."""
    done = skipped = 0
    for job in jobs:
        if job is None:
            skipped += 1
            continue
        try:
            perform(action, job)
        except (JobsError, InvalidJobOperation):
            skipped += 1
        else:
            done += 1
    return done, skipped


def counted(action: str, done: int, skipped: int, what: str = "job(s)") -> tuple[str, str]:
    """The message and flash category after ``action`` on many jobs."""
    message = f"{DONE[action]} {done} {what}."
    if skipped:
        message += (
            f" Skipped {skipped}: gone from Redis, or not in a state that allows it"
            " (requeue: failed, stopped or canceled; cancel: queued, scheduled or deferred;"
            " delete: not running)."
        )
    return message, "error" if skipped and not done else "message"


# -- responses -----------------------------------------------------------------------


def redirect_with(url: str, message: str, category: str = "message") -> Response:
    """A 303 to ``url`` with ``message``, flashed if the app has a secret key, else in ``done``."""
    if current_app.secret_key:
        flash(message, category)
    else:
        url += ("&" if "?" in url else "?") + urlencode({"done": message})
    return redirect(url, 303)


def confirm_page(
    title: str, message: str, action_url: str, fields: list[tuple[str, str]], **extra: Any
) -> ResponseReturnValue:
    """A page that asks before a destructive action, re-posting ``fields`` to ``action_url``."""
    return render_template(
        "flask_jobs/job_confirm.html",
        title=title,
        message=message,
        action_url=action_url,
        fields=fields,
        **extra,
    )


def job_url_maker() -> Callable[[str], str]:
    """A fast ``url_for(".job", job_id=...)`` for long lists: one ``url_for``, then joins."""
    marker = "0"
    prefix = url_for("jobs_dashboard.job", job_id=marker)[: -len(marker)]

    def job_url(job_id: str) -> str:
        return prefix + quote(str(job_id), safe="")

    return job_url


def when(moment: datetime | str | None) -> str:
    """A time from the history as UTC, to the second."""
    if moment is None:
        return "-"
    if isinstance(moment, str):  # an aggregate SQLite hands back as text
        return moment[:19]
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def register(bp: Blueprint) -> None:
    """Add the history-down page and the ``when`` template helper to the dashboard blueprint."""
    bp.register_error_handler(HistoryUnavailable, _history_down)

    @bp.context_processor
    def _helpers() -> dict[str, object]:
        return {"when": when, "job_url": job_url_maker()}
