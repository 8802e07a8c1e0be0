"""The live state in Redis, as ``flask jobs status`` and the dashboard show it: each queue
with its counts per state, and the workers."""

from __future__ import annotations

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

__all__ = ["REGISTRIES", "listening", "queue_counts", "registered_workers", "status_data"]

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


def listening(state: JobsState) -> Counter[str]:
    """How many workers listen on each queue."""
    return Counter(name for worker in registered_workers(state) for name in worker.queue_names())
