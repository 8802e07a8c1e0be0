"""Soft time limits (``soft_timeout=``, Celery's ``soft_time_limit``): past them, a
`JobSoftTimeout` is raised inside the job, which may catch it to clean up, before the hard
``timeout`` stops it.

A job running in a thread (the worker's main thread, a lane, a forked child's) gets it the
way RQ's thread timeouts raise theirs, as an asynchronous exception set on that thread, by
the process's watchdog (`flask_jobs.worker.deadlines`). An ``async def`` job gets the
cancellation of the ``await`` it is in (`soft_cancel`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import JobSoftTimeout
from ..jobs.flask_job import META_SOFT_TIMEOUT
from .deadlines import watchdog

if TYPE_CHECKING:
    from rq.job import Job

__all__ = ["SOFT_MESSAGE", "soft_cancel", "soft_fired", "soft_limit", "soft_seconds"]

#: The message of the cancellation an ``async def`` job gets at its soft time limit.
SOFT_MESSAGE = "soft timeout"


def soft_seconds(job: Job) -> float | None:
    """The job's soft time limit in seconds, if it has one."""
    meta = job.meta if isinstance(job.meta, dict) else {}
    value = meta.get(META_SOFT_TIMEOUT)
    return float(value) if isinstance(value, int | float) and value > 0 else None


@contextmanager
def soft_limit(job: Job) -> Iterator[None]:
    """Raise `JobSoftTimeout` in this thread if the body runs past the job's soft limit."""
    seconds = soft_seconds(job)
    if seconds is None:
        yield
        return
    deadline = watchdog.arm(seconds, JobSoftTimeout)
    try:
        yield
    finally:
        watchdog.disarm(deadline)


def soft_cancel(job: Job, inner: asyncio.Future[Any]) -> asyncio.TimerHandle | None:
    """Cancel an ``async def`` job's ``inner`` task at its soft limit (None: it has none)."""
    seconds = soft_seconds(job)
    if seconds is None:
        return None
    return asyncio.get_running_loop().call_later(seconds, inner.cancel, SOFT_MESSAGE)


def soft_fired(handle: asyncio.TimerHandle | None) -> bool:
    """Whether the soft limit of `soft_cancel` has cancelled the job."""
    if handle is None or handle.cancelled():
        return False
    return handle.when() <= asyncio.get_running_loop().time()
