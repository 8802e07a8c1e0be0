"""Which worker ``flask jobs worker`` runs: the classes by name, and a worker built for an app."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rq.worker import SimpleWorker, Worker

from ..jobs.flask_job import FlaskJob
from .app_context import FlaskSimpleWorker, FlaskSpawnWorker
from .lanes import ThreadedLeanWorker
from .lean import LeanWorker
from .loop import JobsWorker
from .stopping import StopSafeQueue

if TYPE_CHECKING:
    from flask import Flask

    from ..state import JobsState

__all__ = ["MAINTENANCE_SECONDS", "WORKER_CLASSES", "build_worker", "default_worker_name"]

#: How often a worker runs RQ's registry cleanup (abandoned jobs, stuck intermediate lists).
MAINTENANCE_SECONDS = 60

WORKER_CLASSES: dict[str, type[Worker] | type[SimpleWorker] | type[JobsWorker]] = {
    "default": JobsWorker,
    "fork": JobsWorker,
    "simple": FlaskSimpleWorker,
    "spawn": FlaskSpawnWorker,
    "lean": LeanWorker,
}


def default_worker_name() -> str:
    """``host.pid.random``: readable in ``ps`` and dashboards, unique across hosts."""
    return f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"


def build_worker(
    app: Flask,
    state: JobsState,
    queues: Sequence[str] | None = None,
    *,
    worker_class: str | None = None,
    name: str | None = None,
    threads: int | None = None,
    max_memory: int | None = None,
    supervisor: str | None = None,
) -> Worker | SimpleWorker | JobsWorker:
    """A worker for ``app`` listening on ``queues`` (default: ``JOBS_QUEUES``, in order);
    with ``max_memory`` (MB), one that stops after a job that leaves it bigger than that."""
    config = state.config
    kind = worker_class or config.worker_class
    threads = threads or config.worker_threads
    if kind in ("default", "fork"):
        return JobsWorker(
            app,
            state,
            queues,
            name=name or default_worker_name(),
            threads=threads,
            fork=kind == "fork",
            max_memory=max_memory,
            supervisor=supervisor,
        )
    if kind == "rq":
        return Worker(
            [state.queue(q) for q in (queues or config.queues)],
            name=name or default_worker_name(),
            connection=state.connection,
            default_result_ttl=config.result_ttl,
            job_class=FlaskJob,
            serializer=state.serializer,
        )
    cls: Any = WORKER_CLASSES[kind]
    if kind == "lean" and threads > 1:
        cls = type("ThreadedLeanWorker", (ThreadedLeanWorker,), {"threads": threads})
    worker = cls(
        # The worker's own queue objects: their blocking pops a warm stop may interrupt
        # (and nothing else of a worker's loop); see stopping.py.
        [
            StopSafeQueue(
                name,
                connection=state.connection,
                default_timeout=config.default_timeout,
                job_class=FlaskJob,
                serializer=state.serializer,
            )
            for name in (queues or config.queues)
        ],
        name=name or default_worker_name(),
        connection=state.connection,
        default_result_ttl=config.result_ttl,
        job_class=FlaskJob,
        queue_class=StopSafeQueue,
        serializer=state.serializer,
        # RQ's 10 minutes: a dead worker's job would wait that long to be found abandoned
        # (and retried) by a long-running worker; the cleanup is a few cheap reads.
        maintenance_interval=MAINTENANCE_SECONDS,
    )
    worker.flask_app = app
    worker.max_memory_mb = max_memory
    built: Worker | SimpleWorker = worker
    return built
