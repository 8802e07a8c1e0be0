"""The exceptions flask-jobs raises: one root, a few children."""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "HistoryUnavailable",
    "JobArgumentError",
    "JobSoftTimeout",
    "JobStopped",
    "JobsConnectionError",
    "JobsError",
    "UnknownJobError",
    "UnknownQueueError",
]


class JobsError(Exception):
    """Base class of every error raised by flask-jobs."""


class ConfigurationError(JobsError):
    """A ``JOBS_*`` setting or a job declaration is invalid."""


class JobArgumentError(JobsError, TypeError):
    """A job argument cannot be carried by the configured serializer."""


class JobsConnectionError(JobsError, ConnectionError):
    """Redis could not be reached."""


class UnknownJobError(JobsError, LookupError):
    """No job with the given id, or no function at the given import path."""


class UnknownQueueError(JobsError, LookupError):
    """No queue with the given name."""


class JobStopped(JobsError):
    """Raised in a running job that RQ's stop-job command (or the dashboard) stopped."""


class JobSoftTimeout(JobsError):
    """Raised inside a job that ran past its ``soft_timeout``: clean up and stop.

    A job that catches it may still return; one that lets it out fails (and is retried
    if its `Retry` allows). The hard ``timeout`` stops the job regardless. An
    ``async def`` job sees it as the cancellation of the ``await`` it is in.
    """


class HistoryUnavailable(JobsError):
    """The job-history database cannot be read right now."""
