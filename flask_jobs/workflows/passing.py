"""What a workflow's job does around its run: take the results it is given as its first
argument, and when it fails for good, cancel the steps that can no longer run.

Both are plain functions of a job id, its meta and its arguments, so any worker loop can
call them: `flask_jobs.FlaskJob.perform` does, under our worker and a plain ``rq worker``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import redis
from flask import current_app, has_app_context
from rq.exceptions import AbandonedJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.utils import as_text

from ..errors import JobsError
from ..keys import META_WORKFLOW, META_WORKFLOW_CANCELED, META_WORKFLOW_INPUT, workflow_key

__all__ = [
    "WORKFLOW_HOOKS",
    "WorkflowHooks",
    "cancel_jobs",
    "cancel_rest",
    "failed_for_good",
    "prepare_call",
    "step_abandoned",
]

#: Statuses of a step that has not started: the ones a failure before it cancels.
WAITING = (JobStatus.DEFERRED, JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.RATE_LIMITED)


def prepare_call(
    connection: redis.Redis,
    job_id: str,
    meta: Mapping[str, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    serializer: Any = None,
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments step ``job_id`` runs with: the previous step's result first (a chain),
    or the list of its group's results (a chord's callback), then its own ``args``."""
    feed = meta.get(META_WORKFLOW_INPUT)
    if not isinstance(feed, Mapping) or not feed.get("from"):
        return tuple(args), dict(kwargs)
    sources = [str(source) for source in feed["from"]]
    values = [_result(connection, source, job_id, serializer) for source in sources]
    if feed.get("collect"):
        return (values, *args), dict(kwargs)
    return (values[0], *args), dict(kwargs)


def _result(connection: redis.Redis, source: str, job_id: str, serializer: Any) -> Any:
    """The return value of job ``source`` (None when it failed: a chord that allows it)."""
    try:
        job = Job.fetch(source, connection=connection, serializer=serializer)
    except NoSuchJobError:
        raise JobsError(
            f"job {job_id} needs the result of job {source}, which is gone (expired): keep "
            "results longer (result_ttl) than a workflow takes"
        ) from None
    return job.return_value() if job.get_status(refresh=False) == JobStatus.FINISHED else None


def cancel_rest(
    connection: redis.Redis,
    job_id: str,
    meta: Mapping[str, Any],
    reason: str,
    *,
    serializer: Any = None,
) -> list[str]:
    """Cancel the steps of ``job_id``'s workflow that cannot run now that it failed for good
    (a chain's later steps, a chord's callback unless it allows failures), each with
    ``reason`` in its meta; return their ids."""
    info = meta.get(META_WORKFLOW)
    if not isinstance(info, Mapping) or not info.get("id"):
        return []
    key = workflow_key(str(info["id"]))
    data = {as_text(k): as_text(v) for k, v in connection.hgetall(key).items()}
    if not data:
        return []
    members = json.loads(data.get("members", "[]"))
    callback = data.get("callback") or None
    if data.get("kind") == "chain":
        index = int(info.get("index", 0))
        doomed = members[index + 1 :]
    elif callback and info.get("role") == "member" and data.get("allow_failure") != "1":
        doomed = [callback]
    else:
        return []
    # Recorded on the workflow too: a step enqueued after this moment is canceled by the
    # enqueue that sees it (see `canvas.enqueue_workflow`).
    connection.hset(key, "canceled", reason)
    return cancel_jobs(connection, doomed, reason, serializer=serializer)


def cancel_jobs(
    connection: redis.Redis, job_ids: list[str], reason: str, *, serializer: Any = None
) -> list[str]:
    """Cancel those of ``job_ids`` that have not started, saying ``reason``; their ids."""
    canceled = []
    for job in Job.fetch_many(job_ids, connection=connection, serializer=serializer):
        if job is None or job.get_status(refresh=False) not in WAITING:
            continue
        job.meta[META_WORKFLOW_CANCELED] = reason
        job.save_meta()  # type: ignore[no-untyped-call]
        job.cancel()
        canceled.append(job.id)
        _record_canceled(job)
    return canceled


def _record_canceled(job: Job) -> None:
    """The history's "canceled" event of ``job``, when an app with a history is current."""
    if not has_app_context():
        return
    state = current_app.extensions.get("jobs")
    if state is None or not state.history_enabled:
        return
    event = state.events.from_job(job, "canceled", 1, exc_message=job.meta[META_WORKFLOW_CANCELED])
    state.connection.xadd(state.history_settings.stream, event)


def failed_for_good(
    connection: redis.Redis,
    job_id: str,
    meta: Mapping[str, Any],
    exc: BaseException,
    *,
    serializer: Any = None,
) -> list[str]:
    """Cancel what cannot run after ``job_id`` failed with ``exc`` (see `cancel_rest`)."""
    info = meta.get(META_WORKFLOW)
    info = info if isinstance(info, Mapping) else {}
    step = int(info.get("index", 0)) + 1
    reason = f"{info.get('kind', 'workflow')} step {step} ({job_id}) failed: "
    reason += f"{type(exc).__name__}: {exc}"[:300]
    return cancel_rest(connection, job_id, meta, reason, serializer=serializer)


def step_abandoned(
    job: Job, connection: redis.Redis, exc_type: Any, exc_value: Any, traceback: Any
) -> None:
    """RQ's failure callback of every job of a workflow: a step whose worker died is found
    abandoned by RQ's maintenance, never back in `FlaskJob.perform`; fail it for good here
    (other failures `perform` saw already)."""
    if not (isinstance(exc_type, type) and issubclass(exc_type, AbandonedJobError)):
        return
    if job.retries_left:  # RQ retries it
        return
    meta = job.meta if isinstance(job.meta, dict) else {}
    failed_for_good(connection, job.id, meta, exc_value or exc_type(), serializer=job.serializer)


class WorkflowHooks:
    """The two calls `flask_jobs.FlaskJob.perform` makes for a job of a workflow."""

    prepare_call = staticmethod(prepare_call)
    failed_for_good = staticmethod(failed_for_good)


WORKFLOW_HOOKS = WorkflowHooks()
