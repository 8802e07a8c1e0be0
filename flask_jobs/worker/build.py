"""Which worker ``flask jobs worker`` runs: the kinds by name, and a worker built for an app."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rq.worker import Worker

from ..errors import ConfigurationError
from ..jobs.flask_job import FlaskJob
from .loop import JobsWorker
from .maintenance import MAINTENANCE_SECONDS

if TYPE_CHECKING:
    from flask import Flask

    from ..state import JobsState

__all__ = [
    "MAINTENANCE_SECONDS",
    "RETIRED",
    "RQ_WORKER",
    "WORKER_CLASSES",
    "build_worker",
    "check_worker_class",
    "default_worker_name",
]

#: Our worker loop's kinds: jobs in the worker process (serial, threads, async), or each
#: in a fresh child process.
WORKER_CLASSES = ("default", "fork")
#: RQ's own ``Worker`` with our job class: stock RQ, slower.
RQ_WORKER = "rq"
#: Worker classes of earlier releases, and what to use instead.
RETIRED = {"lean": "default", "simple": "default --threads 1", "spawn": "fork"}


def check_worker_class(kind: str) -> str:
    """``kind`` when it names a worker class; else a `ConfigurationError` saying what to use."""
    if kind in WORKER_CLASSES or kind == RQ_WORKER:
        return kind
    if kind in RETIRED:
        raise ConfigurationError(
            f"worker class {kind!r} was replaced by flask-jobs' own worker loop: use "
            f"--worker-class {RETIRED[kind]}"
        )
    raise ConfigurationError(
        f"unknown worker class {kind!r}: use one of {', '.join([*WORKER_CLASSES, RQ_WORKER])}"
    )


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
) -> JobsWorker | Worker:
    """A worker for ``app`` listening on ``queues`` (default: ``JOBS_QUEUES``, in order);
    with ``max_memory`` (MB), one that stops after a job that leaves it bigger than that."""
    config = state.config
    kind = check_worker_class(worker_class or config.worker_class)
    if kind == RQ_WORKER:
        return Worker(
            [state.queue(q) for q in (queues or config.queues)],
            name=name or default_worker_name(),
            connection=state.connection,
            default_result_ttl=config.result_ttl,
            job_class=FlaskJob,
            serializer=state.serializer,
            maintenance_interval=MAINTENANCE_SECONDS,
        )
    return JobsWorker(
        app,
        state,
        queues,
        name=name or default_worker_name(),
        threads=threads or config.worker_threads,
        fork=kind == "fork",
        max_memory=max_memory,
        supervisor=supervisor,
    )
