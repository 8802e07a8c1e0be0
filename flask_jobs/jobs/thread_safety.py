"""``@thread_safe``: declare a job function safe to run beside others in one process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["THREAD_SAFE", "is_thread_safe", "thread_safe"]

#: The attribute `thread_safe` sets on a job function.
THREAD_SAFE = "__flask_jobs_thread_safe__"

F = TypeVar("F", bound=Callable[..., Any])


def thread_safe(fn: F) -> F:
    """Let a lean worker with ``JOBS_WORKER_THREADS > 1`` run this job beside others.

    Put it above or below ``@jobs.job``. Declare only functions that share no
    unguarded state between calls (module globals, a client that is not
    thread-safe); a job not declared runs alone in its worker process.
    """
    setattr(fn, THREAD_SAFE, True)
    return fn


def is_thread_safe(job: Any) -> bool:
    """Whether the RQ job's function was declared `thread_safe` (False if it cannot load)."""
    try:
        func = job.func
    except Exception:  # the run itself reports the import error
        return False
    return bool(getattr(func, THREAD_SAFE, False))
