"""Structured log lines for each job, and the ``JOBS_ON_FAILURE`` hooks for error reporters.

A worker loop calls `job_started` before a job runs, `remember_exception` from its
exception handler, and `job_ended(app, job, attempt, seconds)` inside the app context
once RQ has set the job's status; nothing else here needs the worker.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rq.job import JobStatus

if TYPE_CHECKING:
    from flask import Flask
    from rq.job import Job

__all__ = [
    "FailureContext",
    "JsonFormatter",
    "TextFormatter",
    "formatter",
    "job_ended",
    "job_started",
    "log_outcome",
    "remember_exception",
    "report_failure",
]

log = logging.getLogger("flask_jobs.worker")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

#: How RQ's status after a run reads in a log line.
_OUTCOMES = {
    JobStatus.FINISHED: "finished",
    JobStatus.FAILED: "failed",
    JobStatus.STOPPED: "stopped",
    JobStatus.SCHEDULED: "retry_scheduled",
    JobStatus.QUEUED: "retry_queued",
}


@dataclass(frozen=True)
class FailureContext:
    """What a ``JOBS_ON_FAILURE`` hook is told about one failed attempt."""

    job: Job
    job_id: str
    function: str
    queue: str
    attempt: int
    #: True when a retry is scheduled; False when this was the last attempt.
    will_retry: bool
    #: ``"failed"``, ``"stopped"``, ``"retry_scheduled"``, ``"retry_queued"``.
    outcome: str
    #: The exception raised by the job; None when the work horse died without one.
    exc_info: ExcInfo | None
    #: One line: ``ExceptionType: message``.
    error: str
    duration: float | None
    app: Flask = field(repr=False)

    @property
    def exception(self) -> BaseException | None:
        """The exception instance, if the job raised one."""
        return self.exc_info[1] if self.exc_info else None


def _fields(job: Job, attempt: int) -> dict[str, Any]:
    try:
        function = job.func_name  # in the job's payload, which may be unreadable
    except Exception:
        function = None
    return {"job_id": job.id, "function": function, "queue": job.origin, "attempt": attempt}


def _text(event: str, fields: dict[str, Any]) -> str:
    parts = [event]
    for key, value in fields.items():
        if value is None:
            continue
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        parts.append(f"{key}={json.dumps(text) if (' ' in text or not text) else text}")
    return " ".join(parts)


def _log(level: int, event: str, fields: dict[str, Any]) -> None:
    # The message reads on its own (key=value); the fields ride along for JsonFormatter.
    log.log(level, _text(event, fields), extra={"jobs_event": event, "jobs_fields": fields})


def job_started(job: Job, attempt: int) -> None:
    """Log that ``job`` starts its ``attempt``."""
    if log.isEnabledFor(logging.INFO):
        _log(logging.INFO, "job started", _fields(job, attempt))


def remember_exception(job: Job, exc_info: tuple[Any, ...]) -> None:
    """Keep the exception a job raised, for `job_ended` (RQ's handlers do not pass it on)."""
    if len(exc_info) == 3 and isinstance(exc_info[1], BaseException):
        job._jobs_exc_info = exc_info  # type: ignore[attr-defined]


def job_ended(
    app: Flask, job: Job, attempt: int, seconds: float | None, *, killed: str | None = None
) -> None:
    """Log how the attempt ended; on failure, call each of ``app``'s ``JOBS_ON_FAILURE`` hooks.

    ``killed`` says why the work horse died when the job raised nothing.
    """
    exc_info: ExcInfo | None = getattr(job, "_jobs_exc_info", None)
    job._jobs_exc_info = None  # type: ignore[attr-defined]  # no traceback kept alive
    log_outcome(job, attempt, seconds, exc_info, killed=killed)
    report_failure(app, job, attempt, seconds, exc_info, killed=killed)


def _error(exc_info: ExcInfo | None, killed: str | None) -> str:
    if exc_info is not None:
        return f"{exc_info[0].__name__}: {exc_info[1]}"
    return f"WorkHorseTerminated: {killed or 'the work horse died'}"


def log_outcome(
    job: Job,
    attempt: int,
    seconds: float | None,
    exc_info: ExcInfo | None,
    *,
    killed: str | None = None,
) -> None:
    """Log one line for how the attempt ended (its status is RQ's after the run)."""
    status = job.get_status(refresh=False)
    outcome = _OUTCOMES.get(status, str(status))
    fields = _fields(job, attempt)
    fields["outcome"] = outcome
    fields["duration"] = seconds
    if outcome == "finished":
        if log.isEnabledFor(logging.INFO):
            _log(logging.INFO, "job finished", fields)
        return
    error = _error(exc_info, killed)
    fields["error"] = error.splitlines()[0][:500] if error else error
    _log(logging.WARNING, "job failed", fields)


def report_failure(
    app: Flask,
    job: Job,
    attempt: int,
    seconds: float | None,
    exc_info: ExcInfo | None,
    *,
    killed: str | None = None,
) -> None:
    """Call each of ``app``'s ``JOBS_ON_FAILURE`` hooks for a failed attempt."""
    outcome = _OUTCOMES.get(job.get_status(refresh=False), "failed")
    hooks: tuple[Callable[..., Any], ...] = app.extensions["jobs"].config.on_failure
    if outcome == "finished" or not hooks:
        return
    context = FailureContext(
        job=job,
        job_id=job.id,
        function=job.func_name or "?",
        queue=job.origin,
        attempt=attempt,
        will_retry=outcome.startswith("retry"),
        outcome=outcome,
        exc_info=exc_info,
        error=_error(exc_info, killed),
        duration=seconds,
        app=app,
    )
    call_hooks(hooks, context)


def call_hooks(hooks: tuple[Callable[..., Any], ...], context: FailureContext) -> None:
    """Call every hook; one that raises is logged and skipped, never fatal to the worker."""
    for hook in hooks:
        try:
            hook(context)
        except Exception:
            log.exception(
                "JOBS_ON_FAILURE hook %s raised while reporting job %s; carrying on",
                getattr(hook, "__qualname__", hook),
                context.job_id,
            )


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message`` lines; job lines carry ``key=value`` fields."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with a job line's fields as keys of their own."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
        }
        event = getattr(record, "jobs_event", None)
        if event is not None:
            data["event"] = event
            data.update(
                {k: v for k, v in getattr(record, "jobs_fields", {}).items() if v is not None}
            )
        else:
            data["message"] = record.getMessage()
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def formatter(kind: str) -> logging.Formatter:
    """The formatter for ``JOBS_LOG_FORMAT``: ``"text"`` or ``"json"``."""
    return JsonFormatter() if kind == "json" else TextFormatter()
