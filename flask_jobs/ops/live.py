"""The live state in Redis, as ``flask jobs status`` and the dashboard show it: each queue
with its counts per state, and the workers."""

from __future__ import annotations

import contextlib
from collections import Counter
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from rq.registry import (
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.utils import utcparse
from rq.worker import Worker
from sqlalchemy.exc import SQLAlchemyError

from ..jobs.flask_job import FlaskJob
from ..keys import job_key
from ..redis.connection import redact_url
from .queues import paused_queues, queue_names

if TYPE_CHECKING:
    from flask import Flask

    from ..state import JobsState

__all__ = [
    "LISTS",
    "REGISTRIES",
    "listening",
    "queue_counts",
    "registered_workers",
    "registry_jobs",
    "status_data",
]

#: RQ's registries of one queue, by the state of the jobs they hold.
REGISTRIES = {
    "started": StartedJobRegistry,
    "scheduled": ScheduledJobRegistry,
    "deferred": DeferredJobRegistry,
    "failed": FailedJobRegistry,
    "finished": FinishedJobRegistry,
    "canceled": CanceledJobRegistry,
}
#: Ids tried at a queue's head for the oldest job's age (an id can outlive its job).
HEAD = 5


def registered_workers(state: JobsState) -> list[Any]:
    """RQ's workers registered in this Redis, by name."""
    found = Worker.all(connection=state.connection, job_class=FlaskJob, serializer=state.serializer)
    return sorted(found, key=lambda worker: str(worker.name))


def queue_counts(state: JobsState, *, oldest: bool = False) -> list[dict[str, Any]]:
    """Each queue (see `queue_names`): ``name``, ``queued``, a count per registry, whether it
    is ``paused``; with ``oldest``, when its oldest waiting job was enqueued (or None)."""
    conn = state.connection
    paused = paused_queues(state)
    names = queue_names(state, paused)
    with conn.pipeline(transaction=False) as pipe:
        for name in names:
            queue = state.queue(name)
            pipe.llen(queue.key)
            for registry in REGISTRIES.values():
                pipe.zcard(registry(queue=queue).key)
            if oldest:
                pipe.lrange(queue.key, 0, HEAD - 1)
        replies = pipe.execute()
    width = 1 + len(REGISTRIES) + oldest
    rows = []
    for i, name in enumerate(names):
        row: dict[str, Any] = {"name": name, "queued": replies[i * width]}
        for j, label in enumerate(REGISTRIES, start=1):
            row[label] = replies[i * width + j]
        row["paused"] = name in paused
        rows.append(row)
    if oldest:
        heads = [
            [job_id.decode() for job_id in replies[i * width + width - 1]]
            for i in range(len(names))
        ]
        with conn.pipeline(transaction=False) as pipe:
            for ids in heads:
                for job_id in ids:
                    pipe.hget(job_key(job_id), "enqueued_at")
            stamps = iter(pipe.execute())
        for row, ids in zip(rows, heads, strict=True):
            row["oldest"] = _first_time([next(stamps) for _ in ids])
    return rows


def _first_time(stamps: list[Any]) -> datetime | None:
    """When the first still existing job of a queue's head was enqueued."""
    for stamp in stamps:
        if stamp:
            try:
                return utcparse(stamp.decode())
            except ValueError:
                continue
    return None


def status_data(state: JobsState) -> dict[str, Any]:
    """Queues with their job counts per state, and the workers, as JSON-ready data."""
    rows = []
    for worker in registered_workers(state):
        worker_state = worker.get_state()
        rows.append(
            {
                "name": worker.name,
                "state": str(getattr(worker_state, "value", worker_state)),
                "queues": worker.queue_names(),
                "current_job": worker.get_current_job_id(),
                "host": worker.hostname,
                "pid": worker.pid,
                "successful_jobs": worker.successful_job_count,
                "failed_jobs": worker.failed_job_count,
            }
        )
    return {"redis": redact_url(state.redis_url), "queues": queue_counts(state), "workers": rows}


def _exception_line(traceback: str | None) -> str | None:
    """The exception of a traceback and the first line of its message (the line after the
    last frame: a message may have lines of its own)."""
    lines = [line for line in (traceback or "").strip().splitlines() if line.strip()]
    frames = [i for i, line in enumerate(lines) if line.startswith(" ")]
    start = frames[-1] + 1 if frames and frames[-1] + 1 < len(lines) else len(lines) - 1
    return lines[start].strip() if lines else None


#: The live lists: the registry each reads, and whether the highest score comes first.
#: A failed entry's score is when it expires (the latest failure is highest); a
#: scheduled one's is when the job is due (the soonest is lowest).
LISTS = {"failed": (FailedJobRegistry, True), "scheduled": (ScheduledJobRegistry, False)}


def _history_errors(app: Flask, state: JobsState, ids: list[str]) -> dict[str, str]:
    """The latest recorded failure of each of ``ids`` ("Type: message"), from the history."""
    if not ids or not state.history_enabled:
        return {}
    t = state.history.table
    stmt = (
        sa.select(t.c.job_id, t.c.exc_type, t.c.exc_message)
        .where(t.c.job_id.in_(ids), t.c.exc_type.is_not(None))
        .order_by(t.c.attempt)
    )
    try:
        with state.history.engine(app).connect() as conn:
            found = {
                row.job_id: f"{row.exc_type}: {row.exc_message or ''}" for row in conn.execute(stmt)
            }
    except SQLAlchemyError:  # the history being down leaves the errors out, not the page
        return {}
    return found


def registry_jobs(
    state: JobsState,
    kind: str,
    queue: str | None = None,
    *,
    offset: int = 0,
    limit: int = 50,
    app: Flask | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """The jobs in RQ's ``kind`` registries now ("failed": latest first; "scheduled":
    soonest due first), of ``queue`` or of every queue.

    Returns how many there are in all, and one page of rows: ``id``, ``func``,
    ``queue``, ``at`` (when it failed, or is due), ``attempt`` and ``error`` (the
    last failure's exception line: for a scheduled job, why it is being retried). RQ
    keeps no result for an attempt that will be retried: with ``app``, its error comes
    from the history.
    """
    registry, latest_first = LISTS[kind]
    names = [queue] if queue else queue_names(state)
    keys = {name: registry(queue=state.queue(name)).key for name in names}
    with state.connection.pipeline(transaction=False) as pipe:
        for key in keys.values():
            pipe.zcard(key)
            read = pipe.zrevrange if latest_first else pipe.zrange
            read(key, 0, offset + limit - 1, withscores=True)
        replies = pipe.execute()
    total = sum(replies[0::2])
    found = [
        (score, job_id.decode(), name)
        for name, entries in zip(keys, replies[1::2], strict=True)
        for job_id, score in entries
    ]
    page = sorted(found, reverse=latest_first)[offset : offset + limit]
    jobs = FlaskJob.fetch_many(
        [job_id for _, job_id, _ in page], connection=state.connection, serializer=state.serializer
    )
    rows = []
    for (score, job_id, name), job in zip(page, jobs, strict=True):
        due = datetime.fromtimestamp(score, timezone.utc) if not latest_first else None
        row: dict[str, Any] = {"id": job_id, "queue": name, "func": None, "at": due}
        row.update(attempt=None, error=None)
        if job is not None:
            assert isinstance(job, FlaskJob)
            with contextlib.suppress(Exception):  # unreadable job data: show its id alone
                row["func"] = job.func_name
            result = job.latest_result()
            # a failure, or a retry after one: either carries the exception's text
            exc = getattr(result, "exc_string", None) if result is not None else None
            row.update(at=due or job.ended_at, attempt=job.attempt, error=_exception_line(exc))
        rows.append(row)
    missing = [row["id"] for row in rows if row["error"] is None]
    if app is not None and missing:
        recorded = _history_errors(app, state, missing)
        for row in rows:
            if row["error"] is None and row["id"] in recorded:
                row["error"] = _exception_line(recorded[row["id"]])
    return total, rows


def listening(state: JobsState) -> Counter[str]:
    """How many workers listen on each queue."""
    return Counter(name for worker in registered_workers(state) for name in worker.queue_names())
