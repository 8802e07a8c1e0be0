"""The live state in Redis, as ``flask jobs status`` and the dashboard show it: each queue
with its counts per state, and the workers."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timezone
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
from ..keys import (
    SCHEDULER_LEADER_KEY,
    SCHEDULER_PROCESSES_KEY,
    WORKER_MODE_FIELD,
    WORKER_RSS_FIELD,
    WORKER_SLOTS_FIELD,
    WORKER_SUPERVISOR_FIELD,
    job_key,
    worker_executions_key,
)
from ..redis.connection import redact_url
from ..scheduler.loop import PROCESS_TTL
from .queues import paused_queues, queue_names
from .sets import job_progress

if TYPE_CHECKING:
    from ..state import JobsState

__all__ = [
    "REGISTRIES",
    "listening",
    "queue_counts",
    "registered_workers",
    "scheduler_processes",
    "status_data",
    "worker_details",
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


def listening(state: JobsState) -> Counter[str]:
    """How many workers listen on each queue."""
    return Counter(name for worker in registered_workers(state) for name in worker.queue_names())


def _text(raw: Any) -> str | None:
    return raw.decode(errors="replace") if isinstance(raw, bytes) and raw else None


def _number(raw: Any) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _job_ids(executions: Any) -> list[str]:
    """The ids of the jobs a worker runs now, from RQ's execution set of the worker (its
    members are ``<job id>:<execution id>``), oldest id first."""
    ids = {m.decode("utf-8", "replace").rpartition(":")[0] for m in executions or ()}
    return sorted(i for i in ids if i)


def worker_details(state: JobsState) -> list[dict[str, Any]]:
    """Each registered worker with RQ's fields and ours (None where a worker wrote none):
    ``mode``, ``slots``, ``rss`` (bytes), ``supervisor``, and ``jobs``: the jobs it runs
    now (``id``, ``func``, ``queue``, ``started_at``, ``progress``)."""
    workers = registered_workers(state)
    fields = (WORKER_MODE_FIELD, WORKER_SLOTS_FIELD, WORKER_RSS_FIELD, WORKER_SUPERVISOR_FIELD)
    with state.connection.pipeline(transaction=False) as pipe:
        for worker in workers:
            pipe.hmget(worker.key, list(fields))
            pipe.smembers(worker_executions_key(worker.name))
        replies = pipe.execute()
    rows = []
    ours = zip(replies[::2], replies[1::2], strict=True)
    for worker, ((mode, slots, rss, supervisor), executions) in zip(workers, ours, strict=True):
        ids = _job_ids(executions)
        worker_state = worker.get_state()
        rows.append(
            {
                "name": worker.name,
                "host": worker.hostname,
                "pid": worker.pid,
                "state": str(getattr(worker_state, "value", worker_state)),
                "queues": worker.queue_names(),
                "mode": _text(mode),
                "slots": _number(slots),
                "busy": len(ids),
                "rss": _number(rss),
                "supervisor": _text(supervisor),
                "job_ids": ids,
                "heartbeat": worker.last_heartbeat,
                "born": worker.birth_date,
                "successful_jobs": worker.successful_job_count,
                "failed_jobs": worker.failed_job_count,
            }
        )
    wanted = [job_id for row in rows for job_id in row["job_ids"]]
    jobs = FlaskJob.fetch_many(wanted, connection=state.connection, serializer=state.serializer)
    found = dict(zip(wanted, jobs, strict=True))
    for row in rows:
        row["jobs"] = [_running_job(job_id, found.get(job_id)) for job_id in row.pop("job_ids")]
    return rows


def _running_job(job_id: str, job: Any) -> dict[str, Any]:
    current: dict[str, Any] = {"id": job_id, "func": None, "queue": None}
    current.update(started_at=None, progress=None)
    if isinstance(job, FlaskJob):
        try:
            current.update(func=job.func_name, queue=job.origin, started_at=job.started_at)
            current["progress"] = job_progress(job)
        except Exception:  # unreadable job data: show its id alone
            pass
    return current


def scheduler_processes(state: JobsState) -> list[dict[str, Any]]:
    """The scheduler processes alive now (a tick within `PROCESS_TTL`): ``token``,
    ``host``, ``pid``, ``last_tick`` and whether it ``leads``; the leader first."""
    conn = state.connection
    with conn.pipeline(transaction=False) as pipe:
        pipe.zrangebyscore(
            SCHEDULER_PROCESSES_KEY, time.time() - PROCESS_TTL, "+inf", withscores=True
        )
        pipe.get(SCHEDULER_LEADER_KEY)
        entries, leader = pipe.execute()
    leader_token = _text(leader)
    rows = []
    for raw, score in entries:
        token = raw.decode(errors="replace")
        parts = token.split(":")  # "<host>:<pid>:<random>"
        rows.append(
            {
                "token": token,
                "host": ":".join(parts[:-2]) if len(parts) >= 3 else token,
                "pid": _number(parts[-2]) if len(parts) >= 3 else None,
                "last_tick": datetime.fromtimestamp(score, timezone.utc),
                "leads": token == leader_token,
            }
        )
    rows.sort(key=lambda row: (not row["leads"], row["token"]))
    return rows
