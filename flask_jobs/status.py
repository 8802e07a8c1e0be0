"""Read-only views of the live state in Redis: queues with counts per state, and workers."""

from __future__ import annotations

from typing import Any

from rq import Queue
from rq.worker import Worker

from .config import QUEUE_NAME
from .state import REGISTRIES, JobsState, redact_url

__all__ = ["queue_names", "status_data"]


def queue_names(state: JobsState) -> list[str]:
    """``JOBS_QUEUES`` in order, then any other queue RQ knows of in this Redis."""
    names = list(state.config.queues)
    for queue in Queue.all(connection=state.connection):
        # a queue made by plain RQ may have a name we would refuse: leave it out
        if queue.name not in names and QUEUE_NAME.match(queue.name):
            names.append(queue.name)
    return names


def status_data(state: JobsState) -> dict[str, Any]:
    """Queues with their job counts per state, and the workers, as JSON-ready data."""
    queues = []
    with state.connection.pipeline(transaction=False) as pipe:
        names = queue_names(state)
        for name in names:
            queue = state.queue(name)
            pipe.llen(queue.key)
            for registry in REGISTRIES.values():
                pipe.zcard(registry(queue=queue).key)
        counts = pipe.execute()
    width = 1 + len(REGISTRIES)
    for i, name in enumerate(names):
        row: dict[str, Any] = {"name": name, "queued": counts[i * width]}
        for j, label in enumerate(REGISTRIES, start=1):
            row[label] = counts[i * width + j]
        queues.append(row)
    workers = []
    for worker in Worker.all(connection=state.connection):
        workers.append(
            {
                "name": worker.name,
                "state": str(getattr(worker.get_state(), "value", worker.get_state())),
                "queues": worker.queue_names(),
                "current_job": worker.get_current_job_id(),
                "host": worker.hostname,
                "pid": worker.pid,
                "successful_jobs": worker.successful_job_count,
                "failed_jobs": worker.failed_job_count,
            }
        )
    workers.sort(key=lambda w: str(w["name"]))
    return {"redis": redact_url(state.redis_url), "queues": queues, "workers": workers}
