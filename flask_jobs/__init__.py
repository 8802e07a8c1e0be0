"""Background jobs for Flask: app-context jobs on RQ, periodic jobs, job history, a dashboard."""

from __future__ import annotations

from .enqueue import enqueue_many
from .errors import (
    ConfigurationError,
    JobArgumentError,
    JobsConnectionError,
    JobsError,
    UnknownJobError,
)
from .extension import Jobs
from .jobs.flask_job import FlaskJob, HeldStatus
from .jobs.function import JobCall, JobFunction
from .jobs.retry import Retry
from .jobs.thread_safety import thread_safe
from .worker.middleware import Middleware

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "FlaskJob",
    "HeldStatus",
    "JobArgumentError",
    "JobCall",
    "JobFunction",
    "Jobs",
    "JobsConnectionError",
    "JobsError",
    "Middleware",
    "Retry",
    "UnknownJobError",
    "__version__",
    "enqueue_many",
    "thread_safe",
]
