"""The middleware API: code that rides along every job a worker runs, in every mode.

A middleware is an object with any of the hooks of `Middleware` (Dramatiq's idea): the
worker calls each hook of each middleware in order, inside the job's app context. A hook
that raises is logged and skipped: it never fails the job or stops the worker. History
events, the job log lines and ``JOBS_ON_FAILURE`` are middleware too
(`flask_jobs.worker.builtin`); an app adds its own with ``Jobs(middleware=[...])`` or
``JOBS_MIDDLEWARE`` (import strings)::

    class Timing(Middleware):
        def before_job(self, worker, job):
            job.meta["t0"] = time.monotonic()

        def after_job(self, worker, job, result):
            statsd.timing(job.func_name, time.monotonic() - job.meta["t0"])
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from flask import Flask
    from rq.job import Job

__all__ = ["HOOKS", "ExcInfo", "JobsWorker", "Middleware", "MiddlewareChain"]

log = logging.getLogger("flask_jobs.worker")

ExcInfo = tuple[type[BaseException], BaseException, Any]


class JobsWorker(Protocol):
    """What a hook is handed of the worker running the job."""

    #: The worker's name (RQ's ``rq:worker:<name>``).
    name: str
    #: How it runs jobs: ``serial``, ``threads``, ``fork`` or ``async``.
    mode: str
    #: The Flask app it loaded.
    app: Flask

    def queue_names(self) -> list[str]:
        """The queues it takes jobs from, highest priority first."""
        ...

    def record(self, *events: dict[str, str]) -> None:
        """Send history events with the worker's next call to Redis."""
        ...


class Middleware:
    """Base class of worker middleware: every hook does nothing; override the ones you need.

    ``job`` is the RQ job (`flask_jobs.FlaskJob`); its ``attempt``, ``origin``,
    ``func_name``, ``args`` and ``meta`` are there to read.
    """

    def on_worker_start(self, worker: JobsWorker) -> None:
        """The worker registered and is about to claim its first job."""

    def on_worker_stop(self, worker: JobsWorker) -> None:
        """The worker is about to unregister (after its last job)."""

    def before_job(self, worker: JobsWorker, job: Job) -> None:
        """The job is about to run (in its app context)."""

    def after_job(self, worker: JobsWorker, job: Job, result: Any) -> None:
        """The job returned ``result``."""

    def on_failure(self, worker: JobsWorker, job: Job, exc_info: ExcInfo | None) -> None:
        """The job raised (or was stopped, timed out, or lost its process) and will not be
        retried; ``exc_info`` is None when it raised nothing (a killed work process)."""

    def on_retry(self, worker: JobsWorker, job: Job, exc_info: ExcInfo | None) -> None:
        """The job raised and is queued (or scheduled) for another attempt."""

    def on_abandoned(self, worker: JobsWorker, job: Job) -> None:
        """The worker's maintenance found ``job`` left "started" by a worker that died."""


#: The hooks, in the order a job meets them.
HOOKS = (
    "on_worker_start",
    "before_job",
    "after_job",
    "on_failure",
    "on_retry",
    "on_abandoned",
    "on_worker_stop",
)


class MiddlewareChain:
    """The middleware of one worker, called in order; a hook that raises is logged."""

    def __init__(self, middleware: Sequence[Any]) -> None:
        self.middleware = list(middleware)
        # Only the hooks a middleware defines: a no-op hook costs a call per job.
        self._hooks = {
            hook: [
                getattr(m, hook)
                for m in self.middleware
                if callable(getattr(m, hook, None))
                and getattr(type(m), hook, None) is not getattr(Middleware, hook)
            ]
            for hook in HOOKS
        }

    def emit(self, hook: str, *args: Any) -> None:
        """Call ``hook(*args)`` on each middleware that has it."""
        for method in self._hooks[hook]:
            try:
                method(*args)
            except Exception:
                log.exception(
                    "middleware %s.%s raised; the job and the worker carry on",
                    type(getattr(method, "__self__", method)).__name__,
                    hook,
                )
