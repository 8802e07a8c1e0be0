"""Background jobs for Flask: app-context jobs on RQ, periodic jobs, job history, a dashboard."""

from __future__ import annotations

from .enqueue import enqueue_many
from .errors import (
    ConfigurationError,
    JobArgumentError,
    JobsConnectionError,
    JobsError,
    JobSoftTimeout,
    UnknownJobError,
)
from .extension import Jobs
from .jobs.flask_job import FlaskJob, HeldStatus
from .jobs.function import JobCall, JobFunction, Signature
from .jobs.retry import Retry
from .jobs.thread_safety import thread_safe
from .producer import Producer
from .worker.middleware import Middleware
from .workflows import Progress, WorkflowHandle

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "FlaskJob",
    "HeldStatus",
    "JobArgumentError",
    "JobCall",
    "JobFunction",
    "JobSoftTimeout",
    "Jobs",
    "JobsConnectionError",
    "JobsError",
    "Middleware",
    "Producer",
    "Progress",
    "Retry",
    "Signature",
    "UnknownJobError",
    "WorkflowHandle",
    "__version__",
    "enqueue_many",
    "thread_safe",
]
