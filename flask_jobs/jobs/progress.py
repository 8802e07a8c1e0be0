"""A running job's progress, kept in its ``meta`` for the dashboard and the history."""

from __future__ import annotations

from typing import Any

from rq.job import get_current_job
from rq.utils import now

from .flask_job import META_PROGRESS

__all__ = ["set_progress"]


def set_progress(fraction: float, message: str | None = None) -> None:
    """Record the current job's progress (0.0 to 1.0) and a short message for the dashboard."""
    if not 0.0 <= float(fraction) <= 1.0:
        raise ValueError(f"set_progress(fraction={fraction!r}): use a number from 0.0 to 1.0")
    job: Any = get_current_job()
    if job is None:
        return  # called outside a worker (e.g. the wrapper called directly): nothing to record
    job.meta[META_PROGRESS] = {
        "fraction": round(float(fraction), 4),
        "message": None if message is None else str(message)[:500],
        "at": now().isoformat(),
    }
    if not getattr(job, "_jobs_eager", False):
        job.save_meta()
