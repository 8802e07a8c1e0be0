"""The example's JOBS_ON_FAILURE hook: where a real app would call Sentry (see the README)."""

from __future__ import annotations

from flask import current_app

from flask_jobs.reporting import FailureContext

__all__ = ["report_failure"]


def report_failure(context: FailureContext) -> None:
    """Log a job that failed for good; retried attempts are left to the retry policy."""
    if context.will_retry:
        return
    current_app.logger.error(
        "job %s (%s) failed after %d attempt(s): %s",
        context.job_id,
        context.function,
        context.attempt,
        context.error,
    )
