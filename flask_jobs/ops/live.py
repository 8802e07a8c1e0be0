"""The live state in Redis, as ``flask jobs status`` and the dashboard show it: each queue
with its counts per state, and the workers."""

from __future__ import annotations

import contextlib
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any

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

from ..jobs.flask_job import FlaskJob
from ..keys import job_key
from ..redis.connection import redact_url
from .queues import paused_queues, queue_names

if TYPE_CHECKING:
    from ..state import JobsState

__all__ = [
    "REGISTRIES",
    "failed_now",
    "listening",
    "queue_counts",
    "registered_workers",
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


def failed_now(
    state: JobsState, queue: str | None = None, *, offset: int = 0, limit: int = 50
) -> tuple[int, list[dict[str, Any]]]:
    """The jobs in RQ's failed registries now (of ``queue``, or every queue), latest first.

    Returns how many there are in all, and one page of rows: ``id``, ``func``,
    ``queue``, ``ended_at``, ``attempt``, ``error`` (None when a job's data is gone).
    """
    names = [queue] if queue else queue_names(state)
    keys = {name: FailedJobRegistry(queue=state.queue(name)).key for name in names}
    with state.connection.pipeline(transaction=False) as pipe:
        for key in keys.values():
            pipe.zcard(key)
            pipe.zrevrange(key, 0, offset + limit - 1, withscores=True)
        replies = pipe.execute()
    total = sum(replies[0::2])
    # A failed registry's score is when the entry expires: the latest failure has the highest.
    found = [
        (score, job_id.decode(), name)
        for name, entries in zip(keys, replies[1::2], strict=True)
        for job_id, score in entries
    ]
    page = sorted(found, reverse=True)[offset : offset + limit]
    jobs = FlaskJob.fetch_many(
        [job_id for _, job_id, _ in page], connection=state.connection, serializer=state.serializer
    )
    rows = []
    for (_, job_id, name), job in zip(page, jobs, strict=True):
        row: dict[str, Any] = {"id": job_id, "queue": name, "func": None, "ended_at": None}
        row.update(attempt=None, error=None)
        if job is not None:
            assert isinstance(job, FlaskJob)
            with contextlib.suppress(Exception):  # unreadable job data: show its id alone
                row["func"] = job.func_name
            result = job.latest_result()
            row.update(
                ended_at=job.ended_at,
                attempt=job.attempt,
                error=_exception_line(result.exc_string if result is not None else None),
            )
        rows.append(row)
    return total, rows


def listening(state: JobsState) -> Counter[str]:
    """How many workers listen on each queue."""
    return Counter(name for worker in registered_workers(state) for name in worker.queue_names())
