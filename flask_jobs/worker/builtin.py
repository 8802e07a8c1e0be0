"""The middleware every worker runs: history events, the job log lines, ``JOBS_ON_FAILURE``.

Each concern is one class here (Prometheus metrics, with ``JOBS_WORKER_METRICS_PORT``, in
`flask_jobs.worker.metrics`); `default_middleware` lists them for an app, followed by
the app's own (``Jobs(middleware=[...])`` and ``JOBS_MIDDLEWARE``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from rq.job import JobStatus

from .middleware import ExcInfo, JobsWorker, Middleware
from .reporting import job_started, log_outcome, report_failure

if TYPE_CHECKING:
    from rq.job import Job

    from ..state import JobsState

__all__ = [
    "FailureHooksMiddleware",
    "HistoryMiddleware",
    "LogMiddleware",
    "attempt_of",
    "default_middleware",
]


def attempt_of(job: Job) -> int:
    """The attempt the worker is running (or ran) of ``job``, counted before any retry."""
    attempt = getattr(job, "_jobs_attempt", None)
    if isinstance(attempt, int):
        return attempt
    value = getattr(job, "attempt", 1)
    return value if isinstance(value, int) else 1


def _seconds(job: Job) -> float | None:
    seconds = getattr(job, "_jobs_seconds", None)
    return seconds if isinstance(seconds, float) else None


class HistoryMiddleware(Middleware):
    """The attempt's history events, sent with the worker's next state change (no round
    trip of their own)."""

    def __init__(self, state: JobsState) -> None:
        self.events = state.events

    def before_job(self, worker: JobsWorker, job: Job) -> None:
        """The "started" event."""
        worker.record(self.events.from_job(job, "started", attempt_of(job), pid=os.getpid()))

    def after_job(self, worker: JobsWorker, job: Job, result: Any) -> None:
        """The "finished" event, with the result's repr."""
        worker.record(
            self.events.from_job(
                job, "finished", attempt_of(job), arguments=False, result=self.events.result(result)
            )
        )

    def _exception(self, exc_info: ExcInfo | None) -> dict[str, str]:
        if exc_info is None:
            reason = "the work process died"
            return {"exc_type": "WorkHorseTerminated", "exc_message": reason, "traceback": reason}
        return self.events.exception(exc_info)

    def on_failure(self, worker: JobsWorker, job: Job, exc_info: ExcInfo | None) -> None:
        """The "failed" (or "stopped") event with the exception."""
        status = "stopped" if job.get_status(refresh=False) == JobStatus.STOPPED else "failed"
        worker.record(
            self.events.from_job(
                job, status, attempt_of(job), arguments=False, **self._exception(exc_info)
            )
        )

    def on_retry(self, worker: JobsWorker, job: Job, exc_info: ExcInfo | None) -> None:
        """The "retried" event, and the "queued" one of the next attempt."""
        attempt = attempt_of(job)
        worker.record(
            self.events.from_job(
                job, "retried", attempt, arguments=False, **self._exception(exc_info)
            ),
            self.events.from_job(job, "queued", attempt + 1),
        )

    def on_abandoned(self, worker: JobsWorker, job: Job) -> None:
        """The "abandoned" event (and "queued" when RQ's cleanup retried the job)."""
        attempt = attempt_of(job)
        events = [
            self.events.from_job(
                job,
                "abandoned",
                attempt,
                exc_type="AbandonedJobError",
                exc_message="the worker running it died",
            )
        ]
        if job.get_status(refresh=False) in (JobStatus.SCHEDULED, JobStatus.QUEUED):
            events.append(self.events.from_job(job, "queued", attempt + 1))
        worker.record(*events)


class LogMiddleware(Middleware):
    """One log line when a job starts and one when it ends (``flask_jobs.worker`` logger)."""

    def before_job(self, worker: JobsWorker, job: Job) -> None:
        """``job started ...``."""
        job_started(job, attempt_of(job))

    def after_job(self, worker: JobsWorker, job: Job, result: Any) -> None:
        """``job finished ...``."""
        log_outcome(job, attempt_of(job), _seconds(job), None)

    def on_failure(self, worker: JobsWorker, job: Job, exc_info: ExcInfo | None) -> None:
        """``job failed ...``."""
        log_outcome(job, attempt_of(job), _seconds(job), exc_info)

    on_retry = on_failure


class FailureHooksMiddleware(Middleware):
    """``JOBS_ON_FAILURE``: the app's error reporters, told of every failed attempt."""

    def on_failure(self, worker: JobsWorker, job: Job, exc_info: ExcInfo | None) -> None:
        """Call each hook with a `flask_jobs.FailureContext`."""
        report_failure(worker.app, job, attempt_of(job), _seconds(job), exc_info)

    on_retry = on_failure


def default_middleware(state: JobsState) -> list[Any]:
    """The built-in middleware for an app, then the app's own."""
    chain: list[Any] = []
    if state.history_enabled:
        chain.append(HistoryMiddleware(state))
    chain += [LogMiddleware(), FailureHooksMiddleware()]
    if state.config.worker_metrics_port is not None:
        from .metrics import PrometheusMiddleware

        chain.append(PrometheusMiddleware(state.config.worker_metrics_port))
    own: tuple[Any, ...] = getattr(state.jobs, "middleware", ())
    return chain + list(own) + list(state.config.middleware)
